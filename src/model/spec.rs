//! `model.json`, the contract between an exported model and the engine: graph files and their
//! I/O, pre-processing, text settings, the anchor grid and GLIP's post-processing constants.
//! Only the fields the engine uses are typed; the rest is kept for the record.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The contract name and version odinw reads.
pub const CONTRACT: &str = "odinw-grounding-model";
pub const CONTRACT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelSpec {
    pub contract: String,
    pub contract_version: u32,
    pub family: String,
    pub config: String,
    #[serde(default)]
    pub precision: String,
    pub graphs: BTreeMap<String, GraphSpec>,
    pub preprocess: Preprocess,
    pub text: Text,
    pub anchors: Anchors,
    pub postprocess: Postprocess,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GraphSpec {
    pub file: String,
    #[serde(default)]
    pub inputs: Vec<TensorSpec>,
    #[serde(default)]
    pub outputs: Vec<TensorSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    #[serde(default)]
    pub dtype: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Preprocess {
    /// The graph's fixed `[height, width]`; resized images are zero-padded up to it.
    pub input_size: [u32; 2],
    pub resize: Resize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Resize {
    pub min_size: u32,
    pub max_size: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Text {
    pub tokenizer: String,
    pub max_text_len: usize,
    pub special_tokens: BTreeMap<String, i64>,
    pub prompt_separator: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Anchors {
    pub levels: Vec<Level>,
    pub total: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Level {
    pub name: String,
    pub stride: u32,
    pub size: u32,
    pub height: usize,
    pub width: usize,
    pub offset: usize,
    pub count: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Postprocess {
    pub pre_nms_thresh: f32,
    pub pre_nms_top_n_per_level: usize,
    pub nms_thresh: f32,
    pub detections_per_img: usize,
}

impl Postprocess {
    /// These settings as the post-processing module takes them.
    pub fn config(&self) -> crate::postprocess::PostprocessConfig {
        crate::postprocess::PostprocessConfig {
            pre_nms_thresh: self.pre_nms_thresh,
            pre_nms_top_n: self.pre_nms_top_n_per_level,
            nms_thresh: self.nms_thresh,
            detections_per_img: self.detections_per_img,
        }
    }
}

impl ModelSpec {
    /// Checks what the engine relies on; each error says which field is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.contract != CONTRACT || self.contract_version != CONTRACT_VERSION {
            bail!(
                "contract is {} v{}; this odinw reads {CONTRACT} v{CONTRACT_VERSION}",
                self.contract,
                self.contract_version
            );
        }
        if self.family != "glip" {
            bail!("family {:?} is not supported yet (only glip)", self.family);
        }
        for g in ["image_backbone", "text_encoder", "head"] {
            if !self.graphs.contains_key(g) {
                bail!("graphs has no {g}");
            }
        }
        let mut offset = 0;
        for l in &self.anchors.levels {
            if l.offset != offset || l.count != l.height * l.width {
                bail!("anchors level {} has offset {} and count {} for a {}x{} map; expected offset {offset}", l.name, l.offset, l.count, l.height, l.width);
            }
            if l.size != 8 * l.stride {
                bail!(
                    "anchors level {}: size {} is not 8 x stride {} (GLIP's anchors)",
                    l.name,
                    l.size,
                    l.stride
                );
            }
            offset += l.count;
        }
        if offset != self.anchors.total || offset == 0 {
            bail!(
                "anchors total is {} but the levels hold {offset}",
                self.anchors.total
            );
        }
        let [h, w] = self.preprocess.input_size;
        if h == 0 || w == 0 || self.preprocess.resize.min_size == 0 {
            bail!("preprocess sizes must be positive");
        }
        if self.text.max_text_len < 2 {
            bail!("text.max_text_len must be at least 2");
        }
        Ok(())
    }
}

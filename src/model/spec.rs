//! `model.json`, the contract between an exported model and the engine: graph files and their
//! I/O, pre-processing, text settings, the anchor grid and GLIP's post-processing constants.
//! Only the fields the engine uses are typed; the rest is kept for the record.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The contract name and version odinw writes and reads. Version 2: the image graphs take any
/// canvas (height and width dynamic multiples of 32) and every image runs on GLIP's canvas.
/// Version 1 model directories (graphs of one fixed input size) still load: their images are
/// padded to that size, as before.
pub const CONTRACT: &str = "odinw-grounding-model";
pub const CONTRACT_VERSION: u32 = 2;
/// The fixed-input-size contract version that still loads.
pub const FIXED_CANVAS_VERSION: u32 = 1;
/// The model family odinw runs (evaluation and fine-tuning); a model.json without a `family`
/// field is GLIP's (model directories written before the field mattered load unchanged).
pub const GLIP_FAMILY: &str = "glip";

fn default_family() -> String {
    GLIP_FAMILY.to_string()
}

/// Only the `family` of a model.json, read before the rest: other families' files have other
/// fields, so the family must be known before the GLIP fields are required.
#[derive(Deserialize)]
struct FamilyOnly {
    #[serde(default = "default_family")]
    family: String,
}

/// The `family` a model.json names (`glip` when it names none); `None` when the bytes are not a
/// JSON object (the full parse then says what is wrong).
pub fn family_of(model_json: &[u8]) -> Option<String> {
    serde_json::from_slice::<FamilyOnly>(model_json)
        .ok()
        .map(|f| f.family)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelSpec {
    pub contract: String,
    pub contract_version: u32,
    #[serde(default = "default_family")]
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

impl super::files::GraphFile for GraphSpec {
    fn file(&self) -> &str {
        &self.file
    }
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
    /// Each dimension: a number, or the name of a dynamic one (`"batch"`, `"32*height32"`).
    #[serde(default)]
    pub shape: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Preprocess {
    /// `[height, width]`: the size the graphs were exported at (the fixed canvas of contract
    /// v1 graphs and of the training graphs); with a dynamic canvas, images do not use it.
    pub input_size: [u32; 2],
    pub resize: Resize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// GLIP's `SIZE_DIVISIBILITY`: canvas sides are multiples of it.
    #[serde(default = "default_divisibility")]
    pub size_divisibility: u32,
    /// `"dynamic"` (v2): each image (or batch) on its own canvas; absent (v1): `input_size`.
    #[serde(default)]
    pub canvas: Option<String>,
}

fn default_divisibility() -> u32 {
    32
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
    /// Whether the image graphs take any canvas (contract v2) rather than `input_size` only.
    pub fn dynamic_canvas(&self) -> bool {
        self.contract_version >= 2 && self.preprocess.canvas.as_deref() == Some("dynamic")
    }

    /// The canvas `(width, height)` of a batch whose largest resized image is `width x height`:
    /// GLIP's `to_image_list` (each side rounded up to `size_divisibility`) with a dynamic
    /// canvas, the fixed `input_size` otherwise.
    pub fn canvas(&self, width: u32, height: u32) -> (u32, u32) {
        if self.dynamic_canvas() {
            let d = self.preprocess.size_divisibility;
            (width.div_ceil(d) * d, height.div_ceil(d) * d)
        } else {
            let [h, w] = self.preprocess.input_size;
            (w, h)
        }
    }

    /// The anchor grid of a `(width, height)` canvas: each level's feature-map size
    /// (`ceil(side / stride)`, what Swin's patch merging and the P6/P7 stride-2 convs give for a
    /// multiple of 32) and its offset among the head's concatenated outputs.
    pub fn levels_for(&self, canvas: (u32, u32)) -> Vec<Level> {
        let mut offset = 0;
        self.anchors
            .levels
            .iter()
            .map(|l| {
                let (width, height) =
                    crate::postprocess::anchors::grid_size(canvas.0, canvas.1, l.stride);
                let level = Level {
                    name: l.name.clone(),
                    stride: l.stride,
                    size: l.size,
                    height,
                    width,
                    offset,
                    count: height * width,
                };
                offset += level.count;
                level
            })
            .collect()
    }

    /// Checks what the engine relies on; each error says which field is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.contract != CONTRACT
            || !(self.contract_version == CONTRACT_VERSION
                || self.contract_version == FIXED_CANVAS_VERSION)
        {
            bail!(
                "contract is {} v{}; this odinw reads {CONTRACT} v{CONTRACT_VERSION} (and the fixed-canvas v{FIXED_CANVAS_VERSION}); re-export the model with scripts/export_glip.py",
                self.contract,
                self.contract_version
            );
        }
        if self.contract_version == CONTRACT_VERSION && !self.dynamic_canvas() {
            bail!(
                "contract v{CONTRACT_VERSION} needs preprocess.canvas \"dynamic\" (got {:?})",
                self.preprocess.canvas
            );
        }
        let d = self.preprocess.size_divisibility;
        if d == 0 || d % 32 != 0 {
            bail!("preprocess.size_divisibility {d} is not a positive multiple of 32 (GLIP's P5 stride)");
        }
        if self.family != GLIP_FAMILY {
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
        let at_input = self.levels_for((w, h));
        if let Some((l, g)) = self
            .anchors
            .levels
            .iter()
            .zip(&at_input)
            .find(|(l, g)| (l.height, l.width) != (g.height, g.width))
        {
            bail!(
                "anchors level {} is {}x{} for a {w}x{h} input; GLIP's grid is {}x{} (ceil(side / stride {}))",
                l.name,
                l.height,
                l.width,
                g.height,
                g.width,
                l.stride
            );
        }
        if self.text.max_text_len < 2 {
            bail!("text.max_text_len must be at least 2");
        }
        Ok(())
    }
}

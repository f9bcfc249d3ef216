//! A Grounding DINO or MM-Grounding-DINO model directory (`scripts/export_model.py --family
//! grounding-dino|mm-grounding-dino`): the fields of its model.json that odinw's Grounding DINO
//! path uses, checked when it is opened (the image graph's input must be the stated canvas).
use super::files::{self, GraphFile};
use crate::preprocess::grounding_dino::GdinoPreprocess;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The family names a Grounding DINO model.json states (both run the same pipeline).
pub const GROUNDING_DINO_FAMILIES: [&str; 2] = ["grounding-dino", "mm-grounding-dino"];

/// Whether `family` is one [`GdinoDir`] opens.
pub fn is_grounding_dino(family: &str) -> bool {
    GROUNDING_DINO_FAMILIES.contains(&family)
}

#[derive(Clone, Debug, Deserialize)]
pub struct GdinoSpec {
    pub family: String,
    pub graphs: BTreeMap<String, GdinoGraph>,
    pub preprocess: GdinoPreprocessSpec,
    pub text: GdinoText,
    pub postprocess: GdinoPostprocess,
    /// `fp32` unless model.json says otherwise.
    #[serde(default = "fp32")]
    pub precision: String,
}

fn fp32() -> String {
    "fp32".into()
}

#[derive(Clone, Debug, Deserialize)]
pub struct GdinoGraph {
    pub file: String,
    /// The graph's inputs as the exporter recorded them.
    #[serde(default)]
    pub inputs: Vec<GdinoInput>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GdinoInput {
    pub name: String,
    /// Each axis: a size, or a name for a dynamic one.
    pub shape: Vec<serde_json::Value>,
}

impl GraphFile for GdinoGraph {
    fn file(&self) -> &str {
        &self.file
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct GdinoPreprocessSpec {
    /// `[H, W]`: the fixed canvas the image graph takes.
    pub canvas: [u32; 2],
    pub shortest_edge: u32,
    pub longest_edge: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

#[derive(Clone, Debug, Deserialize)]
pub struct GdinoText {
    pub tokenizer: String,
    pub max_text_len: usize,
    /// `[CLS]`, `[SEP]`, `.`, `?` → ids: the tokens that split the text self-attention blocks.
    pub special_tokens: BTreeMap<String, i64>,
    #[serde(default)]
    pub caption: GdinoCaption,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GdinoCaption {
    /// mmdetection's test_cfg `chunked_size`: classes per caption (≤ 0: every class in one
    /// caption, mmdetection's default when the config does not set it).
    #[serde(default = "no_chunks")]
    pub chunked_size: i64,
}

fn no_chunks() -> i64 {
    -1
}

#[derive(Clone, Debug, Deserialize)]
pub struct GdinoPostprocess {
    /// mmdetection's `max_per_img`: detections kept per image and caption.
    pub top_k: usize,
}

/// An opened Grounding DINO model directory.
#[derive(Clone, Debug)]
pub struct GdinoDir {
    pub dir: PathBuf,
    pub spec: GdinoSpec,
}

impl GdinoDir {
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("model.json");
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let spec: GdinoSpec = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is not a valid Grounding DINO model.json",
                path.display()
            )
        })?;
        if !is_grounding_dino(&spec.family) {
            bail!(
                "{} is a model of family {:?}, not one of {GROUNDING_DINO_FAMILIES:?}",
                path.display(),
                spec.family
            );
        }
        let pre = &spec.preprocess;
        let [h, w] = pre.canvas;
        if h == 0 || w == 0 || pre.shortest_edge == 0 || pre.longest_edge < pre.shortest_edge {
            bail!(
                "{}: preprocess canvas {h}x{w}, shortest_edge {}, longest_edge {} are not usable",
                path.display(),
                pre.shortest_edge,
                pre.longest_edge
            );
        }
        if pre.std.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
            bail!("{}: preprocess.std must be positive", path.display());
        }
        if spec.postprocess.top_k == 0 {
            bail!("{}: postprocess.top_k must be at least 1", path.display());
        }
        if spec.text.max_text_len < 2 {
            bail!("{}: text.max_text_len must be at least 2", path.display());
        }
        for t in ["[CLS]", "[SEP]"] {
            if !spec.text.special_tokens.contains_key(t) {
                bail!("{}: text.special_tokens has no {t}", path.display());
            }
        }
        let model = GdinoDir {
            dir: dir.to_path_buf(),
            spec,
        };
        model.check_canvas(&path)?;
        let graphs = ["text_encoder", "image_detector"].map(|name| model.graph(name));
        files::require(&path, graphs.into_iter().collect::<Result<Vec<_>>>()?)?;
        Ok(model)
    }

    /// The image graph's recorded pixel_values shape must end in the canvas.
    fn check_canvas(&self, path: &Path) -> Result<()> {
        let [h, w] = self.spec.preprocess.canvas;
        let Some(input) = self
            .spec
            .graphs
            .get("image_detector")
            .and_then(|g| g.inputs.iter().find(|i| i.name == "pixel_values"))
        else {
            return Ok(());
        };
        let tail: Vec<Option<u64>> = input.shape.iter().skip(2).map(|v| v.as_u64()).collect();
        if tail != [Some(h as u64), Some(w as u64)] {
            bail!(
                "{}: preprocess.canvas is {h}x{w} but the image_detector's pixel_values has shape {:?}",
                path.display(),
                input.shape
            );
        }
        Ok(())
    }

    /// The pre-processing settings.
    pub fn preprocess(&self) -> GdinoPreprocess {
        let p = &self.spec.preprocess;
        GdinoPreprocess {
            canvas: p.canvas,
            shortest_edge: p.shortest_edge,
            longest_edge: p.longest_edge,
            mean: p.mean,
            std: p.std,
        }
    }

    /// The file of graph `name` (`text_encoder`, `image_detector`).
    pub fn graph(&self, name: &str) -> Result<PathBuf> {
        files::graph(&self.dir, &self.spec.graphs, name)
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join(&self.spec.text.tokenizer)
    }

    /// Every file the model consists of (for run manifests).
    pub fn files(&self) -> Vec<PathBuf> {
        files::all(&self.dir, &self.spec.graphs, &self.spec.text.tokenizer)
    }
}

//! An OWLv2 model directory (`scripts/export_model.py --family owlv2`): the fields of its
//! model.json that odinw's OWLv2 path uses, checked when it is opened.
use super::files::{self, GraphFile};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The family name an OWLv2 model.json states.
pub const OWLV2_FAMILY: &str = "owlv2";

#[derive(Clone, Debug, Deserialize)]
pub struct Owlv2Spec {
    pub family: String,
    pub graphs: BTreeMap<String, Owlv2Graph>,
    pub preprocess: Owlv2Preprocess,
    pub text: Owlv2Text,
    pub postprocess: Owlv2Postprocess,
    /// `fp32` unless model.json says otherwise.
    #[serde(default = "fp32")]
    pub precision: String,
}

fn fp32() -> String {
    "fp32".into()
}

#[derive(Clone, Debug, Deserialize)]
pub struct Owlv2Postprocess {
    /// The authors' evaluator's selection (scenic `evaluator.py`).
    pub evaluation: Owlv2Evaluation,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Owlv2Evaluation {
    /// Detections kept per image: the top k of all (patch, class) scores.
    pub top_k: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Owlv2Graph {
    pub file: String,
}

impl GraphFile for Owlv2Graph {
    fn file(&self) -> &str {
        &self.file
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Owlv2Preprocess {
    /// `[S, S]`: the square the image graph takes.
    pub input_size: [u32; 2],
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

#[derive(Clone, Debug, Deserialize)]
pub struct Owlv2Text {
    pub tokenizer: String,
    pub max_text_len: usize,
    /// The `<|startoftext|>` / `<|endoftext|>` ids.
    pub special_tokens: BTreeMap<String, i64>,
    pub prompts: Owlv2Prompts,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Owlv2Prompts {
    /// Prompt templates with one `{}` for the class name.
    pub templates: Vec<String>,
}

/// An opened OWLv2 model directory.
#[derive(Clone, Debug)]
pub struct Owlv2Dir {
    pub dir: PathBuf,
    pub spec: Owlv2Spec,
}

impl Owlv2Dir {
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("model.json");
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let spec: Owlv2Spec = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a valid OWLv2 model.json", path.display()))?;
        if spec.family != OWLV2_FAMILY {
            bail!(
                "{} is a model of family {:?}, not {OWLV2_FAMILY}",
                path.display(),
                spec.family
            );
        }
        let [h, w] = spec.preprocess.input_size;
        if h == 0 || h != w {
            bail!(
                "{}: preprocess.input_size {h}x{w} is not a positive square",
                path.display()
            );
        }
        if spec
            .preprocess
            .std
            .iter()
            .any(|&s| s <= 0.0 || !s.is_finite())
        {
            bail!("{}: preprocess.std must be positive", path.display());
        }
        if spec.postprocess.evaluation.top_k == 0 {
            bail!(
                "{}: postprocess.evaluation.top_k must be at least 1",
                path.display()
            );
        }
        if spec.text.max_text_len < 2 {
            bail!("{}: text.max_text_len must be at least 2", path.display());
        }
        if spec
            .text
            .prompts
            .templates
            .iter()
            .any(|t| t.matches("{}").count() != 1)
        {
            bail!(
                "{}: every text.prompts.templates entry needs exactly one {{}}",
                path.display()
            );
        }
        let model = Owlv2Dir {
            dir: dir.to_path_buf(),
            spec,
        };
        let graphs = ["text_encoder", "image_detector"].map(|name| model.graph(name));
        files::require(&path, graphs.into_iter().collect::<Result<Vec<_>>>()?)?;
        Ok(model)
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

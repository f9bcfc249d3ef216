//! Exported detector models: a model directory (`model.json`, the ONNX graphs, `tokenizer.json`)
//! as `scripts/export_glip.py` writes it ([`spec`]), and the demo model embedded in the binary
//! ([`embedded`]), the TensorRT optimisation profiles of its graphs ([`profile`]), and which images
//! run together on which canvas ([`canvas`]).
pub mod canvas;
pub mod embedded;
pub mod files;
pub mod grounding_dino;
pub mod io;
pub mod owlv2;
pub mod profile;
pub mod spec;

pub use spec::ModelSpec;

use anyhow::{bail, Context, Result};
use owlv2::OWLV2_FAMILY;
use std::path::{Path, PathBuf};

/// A model directory whose `model.json` has been read and checked.
#[derive(Clone, Debug)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub spec: ModelSpec,
}

impl ModelDir {
    /// `demo` (the embedded tiny model, unpacked into the cache) or a directory.
    pub fn resolve(model: &str) -> Result<Self> {
        if model == "demo" {
            return Self::open(&embedded::demo_model_dir()?);
        }
        Self::open(Path::new(model))
    }

    /// [`ModelDir::resolve`] for fine-tuning, which exists for GLIP only: another family's
    /// directory is refused as such, before anything else about it is checked.
    pub fn resolve_for_finetune(model: &str) -> Result<Self> {
        if model != "demo" {
            let path = Path::new(model).join("model.json");
            if let Some(family) = std::fs::read(&path)
                .ok()
                .and_then(|t| spec::family_of(&t))
                .filter(|f| f != spec::GLIP_FAMILY)
            {
                bail!(
                    "fine-tuning is GLIP's only: {} is a model of family {family:?}",
                    path.display()
                );
            }
        }
        Self::resolve(model)
    }

    /// The family `model` (`demo` or a directory) names in its model.json: `None` for the demo
    /// model, an absent or unreadable file (whose errors [`ModelDir::open`] reports).
    pub fn family_of(model: &str) -> Option<String> {
        if model == "demo" {
            return None;
        }
        std::fs::read(Path::new(model).join("model.json"))
            .ok()
            .and_then(|t| spec::family_of(&t))
    }

    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("model.json");
        if !path.is_file() {
            bail!(
                "{} is not a model directory: it has no model.json (export one with scripts/export_glip.py, or use --model demo)",
                dir.display()
            );
        }
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if let Some(family) = spec::family_of(&text).filter(|f| f != spec::GLIP_FAMILY) {
            bail!(
                "{} is a model of family {family:?}; this command runs only the {} family (`odinw \
                 eval` also runs {OWLV2_FAMILY}, grounding-dino and mm-grounding-dino models)",
                path.display(),
                spec::GLIP_FAMILY
            );
        }
        let spec: ModelSpec = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a valid model.json", path.display()))?;
        spec.validate()
            .with_context(|| format!("{} is not usable", path.display()))?;
        let model = ModelDir {
            dir: dir.to_path_buf(),
            spec,
        };
        files::require(&path, model.files())?;
        Ok(model)
    }

    /// The file of graph `name` (`image_backbone`, `text_encoder`, `head`).
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

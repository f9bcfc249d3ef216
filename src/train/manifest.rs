//! `<model>/train/<track>.json` (contract `odinw-train-step` v2, or the fixed-canvas v1): the
//! training graphs of one track, written by `scripts/export_train_step.py`. It names the graphs
//! (optional frozen `features` graph whose outputs are cached, the `step` graph giving loss and
//! gradients, the `predict` graph giving the head's outputs), the static batch, whether the
//! canvas is dynamic (v2: any multiple of 32 high and wide; v1: `image_size` only), and every
//! trainable parameter with its shape, learning rate and weight decay (GLIP's parameter groups).
use crate::model::ModelDir;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const STEP_CONTRACT: &str = "odinw-train-step";
pub const STEP_CONTRACT_VERSION: u32 = 2;
/// The earlier version: graphs for the fixed canvas `image_size` only.
pub const STEP_FIXED_CANVAS_VERSION: u32 = 1;

/// What is trained (GLIP's `SOLVER.TUNING_HIGHLEVEL_OVERRIDE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrainTrack {
    /// `language_prompt_v2`: a learned offset per token position; everything else frozen.
    Prompt,
    /// `linear_prob`: the head's final box, centerness and text-projection layers.
    Linear,
    /// `full`: everything but Swin's patch embedding and first stage.
    Full,
}

impl TrainTrack {
    pub fn name(self) -> &'static str {
        match self {
            TrainTrack::Prompt => "prompt",
            TrainTrack::Linear => "linear",
            TrainTrack::Full => "full",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct GraphRef {
    pub file: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub lr: f32,
    pub weight_decay: f32,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct OptimizerSpec {
    pub kind: String,
    pub betas: [f32; 2],
    pub eps: f32,
    #[serde(default)]
    pub clip_grad_norm: Option<f32>,
    pub base_lr: f32,
    pub weight_decay: f32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TrainManifest {
    pub contract: String,
    pub contract_version: u32,
    pub track: TrainTrack,
    #[serde(default)]
    pub glip_override: String,
    pub batch: usize,
    /// The size the graphs were exported (traced) at; with v1, the only canvas they take.
    pub image_size: [usize; 2],
    /// `"dynamic"` (v2): the step, predict and features graphs take any canvas whose sides
    /// are multiples of 32; absent (v1): `image_size` only.
    #[serde(default)]
    pub canvas: Option<String>,
    pub max_text_len: usize,
    pub num_anchors: usize,
    #[serde(default)]
    pub features: Option<GraphRef>,
    pub data_inputs: Vec<String>,
    pub step: GraphRef,
    pub predict: GraphRef,
    pub params_file: String,
    pub params: Vec<ParamSpec>,
    pub optimizer: OptimizerSpec,
    /// The folder the manifest was read from (graph and parameter files are relative to it).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl TrainManifest {
    /// The files a fine-tuning run's results depend on: the model's, this track's manifest
    /// and its graphs and initial parameters.
    pub fn files(&self, model: &crate::model::ModelDir) -> Vec<std::path::PathBuf> {
        let mut files = model.files();
        files.push(self.dir.join(format!("{}.json", self.track.name())));
        for file in [&self.params_file, &self.step.file, &self.predict.file] {
            files.push(self.path_of(file));
        }
        if let Some(f) = &self.features {
            files.push(self.path_of(&f.file));
        }
        files
    }

    /// `model`'s manifest for `track`, checked against the model and its files.
    pub fn load(model: &ModelDir, track: TrainTrack) -> Result<Self> {
        let dir = model.dir.join("train");
        let path = dir.join(format!("{}.json", track.name()));
        if !path.is_file() {
            bail!(
                "{} has no training graphs for the {} track ({} is missing); make them with \
                 `python scripts/export_train_step.py --model {} --track {}`",
                model.dir.display(),
                track.name(),
                path.display(),
                model.dir.display(),
                track.name()
            );
        }
        let m = Self::read(&path)?;
        if m.track != track {
            bail!(
                "{}: track is {:?}, expected {}",
                path.display(),
                m.track,
                track.name()
            );
        }
        let [h, w] = model.spec.preprocess.input_size;
        if m.image_size != [h as usize, w as usize] {
            bail!(
                "{}: image_size {:?} differs from the model's input size {:?}",
                path.display(),
                m.image_size,
                model.spec.preprocess.input_size
            );
        }
        if m.max_text_len != model.spec.text.max_text_len {
            bail!(
                "{}: max_text_len {} differs from the model's {}",
                path.display(),
                m.max_text_len,
                model.spec.text.max_text_len
            );
        }
        if m.num_anchors != model.spec.anchors.total {
            bail!(
                "{}: num_anchors {} differs from the model's {}",
                path.display(),
                m.num_anchors,
                model.spec.anchors.total
            );
        }
        Ok(m)
    }

    /// Reads and checks one manifest file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut m: TrainManifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a training-graph manifest", path.display()))?;
        let version_ok = m.contract_version == STEP_CONTRACT_VERSION
            || m.contract_version == STEP_FIXED_CANVAS_VERSION;
        if m.contract != STEP_CONTRACT || !version_ok {
            bail!(
                "{}: contract {:?} v{}, expected {STEP_CONTRACT:?} v{STEP_CONTRACT_VERSION} (or the fixed-canvas v{STEP_FIXED_CANVAS_VERSION})",
                path.display(),
                m.contract,
                m.contract_version
            );
        }
        if m.contract_version == STEP_CONTRACT_VERSION && !m.dynamic_canvas() {
            bail!(
                "{}: contract v{STEP_CONTRACT_VERSION} needs canvas \"dynamic\" (got {:?})",
                path.display(),
                m.canvas
            );
        }
        if m.batch == 0 {
            bail!("{}: batch must be at least 1", path.display());
        }
        if m.params.is_empty() {
            bail!("{}: no trainable parameters", path.display());
        }
        if m.optimizer.kind.to_lowercase() != "adamw" {
            bail!(
                "{}: optimizer {:?} is not supported (adamw is)",
                path.display(),
                m.optimizer.kind
            );
        }
        m.dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        for g in std::iter::once(&m.step)
            .chain(std::iter::once(&m.predict))
            .chain(m.features.iter())
        {
            let f = m.dir.join(&g.file);
            if !f.is_file() {
                bail!("{}: graph {} is missing", path.display(), f.display());
            }
        }
        Ok(m)
    }

    /// Whether the graphs take any canvas (v2) rather than `image_size` only.
    pub fn dynamic_canvas(&self) -> bool {
        self.contract_version >= STEP_CONTRACT_VERSION && self.canvas.as_deref() == Some("dynamic")
    }

    pub fn path_of(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The step graph's output holding the gradient of `param`.
    pub fn grad_name(param: &str) -> String {
        format!("grad:{param}")
    }
}

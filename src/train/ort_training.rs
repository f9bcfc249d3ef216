//! Backend 2 of the fine-tuning tracks: ONNX Runtime's own training API (`ort::training`), for
//! an ONNX Runtime built with `--enable_training_apis`. It runs the artifacts of
//! `scripts/make_ort_training_artifacts.py` (`ort_training.json`, `checkpoint`,
//! `training_model.onnx`, `eval_model.onnx`, `optimizer_model.onnx`): ONNX Runtime owns the
//! parameters, the gradients and AdamW; Rust feeds batches, steps, sets the learning rate and
//! reads the trained parameters back by name.
//!
//! Contract version 2 (`"canvas": "dynamic"`): the artifacts take GLIP's per-batch training
//! canvas: f3..f7's heights and widths and the targets' anchor count are symbolic dims of the
//! inputs (the loss graph computes the anchors from f3..f7's sizes); the batch and the text
//! length are fixed. [`super::ort_inputs`] builds such batches. Version 1 artifacts (one fixed
//! canvas, every dim a number) are still read: their inputs are checked against those numbers.
//!
//! Stock ONNX Runtime builds (PyPI's `onnxruntime`, 1.31) have no training API: `GetTrainingApi`
//! returns null. [`OrtTrainingBackend::open`] then fails with an error naming the library, its
//! version and the ways out; nothing panics.
use super::ort_inputs::Batch;
use crate::engine::runtime::{self, Device, Loaded};
use crate::engine::Tensor;
use anyhow::{anyhow, bail, Context, Result};
use ort::memory::Allocator;
use ort::session::Session;
use ort::training::{Checkpoint, Trainer};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name inside an artifacts folder.
pub const MANIFEST: &str = "ort_training.json";
const ARTIFACTS_CONTRACT: &str = "odinw-ort-training";
/// Version 2: dynamic canvas; version 1: one fixed canvas.
const ARTIFACTS_VERSIONS: [u32; 2] = [1, 2];

/// `ort_training.json` (contract `odinw-ort-training`), the parts the trainer reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub contract: String,
    pub contract_version: u32,
    pub track: String,
    pub batch: usize,
    /// `"dynamic"` (version 2): any canvas whose sides are multiples of the model's size
    /// divisibility; absent (version 1): the fixed `image_size`.
    #[serde(default)]
    pub canvas: Option<String>,
    /// The model's `input_size` `[H, W]` (the fixed canvas of version 1 artifacts).
    pub image_size: [u32; 2],
    pub max_text_len: usize,
    /// The DyHead tower (p3..p7, text_hidden, attention_mask -> f3..f7, text_fused).
    pub features: FeaturesGraph,
    /// The forward+loss graph the artifacts were generated from (stock ONNX Runtime runs it).
    pub loss_graph: String,
    /// The training model's inputs in order: data inputs, then targets.
    pub inputs: Vec<InputSpec>,
    /// `loss`, `loss_token`, `loss_reg`, `loss_centerness`.
    pub outputs: Vec<String>,
    pub trainable: Vec<ParamSpec>,
    pub frozen: Vec<ParamSpec>,
    pub artifacts: ArtifactFiles,
    pub optimizer: OptimizerSpec,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<Dim>,
}

/// One dim of an input: a number, or a name every input that has it shares (`f3_height`,
/// `anchors`, ...), whose value each batch sets.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Dim {
    Fixed(usize),
    Named(String),
}

#[derive(Clone, Debug, Deserialize)]
pub struct FeaturesGraph {
    pub file: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ArtifactFiles {
    pub checkpoint: String,
    pub training_model: String,
    pub eval_model: String,
    pub optimizer_model: String,
}

/// What the optimizer graph was built with (all but the learning rate are fixed in it).
#[derive(Clone, Debug, Deserialize)]
pub struct OptimizerSpec {
    pub kind: String,
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    pub clip_grad_norm: f64,
    pub base_lr: f64,
}

/// The loss outputs of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Losses {
    pub loss: f32,
    pub token: f32,
    pub reg: f32,
    pub centerness: f32,
}

/// An open training session over one artifacts folder.
pub struct OrtTrainingBackend {
    trainer: Trainer,
    manifest: Manifest,
    dir: PathBuf,
    library: Loaded,
}

impl Manifest {
    /// Reads and checks `<dir>/ort_training.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| {
            anyhow!(
                "{}: {e}; create the artifacts with scripts/make_ort_training_artifacts.py",
                path.display()
            )
        })?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not an {ARTIFACTS_CONTRACT} manifest", path.display()))?;
        if manifest.contract != ARTIFACTS_CONTRACT
            || !ARTIFACTS_VERSIONS.contains(&manifest.contract_version)
        {
            bail!(
                "{}: contract {} version {}; this odinw reads {ARTIFACTS_CONTRACT} versions {:?}",
                path.display(),
                manifest.contract,
                manifest.contract_version,
                ARTIFACTS_VERSIONS
            );
        }
        let dynamic = manifest.dynamic_canvas();
        if dynamic != (manifest.contract_version >= 2) {
            bail!(
                "{}: version {} with canvas {:?}; version 2 artifacts have a dynamic canvas, version 1 a fixed one",
                path.display(),
                manifest.contract_version,
                manifest.canvas
            );
        }
        let named = manifest
            .inputs
            .iter()
            .flat_map(|i| &i.shape)
            .any(|d| matches!(d, Dim::Named(_)));
        if named && !dynamic {
            bail!(
                "{}: fixed-canvas artifacts with symbolic input dims",
                path.display()
            );
        }
        if manifest.outputs.len() != 4 || manifest.outputs[0] != "loss" {
            bail!(
                "{}: outputs {:?}; expected loss, loss_token, loss_reg, loss_centerness",
                path.display(),
                manifest.outputs
            );
        }
        Ok(manifest)
    }

    /// Whether the artifacts take any canvas (version 2) rather than the fixed `image_size`.
    pub fn dynamic_canvas(&self) -> bool {
        self.canvas.as_deref() == Some("dynamic")
    }

    /// Checks that `inputs` are the manifest's inputs (each once, nothing else) with its element
    /// types and shapes: numbers equal, and every named dim the same size wherever it appears.
    /// Returns the named dims' sizes (`f3_height`, ..., `anchors`).
    pub fn check_inputs(&self, inputs: &[(&str, &Tensor)]) -> Result<BTreeMap<String, usize>> {
        for (name, _) in inputs {
            if !self.inputs.iter().any(|s| s.name == *name) {
                bail!("the training model has no input {name}");
            }
            if inputs.iter().filter(|(n, _)| n == name).count() > 1 {
                bail!("input {name} is given twice");
            }
        }
        let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
        for spec in &self.inputs {
            let tensor = inputs
                .iter()
                .find(|(n, _)| *n == spec.name)
                .map(|(_, t)| *t)
                .ok_or_else(|| anyhow!("input {} is missing", spec.name))?;
            let dtype = match tensor {
                Tensor::F32 { .. } => "float32",
                Tensor::I64 { .. } => "int64",
                Tensor::Bool { .. } => "bool",
            };
            let shape = tensor.shape();
            let fits = shape.len() == spec.shape.len()
                && spec.shape.iter().zip(shape).all(|(dim, &n)| match dim {
                    Dim::Fixed(d) => *d == n,
                    Dim::Named(name) => *sizes.entry(name.clone()).or_insert(n) == n,
                });
            if dtype != spec.dtype || !fits {
                bail!(
                    "input {} must be {} {:?}, got {dtype} {:?} (named dims so far: {:?})",
                    spec.name,
                    spec.dtype,
                    spec.shape,
                    shape,
                    sizes
                );
            }
        }
        Ok(sizes)
    }

    fn files(&self, dir: &Path) -> [PathBuf; 4] {
        let a = &self.artifacts;
        [
            &a.checkpoint,
            &a.training_model,
            &a.eval_model,
            &a.optimizer_model,
        ]
        .map(|f| dir.join(f))
    }
}

/// Fails unless the loaded ONNX Runtime has the training API, with a message naming the
/// library and what to do instead.
pub fn require_training_api(library: &Loaded) -> Result<()> {
    ort::training::training_api().map(|_| ()).map_err(|e| {
        anyhow!(
            "{} is ONNX Runtime {} without the training API: GetTrainingApi returned null (\"{e}\"), \
             as in every stock build. The ort-training backend needs ONNX Runtime >= 1.31 built from source \
             with --enable_training_apis (no such build is published; the last training packages were \
             1.19.2), found through ORT_DYLIB_PATH. Otherwise use the default backend: \
             --backend step-graphs",
            library.path.display(),
            library.version
        )
    })
}

impl OrtTrainingBackend {
    /// Opens the artifacts in `dir` on `device` (CPU or CUDA) and sets the manifest's base
    /// learning rate.
    pub fn open(dir: &Path, device: Device) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        let missing: Vec<String> = manifest
            .files(dir)
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{}: missing {}; rerun scripts/make_ort_training_artifacts.py",
                dir.display(),
                missing.join(", ")
            );
        }
        if device == Device::Tensorrt {
            bail!("the ort-training backend runs on cpu or cuda, not tensorrt");
        }
        let library = runtime::ensure_loaded(device)?.clone();
        require_training_api(&library)?;

        let [checkpoint, training, eval, optimizer] = manifest.files(dir);
        let ckpt = Checkpoint::load(&checkpoint)
            .with_context(|| format!("loading {}", checkpoint.display()))?;
        let mut builder = Session::builder(runtime::environment()?)?;
        if device == Device::Cuda {
            builder = builder
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(ort::Error::<()>::from)?;
        }
        let trainer = Trainer::new(
            builder,
            Allocator::default(),
            ckpt,
            &training,
            &eval,
            &optimizer,
        )
        .with_context(|| format!("creating a training session from {}", dir.display()))?;
        let mut backend = OrtTrainingBackend {
            trainer,
            dir: dir.to_path_buf(),
            library,
            manifest,
        };
        let lr = backend.manifest.optimizer.base_lr as f32;
        backend.set_lr(lr)?;
        Ok(backend)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The ONNX Runtime library the session runs on.
    pub fn library(&self) -> &Loaded {
        &self.library
    }

    /// Forward, loss and backward on one batch; gradients accumulate until
    /// [`lazy_reset_grad`](Self::lazy_reset_grad). `inputs` names every manifest input.
    pub fn train_step(&mut self, inputs: &[(&str, &Tensor)]) -> Result<Losses> {
        self.step(inputs, true)
    }

    /// [`train_step`](Self::train_step) on a batch built by
    /// [`OrtInputs::batch`](super::ort_inputs::OrtInputs::batch).
    pub fn train_batch(&mut self, batch: &Batch) -> Result<Losses> {
        self.train_step(&batch.named())
    }

    /// Forward and loss only (the eval model), with the current parameters.
    pub fn eval_step(&mut self, inputs: &[(&str, &Tensor)]) -> Result<Losses> {
        self.step(inputs, false)
    }

    fn step(&mut self, inputs: &[(&str, &Tensor)], train: bool) -> Result<Losses> {
        let values = self.values(inputs)?;
        let no_labels: &[ort::session::SessionInputValue] = &[];
        let outputs = if train {
            self.trainer.step(values, no_labels)
        } else {
            self.trainer.eval_step(values, no_labels)
        }
        .with_context(|| format!("running a step of {}", self.dir.display()))?;
        let read = |i: usize| -> Result<f32> {
            let name = &self.manifest.outputs[i];
            let value = outputs
                .get(name)
                .ok_or_else(|| anyhow!("{}: no output {name}", self.dir.display()))?;
            let tensor = Tensor::from_value(name, value)?;
            match tensor.as_f32()? {
                [x] => Ok(*x),
                other => bail!(
                    "output {name} has {} values, expected a scalar",
                    other.len()
                ),
            }
        };
        Ok(Losses {
            loss: read(0)?,
            token: read(1)?,
            reg: read(2)?,
            centerness: read(3)?,
        })
    }

    /// Checks names, element types and shapes against the manifest
    /// ([`Manifest::check_inputs`]); returns them in its order.
    fn values(
        &self,
        inputs: &[(&str, &Tensor)],
    ) -> Result<Vec<(Cow<'static, str>, ort::session::SessionInputValue<'static>)>> {
        self.manifest
            .check_inputs(inputs)
            .with_context(|| format!("{}: a batch that does not fit", self.dir.display()))?;
        self.manifest
            .inputs
            .iter()
            .map(|spec| {
                let tensor = inputs
                    .iter()
                    .find(|(n, _)| *n == spec.name)
                    .map(|(_, t)| *t)
                    .expect("check_inputs found every input");
                Ok((Cow::Owned(spec.name.clone()), tensor.to_value()?.into()))
            })
            .collect()
    }

    /// One AdamW update (with the artifacts' gradient clipping) from the accumulated gradients.
    pub fn optimizer_step(&mut self) -> Result<()> {
        self.trainer
            .optimizer()
            .step()
            .context("ONNX Runtime optimizer step")?;
        Ok(())
    }

    /// Zeroes the accumulated gradients before the next train step.
    pub fn lazy_reset_grad(&mut self) -> Result<()> {
        self.trainer
            .optimizer()
            .reset_grad()
            .context("ONNX Runtime LazyResetGrad")?;
        Ok(())
    }

    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        if !(lr.is_finite() && lr >= 0.0) {
            bail!("learning rate {lr} is not a finite non-negative number");
        }
        self.trainer
            .optimizer()
            .set_lr(lr)
            .context("ONNX Runtime SetLearningRate")?;
        Ok(())
    }

    pub fn lr(&self) -> Result<f32> {
        Ok(self.trainer.optimizer().lr()?)
    }

    /// The current value of a checkpoint parameter (trainable or frozen) by state-dict name.
    pub fn parameter(&self, name: &str) -> Result<Tensor> {
        let known = self
            .manifest
            .trainable
            .iter()
            .chain(&self.manifest.frozen)
            .any(|p| p.name == name);
        if !known {
            bail!("{}: no parameter {name}", self.dir.display());
        }
        let value = self
            .trainer
            .checkpoint()
            .get_parameter(name, &Allocator::default())
            .with_context(|| format!("reading parameter {name}"))?;
        Tensor::from_value(name, &value.into_dyn())
    }

    /// Every trainable parameter, in the manifest's order (what goes into the predict graph).
    pub fn trainable_parameters(&self) -> Result<Vec<(String, Tensor)>> {
        self.manifest
            .trainable
            .iter()
            .map(|p| Ok((p.name.clone(), self.parameter(&p.name)?)))
            .collect()
    }

    /// Writes the checkpoint (parameters, and the AdamW moments if asked) to `path`.
    pub fn save_checkpoint(&self, path: &Path, include_optimizer_state: bool) -> Result<()> {
        self.trainer
            .checkpoint()
            .save(path, include_optimizer_state)
            .with_context(|| format!("saving the checkpoint to {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_manifest(dir: &Path, contract: &str) {
        write_manifest_with(dir, contract, 2, r#""canvas": "dynamic","#, "[]");
    }

    fn write_manifest_with(dir: &Path, contract: &str, version: u32, canvas: &str, inputs: &str) {
        let text = format!(
            r#"{{"contract": "{contract}", "contract_version": {version}, "track": "linear", "batch": 2,
            {canvas} "image_size": [192, 192], "max_text_len": 48,
            "features": {{"file": "features.onnx"}}, "loss_graph": "loss_graph.onnx",
            "inputs": {inputs}, "outputs": ["loss", "loss_token", "loss_reg", "loss_centerness"],
            "trainable": [], "frozen": [],
            "artifacts": {{"checkpoint": "checkpoint", "training_model": "training_model.onnx",
                           "eval_model": "eval_model.onnx", "optimizer_model": "optimizer_model.onnx"}},
            "optimizer": {{"kind": "adamw", "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.05,
                           "clip_grad_norm": 1.0, "base_lr": 0.0001}}}}"#
        );
        std::fs::write(dir.join(MANIFEST), text).unwrap();
    }

    #[test]
    fn a_missing_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains(MANIFEST), "{err}");
        assert!(err.contains("make_ort_training_artifacts.py"), "{err}");
    }

    #[test]
    fn another_contract_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), "odinw-train-step");
        let err = format!("{:#}", Manifest::read(dir.path()).unwrap_err());
        assert!(err.contains("contract odinw-train-step"), "{err}");
    }

    const INPUTS: &str = r#"[{"name": "f3", "dtype": "float32", "shape": [2, 32, "f3_height", "f3_width"]},
        {"name": "positive", "dtype": "float32", "shape": [2, "anchors"]},
        {"name": "token_targets", "dtype": "float32", "shape": [2, "anchors", 48]}]"#;

    fn zeros(shape: &[usize]) -> Tensor {
        Tensor::F32 {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    #[test]
    fn named_dims_take_each_batch_size_and_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest_with(
            dir.path(),
            ARTIFACTS_CONTRACT,
            2,
            r#""canvas": "dynamic","#,
            INPUTS,
        );
        let m = Manifest::read(dir.path()).unwrap();
        assert!(m.dynamic_canvas());
        for (h, w, q) in [(24, 24, 769), (40, 28, 1500), (20, 36, 999)] {
            let (f3, pos, tok) = (zeros(&[2, 32, h, w]), zeros(&[2, q]), zeros(&[2, q, 48]));
            let dims = m
                .check_inputs(&[("f3", &f3), ("positive", &pos), ("token_targets", &tok)])
                .unwrap();
            assert_eq!(dims["f3_height"], h);
            assert_eq!(dims["f3_width"], w);
            assert_eq!(dims["anchors"], q);
        }
        let (f3, pos, tok) = (
            zeros(&[2, 32, 24, 24]),
            zeros(&[2, 769]),
            zeros(&[2, 770, 48]),
        );
        let err = m
            .check_inputs(&[("f3", &f3), ("positive", &pos), ("token_targets", &tok)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("token_targets") && err.contains("770"),
            "{err}"
        );
        let bad_batch = zeros(&[3, 769]);
        let err = m
            .check_inputs(&[
                ("f3", &f3),
                ("positive", &bad_batch),
                ("token_targets", &tok),
            ])
            .unwrap_err()
            .to_string();
        assert!(err.contains("input positive"), "{err}");
        let err = m.check_inputs(&[("f3", &f3)]).unwrap_err().to_string();
        assert!(err.contains("positive is missing"), "{err}");
        let err = m
            .check_inputs(&[("f3", &f3), ("f3", &f3)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn fixed_canvas_artifacts_are_read_with_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = r#"[{"name": "positive", "dtype": "float32", "shape": [2, 769]}]"#;
        write_manifest_with(dir.path(), ARTIFACTS_CONTRACT, 1, "", inputs);
        let m = Manifest::read(dir.path()).unwrap();
        assert!(!m.dynamic_canvas());
        assert!(m
            .check_inputs(&[("positive", &zeros(&[2, 769]))])
            .unwrap()
            .is_empty());
        let err = m
            .check_inputs(&[("positive", &zeros(&[2, 1500]))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("[Fixed(2), Fixed(769)]"), "{err}");
        // A version that contradicts its canvas is refused.
        write_manifest_with(
            dir.path(),
            ARTIFACTS_CONTRACT,
            1,
            r#""canvas": "dynamic","#,
            "[]",
        );
        let err = format!("{:#}", Manifest::read(dir.path()).unwrap_err());
        assert!(err.contains("version 1"), "{err}");
        write_manifest_with(dir.path(), ARTIFACTS_CONTRACT, 1, "", INPUTS);
        let err = format!("{:#}", Manifest::read(dir.path()).unwrap_err());
        assert!(err.contains("symbolic"), "{err}");
    }

    #[test]
    fn missing_artifact_files_are_listed_before_onnx_runtime_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), ARTIFACTS_CONTRACT);
        std::fs::write(dir.path().join("checkpoint"), b"x").unwrap();
        let err = match OrtTrainingBackend::open(dir.path(), Device::Cpu) {
            Ok(_) => panic!("opened a folder without models"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("training_model.onnx"), "{err}");
        assert!(err.contains("optimizer_model.onnx"), "{err}");
        assert!(!err.contains("checkpoint,"), "{err}");
    }
}

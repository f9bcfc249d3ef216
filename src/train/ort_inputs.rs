//! The inputs of the ort-training artifacts ([`super::ort_training`]) for one training batch,
//! prepared as the step-graphs backend prepares its batches ([`super::batch`]): the batch's
//! canvas is GLIP's `to_image_list(32)` canvas with version 2 artifacts and a dynamic-canvas
//! model (the fixed `input_size` otherwise), each augmented image is padded on it and run
//! through the model's image backbone and the artifacts' features graph (f3..f7, text_fused,
//! stock ONNX Runtime), and each image's ATSS targets are those of that canvas's anchor grid.
//! The result is checked against the artifacts' input contract ([`Manifest::check_inputs`]).
use super::augment::{self, AugmentPlan};
use super::batch::{self, Grid};
use super::dataset::Sample;
use super::ort_training::Manifest;
use super::targets::ImageTargets;
use super::text::TaskText;
use crate::engine::batch_axis::{repeat, stack};
use crate::engine::{Graph, SessionOptions, Tensor};
use crate::model::{ModelDir, ModelSpec};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One batch's inputs, by the artifacts' input names in their order.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `(width, height)`.
    pub canvas: (u32, u32),
    pub inputs: Vec<(String, Tensor)>,
    pub targets: Vec<ImageTargets>,
    /// The named dims of the inputs (`f3_height`, ..., `anchors`; none for fixed-canvas artifacts).
    pub dims: BTreeMap<String, usize>,
}

impl Batch {
    /// The inputs as the backend's steps take them.
    pub fn named(&self) -> Vec<(&str, &Tensor)> {
        self.inputs.iter().map(|(n, t)| (n.as_str(), t)).collect()
    }
}

/// The frozen front of the linear track for the artifacts: the model's image backbone and text
/// encoder, and the artifacts' features graph.
pub struct OrtInputs {
    manifest: Manifest,
    spec: ModelSpec,
    backbone: Graph,
    text_encoder: Graph,
    features: Graph,
    text_hidden: Option<Tensor>,
    grids: HashMap<(u32, u32), Grid>,
}

impl OrtInputs {
    /// Opens the graphs for the artifacts in `dir` (their `ort_training.json`) of `model`.
    pub fn open(model: &ModelDir, dir: &Path, opts: &SessionOptions) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        if manifest.max_text_len != model.spec.text.max_text_len
            || manifest.image_size != model.spec.preprocess.input_size
        {
            bail!(
                "{}: artifacts for text length {} and input size {:?}, the model {} has {} and {:?}",
                dir.display(),
                manifest.max_text_len,
                manifest.image_size,
                model.dir.display(),
                model.spec.text.max_text_len,
                model.spec.preprocess.input_size
            );
        }
        let features = dir.join(&manifest.features.file);
        let open = |path: &Path| {
            Graph::open(path, opts).with_context(|| format!("loading {}", path.display()))
        };
        Ok(OrtInputs {
            backbone: open(&model.graph("image_backbone")?)?,
            text_encoder: open(&model.graph("text_encoder")?)?,
            features: open(&features)?,
            spec: model.spec.clone(),
            manifest,
            text_hidden: None,
            grids: HashMap::new(),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether batches go on GLIP's per-batch canvas: version 2 artifacts and a dynamic-canvas
    /// model (as the step-graphs trainer decides for its graphs).
    pub fn dynamic_canvas(&self) -> bool {
        self.manifest.dynamic_canvas() && self.spec.dynamic_canvas()
    }

    /// Encodes the task's prompt once.
    pub fn set_text(&mut self, text: &TaskText) -> Result<()> {
        self.text_hidden = Some(text.encode(&mut self.text_encoder)?);
        Ok(())
    }

    /// The canvas `(width, height)` of a batch of `items`.
    pub fn canvas(&self, items: &[(&Sample, AugmentPlan)]) -> (u32, u32) {
        let sizes: Vec<(u32, u32)> = items
            .iter()
            .map(|(s, plan)| {
                augment::resized_size(s.image.width, s.image.height, plan, &self.spec.preprocess)
            })
            .collect();
        batch::training_canvas(&self.spec, &sizes, self.dynamic_canvas())
    }

    /// The inputs of one training step on `items` (exactly the artifacts' batch size), each
    /// sample augmented by its plan, `text` the task's prompt ([`OrtInputs::set_text`] first).
    pub fn batch(&mut self, text: &TaskText, items: &[(&Sample, AugmentPlan)]) -> Result<Batch> {
        let b = self.manifest.batch;
        if items.len() != b {
            bail!(
                "a training step of these artifacts takes exactly {b} samples, got {}",
                items.len()
            );
        }
        let hidden = self
            .text_hidden
            .as_ref()
            .ok_or_else(|| anyhow!("set_text was not called before a batch"))?;
        let canvas = self.canvas(items);
        if !self.grids.contains_key(&canvas) {
            self.grids.insert(canvas, batch::grid(&self.spec, canvas));
        }
        let grid = &self.grids[&canvas];
        let mut images = Vec::with_capacity(b);
        let mut targets = Vec::with_capacity(b);
        for (sample, plan) in items {
            let (image, resized) = batch::canvas_image(&self.spec, sample, plan, canvas)?;
            targets.push(batch::image_targets(
                &self.spec, text, sample, plan, resized, grid,
            )?);
            images.push(image);
        }
        let images = stack(&images.iter().collect::<Vec<_>>())?;
        let levels = self.backbone.run(&[("images", &images)])?;
        let mut feed: Vec<(String, Tensor)> = levels;
        feed.push(("text_hidden".into(), repeat(hidden, b)?));
        feed.push(("attention_mask".into(), repeat(&text.attention_mask, b)?));
        let named: Vec<(&str, &Tensor)> = feed.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut inputs = self.features.run(&named)?;
        inputs.push(("attention_mask".into(), repeat(&text.attention_mask, b)?));
        let refs: Vec<&ImageTargets> = targets.iter().collect();
        inputs.extend(batch::target_tensors(&refs, self.manifest.max_text_len)?);

        let dims = self
            .manifest
            .check_inputs(
                &inputs
                    .iter()
                    .map(|(n, t)| (n.as_str(), t))
                    .collect::<Vec<_>>(),
            )
            .with_context(|| format!("a batch on a {}x{} canvas", canvas.1, canvas.0))?;
        // The features' level sizes are the grid's, so the targets' anchors are the graph's.
        let q: usize = grid.1.iter().sum();
        let f_anchors: usize = inputs
            .iter()
            .filter(|(n, _)| n.len() == 2 && n.starts_with('f'))
            .map(|(_, t)| t.shape()[2] * t.shape()[3])
            .sum();
        if f_anchors != q {
            bail!(
                "the features of a {}x{} canvas have {f_anchors} locations, its anchor grid {q}",
                canvas.1,
                canvas.0
            );
        }
        let order: Vec<&str> = self
            .manifest
            .inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        inputs.sort_by_key(|(n, _)| order.iter().position(|o| o == n));
        Ok(Batch {
            canvas,
            inputs,
            targets,
            dims,
        })
    }
}

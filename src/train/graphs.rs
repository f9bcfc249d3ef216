//! The graphs of one training track on one execution provider, and the data flow between them:
//! the frozen front (image backbone, text encoder, the `features` graph) computed once per
//! image variant and cached by the caller; the `step` graph (loss and gradients); the `predict`
//! graph (the head's outputs with the current parameters). Graphs with a static batch are fed
//! exactly `batch` items, the last chunk padded with repeats.
use super::batch::target_tensors;
use super::manifest::{TrainManifest, TrainTrack};
use super::params::Params;
use super::targets::ImageTargets;
use super::text::TaskText;
use crate::engine::batch_axis::{repeat, split_batch, stack};
use crate::engine::{DeviceTensor, Graph, Input, SessionOptions, Tensor};
use crate::model::ModelDir;
use anyhow::{anyhow, bail, Context, Result};

/// One sample's cached inputs (batch axis of one), by graph input name.
pub type SampleInputs = Vec<(String, Tensor)>;

/// The losses of one training step.
#[derive(Clone, Copy, Debug)]
pub struct Losses {
    pub loss: f32,
    pub loss_token: f32,
    pub loss_reg: f32,
    pub loss_centerness: f32,
}

/// What one training step gave: the losses and one gradient per parameter, in the manifest's
/// order (host vectors, or [`DeviceTensor`]s left in the device's memory).
#[derive(Debug)]
pub struct StepOutput<G> {
    pub losses: Losses,
    pub grads: Vec<G>,
}

pub struct TrackGraphs {
    pub manifest: TrainManifest,
    backbone: Option<Graph>,
    text_encoder: Option<Graph>,
    features: Option<Graph>,
    step: Graph,
    predict: Graph,
    text_hidden: Option<Tensor>,
}

impl TrackGraphs {
    pub fn open(model: &ModelDir, manifest: TrainManifest, opts: &SessionOptions) -> Result<Self> {
        let cached = manifest.track != TrainTrack::Full;
        let open = |file: &str, opts: &SessionOptions| {
            let path = manifest.path_of(file);
            Graph::open(&path, opts).with_context(|| format!("loading {}", path.display()))
        };
        Ok(TrackGraphs {
            backbone: if cached {
                Some(Graph::open(&model.graph("image_backbone")?, opts)?)
            } else {
                None
            },
            text_encoder: if cached {
                Some(Graph::open(&model.graph("text_encoder")?, opts)?)
            } else {
                None
            },
            features: match &manifest.features {
                Some(g) => Some(open(&g.file, opts)?),
                None => None,
            },
            step: open(&manifest.step.file, opts)?,
            predict: open(&manifest.predict.file, opts)?,
            text_hidden: None,
            manifest,
        })
    }

    pub fn batch(&self) -> usize {
        self.manifest.batch
    }

    /// Encodes the task's prompt once (cached tracks).
    pub fn set_text(&mut self, text: &TaskText) -> Result<()> {
        if let Some(enc) = self.text_encoder.as_mut() {
            self.text_hidden = Some(text.encode(enc)?);
        }
        Ok(())
    }

    fn hidden(&self) -> Result<&Tensor> {
        self.text_hidden
            .as_ref()
            .ok_or_else(|| anyhow!("set_text was not called before the features were asked for"))
    }

    /// The cacheable inputs of samples given as normalised `[1,3,H,W]` canvases.
    pub fn sample_inputs(
        &mut self,
        canvases: &[Tensor],
        text: &TaskText,
    ) -> Result<Vec<SampleInputs>> {
        if self.manifest.track == TrainTrack::Full {
            return Ok(canvases
                .iter()
                .map(|c| vec![("images".to_string(), c.clone())])
                .collect());
        }
        let b = self.batch();
        let mut out = Vec::with_capacity(canvases.len());
        for chunk in canvases.chunks(b) {
            let refs: Vec<&Tensor> = chunk.iter().collect();
            let images = stack(&refs)?;
            let backbone = self
                .backbone
                .as_mut()
                .expect("cached tracks have a backbone");
            let feats = backbone.run(&[("images", &images)])?;
            let per: Vec<SampleInputs> = match self.features.as_mut() {
                None => per_sample(&feats, chunk.len())?,
                Some(features) => {
                    let hidden = self
                        .text_hidden
                        .as_ref()
                        .ok_or_else(|| anyhow!("set_text was not called"))?;
                    let mut named: Vec<(String, Tensor)> = Vec::new();
                    for (n, t) in &feats {
                        named.push((n.clone(), pad_batch(t, b)?));
                    }
                    named.push(("text_hidden".into(), repeat(hidden, b)?));
                    named.push(("attention_mask".into(), repeat(&text.attention_mask, b)?));
                    let inputs: Vec<(&str, &Tensor)> =
                        named.iter().map(|(n, t)| (n.as_str(), t)).collect();
                    let f = features.run(&inputs)?;
                    per_sample(&f, chunk.len())?
                }
            };
            out.extend(per);
        }
        Ok(out)
    }

    /// The data inputs of a batch of (at most `batch`) samples, padded with repeats.
    fn data_inputs(
        &self,
        samples: &[&SampleInputs],
        text: &TaskText,
    ) -> Result<Vec<(String, Tensor)>> {
        let b = self.batch();
        if samples.is_empty() || samples.len() > b {
            bail!("a batch needs 1..={b} samples, got {}", samples.len());
        }
        let padded: Vec<&SampleInputs> =
            (0..b).map(|i| samples[i.min(samples.len() - 1)]).collect();
        let mut out = Vec::new();
        for name in &self.manifest.data_inputs {
            let t = match name.as_str() {
                "attention_mask" => repeat(&text.attention_mask, b)?,
                "input_ids" => repeat(&text.input_ids, b)?,
                "text_hidden" if self.features.is_none() => repeat(self.hidden()?, b)?,
                _ => {
                    let parts = padded
                        .iter()
                        .map(|s| {
                            s.iter()
                                .find(|(n, _)| n == name)
                                .map(|(_, t)| t)
                                .ok_or_else(|| anyhow!("no cached input {name} for a sample"))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    stack(&parts)?
                }
            };
            out.push((name.clone(), t));
        }
        Ok(out)
    }

    /// The step graph's inputs other than the parameters: the batch's data and its targets.
    fn step_feed(
        &self,
        samples: &[&SampleInputs],
        text: &TaskText,
        targets: &[&ImageTargets],
    ) -> Result<Vec<(String, Tensor)>> {
        let b = self.batch();
        if samples.len() != b || targets.len() != b {
            bail!(
                "a training step takes exactly {b} samples (the graph's batch), got {}",
                samples.len()
            );
        }
        // The canvas's anchor count (a fixed-canvas graph's is the manifest's).
        let q = targets.first().map_or(0, |tg| tg.positive.len());
        if !self.manifest.dynamic_canvas() && q != self.manifest.num_anchors {
            bail!(
                "targets for {q} anchors; the fixed-canvas graphs have {}",
                self.manifest.num_anchors
            );
        }
        let mut named = self.data_inputs(samples, text)?;
        named.extend(target_tensors(targets, self.manifest.max_text_len)?);
        Ok(named)
    }

    /// One forward/backward pass: the loss and the gradient of every parameter.
    pub fn step(
        &mut self,
        params: &Params,
        samples: &[&SampleInputs],
        text: &TaskText,
        targets: &[&ImageTargets],
    ) -> Result<StepOutput<Vec<f32>>> {
        let mut named = params.tensors();
        named.extend(self.step_feed(samples, text, targets)?);
        let inputs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut outputs = self.step.run(&inputs)?;
        let losses = losses(|name| take_output(&mut outputs, name))?;
        let grads = params
            .specs
            .iter()
            .map(|s| {
                let g = take_output(&mut outputs, &TrainManifest::grad_name(&s.name))?;
                check_grad(&s.name, g.shape(), s.numel())?;
                match g {
                    Tensor::F32 { data, .. } => Ok(data),
                    _ => bail!("the gradient of {} is not f32", s.name),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StepOutput { losses, grads })
    }

    /// [`TrackGraphs::step`] with the parameters already in the device's memory; the gradients
    /// stay there.
    pub fn step_on_device(
        &mut self,
        params: &[DeviceTensor],
        samples: &[&SampleInputs],
        text: &TaskText,
        targets: &[&ImageTargets],
    ) -> Result<StepOutput<DeviceTensor>> {
        let feed = self.step_feed(samples, text, targets)?;
        let inputs = bound_inputs(&self.manifest, params, &feed)?;
        let mut outputs = self.step.run_on_device(&inputs)?;
        let losses = losses(|name| take_output(&mut outputs, name)?.to_host())?;
        let grads = self
            .manifest
            .params
            .iter()
            .map(|s| {
                let g = take_output(&mut outputs, &TrainManifest::grad_name(&s.name))?;
                check_grad(&s.name, g.shape(), s.numel())?;
                Ok(g)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StepOutput { losses, grads })
    }

    /// The head's outputs for up to `batch` samples with `params` (rows past the samples are
    /// padding).
    pub fn predict(
        &mut self,
        params: &Params,
        samples: &[&SampleInputs],
        text: &TaskText,
    ) -> Result<Vec<(String, Tensor)>> {
        let mut named = params.tensors();
        named.extend(self.data_inputs(samples, text)?);
        let inputs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        self.predict.run(&inputs)
    }

    /// [`TrackGraphs::predict`] with the parameters in the device's memory.
    pub fn predict_on_device(
        &mut self,
        params: &[DeviceTensor],
        samples: &[&SampleInputs],
        text: &TaskText,
    ) -> Result<Vec<(String, Tensor)>> {
        let feed = self.data_inputs(samples, text)?;
        let inputs = bound_inputs(&self.manifest, params, &feed)?;
        let names = self.predict.output_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.predict.run_to_host(&inputs, &names)
    }
}

/// Device parameters by the manifest's names, then host inputs.
pub(crate) fn bound_inputs<'a>(
    manifest: &'a TrainManifest,
    params: &'a [DeviceTensor],
    feed: &'a [(String, Tensor)],
) -> Result<Vec<(&'a str, Input<'a>)>> {
    if params.len() != manifest.params.len() {
        bail!(
            "{} parameter tensors for the {} of the manifest",
            params.len(),
            manifest.params.len()
        );
    }
    let mut inputs: Vec<(&str, Input)> = manifest
        .params
        .iter()
        .zip(params)
        .map(|(s, p)| (s.name.as_str(), Input::Device(p)))
        .collect();
    inputs.extend(feed.iter().map(|(n, t)| (n.as_str(), Input::Host(t))));
    Ok(inputs)
}

/// The step graph's four loss scalars, fetched by name.
fn losses(mut get: impl FnMut(&str) -> Result<Tensor>) -> Result<Losses> {
    let mut scalar = |name: &str| -> Result<f32> {
        get(name)?
            .as_f32()?
            .first()
            .copied()
            .ok_or_else(|| anyhow!("step output {name} is empty"))
    };
    Ok(Losses {
        loss: scalar("loss")?,
        loss_token: scalar("loss_token")?,
        loss_reg: scalar("loss_reg")?,
        loss_centerness: scalar("loss_centerness")?,
    })
}

fn check_grad(name: &str, shape: &[usize], numel: usize) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != numel {
        bail!("gradient of {name} has {n} values, expected {numel}");
    }
    Ok(())
}

/// Removes the output called `name`.
pub(crate) fn take_output<T>(outputs: &mut Vec<(String, T)>, name: &str) -> Result<T> {
    let i = outputs
        .iter()
        .position(|(n, _)| n == name)
        .ok_or_else(|| anyhow!("the graph has no output {name}"))?;
    Ok(outputs.swap_remove(i).1)
}

/// Per-sample slices of every output, for the first `n` items.
fn per_sample(outputs: &[(String, Tensor)], n: usize) -> Result<Vec<SampleInputs>> {
    let mut out: Vec<SampleInputs> = vec![Vec::new(); n];
    for (name, t) in outputs {
        for (i, part) in split_batch(t)?.into_iter().take(n).enumerate() {
            out[i].push((name.clone(), part));
        }
    }
    Ok(out)
}

/// `t` padded to `b` items along the batch axis by repeating its last item.
fn pad_batch(t: &Tensor, b: usize) -> Result<Tensor> {
    let parts = split_batch(t)?;
    if parts.len() >= b {
        return Ok(t.clone());
    }
    let refs: Vec<&Tensor> = (0..b).map(|i| &parts[i.min(parts.len() - 1)]).collect();
    stack(&refs)
}

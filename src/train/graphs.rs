//! The graphs of one training track on one execution provider, and the data flow between them:
//! the frozen front (image backbone, text encoder, the `features` graph) computed once per
//! image variant and cached by the caller; the `step` graph (loss and gradients); the `predict`
//! graph (the head's outputs with the current parameters). Graphs with a static batch are fed
//! exactly `batch` items, the last chunk padded with repeats.
use super::manifest::{TrainManifest, TrainTrack};
use super::params::Params;
use super::targets::ImageTargets;
use super::text::TaskText;
use crate::engine::batch_axis::{repeat, split_batch, stack};
use crate::engine::{Device, Graph, SessionOptions, Tensor};
use crate::model::ModelDir;
use anyhow::{anyhow, bail, Context, Result};

/// One sample's cached inputs (batch axis of one), by graph input name.
pub type SampleInputs = Vec<(String, Tensor)>;

/// What one training step gave.
#[derive(Clone, Debug)]
pub struct StepOutput {
    pub loss: f32,
    pub loss_token: f32,
    pub loss_reg: f32,
    pub loss_centerness: f32,
    /// One gradient per parameter, in the manifest's order.
    pub grads: Vec<Vec<f32>>,
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
        // The full track's gradients go through ScatterND(reduction=add), which ONNX Runtime's
        // CPU kernel parallelises without synchronisation (microsoft/onnxruntime#18048): wrong,
        // run-to-run different sums with several threads. One thread keeps them exact.
        let mut step_opts = opts.clone();
        if manifest.track == TrainTrack::Full && step_opts.device == Device::Cpu {
            step_opts.threads = 1;
        }
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
            step: open(&manifest.step.file, &step_opts)?,
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
            let out = enc.run(&[
                ("input_ids", &text.input_ids),
                ("attention_mask", &text.attention_mask),
            ])?;
            let hidden = out
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("the text encoder has no output"))?
                .1;
            self.text_hidden = Some(hidden);
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

    /// One forward/backward pass: the loss and the gradient of every parameter.
    pub fn step(
        &mut self,
        params: &Params,
        samples: &[&SampleInputs],
        text: &TaskText,
        targets: &[&ImageTargets],
    ) -> Result<StepOutput> {
        let b = self.batch();
        if samples.len() != b || targets.len() != b {
            bail!(
                "a training step takes exactly {b} samples (the graph's batch), got {}",
                samples.len()
            );
        }
        let q = self.manifest.num_anchors;
        let t = self.manifest.max_text_len;
        let mut positive = Vec::with_capacity(b * q);
        let mut reg = Vec::with_capacity(b * q * 4);
        let mut ctr = Vec::with_capacity(b * q);
        let mut tokens = Vec::with_capacity(b * q * t);
        for tg in targets {
            if tg.positive.len() != q || tg.tokens.len() != q * t {
                bail!(
                    "targets for {} anchors x {} tokens, the graphs have {q} x {t}",
                    tg.positive.len(),
                    tg.tokens.len() / tg.positive.len().max(1)
                );
            }
            positive.extend_from_slice(&tg.positive);
            reg.extend_from_slice(&tg.reg);
            ctr.extend_from_slice(&tg.centerness);
            tokens.extend_from_slice(&tg.tokens);
        }
        let mut named = params.tensors();
        named.extend(self.data_inputs(samples, text)?);
        named.push((
            "positive".into(),
            Tensor::F32 {
                shape: vec![b, q],
                data: positive,
            },
        ));
        named.push((
            "reg_targets".into(),
            Tensor::F32 {
                shape: vec![b, q, 4],
                data: reg,
            },
        ));
        named.push((
            "centerness_targets".into(),
            Tensor::F32 {
                shape: vec![b, q],
                data: ctr,
            },
        ));
        named.push((
            "token_targets".into(),
            Tensor::F32 {
                shape: vec![b, q, t],
                data: tokens,
            },
        ));
        let inputs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let outputs = self.step.run(&inputs)?;
        let scalar = |name: &str| -> Result<f32> {
            let t = find(&outputs, name)?;
            t.as_f32()?
                .first()
                .copied()
                .ok_or_else(|| anyhow!("step output {name} is empty"))
        };
        let grads = params
            .specs
            .iter()
            .map(|s| {
                let g = find(&outputs, &TrainManifest::grad_name(&s.name))?.as_f32()?;
                if g.len() != s.numel() {
                    bail!(
                        "gradient of {} has {} values, expected {}",
                        s.name,
                        g.len(),
                        s.numel()
                    );
                }
                Ok(g.to_vec())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StepOutput {
            loss: scalar("loss")?,
            loss_token: scalar("loss_token")?,
            loss_reg: scalar("loss_reg")?,
            loss_centerness: scalar("loss_centerness")?,
            grads,
        })
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
}

fn find<'a>(outputs: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor> {
    outputs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| anyhow!("the graph has no output {name}"))
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

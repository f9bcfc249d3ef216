//! Training state kept where the execution provider computes (GPU memory under CUDA): the
//! trainable parameters and AdamW's moments as device tensors, updated by two small
//! model-independent graphs (`models/optim/`, written by `scripts/make_optimizer_graphs.py`)
//! run once per tensor through I/O binding. A step then moves only the batch's inputs and
//! targets to the device and four loss scalars plus one norm per tensor back; parameters,
//! gradients and moments stay put. The updates are the host [`AdamW`]'s, in the same f32
//! operation order, and the host optimizer keeps the step count and learning rates; the
//! tensors come back to the host only for checkpoints ([`OnDevice::download`]).
use super::graphs::take_output;
use super::optimizer::{clip_coefficient, combine_norms, AdamW};
use super::params::Params;
use crate::engine::{Device, DeviceTensor, Graph, Input, SessionOptions, Tensor};
use anyhow::{anyhow, bail, Result};

const GRAD_NORM: &[u8] = include_bytes!("../../models/optim/grad_norm.onnx");
const ADAMW_UPDATE: &[u8] = include_bytes!("../../models/optim/adamw_update.onnx");

/// Parameters and AdamW moments in the device's memory.
pub struct OnDevice {
    norm: Graph,
    update: Graph,
    names: Vec<String>,
    params: Vec<DeviceTensor>,
    m: Vec<DeviceTensor>,
    v: Vec<DeviceTensor>,
}

impl OnDevice {
    /// Uploads `params` and the moments of `adamw` (zeros before its first step).
    pub fn upload(opts: &SessionOptions, params: &Params, adamw: &AdamW) -> Result<Self> {
        let mut opts = opts.clone();
        if opts.device == Device::Tensorrt {
            // Rank-generic graphs are CUDA's work, not TensorRT's.
            opts.device = Device::Cuda;
        }
        let norm = Graph::from_bytes("models/optim/grad_norm.onnx", GRAD_NORM, &opts)?;
        let update = Graph::from_bytes("models/optim/adamw_update.onnx", ADAMW_UPDATE, &opts)?;
        let mut state = OnDevice {
            norm,
            update,
            names: params.specs.iter().map(|s| s.name.clone()).collect(),
            params: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
        };
        let (m, v) = adamw.moments();
        for (i, (name, t)) in params.tensors().into_iter().enumerate() {
            let shape = t.shape().to_vec();
            let moment = |saved: &[Vec<f32>]| -> Result<Tensor> {
                let data = match saved.get(i) {
                    Some(x) if !x.is_empty() => x.clone(),
                    _ => vec![0.0; shape.iter().product()],
                };
                if data.len() != shape.iter().product::<usize>() {
                    bail!("{name}: the optimizer state does not fit the tensor");
                }
                Ok(Tensor::F32 {
                    shape: shape.clone(),
                    data,
                })
            };
            state.params.push(state.update.upload(&t)?);
            state.m.push(state.update.upload(&moment(m)?)?);
            state.v.push(state.update.upload(&moment(v)?)?);
        }
        Ok(state)
    }

    /// The parameters, in the manifest's order, to feed the step and predict graphs.
    pub fn params(&self) -> &[DeviceTensor] {
        &self.params
    }

    /// `clip_grad_norm_` and one AdamW step on the device; returns the gradient norm before
    /// clipping. As on the host, a step whose norm is not finite changes nothing.
    pub fn step(
        &mut self,
        adamw: &mut AdamW,
        grads: &[DeviceTensor],
        clip: Option<f32>,
    ) -> Result<f32> {
        if grads.len() != self.params.len() {
            bail!(
                "{} gradients for {} parameters",
                grads.len(),
                self.params.len()
            );
        }
        let mut norms = Vec::with_capacity(grads.len());
        for (g, name) in grads.iter().zip(&self.names) {
            let out = self
                .norm
                .run_to_host(&[("x", Input::Device(g))], &["norm"])?;
            let n = out[0].1.as_f32()?;
            norms.push(
                *n.first()
                    .ok_or_else(|| anyhow!("no gradient norm for {name}"))?,
            );
        }
        let norm = combine_norms(norms.into_iter());
        if !norm.is_finite() {
            return Ok(norm);
        }
        let coef = clip_coefficient(norm, clip);
        for (i, s) in adamw.next_step().iter().enumerate() {
            let scalars = Tensor::F32 {
                shape: vec![8],
                data: s.graph_input(coef).to_vec(),
            };
            let mut out = self.update.run_on_device(&[
                ("param", Input::Device(&self.params[i])),
                ("grad", Input::Device(&grads[i])),
                ("m", Input::Device(&self.m[i])),
                ("v", Input::Device(&self.v[i])),
                ("scalars", Input::Host(&scalars)),
            ])?;
            self.params[i] = take_output(&mut out, "param_out")?;
            self.m[i] = take_output(&mut out, "m_out")?;
            self.v[i] = take_output(&mut out, "v_out")?;
        }
        Ok(norm)
    }

    /// Copies the parameters into `params` and the moments into `adamw` (for a checkpoint).
    pub fn download(&self, params: &mut Params, adamw: &mut AdamW) -> Result<()> {
        let host = |ts: &[DeviceTensor]| -> Result<Vec<Vec<f32>>> {
            ts.iter()
                .map(|t| match t.to_host()? {
                    Tensor::F32 { data, .. } => Ok(data),
                    _ => bail!("a training tensor on the device is not f32"),
                })
                .collect()
        };
        params.values = host(&self.params)?;
        adamw.set_moments(host(&self.m)?, host(&self.v)?)
    }
}

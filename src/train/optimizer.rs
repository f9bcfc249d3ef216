//! AdamW as `torch.optim.AdamW` computes it (protocol §8.1/§8.3), one parameter group per
//! tensor with its own learning rate and weight decay, after `clip_grad_norm_` on the global L2
//! norm of all gradients.
//!
//! Per element, in f32 and torch's order, with the scalars computed in f64 (Python floats):
//! `p *= 1 − lr·wd`; `m = m + (1 − β1)(g − m)` (`lerp_`); `v = v·β2 + (1 − β2)·g·g`;
//! `p += −(lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)`. Clipping first computes
//! `‖g‖ = √Σ‖g_i‖²` and multiplies every gradient by `min(max_norm / (‖g‖ + 1e-6), 1)`.
//! A step whose gradient norm is not finite changes nothing (not even the step count), as
//! GLIP's `GradScaler` skips such steps under AMP.
//!
//! The state (step count, current learning rates, `m` and `v`) saves to one file, written
//! atomically: `odinw-adamw\n`, a little-endian u64 header length, a JSON header, then per
//! tensor its `m` and `v` as little-endian f32.
use crate::util::fs::write_atomic_with;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{BufReader, Read, Write};
use std::path::Path;

/// One trainable tensor's optimizer settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamGroup {
    pub name: String,
    pub lr: f32,
    pub weight_decay: f32,
}

/// AdamW over a fixed list of tensors (the manifest's `params` order).
#[derive(Clone, Debug)]
pub struct AdamW {
    groups: Vec<ParamGroup>,
    /// The learning rate in use per group (Python floats in torch).
    lrs: Vec<f64>,
    betas: (f32, f32),
    eps: f32,
    step: u64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

/// Tensors longer than this are updated in parallel chunks of this size.
const CHUNK: usize = 1 << 16;

const MAGIC: &[u8] = b"odinw-adamw\n";
const STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    step: u64,
    betas: (f32, f32),
    eps: f32,
    lrs: Vec<f64>,
    tensors: Vec<TensorHeader>,
}

#[derive(Serialize, Deserialize)]
struct TensorHeader {
    name: String,
    len: usize,
}

impl AdamW {
    /// An optimizer with fresh state (moments allocated at the first step).
    pub fn new(groups: Vec<ParamGroup>, betas: (f32, f32), eps: f32) -> Self {
        let lrs = groups.iter().map(|g| decimal_f64(g.lr)).collect();
        let n = groups.len();
        AdamW {
            groups,
            lrs,
            betas,
            eps,
            step: 0,
            m: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
        }
    }

    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The learning rate in use per group.
    pub fn lrs(&self) -> &[f64] {
        &self.lrs
    }

    /// Sets every group's learning rate to its base `lr` times `s`.
    pub fn set_lr_scale(&mut self, s: f32) {
        for (lr, g) in self.lrs.iter_mut().zip(&self.groups) {
            *lr = decimal_f64(g.lr) * decimal_f64(s);
        }
    }

    /// Sets the learning rate per group (e.g. from [`super::schedule`]).
    pub fn set_lrs(&mut self, lrs: &[f64]) -> Result<()> {
        if lrs.len() != self.groups.len() {
            bail!(
                "{} learning rates for {} parameter groups",
                lrs.len(),
                self.groups.len()
            );
        }
        self.lrs.copy_from_slice(lrs);
        Ok(())
    }

    /// [`AdamW::try_step`] for inputs the caller has already made consistent; panics with the
    /// reason otherwise (shapes that disagree are a bug in the caller).
    pub fn step(
        &mut self,
        params: &mut [Vec<f32>],
        grads: &mut [Vec<f32>],
        clip: Option<f32>,
    ) -> f32 {
        match self.try_step(params, grads, clip) {
            Ok(norm) => norm,
            Err(e) => panic!("AdamW step: {e:#}"),
        }
    }

    /// Clips `grads` to a global L2 norm of `clip` (if given), then updates `params` in place.
    /// Returns the gradient norm before clipping (computed even without `clip`). When that norm
    /// is not finite, nothing is updated.
    pub fn try_step(
        &mut self,
        params: &mut [Vec<f32>],
        grads: &mut [Vec<f32>],
        clip: Option<f32>,
    ) -> Result<f32> {
        self.check(params, grads)?;
        let norm = global_norm(grads);
        if !norm.is_finite() {
            return Ok(norm);
        }
        if clip.is_some() {
            let coef = clip_coefficient(norm, clip);
            for g in grads.iter_mut() {
                g.par_iter_mut()
                    .with_min_len(CHUNK)
                    .for_each(|x| *x *= coef);
            }
        }
        let scalars = self.next_step();
        for (i, s) in scalars.iter().enumerate() {
            if self.m[i].is_empty() && !params[i].is_empty() {
                self.m[i] = vec![0.0; params[i].len()];
                self.v[i] = vec![0.0; params[i].len()];
            }
            let (p, g) = (&mut params[i], &grads[i]);
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| s.update(p, g, m, v));
        }
        Ok(norm)
    }

    /// Counts a step and returns each group's scalars for it (for updates done elsewhere, such
    /// as the optimizer graphs of [`super::on_device`]).
    pub(crate) fn next_step(&mut self) -> Vec<Scalars> {
        self.step += 1;
        let t = self.step as f64;
        let (b1, b2) = (decimal_f64(self.betas.0), decimal_f64(self.betas.1));
        self.lrs
            .iter()
            .zip(&self.groups)
            .map(|(&lr, g)| Scalars {
                decay: (1.0 - lr * decimal_f64(g.weight_decay)) as f32,
                one_minus_b1: (1.0 - b1) as f32,
                b2: self.betas.1,
                one_minus_b2: (1.0 - b2) as f32,
                bc2_sqrt: (1.0 - b2.powf(t)).sqrt() as f32,
                neg_step_size: (-(lr / (1.0 - b1.powf(t)))) as f32,
                eps: self.eps,
            })
            .collect()
    }

    /// The first and second moments per tensor (empty before the first step).
    pub(crate) fn moments(&self) -> (&[Vec<f32>], &[Vec<f32>]) {
        (&self.m, &self.v)
    }

    /// Replaces the moments (each empty, or as long as its tensor).
    pub(crate) fn set_moments(&mut self, m: Vec<Vec<f32>>, v: Vec<Vec<f32>>) -> Result<()> {
        if m.len() != self.groups.len() || v.len() != self.groups.len() {
            bail!(
                "moments for {} and {} tensors, but {} parameter groups",
                m.len(),
                v.len(),
                self.groups.len()
            );
        }
        self.m = m;
        self.v = v;
        Ok(())
    }

    fn check(&self, params: &[Vec<f32>], grads: &[Vec<f32>]) -> Result<()> {
        let n = self.groups.len();
        if params.len() != n || grads.len() != n {
            bail!(
                "{} parameter tensors and {} gradients for {n} parameter groups",
                params.len(),
                grads.len()
            );
        }
        for (i, g) in self.groups.iter().enumerate() {
            if grads[i].len() != params[i].len() {
                bail!(
                    "{}: gradient of {} values for a tensor of {}",
                    g.name,
                    grads[i].len(),
                    params[i].len()
                );
            }
            if !self.m[i].is_empty() && self.m[i].len() != params[i].len() {
                bail!(
                    "{}: the optimizer state holds {} values but the tensor has {}",
                    g.name,
                    self.m[i].len(),
                    params[i].len()
                );
            }
        }
        Ok(())
    }

    /// Writes the state (step, learning rates, moments) to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let header = Header {
            version: STATE_VERSION,
            step: self.step,
            betas: self.betas,
            eps: self.eps,
            lrs: self.lrs.clone(),
            tensors: self
                .groups
                .iter()
                .zip(&self.m)
                .map(|(g, m)| TensorHeader {
                    name: g.name.clone(),
                    len: m.len(),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&header)?;
        write_atomic_with(path, |w| {
            w.write_all(MAGIC)?;
            w.write_all(&(json.len() as u64).to_le_bytes())?;
            w.write_all(&json)?;
            for (m, v) in self.m.iter().zip(&self.v) {
                write_f32s(w, m)?;
                write_f32s(w, v)?;
            }
            Ok(())
        })
    }

    /// Restores the state saved by [`AdamW::save`] into an optimizer built with the same groups
    /// (names, in order); the groups' base settings stay as constructed.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let ctx = || format!("reading optimizer state {}", path.display());
        let file = std::fs::File::open(path).with_context(ctx)?;
        let mut r = BufReader::new(file);
        let mut magic = vec![0u8; MAGIC.len()];
        r.read_exact(&mut magic).with_context(ctx)?;
        if magic != MAGIC {
            bail!("{} is not an odinw AdamW state file", path.display());
        }
        let mut len = [0u8; 8];
        r.read_exact(&mut len).with_context(ctx)?;
        let len = u64::from_le_bytes(len);
        if len > 1 << 30 {
            bail!("{}: implausible header length {len}", path.display());
        }
        let mut json = vec![0u8; len as usize];
        r.read_exact(&mut json).with_context(ctx)?;
        let h: Header = serde_json::from_slice(&json)
            .with_context(|| format!("{}: bad header", path.display()))?;
        if h.version != STATE_VERSION {
            bail!(
                "{}: state version {}; this odinw reads {STATE_VERSION}",
                path.display(),
                h.version
            );
        }
        let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        let saved: Vec<&str> = h.tensors.iter().map(|t| t.name.as_str()).collect();
        if names != saved || h.lrs.len() != names.len() {
            bail!(
                "{}: saved for parameters {saved:?}, but this optimizer has {names:?}",
                path.display()
            );
        }
        let mut m = Vec::with_capacity(names.len());
        let mut v = Vec::with_capacity(names.len());
        for t in &h.tensors {
            m.push(read_f32s(&mut r, t.len).with_context(ctx)?);
            v.push(read_f32s(&mut r, t.len).with_context(ctx)?);
        }
        if r.read(&mut [0u8; 1]).with_context(ctx)? != 0 {
            bail!("{}: trailing bytes after the state", path.display());
        }
        if h.betas != self.betas || h.eps != self.eps {
            bail!(
                "{}: saved with betas {:?} and eps {}, but this optimizer has {:?} and {}",
                path.display(),
                h.betas,
                h.eps,
                self.betas,
                self.eps
            );
        }
        self.step = h.step;
        self.lrs = h.lrs;
        self.m = m;
        self.v = v;
        Ok(())
    }
}

/// The per-step scalars of one group, rounded to f32 as torch passes them to its kernels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalars {
    decay: f32,
    one_minus_b1: f32,
    b2: f32,
    one_minus_b2: f32,
    bc2_sqrt: f32,
    neg_step_size: f32,
    eps: f32,
}

impl Scalars {
    /// The `scalars` input of `models/optim/adamw_update.onnx`, with the clipping coefficient.
    pub(crate) fn graph_input(&self, clip_coef: f32) -> [f32; 8] {
        [
            clip_coef,
            self.decay,
            self.one_minus_b1,
            self.b2,
            self.one_minus_b2,
            self.bc2_sqrt,
            self.neg_step_size,
            self.eps,
        ]
    }

    fn update(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *p *= self.decay;
            *m += self.one_minus_b1 * (g - *m);
            *v = *v * self.b2 + self.one_minus_b2 * g * g;
            let denom = v.sqrt() / self.bc2_sqrt + self.eps;
            *p += self.neg_step_size * *m / denom;
        }
    }
}

/// The f64 a Python float literal had before it was stored as `x`: the shortest decimal that
/// reads back as `x` (0.05f32 → 0.05), so torch's scalar arithmetic is reproduced from
/// f32 settings.
fn decimal_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// `clip_grad_norm_`'s total norm: the L2 norm of the per-tensor L2 norms (f64 sums, f32
/// result).
pub fn global_norm(grads: &[Vec<f32>]) -> f32 {
    combine_norms(grads.iter().map(|g| {
        let s: f64 = g
            .par_chunks(CHUNK)
            .map(|c| c.iter().map(|&x| x as f64 * x as f64).sum::<f64>())
            .sum();
        s.sqrt() as f32
    }))
}

/// The global norm from each tensor's L2 norm (f32, as torch computes them).
pub(crate) fn combine_norms(norms: impl Iterator<Item = f32>) -> f32 {
    let sq: f64 = norms.map(|n| n as f64 * n as f64).sum();
    sq.sqrt() as f32
}

/// `clip_grad_norm_`'s factor for gradients of global norm `norm` (1 without clipping).
pub(crate) fn clip_coefficient(norm: f32, clip: Option<f32>) -> f32 {
    clip.map_or(1.0, |max_norm| (max_norm / (norm + 1e-6)).min(1.0))
}

fn write_f32s(w: &mut impl Write, v: &[f32]) -> Result<()> {
    let mut buf = Vec::with_capacity(4 * CHUNK);
    for c in v.chunks(CHUNK) {
        buf.clear();
        buf.extend(c.iter().flat_map(|x| x.to_le_bytes()));
        w.write_all(&buf)?;
    }
    Ok(())
}

fn read_f32s(r: &mut impl Read, n: usize) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; 4 * CHUNK];
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK);
        r.read_exact(&mut buf[..4 * k])?;
        out.extend(
            buf[..4 * k]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        left -= k;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<ParamGroup> {
        vec![
            ParamGroup {
                name: "w".into(),
                lr: 0.05,
                weight_decay: 0.25,
            },
            ParamGroup {
                name: "bias".into(),
                lr: 0.1,
                weight_decay: 0.0,
            },
        ]
    }

    fn grads(step: usize) -> Vec<Vec<f32>> {
        let f = |i: usize| ((i * 37 + step * 11) % 17) as f32 / 17.0 - 0.4;
        vec![(0..10).map(f).collect(), (10..13).map(f).collect()]
    }

    #[test]
    fn first_step_moves_by_lr_times_sign() {
        // At t = 1, m̂ = g and v̂ = g², so the update is −lr·g/(|g| + ε) after the decay.
        let mut opt = AdamW::new(groups(), (0.9, 0.999), 1e-8);
        let mut p = vec![vec![1.0; 10], vec![0.5; 3]];
        let mut g = vec![vec![0.5; 10], vec![-2.0; 3]];
        let norm = opt.step(&mut p, &mut g, None);
        assert!((norm - (10.0f32 * 0.25 + 3.0 * 4.0).sqrt()).abs() < 1e-5);
        assert!((p[0][0] - (1.0 * (1.0 - 0.05 * 0.25) - 0.05)).abs() < 1e-6);
        assert!((p[1][0] - (0.5 + 0.1)).abs() < 1e-6);
    }

    #[test]
    fn clipping_scales_to_max_norm_and_non_finite_steps_are_skipped() {
        let mut opt = AdamW::new(groups(), (0.9, 0.999), 1e-8);
        let mut p = vec![vec![0.0; 10], vec![0.0; 3]];
        let mut g = vec![vec![3.0; 10], vec![4.0; 3]];
        let before = opt.step(&mut p, &mut g, Some(1.0));
        assert!(before > 1.0);
        assert!((global_norm(&g) - 1.0).abs() < 1e-5);
        let snapshot = p.clone();
        let mut bad = vec![vec![f32::NAN; 10], vec![0.0; 3]];
        assert!(opt.step(&mut p, &mut bad, Some(1.0)).is_nan());
        assert_eq!(p, snapshot);
        assert_eq!(opt.step_count(), 1);
    }

    #[test]
    fn shape_errors_are_reported() {
        let mut opt = AdamW::new(groups(), (0.9, 0.999), 1e-8);
        let mut p = vec![vec![0.0; 10]];
        let mut g = vec![vec![0.0; 10]];
        assert!(opt.try_step(&mut p, &mut g, None).is_err());
        let mut p = vec![vec![0.0; 10], vec![0.0; 3]];
        let mut g = vec![vec![0.0; 10], vec![0.0; 2]];
        assert!(opt.try_step(&mut p, &mut g, None).is_err());
        assert!(opt.set_lrs(&[1.0]).is_err());
    }

    #[test]
    fn save_and_load_resume_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.bin");
        let mut straight = AdamW::new(groups(), (0.9, 0.999), 1e-8);
        let mut p1 = vec![vec![0.3; 10], vec![-0.2; 3]];
        let mut p2 = p1.clone();
        for s in 0..20 {
            straight.step(&mut p1, &mut grads(s), Some(1.0));
        }
        let mut first = AdamW::new(groups(), (0.9, 0.999), 1e-8);
        for s in 0..10 {
            first.step(&mut p2, &mut grads(s), Some(1.0));
        }
        first.set_lr_scale(1.0);
        first.save(&path).unwrap();
        let mut resumed = AdamW::new(groups(), (0.9, 0.999), 1e-8);
        resumed.load(&path).unwrap();
        assert_eq!(resumed.step_count(), 10);
        for s in 10..20 {
            resumed.step(&mut p2, &mut grads(s), Some(1.0));
        }
        assert_eq!(p1, p2);

        let mut other = AdamW::new(groups()[..1].to_vec(), (0.9, 0.999), 1e-8);
        let err = other.load(&path).unwrap_err().to_string();
        assert!(err.contains("saved for parameters"), "{err}");
        std::fs::write(&path, b"nonsense").unwrap();
        assert!(resumed.load(&path).is_err());
    }
}

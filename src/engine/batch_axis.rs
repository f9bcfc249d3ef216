//! Batch-axis helpers for host tensors (the detector and the trainer): split a batch into per-sample tensors (for caching),
//! stack samples back into a batch, repeat a batch-of-one.
use crate::engine::Tensor;
use anyhow::{bail, Result};

/// Splits a `[B, ...]` tensor into `B` tensors of shape `[1, ...]`.
pub fn split_batch(t: &Tensor) -> Result<Vec<Tensor>> {
    let shape = t.shape();
    let Some(&b) = shape.first() else {
        bail!("cannot split a scalar along the batch axis");
    };
    let mut one = shape.to_vec();
    one[0] = 1;
    let n: usize = one.iter().product();
    Ok(match t {
        Tensor::F32 { data, .. } => data
            .chunks_exact(n.max(1))
            .take(b)
            .map(|c| Tensor::F32 {
                shape: one.clone(),
                data: c.to_vec(),
            })
            .collect(),
        Tensor::I64 { data, .. } => data
            .chunks_exact(n.max(1))
            .take(b)
            .map(|c| Tensor::I64 {
                shape: one.clone(),
                data: c.to_vec(),
            })
            .collect(),
        Tensor::Bool { data, .. } => data
            .chunks_exact(n.max(1))
            .take(b)
            .map(|c| Tensor::Bool {
                shape: one.clone(),
                data: c.to_vec(),
            })
            .collect(),
    })
}

/// Stacks `[1, ...]` tensors of one shape into `[n, ...]`.
pub fn stack(parts: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = parts.first() else {
        bail!("nothing to stack");
    };
    let shape = first.shape();
    if shape.first() != Some(&1) {
        bail!("expected a batch of one, got shape {shape:?}");
    }
    for p in parts {
        if p.shape() != shape {
            bail!("cannot stack shapes {:?} and {:?}", shape, p.shape());
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[0] = parts.len();
    Ok(match first {
        Tensor::F32 { .. } => {
            let mut data = Vec::new();
            for p in parts {
                data.extend_from_slice(p.as_f32()?);
            }
            Tensor::F32 {
                shape: out_shape,
                data,
            }
        }
        Tensor::I64 { .. } => {
            let mut data = Vec::new();
            for p in parts {
                match p {
                    Tensor::I64 { data: d, .. } => data.extend_from_slice(d),
                    _ => bail!("mixed tensor types"),
                }
            }
            Tensor::I64 {
                shape: out_shape,
                data,
            }
        }
        Tensor::Bool { .. } => {
            let mut data = Vec::new();
            for p in parts {
                match p {
                    Tensor::Bool { data: d, .. } => data.extend_from_slice(d),
                    _ => bail!("mixed tensor types"),
                }
            }
            Tensor::Bool {
                shape: out_shape,
                data,
            }
        }
    })
}

/// `t` (`[1, ...]`) repeated `b` times along the batch axis.
pub fn repeat(t: &Tensor, b: usize) -> Result<Tensor> {
    let mut shape = t.shape().to_vec();
    if shape.first() != Some(&1) {
        bail!("expected a batch of one, got shape {shape:?}");
    }
    shape[0] = b;
    Ok(match t {
        Tensor::F32 { data, .. } => Tensor::F32 {
            shape,
            data: data.repeat(b),
        },
        Tensor::I64 { data, .. } => Tensor::I64 {
            shape,
            data: data.repeat(b),
        },
        Tensor::Bool { data, .. } => Tensor::Bool {
            shape,
            data: data.repeat(b),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_stack_is_identity() {
        let t = Tensor::F32 {
            shape: vec![3, 2, 2],
            data: (0..12).map(|x| x as f32).collect(),
        };
        let parts = split_batch(&t).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].as_f32().unwrap(), &[4.0, 5.0, 6.0, 7.0]);
        let refs: Vec<_> = parts.iter().collect();
        assert_eq!(stack(&refs).unwrap(), t);
        let r = repeat(&parts[2], 2).unwrap();
        assert_eq!(r.shape(), &[2, 2, 2]);
        assert!(stack(&[&t]).is_err());
    }
}

//! Trainable parameters as Rust owns them: one f32 vector per [`ParamSpec`], read from and
//! written to the manifest's raw format (little-endian f32, tensors concatenated in manifest
//! order). Writes are atomic.
use super::manifest::ParamSpec;
use crate::engine::Tensor;
use crate::util::fs::write_atomic;
use anyhow::{bail, Context, Result};
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub specs: Vec<ParamSpec>,
    pub values: Vec<Vec<f32>>,
}

impl Params {
    /// Reads `path`, which must hold exactly the tensors of `specs`.
    pub fn read(path: &Path, specs: &[ParamSpec]) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let expected: usize = specs.iter().map(|s| s.numel() * 4).sum();
        if bytes.len() != expected {
            bail!(
                "{}: {} bytes, but the {} parameters need {expected} (a different model or track?)",
                path.display(),
                bytes.len(),
                specs.len()
            );
        }
        let mut values = Vec::with_capacity(specs.len());
        let mut at = 0;
        for s in specs {
            let n = s.numel();
            let v: Vec<f32> = bytes[at..at + 4 * n]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                bail!(
                    "{}: parameter {} holds a non-finite value at {i}",
                    path.display(),
                    s.name
                );
            }
            values.push(v);
            at += 4 * n;
        }
        Ok(Params {
            specs: specs.to_vec(),
            values,
        })
    }

    /// Writes the parameters atomically in the same format.
    pub fn write(&self, path: &Path) -> Result<()> {
        let total: usize = self.values.iter().map(|v| v.len() * 4).sum();
        let mut bytes = Vec::with_capacity(total);
        for v in &self.values {
            for x in v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        write_atomic(path, &bytes)
    }

    /// The parameters as named graph inputs.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.specs
            .iter()
            .zip(&self.values)
            .map(|(s, v)| {
                (
                    s.name.clone(),
                    Tensor::F32 {
                        shape: s.shape.clone(),
                        data: v.clone(),
                    },
                )
            })
            .collect()
    }

    pub fn numel(&self) -> usize {
        self.values.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, shape: &[usize]) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            shape: shape.to_vec(),
            lr: 0.1,
            weight_decay: 0.0,
        }
    }

    #[test]
    fn round_trip_and_size_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = Params {
            specs: vec![spec("a", &[2, 3]), spec("b", &[1])],
            values: vec![vec![1.0, -2.0, 3.5, 0.0, 1e-8, 7.0], vec![42.0]],
        };
        let path = dir.path().join("p.bin");
        p.write(&path).unwrap();
        assert_eq!(Params::read(&path, &p.specs).unwrap(), p);
        let err = Params::read(&path, &[spec("a", &[2, 3])]).unwrap_err();
        assert!(format!("{err:#}").contains("need 24"), "{err:#}");
    }
}

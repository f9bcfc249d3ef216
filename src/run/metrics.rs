//! `metrics.json` of one task (and seed): COCOeval's 12 `stats` (0–1 scale, `-1` where a size
//! bucket has no ground truth) and per-category AP, as the COCO evaluator writes them.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// The names of COCOeval's `stats`, in order.
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
    pub stats: Vec<f64>,
    /// Category name (or id) → AP, as the evaluator writes it.
    #[serde(default)]
    pub per_category: Map<String, Value>,
    /// Anything else the evaluator records.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Metrics {
    /// Metrics from the 12 stats alone.
    pub fn from_stats(stats: [f64; 12]) -> Self {
        Self {
            stats: stats.to_vec(),
            per_category: Map::new(),
            extra: Map::new(),
        }
    }

    /// Stat `i`, or `None` where COCOeval writes `-1` (no ground truth in that bucket).
    pub fn stat(&self, i: usize) -> Option<f64> {
        self.stats.get(i).copied().filter(|v| *v >= 0.0)
    }

    /// AP@[.5:.95], the benchmark number.
    pub fn ap(&self) -> Option<f64> {
        self.stat(0)
    }

    /// 12 finite stats, each -1 or in [0, 1].
    pub fn validate(&self) -> Result<()> {
        if self.stats.len() != 12 {
            bail!("\"stats\" has {} numbers, expected 12", self.stats.len());
        }
        for (name, v) in STAT_NAMES.iter().zip(&self.stats) {
            if !v.is_finite() || !(*v == -1.0 || (0.0..=1.0).contains(v)) {
                bail!("{name} = {v} is neither -1 nor in [0, 1]");
            }
        }
        Ok(())
    }

    /// Reads and validates `path`; errors name the file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let m: Self = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid metrics file", path.display()))?;
        m.validate()
            .with_context(|| format!("{} is not a valid metrics file", path.display()))?;
        Ok(m)
    }
}

//! `RUN/summary.json`: the numbers people quote, refreshed each time a task finishes.
//!
//! APs are on COCOeval's 0–1 scale. `mean_ap` / `median_ap` are over the `evaluated` tasks
//! (those with every expected seed); the others are listed in `missing` / `failed`, never
//! dropped silently. See [`super::aggregate`] for the exact definitions.
use super::aggregate::{Aggregate, Failure, Odinw13Stats, COLUMNS};
use super::manifest::now_unix;
use super::RunResults;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// `ok`, `partial`, `failed` or `missing`.
    pub status: String,
    pub ap: Option<f64>,
    pub ap50: Option<f64>,
    pub ap75: Option<f64>,
    /// Sample std of AP over seeds (few-shot, ≥ 2 seeds evaluated); null otherwise.
    #[serde(default)]
    pub ap_std: Option<f64>,
    /// Seed → AP (few-shot runs; empty otherwise).
    #[serde(default)]
    pub seeds: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub track: String,
    pub suite: String,
    pub split: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shots: Option<u32>,
    #[serde(default)]
    pub seeds: Vec<u64>,
    pub mean_ap: Option<f64>,
    pub median_ap: Option<f64>,
    /// Sample std over seeds of the per-seed suite mean AP.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_ap_std_over_seeds: Option<f64>,
    /// Seed → mean AP over the evaluated tasks.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub per_seed_mean_ap: BTreeMap<String, Option<f64>>,
    pub evaluated: usize,
    pub expected: usize,
    /// `evaluated == expected`.
    pub complete: bool,
    /// `task`, or `task/seed<S>` for single missing seeds.
    pub missing: Vec<String>,
    pub failed: Vec<Failure>,
    /// Task → results, in manifest order.
    pub tasks: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub odinw13: Option<Odinw13Stats>,
    pub updated_unix: u64,
}

impl Summary {
    /// The summary of a loaded run.
    pub fn compute(run: &RunResults) -> Result<Self> {
        Self::from_aggregate(&Aggregate::of(run)?)
    }

    pub fn from_aggregate(agg: &Aggregate) -> Result<Self> {
        let s = &agg.stats;
        let t = &agg.tasks;
        let names = t.column("task")?.str()?;
        let status = t.column("status")?.str()?;
        let col = |name: &str| t.column(name).and_then(|c| c.f64().cloned());
        let (ap, ap50, ap75, ap_std) = (col("AP")?, col("AP50")?, col("AP75")?, col("AP_std")?);
        debug_assert_eq!(COLUMNS[0].0, "AP");
        let mut tasks = serde_json::Map::new();
        for i in 0..t.height() {
            let name = names.get(i).unwrap_or_default();
            let seeds = agg
                .seed_aps(name)?
                .into_iter()
                .map(|(s, v)| (s.to_string(), v))
                .collect();
            let ts = TaskSummary {
                status: status.get(i).unwrap_or_default().to_string(),
                ap: ap.get(i),
                ap50: ap50.get(i),
                ap75: ap75.get(i),
                ap_std: ap_std.get(i),
                seeds,
            };
            tasks.insert(name.to_string(), serde_json::to_value(ts)?);
        }
        Ok(Self {
            track: agg.track.name().to_string(),
            suite: agg.suite.clone(),
            split: agg.split.clone(),
            shots: agg.shots,
            seeds: agg.seeds.clone(),
            mean_ap: s.mean_ap(),
            median_ap: s.median_ap(),
            mean_ap_std_over_seeds: s.mean_ap_std_over_seeds,
            per_seed_mean_ap: s
                .per_seed_mean_ap
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            evaluated: s.evaluated,
            expected: s.expected,
            complete: s.evaluated == s.expected,
            missing: s.missing.clone(),
            failed: s.failed.clone(),
            tasks,
            odinw13: agg.odinw13.clone(),
            updated_unix: now_unix(),
        })
    }
}

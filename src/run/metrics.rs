//! `metrics.json` of one task (and seed): a typed document, built once from the evaluation
//! ([`Metrics::scored`]; [`Metrics::of`] for `odinw score --json`) and serialised once. COCOeval's 12 `stats` (0–1 scale, `-1` where a
//! size bucket has no ground truth), per-category AP as GLIP's `bbox.csv`, the id-0 comparison,
//! counts, the GT loader's notes, the caption and annotation file, and for fine-tuning runs what
//! was trained ([`FinetuneRecord`]). Fields are in the order the file has always had; files
//! written by older versions (or with fields added later) still read.
use crate::eval::report::{per_category_json, Scored};
use crate::eval::{Detections, GroundTruth, STAT_NAMES};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
    pub stats: Vec<f64>,
    /// Category name (or `name (id N)` when names repeat) → `{"id", "AP", "AP50", "APs",
    /// "APm", "APl"}`, as the evaluator writes it.
    #[serde(default)]
    pub per_category: Map<String, Value>,
    /// Whether annotation ids were scored as if they started at 1 (`--fix-id0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_id0: Option<bool>,
    /// The names of `stats`, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_names: Option<Vec<String>>,
    /// Present when the GT has an annotation id 0: the stats with pycocotools' quirk and fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id0_quirk: Option<Id0Quirk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_detections: Option<u64>,
    /// Detections whose category is not in the GT (ignored by the evaluator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_detections_unknown_category: Option<u64>,
    /// What the GT loader noticed (and tolerated) in the annotation file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    /// The caption the task was prompted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// The scored annotation file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann_file: Option<String>,
    /// Fine-tuning runs: what was trained and how the checkpoint was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneRecord>,
    /// Fields this version does not know (kept when a file is read and written again).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"gt_has_annotation_id0", "differs", "stats_pycocotools", "stats_fixed"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Id0Quirk {
    pub gt_has_annotation_id0: bool,
    pub differs: bool,
    pub stats_pycocotools: Vec<f64>,
    pub stats_fixed: Vec<f64>,
}

/// How a fine-tuned unit was trained: its splits and their origin, GENERAL_COPY, the epochs
/// and the checkpoint kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneRecord {
    pub track: String,
    pub shots: u32,
    pub seed: u64,
    pub train_file: String,
    pub train_origin: String,
    pub val_split: String,
    pub val_file: String,
    pub val_origin: String,
    pub general_copy: u32,
    pub general_copy_origin: String,
    pub epochs: usize,
    pub best_epoch: Option<usize>,
    pub best_val_ap: f64,
    pub initial_val_ap: f64,
    pub stopped_early: bool,
    pub best_params: String,
}

impl Metrics {
    /// Metrics from the 12 stats alone.
    pub fn from_stats(stats: [f64; 12]) -> Self {
        Self {
            stats: stats.to_vec(),
            per_category: Map::new(),
            fix_id0: None,
            stat_names: None,
            id0_quirk: None,
            num_detections: None,
            num_detections_unknown_category: None,
            notes: None,
            caption: None,
            ann_file: None,
            finetune: None,
            extra: Map::new(),
        }
    }

    /// The metrics of `dt` scored against `gt` (`scored`): what `odinw score --json` writes.
    pub fn of(scored: &Scored, gt: &GroundTruth, dt: &Detections) -> Self {
        let per_category = match per_category_json(&scored.main) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Self {
            stats: scored.main.stats.to_vec(),
            per_category,
            fix_id0: Some(scored.fix_id0),
            stat_names: Some(STAT_NAMES.iter().map(|s| s.to_string()).collect()),
            id0_quirk: scored.id0_pair().map(|(quirk, fixed)| Id0Quirk {
                gt_has_annotation_id0: true,
                differs: quirk.stats != fixed.stats,
                stats_pycocotools: quirk.stats.to_vec(),
                stats_fixed: fixed.stats.to_vec(),
            }),
            num_detections: Some(dt.num_input() as u64),
            num_detections_unknown_category: Some(dt.num_unknown_category() as u64),
            notes: Some(gt.notes().to_vec()),
            caption: None,
            ann_file: None,
            finetune: None,
            extra: Map::new(),
        }
    }

    /// The metrics of `dt` scored against `gt` (`scored`), for `caption` on `ann_file`: a
    /// task's `metrics.json`.
    pub fn scored(
        scored: &Scored,
        gt: &GroundTruth,
        dt: &Detections,
        caption: &str,
        ann_file: &Path,
    ) -> Self {
        Self {
            caption: Some(caption.to_string()),
            ann_file: Some(ann_file.display().to_string()),
            ..Self::of(scored, gt, dt)
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

//! Aggregation of a run with polars (used by `summary.json` and by every report): the per-unit frame (task × seed × COCO stats), the
//! per-task frame (mean over seeds, spread over seeds), and the suite statistics: mean and
//! median over tasks, mean ± std over seeds, `evaluated / expected`, missing and failed units,
//! and the ODinW-13 summary of an ODinW-35 run.
//!
//! Definitions (all on COCOeval's 0–1 scale; tables print ×100):
//! - a task's value of a stat is the mean over its evaluated seeds; `-1` stats (a size bucket
//!   without ground truth) are left out of every mean, median and std;
//! - a task counts as evaluated when every expected seed has metrics; partial, failed and
//!   missing tasks are listed and left out of the suite mean and median;
//! - suite mean / median: arithmetic mean / median over evaluated tasks;
//! - std over seeds: sample std (ddof = 1) of the per-seed suite means (each the mean over
//!   evaluated tasks of that seed's AP); per task, the sample std of its per-seed AP.
use super::{RunResults, Track, UnitOutcome};
use crate::registry::{self, Suite};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// The stats a report shows: column name and index in COCOeval's `stats`.
pub const COLUMNS: [(&str, usize); 7] = [
    ("AP", 0),
    ("AP50", 1),
    ("AP75", 2),
    ("APs", 3),
    ("APm", 4),
    ("APl", 5),
    ("AR100", 8),
];

/// Delta degrees of freedom of every std over seeds (sample std).
pub const STD_DDOF: u8 = 1;

/// A unit that failed: task, seed, the recorded error (as `summary.json` lists it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub task: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seed: Option<u64>,
    pub error: String,
}

/// Suite-level statistics over the evaluated tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteStats {
    /// Tasks with every expected seed evaluated.
    pub evaluated: usize,
    /// Tasks in the run's manifest.
    pub expected: usize,
    /// Mean over evaluated tasks, per entry of [`COLUMNS`].
    pub mean: Vec<Option<f64>>,
    /// Median over evaluated tasks, per entry of [`COLUMNS`].
    pub median: Vec<Option<f64>>,
    /// Per seed: the mean AP over evaluated tasks (few-shot runs).
    pub per_seed_mean_ap: Vec<(u64, Option<f64>)>,
    /// Sample std of `per_seed_mean_ap` (few-shot runs with ≥ 2 seeds).
    pub mean_ap_std_over_seeds: Option<f64>,
    /// Units with no result yet: `task` when all its seeds are missing, else `task/seed<S>`.
    pub missing: Vec<String>,
    pub failed: Vec<Failure>,
}

impl SuiteStats {
    pub fn mean_ap(&self) -> Option<f64> {
        self.mean[0]
    }
    pub fn median_ap(&self) -> Option<f64> {
        self.median[0]
    }
}

/// The ODinW-13 subset of an ODinW-35 run (as `summary.json` lists it, in this field order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Odinw13Stats {
    pub mean_ap: Option<f64>,
    pub median_ap: Option<f64>,
    pub evaluated: usize,
    pub expected: usize,
    pub missing: Vec<String>,
    /// Tasks whose ODinW-35 prompts (names or caption prompts) differ from `configs/odinw_13`,
    /// so their AP is not the ODinW-13 protocol's (protocol §2.4).
    pub prompts_differ: Vec<String>,
    /// Mean AP over the evaluated tasks whose prompts agree.
    pub mean_ap_prompts_agree: Option<f64>,
    /// How many of the 13 tasks the run's manifest lists (not written to `summary.json`).
    #[serde(skip)]
    pub in_run: usize,
}

pub struct Aggregate {
    pub run_name: String,
    pub track: Track,
    pub suite: String,
    pub split: String,
    pub shots: Option<u32>,
    pub seeds: Vec<u64>,
    /// One row per (task, seed): `task`, `seed`, `status` (`ok`/`failed`/`missing`) and the 12
    /// COCO stats by name (null where -1 or not evaluated).
    pub units: DataFrame,
    /// One row per task, in manifest order: `task`, `status` (`ok`, `partial`, `failed`,
    /// `missing`), `seeds_done`, `seeds_expected`, the [`COLUMNS`] (mean over seeds),
    /// `AP_std`, `AP_min`, `AP_max` (over seeds).
    pub tasks: DataFrame,
    pub stats: SuiteStats,
    pub odinw13: Option<Odinw13Stats>,
}

impl Aggregate {
    /// Aggregates a loaded run.
    pub fn of(run: &RunResults) -> Result<Self> {
        anyhow::Context::context(Self::build(run), "aggregating the run's metrics")
    }

    fn build(run: &RunResults) -> PolarsResult<Self> {
        let m = &run.manifest;
        let units = units_frame(run)?;
        let tasks = tasks_frame(&units, &m.tasks, m.seed_slots().len())?;
        let ok = tasks.column("status")?.str()?.equal("ok");
        let done = tasks.filter(&ok)?;
        let mut mean = Vec::new();
        let mut median = Vec::new();
        for (name, _) in COLUMNS {
            let s = done.column(name)?.as_materialized_series();
            mean.push(s.mean());
            median.push(s.median());
        }
        let done_tasks: Vec<String> = str_values(done.column("task")?)?;
        let per_seed_mean_ap = per_seed_means(&units, &done_tasks, &m.seeds)?;
        let mean_ap_std_over_seeds = if per_seed_mean_ap.len() >= 2 {
            let means: Vec<Option<f64>> = per_seed_mean_ap.iter().map(|(_, v)| *v).collect();
            Series::new("m".into(), means).std(STD_DDOF)
        } else {
            None
        };
        let (missing, failed) = missing_and_failed(run);
        let stats = SuiteStats {
            evaluated: done.height(),
            expected: m.tasks.len(),
            mean,
            median,
            per_seed_mean_ap,
            mean_ap_std_over_seeds,
            missing,
            failed,
        };
        let odinw13 = odinw13_stats(&tasks, &m.suite, &m.prompts)?;
        Ok(Self {
            run_name: run.name(),
            track: m.track,
            suite: m.suite.clone(),
            split: m.split.clone(),
            shots: m.shots,
            seeds: m.seeds.clone(),
            units,
            tasks,
            stats,
            odinw13,
        })
    }

    /// Whether the run has several seeds per task (shows std and seed columns).
    pub fn has_seeds(&self) -> bool {
        !self.seeds.is_empty()
    }

    /// Per-seed AP of `task`, in seed order, for evaluated seeds.
    pub fn seed_aps(&self, task: &str) -> PolarsResult<Vec<(u64, f64)>> {
        let mask = self.units.column("task")?.str()?.equal(task);
        let rows = self.units.filter(&mask)?;
        let seeds = rows.column("seed")?.u64()?;
        let aps = rows.column("AP")?.f64()?;
        Ok(seeds
            .iter()
            .zip(aps.iter())
            .filter_map(|(s, a)| Some((s?, a?)))
            .collect())
    }
}

/// The long frame: one row per (task, seed) with status and the 12 stats.
fn units_frame(run: &RunResults) -> PolarsResult<DataFrame> {
    let n = run.units.len();
    let mut task = Vec::with_capacity(n);
    let mut seed = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut stats: Vec<Vec<Option<f64>>> = (0..12).map(|_| Vec::with_capacity(n)).collect();
    for u in &run.units {
        task.push(u.task.as_str());
        seed.push(u.seed);
        status.push(match u.outcome {
            UnitOutcome::Done(_) => "ok",
            UnitOutcome::Failed(_) => "failed",
            UnitOutcome::Missing => "missing",
        });
        for (i, col) in stats.iter_mut().enumerate() {
            col.push(u.metrics().and_then(|m| m.stat(i)));
        }
    }
    let mut columns = vec![
        Column::new("task".into(), task),
        Column::new("seed".into(), seed),
        Column::new("status".into(), status),
    ];
    for (name, values) in crate::eval::STAT_NAMES.iter().zip(stats) {
        columns.push(Column::new((*name).into(), values));
    }
    DataFrame::new(n, columns)
}

/// The per-task frame, reducing each task's rows of `units` over seeds.
fn tasks_frame(units: &DataFrame, tasks: &[String], seeds: usize) -> PolarsResult<DataFrame> {
    let task_col = units.column("task")?.str()?;
    let ok_col = units.column("status")?.str()?.equal("ok");
    let failed_col = units.column("status")?.str()?.equal("failed");
    let mut status = Vec::new();
    let mut done_counts = Vec::new();
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::new(); COLUMNS.len()];
    let (mut std, mut min, mut max) = (Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        let mine = task_col.equal(t.as_str());
        let done = units.filter(&(&mine & &ok_col))?;
        let failed = (&mine & &failed_col).sum().unwrap_or(0);
        let n_done = done.height();
        status.push(if n_done == seeds {
            "ok"
        } else if failed > 0 {
            "failed"
        } else if n_done == 0 {
            "missing"
        } else {
            "partial"
        });
        done_counts.push(n_done as u32);
        for ((name, _), out) in COLUMNS.iter().zip(values.iter_mut()) {
            out.push(done.column(name)?.as_materialized_series().mean());
        }
        let ap = done.column("AP")?.as_materialized_series();
        std.push(if n_done >= 2 { ap.std(STD_DDOF) } else { None });
        min.push(ap.f64()?.min());
        max.push(ap.f64()?.max());
    }
    let h = tasks.len();
    let mut columns = vec![
        Column::new("task".into(), tasks),
        Column::new("status".into(), status),
        Column::new("seeds_done".into(), done_counts),
        Column::new("seeds_expected".into(), vec![seeds as u32; h]),
    ];
    for ((name, _), v) in COLUMNS.iter().zip(values) {
        columns.push(Column::new((*name).into(), v));
    }
    columns.push(Column::new("AP_std".into(), std));
    columns.push(Column::new("AP_min".into(), min));
    columns.push(Column::new("AP_max".into(), max));
    DataFrame::new(h, columns)
}

/// For each seed, the mean AP of that seed over `tasks`.
fn per_seed_means(
    units: &DataFrame,
    tasks: &[String],
    seeds: &[u64],
) -> PolarsResult<Vec<(u64, Option<f64>)>> {
    let task_col = units.column("task")?.str()?;
    let mut in_tasks = BooleanChunked::full("in".into(), false, units.height());
    for t in tasks {
        in_tasks = &in_tasks | &task_col.equal(t.as_str());
    }
    let mut out = Vec::new();
    for &s in seeds {
        let this_seed = units.column("seed")?.u64()?.equal(s);
        let rows = units.filter(&(&in_tasks & &this_seed))?;
        let mean = if tasks.is_empty() {
            None
        } else {
            rows.column("AP")?.as_materialized_series().mean()
        };
        out.push((s, mean));
    }
    Ok(out)
}

fn missing_and_failed(run: &RunResults) -> (Vec<String>, Vec<Failure>) {
    let mut missing = Vec::new();
    let mut failed = Vec::new();
    for task in &run.manifest.tasks {
        let units: Vec<_> = run.units_of(task).collect();
        let absent: Vec<_> = units
            .iter()
            .filter(|u| matches!(u.outcome, UnitOutcome::Missing))
            .collect();
        if absent.len() == units.len() && units.len() > 1 {
            missing.push(task.clone());
        } else {
            missing.extend(absent.iter().map(|u| u.key()));
        }
        for u in units {
            if let UnitOutcome::Failed(e) = &u.outcome {
                failed.push(Failure {
                    task: u.task.clone(),
                    seed: u.seed,
                    error: e.clone(),
                });
            }
        }
    }
    (missing, failed)
}

/// Whether `task`'s ODinW-13 record has other category names or caption prompts than its
/// ODinW-35 record (GLIP's CAPTION_PROMPT, or the `caption_prompt` mmdetection's Grounding DINO
/// configs give either family: a task is flagged if any of them differs).
pub fn odinw13_prompts_differ(task: &str) -> bool {
    let (Some(a), Some(b)) = (
        registry::find(Suite::Odinw13, task),
        registry::find(Suite::Odinw35, task),
    ) else {
        return false;
    };
    let names = |t: &registry::Task| {
        t.categories
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    let prompts = |t: &registry::Task| {
        serde_json::to_string(&(&t.caption_prompt, &t.mmdet_caption_prompt)).unwrap_or_default()
    };
    names(a) != names(b) || prompts(a) != prompts(b)
}

fn odinw13_stats(
    tasks: &DataFrame,
    suite: &str,
    prompts: &str,
) -> PolarsResult<Option<Odinw13Stats>> {
    if suite != Suite::Odinw35.name() {
        return Ok(None);
    }
    let names: Vec<String> = str_values(tasks.column("task")?)?;
    let thirteen: Vec<&str> = registry::tasks(Suite::Odinw13)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    if !names.iter().any(|n| thirteen.contains(&n.as_str())) {
        return Ok(None);
    }
    let status = str_values(tasks.column("status")?)?;
    let ap = tasks.column("AP")?.f64()?;
    let mut done = Vec::new();
    let mut agree = Vec::new();
    let mut missing = Vec::new();
    let mut differ = Vec::new();
    for t in &thirteen {
        let flagged = prompts != Suite::Odinw13.name() && odinw13_prompts_differ(t);
        if flagged {
            differ.push(t.to_string());
        }
        match names.iter().position(|n| n == t) {
            Some(i) if status[i] == "ok" => {
                done.push(ap.get(i));
                if !flagged {
                    agree.push(ap.get(i));
                }
            }
            _ => missing.push(t.to_string()),
        }
    }
    let evaluated = done.len();
    let in_run = thirteen
        .iter()
        .filter(|t| names.iter().any(|n| n == *t))
        .count();
    let s = Series::new("ap".into(), done);
    Ok(Some(Odinw13Stats {
        evaluated,
        expected: thirteen.len(),
        mean_ap: s.mean(),
        median_ap: s.median(),
        prompts_differ: differ,
        mean_ap_prompts_agree: Series::new("ap".into(), agree).mean(),
        missing,
        in_run,
    }))
}

fn str_values(c: &Column) -> PolarsResult<Vec<String>> {
    Ok(c.str()?
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

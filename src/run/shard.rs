//! Sharding a run over processes (Slurm array elements, Kubernetes Indexed Job pods): the run's
//! work units (a task, or a task and one seed) in their deterministic order with an estimated
//! cost (images × epochs), and their assignment to `N` shards, longest first onto the least
//! loaded shard (LPT, ties to the earlier unit and the lower shard), so every process computes
//! the same [`Plan`] on its own. [`Shard::resolve`] reads `--shard I/N`, or the scheduler's
//! environment (`SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT`, `JOB_COMPLETION_INDEX` with
//! `--shards N`).
use super::manifest::unit_key;
use crate::registry::Task;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One process's part of a sharded run: shard `index` (0-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Where a [`Shard`] came from (for the messages a run prints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSource {
    Option,
    Slurm,
    Kubernetes,
}

impl ShardSource {
    pub fn describe(self) -> &'static str {
        match self {
            ShardSource::Option => "--shard",
            ShardSource::Slurm => "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT",
            ShardSource::Kubernetes => "JOB_COMPLETION_INDEX and --shards",
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Checks `index < count` and `count >= 1`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            bail!("the number of shards must be at least 1");
        }
        if index >= count {
            bail!("shard index {index} is out of range for {count} shards (0..{count})");
        }
        Ok(Self { index, count })
    }

    /// Parses `I/N` (0-based I, e.g. `0/4` … `3/4`).
    pub fn parse(text: &str) -> Result<Self> {
        let (i, n) = text
            .split_once('/')
            .with_context(|| format!("--shard {text:?}: expected I/N, e.g. 0/4"))?;
        let num = |s: &str, what: &str| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("--shard {text:?}: {what} {s:?} is not a number"))
        };
        Self::new(num(i, "index")?, num(n, "count")?)
    }

    /// The shard of this process: `--shard I/N` (`option`), else `SLURM_ARRAY_TASK_ID` (minus
    /// `SLURM_ARRAY_TASK_MIN`) of `SLURM_ARRAY_TASK_COUNT` (or `--shards N`, which must agree),
    /// else `JOB_COMPLETION_INDEX` of `--shards N`; `None` when none applies (the whole run).
    /// `env` looks a variable up (the process environment in use; a map in tests).
    pub fn resolve(
        option: Option<&str>,
        shards: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<(Self, ShardSource)>> {
        if let Some(text) = option {
            let s = Self::parse(text)?;
            if let Some(n) = shards.filter(|&n| n != s.count) {
                bail!("--shard {text} and --shards {n} disagree on the number of shards");
            }
            return Ok(Some((s, ShardSource::Option)));
        }
        let var = |name: &str| -> Result<Option<usize>> {
            match env(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .with_context(|| format!("{name}={v:?} is not a number")),
            }
        };
        if let Some(id) = var("SLURM_ARRAY_TASK_ID")? {
            let min = var("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = match (var("SLURM_ARRAY_TASK_COUNT")?, shards) {
                (Some(c), Some(n)) if c != n => bail!(
                    "SLURM_ARRAY_TASK_COUNT={c} but --shards {n}: submit an array of {n} elements"
                ),
                (Some(c), _) => c,
                (None, Some(n)) => n,
                (None, None) => bail!(
                    "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: give --shards N"
                ),
            };
            let index = id.checked_sub(min).with_context(|| {
                format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}")
            })?;
            return Ok(Some((
                Self::new(index, count).context("from the Slurm array's environment")?,
                ShardSource::Slurm,
            )));
        }
        if let Some(n) = shards {
            let Some(index) = var("JOB_COMPLETION_INDEX")? else {
                bail!(
                    "--shards {n} needs --shard I/{n}, or SLURM_ARRAY_TASK_ID or \
                     JOB_COMPLETION_INDEX in the environment (a Slurm array element or a \
                     Kubernetes Indexed Job pod)"
                );
            };
            return Ok(Some((
                Self::new(index, n).context("from JOB_COMPLETION_INDEX")?,
                ShardSource::Kubernetes,
            )));
        }
        Ok(None)
    }
}

/// A unit of work: a task, or a task and one seed, with its estimated cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedUnit {
    /// `task` or `task/seed<S>` (the run store's unit key).
    pub unit: String,
    pub task: String,
    pub seed: Option<u64>,
    /// Estimated cost in images processed (images × epochs).
    pub cost: u64,
    /// Whether the image counts behind `cost` were read from the data (else 1 image per
    /// missing file is assumed).
    pub counted: bool,
    /// The shard (0-based) the unit is assigned to.
    pub shard: usize,
}

/// Every unit of a run and the shard each is assigned to, with the balance it reaches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub shards: usize,
    /// In run order: tasks, then seeds.
    pub units: Vec<PlannedUnit>,
    /// Sum of the costs assigned to each shard.
    pub loads: Vec<u64>,
    /// The largest load: the run's length in cost units if shards run in parallel.
    pub makespan: u64,
    /// Total cost / shards: the best any assignment could do.
    pub ideal: f64,
    /// `makespan / ideal` (1 is perfect balance).
    pub ratio: f64,
}

impl Plan {
    /// Assigns `units` (run order, costs set) to `shards` shards with [`assign`].
    pub fn new(mut units: Vec<PlannedUnit>, shards: usize) -> Result<Self> {
        if shards == 0 {
            bail!("the number of shards must be at least 1");
        }
        let costs: Vec<u64> = units.iter().map(|u| u.cost).collect();
        let assigned = assign(&costs, shards);
        let mut loads = vec![0u64; shards];
        for (u, &s) in units.iter_mut().zip(&assigned) {
            u.shard = s;
            loads[s] += u.cost;
        }
        let total: u64 = loads.iter().sum();
        let makespan = loads.iter().copied().max().unwrap_or(0);
        let ideal = total as f64 / shards as f64;
        let ratio = if ideal > 0.0 {
            makespan as f64 / ideal
        } else {
            1.0
        };
        Ok(Self {
            shards,
            units,
            loads,
            makespan,
            ideal,
            ratio,
        })
    }

    /// Whether the unit is `shard`'s.
    pub fn owns(&self, shard: usize, task: &str, seed: Option<u64>) -> bool {
        self.shard_of(task, seed) == Some(shard)
    }

    /// The shard a unit is assigned to (`None` for a unit the plan does not have).
    pub fn shard_of(&self, task: &str, seed: Option<u64>) -> Option<usize> {
        self.units
            .iter()
            .find(|u| u.task == task && u.seed == seed)
            .map(|u| u.shard)
    }

    /// What makes two plans the same assignment (units, costs, shards), as a comparable key.
    pub fn same_assignment(&self, other: &Plan) -> bool {
        self.shards == other.shards
            && self.units.len() == other.units.len()
            && self
                .units
                .iter()
                .zip(&other.units)
                .all(|(a, b)| a.unit == b.unit && a.shard == b.shard)
    }
}

/// Longest processing time first: units in decreasing cost (equal costs in run order), each to
/// the shard with the least load so far (equal loads: the lower shard). Returns each unit's
/// shard, in the order of `costs`. Its makespan is at most 4/3 − 1/(3N) of the optimum.
pub fn assign(costs: &[u64], shards: usize) -> Vec<usize> {
    let shards = shards.max(1);
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].cmp(&costs[a]).then(a.cmp(&b)));
    let mut loads = vec![0u64; shards];
    let mut out = vec![0usize; costs.len()];
    for i in order {
        let (s, _) = loads
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(&b.0)))
            .expect("at least one shard");
        out[i] = s;
        loads[s] += costs[i];
    }
    out
}

/// What a run does per unit, for its cost: score `split` (zero-shot), or fine-tune.
pub struct Workload<'a> {
    /// The scored split (`test`, `val`, `minival`).
    pub split: &'a str,
    pub finetune: Option<FinetuneWork<'a>>,
}

/// A fine-tuning run's shape: k (0 = the whole training split), seeds, epochs, and each task's
/// GENERAL_COPY and model-selection split (in the order of the run's tasks).
pub struct FinetuneWork<'a> {
    pub shots: u32,
    pub seeds: &'a [u64],
    pub max_epochs: usize,
    pub general_copy: Vec<u32>,
    pub selection_split: Vec<String>,
}

/// The run's units in run order (tasks, then seeds) with their estimated costs:
/// - zero-shot: the scored split's images;
/// - fine-tuning: (training images per epoch × GENERAL_COPY + selection images per epoch) ×
///   max epochs + the scored split's images. A k-shot epoch trains on, and selects on, at most
///   k × classes images (GLIP's sampler keeps an image while one of its classes has fewer than
///   k), never more than the split has; full-data epochs use the whole splits.
///
/// Image counts are read from the tasks' annotation files under `root`. Without a file, a
/// k-shot split counts k × classes images and any other split 1 image, and the unit is marked
/// `counted: false`. Every shard reads the same files, so every shard computes the same costs.
pub fn estimate(tasks: &[&Task], root: &Path, work: &Workload) -> Result<Vec<PlannedUnit>> {
    let mut units = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let scored = images(task, root, work.split)?;
        let mut counted = scored.is_some();
        let (cost, seeds): (u64, Vec<Option<u64>>) = match &work.finetune {
            None => (scored.unwrap_or(1), vec![None]),
            Some(f) => {
                let select = f
                    .selection_split
                    .get(i)
                    .map(String::as_str)
                    .unwrap_or("val");
                let (train, selection) =
                    (images(task, root, "train")?, images(task, root, select)?);
                counted &= train.is_some() && selection.is_some();
                let k_shot = u64::from(f.shots) * task.categories.len().max(1) as u64;
                let per_epoch = |n: Option<u64>| match (f.shots, n) {
                    (0, n) => n.unwrap_or(1),
                    (_, Some(n)) => n.min(k_shot),
                    (_, None) => k_shot,
                };
                let copy = u64::from(f.general_copy.get(i).copied().unwrap_or(1).max(1));
                let epoch = per_epoch(train) * copy + per_epoch(selection);
                (
                    epoch * f.max_epochs.max(1) as u64 + scored.unwrap_or(1),
                    f.seeds.iter().map(|&s| Some(s)).collect(),
                )
            }
        };
        for seed in seeds {
            units.push(PlannedUnit {
                unit: unit_key(&task.name, seed),
                task: task.name.clone(),
                seed,
                cost: cost.max(1),
                counted,
                shard: 0,
            });
        }
    }
    Ok(units)
}

/// The number of images in `task`'s `split` under `root`; `None` when the task has no such
/// split or its file is absent. A present but unreadable file is an error naming it.
fn images(task: &Task, root: &Path, split: &str) -> Result<Option<u64>> {
    let Some(ann) = task.ann_file(root, split).filter(|a| a.is_file()) else {
        return Ok(None);
    };
    let coco = crate::data::coco::CocoFile::read(&ann)
        .with_context(|| format!("counting the images of task {}", task.name))?;
    Ok(Some(coco.images.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn shard_parses_and_refuses_bad_input() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1/0", "x/4", "1", "-1/4", "1/4/5"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_comes_from_the_option_then_slurm_then_kubernetes() {
        let none = env(&[]);
        assert_eq!(Shard::resolve(None, None, &none).unwrap(), None);
        let (s, src) = Shard::resolve(Some("1/3"), None, &none).unwrap().unwrap();
        assert_eq!((s.index, s.count, src), (1, 3, ShardSource::Option));
        assert!(Shard::resolve(Some("1/3"), Some(4), &none).is_err());
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        let (s, src) = Shard::resolve(None, None, &slurm).unwrap().unwrap();
        assert_eq!((s.index, s.count, src), (2, 4, ShardSource::Slurm));
        assert!(Shard::resolve(None, Some(3), &slurm).is_err());
        // The option wins over the environment.
        let (s, _) = Shard::resolve(Some("0/2"), None, &slurm).unwrap().unwrap();
        assert_eq!(s, Shard { index: 0, count: 2 });
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3")]);
        assert_eq!(Shard::resolve(None, None, &k8s).unwrap(), None);
        let (s, src) = Shard::resolve(None, Some(4), &k8s).unwrap().unwrap();
        assert_eq!((s.index, s.count, src), (3, 4, ShardSource::Kubernetes));
        assert!(Shard::resolve(None, Some(3), &k8s).is_err());
        assert!(Shard::resolve(None, Some(3), &none).is_err());
        let bad = env(&[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert!(Shard::resolve(None, None, &bad).is_err());
    }

    /// LPT against an exhaustive search of every assignment (small cases): never worse than
    /// 4/3 of the optimum, deterministic, and every unit assigned once.
    #[test]
    fn lpt_is_within_its_bound_of_the_optimum() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % 100 + 1
        };
        for _ in 0..200 {
            let n_units = (next() % 8) as usize + 1;
            let shards = (next() % 3) as usize + 1;
            let costs: Vec<u64> = (0..n_units).map(|_| next()).collect();
            let a = assign(&costs, shards);
            assert_eq!(a, assign(&costs, shards));
            let mut loads = vec![0u64; shards];
            for (c, &s) in costs.iter().zip(&a) {
                loads[s] += c;
            }
            let lpt = *loads.iter().max().unwrap();
            let mut best = u64::MAX;
            for code in 0..shards.pow(n_units as u32) {
                let mut l = vec![0u64; shards];
                let mut c = code;
                for &cost in &costs {
                    l[c % shards] += cost;
                    c /= shards;
                }
                best = best.min(*l.iter().max().unwrap());
            }
            let bound = 4.0 / 3.0 - 1.0 / (3.0 * shards as f64);
            assert!(
                lpt as f64 <= best as f64 * bound + 1e-9,
                "{costs:?} {shards}"
            );
        }
    }

    #[test]
    fn plan_balances_and_reports_its_ratio() {
        let units = [7u64, 5, 4, 3, 3, 2]
            .iter()
            .enumerate()
            .map(|(i, &c)| PlannedUnit {
                unit: format!("t{i}"),
                task: format!("t{i}"),
                seed: None,
                cost: c,
                counted: true,
                shard: 0,
            })
            .collect();
        let p = Plan::new(units, 2).unwrap();
        // LPT: 7|5 → 7|9 (4) → 10|9 (3) → 10|12 (3) → 12|12 (2).
        assert_eq!(p.loads, vec![12, 12]);
        assert_eq!(p.makespan, 12);
        assert_eq!(p.ratio, 1.0);
        assert!(p.owns(0, "t0", None) && !p.owns(1, "t0", None));
        assert_eq!(p.shard_of("nope", None), None);
    }
}

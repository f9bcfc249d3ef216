//! A sharded run's shared folder: the plan every shard follows (`RUN/shards.json`, written by
//! the first shard, checked by the others), and the merge that closes the run once every unit
//! is finished ([`finish_shard`], run by whichever shard finishes the last unit) or on demand
//! ([`merge`], `odinw merge RUN`). Merging is what closing a single-process run is
//! ([`RunStore::close`] and the report), under `RUN/.merge.lock` so that two shards ending
//! together write it one after the other.
use super::shard::Plan;
use super::store::{Closed, RunStore};
use super::{unit_key, RunFiles, RunResults, UnitOutcome};
use crate::util::fs::{lock_file, write_json_atomic};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// `RUN/shards.json`: the plan of a sharded run.
pub fn plan_path(dir: &Path) -> PathBuf {
    dir.join("shards.json")
}

/// Records `plan` as the run's, or checks that it is the one recorded (same units on the same
/// shards): shards of one run must agree, or units would run twice or never.
pub fn record_plan(store: &RunStore, plan: &Plan) -> Result<()> {
    let path = plan_path(store.dir());
    store.with_lock(|| match read_plan(store.dir())? {
        None => write_json_atomic(&path, plan),
        Some(old) if old.same_assignment(plan) => Ok(()),
        Some(old) => bail!(
            "{} was planned for {} shard(s) with other unit costs or units than this command's \
             {} shard(s) (see {}); run every shard with the same command and --shards, or \
             choose another folder",
            store.dir().display(),
            old.shards,
            plan.shards,
            path.display()
        ),
    })
}

/// The run's recorded plan, if it was sharded.
pub fn read_plan(dir: &Path) -> Result<Option<Plan>> {
    let path = plan_path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a valid shard plan", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A unit that is not done, with the shard that owns it (in a sharded run).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Unfinished {
    pub unit: String,
    pub shard: Option<usize>,
    /// The failure's message; `None` for a unit that never finished (missing).
    pub error: Option<String>,
}

/// A merged run: the closed run, and what is missing or failed.
pub struct Merged {
    pub closed: Closed,
    pub shards: Option<usize>,
    pub unfinished: Vec<Unfinished>,
}

impl Merged {
    pub fn complete(&self) -> bool {
        self.unfinished.is_empty()
    }
}

/// The run's units that are not done (failed or missing), in run order, with their shards.
pub fn unfinished(results: &RunResults, plan: Option<&Plan>) -> Vec<Unfinished> {
    results
        .units
        .iter()
        .filter_map(|u| {
            let error = match &u.outcome {
                UnitOutcome::Done(_) => return None,
                UnitOutcome::Failed(e) => Some(e.clone()),
                UnitOutcome::Missing => None,
            };
            Some(Unfinished {
                unit: unit_key(&u.task, u.seed),
                shard: plan.and_then(|p| p.shard_of(&u.task, u.seed)),
                error,
            })
        })
        .collect()
}

/// `odinw merge RUN`: closes the run in `dir` as a single-process run closes (end time,
/// `summary.json`, the report written by `files`), whatever is missing, and lists what is.
pub fn merge(dir: &Path, files: &dyn RunFiles) -> Result<Merged> {
    let store = RunStore::open(dir)?;
    let _lock = lock_file(&dir.join(".merge.lock"), true)?;
    let plan = read_plan(dir)?;
    let closed = store.close()?;
    files.write(&closed.results, &closed.aggregate)?;
    let unfinished = unfinished(&closed.results, plan.as_ref());
    Ok(Merged {
        closed,
        shards: plan.map(|p| p.shards),
        unfinished,
    })
}

/// After a shard's units: merges the run if every unit of it has finished (done or failed),
/// i.e. this shard finished the last one; else returns the units still missing.
pub fn finish_shard(
    store: &RunStore,
    plan: &Plan,
    files: &dyn RunFiles,
) -> Result<Result<Closed, Vec<Unfinished>>> {
    let _lock = lock_file(&store.dir().join(".merge.lock"), true)?;
    let results = RunResults::load(store.dir())?;
    let missing: Vec<Unfinished> = unfinished(&results, Some(plan))
        .into_iter()
        .filter(|u| u.error.is_none())
        .collect();
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    let closed = store.close()?;
    files.write(&closed.results, &closed.aggregate)?;
    Ok(Ok(closed))
}

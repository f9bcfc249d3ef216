//! The run driver: the lifecycle of a run of units (a task, or a task and one seed). [`Driver::open`]
//! opens the run folder (resuming a run started with the same manifest; units whose files are
//! unreadable are set aside and run again); [`Driver::run_units`] runs every unit not done
//! earlier, each isolated by [`super::guard`] so that its error or panic becomes its
//! `error.json` and the run goes on; [`Driver::close`] stamps the end, writes the summary and
//! hands the run, loaded and aggregated once, to the report writer ([`RunFiles`]). Sharded
//! ([`Driver::open_shard`]), it runs only its shard's units and [`Driver::finish`] merges the
//! run when the last unit of all shards is finished (see [`super::merge`]). What happens
//! is told to a [`Reporter`]; the driver prints nothing.
use super::guard;
use super::merge::{self, Unfinished};
use super::shard::{Plan, Shard};
use super::store::{Closed, RunStore};
use super::{unit_key, Aggregate, Manifest, RunResults};
use crate::registry::Task;
use crate::util::reporter::Reporter;
use anyhow::Result;
use std::time::Instant;

/// What a finished unit tells the user, after its label (e.g. `AP  41.2  ...`).
pub trait UnitReport {
    fn line(&self) -> String;
}

/// Writes a closed run's report files (implemented by `report`, which sits above `run`).
pub trait RunFiles {
    fn write(&self, results: &RunResults, aggregate: &Aggregate) -> Result<()>;
}

/// Runs the units of one run folder (or, sharded, one shard's units of it).
pub struct Driver<'r> {
    store: RunStore,
    reporter: &'r dyn Reporter,
    sharding: Option<Sharding>,
}

/// This process's shard of a run and the plan all shards follow.
pub struct Sharding {
    pub shard: Shard,
    pub plan: Plan,
}

/// How a run ended in this process: closed (its summary and report written), or, for a shard
/// whose run still has units running or not started elsewhere, those units. (One per process:
/// boxing the closed run would buy nothing.)
#[allow(clippy::large_enum_variant)]
pub enum Finish {
    Closed(Closed),
    Waiting(Vec<Unfinished>),
}

impl<'r> Driver<'r> {
    /// Resumes the run in `dir` if it was started with the same manifest (see
    /// [`RunStore::resume`]), else starts it; reports each unit folder set aside.
    pub fn open(
        dir: &std::path::Path,
        manifest: &Manifest,
        reporter: &'r dyn Reporter,
    ) -> Result<Self> {
        Self::open_shard(dir, manifest, reporter, None)
    }

    /// [`Self::open`] for one shard of a run shared by several processes: records the plan
    /// (or checks it is the one the other shards follow), and sets aside only this shard's
    /// unreadable units.
    pub fn open_shard(
        dir: &std::path::Path,
        manifest: &Manifest,
        reporter: &'r dyn Reporter,
        sharding: Option<Sharding>,
    ) -> Result<Self> {
        let store = RunStore::resume(dir, manifest)?;
        if let Some(s) = &sharding {
            merge::record_plan(&store, &s.plan)?;
        }
        let moved = store.set_aside_unreadable_of(|task, seed| match &sharding {
            Some(s) => s.plan.owns(s.shard.index, task, seed),
            None => true,
        })?;
        for line in moved {
            reporter.message(&format!("note: {line}"));
        }
        Ok(Self {
            store,
            reporter,
            sharding,
        })
    }

    pub fn store(&self) -> &RunStore {
        &self.store
    }

    /// Runs `unit` for every task of `tasks` and every seed of the run (tasks first, then
    /// seeds), skipping units done earlier. A unit's error or panic is recorded as its failure
    /// (`locate`, called after a panic, may name the input behind it). Returns the keys of the
    /// units that failed (`task` or `task/seed<S>`).
    pub fn run_units<T: UnitReport>(
        &self,
        tasks: &[&Task],
        mut unit: impl FnMut(&Task, Option<u64>) -> Result<T>,
        mut locate: impl FnMut(&Task) -> Option<String>,
    ) -> Result<Vec<String>> {
        let seeds = self.store.manifest()?.seed_slots();
        let mut failed = Vec::new();
        for task in tasks {
            for &seed in &seeds {
                if let Some(s) = &self.sharding {
                    if !s.plan.owns(s.shard.index, &task.name, seed) {
                        continue;
                    }
                }
                let label = unit_label(&task.name, seed);
                if self.store.is_done(&task.name, seed) {
                    self.reporter
                        .message(&format!("{label} done earlier, skipped"));
                    continue;
                }
                let started = Instant::now();
                let outcome = guard::isolate(
                    || {
                        guard::test_panic_hook(&task.name);
                        unit(task, seed)
                    },
                    || locate(task),
                );
                match outcome {
                    Ok(o) => self.reporter.message(&format!("{label} {}", o.line())),
                    Err(e) => {
                        let msg = format!("{e:#}");
                        self.reporter.message(&format!("{label} FAILED: {msg}"));
                        self.store.fail_task(
                            &task.name,
                            seed,
                            &msg,
                            started.elapsed().as_secs_f64(),
                        )?;
                        failed.push(unit_key(&task.name, seed));
                    }
                }
            }
        }
        Ok(failed)
    }

    /// Closes the run: end time, summary, and the report files written by `files` from the run
    /// as loaded and aggregated once.
    pub fn close(self, files: &dyn RunFiles) -> Result<Closed> {
        let closed = self.store.close()?;
        files.write(&closed.results, &closed.aggregate)?;
        Ok(closed)
    }

    /// Ends this process's part: an unsharded run closes ([`Self::close`]); a shard merges the
    /// run if every unit of it has finished (it finished the last), else says what is left.
    pub fn finish(self, files: &dyn RunFiles) -> Result<Finish> {
        match &self.sharding {
            None => Ok(Finish::Closed(self.close(files)?)),
            Some(s) => Ok(match merge::finish_shard(&self.store, &s.plan, files)? {
                Ok(closed) => Finish::Closed(closed),
                Err(left) => Finish::Waiting(left),
            }),
        }
    }
}

/// A unit's name in messages, padded so outcomes line up: `task` or `task seed S`.
pub fn unit_label(task: &str, seed: Option<u64>) -> String {
    match seed {
        None => format!("{task:<28}"),
        Some(s) => format!("{task:<24} seed {s:<4}"),
    }
}

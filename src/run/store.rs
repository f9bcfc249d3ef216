//! [`RunStore`]: the API `eval` and `finetune` write runs through. It creates the run folder
//! with its manifest, hands out per-task (and per-seed) folders, writes predictions, metrics,
//! logs and failures atomically, and refreshes `manifest.json` and `summary.json` under a lock
//! each time a task finishes, so a run killed half way leaves a consistent, reportable folder.
use super::manifest::{now_unix, unit_key};
use super::results::unit_dir;
use super::{Aggregate, Manifest, Metrics, PredictionsWriter, RunResults, Summary};
use crate::postprocess::CocoDetection;
use crate::util::fs::{lock_file, write_atomic, write_atomic_with, write_json_atomic};
use anyhow::{bail, Context, Result};
use std::borrow::Borrow;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub struct RunStore {
    dir: PathBuf,
}

/// What a finished unit leaves in its folder (written by [`RunStore::record_unit`]).
pub struct UnitRecord<'a> {
    /// The COCO results, in the order they are written.
    pub predictions: &'a [CocoDetection],
    pub metrics: &'a Metrics,
    pub log: &'a str,
}

/// A closed run: its final summary, and the run as loaded and aggregated for it.
pub struct Closed {
    pub summary: Summary,
    pub results: RunResults,
    pub aggregate: Aggregate,
}

impl RunStore {
    /// Starts a new run in `dir` (created if needed). Fails if `dir` already holds a run.
    pub fn create(dir: &Path, manifest: &Manifest) -> Result<Self> {
        manifest.validate()?;
        let store = Self {
            dir: dir.to_path_buf(),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        store.with_lock(|| {
            if store.manifest_path().exists() {
                bail!(
                    "{} already holds a run; resume it or choose another folder",
                    dir.display()
                );
            }
            write_json_atomic(&store.manifest_path(), manifest)
        })?;
        store.refresh_summary()?;
        Ok(store)
    }

    /// Opens the run in `dir` if it was started with the same track, suite, split, prompts,
    /// tasks, shots and seeds as `manifest` (so finished tasks can be skipped), else starts it.
    /// Shards of one run may start at the same time: the manifest is created under the run's
    /// lock, by the first of them; the others resume it.
    pub fn resume(dir: &Path, manifest: &Manifest) -> Result<Self> {
        manifest.validate()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = Self {
            dir: dir.to_path_buf(),
        };
        let created = store.with_lock(|| {
            if store.manifest_path().exists() {
                return Ok(false);
            }
            write_json_atomic(&store.manifest_path(), manifest)?;
            store.refresh_summary_locked()?;
            Ok(true)
        })?;
        if created {
            return Ok(store);
        }
        let store = Self::open(dir)?;
        let old = store.manifest()?;
        let differs = [
            (
                "track",
                old.track.name().to_string(),
                manifest.track.name().to_string(),
            ),
            ("suite", old.suite.clone(), manifest.suite.clone()),
            ("split", old.split.clone(), manifest.split.clone()),
            ("prompts", old.prompts.clone(), manifest.prompts.clone()),
            ("tasks", old.tasks.join(","), manifest.tasks.join(",")),
            (
                "shots",
                format!("{:?}", old.shots),
                format!("{:?}", manifest.shots),
            ),
            (
                "seeds",
                format!("{:?}", old.seeds),
                format!("{:?}", manifest.seeds),
            ),
        ];
        // Fine-tuning: the selection split and GENERAL_COPY per task (runs made before odinw
        // recorded them have none).
        let finetune = (
            "model-selection split and GENERAL_COPY",
            format!("{:?}", old.finetune_tasks),
            format!("{:?}", manifest.finetune_tasks),
        );
        let finetune = (!old.finetune_tasks.is_empty()).then_some(finetune);
        for (field, a, b) in differs.into_iter().chain(finetune) {
            if a != b {
                bail!(
                    "cannot resume {}: its {field} is {a}, this command's is {b}; choose another folder",
                    dir.display()
                );
            }
        }
        Ok(store)
    }

    /// Opens an existing run.
    pub fn open(dir: &Path) -> Result<Self> {
        let store = Self {
            dir: dir.to_path_buf(),
        };
        Manifest::read(&store.manifest_path())?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    pub fn summary_path(&self) -> PathBuf {
        self.dir.join("summary.json")
    }

    pub fn manifest(&self) -> Result<Manifest> {
        Manifest::read(&self.manifest_path())
    }

    /// `RUN/<task>` or, for few-shot runs, `RUN/<task>/seed<S>`.
    pub fn task_dir(&self, task: &str, seed: Option<u64>) -> PathBuf {
        unit_dir(&self.dir, task, seed)
    }

    pub fn predictions_path(&self, task: &str, seed: Option<u64>) -> PathBuf {
        self.task_dir(task, seed).join("predictions.json")
    }

    pub fn metrics_path(&self, task: &str, seed: Option<u64>) -> PathBuf {
        self.task_dir(task, seed).join("metrics.json")
    }

    pub fn log_path(&self, task: &str, seed: Option<u64>) -> PathBuf {
        self.task_dir(task, seed).join("log.txt")
    }

    fn error_path(&self, task: &str, seed: Option<u64>) -> PathBuf {
        self.task_dir(task, seed).join("error.json")
    }

    /// Whether the unit is finished: its `metrics.json` reads and is valid (a resumed run
    /// skips it). A present but unreadable file is not done; see [`Self::set_aside_unreadable`].
    pub fn is_done(&self, task: &str, seed: Option<u64>) -> bool {
        Metrics::read(&self.metrics_path(task, seed)).is_ok()
    }

    /// Why the unit's folder cannot be resumed from, if it cannot: a `metrics.json`,
    /// `error.json`, `predictions.json` or `log.txt` that is present but unreadable or invalid.
    /// `None` for a good folder or none at all.
    pub fn unreadable(&self, task: &str, seed: Option<u64>) -> Option<String> {
        let metrics = self.metrics_path(task, seed);
        let predictions = self.predictions_path(task, seed);
        let error = self.error_path(task, seed);
        let log = self.log_path(task, seed);
        let present = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if present(&metrics) {
            if let Err(e) = Metrics::read(&metrics) {
                return Some(format!("{e:#}"));
            }
        }
        if present(&predictions) {
            if let Err(e) = super::for_each_detection(&predictions, |_| Ok(())) {
                return Some(format!("{} is unreadable: {e:#}", predictions.display()));
            }
        }
        if present(&error) {
            if let Err(e) = super::results::read_error(&error) {
                return Some(format!("{e:#}"));
            }
        }
        if present(&log) {
            if let Err(e) = std::fs::read(&log) {
                return Some(format!("{} is unreadable: {e}", log.display()));
            }
        }
        None
    }

    /// Before a resumed run starts: moves the folder of every unit whose files are unreadable
    /// (see [`Self::unreadable`]) aside, to `<unit folder>.unreadable-<unix time>`, so the unit
    /// is run again and never counted as done. Returns one line per folder moved, naming the
    /// file at fault and where the old files now are.
    pub fn set_aside_unreadable(&self) -> Result<Vec<String>> {
        self.set_aside_unreadable_of(|_, _| true)
    }

    /// [`Self::set_aside_unreadable`] for the units `mine` accepts only (a shard's: another
    /// shard may be writing the others).
    pub fn set_aside_unreadable_of(
        &self,
        mine: impl Fn(&str, Option<u64>) -> bool,
    ) -> Result<Vec<String>> {
        let m = self.manifest()?;
        let mut moved = Vec::new();
        for task in &m.tasks {
            for seed in m.seed_slots() {
                if !mine(task, seed) {
                    continue;
                }
                let Some(why) = self.unreadable(task, seed) else {
                    continue;
                };
                let from = self.task_dir(task, seed);
                let mut name = from.file_name().unwrap_or_default().to_os_string();
                name.push(format!(".unreadable-{}", now_unix()));
                let to = from.with_file_name(name);
                std::fs::rename(&from, &to).with_context(|| {
                    format!(
                        "{why}; moving {} aside to {} failed",
                        from.display(),
                        to.display()
                    )
                })?;
                moved.push(format!(
                    "{}: {why}; its old files were moved to {}, it runs again",
                    unit_key(task, seed),
                    to.display()
                ));
            }
        }
        if !moved.is_empty() {
            self.refresh_summary()?;
        }
        Ok(moved)
    }

    /// Writes the unit's predictions from `detections`, streamed to disk one at a time.
    /// Returns how many were written. Non-finite numbers and negative sizes are refused.
    pub fn write_predictions<I>(&self, task: &str, seed: Option<u64>, detections: I) -> Result<u64>
    where
        I: IntoIterator,
        I::Item: Borrow<CocoDetection>,
    {
        self.write_predictions_with(task, seed, |out| {
            for det in detections {
                out.push(det.borrow())?;
            }
            Ok(())
        })
    }

    /// Writes the unit's predictions through `fill`, which pushes detections as they are
    /// produced (e.g. image by image); the file appears only if `fill` succeeds.
    pub fn write_predictions_with(
        &self,
        task: &str,
        seed: Option<u64>,
        fill: impl FnOnce(&mut PredictionsWriter<&mut BufWriter<File>>) -> Result<()>,
    ) -> Result<u64> {
        self.check_unit(task, seed)?;
        let mut count = 0;
        write_atomic_with(&self.predictions_path(task, seed), |w| {
            let mut out = PredictionsWriter::new(w);
            fill(&mut out)?;
            count = out.finish()?.1;
            Ok(())
        })?;
        Ok(count)
    }

    /// Writes the unit's metrics (validated: 12 stats, each -1 or in [0, 1]) and clears a
    /// failure recorded by an earlier attempt.
    pub fn write_metrics(&self, task: &str, seed: Option<u64>, metrics: &Metrics) -> Result<()> {
        self.check_unit(task, seed)?;
        metrics
            .validate()
            .with_context(|| format!("metrics of {}", unit_key(task, seed)))?;
        write_json_atomic(&self.metrics_path(task, seed), metrics)?;
        remove_if_present(&self.error_path(task, seed))
    }

    /// Writes the unit's log.
    pub fn write_log(&self, task: &str, seed: Option<u64>, text: &str) -> Result<()> {
        self.check_unit(task, seed)?;
        write_atomic(&self.log_path(task, seed), text.as_bytes())
    }

    /// Records a finished unit in one call: its predictions, metrics and log, then its time
    /// (`seconds`), refreshing manifest and summary.
    pub fn record_unit(
        &self,
        task: &str,
        seed: Option<u64>,
        unit: &UnitRecord,
        seconds: f64,
    ) -> Result<Summary> {
        self.write_predictions(task, seed, unit.predictions)?;
        self.write_metrics(task, seed, unit.metrics)?;
        self.write_log(task, seed, unit.log)?;
        self.finish_task(task, seed, seconds)
    }

    /// Records that the unit finished after `seconds` and refreshes manifest and summary.
    pub fn finish_task(&self, task: &str, seed: Option<u64>, seconds: f64) -> Result<Summary> {
        self.check_unit(task, seed)?;
        if !self.is_done(task, seed) {
            bail!(
                "{} finished without metrics: write them first",
                unit_key(task, seed)
            );
        }
        self.record_timing(task, seed, seconds)
    }

    /// Records that the unit failed with `error` (kept in `error.json`, listed by reports and
    /// the summary, never dropped silently) and refreshes manifest and summary.
    pub fn fail_task(
        &self,
        task: &str,
        seed: Option<u64>,
        error: &str,
        seconds: f64,
    ) -> Result<Summary> {
        self.check_unit(task, seed)?;
        remove_if_present(&self.metrics_path(task, seed))?;
        write_json_atomic(
            &self.error_path(task, seed),
            &serde_json::json!({ "error": error }),
        )?;
        self.record_timing(task, seed, seconds)
    }

    /// Changes the manifest under the run's lock (model files, runtime, datasets, ...).
    pub fn update_manifest(&self, change: impl FnOnce(&mut Manifest)) -> Result<()> {
        self.with_lock(|| {
            let mut m = self.manifest()?;
            change(&mut m);
            m.validate()?;
            write_json_atomic(&self.manifest_path(), &m)
        })
    }

    /// Stamps the run's end time and writes the final summary.
    pub fn finish_run(&self) -> Result<Summary> {
        Ok(self.close()?.summary)
    }

    /// Stamps the run's end time, loads and aggregates the run once, and writes the final
    /// summary from that aggregate; returns all three.
    pub fn close(&self) -> Result<Closed> {
        self.update_manifest(|m| m.timings.finished_unix = Some(now_unix()))?;
        self.with_lock(|| {
            let results = RunResults::load(&self.dir)?;
            let aggregate = Aggregate::of(&results)?;
            let summary = Summary::from_aggregate(&aggregate)?;
            write_json_atomic(&self.summary_path(), &summary)?;
            Ok(Closed {
                summary,
                results,
                aggregate,
            })
        })
    }

    /// Recomputes `summary.json` from what is on disk and writes it atomically.
    pub fn refresh_summary(&self) -> Result<Summary> {
        self.with_lock(|| self.refresh_summary_locked())
    }

    fn refresh_summary_locked(&self) -> Result<Summary> {
        let summary = Summary::compute(&RunResults::load(&self.dir)?)?;
        write_json_atomic(&self.summary_path(), &summary)?;
        Ok(summary)
    }

    fn record_timing(&self, task: &str, seed: Option<u64>, seconds: f64) -> Result<Summary> {
        self.with_lock(|| {
            let mut m = self.manifest()?;
            m.timings.units.insert(unit_key(task, seed), seconds);
            write_json_atomic(&self.manifest_path(), &m)?;
            self.refresh_summary_locked()
        })
    }

    /// A task and seed the manifest expects; anything else is a caller's mistake.
    fn check_unit(&self, task: &str, seed: Option<u64>) -> Result<()> {
        let m = self.manifest()?;
        if !m.tasks.iter().any(|t| t == task) {
            bail!(
                "task {task} is not one of the run's tasks ({})",
                m.tasks.join(", ")
            );
        }
        if !m.seed_slots().contains(&seed) {
            match seed {
                Some(s) if m.seeds.is_empty() => {
                    bail!("this {} run has no seeds, got seed {s}", m.track.name())
                }
                Some(s) => bail!("seed {s} is not one of the run's seeds {:?}", m.seeds),
                None => bail!(
                    "this run evaluates each task with seeds {:?}: give one",
                    m.seeds
                ),
            }
        }
        Ok(())
    }

    /// Runs `f` holding an exclusive lock on `RUN/.lock` (between threads and processes).
    pub(super) fn with_lock<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock = lock_file(&self.dir.join(".lock"), true)?;
        let out = f();
        drop(lock);
        out
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

//! A run as found on disk: for every expected (task, seed) unit of its manifest, the metrics,
//! the recorded failure, or nothing yet.
use super::manifest::unit_key;
use super::{Manifest, Metrics};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

// A run has a few hundred units at most; boxing the typed metrics would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum UnitOutcome {
    Done(Metrics),
    Failed(String),
    Missing,
}

/// One evaluation: a task, or a task with one seed.
#[derive(Clone, Debug)]
pub struct Unit {
    pub task: String,
    pub seed: Option<u64>,
    pub outcome: UnitOutcome,
}

impl Unit {
    pub fn key(&self) -> String {
        unit_key(&self.task, self.seed)
    }
    pub fn metrics(&self) -> Option<&Metrics> {
        match &self.outcome {
            UnitOutcome::Done(m) => Some(m),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunResults {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// In manifest order: tasks, then seeds.
    pub units: Vec<Unit>,
}

impl RunResults {
    /// Loads the run in `dir`. A unit with `metrics.json` is done (an unreadable metrics file
    /// is an error naming it), one with `error.json` failed, any other is missing.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = Manifest::read(&dir.join("manifest.json")).with_context(|| {
            format!(
                "{} is not an odinw run (no valid manifest.json)",
                dir.display()
            )
        })?;
        let mut units = Vec::new();
        for task in &manifest.tasks {
            for seed in manifest.seed_slots() {
                let udir = unit_dir(dir, task, seed);
                let metrics = udir.join("metrics.json");
                let error = udir.join("error.json");
                let outcome = if metrics.exists() {
                    UnitOutcome::Done(Metrics::read(&metrics)?)
                } else if error.exists() {
                    UnitOutcome::Failed(read_error(&error)?)
                } else {
                    UnitOutcome::Missing
                };
                units.push(Unit {
                    task: task.clone(),
                    seed,
                    outcome,
                });
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            units,
        })
    }

    /// The run's name: its folder name.
    pub fn name(&self) -> String {
        run_name(&self.dir)
    }

    /// The units of `task`, in seed order.
    pub fn units_of<'a>(&'a self, task: &'a str) -> impl Iterator<Item = &'a Unit> + 'a {
        self.units.iter().filter(move |u| u.task == task)
    }
}

/// `RUN/<task>` or `RUN/<task>/seed<S>`.
pub fn unit_dir(run: &Path, task: &str, seed: Option<u64>) -> PathBuf {
    let d = run.join(task);
    match seed {
        Some(s) => d.join(format!("seed{s}")),
        None => d,
    }
}

/// The folder name of a run (its absolute path's last part for `.`).
pub fn run_name(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| abs.display().to_string())
}

pub(super) fn read_error(path: &Path) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct ErrorFile {
        error: String,
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let e: ErrorFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a valid error file", path.display()))?;
    Ok(e.error)
}

//! `odinw submit`: writes a run's predictions as one EvalAI submission file,
//! `{"<task>": [results]}` (zero-/full-shot) or `{"<task>": {"<seed>": [results]}}` (few-shot),
//! streaming each `predictions.json` into the output one detection at a time.
use super::keys::KeyMap;
use crate::run::{for_each_detection, unit_key, Manifest, PredictionsWriter, RunStore, Track};
use crate::util::fs::write_atomic_with;
use anyhow::{bail, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct SubmitOptions {
    pub keys: KeyMap,
    /// Leave out tasks (or seeds) without predictions instead of refusing.
    pub allow_missing: bool,
    /// Accept runs on another split than `test`.
    pub any_split: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct Written {
    pub file: PathBuf,
    pub track: String,
    pub tasks: usize,
    pub results: u64,
    /// Units left out (`task` or `task/seed<S>`), only with `allow_missing`.
    pub left_out: Vec<String>,
    /// Ways the file differs from what the challenge's track expects (3-shot, seeds 3/30/300).
    pub notes: Vec<String>,
}

/// The units of `manifest` whose predictions can be submitted: a `predictions.json` and no
/// recorded failure. Returns (present, absent) as (task, seed) and unit keys.
fn available(store: &RunStore, m: &Manifest) -> (Vec<(String, Option<u64>)>, Vec<String>) {
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for task in &m.tasks {
        for seed in m.seed_slots() {
            let dir = store.task_dir(task, seed);
            if dir.join("predictions.json").exists() && !dir.join("error.json").exists() {
                present.push((task.clone(), seed));
            } else {
                absent.push(unit_key(task, seed));
            }
        }
    }
    (present, absent)
}

/// Writes the submission of the run in `run` to `out` (atomically). `on_task` is called after
/// each task (for progress).
pub fn write_submission(
    run: &Path,
    out: &Path,
    opts: &SubmitOptions,
    mut on_task: impl FnMut(&str),
) -> Result<Written> {
    let store = RunStore::open(run)?;
    let m = store.manifest()?;
    if m.split != "test" && !opts.any_split {
        bail!(
            "{} evaluated the '{}' split; the leaderboard scores test-split predictions (pass --any-split to write it anyway)",
            run.display(),
            m.split
        );
    }
    let (present, absent) = available(&store, &m);
    if !absent.is_empty() && !opts.allow_missing {
        bail!(
            "{} has no predictions for {} of {} units: {} (finish the run, or pass --allow-missing)",
            run.display(),
            absent.len(),
            present.len() + absent.len(),
            absent.join(", ")
        );
    }
    if m.track != Track::FewShot && !m.seeds.is_empty() {
        bail!(
            "{} is a {} run with seeds {:?}: the leaderboard takes one results list per task for that track; submit one seed's run",
            run.display(),
            m.track.name(),
            m.seeds
        );
    }
    let few_shot = m.track == Track::FewShot;
    let mut results = 0u64;
    let mut tasks = 0usize;
    write_atomic_with(out, |w| {
        w.write_all(b"{")?;
        for task in &m.tasks {
            let units: Vec<Option<u64>> = present
                .iter()
                .filter(|(t, _)| t == task)
                .map(|(_, s)| *s)
                .collect();
            if units.is_empty() {
                continue;
            }
            w.write_all(if tasks == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut *w, &opts.keys.key(task))?;
            w.write_all(b": ")?;
            if few_shot {
                w.write_all(b"{")?;
            }
            for (i, seed) in units.iter().enumerate() {
                if let Some(s) = seed {
                    w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *w, &s.to_string())?;
                    w.write_all(b": ")?;
                }
                let mut list = PredictionsWriter::new(&mut *w);
                for_each_detection(&store.predictions_path(task, *seed), |d| list.push(&d))?;
                results += list.finish()?.1;
            }
            if few_shot {
                w.write_all(b"}")?;
            }
            tasks += 1;
            on_task(task);
        }
        w.write_all(b"\n}\n")?;
        Ok(())
    })?;
    let mut notes = Vec::new();
    if few_shot && (m.shots != Some(3) || m.seeds != [3, 30, 300]) {
        notes.push(format!(
            "the challenge's few-shot track is 3-shot with seeds 3, 30, 300; this run is {}-shot with seeds {:?}",
            m.shots.map_or("?".to_string(), |k| k.to_string()),
            m.seeds
        ));
    }
    Ok(Written {
        notes,
        file: out.to_path_buf(),
        track: m.track.name().to_string(),
        tasks,
        results,
        left_out: absent,
    })
}

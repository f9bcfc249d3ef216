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
    /// A full-shot run's seed to submit (the leaderboard takes one results list per task);
    /// `None` takes the run's only seed.
    pub seed: Option<u64>,
}

#[derive(Debug, serde::Serialize)]
pub struct Written {
    pub file: PathBuf,
    pub track: String,
    pub tasks: usize,
    pub results: u64,
    /// The seed submitted of a full-shot run.
    pub seed: Option<u64>,
    /// Units left out (`task` or `task/seed<S>`), only with `allow_missing`.
    pub left_out: Vec<String>,
    /// Ways the file differs from what the challenge's track expects (3-shot, seeds 3/30/300).
    pub notes: Vec<String>,
}

/// The units of `manifest` whose predictions can be submitted: a `predictions.json` and no
/// recorded failure. Returns (present, absent) as (task, seed) and unit keys.
fn available(
    store: &RunStore,
    m: &Manifest,
    slots: &[Option<u64>],
) -> (Vec<(String, Option<u64>)>, Vec<String>) {
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for task in &m.tasks {
        for &seed in slots {
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

/// The seeds whose units go into the submission: every seed of a few-shot run (one results list
/// per seed), the one seed chosen of a full-shot run (one results list per task: `seed`, or the
/// run's only seed), none of a zero-shot run.
fn seed_slots(run: &Path, m: &Manifest, seed: Option<u64>) -> Result<Vec<Option<u64>>> {
    match (m.track, seed) {
        (Track::FewShot, None) => Ok(m.seed_slots()),
        (Track::FewShot, Some(_)) | (Track::ZeroShot, Some(_)) => bail!(
            "--seed picks one seed of a full-shot run; {} is a {} run",
            run.display(),
            m.track.name()
        ),
        (_, Some(s)) if !m.seeds.contains(&s) => bail!(
            "{} has no seed {s} (its seeds: {:?})",
            run.display(),
            m.seeds
        ),
        (_, Some(s)) => Ok(vec![Some(s)]),
        (_, None) if m.seeds.len() > 1 => bail!(
            "{} is a {} run with seeds {:?}: the leaderboard takes one results list per task for that track; pick one with --seed",
            run.display(),
            m.track.name(),
            m.seeds
        ),
        (_, None) => Ok(m.seed_slots()),
    }
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
    let slots = seed_slots(run, &m, opts.seed)?;
    let (present, absent) = available(&store, &m, &slots);
    if !absent.is_empty() && !opts.allow_missing {
        bail!(
            "{} has no predictions for {} of {} units: {} (finish the run, or pass --allow-missing)",
            run.display(),
            absent.len(),
            present.len() + absent.len(),
            absent.join(", ")
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
                if let (true, Some(s)) = (few_shot, seed) {
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
        seed: if few_shot { None } else { slots[0] },
        left_out: absent,
    })
}

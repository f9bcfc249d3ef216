//! The annotation files one fine-tuning run trains and selects on: the task's whole train and
//! val splits for `--shots 0`; otherwise GLIP's prepared `fewshot_*_shot{K}_seed{S}.json` where
//! the task registers one and it is on disk, else a k-shot subset made by odinw's GLIP-exact
//! sampler (`crate::splits`) from the full split with the same seed, written into the run.
//! Checkpoints are selected on the split GLIP's yaml tests on during fine-tuning (the registry's
//! `val_split_during_ft`: `val`, or `minival` for 11 tasks), k-shot as GLIP's prepared
//! `fewshot_{val|minival}_shot{K}_seed{S}.json`. GENERAL_COPY follows GLIP's README recipes or
//! the task's yaml value ([`CopyChoice`]).
use crate::registry::Task;
use crate::splits::{sampler::SamplingIndex, write, Source};
use crate::util::rng::Seed;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// One split a run reads: the annotation file, the image folder, and where the file came from.
#[derive(Clone, Debug)]
pub struct SplitFiles {
    pub ann: PathBuf,
    pub img_dir: PathBuf,
    pub origin: String,
}

/// The splits a run trains on, selects its checkpoint on, and is finally scored on.
#[derive(Clone, Debug)]
pub struct RunSplits {
    pub train: SplitFiles,
    /// The checkpoint-selection split's name (`val` or `minival`, [`selection_split`]).
    pub val_split: String,
    pub val: SplitFiles,
    pub test: SplitFiles,
}

/// How many times a run wraps its training set per epoch (GLIP's `DATASETS.GENERAL_COPY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyChoice {
    /// GLIP's README recipe for the shot count (`--custom_shot_and_epoch_and_general_copy`
    /// 1_200_8, 3_200_4, 5_200_2, 10_200_1, full data 0_200_1); for shot counts without a
    /// recipe, the task's yaml value, which is what GLIP uses when that option does not set it.
    Recipe,
    /// The task's yaml `GENERAL_COPY` from the registry (16, 8, 4 or 2): GLIP's
    /// `tools/finetune.py` run without `--custom_shot_and_epoch_and_general_copy`.
    Task,
    /// A given number.
    Fixed(u32),
}

impl std::str::FromStr for CopyChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "recipe" => Ok(CopyChoice::Recipe),
            "task" => Ok(CopyChoice::Task),
            n => match n.parse::<u32>() {
                Ok(v) if v >= 1 => Ok(CopyChoice::Fixed(v)),
                _ => Err(format!(
                    "expected `recipe`, `task` or a number >= 1, not {n:?}"
                )),
            },
        }
    }
}

/// GLIP README's GENERAL_COPY for a shot count (1-shot ×8, 3-shot ×4, 5-shot ×2, 10-shot and
/// full data ×1), if it gives one.
pub fn recipe_copy(shots: u32) -> Option<u32> {
    match shots {
        1 => Some(8),
        3 => Some(4),
        5 => Some(2),
        10 | 0 => Some(1),
        _ => None,
    }
}

/// The GENERAL_COPY of a (task, shots) run and where it came from, in words.
pub fn general_copy(task: &Task, shots: u32, choice: CopyChoice) -> (u32, String) {
    let from_task = || {
        (
            task.general_copy.max(1),
            format!("the task's GENERAL_COPY ({})", task.yaml),
        )
    };
    match choice {
        CopyChoice::Fixed(n) => (n, "--general-copy".into()),
        CopyChoice::Task => from_task(),
        CopyChoice::Recipe => match recipe_copy(shots) {
            Some(n) => (n, format!("GLIP's README recipe for {shots} shots")),
            None => from_task(),
        },
    }
}

/// Records the fine-tuning plan in a run manifest: k (none for full data), the seeds, and per
/// task the selection split and GENERAL_COPY with its origin.
pub fn record_in_manifest(
    m: &mut crate::run::Manifest,
    tasks: &[&Task],
    shots: u32,
    copy: CopyChoice,
    seeds: &[u64],
) -> Result<()> {
    m.shots = (shots > 0).then_some(shots);
    for t in tasks {
        let (copies, origin) = general_copy(t, shots, copy);
        m.finetune_tasks.insert(
            t.name.clone(),
            crate::run::FinetuneTask {
                selection_split: selection_split(t)?.to_string(),
                general_copy: copies,
                general_copy_origin: origin,
            },
        );
    }
    m.seeds = seeds.to_vec();
    Ok(())
}

/// The split GLIP selects checkpoints on for `task`: the registry's `val_split_during_ft`
/// (`DATASETS.TEST` of its yaml; `val`, or `minival` for 11 tasks).
pub fn selection_split(task: &Task) -> Result<&str> {
    let name = task.val_split_during_ft.as_str();
    if task.splits.contains_key(name) {
        return Ok(name);
    }
    bail!(
        "task {}: GLIP selects checkpoints on its {name:?} split (val_split_during_ft), which the \
         record does not list (it has {})",
        task.name,
        task.split_names().join(", ")
    )
}

fn full_split(task: &Task, root: &Path, split: &str) -> Result<SplitFiles> {
    let (ann, img_dir) = task.split_files(root, split)?;
    Ok(SplitFiles {
        origin: format!("the whole {split} split"),
        ann,
        img_dir,
    })
}

/// The k-shot subset of `split` for `seed`: GLIP's prepared file if there, else generated into
/// `work_dir`.
fn fewshot_split(
    task: &Task,
    root: &Path,
    split: &str,
    shots: u32,
    seed: u64,
    work_dir: &Path,
) -> Result<SplitFiles> {
    let full = full_split(task, root, split)?;
    if let Some(prepared) = task.fewshot_file(root, split, shots, seed) {
        if prepared.is_file() {
            return Ok(SplitFiles {
                origin: format!("GLIP's prepared file {}", prepared.display()),
                ann: prepared,
                img_dir: full.img_dir,
            });
        }
    }
    let source = Source::load(&full.ann)?;
    let seed_value = Seed::from(seed);
    // GLIP filters images without valid boxes only when sampling a training split.
    let (file, kept) = if split == "train" {
        source.generate(shots, &seed_value)
    } else {
        let index =
            SamplingIndex::without_validity_filter(&source.coco, &full.ann.display().to_string())?;
        let kept = index.select(shots, &seed_value);
        let marker = source.marker(shots, &seed_value);
        (
            write::fewshot_file(&source.coco, &kept, Some(&marker)),
            kept,
        )
    };
    let path = work_dir.join(format!("{split}_shot{shots}_seed{seed}.json"));
    file.write(&path)?;
    Ok(SplitFiles {
        origin: format!(
            "{} images sampled from {} (GLIP's sampler, {shots} shots, seed {seed})",
            kept.len(),
            full.ann.display()
        ),
        ann: path,
        img_dir: full.img_dir,
    })
}

/// Resolves the three splits of one (task, shots, seed) run.
pub fn resolve(
    task: &Task,
    root: &Path,
    shots: u32,
    seed: u64,
    test_split: &str,
    work_dir: &Path,
) -> Result<RunSplits> {
    let val_name = selection_split(task)?;
    let (train, val) = if shots == 0 {
        (
            full_split(task, root, "train")?,
            full_split(task, root, val_name)?,
        )
    } else {
        (
            fewshot_split(task, root, "train", shots, seed, work_dir)?,
            fewshot_split(task, root, val_name, shots, seed, work_dir)?,
        )
    };
    Ok(RunSplits {
        train,
        val_split: val_name.to_string(),
        val,
        test: full_split(task, root, test_split)?,
    })
}

//! The annotation files one fine-tuning run trains and selects on: the task's whole train and
//! val splits for `--shots 0`; otherwise GLIP's prepared `fewshot_*_shot{K}_seed{S}.json` where
//! the task registers one and it is on disk, else a k-shot subset made by odinw's GLIP-exact
//! sampler (`crate::splits`) from the full split with the same seed, written into the run.
use crate::registry::Task;
use crate::splits::{rng::Seed, sampler::SamplingIndex, write, Source};
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
    pub val: SplitFiles,
    pub test: SplitFiles,
}

/// GLIP's `GENERAL_COPY` for a shot count (README: 1-shot ×8, 3-shot ×4, 5-shot ×2, else ×1).
pub fn general_copy(shots: u32) -> usize {
    match shots {
        1 => 8,
        3 => 4,
        5 => 2,
        _ => 1,
    }
}

/// The val split's name in `task` (`val`, else `minival`).
fn val_split(task: &Task) -> Result<&'static str> {
    for name in ["val", "minival"] {
        if task.ann_file(Path::new(""), name).is_some() {
            return Ok(name);
        }
    }
    bail!(
        "task {} has no val split to select checkpoints on (it has {})",
        task.name,
        task.split_names().join(", ")
    )
}

fn full_split(task: &Task, root: &Path, split: &str) -> Result<SplitFiles> {
    let (ann, img_dir) = crate::pipeline::zeroshot::split_files(task, root, split)?;
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
    let val = val_split(task)?;
    let (train, val) = if shots == 0 {
        (
            full_split(task, root, "train")?,
            full_split(task, root, val)?,
        )
    } else {
        (
            fewshot_split(task, root, "train", shots, seed, work_dir)?,
            fewshot_split(task, root, val, shots, seed, work_dir)?,
        )
    };
    Ok(RunSplits {
        train,
        val,
        test: full_split(task, root, test_split)?,
    })
}

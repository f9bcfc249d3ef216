//! The family-independent part of a zero-shot task, shared by GLIP ([`super::zeroshot`]) and
//! OWLv2 ([`super::owlv2_eval`]): the task's annotation file and images (sorted by id, each
//! checked to exist, categories checked against the registry), the outcome a run prints, and
//! scoring the COCO results with the Rust evaluator and recording the unit in the run store;
//! images prepared one batch ahead of inference ([`in_batches`]).
use crate::data::coco::CocoFile;
use crate::eval::{self, Detections, GroundTruth};
use crate::postprocess::CocoDetection;
use crate::registry::Task;
use crate::run::{guard, Metrics, RunStore, UnitRecord, UnitReport};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one task gave.
#[derive(Clone, Debug)]
pub struct TaskOutcome {
    pub stats: [f64; 12],
    pub images: usize,
    pub detections: usize,
    pub seconds: f64,
    /// Images per second once the first batch is done (decoding, inference and
    /// post-processing together, warm-up excluded); `None` with a single batch.
    pub steady_images_per_s: Option<f64>,
    pub caption: String,
}

impl UnitReport for TaskOutcome {
    fn line(&self) -> String {
        format!(
            "AP {:5.1}  {} images, {} detections, {:.1} s{}",
            self.stats[0] * 100.0,
            self.images,
            self.detections,
            self.seconds,
            self.steady_images_per_s
                .map(|r| format!(" ({r:.2} images/s after the first batch)"))
                .unwrap_or_default()
        )
    }
}

/// A task's split as every family evaluates it.
pub struct TaskInputs {
    pub ann: PathBuf,
    pub gt: GroundTruth,
    /// `(image id, file)`, sorted by id (GLIP's order), every file present.
    pub images: Vec<(u64, PathBuf)>,
    /// The registry's category ids, ascending (class `c` of a prompt is `category_ids[c]`).
    pub category_ids: Vec<u64>,
}

impl TaskInputs {
    /// Reads `task`'s `split` under `root`: ground truth, images in id order (a missing one is
    /// an error naming it), and the categories, which must be the registry's.
    pub fn open(task: &Task, root: &Path, split: &str) -> Result<Self> {
        let (ann, img_dir) = task.split_files(root, split)?;
        let (coco, gt) = CocoFile::read_with_ground_truth(&ann)?;
        let mut images: Vec<(u64, PathBuf)> = coco
            .images
            .iter()
            .map(|im| (im.id, img_dir.join(&im.file_name)))
            .collect();
        images.sort_by_key(|(id, _)| *id);
        if let Some((id, path)) = images.iter().find(|(_, p)| !p.is_file()) {
            bail!(
                "task {}: image {id} ({}) listed in {} is missing",
                task.name,
                path.display(),
                ann.display()
            );
        }
        let mut category_ids: Vec<u64> = task.categories.iter().map(|c| c.id).collect();
        category_ids.sort_unstable();
        let file_ids: Vec<u64> = {
            let mut v: Vec<u64> = coco.categories.iter().map(|c| c.id).collect();
            v.sort_unstable();
            v
        };
        if file_ids != category_ids {
            bail!(
                "task {}: {} has categories {:?}, the registry {:?}",
                task.name,
                ann.display(),
                file_ids,
                category_ids
            );
        }
        Ok(Self {
            ann,
            gt,
            images,
            category_ids,
        })
    }

    /// Scores `results` (in the order they are recorded) with the Rust evaluator, appends the
    /// summary to `log`, and records the unit (predictions, metrics with `caption`, log).
    #[allow(clippy::too_many_arguments)]
    pub fn score_and_record(
        &self,
        task: &Task,
        results: &[CocoDetection],
        caption: String,
        mut log: String,
        fix_id0: bool,
        store: &RunStore,
        started: Instant,
        steady_images_per_s: Option<f64>,
    ) -> Result<TaskOutcome> {
        let gt = &self.gt;
        let records: Vec<eval::Detection> = results.iter().map(Into::into).collect();
        let dt = Detections::from_records(gt, &records)
            .with_context(|| format!("scoring task {}", task.name))?;
        let scored = eval::report::score(gt, &dt, fix_id0);
        let metrics = Metrics::scored(&scored, gt, &dt, &caption, &self.ann);
        log.push_str(&scored.main.summary());
        let seconds = started.elapsed().as_secs_f64();
        let unit = UnitRecord {
            predictions: results,
            metrics: &metrics,
            log: &log,
        };
        store.record_unit(&task.name, None, &unit, seconds)?;
        Ok(TaskOutcome {
            stats: scored.main.stats,
            images: self.images.len(),
            detections: results.len(),
            seconds,
            steady_images_per_s,
            caption,
        })
    }
}

/// Inference speed as a run's log reports it: the first batch on its own (it carries the
/// warm-up), then the images per second of the batches after it.
pub struct Throughput {
    started: Instant,
    first_batch_done: Option<Instant>,
    images_after_first: usize,
}

impl Throughput {
    /// Starts the clock (before the first batch).
    pub fn start() -> Self {
        Throughput {
            started: Instant::now(),
            first_batch_done: None,
            images_after_first: 0,
        }
    }

    /// A batch of `images` images is done.
    pub fn batch_done(&mut self, images: usize) {
        match self.first_batch_done {
            None => self.first_batch_done = Some(Instant::now()),
            Some(_) => self.images_after_first += images,
        }
    }

    /// Appends the inference line for `total` images to `log` and returns the steady rate
    /// (images/s after the first batch; `None` with a single batch).
    pub fn report(&self, total: usize, log: &mut String) -> Option<f64> {
        let steady = self
            .first_batch_done
            .filter(|_| self.images_after_first > 0)
            .map(|t| self.images_after_first as f64 / t.elapsed().as_secs_f64());
        if let Some(first) = self.first_batch_done {
            log.push_str(&format!(
                "inference {total} images: first batch {:.3} s{}\n",
                (first - self.started).as_secs_f64(),
                steady
                    .map(|r| format!(", then {r:.2} images/s"))
                    .unwrap_or_default()
            ));
        }
        steady
    }
}

/// Runs `infer` on `images` in batches of `batch`, each batch prepared (`prepare`: decoding and
/// pre-processing, in parallel on the rayon pool) on a thread of its own one batch ahead of
/// inference. Stops at the first error of either.
pub fn in_batches<T: Send>(
    images: &[(u64, PathBuf)],
    batch: usize,
    prepare: impl Fn(&Path) -> Result<T> + Sync,
    mut infer: impl FnMut(&[(u64, PathBuf)], Vec<T>) -> Result<()>,
) -> Result<()> {
    let batch = batch.max(1);
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<T>>>(1);
        let prepare = &prepare;
        s.spawn(move || {
            for chunk in images.chunks(batch) {
                let prepared = chunk
                    .par_iter()
                    .map(|(_, p)| prepare(p))
                    .collect::<Result<Vec<_>>>();
                let failed = prepared.is_err();
                if tx.send(prepared).is_err() || failed {
                    return;
                }
            }
        });
        for (chunk, prepared) in images.chunks(batch).zip(rx) {
            infer(chunk, prepared?)?;
        }
        Ok(())
    })
}

/// After a panic in `task`'s pipeline: the first image of `split` whose preparation (`prepare`:
/// the family's decoding and resizing) panics on its own (`None` if none does).
pub fn image_behind_panic<T>(
    task: &Task,
    root: &Path,
    split: &str,
    prepare: impl Fn(&Path) -> Result<T>,
) -> Option<String> {
    let (ann, img_dir) = task.split_files(root, split).ok()?;
    let coco = CocoFile::read(&ann).ok()?;
    let paths = coco.images.iter().map(|im| img_dir.join(&im.file_name));
    guard::first_panicking(paths, |p| prepare(p)).map(|(p, _)| {
        format!(
            "on image {}, which panics when decoded and resized alone",
            p.display()
        )
    })
}

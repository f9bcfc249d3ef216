//! The zero-shot track for one task: the task's caption encoded once; images decoded and
//! resized on the rayon pool one batch ahead of inference; backbone + head; GLIP's
//! post-processing and COCO results in the original image size in a thread of their own, one
//! batch behind inference; AP from the Rust evaluator; predictions, metrics and log written
//! into the run store.
use super::detector::{postprocess_outputs, Detector, Prepared};
use crate::data::coco::CocoFile;
use crate::engine::Tensor;
use crate::eval::{self, Detections, GroundTruth};
use crate::postprocess::to_coco;
use crate::prompt::task_caption;
use crate::registry::Task;
use crate::run::{Detection as RunDetection, Metrics, RunStore};
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A batch's head outputs by name.
type Outputs = Vec<(String, Tensor)>;

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct Options {
    pub split: String,
    /// Images per inference batch.
    pub batch: usize,
    /// Use the task's CAPTION_PROMPT where it has one (GLIP's default for ODinW-35).
    pub use_prompt: bool,
    pub fix_id0: bool,
}

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

/// The annotation file and image folder of `task`'s `split` under `root`, checked.
pub fn split_files(task: &Task, root: &Path, split: &str) -> Result<(PathBuf, PathBuf)> {
    let (Some(ann), Some(img_dir)) = (task.ann_file(root, split), task.img_dir(root, split)) else {
        bail!(
            "task {} has no {split} split (it has {})",
            task.name,
            task.split_names().join(", ")
        );
    };
    if !ann.is_file() {
        bail!(
            "task {}: {} does not exist; fetch it with `odinw download --tasks {} --root {}`",
            task.name,
            ann.display(),
            task.name,
            root.display()
        );
    }
    Ok((ann, img_dir))
}

/// Evaluates `task` and writes its unit of the run (`RUN/<task>/`).
pub fn run_task(
    det: &mut Detector,
    task: &Task,
    root: &Path,
    opts: &Options,
    store: &RunStore,
) -> Result<TaskOutcome> {
    let started = Instant::now();
    let (ann, img_dir) = split_files(task, root, &opts.split)?;
    let coco = CocoFile::read(&ann)?;
    let gt = GroundTruth::read(&ann).map_err(|e| anyhow!("{e}"))?;
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

    let caption = task_caption(task, opts.use_prompt)?;
    let mut text = det.encode_text(&caption)?;
    let mut log = format!(
        "task {}\nsplit {}\ncaption {:?}\n",
        task.name, opts.split, caption.text
    );
    for c in &text.positive_map.classes {
        log.push_str(&format!(
            "class {} {:?} tokens {:?}\n",
            c.id, c.name, c.tokens
        ));
    }

    // Three stages overlap: decoding and resizing the next batch (rayon), inference on this
    // one (this thread), post-processing the previous one (its own thread, rayon inside).
    let batch = opts.batch.max(1);
    let spec = det.model.spec.clone();
    let post = det.post.clone();
    let classes = text.classes.clone();
    let inference_started = Instant::now();
    let (results, first_batch_done, images_after_first) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<(u64, Prepared)>>>(1);
        let chunks: Vec<&[(u64, PathBuf)]> = images.chunks(batch).collect();
        let spec = &spec;
        s.spawn(move || {
            for chunk in chunks {
                let prepared = chunk
                    .par_iter()
                    .map(|(id, p)| Ok((*id, super::detector::prepare(spec, p)?)))
                    .collect::<Result<Vec<_>>>();
                let failed = prepared.is_err();
                if tx.send(prepared).is_err() || failed {
                    return;
                }
            }
        });
        let (out_tx, out_rx) =
            std::sync::mpsc::sync_channel::<(Vec<Prepared>, Vec<u64>, Outputs)>(1);
        let category_ids = &category_ids;
        let (post, classes) = (&post, &classes);
        let postprocess = s.spawn(
            move || -> Result<(Vec<RunDetection>, Option<Instant>, usize)> {
                let mut results: Vec<RunDetection> = Vec::new();
                let mut first_batch_done: Option<Instant> = None;
                let mut images_after_first = 0usize;
                for (prepared, ids, outputs) in out_rx {
                    let sizes: Vec<(u32, u32)> = prepared
                        .iter()
                        .map(|p| (p.image.width, p.image.height))
                        .collect();
                    let dets = postprocess_outputs(spec, post, &outputs, &sizes, classes)?;
                    for (((p, id), d), size) in prepared.iter().zip(&ids).zip(dets).zip(&sizes) {
                        results.extend(to_coco(&d, *size, p.original, *id, category_ids)?);
                    }
                    match first_batch_done {
                        None => first_batch_done = Some(Instant::now()),
                        Some(_) => images_after_first += prepared.len(),
                    }
                }
                Ok((results, first_batch_done, images_after_first))
            },
        );
        let inferred = (|| -> Result<()> {
            for prepared in rx {
                let (ids, prepared): (Vec<u64>, Vec<Prepared>) = prepared?.into_iter().unzip();
                let refs: Vec<_> = prepared.iter().map(|p| &p.image).collect();
                let outputs = det.infer(&refs, &mut text)?;
                if out_tx.send((prepared, ids, outputs)).is_err() {
                    break; // post-processing failed; its error is reported below
                }
            }
            Ok(())
        })();
        drop(out_tx);
        let done = postprocess
            .join()
            .map_err(|_| anyhow!("the post-processing thread panicked"))?;
        inferred?;
        done
    })?;
    let steady_images_per_s = first_batch_done
        .filter(|_| images_after_first > 0)
        .map(|t| images_after_first as f64 / t.elapsed().as_secs_f64());
    if let Some(first) = first_batch_done {
        log.push_str(&format!(
            "inference {} images: first batch {:.3} s{}\n",
            images.len(),
            (first - inference_started).as_secs_f64(),
            steady_images_per_s
                .map(|r| format!(", then {r:.2} images/s"))
                .unwrap_or_default()
        ));
    }

    store.write_predictions(&task.name, None, &results)?;
    let records: Vec<eval::Detection> = results.iter().map(Into::into).collect();
    let dt = Detections::from_records(&gt, &records)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("scoring task {}", task.name))?;
    let scored = eval::report::score(&gt, &dt, opts.fix_id0);
    let mut doc = scored.metrics_json(&gt, &dt);
    doc.insert("caption".into(), caption.text.clone().into());
    doc.insert("ann_file".into(), ann.display().to_string().into());
    let metrics: Metrics = serde_json::from_value(serde_json::Value::Object(doc))?;
    store.write_metrics(&task.name, None, &metrics)?;
    log.push_str(&scored.main.summary());
    store.write_log(&task.name, None, &log)?;
    let seconds = started.elapsed().as_secs_f64();
    store.finish_task(&task.name, None, seconds)?;
    Ok(TaskOutcome {
        stats: scored.main.stats,
        images: images.len(),
        detections: results.len(),
        seconds,
        steady_images_per_s,
        caption: caption.text,
    })
}

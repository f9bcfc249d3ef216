//! The zero-shot track for one task: the task's caption encoded once; images decoded and
//! resized on the rayon pool one batch ahead of inference; batches formed by canvas
//! ([`crate::model::canvas`]: GLIP's canvas per image by default) for backbone + head; GLIP's
//! post-processing and COCO results in the original image size in a thread of their own, one
//! batch behind inference, kept in the task's image order; AP from the Rust evaluator;
//! predictions, metrics and log recorded in the run store in one call (the family-independent
//! steps in [`super::task_run`]).
use super::detector::{Detector, Prepared};
pub use super::task_run::TaskOutcome;
use super::task_run::{self, TaskInputs, Throughput};
use crate::engine::Tensor;
use crate::model::canvas::{Batcher, CanvasMode};
use crate::model::io::postprocess_outputs;
use crate::model::ModelSpec;
use crate::postprocess::to_coco;
use crate::postprocess::CocoDetection;
use crate::prompt::task_caption;
use crate::registry::Task;
use crate::run::RunStore;
use anyhow::{anyhow, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A batch's head outputs by name.
type Outputs = Vec<(String, Tensor)>;

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct Options {
    pub split: String,
    /// Images per inference batch (at most; [`CanvasMode::PerImage`] batches equal canvases).
    pub batch: usize,
    /// Which canvas each image runs on.
    pub canvas: CanvasMode,
    /// Use the task's CAPTION_PROMPT where it has one (GLIP's default for ODinW-35).
    pub use_prompt: bool,
    pub fix_id0: bool,
}

/// After a panic in `task`'s pipeline: the first image of `split` whose decoding and resizing
/// panics on its own (`None` if none does: the panic was elsewhere).
pub fn image_behind_panic(
    spec: &ModelSpec,
    task: &Task,
    root: &Path,
    split: &str,
) -> Option<String> {
    task_run::image_behind_panic(task, root, split, |p| super::detector::prepare(spec, p))
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
    let inputs = TaskInputs::open(task, root, &opts.split)?;
    let (category_ids, images) = (&inputs.category_ids, &inputs.images);

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

    // Three stages overlap: decoding and resizing the next images (rayon), inference on this
    // batch (this thread), post-processing the previous one (its own thread, rayon inside).
    let spec = det.model.spec.clone();
    let mut batcher = Batcher::new(&spec, opts.canvas, opts.batch);
    let batch = batcher.batch();
    let post = det.post.clone();
    let classes = text.classes.clone();
    let throughput = Throughput::start();
    let (per_image, throughput) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Prepared>>>(1);
        let chunks: Vec<&[(u64, PathBuf)]> = images.chunks(batch).collect();
        let spec = &spec;
        s.spawn(move || {
            for chunk in chunks {
                let prepared = chunk
                    .par_iter()
                    .map(|(_, p)| super::detector::prepare(spec, p))
                    .collect::<Result<Vec<_>>>();
                let failed = prepared.is_err();
                if tx.send(prepared).is_err() || failed {
                    return;
                }
            }
        });
        // A batch's images with their positions in `images`, its canvas, and its head outputs.
        type Done = (Vec<(usize, Prepared)>, (u32, u32), Outputs);
        let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Done>(1);
        let (post, classes) = (&post, &classes);
        let postprocess = s.spawn(move || -> Result<(Vec<Vec<CocoDetection>>, Throughput)> {
            let mut per_image: Vec<Vec<CocoDetection>> =
                (0..images.len()).map(|_| Vec::new()).collect();
            let mut throughput = throughput;
            for (prepared, canvas, outputs) in out_rx {
                let sizes: Vec<(u32, u32)> = prepared
                    .iter()
                    .map(|(_, p)| (p.image.width, p.image.height))
                    .collect();
                let dets = postprocess_outputs(spec, post, &outputs, &sizes, canvas, classes)?;
                for (((pos, p), d), size) in prepared.iter().zip(dets).zip(&sizes) {
                    let id = images[*pos].0;
                    per_image[*pos] = to_coco(&d, *size, p.original, id, category_ids)?;
                }
                throughput.batch_done(prepared.len());
            }
            Ok((per_image, throughput))
        });
        let inferred = (|| -> Result<()> {
            let mut waiting: std::collections::HashMap<usize, Prepared> = Default::default();
            let mut next = 0usize;
            let mut run = |planned: Vec<crate::model::canvas::Planned>,
                           waiting: &mut std::collections::HashMap<usize, Prepared>|
             -> Result<bool> {
                for plan in planned {
                    let items: Vec<(usize, Prepared)> = plan
                        .items
                        .iter()
                        .map(|p| (*p, waiting.remove(p).expect("planned images are waiting")))
                        .collect();
                    let refs: Vec<_> = items.iter().map(|(_, p)| &p.image).collect();
                    let outputs = det.infer(&refs, plan.canvas, &mut text)?;
                    if out_tx.send((items, plan.canvas, outputs)).is_err() {
                        return Ok(false); // post-processing failed; its error is reported below
                    }
                }
                Ok(true)
            };
            for prepared in rx {
                for p in prepared? {
                    let size = (p.image.width, p.image.height);
                    waiting.insert(next, p);
                    let planned = batcher.push(next, size);
                    next += 1;
                    if !run(planned, &mut waiting)? {
                        return Ok(());
                    }
                }
            }
            run(batcher.finish(), &mut waiting)?;
            Ok(())
        })();
        drop(out_tx);
        let done = postprocess
            .join()
            .map_err(|_| anyhow!("the post-processing thread panicked"))?;
        inferred?;
        done
    })?;
    // GLIP's order: image by image as the task lists them (sorted by id), whatever the batches.
    let results: Vec<CocoDetection> = per_image.into_iter().flatten().collect();
    let steady_images_per_s = throughput.report(images.len(), &mut log);

    inputs.score_and_record(
        task,
        &results,
        caption.text,
        log,
        opts.fix_id0,
        store,
        started,
        steady_images_per_s,
    )
}

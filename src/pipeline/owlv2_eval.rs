//! The zero-shot track for one task with an OWLv2 model: the task's class names (the names
//! GLIP's caption grounds, [`crate::prompt::task_caption`]) in every prompt template of
//! model.json ([`crate::prompt::owlv2::class_queries`]) embedded once (kept on the device with
//! I/O binding); images decoded and pre-processed on the rayon pool one batch ahead of inference
//! ([`task_run::in_batches`]) and run in batches through the image graph; per image the template
//! ensemble and the authors' evaluator's top-k with boxes unpadded and clipped to the image
//! ([`crate::postprocess::owlv2`]) as COCO results; then [`super::task_run`] scores and records
//! the unit exactly as for GLIP.
use super::owlv2::{prepare_image, stack_pixels, Owlv2Detector, QueryEmbeds};
use super::task_run::{self, TaskInputs, TaskOutcome, Throughput};
use crate::model::owlv2::Owlv2Dir;
use crate::postprocess::owlv2::{ensemble_logits, evaluator_top_k};
use crate::postprocess::CocoDetection;
use crate::prompt::owlv2::class_queries;
use crate::prompt::task_caption;
use crate::registry::Task;
use crate::run::RunStore;
use anyhow::{bail, Result};
use std::path::Path;
use std::time::Instant;

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct Options {
    pub split: String,
    /// Images per inference batch (every image runs on the model's square input, so this
    /// changes only the speed).
    pub batch: usize,
    /// Take the class names from the task's CAPTION_PROMPT where it has one, as GLIP does.
    pub use_prompt: bool,
    pub fix_id0: bool,
}

/// `task`'s class names in ascending category id order: the text each class is grounded to in
/// GLIP's caption (the CAPTION_PROMPT's name with `use_prompt`, else the cleaned category name).
pub fn class_names(task: &Task, use_prompt: bool) -> Result<Vec<String>> {
    let caption = task_caption(task, use_prompt)?;
    Ok(caption
        .classes
        .iter()
        .map(|c| {
            caption
                .text
                .chars()
                .skip(c.start)
                .take(c.end - c.start)
                .collect()
        })
        .collect())
}

/// After a panic in `task`'s pipeline: the first image of `split` whose decoding and
/// pre-processing panics on its own (`None` if none does).
pub fn image_behind_panic(
    model: &Owlv2Dir,
    task: &Task,
    root: &Path,
    split: &str,
) -> Option<String> {
    task_run::image_behind_panic(task, root, split, |p| {
        prepare_image(&model.spec.preprocess, p)
    })
}

/// Evaluates `task` and writes its unit of the run (`RUN/<task>/`).
pub fn run_task(
    det: &mut Owlv2Detector,
    task: &Task,
    root: &Path,
    opts: &Options,
    store: &RunStore,
) -> Result<TaskOutcome> {
    let started = Instant::now();
    let inputs = TaskInputs::open(task, root, &opts.split)?;
    let names = class_names(task, opts.use_prompt)?;
    if names.len() != inputs.category_ids.len() {
        bail!(
            "task {}: {} class names for {} categories",
            task.name,
            names.len(),
            inputs.category_ids.len()
        );
    }
    let templates = det.model.spec.text.prompts.templates.clone();
    let top_k = det.model.spec.postprocess.evaluation.top_k;
    let queries = class_queries(&templates, &names);
    let mut embeds = QueryEmbeds::new(det.embed_queries(&queries)?);
    let mut log = format!(
        "task {}\nsplit {}\nfamily owlv2\ntemplates {}\n",
        task.name,
        opts.split,
        templates.len()
    );
    for (id, name) in inputs.category_ids.iter().zip(&names) {
        log.push_str(&format!("class {id} {name:?}\n"));
    }
    log.push_str(&format!("top_k {top_k}\n"));

    let classes = names.len();
    let mut results: Vec<CocoDetection> = Vec::new();
    let mut throughput = Throughput::start();
    // Decoding and pre-processing the next batch overlaps inference on this one.
    let pre = det.model.spec.preprocess.clone();
    let prepare = |p: &Path| prepare_image(&pre, p);
    task_run::in_batches(&inputs.images, opts.batch, prepare, |chunk, prepared| {
        let (sizes, planes): (Vec<(u32, u32)>, Vec<Vec<f32>>) = prepared.into_iter().unzip();
        let outputs = det.detect_pixels(&stack_pixels(&pre, planes), &mut embeds)?;
        for (((id, _), &size), out) in chunk.iter().zip(&sizes).zip(&outputs) {
            let logits = ensemble_logits(&out.logits, templates.len(), classes)?;
            let top = evaluator_top_k(&logits, &out.boxes, classes, size, top_k)?;
            results.extend(top.into_iter().map(|d| CocoDetection {
                image_id: *id,
                category_id: inputs.category_ids[d.class],
                bbox: d.bbox,
                score: d.score as f64,
            }));
        }
        throughput.batch_done(chunk.len());
        Ok(())
    })?;
    let steady_images_per_s = throughput.report(inputs.images.len(), &mut log);
    log.push_str(&format!(
        "query embeddings kept on the device (I/O binding): {}\n",
        if embeds.on_device() { "yes" } else { "no" }
    ));
    inputs.score_and_record(
        task,
        &results,
        queries.join("; "),
        log,
        opts.fix_id0,
        store,
        started,
        steady_images_per_s,
    )
}

//! The zero-shot track for one task with a Grounding DINO or MM-Grounding-DINO model, as
//! mmdetection's ODinW evaluation runs it (PROTOCOL.md of the exporter): the task's category
//! names in category id order, in groups of model.json's `chunked_size`
//! ([`crate::prompt::grounding_dino`]), each group's caption encoded once; images decoded and
//! put on the model's canvas one batch ahead of inference ([`task_run::in_batches`]), each batch
//! run once per caption; per image and caption mmdetection's top k with boxes in original pixels
//! ([`crate::postprocess::grounding_dino`]), the captions' lists concatenated with their
//! classes offset; then [`task_run`] scores and records the unit as for every family. With I/O
//! binding each caption's text inputs are copied to the device once per task and kept there
//! ([`super::grounding_dino`]).
use super::grounding_dino::{GdinoDetector, GdinoText};
use super::task_run::{self, TaskInputs, TaskOutcome, Throughput};
use crate::model::grounding_dino::GdinoDir;
use crate::postprocess::grounding_dino::{top_k, GdinoImageOutputs};
use crate::postprocess::CocoDetection;
use crate::preprocess::decode_file;
use crate::preprocess::grounding_dino::{gdino_pixels, GdinoPixels, GdinoPreprocess};
use crate::prompt::grounding_dino::chunks;
use crate::registry::Task;
use crate::run::RunStore;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct Options {
    pub split: String,
    /// Images per inference batch (every image runs on the model's fixed canvas, so this
    /// changes only the speed).
    pub batch: usize,
    pub fix_id0: bool,
}

/// `task`'s category names in ascending id order (mmdetection's dataset classes; the caption
/// cleans them).
pub fn class_names(task: &Task) -> Vec<String> {
    let mut cats: Vec<_> = task.categories.iter().collect();
    cats.sort_by_key(|c| c.id);
    cats.into_iter().map(|c| c.name.clone()).collect()
}

/// One image decoded and pre-processed: its pixels on the canvas and its original size.
fn prepare(path: &Path, pre: &GdinoPreprocess) -> Result<(GdinoPixels, (u32, u32))> {
    let img = decode_file(path)?;
    let pixels = gdino_pixels(&img, pre).with_context(|| path.display().to_string())?;
    Ok((pixels, (img.width, img.height)))
}

/// After a panic in `task`'s pipeline: the first image of `split` whose decoding and
/// pre-processing panics on its own (`None` if none does).
pub fn image_behind_panic(
    model: &GdinoDir,
    task: &Task,
    root: &Path,
    split: &str,
) -> Option<String> {
    let pre = model.preprocess();
    task_run::image_behind_panic(task, root, split, |p| prepare(p, &pre))
}

/// Evaluates `task` and writes its unit of the run (`RUN/<task>/`).
pub fn run_task(
    det: &mut GdinoDetector,
    task: &Task,
    root: &Path,
    opts: &Options,
    store: &RunStore,
) -> Result<TaskOutcome> {
    let started = Instant::now();
    let inputs = TaskInputs::open(task, root, &opts.split)?;
    let names = class_names(task);
    let spec = det.model.spec.clone();
    let k = spec.postprocess.top_k;
    let groups = chunks(names.len(), spec.text.caption.chunked_size);
    let mut texts: Vec<(usize, GdinoText)> = groups
        .iter()
        .map(|g| Ok((g.start, det.encode(&names[g.clone()])?)))
        .collect::<Result<_>>()?;
    let mut log = format!(
        "task {}\nsplit {}\nfamily {}\nchunked_size {}\n",
        task.name, opts.split, spec.family, spec.text.caption.chunked_size
    );
    for (_, t) in &texts {
        log.push_str(&format!(
            "caption {:?} ({} tokens)\n",
            t.prompt.caption,
            t.prompt.input_ids.len()
        ));
    }
    for (i, (id, name)) in inputs.category_ids.iter().zip(&names).enumerate() {
        let (offset, t) = texts
            .iter()
            .rev()
            .find(|(start, _)| *start <= i)
            .expect("the first chunk starts at 0");
        log.push_str(&format!(
            "class {id} {name:?} tokens {:?}\n",
            t.prompt.class_tokens[i - offset]
        ));
    }
    log.push_str(&format!("top_k {k} per caption\n"));

    let pre = det.model.preprocess();
    let mut results: Vec<CocoDetection> = Vec::new();
    let mut throughput = Throughput::start();
    task_run::in_batches(
        &inputs.images,
        opts.batch,
        |p| prepare(p, &pre),
        |chunk, prepared| {
            let pixels: Vec<&GdinoPixels> = prepared.iter().map(|(p, _)| p).collect();
            let mut per_image: Vec<Vec<CocoDetection>> = vec![Vec::new(); chunk.len()];
            for (offset, text) in texts.iter_mut() {
                let offset = *offset;
                let outputs = det.detect(&pixels, text)?;
                for (((id, _), (px, original)), (out, dets)) in chunk
                    .iter()
                    .zip(&prepared)
                    .zip(outputs.iter().zip(per_image.iter_mut()))
                {
                    let view = GdinoImageOutputs {
                        logits: &out.logits,
                        boxes: &out.boxes,
                        text_len: out.text_len,
                    };
                    let top = top_k(&view, &text.prompt.class_tokens, px.resized, *original, k)?;
                    dets.extend(top.into_iter().map(|d| CocoDetection {
                        image_id: *id,
                        category_id: inputs.category_ids[offset + d.class],
                        bbox: d.bbox,
                        score: d.score,
                    }));
                }
            }
            results.extend(per_image.into_iter().flatten());
            throughput.batch_done(chunk.len());
            Ok(())
        },
    )?;
    let steady_images_per_s = throughput.report(inputs.images.len(), &mut log);
    log.push_str(&format!(
        "text features kept on the device (I/O binding): {}\n",
        if texts.iter().all(|(_, t)| t.on_device()) {
            "yes"
        } else {
            "no"
        }
    ));
    let captions: Vec<&str> = texts
        .iter()
        .map(|(_, t)| t.prompt.caption.as_str())
        .collect();
    inputs.score_and_record(
        task,
        &results,
        captions.join(" | "),
        log,
        opts.fix_id0,
        store,
        started,
        steady_images_per_s,
    )
}

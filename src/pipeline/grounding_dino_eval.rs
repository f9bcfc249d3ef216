//! The zero-shot track for one task with a Grounding DINO or MM-Grounding-DINO model, as
//! mmdetection's ODinW evaluation runs it (PROTOCOL.md of the exporter): the task's category
//! names in category id order, written with the `caption_prompt` mmdetection's ODinW configs
//! give the task for the model's family (the registry's `mmdet_caption_prompt`; plain names
//! with `--no-prompt`), in groups of `chunked_size` (`--chunked-size`, else model.json's)
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
use crate::registry::{EnhancedPrompts, Task};
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
    /// Write the classes with the task's mmdetection `caption_prompt` for the model's family
    /// (mmdetection's ODinW protocol); `false`: plain class names.
    pub use_prompt: bool,
    /// Classes per caption instead of model.json's `text.caption.chunked_size` (≤ 0: all in one).
    pub chunked_size: Option<i64>,
}

impl Options {
    /// The classes per caption this run uses for `model` (≤ 0: every class in one caption).
    pub fn chunked_size(&self, model: &GdinoDir) -> i64 {
        self.chunked_size
            .unwrap_or(model.spec.text.caption.chunked_size)
    }
}

/// The mmdetection `caption_prompt` `task` is written with for a model of `family`: the one its
/// ODinW configs pass to the dataset, none with `use_prompt` false or when they pass none.
pub fn caption_prompt<'a>(
    task: &'a Task,
    family: &str,
    use_prompt: bool,
) -> Option<&'a EnhancedPrompts> {
    task.mmdet_caption_prompt
        .get(family)
        .filter(|p| use_prompt && !p.is_empty())
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
    let chunked_size = opts.chunked_size(&det.model);
    let prompts = caption_prompt(task, &spec.family, opts.use_prompt);
    let groups = chunks(names.len(), chunked_size);
    let mut texts: Vec<(usize, GdinoText)> = groups
        .iter()
        .map(|g| Ok((g.start, det.encode(&names[g.clone()], prompts)?)))
        .collect::<Result<_>>()?;
    let mut log = format!(
        "task {}\nsplit {}\nfamily {}\nchunked_size {chunked_size}\ncaption_prompt {}\n",
        task.name,
        opts.split,
        spec.family,
        match (prompts, opts.use_prompt) {
            (Some(p), _) => serde_json::to_string(p)?,
            (None, true) => "none in mmdetection's configs".into(),
            (None, false) => "off (--no-prompt)".into(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{find, Suite};

    #[test]
    fn caption_prompt_follows_the_family_and_no_prompt() {
        let packages = find(Suite::Odinw35, "Packages").unwrap();
        let hands = find(Suite::Odinw35, "EgoHands_generic").unwrap();
        let mm = "mm-grounding-dino";
        assert!(caption_prompt(packages, "grounding-dino", true).is_some());
        assert!(caption_prompt(packages, mm, true).is_some());
        assert!(caption_prompt(packages, mm, false).is_none());
        assert!(caption_prompt(hands, mm, true)
            .unwrap()
            .contains_key("hand"));
        assert!(caption_prompt(hands, "grounding-dino", true).is_none());
        let bccd = find(Suite::Odinw35, "BCCD").unwrap();
        assert!(caption_prompt(bccd, mm, true).is_none());
    }
}

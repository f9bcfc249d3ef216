//! `odinw eval --track zeroshot`: runs an exported detector over a suite's tasks with GLIP's
//! protocol and writes a run (predictions, metrics, logs, manifest, summary, report files);
//! tasks already finished in `--out` are skipped, so an interrupted run resumes.
use super::args::{open_store, ModelRecord, RunArgs};
use crate::data::coco::CocoFile;
use crate::engine::runtime;
use crate::engine::SessionOptions;
use crate::model::ModelDir;
use crate::model::ModelSpec;
use crate::pipeline::canvas::CanvasMode;
use crate::pipeline::{detector, zeroshot, Detector};
use crate::registry::Task;
use crate::report::{self, formats, formats::Format, table::Aggregate};
use crate::run::guard;
use crate::run::{RunResults, RunStore, Track};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalTrack {
    /// No training: the model as exported.
    Zeroshot,
}

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The track (fine-tuning tracks are `odinw finetune`).
    #[arg(long, value_enum, default_value = "zeroshot")]
    pub track: EvalTrack,
    #[command(flatten)]
    pub run: RunArgs,
    /// TensorRT: build fp16 engines.
    #[arg(long)]
    pub fp16: bool,
    /// Images per inference batch. Each image runs on GLIP's canvas (its resize zero-padded to
    /// the next multiple of 32, as GLIP with TEST.IMS_PER_BATCH 1); images with the same canvas
    /// are batched, so this changes only the speed.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Mirror GLIP's TEST.IMS_PER_BATCH N instead: N consecutive images per batch, padded to
    /// the batch's largest (results then depend on N, as GLIP's do).
    #[arg(long, value_name = "N", conflicts_with = "fixed_canvas")]
    pub glip_batch: Option<usize>,
    /// Pad every image to the size the model was exported at (odinw before per-image
    /// canvases; not GLIP's protocol, for comparisons).
    #[arg(long)]
    pub fixed_canvas: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let run = &args.run;
    let tasks = run.select.select()?;
    let root = run.select.data_root()?;
    for t in &tasks {
        zeroshot::split_files(t, &root, &run.split)?;
    }
    let model = ModelDir::resolve(&run.model)?;
    let out = run.out_dir(format!(
        "runs/zeroshot-{}-{}",
        run.select.suite.name(),
        run.split
    ));
    let session = SessionOptions {
        fp16: args.fp16,
        ..run.session()
    };
    let max_batch = args.glip_batch.unwrap_or(args.batch).max(1);
    let mut detector = Detector::load(model, &session, max_batch)?;
    let loaded = runtime::ensure_loaded(run.device)?;
    let record = ModelRecord {
        files: detector.model.files(),
        precision: if args.fp16 {
            "fp16".into()
        } else {
            detector.model.spec.precision.clone()
        },
        loaded,
    };
    let canvas = match (args.glip_batch, args.fixed_canvas) {
        (Some(0), _) => bail!("--glip-batch must be at least 1"),
        (Some(n), _) => CanvasMode::GlipBatch(n),
        (None, true) => CanvasMode::Fixed,
        (None, false) => CanvasMode::PerImage,
    };
    let mut manifest = run.manifest(Track::ZeroShot, &tasks, &root, &record)?;
    manifest
        .extra
        .insert("canvas".into(), canvas_record(canvas, &detector).into());
    let store = open_store(&out, &manifest)?;
    for line in store.set_aside_unreadable()? {
        eprintln!("note: {line}");
    }

    let opts = zeroshot::Options {
        split: run.split.clone(),
        batch: args.batch,
        canvas,
        use_prompt: !run.no_prompt,
        fix_id0: run.fix_id0,
    };
    let spec = detector.model.spec.clone();
    let mut failed = Vec::new();
    for task in &tasks {
        if store.is_done(&task.name, None) {
            eprintln!("{:<28} done earlier, skipped", task.name);
            continue;
        }
        let started = std::time::Instant::now();
        let outcome = guard::isolate(
            || {
                guard::test_panic_hook(&task.name);
                zeroshot::run_task(&mut detector, task, &root, &opts, &store)
            },
            || image_behind_panic(&spec, task, &root, &run.split),
        );
        match outcome {
            Ok(o) => eprintln!(
                "{:<28} AP {:5.1}  {} images, {} detections, {:.1} s{}",
                task.name,
                o.stats[0] * 100.0,
                o.images,
                o.detections,
                o.seconds,
                o.steady_images_per_s
                    .map(|r| format!(" ({r:.2} images/s after the first batch)"))
                    .unwrap_or_default()
            ),
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("{:<28} FAILED: {msg}", task.name);
                store.fail_task(&task.name, None, &msg, started.elapsed().as_secs_f64())?;
                failed.push(task.name.clone());
            }
        }
    }
    finish_run(&store, run.json)?;
    if !failed.is_empty() {
        bail!("{} task(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// After a panic in `task`'s pipeline: the first image of `split` whose decoding and resizing
/// panics on its own (`None` if none does: the panic was elsewhere).
pub(super) fn image_behind_panic(
    spec: &ModelSpec,
    task: &Task,
    root: &Path,
    split: &str,
) -> Option<String> {
    let (ann, img_dir) = zeroshot::split_files(task, root, split).ok()?;
    let coco = CocoFile::read(&ann).ok()?;
    let paths = coco.images.iter().map(|im| img_dir.join(&im.file_name));
    guard::first_panicking(paths, |p| detector::prepare(spec, p)).map(|(p, _)| {
        format!(
            "on image {}, which panics when decoded and resized alone",
            p.display()
        )
    })
}

/// How the run put images on canvases, for its manifest.
fn canvas_record(canvas: CanvasMode, det: &Detector) -> String {
    let spec = &det.model.spec;
    let [h, w] = spec.preprocess.input_size;
    match canvas {
        _ if !spec.dynamic_canvas() => format!("fixed {h}x{w} (contract v1 model)"),
        CanvasMode::PerImage => {
            "GLIP's per image (resize, then each side up to a multiple of 32)".into()
        }
        CanvasMode::GlipBatch(n) => {
            format!("GLIP's TEST.IMS_PER_BATCH {n} (padded to each batch's largest)")
        }
        CanvasMode::Fixed => format!("fixed {h}x{w} (--fixed-canvas)"),
    }
}

/// Closes a run: summary, report files, and the table (or the summary as JSON) on stdout.
pub(super) fn finish_run(store: &RunStore, json: bool) -> Result<()> {
    let summary = store.finish_run()?;
    let results = RunResults::load(store.dir())?;
    let agg = Aggregate::of(&results)?;
    report::write_files(&agg, &store.dir().join("report"))?;
    report::write_html((&results, &agg), None, &store.dir().join("report"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let frame = formats::report_frame(&agg)?;
        print!(
            "{}",
            formats::render_text(&frame, Format::Table, &report::summary_notes(&agg))?
        );
        println!("run: {}", store.dir().display());
    }
    Ok(())
}

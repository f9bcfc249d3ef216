//! `odinw eval --track zeroshot`: runs an exported detector over a suite's tasks with GLIP's
//! protocol and writes a run (predictions, metrics, logs, manifest, summary, report files);
//! tasks already finished in `--out` are skipped, so an interrupted run resumes. An OWLv2 model
//! directory (model.json `"family": "owlv2"`) runs through [`owlv2_eval`] on the same driver, a
//! Grounding DINO / MM-Grounding-DINO one through [`grounding_dino_eval`].
use super::args::RunArgs;
use super::reporter::Terminal;
use crate::engine::runtime;
use crate::engine::SessionOptions;
use crate::model::canvas::CanvasMode;
use crate::model::grounding_dino::{is_grounding_dino, GdinoDir};
use crate::model::owlv2::{Owlv2Dir, OWLV2_FAMILY};
use crate::model::ModelDir;
use crate::pipeline::grounding_dino::GdinoDetector;
use crate::pipeline::owlv2::Owlv2Detector;
use crate::pipeline::{grounding_dino_eval, owlv2_eval, zeroshot, Detector};
use crate::registry::Task;
use crate::report;
use crate::run::shard::Workload;
use crate::run::{Driver, ModelRecord, RunStore, Track, UnitReport};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
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
    #[arg(long, default_value_t = 1, value_parser = at_least_one())]
    pub batch: usize,
    /// Mirror GLIP's TEST.IMS_PER_BATCH N instead: N consecutive images per batch, padded to
    /// the batch's largest (results then depend on N, as GLIP's do).
    #[arg(long, value_name = "N", conflicts_with = "fixed_canvas", value_parser = at_least_one())]
    pub glip_batch: Option<usize>,
    /// Pad every image to the size the model was exported at (odinw before per-image
    /// canvases; not GLIP's protocol, for comparisons).
    #[arg(long)]
    pub fixed_canvas: bool,
    /// Grounding DINO / MM-Grounding-DINO: classes per caption (mmdetection's test_cfg
    /// `chunked_size`; 0: every class in one caption), instead of model.json's
    /// `text.caption.chunked_size`.
    #[arg(long, value_name = "N")]
    pub chunked_size: Option<usize>,
}

/// A count of 1 or more; clap refuses others as an invalid command line (exit code 2).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// `--chunked-size` is a Grounding DINO option: refused for the other families.
fn refuse_chunked_size(args: &Args, family: &str) -> Result<()> {
    if args.chunked_size.is_some() {
        bail!("--chunked-size splits a Grounding DINO caption; a {family} model does not take it");
    }
    Ok(())
}

pub fn run(args: Args) -> Result<ExitCode> {
    let run = &args.run;
    let tasks = run.select.select()?;
    let root = run.select.data_root()?;
    super::args::check_splits(&tasks, &root, &[&run.split])?;
    match ModelDir::family_of(&run.model).as_deref() {
        Some(OWLV2_FAMILY) => return run_owlv2(&args, &tasks, &root),
        Some(f) if is_grounding_dino(f) => return run_grounding_dino(&args, &tasks, &root),
        _ => {}
    }
    refuse_chunked_size(&args, "GLIP")?;
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
        (Some(n), _) => CanvasMode::GlipBatch(n),
        (None, true) => CanvasMode::Fixed,
        (None, false) => CanvasMode::PerImage,
    };
    let mut manifest = run
        .setup(Track::ZeroShot, &tasks, &root)
        .manifest(&record)?;
    manifest
        .extra
        .insert("canvas".into(), canvas_record(canvas, &detector).into());
    let work = Workload {
        split: &run.split,
        finetune: None,
    };
    let sharding = run.shard.sharding(&tasks, &root, &work)?;
    let terminal = Terminal::lines();
    let driver = Driver::open_shard(&out, &manifest, &terminal, sharding)?;

    let opts = zeroshot::Options {
        split: run.split.clone(),
        batch: args.batch,
        canvas,
        use_prompt: !run.no_prompt,
        fix_id0: run.fix_id0,
    };
    let spec = detector.model.spec.clone();
    let failed = driver.run_units(
        &tasks,
        |task, _| zeroshot::run_task(&mut detector, task, &root, &opts, driver.store()),
        |task| zeroshot::image_behind_panic(&spec, task, &root, &run.split),
    )?;
    finish(run, driver, &failed, &out)
}

/// `run` for an OWLv2 model directory: each task through [`owlv2_eval::run_task`].
fn run_owlv2(args: &Args, tasks: &[&'static Task], root: &Path) -> Result<ExitCode> {
    let run = &args.run;
    if args.glip_batch.is_some() || args.fixed_canvas {
        bail!("--glip-batch and --fixed-canvas are GLIP's canvases; an OWLv2 model takes one square input");
    }
    refuse_chunked_size(args, "OWLv2")?;
    let model = Owlv2Dir::open(Path::new(&run.model))?;
    let mut detector = Owlv2Detector::load(model, &family_session(args))?;
    let model = detector.model.clone();
    let spec = &model.spec;
    let [s, _] = spec.preprocess.input_size;
    let family = FamilyManifest {
        family: OWLV2_FAMILY.into(),
        files: model.files(),
        precision: spec.precision.clone(),
        canvas: format!("OWLv2's {s}x{s} square (padded to a square, then resized)"),
        queries: format!(
            "class names in {} prompt templates, logits averaged; top {} per image",
            spec.text.prompts.templates.len(),
            spec.postprocess.evaluation.top_k
        ),
    };
    let opts = owlv2_eval::Options {
        split: run.split.clone(),
        batch: args.batch,
        use_prompt: !run.no_prompt,
        fix_id0: run.fix_id0,
    };
    run_family(
        args,
        tasks,
        root,
        family,
        |task, store| owlv2_eval::run_task(&mut detector, task, root, &opts, store),
        |task| owlv2_eval::image_behind_panic(&model, task, root, &run.split),
    )
}

/// `run` for a Grounding DINO / MM-Grounding-DINO model directory: each task through
/// [`grounding_dino_eval::run_task`].
fn run_grounding_dino(args: &Args, tasks: &[&'static Task], root: &Path) -> Result<ExitCode> {
    let run = &args.run;
    if args.glip_batch.is_some() || args.fixed_canvas {
        bail!("--glip-batch and --fixed-canvas are GLIP's canvases; a Grounding DINO model takes its one fixed canvas");
    }
    let model = GdinoDir::open(Path::new(&run.model))?;
    let mut detector = GdinoDetector::load(model, &family_session(args))?;
    let model = detector.model.clone();
    let spec = &model.spec;
    let p = &spec.preprocess;
    let opts = grounding_dino_eval::Options {
        split: run.split.clone(),
        batch: args.batch,
        fix_id0: run.fix_id0,
        use_prompt: !run.no_prompt,
        chunked_size: args.chunked_size.map(|n| n as i64),
    };
    let family = FamilyManifest {
        family: spec.family.clone(),
        files: model.files(),
        precision: spec.precision.clone(),
        canvas: format!(
            "fixed {}x{} (resized to short side {} / long side at most {}, padded bottom/right)",
            p.canvas[0], p.canvas[1], p.shortest_edge, p.longest_edge
        ),
        queries: format!(
            "category names as mmdetection's caption, {}, chunked_size {}; top {} per image and caption",
            if run.no_prompt {
                "plain names (--no-prompt)"
            } else {
                "with the caption_prompt of mmdetection's ODinW configs"
            },
            opts.chunked_size(&model),
            spec.postprocess.top_k
        ),
    };
    run_family(
        args,
        tasks,
        root,
        family,
        |task, store| grounding_dino_eval::run_task(&mut detector, task, root, &opts, store),
        |task| grounding_dino_eval::image_behind_panic(&model, task, root, &run.split),
    )
}

/// The session options of a non-GLIP family's graphs.
fn family_session(args: &Args) -> SessionOptions {
    SessionOptions {
        fp16: args.fp16,
        ..args.run.session()
    }
}

/// What a non-GLIP family's run records: its model files and precision, and the manifest's
/// `family`, `canvas` and `queries` entries.
struct FamilyManifest {
    family: String,
    files: Vec<PathBuf>,
    precision: String,
    canvas: String,
    queries: String,
}

/// A non-GLIP family's run: the same run folder, manifest, driver, shards and report as GLIP's,
/// each task through the family's `run_task` (`behind_panic`: the image a panic came from).
fn run_family<T: UnitReport>(
    args: &Args,
    tasks: &[&'static Task],
    root: &Path,
    family: FamilyManifest,
    mut run_task: impl FnMut(&Task, &RunStore) -> Result<T>,
    behind_panic: impl FnMut(&Task) -> Option<String>,
) -> Result<ExitCode> {
    let run = &args.run;
    let out = run.out_dir(format!(
        "runs/zeroshot-{}-{}",
        run.select.suite.name(),
        run.split
    ));
    let loaded = runtime::ensure_loaded(run.device)?;
    let record = ModelRecord {
        files: family.files,
        precision: if args.fp16 {
            "fp16".into()
        } else {
            family.precision
        },
        loaded,
    };
    let mut manifest = run.setup(Track::ZeroShot, tasks, root).manifest(&record)?;
    for (key, value) in [
        ("family", family.family),
        ("canvas", family.canvas),
        ("queries", family.queries),
    ] {
        manifest.extra.insert(key.into(), value.into());
    }
    let work = Workload {
        split: &run.split,
        finetune: None,
    };
    let sharding = run.shard.sharding(tasks, root, &work)?;
    let terminal = Terminal::lines();
    let driver = Driver::open_shard(&out, &manifest, &terminal, sharding)?;
    let failed = driver.run_units(
        tasks,
        |task, _| run_task(task, driver.store()),
        behind_panic,
    )?;
    finish(run, driver, &failed, &out)
}

/// Every family's end of a run: merge or close it, say so, and fail if a task failed.
fn finish(
    run: &RunArgs,
    driver: Driver,
    failed: &[String],
    out: &std::path::Path,
) -> Result<ExitCode> {
    let finish = driver.finish(&report::ReportFiles)?;
    run.print_finish(&finish, out)?;
    if !failed.is_empty() {
        bail!("{} task(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
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

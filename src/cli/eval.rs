//! `odinw eval --track zeroshot`: runs an exported detector over a suite's tasks with GLIP's
//! protocol and writes a run (predictions, metrics, logs, manifest, summary, report files);
//! tasks already finished in `--out` are skipped, so an interrupted run resumes.
use crate::engine::runtime::{self, Device};
use crate::engine::{IoBinding, SessionOptions};
use crate::model::{embedded, ModelDir};
use crate::pipeline::{zeroshot, Detector};
use crate::registry::{self, Suite};
use crate::report::{self, formats, formats::Format, table::Aggregate};
use crate::run::{DatasetRecord, FileRecord, Manifest, RunResults, RunStore, RuntimeRecord, Track};
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
    /// A model directory (model.json + ONNX graphs), or `demo` for the embedded tiny model.
    #[arg(long, default_value = "demo")]
    pub model: String,
    /// Which suite's tasks and prompts.
    #[arg(long, value_enum, default_value = "odinw35")]
    pub suite: Suite,
    /// Only these tasks (comma-separated, case-insensitive).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// The split to score: `test` (the challenge's) or `val`/`minival` (GLIP's README numbers).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Dataset root (default: $ODINW_ROOT, else ./DATASET; the demo suite's bundled data).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// TensorRT: build fp16 engines.
    #[arg(long)]
    pub fp16: bool,
    /// Images per inference batch.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Keep tensors in GPU memory between the graphs (auto: on for cuda and tensorrt).
    #[arg(long, value_enum, default_value = "auto")]
    pub io_binding: IoBinding,
    /// ONNX Runtime threads per operator on CPU (0 = its default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Plain class names, ignoring the tasks' CAPTION_PROMPTs.
    #[arg(long)]
    pub no_prompt: bool,
    /// Score as if annotation ids started at 1 (see `odinw score --help`).
    #[arg(long)]
    pub fix_id0: bool,
    /// The run folder (default: runs/<track>-<suite>-<split>); re-running resumes it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let tasks = registry::select(args.suite, &args.tasks)?;
    let root = match (&args.root, args.suite) {
        (Some(r), _) => r.clone(),
        (None, Suite::Demo) => embedded::demo_data_root()?,
        (None, _) => registry::data_root(None),
    };
    for t in &tasks {
        zeroshot::split_files(t, &root, &args.split)?;
    }
    let model = ModelDir::resolve(&args.model)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/zeroshot-{}-{}",
            args.suite.name(),
            args.split
        ))
    });
    let session = SessionOptions {
        device: args.device,
        threads: args.threads,
        fp16: args.fp16,
        io_binding: args.io_binding,
        ..SessionOptions::default()
    };
    let mut detector = Detector::load(model, &session)?;
    let loaded = runtime::ensure_loaded(args.device)?;
    let store = open_store(&args, &out, &tasks, &root, &detector.model, loaded)?;

    let opts = zeroshot::Options {
        split: args.split.clone(),
        batch: args.batch,
        use_prompt: !args.no_prompt,
        fix_id0: args.fix_id0,
    };
    let mut failed = Vec::new();
    for task in &tasks {
        if store.is_done(&task.name, None) {
            eprintln!("{:<28} done earlier, skipped", task.name);
            continue;
        }
        let started = std::time::Instant::now();
        match zeroshot::run_task(&mut detector, task, &root, &opts, &store) {
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
    finish_run(&store, args.json)?;
    if !failed.is_empty() {
        bail!("{} task(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Closes a run: summary, report files, and the table (or the summary as JSON) on stdout.
pub(super) fn finish_run(store: &RunStore, json: bool) -> Result<()> {
    let summary = store.finish_run()?;
    let agg = Aggregate::of(&RunResults::load(store.dir())?)?;
    report::write_files(&agg, &store.dir().join("report"))?;
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

fn open_store(
    args: &Args,
    out: &Path,
    tasks: &[&registry::Task],
    root: &Path,
    model: &ModelDir,
    loaded: &runtime::Loaded,
) -> Result<RunStore> {
    let mut m = Manifest::new(
        Track::ZeroShot,
        args.suite.name(),
        &args.split,
        tasks.iter().map(|t| t.name.clone()).collect(),
    );
    m.prompts = if args.no_prompt {
        "class-names".into()
    } else {
        args.suite.name().into()
    };
    m.models = model
        .files()
        .iter()
        .map(|f| FileRecord::of(f))
        .collect::<Result<_>>()?;
    m.runtime = Some(RuntimeRecord {
        ort_version: loaded.version.clone(),
        execution_provider: format!("{:?}", args.device).to_lowercase(),
        precision: if args.fp16 {
            "fp16".into()
        } else {
            model.spec.precision.clone()
        },
    });
    m.datasets = tasks
        .iter()
        .map(|t| {
            let ann = t.ann_file(root, &args.split).unwrap();
            Ok(DatasetRecord {
                task: t.name.clone(),
                files: vec![FileRecord::of(&ann)?],
            })
        })
        .collect::<Result<_>>()?;
    if out.join("manifest.json").exists() {
        RunStore::resume(out, &m)
    } else {
        RunStore::create(out, &m)
    }
}

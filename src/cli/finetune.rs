//! `odinw finetune`: the fine-tuning tracks (prompt tuning, linear probing, full fine-tuning)
//! on k-shot splits × seeds, trained natively on ONNX Runtime from the model's training graphs,
//! checkpoint selected on the few-shot split GLIP selects on (the registry's
//! `val_split_during_ft`: `val`, or `minival` for 11 tasks), scored on test; writes a run store
//! (`RUN/<task>/seed<S>/`) that `odinw report` and `odinw submit` read. Re-running resumes.
use super::args::{ModelRecord, RunArgs};
use crate::engine::runtime;
use crate::model::ModelDir;
use crate::pipeline::zeroshot;
use crate::prompt::PromptTokenizer;
use crate::registry;
use crate::run::{guard, FinetuneTask, RunStore, Track};
use crate::train::fewshot;
use crate::train::graphs::TrackGraphs;
use crate::train::manifest::{TrainManifest, TrainTrack};
use crate::train::params::Params;
use crate::train::trainer::{self, RunContext};
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Training-step graphs (loss and gradients as plain ONNX operators) on stock ONNX Runtime.
    StepGraphs,
    /// ONNX Runtime's training API (needs an ONNX Runtime built with training support).
    OrtTraining,
}

#[derive(clap::Args, Clone)]
pub struct Args {
    /// What to train: `prompt` (GLIP's language_prompt_v2), `linear` (linear_prob) or `full`.
    #[arg(long, value_enum, default_value = "prompt")]
    pub track: TrainTrack,
    /// k of k-shot (GLIP: 1, 3, 5, 10); 0 trains on the whole training split.
    #[arg(long, default_value_t = 3)]
    pub shots: u32,
    /// Seeds of the k-shot subsets (the challenge's are 3, 30, 300).
    #[arg(long, value_delimiter = ',', default_value = "3,30,300")]
    pub seeds: Vec<u64>,
    #[command(flatten)]
    pub run: RunArgs,
    /// How gradients are computed.
    #[arg(long, value_enum, default_value = "step-graphs")]
    pub backend: Backend,
    /// `--backend ort-training`: the onnxruntime-training artifacts folder
    /// (scripts/make_ort_training_artifacts.py) [default: <model>/train/ort_training/<track>].
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// GENERAL_COPY, the times the training set is repeated per epoch: `recipe` (GLIP README's
    /// 1-shot ×8, 3-shot ×4, 5-shot ×2, 10-shot and full data ×1; other shot counts take the
    /// task's value), `task` (the task yaml's GENERAL_COPY, from the registry: GLIP's finetune.py
    /// without --custom_shot_and_epoch_and_general_copy), or a number.
    #[arg(long, default_value = "recipe")]
    pub general_copy: fewshot::CopyChoice,
    /// Most epochs (GLIP: 200; early stopping usually ends sooner).
    #[arg(long, default_value_t = 200)]
    pub max_epochs: usize,
    /// Evaluations without improvement before the learning rate drops ×0.1 (GLIP: 3; 2 for full data).
    #[arg(long)]
    pub step_patience: Option<usize>,
    /// Evaluations without improvement before training stops (GLIP: 8; 4 for full data).
    #[arg(long)]
    pub stop_patience: Option<usize>,
    /// Base learning rate (default: the track's recipe in the training graphs' manifest).
    #[arg(long)]
    pub lr: Option<f32>,
    /// One line per epoch on stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    if args.backend == Backend::OrtTraining {
        return ort_training(&args);
    }
    let run = &args.run;
    let tasks = run.select.select()?;
    let root = run.select.data_root()?;
    for t in &tasks {
        zeroshot::split_files(t, &root, "train")?;
        zeroshot::split_files(t, &root, &run.split)?;
    }
    let model = ModelDir::resolve(&run.model)?;
    let manifest = TrainManifest::load(&model, args.track)?;
    let initial = Params::read(&manifest.path_of(&manifest.params_file), &manifest.params)?;
    let out = run.out_dir(format!(
        "runs/finetune-{}-{}-{}shot",
        args.track.name(),
        run.select.suite.name(),
        args.shots
    ));
    let session = run.session();
    let loaded = runtime::ensure_loaded(run.device)?;
    let mut graphs = TrackGraphs::open(&model, manifest, &session)?;
    let store = open_store(&args, &out, &tasks, &root, &model, &graphs.manifest, loaded)?;
    for line in store.set_aside_unreadable()? {
        eprintln!("note: {line}");
    }
    let tokenizer = PromptTokenizer::from_file(&model.tokenizer())?;
    let spec = &model.spec;
    let post = spec.postprocess.config();
    let ctx = RunContext {
        spec,
        session: &session,
        tokenizer: &tokenizer,
        post: &post,
        initial: &initial,
    };
    let full_data = args.shots == 0;
    let opts = trainer::Options {
        shots: args.shots,
        general_copy: args.general_copy,
        max_epochs: args.max_epochs,
        step_patience: args.step_patience.unwrap_or(if full_data { 2 } else { 3 }),
        stop_patience: args.stop_patience.unwrap_or(if full_data { 4 } else { 8 }),
        base_lr: args.lr,
        use_prompt: !run.no_prompt,
        fix_id0: run.fix_id0,
        test_split: run.split.clone(),
        verbose: args.verbose,
        progress: if std::io::stderr().is_terminal() && !args.verbose && !run.json {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        },
    };
    let mut failed = Vec::new();
    // Lines go above the progress line (plain eprintln when there is none).
    let say = |line: String| opts.progress.suspend(|| eprintln!("{line}"));
    for task in &tasks {
        for &seed in &args.seeds {
            if store.is_done(&task.name, Some(seed)) {
                say(format!(
                    "{:<24} seed {seed:<4} done earlier, skipped",
                    task.name
                ));
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = guard::isolate(
                || {
                    guard::test_panic_hook(&task.name);
                    trainer::run_task(&ctx, &mut graphs, task, &root, seed, &opts, &store)
                },
                || {
                    ["train", run.split.as_str()]
                        .into_iter()
                        .find_map(|split| super::eval::image_behind_panic(spec, task, &root, split))
                },
            );
            match outcome {
                Ok(o) => say(format!(
                    "{:<24} seed {seed:<4} test AP {:5.1}  ({} AP {:5.1} -> {:5.1}, best epoch {}, {} epochs, copy ×{}, {:.1} s)",
                    task.name,
                    o.stats[0] * 100.0,
                    o.val_split,
                    o.initial_val_ap * 100.0,
                    o.best_val_ap * 100.0,
                    o.best_epoch.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
                    o.epochs,
                    o.general_copy,
                    o.seconds
                )),
                Err(e) => {
                    let msg = format!("{e:#}");
                    say(format!("{:<24} seed {seed:<4} FAILED: {msg}", task.name));
                    store.fail_task(&task.name, Some(seed), &msg, started.elapsed().as_secs_f64())?;
                    failed.push(format!("{}/seed{seed}", task.name));
                }
            }
        }
    }
    opts.progress.finish_and_clear();
    super::eval::finish_run(&store, run.json)?;
    if !failed.is_empty() {
        bail!("{} run(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn open_store(
    args: &Args,
    out: &Path,
    tasks: &[&registry::Task],
    root: &Path,
    model: &ModelDir,
    train: &TrainManifest,
    loaded: &runtime::Loaded,
) -> Result<RunStore> {
    let track = if args.shots == 0 {
        Track::FullShot
    } else {
        Track::FewShot
    };
    let mut files = model.files();
    files.push(train.dir.join(format!("{}.json", args.track.name())));
    for file in [&train.params_file, &train.step.file, &train.predict.file] {
        files.push(train.path_of(file));
    }
    if let Some(f) = &train.features {
        files.push(train.path_of(&f.file));
    }
    let record = ModelRecord {
        files,
        precision: model.spec.precision.clone(),
        loaded,
    };
    let mut m = args.run.manifest(track, tasks, root, &record)?;
    m.shots = (args.shots > 0).then_some(args.shots);
    for t in tasks {
        let (copies, origin) = fewshot::general_copy(t, args.shots, args.general_copy);
        m.finetune_tasks.insert(
            t.name.clone(),
            FinetuneTask {
                selection_split: fewshot::selection_split(t)?.to_string(),
                general_copy: copies,
                general_copy_origin: origin,
            },
        );
    }
    m.seeds = args.seeds.clone();
    m.extra.insert(
        "finetune".into(),
        serde_json::json!({
            "track": args.track.name(),
            "backend": format!("{:?}", args.backend),
            "max_epochs": args.max_epochs,
            "lr": args.lr,
        }),
    );
    super::args::open_store(out, &m)
}

/// Backend 2: opens the onnxruntime-training artifacts through ONNX Runtime's training API.
/// Stock ONNX Runtime has no such API, so this fails with the library's path and what to do.
/// No training-enabled library could be obtained where odinw is developed, so the epoch loop
/// runs on the step-graph backend only; with such a library this reports what it loaded.
fn ort_training(args: &Args) -> Result<ExitCode> {
    let model = ModelDir::resolve(&args.run.model)?;
    let dir = args.artifacts.clone().unwrap_or_else(|| {
        model
            .dir
            .join("train")
            .join("ort_training")
            .join(args.track.name())
    });
    runtime::ensure_loaded(args.run.device)?;
    let backend = crate::train::ort_training::OrtTrainingBackend::open(&dir, args.run.device)?;
    bail!(
        "{} opened with ONNX Runtime's training API ({} trainable tensors), but odinw's epoch \
         loop is only connected to the default backend (--backend step-graphs); the training-API \
         loop is untested because no ONNX Runtime with training support could be run here",
        dir.display(),
        backend.trainable_parameters().map(|p| p.len()).unwrap_or(0)
    )
}

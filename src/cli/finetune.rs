//! `odinw finetune`: the fine-tuning tracks (prompt tuning, linear probing, full fine-tuning)
//! on k-shot splits × seeds, trained natively on ONNX Runtime from the model's training graphs,
//! checkpoint selected on the few-shot split GLIP selects on (the registry's
//! `val_split_during_ft`: `val`, or `minival` for 11 tasks), scored on test; writes a run store
//! (`RUN/<task>/seed<S>/`) that `odinw report` and `odinw submit` read. Re-running resumes.
use super::args::RunArgs;
use super::reporter::Terminal;
use crate::engine::runtime;
use crate::model::ModelDir;
use crate::pipeline::zeroshot;
use crate::prompt::PromptTokenizer;
use crate::registry;
use crate::report;
use crate::run::shard::{FinetuneWork, Workload};
use crate::run::{Driver, Manifest, ModelRecord, Track};
use crate::train::fewshot;
use crate::train::graphs::TrackGraphs;
use crate::train::manifest::{TrainManifest, TrainTrack};
use crate::train::params::Params;
use crate::train::trainer::{self, RunContext};
use crate::util::reporter::Progress;
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    super::args::check_splits(&tasks, &root, &["train", &run.split])?;
    let model = ModelDir::resolve_for_finetune(&run.model)?;
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
    let terminal = Arc::new(
        if std::io::stderr().is_terminal() && !args.verbose && !run.json {
            Terminal::spinner()?
        } else {
            Terminal::lines()
        },
    );
    let run_manifest = run_manifest(&args, &tasks, &root, &model, &graphs.manifest, loaded)?;
    let sharding = run
        .shard
        .sharding(&tasks, &root, &workload(&args, &tasks)?)?;
    let driver = Driver::open_shard(&out, &run_manifest, terminal.as_ref(), sharding)?;
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
        progress: Progress::new(terminal.clone()),
    };
    let failed = driver.run_units(
        &tasks,
        |task, seed| {
            let seed = seed.expect("a fine-tuning run has seeds");
            trainer::run_task(&ctx, &mut graphs, task, &root, seed, &opts, driver.store())
        },
        |task| {
            ["train", run.split.as_str()]
                .into_iter()
                .find_map(|split| zeroshot::image_behind_panic(spec, task, &root, split))
        },
    )?;
    terminal.finish();
    let finish = driver.finish(&report::ReportFiles)?;
    run.print_finish(&finish, &out)?;
    if !failed.is_empty() {
        bail!("{} run(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// What each unit of the run does, for its estimated cost (`--shard`, `odinw plan`).
pub(super) fn workload<'a>(args: &'a Args, tasks: &[&registry::Task]) -> Result<Workload<'a>> {
    let mut general_copy = Vec::new();
    let mut selection_split = Vec::new();
    for t in tasks {
        general_copy.push(fewshot::general_copy(t, args.shots, args.general_copy).0);
        selection_split.push(fewshot::selection_split(t)?.to_string());
    }
    Ok(Workload {
        split: &args.run.split,
        finetune: Some(FinetuneWork {
            shots: args.shots,
            seeds: &args.seeds,
            max_epochs: args.max_epochs,
            general_copy,
            selection_split,
        }),
    })
}

/// The run's manifest: the common part, the training graphs' files, k, the seeds, and per task
/// the selection split and GENERAL_COPY.
fn run_manifest(
    args: &Args,
    tasks: &[&registry::Task],
    root: &Path,
    model: &ModelDir,
    train: &TrainManifest,
    loaded: &runtime::Loaded,
) -> Result<Manifest> {
    let track = if args.shots == 0 {
        Track::FullShot
    } else {
        Track::FewShot
    };
    let record = ModelRecord {
        files: train.files(model),
        precision: model.spec.precision.clone(),
        loaded,
    };
    let mut m = args.run.setup(track, tasks, root).manifest(&record)?;
    fewshot::record_in_manifest(&mut m, tasks, args.shots, args.general_copy, &args.seeds)?;
    m.extra.insert(
        "finetune".into(),
        serde_json::json!({
            "track": args.track.name(),
            "backend": format!("{:?}", args.backend),
            "max_epochs": args.max_epochs,
            "lr": args.lr,
        }),
    );
    Ok(m)
}

/// Backend 2: opens the onnxruntime-training artifacts through ONNX Runtime's training API.
/// Stock ONNX Runtime has no such API, so this fails with the library's path and what to do.
/// No training-enabled library could be obtained where odinw is developed, so the epoch loop
/// runs on the step-graph backend only; with such a library this reports what it loaded.
fn ort_training(args: &Args) -> Result<ExitCode> {
    let model = ModelDir::resolve_for_finetune(&args.run.model)?;
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

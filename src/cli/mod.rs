//! Command-line interface: one file per subcommand, each a thin layer over the library
//! (`args` holds the arguments several share).
mod args;
mod bench_step;
mod demo;
mod doctor;
mod download;
mod download_bars;
mod eval;
mod finetune;
mod info;
mod launch;
mod list;
mod merge;
mod normalize;
mod plan;
mod prompt;
mod report;
mod reporter;
mod score;
mod splits;
mod submission;
mod submit;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "odinw",
    version,
    about = "Benchmark harness for Object Detection in the Wild (ODinW)"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time one training step of a model's training graphs (for benchmarks).
    #[command(name = "bench-step")]
    BenchStep(bench_step::Args),
    /// Run the zero-shot track on the bundled demo suite with the embedded model (offline).
    Demo(demo::Args),
    /// Evaluate a detector on a suite (zero-shot track), GLIP's protocol, resumable.
    Eval(eval::Args),
    /// Fine-tune on k-shot splits × seeds (prompt tuning, linear probing, full), on ONNX Runtime.
    Finetune(finetune::Args),
    /// List the tasks of a suite, with what is on disk.
    List(list::Args),
    /// The units an `eval` or `finetune` command would run, their costs and shards (--shards N).
    #[command(subcommand)]
    Plan(plan::Command),
    /// Close a run written by shards: summary, report, manifest; list what is missing.
    Merge(merge::Args),
    /// Run a command's shards on Slurm (job array + merge job) or Kubernetes (Indexed Job).
    #[command(subcommand)]
    Launch(launch::Command),
    /// Show what odinw finds: ONNX Runtime, execution providers, GPU, TensorRT.
    Doctor(doctor::Args),
    /// Show one task: folder, splits, categories, prompts, few-shot files.
    Info(info::Args),
    /// Few-shot splits as GLIP samples them (any shots and seeds), or --check GLIP's files.
    Splits(splits::Args),
    /// Fetch, verify, extract and normalise datasets into GLIP's layout (resumable).
    Download(download::Args),
    /// Re-check downloaded datasets offline against their manifests (sha256 of every file).
    Verify(verify::Args),
    /// Write GLIP's annotations_without_background.json for RoboFlow COCO exports, and validate.
    Normalize(normalize::Args),
    /// Score a results file against COCO ground truth: pycocotools' bbox AP, exactly.
    Score(score::Args),
    /// Show the caption GLIP queries a task with and each class's token positions.
    Prompt(prompt::Args),
    /// Tables, chart and summary of a run; `--compare` puts two runs side by side.
    Report(report::Args),
    /// Write a run's predictions as an EvalAI submission file.
    Submit(submit::Args),
    /// Work with EvalAI submission files.
    #[command(subcommand)]
    Submission(submission::Command),
}

/// Exit code of a command that ran but found problems (`submission check`, `report --strict`).
pub(crate) const EXIT_PROBLEMS: u8 = 3;

/// Runs the command line and maps failures to exit codes (1 = failed, 2 = usage).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The runtime's notices (installing ONNX Runtime, ...) go to stderr.
    crate::engine::runtime::set_reporter(Box::new(reporter::Terminal::lines()));
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::BenchStep(a) => bench_step::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Finetune(a) => finetune::run(a),
        Command::List(a) => list::run(a),
        Command::Plan(c) => plan::run(c),
        Command::Merge(a) => merge::run(a),
        Command::Launch(c) => launch::run(c),
        Command::Info(a) => info::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Splits(a) => splits::run(a),
        Command::Download(a) => download::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Normalize(a) => normalize::run(a),
        Command::Score(a) => score::run(a),
        Command::Prompt(a) => prompt::run(a),
        Command::Report(a) => report::run(a),
        Command::Submit(a) => submit::run(a),
        Command::Submission(c) => submission::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

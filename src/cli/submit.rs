//! `odinw submit RUN --out FILE`: the run's predictions as one EvalAI submission file.
use crate::run::run_name;
use crate::submission::keys::KeyMap;
use crate::submission::write::{write_submission, SubmitOptions};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// The submission file [default: submissions/<run name>.json].
    #[arg(long)]
    out: Option<PathBuf>,
    /// JSON map {"<task>": "<key>"} for keys the leaderboard spells unlike the registry.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Leave out tasks or seeds without predictions instead of refusing.
    #[arg(long)]
    allow_missing: bool,
    /// Accept a run on another split than test.
    #[arg(long)]
    any_split: bool,
    /// The seed to submit of a full-shot run with several (`finetune --shots 0 --seeds ...`).
    #[arg(long)]
    seed: Option<u64>,
    /// Print a JSON object describing what was written.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("submissions").join(format!("{}.json", run_name(&args.run)))
    });
    let keys = match &args.keys {
        Some(p) => KeyMap::from_file(p)?,
        None => KeyMap::registry(),
    };
    let opts = SubmitOptions {
        keys,
        allow_missing: args.allow_missing,
        any_split: args.any_split,
        seed: args.seed,
    };
    let manifest = crate::run::RunStore::open(&args.run)?.manifest()?;
    let tasks = manifest.tasks.len();
    let bar = if std::io::stderr().is_terminal() && !args.json {
        let b = ProgressBar::new(tasks as u64);
        b.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")?);
        b
    } else {
        ProgressBar::hidden()
    };
    let written = write_submission(&args.run, &out, &opts, |task| {
        bar.set_message(task.to_string());
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        println!(
            "wrote {}: {} submission{}, {} tasks, {} results",
            written.file.display(),
            written.track,
            written
                .seed
                .map(|s| format!(" (seed {s})"))
                .unwrap_or_default(),
            written.tasks,
            written.results
        );
        for n in &written.notes {
            eprintln!("note: {n}");
        }
        if !written.left_out.is_empty() {
            println!("left out (no predictions): {}", written.left_out.join(", "));
        }
        println!(
            "check it with: odinw submission check {}{}",
            written.file.display(),
            check_options(&manifest)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The `submission check` options that fit the run: its suite when it holds all of the suite's
/// tasks, and its split when that is not test.
fn check_options(m: &crate::run::Manifest) -> String {
    use clap::ValueEnum;
    let mut opts = String::new();
    if let Ok(suite) = crate::registry::Suite::from_str(&m.suite, true) {
        let all = crate::registry::tasks(suite)
            .iter()
            .all(|t| m.tasks.contains(&t.name));
        if all {
            opts.push_str(&format!(" --suite {}", m.suite));
        }
    }
    if m.split != "test" {
        opts.push_str(&format!(" --split {}", m.split));
    }
    opts
}

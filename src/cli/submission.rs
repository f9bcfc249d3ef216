//! `odinw submission check FILE`: validates an EvalAI submission against the test annotations
//! and names each problem; exits 3 when there is any.
use super::EXIT_PROBLEMS;
use crate::registry::Suite;
use crate::run::Track;
use crate::submission::check::{check_file, CheckOptions, CHALLENGE_SEEDS};
use crate::submission::keys::KeyMap;
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Check a submission file: task keys, seeds, ids against the test annotations, finite
    /// scores and boxes. Exit 0 when valid, 3 when problems were found.
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The submission JSON file.
    file: PathBuf,
    /// Dataset root with the test annotations (default: $ODINW_ROOT, else ./DATASET; with
    /// `--suite demo`, the demo suite's bundled data, as `eval` does).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Require every task of the suite (odinw35 when given without a value).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "odinw35")]
    suite: Option<Suite>,
    /// Require this track's shape (few-shot: seed objects; others: results lists).
    #[arg(long, value_enum)]
    track: Option<Track>,
    /// The split whose annotations hold the valid ids.
    #[arg(long, default_value = "test")]
    split: String,
    /// Seeds each few-shot task must have, exactly.
    #[arg(long, value_delimiter = ',', default_values_t = CHALLENGE_SEEDS.map(String::from))]
    seeds: Vec<String>,
    /// Check keys, shapes and values only, not ids (no annotations needed).
    #[arg(long)]
    no_ids: bool,
    /// JSON map {"<task>": "<key>"} for keys the leaderboard spells unlike the registry.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Problems shown per kind, task and seed (all are counted).
    #[arg(long, default_value_t = 10)]
    max_examples: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let opts = CheckOptions {
        root: match args.no_ids {
            true => None,
            false => Some(super::args::data_root(
                args.suite.unwrap_or(Suite::Odinw35),
                args.root.as_deref(),
            )?),
        },
        split: args.split.clone(),
        suite: args.suite,
        track: args.track,
        seeds: args.seeds.clone(),
        keys: match &args.keys {
            Some(p) => KeyMap::from_file(p)?,
            None => KeyMap::registry(),
        },
        max_examples: args.max_examples.max(1),
    };
    let report = check_file(&args.file, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.valid {
        let results: u64 = report
            .tasks
            .iter()
            .map(|(_, c)| match c {
                crate::submission::check::TaskContent::Results { results } => *results,
                crate::submission::check::TaskContent::Seeds { seeds } => seeds.values().sum(),
                _ => 0,
            })
            .sum();
        println!(
            "{}: valid {} submission, {} tasks, {} results{}",
            report.file,
            report.track.as_deref().unwrap_or("empty"),
            report.tasks.len(),
            results,
            match (&opts.root, args.no_ids) {
                (Some(r), false) => format!(
                    ", ids checked against {} annotations under {}",
                    opts.split,
                    r.display()
                ),
                _ => ", ids not checked (--no-ids)".to_string(),
            }
        );
    } else {
        let total: u64 = report.problem_counts.values().sum();
        eprintln!(
            "{}: {total} problem{}",
            report.file,
            if total == 1 { "" } else { "s" }
        );
        for p in &report.problems {
            eprintln!("  {p}");
        }
        if report.problems_not_shown > 0 {
            eprintln!(
                "  ... and {} more (counts by kind: {}; raise --max-examples to see them)",
                report.problems_not_shown,
                report
                    .problem_counts
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}

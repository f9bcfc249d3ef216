//! `odinw report RUN [--compare RUN2] [--format ...]`: the per-task table of a run (or of two
//! runs side by side) on stdout, and every format, the chart and the HTML page written beside
//! the run.
use super::EXIT_PROBLEMS;
use crate::report::{self, compare, formats, formats::Format};
use crate::run::aggregate::Aggregate;
use crate::run::{run_name, RunResults, RunStore, Summary};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (written by `odinw eval` or `odinw finetune`).
    run: PathBuf,
    /// A second run to compare with: AP and AP50 side by side, deltas RUN2 − RUN.
    #[arg(long, value_name = "RUN2")]
    compare: Option<PathBuf>,
    /// What to print on stdout (parquet is binary: its file path is printed instead).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Folder for the report files [default: RUN/report].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only; write no files (and leave RUN/summary.json as it is).
    #[arg(long)]
    no_files: bool,
    /// Exit with 3 when a task of the run (or of RUN2) is missing or failed.
    #[arg(long)]
    strict: bool,
    /// Print one JSON object (summary or comparison, table rows, files written).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let results = RunResults::load(&args.run)?;
    let a = Aggregate::of(&results)?;
    let summary = Summary::from_aggregate(&a)?;
    let out_dir = args.out.clone().unwrap_or_else(|| args.run.join("report"));
    let mut files = Vec::new();
    if !args.no_files {
        RunStore::open(&args.run)?.refresh_summary()?;
        files.push(args.run.join("summary.json"));
    }
    let mut complete = summary.complete;
    let (frame, notes, stem) = match &args.compare {
        None => {
            if !args.no_files {
                files.extend(report::write_files(&a, &out_dir)?);
                files.push(report::write_html((&results, &a), None, &out_dir)?);
            }
            (
                formats::report_frame(&a)?,
                report::summary_notes(&a),
                "tasks".to_string(),
            )
        }
        Some(other) => {
            let other_results = RunResults::load(other)?;
            let b = Aggregate::of(&other_results)?;
            complete &= b.stats.evaluated == b.stats.expected;
            let frame = compare::compare_frame(&a, &b)?;
            let notes = compare::compare_notes(&a, &b);
            let stem = format!("compare_{}", run_name(other));
            if !args.no_files {
                for f in Format::ALL {
                    let path = out_dir.join(format!("{stem}.{}", f.extension()));
                    formats::write_file(&frame, f, &notes, &path)?;
                    files.push(path);
                }
                files.push(report::write_html(
                    (&results, &a),
                    Some((&other_results, &b)),
                    &out_dir,
                )?);
            }
            (frame, notes, stem)
        }
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let rows: serde_json::Value =
            serde_json::from_slice(&formats::render(&frame, Format::Json, &[])?)
                .context("re-reading the JSON table")?;
        let mut out = serde_json::json!({
            "run": args.run.display().to_string(),
            "table": rows,
            "notes": notes,
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        });
        if args.compare.is_none() {
            out["summary"] = serde_json::to_value(&summary)?;
        } else {
            out["compare"] =
                serde_json::json!(args.compare.as_ref().map(|p| p.display().to_string()));
        }
        writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
    } else if args.format == Format::Parquet {
        if args.no_files {
            anyhow::bail!("--format parquet is binary: drop --no-files, or use --out");
        }
        writeln!(
            stdout,
            "{}",
            out_dir.join(format!("{stem}.parquet")).display()
        )?;
    } else {
        stdout.write_all(&formats::render(&frame, args.format, &notes)?)?;
        if !files.is_empty() && args.format == Format::Table {
            writeln!(stdout, "files: {}", out_dir.display())?;
        }
    }
    Ok(if args.strict && !complete {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

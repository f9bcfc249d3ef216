//! `odinw merge RUN`: closes a sharded run (summary.json, the report, the manifest's end time)
//! as a single-process run closes, and lists the units missing or failed with their shards;
//! exits 3 when any is.
use super::args::print_closed;
use super::EXIT_PROBLEMS;
use crate::report;
use crate::run::merge;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder the shards wrote into.
    run: PathBuf,
    /// Print {"complete", "shards", "unfinished", "summary"} as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let merged = merge::merge(&args.run, &report::ReportFiles)?;
    if args.json {
        let out = serde_json::json!({
            "complete": merged.complete(),
            "shards": merged.shards,
            "unfinished": merged.unfinished,
            "summary": merged.closed.summary,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_closed(&merged.closed, &args.run, false)?;
        let of = |s: Option<usize>| match (s, merged.shards) {
            (Some(s), Some(n)) => format!(" (shard {s}/{n})"),
            _ => String::new(),
        };
        for u in &merged.unfinished {
            match &u.error {
                Some(e) => println!(
                    "failed: {}{}: {}",
                    u.unit,
                    of(u.shard),
                    e.lines().next().unwrap_or_default()
                ),
                None => println!("missing: {}{}", u.unit, of(u.shard)),
            }
        }
        if !merged.complete() {
            println!(
                "rerun those shards' commands (same --out and --shard): they redo only what is \
                 missing or failed, and merge again"
            );
        }
    }
    Ok(if merged.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}

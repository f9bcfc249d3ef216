//! `odinw normalize DIR`: turns every RoboFlow `_annotations.coco.json` under DIR into GLIP's
//! `annotations_without_background.json` (root category removed), then validates each file.
//! Every file is reported; the exit status is 1 when any failed or names images outside its
//! folder.
use crate::data::normalize::{self, Action};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A RoboFlow/COCO export (or a folder holding several).
    dir: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let reports = normalize::normalize_tree(&args.dir)?;
    if reports.is_empty() {
        bail!(
            "no RoboFlow annotation file ({}) under {}",
            normalize::ROBOFLOW_FILE,
            args.dir.display()
        );
    }
    let (mut written, mut unchanged, mut foreign, mut problems, mut failed) = (0, 0, 0, 0, 0);
    for r in &reports {
        if r.failed() {
            failed += 1;
        }
        if let Some(outcome) = &r.outcome {
            match outcome.action {
                Action::Written => written += 1,
                Action::Unchanged => unchanged += 1,
                Action::LeftForeign => foreign += 1,
            }
            println!("{}", outcome.describe());
        }
        if let Some(e) = &r.error {
            println!("{}: FAILED: {e}", r.source.display());
        }
        let target = normalize::target_for(&r.source).unwrap_or_default();
        for finding in &r.findings {
            problems += 1;
            let level = if finding.is_error() {
                "error"
            } else {
                "warning"
            };
            println!("  {level}: {}", finding.describe(&target));
        }
    }
    println!(
        "{} annotation files: {written} written, {unchanged} up to date, {foreign} left as found, \
         {failed} failed; {problems} kinds of problems",
        reports.len()
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

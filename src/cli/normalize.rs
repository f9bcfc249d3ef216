//! `odinw normalize DIR`: turns every RoboFlow `_annotations.coco.json` under DIR into GLIP's
//! `annotations_without_background.json` (root category removed), then validates each file.
use crate::data::coco::CocoFile;
use crate::data::normalize::{self, Action};
use crate::data::validate::validate;
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
    let sources = normalize::find_exports(&args.dir)?;
    if sources.is_empty() {
        bail!(
            "no RoboFlow annotation file ({}) under {}",
            normalize::ROBOFLOW_FILE,
            args.dir.display()
        );
    }
    let (mut written, mut unchanged, mut foreign, mut problems) = (0, 0, 0, 0);
    for source in &sources {
        let target = normalize::target_for(source).expect("found by its name");
        let outcome = normalize::normalize_file(source, &target)?;
        match outcome.action {
            Action::Written => written += 1,
            Action::Unchanged => unchanged += 1,
            Action::LeftForeign => foreign += 1,
        }
        println!("{}", outcome.describe());
        let coco = match CocoFile::read(&target) {
            Ok(c) => c,
            Err(e) => {
                problems += 1;
                println!("  warning: {e:#}");
                continue;
            }
        };
        let image_dir = target.parent().map(PathBuf::from);
        for finding in validate(&coco, image_dir.as_deref()) {
            problems += 1;
            println!("  warning: {}", finding.describe(&target));
        }
    }
    println!(
        "{} annotation files: {written} written, {unchanged} up to date, {foreign} left as found; {problems} kinds of problems",
        sources.len()
    );
    Ok(ExitCode::SUCCESS)
}

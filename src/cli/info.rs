//! `odinw info TASK`: everything the registry knows about one task.
use crate::registry::{self, Suite};
use anyhow::{anyhow, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Task name (case-insensitive), e.g. BCCD or EgoHands_generic.
    task: String,
    /// Which suite's record (ODinW-13 has its own names and prompts for 6 tasks).
    #[arg(long, value_enum, default_value = "odinw35")]
    suite: Suite,
    /// Dataset root (default: $ODINW_ROOT, else ./DATASET; the demo suite's bundled data).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Print the record as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let task = registry::select(args.suite, std::slice::from_ref(&args.task))?
        .pop()
        .ok_or_else(|| anyhow!("no task"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(task)?);
        return Ok(ExitCode::SUCCESS);
    }
    let root = super::args::data_root(args.suite, args.root.as_deref())?;
    println!(
        "{} ({}, from GLIP's {})",
        task.name,
        args.suite.name(),
        task.yaml
    );
    println!("  archive       {}.zip", task.archive);
    println!("  folder        {}", task.dir(&root).display());
    println!("  layout        {:?}", task.layout);
    println!(
        "  in ODinW-13   {}",
        if task.in_odinw13 { "yes" } else { "no" }
    );
    println!("  GENERAL_COPY  {}", task.general_copy);
    println!("  NUM_CLASSES   {} (yaml)", task.num_classes_yaml);
    println!("  model select  {}", task.val_split_during_ft);
    println!("  splits:");
    for s in task.split_names() {
        let ann = task.ann_file(&root, s).unwrap();
        let here = if ann.exists() { "present" } else { "missing" };
        println!("    {s:<8} {} [{here}]", ann.display());
    }
    println!("  categories ({}):", task.categories.len());
    for (i, c) in task.categories.iter().enumerate() {
        let prompt = task
            .caption_prompt
            .as_ref()
            .and_then(|p| p.get(i))
            .map(|p| {
                format!(
                    "  prompt {:?}",
                    format!("{}{}{}", p.prefix, p.name, p.suffix)
                )
            })
            .unwrap_or_default();
        println!("    {:>3} {:?}{prompt}", c.id, c.name);
    }
    println!(
        "  few-shot files: shots {:?} x seeds {:?}, e.g. {}",
        task.fewshot.shots,
        task.fewshot.seeds,
        task.fewshot_file(&root, "train", 3, 3)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

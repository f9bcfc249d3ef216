//! `odinw plan eval|finetune ARGS`: the units of the run that command would make, their
//! estimated costs and their shard assignment (`--shards N`), as a table or `--json`.
use super::{eval, finetune};
use crate::run::shard::{self, Plan, Workload};
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The units of `odinw eval ARGS`.
    Eval(eval::Args),
    /// The units of `odinw finetune ARGS`.
    Finetune(finetune::Args),
}

pub fn run(command: Command) -> Result<ExitCode> {
    let (run, work) = match &command {
        Command::Eval(a) => (
            &a.run,
            Workload {
                split: &a.run.split,
                finetune: None,
            },
        ),
        Command::Finetune(a) => {
            let tasks = a.run.select.select()?;
            (&a.run, finetune::workload(a, &tasks)?)
        }
    };
    let tasks = run.select.select()?;
    let root = run.select.data_root()?;
    // `--shards N` alone plans N shards; else the shard count of `--shard` or the environment.
    let shards = match (&run.shard.shard, run.shard.shards) {
        (None, Some(n)) => n,
        _ => run.shard.resolve()?.map_or(1, |(s, _)| s.count),
    };
    let plan = Plan::new(shard::estimate(&tasks, &root, &work)?, shards)?;
    if run.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print_plan(&plan, &root);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(plan: &Plan, root: &std::path::Path) {
    let width = plan
        .units
        .iter()
        .map(|u| u.unit.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  {:>12}  shard", "unit", "cost");
    for u in &plan.units {
        let mark = if u.counted { "" } else { "  (no image counts)" };
        println!("{:<width$}  {:>12}  {}{mark}", u.unit, u.cost, u.shard);
    }
    for (s, load) in plan.loads.iter().enumerate() {
        let n = plan.units.iter().filter(|u| u.shard == s).count();
        println!("shard {s}/{}: {n} unit(s), cost {load}", plan.shards);
    }
    println!(
        "makespan {} against the ideal {:.1} (total {} / {} shards): ratio {:.4}",
        plan.makespan,
        plan.ideal,
        plan.loads.iter().sum::<u64>(),
        plan.shards,
        plan.ratio
    );
    if plan.units.iter().any(|u| !u.counted) {
        println!(
            "note: some annotation files are not under {}: a k-shot split without its file \
             counts k × classes images, any other 1 image",
            root.display()
        );
    }
}

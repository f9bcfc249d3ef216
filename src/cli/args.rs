//! Arguments that several subcommands share: which tasks (suite, `--tasks`, `--root`), and the
//! options of a run over them (`eval`, `finetune`), and how a closed run is printed.
use crate::engine::runtime::Device;
use crate::engine::{IoBinding, SessionOptions};
use crate::model::embedded;
use crate::registry::{self, Suite, Task};
use crate::report::{self, formats, formats::Format};
use crate::run::shard::{self, Plan, Shard, ShardSource, Workload};
use crate::run::{Closed, Finish, RunSetup, Sharding, Track};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// A suite's tasks, optionally narrowed to some, and where their data lives.
#[derive(clap::Args, Clone)]
pub struct TaskArgs {
    /// Which suite's tasks and prompts.
    #[arg(long, value_enum, default_value = "odinw35")]
    pub suite: Suite,
    /// Only these tasks (comma-separated, case-insensitive), e.g. BCCD,pothole.
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// Dataset root (default: $ODINW_ROOT, else ./DATASET; the demo suite's bundled data).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

impl TaskArgs {
    /// The selected tasks (all of the suite's without `--tasks`); an unknown name is an error.
    pub fn select(&self) -> Result<Vec<&'static Task>> {
        registry::select(self.suite, &self.tasks)
    }

    /// Where the tasks' data is read from (see [`data_root`]).
    pub fn data_root(&self) -> Result<PathBuf> {
        data_root(self.suite, self.root.as_deref())
    }
}

/// Checks that each task has `splits` on disk under `root`. A task without them is left to fail
/// alone in the run (its `error.json` names the split or file) and is reported here on stderr;
/// when no task has them the run would do nothing, so that is an error.
pub fn check_splits(tasks: &[&Task], root: &Path, splits: &[&str]) -> Result<()> {
    let problems: Vec<anyhow::Error> = tasks
        .iter()
        .filter_map(|t| splits.iter().find_map(|s| t.split_files(root, s).err()))
        .collect();
    if let Some(first) = problems.first() {
        if problems.len() == tasks.len() {
            bail!("{first:#} (and every other selected task lacks its data too)");
        }
        for p in &problems {
            eprintln!("warning: {p:#}; the task will be recorded as failed");
        }
    }
    Ok(())
}

/// The dataset root a suite is read from: `--root`, else the demo suite's bundled data for
/// `--suite demo`, else `$ODINW_ROOT` or `./DATASET`.
pub fn data_root(suite: Suite, root: Option<&Path>) -> Result<PathBuf> {
    match (root, suite) {
        (Some(r), _) => Ok(r.to_path_buf()),
        (None, Suite::Demo) => embedded::demo_data_root(),
        (None, _) => Ok(registry::data_root(None)),
    }
}

/// The options of a run of a model over tasks, shared by `eval` and `finetune`.
#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// A model directory (model.json + ONNX graphs; `finetune` also needs its train/ folder), or
    /// `demo` for the embedded tiny model.
    #[arg(long, default_value = "demo")]
    pub model: String,
    #[command(flatten)]
    pub select: TaskArgs,
    /// The split to score: `test` (the challenge's) or `val`/`minival` (GLIP's README numbers).
    #[arg(long, default_value = "test")]
    pub split: String,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// ONNX Runtime threads per operator on CPU (0 = its default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Keep tensors in the device's memory between graphs, and for `finetune` the parameters
    /// and optimizer state between steps (auto: on for cuda and tensorrt).
    #[arg(long, value_enum, default_value = "auto")]
    pub io_binding: IoBinding,
    /// Plain class names, ignoring the tasks' CAPTION_PROMPTs (GLIP's; for Grounding DINO the
    /// caption_prompt of mmdetection's ODinW configs).
    #[arg(long)]
    pub no_prompt: bool,
    /// Score as if annotation ids started at 1 (see `odinw score --help`).
    #[arg(long)]
    pub fix_id0: bool,
    /// The run folder (default: a folder under runs/ named after the track, suite and split or
    /// shots); re-running resumes it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// Which part of a run this process does (see `odinw plan`).
#[derive(clap::Args, Clone, Default)]
pub struct ShardArgs {
    /// Run only shard I (0-based) of N of the run's units, into the shared --out folder
    /// [default: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX
    /// with --shards].
    #[arg(long, value_name = "I/N", value_parser = shard_option)]
    pub shard: Option<String>,
    /// The number of shards (with JOB_COMPLETION_INDEX, a Kubernetes Indexed Job's index).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
}

/// `--shard`'s syntax, checked while parsing, so a bad one is an invalid command line (exit code
/// 2); the text is kept, since `--shards` and the scheduler's variables are checked against it.
fn shard_option(text: &str) -> std::result::Result<String, String> {
    Shard::parse(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("{e:#}"))
}

impl ShardArgs {
    /// This process's shard, from the options or the scheduler's environment.
    pub fn resolve(&self) -> Result<Option<(Shard, ShardSource)>> {
        Shard::resolve(self.shard.as_deref(), self.shards, |k| {
            std::env::var(k).ok()
        })
    }

    /// The shard and the plan of the run's units (`work`) over all shards; `None` unsharded.
    pub fn sharding(
        &self,
        tasks: &[&Task],
        root: &Path,
        work: &Workload,
    ) -> Result<Option<Sharding>> {
        let Some((shard, source)) = self.resolve()? else {
            return Ok(None);
        };
        let plan = Plan::new(shard::estimate(tasks, root, work)?, shard.count)?;
        let mine: Vec<&str> = plan
            .units
            .iter()
            .filter(|u| u.shard == shard.index)
            .map(|u| u.unit.as_str())
            .collect();
        eprintln!(
            "shard {shard} (from {}): {} of {} units, cost {} of {} (makespan/ideal {:.3}): {}",
            source.describe(),
            mine.len(),
            plan.units.len(),
            plan.loads[shard.index],
            plan.loads.iter().sum::<u64>(),
            plan.ratio,
            if mine.is_empty() {
                "nothing to do".to_string()
            } else {
                mine.join(", ")
            }
        );
        Ok(Some(Sharding { shard, plan }))
    }
}

impl RunArgs {
    /// How to open the graphs (device, threads, I/O binding).
    pub fn session(&self) -> SessionOptions {
        SessionOptions {
            device: self.device,
            threads: self.threads,
            io_binding: self.io_binding,
            ..SessionOptions::default()
        }
    }

    /// The run folder: `--out`, else `default`.
    pub fn out_dir(&self, default: String) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(default))
    }

    /// What the run evaluates, for its manifest ([`RunSetup::manifest`]).
    pub fn setup<'a>(
        &'a self,
        track: Track,
        tasks: &'a [&'a Task],
        root: &'a Path,
    ) -> RunSetup<'a> {
        RunSetup {
            track,
            suite: self.select.suite,
            split: &self.split,
            class_names: self.no_prompt,
            device: self.device,
            tasks,
            root,
        }
    }

    /// Prints how this process's part ended: the closed run ([`Self::print_closed`]), or for
    /// a shard whose run is not finished yet, what is left and how it will be merged.
    pub fn print_finish(&self, finish: &Finish, dir: &Path) -> Result<()> {
        match finish {
            Finish::Closed(closed) => self.print_closed(closed, dir),
            Finish::Waiting(left) => {
                let units: Vec<String> = left
                    .iter()
                    .map(|u| match u.shard {
                        Some(s) => format!("{} (shard {s})", u.unit),
                        None => u.unit.clone(),
                    })
                    .collect();
                eprintln!(
                    "this shard is done; {} unit(s) of the run are not finished yet: {}",
                    left.len(),
                    units.join(", ")
                );
                eprintln!(
                    "the shard that finishes the last unit merges the run; or run `odinw merge {}`",
                    dir.display()
                );
                Ok(())
            }
        }
    }

    /// Prints a closed run: the summary as JSON with `--json`, else the table, its notes and
    /// where the run is.
    pub fn print_closed(&self, closed: &Closed, dir: &Path) -> Result<()> {
        print_closed(closed, dir, self.json)
    }
}

/// Prints a closed run: the summary as JSON with `json`, else the table, its notes and where
/// the run is.
pub fn print_closed(closed: &Closed, dir: &Path, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&closed.summary)?);
    } else {
        let agg = &closed.aggregate;
        let frame = formats::report_frame(agg)?;
        print!(
            "{}",
            formats::render_text(&frame, Format::Table, &report::summary_notes(agg))?
        );
        println!("run: {}", dir.display());
    }
    Ok(())
}

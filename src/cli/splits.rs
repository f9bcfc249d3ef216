//! `odinw splits`: GLIP's k-shot files for registry tasks (at GLIP's names and places) or for any
//! COCO file (`--ann`), a per-category summary, and `--check` against files already there.
use crate::registry::{self, Suite, Task};
use crate::splits::{self, stats, Outcome, Source, Target};
use crate::util::rng::Seed;
use anyhow::{bail, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Suite whose tasks to split.
    #[arg(long, value_enum, default_value = "odinw35")]
    suite: Suite,
    /// Only these tasks (comma-separated, case-insensitive names).
    #[arg(long, value_delimiter = ',', conflicts_with = "ann")]
    tasks: Vec<String>,
    /// Shots k (comma-separated), each at least 1.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,10",
          value_parser = clap::value_parser!(u32).range(1..))]
    shots: Vec<u32>,
    /// Seeds (comma-separated non-negative integers of any size; 0 = no shuffle, as in GLIP).
    #[arg(long, value_delimiter = ',', default_value = "3,30,300")]
    seeds: Vec<Seed>,
    /// Splits to sample (comma-separated; default: train, val, and minival where a task has it).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "ann")]
    split: Vec<SplitName>,
    /// Dataset root (default: $ODINW_ROOT, else ./DATASET).
    #[arg(long, conflicts_with = "ann")]
    root: Option<PathBuf>,
    /// Split this COCO file instead of registry tasks; writes DIR/fewshot_<stem>_shot{K}_seed{S}.json.
    #[arg(long, value_name = "FILE", conflicts_with = "suite")]
    ann: Option<PathBuf>,
    /// Output folder for --ann (default: the folder of FILE).
    #[arg(long, value_name = "DIR", requires = "ann")]
    out: Option<PathBuf>,
    /// Write nothing; say for each existing few-shot file whether the generator reproduces it.
    #[arg(long)]
    check: bool,
    /// Rewrite odinw's own files even when up to date (files odinw did not write are never touched).
    #[arg(long, conflicts_with = "check")]
    force: bool,
    /// Leave out the per-category tables.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SplitName {
    Train,
    Val,
    Minival,
}

impl SplitName {
    fn key(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Minival => "minival",
        }
    }
}

/// One source file and the few-shot files to make from it.
struct Job {
    label: String,
    source: PathBuf,
    targets: Vec<Target>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let shots = dedup(args.shots.clone());
    let seeds = dedup(args.seeds.clone());
    let (jobs, missing) = match &args.ann {
        Some(ann) => (vec![ann_job(ann, args.out.as_deref(), &shots, &seeds)?], 0),
        None => registry_jobs(&args, &shots, &seeds)?,
    };
    if jobs.is_empty() {
        bail!(
            "no annotation file of the {missing} selected task(s) is present under {}; download them first",
            registry::data_root(args.root.as_deref()).display()
        );
    }
    let mut failed = 0;
    let mut differing = 0;
    for job in &jobs {
        let result = if args.check {
            check_job(job).map(|d| differing += d)
        } else {
            make_job(job, args.force, args.quiet)
        };
        if let Err(e) = result {
            failed += 1;
            eprintln!("error: {}: {e:#}", job.label);
        }
    }
    if args.check {
        println!(
            "{}",
            if differing == 0 {
                "every existing few-shot file is reproduced by the generator".to_string()
            } else {
                format!("{differing} few-shot file(s) differ from the generator's")
            }
        );
    }
    if failed > 0 {
        eprintln!("error: {failed} source file(s) failed");
    }
    Ok(if failed > 0 || differing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn dedup<T: PartialEq>(values: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Every (shot, seed) pair, shots outermost, with the path `path_of` gives it.
fn targets(shots: &[u32], seeds: &[Seed], path_of: impl Fn(u32, &Seed) -> PathBuf) -> Vec<Target> {
    let mut out = Vec::with_capacity(shots.len() * seeds.len());
    for &shot in shots {
        for seed in seeds {
            out.push(Target {
                shot,
                seed: seed.clone(),
                path: path_of(shot, seed),
            });
        }
    }
    out
}

fn ann_job(ann: &Path, out: Option<&Path>, shots: &[u32], seeds: &[Seed]) -> Result<Job> {
    let stem = ann
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{} does not name a file", ann.display()))?;
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ann.parent().map(Path::to_path_buf).unwrap_or_default());
    let targets = targets(shots, seeds, |shot, seed| {
        dir.join(format!("fewshot_{stem}_shot{shot}_seed{seed}.json"))
    });
    Ok(Job {
        label: ann.display().to_string(),
        source: ann.to_path_buf(),
        targets,
    })
}

/// The jobs for registry tasks whose source files are present, and how many were missing.
fn registry_jobs(args: &Args, shots: &[u32], seeds: &[Seed]) -> Result<(Vec<Job>, usize)> {
    let root = registry::data_root(args.root.as_deref());
    let tasks = registry::select(args.suite, &args.tasks)?;
    let splits: Vec<&str> = if args.split.is_empty() {
        vec!["train", "val", "minival"]
    } else {
        dedup(args.split.iter().map(|s| s.key()).collect())
    };
    let (mut jobs, mut missing) = (Vec::new(), Vec::new());
    for task in tasks {
        let mut absent = Vec::new();
        for split in &splits {
            let Some(job) = task_job(task, &root, split, shots, seeds) else {
                if !args.split.is_empty() && !args.tasks.is_empty() {
                    eprintln!("note: {} has no {split} split", task.name);
                }
                continue;
            };
            if job.source.exists() {
                jobs.push(job);
            } else {
                absent.push(job.source.display().to_string());
            }
        }
        if !absent.is_empty() {
            missing.push(format!("{}: {}", task.name, absent.join(", ")));
        }
    }
    // With nothing present the caller's error says so; otherwise name what was skipped.
    if !jobs.is_empty() {
        for m in &missing {
            eprintln!("note: skipped, annotation file missing: {m}");
        }
    }
    Ok((jobs, missing.len()))
}

fn task_job(task: &Task, root: &Path, split: &str, shots: &[u32], seeds: &[Seed]) -> Option<Job> {
    let pattern = task.fewshot.files.get(split)?;
    let source = task.ann_file(root, split)?;
    let targets = targets(shots, seeds, |shot, seed| {
        root.join(
            pattern
                .replace("{shot}", &shot.to_string())
                .replace("{seed}", seed.decimal()),
        )
    });
    Some(Job {
        label: format!("{} {split}", task.name),
        source,
        targets,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn make_job(job: &Job, force: bool, quiet: bool) -> Result<()> {
    let source = Source::load(&job.source)?;
    let mut outcomes = Vec::new();
    for t in &job.targets {
        let (outcome, file) = splits::materialise(&source, t, force)?;
        outcomes.push((t, outcome, stats::counts(&file)));
    }
    let count = |o: Outcome| outcomes.iter().filter(|(_, x, _)| *x == o).count();
    let folder = job
        .targets
        .first()
        .and_then(|t| t.path.parent())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!(
        "{}: {} of {} images valid; {} files in {folder}: {} written, {} up to date, {} prepared (not by odinw) used as they are",
        job.label,
        source.index.valid_ids().len(),
        source.index.num_images(),
        outcomes.len(),
        count(Outcome::Written),
        count(Outcome::UpToDate),
        count(Outcome::KeptPrepared),
    );
    for (t, o, _) in &outcomes {
        if *o == Outcome::KeptPrepared {
            println!("  kept as it is: {}", file_name(&t.path));
        }
    }
    let names: BTreeMap<u64, &str> = source
        .coco
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    if !quiet {
        println!("{}", summary_table(&outcomes, &names));
    }
    for warning in few_image_warnings(&outcomes, &names) {
        eprintln!("warning: {}: {warning}", job.label);
    }
    Ok(())
}

fn summary_table(
    outcomes: &[(&Target, Outcome, stats::Counts)],
    names: &BTreeMap<u64, &str>,
) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["category (images/boxes)".to_string()];
    header.extend(
        outcomes
            .iter()
            .map(|(t, _, _)| format!("k={} s={}", t.shot, t.seed)),
    );
    table.set_header(header);
    let mut ids: Vec<u64> = names.keys().copied().collect();
    for (_, _, c) in outcomes {
        ids.extend(c.per_category.keys().filter(|k| !names.contains_key(k)));
    }
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let mut row = vec![format!("{id} {}", names.get(&id).copied().unwrap_or("?"))];
        row.extend(outcomes.iter().map(|(_, _, c)| {
            let n = c.per_category.get(&id).copied().unwrap_or_default();
            format!("{}/{}", n.images, n.boxes)
        }));
        table.add_row(row);
    }
    let mut total = vec!["all".to_string()];
    total.extend(
        outcomes
            .iter()
            .map(|(_, _, c)| format!("{}/{}", c.images, c.boxes)),
    );
    table.add_row(total);
    table
}

/// One line per listed category that has fewer than k images in some k-shot file.
fn few_image_warnings(
    outcomes: &[(&Target, Outcome, stats::Counts)],
    names: &BTreeMap<u64, &str>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (&id, name) in names {
        // Per shot: the fewest images of this category over the seeds.
        let mut fewest: BTreeMap<u32, usize> = BTreeMap::new();
        for (t, _, c) in outcomes {
            let n = c.per_category.get(&id).map_or(0, |n| n.images);
            let e = fewest.entry(t.shot).or_insert(n);
            *e = (*e).min(n);
        }
        let short: Vec<String> = fewest
            .iter()
            .filter(|(k, n)| (**n as u64) < u64::from(**k))
            .map(|(k, n)| format!("k={k}: {n}"))
            .collect();
        if !short.is_empty() {
            out.push(format!(
                "category {id} {name:?} has fewer than k images ({}); its split holds every image of it there is",
                short.join(", ")
            ));
        }
    }
    out
}

/// Checks a job's existing files; returns how many differ.
fn check_job(job: &Job) -> Result<usize> {
    let present: Vec<&Target> = job.targets.iter().filter(|t| t.path.exists()).collect();
    println!(
        "{}: {} of {} few-shot files present",
        job.label,
        present.len(),
        job.targets.len()
    );
    if present.is_empty() {
        return Ok(0);
    }
    let source = Source::load(&job.source)?;
    let mut differing = 0;
    for t in present {
        let r = splits::check_target(&source, t)?;
        let who = if r.written_by_odinw {
            "written by odinw"
        } else {
            "not written by odinw"
        };
        let hint = if r.matching_variants.is_empty() {
            String::new()
        } else {
            format!(
                " (its images are those of {})",
                r.matching_variants.join(" and of ")
            )
        };
        println!("  {} ({who}): {}{hint}", file_name(&t.path), r.comparison);
        if !r.comparison.identical() {
            differing += 1;
        }
    }
    Ok(differing)
}

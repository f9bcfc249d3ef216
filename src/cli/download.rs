//! `odinw download`: fetch, verify, extract and normalise ODinW datasets into GLIP's layout.
use super::download_bars::Indicatif;
use super::reporter::Terminal;
use crate::download::fetch::{self, RetryPolicy};
use crate::download::progress::{Bars, Display};
use crate::download::{self, roboflow, source, Listing, Outcome, Source};
use crate::registry::{self, Suite};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// GLIP's zips (the Hugging Face mirror, or --mirror).
    Glip,
    /// RoboFlow's COCO exports through its API (ROBOFLOW_API_KEY), for tasks with a pin.
    Roboflow,
}

#[derive(clap::Args)]
pub struct Args {
    /// Which suite's tasks to get (all of them unless --tasks is given).
    #[arg(long, value_enum, default_value = "odinw35")]
    suite: Suite,
    /// Only these tasks (comma-separated, case-insensitive), e.g. BCCD,pothole.
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Dataset root (default: $ODINW_ROOT, else ./DATASET); data goes to <root>/odinw/.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Where the archives come from.
    #[arg(long, value_enum, default_value = "glip")]
    source: SourceKind,
    /// Base URL serving <Archive>.zip instead of the hub: http(s)://... or file:///folder.
    #[arg(long)]
    mirror: Option<String>,
    /// Revision (commit or branch) of GLIPModel/GLIP to download from.
    #[arg(long, default_value = source::GLIP_REVISION)]
    revision: String,
    /// Hugging Face endpoint, for the default source and for its file listing (sizes,
    /// sha256). Given explicitly (or by $HF_ENDPOINT), the listing is also used with --mirror,
    /// and a listing that cannot be read or is malformed stops the run.
    #[arg(long, env = "HF_ENDPOINT")]
    hub: Option<String>,
    /// Parallel downloads.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Retries of a transfer that fails without progress (5xx, timeouts, resets).
    #[arg(long, default_value_t = 6)]
    retries: u32,
    /// Seconds to wait for a connection or for the next bytes before retrying.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Seconds one archive's transfer may take in all, retries included (a server that
    /// trickles bytes is given up after this); the bytes received are kept for the next run.
    #[arg(long, default_value_t = fetch::DEFAULT_DEADLINE.as_secs_f64())]
    deadline: f64,
    /// Keep the verified zips in <root>/.odinw/archives/ after installing them.
    #[arg(long)]
    keep_archives: bool,
    /// Re-hash installed tasks (like odinw verify) instead of comparing file sizes; damaged
    /// ones are downloaded and installed again.
    #[arg(long)]
    recheck: bool,
    /// RoboFlow API base URL (--source roboflow).
    #[arg(long, env = "ROBOFLOW_API_URL", default_value = roboflow::ROBOFLOW_API)]
    roboflow_api: String,
    /// RoboFlow workspace hosting the projects (--source roboflow).
    #[arg(long, env = "ROBOFLOW_WORKSPACE")]
    roboflow_workspace: Option<String>,
    /// RoboFlow project slug, when it differs from the pinned project's name (one task only).
    #[arg(long)]
    roboflow_project: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let tasks = registry::select(args.suite, &args.tasks)?;
    if args.roboflow_project.is_some() && tasks.len() != 1 {
        bail!("--roboflow-project names one project: use it with exactly one --tasks entry");
    }
    let seconds = |v: f64, flag: &str| match Duration::try_from_secs_f64(v) {
        Ok(d) if v > 0.0 => Ok(d),
        _ => Err(anyhow::anyhow!(
            "{flag} must be a positive number of seconds (got {v})"
        )),
    };
    let timeout = seconds(args.timeout, "--timeout")?;
    let deadline = seconds(args.deadline, "--deadline")?;
    let root = registry::data_root(args.root.as_deref());
    let source = match args.source {
        SourceKind::Glip => Source::Glip {
            listing: match (&args.hub, &args.mirror) {
                (Some(_), _) => Listing::Required,
                (None, None) => Listing::BestEffort,
                (None, Some(_)) => Listing::Off,
            },
            hub: args.hub.unwrap_or_else(|| source::HF_ENDPOINT.to_string()),
            mirror: args.mirror,
            revision: args.revision,
        },
        SourceKind::Roboflow => Source::Roboflow(roboflow::Config {
            api: args.roboflow_api,
            workspace: args.roboflow_workspace,
            project: args.roboflow_project,
            key: std::env::var("ROBOFLOW_API_KEY").ok(),
        }),
    };
    let opts = download::Options {
        root: root.clone(),
        tasks,
        source,
        jobs: args.jobs.max(1),
        policy: RetryPolicy {
            retries: args.retries,
            deadline,
            ..RetryPolicy::default()
        },
        timeout,
        keep_archives: args.keep_archives,
        recheck: args.recheck,
        display: Display {
            bars: std::io::stderr()
                .is_terminal()
                .then(|| Arc::new(Indicatif::new()) as Arc<dyn Bars>),
            lines: Arc::new(Terminal::lines()),
        },
    };
    let reports = download::run(&opts)?;
    let (mut fresh, mut verified, mut failed) = (0, 0, 0);
    for r in &reports {
        let what = match &r.outcome {
            Outcome::AlreadyVerified => {
                verified += 1;
                "verified, nothing to do".to_string()
            }
            Outcome::Installed {
                downloaded,
                resumed_from,
                seconds,
                installed,
            } => {
                fresh += 1;
                let resumed = if *resumed_from > 0 {
                    format!(
                        ", resumed at {}",
                        download::progress::human_bytes(*resumed_from)
                    )
                } else {
                    String::new()
                };
                format!(
                    "installed: {} downloaded{resumed}, {}, {} normalised, {}, {seconds:.1} s",
                    download::progress::human_bytes(*downloaded),
                    count(installed.files, "file"),
                    count(installed.normalized.len(), "annotation file"),
                    count(installed.warnings.len(), "warning")
                )
            }
            Outcome::Failed(e) => {
                failed += 1;
                format!("FAILED: {e}")
            }
        };
        println!("{:<24} {what}", archive_label(&r.archive, &r.tasks));
    }
    println!(
        "{} under {}: {fresh} installed, {verified} already verified, {failed} failed",
        count(reports.len(), "archive"),
        root.join("odinw").display()
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `1 file`, `2 files`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `BCCD`, or `EgoHands (EgoHands_generic, EgoHands_specific)` when the names differ.
pub fn archive_label(archive: &str, tasks: &[String]) -> String {
    if tasks.len() == 1 && tasks[0] == archive {
        archive.to_string()
    } else {
        format!("{archive} ({})", tasks.join(", "))
    }
}

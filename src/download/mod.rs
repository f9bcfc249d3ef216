//! `odinw download`: fetch, verify, extract and normalise ODinW archives into GLIP's layout
//! under a dataset root, resumably and in parallel. Per archive the steps are: skip it at once
//! if its manifest matches what is on disk; otherwise fetch `<Archive>.zip` into
//! `.odinw/partial/` (resuming), check size and sha256, move it to `.odinw/archives/`, then
//! [`install`] it (safe extraction to a staging folder, normalisation, validation, manifest,
//! one rename into place) and drop the zip.
pub mod extract;
pub mod fetch;
pub mod install;
pub mod manifest;
pub mod progress;
pub mod roboflow;
pub mod source;
pub mod state;

use crate::registry::{self, Suite, Task};
use crate::util::hash::sha256_file;
use anyhow::{bail, Context, Result};
use fetch::{Location, RetryPolicy};
use install::{Installed, Origin, Place};
use manifest::Manifest;
use progress::{human_bytes, Progress};
use reqwest::blocking::Client;
use source::Expected;
use state::StateDir;
use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether the hub's file listing (sizes, sha256) is read, and how its failures count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Not read (`--mirror` without `--hub`).
    Off,
    /// The default hub: a listing that cannot be fetched is a warning (only the zips' CRCs and
    /// the announced sizes are then checked); one that is malformed is an error.
    BestEffort,
    /// An explicit `--hub`: any failure to read the listing is an error.
    Required,
}

/// Where archives come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// GLIP's zips: from the hub at `revision`, or from `mirror` (`<mirror>/<Archive>.zip`).
    Glip {
        mirror: Option<String>,
        hub: String,
        revision: String,
        /// Whether sizes and sha256 are read from the hub's tree API.
        listing: Listing,
    },
    /// RoboFlow's COCO export of each task's pinned project version.
    Roboflow(roboflow::Config),
}

#[derive(Clone, Debug)]
pub struct Options {
    pub root: PathBuf,
    pub tasks: Vec<&'static Task>,
    pub source: Source,
    pub jobs: usize,
    pub policy: RetryPolicy,
    /// Connect and per-read timeout.
    pub timeout: Duration,
    /// Keep the verified zips in `.odinw/archives/` after installing them.
    pub keep_archives: bool,
    /// Re-hash installed files (as `odinw verify` does) instead of comparing sizes.
    pub recheck: bool,
    /// Where progress goes: bars (drawn by the caller) or lines.
    pub display: progress::Display,
}

/// What happened to one archive.
#[derive(Debug)]
pub enum Outcome {
    /// Its manifest matched the files on disk; nothing was done.
    AlreadyVerified,
    Installed {
        /// Bytes fetched in this run (0 when an earlier run's verified zip was used).
        downloaded: u64,
        /// Bytes already in the partial file from an earlier run.
        resumed_from: u64,
        seconds: f64,
        installed: Installed,
    },
    Failed(String),
}

#[derive(Debug)]
pub struct ArchiveReport {
    pub archive: String,
    /// The selected tasks this archive holds.
    pub tasks: Vec<String>,
    pub outcome: Outcome,
}

/// One archive to get.
struct Unit {
    archive: String,
    /// Name of the download (`<Archive>.zip`, or `<Archive>.roboflow.zip`).
    file_name: String,
    selected: Vec<String>,
    /// Every registry task the archive holds (all are normalised and validated).
    holds: Vec<&'static Task>,
    place: Place,
    from: Option<Location>,
    /// For the manifest: where the archive came from (API keys removed).
    shown_url: String,
    revision: Option<String>,
    expected: Expected,
}

/// The registry tasks held by `archive` (ODinW-13 tasks share folders with their ODinW-35
/// namesakes, so the ODinW-35 list covers both).
fn tasks_in_archive(archive: &str) -> Vec<&'static Task> {
    registry::tasks(Suite::Odinw35)
        .iter()
        .filter(|t| t.archive == archive)
        .collect()
}

fn plan(opts: &Options) -> Result<Vec<Unit>> {
    let mut units: Vec<Unit> = Vec::new();
    for task in &opts.tasks {
        if let Some(u) = units.iter_mut().find(|u| u.archive == task.archive) {
            u.selected.push(task.name.clone());
            continue;
        }
        let holds = tasks_in_archive(&task.archive);
        let unit = match &opts.source {
            Source::Glip {
                mirror,
                hub,
                revision,
                ..
            } => {
                let base = mirror
                    .clone()
                    .unwrap_or_else(|| source::glip_mirror(hub, revision));
                let file_name = format!("{}.zip", task.archive);
                let url = source::file_url(&base, &file_name);
                let from = match Location::parse(&base)? {
                    Location::Http(_) => Location::Http(url.clone()),
                    Location::File(dir) => Location::File(dir.join(&file_name)),
                };
                Unit {
                    archive: task.archive.clone(),
                    shown_url: from.to_string(),
                    file_name,
                    selected: vec![task.name.clone()],
                    holds,
                    place: Place::Glip {
                        archive: task.archive.clone(),
                    },
                    from: Some(from),
                    revision: mirror.is_none().then(|| revision.clone()),
                    expected: Expected::default(),
                }
            }
            Source::Roboflow(cfg) => {
                let req = roboflow::export_request(cfg, task)?;
                if holds.len() != 1 {
                    bail!(
                        "{} holds {} tasks in GLIP's layout; --source roboflow fetches one \
                         project per task and cannot rebuild it",
                        task.archive,
                        holds.len()
                    );
                }
                Unit {
                    archive: task.archive.clone(),
                    file_name: format!("{}.roboflow.zip", task.archive),
                    selected: vec![task.name.clone()],
                    holds,
                    place: Place::Under {
                        folder: task.folder.clone(),
                    },
                    from: None,
                    shown_url: req.shown,
                    revision: None,
                    expected: Expected::default(),
                }
            }
        };
        units.push(unit);
    }
    Ok(units)
}

/// An HTTP client with the run's timeouts (one per worker: each has its own I/O thread).
pub fn http_client(timeout: Duration) -> Result<Client> {
    crate::util::http::client(timeout, timeout)
}

/// Whether the archive's manifest exists and matches the files on disk: their sizes, or with
/// `rehash` their sha256.
pub fn is_verified(state: &StateDir, archive: &str, rehash: bool) -> bool {
    match Manifest::read_if_present(&state.manifest(archive)) {
        Ok(Some(m)) if rehash => m.full_check(&state.odinw_dir()).is_empty(),
        Ok(Some(m)) => m.quick_check(&state.odinw_dir()).is_empty(),
        _ => false,
    }
}

/// Fails when `need` bytes do not fit in `available`.
pub fn check_space(need: u64, available: u64, root: &Path) -> Result<()> {
    if need > available {
        bail!(
            "not enough free space under {}: this run needs about {} (downloads plus their \
             extracted contents), {} is available. Free some space or choose another --root",
            root.display(),
            human_bytes(need),
            human_bytes(available)
        );
    }
    Ok(())
}

/// Size of a remote file without downloading it (`None` if the server does not say).
fn probe_size(client: &Client, from: &Location) -> Result<Option<u64>> {
    match from {
        Location::File(p) => match fs::metadata(p) {
            Ok(m) => Ok(Some(m.len())),
            Err(_) => bail!(
                "{} does not exist: the mirror folder has no such file (check --mirror)",
                p.display()
            ),
        },
        Location::Http(url) => {
            let Ok(resp) = client.head(url).send() else {
                return Ok(None);
            };
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                bail!(
                    "HEAD {url} returned HTTP 404: the mirror has no such file. Check the mirror \
                     URL (--mirror) and the revision (--revision), or try --source roboflow for \
                     tasks with a RoboFlow pin"
                );
            }
            Ok(resp
                .status()
                .is_success()
                .then(|| {
                    resp.headers()
                        .get(reqwest::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                })
                .flatten())
        }
    }
}

/// Runs a download: see the module doc. Failures of single archives are reported in their
/// [`ArchiveReport`]; errors that stop the whole run (lock held, no space) are returned.
pub fn run(opts: &Options) -> Result<Vec<ArchiveReport>> {
    let state = StateDir::new(&opts.root);
    let _lock = state.lock()?;
    state.clear_staging()?;
    let units = plan(opts)?;
    let mut reports: Vec<Option<ArchiveReport>> = units.iter().map(|_| None).collect();
    let mut todo = Vec::new();
    for (i, u) in units.iter().enumerate() {
        if is_verified(&state, &u.archive, opts.recheck) {
            let cached = state.archive(&u.file_name);
            if !opts.keep_archives && cached.exists() {
                let _ = fs::remove_file(&cached);
            }
            reports[i] = Some(report(u, Outcome::AlreadyVerified));
        } else {
            todo.push(i);
        }
    }
    if todo.is_empty() {
        return Ok(reports.into_iter().flatten().collect());
    }
    let progress = Progress::new(&opts.display, None);

    let client = http_client(opts.timeout)?;
    let mut units = units;
    if let Source::Glip {
        hub,
        revision,
        listing,
        ..
    } = &opts.source
    {
        let tree = match listing {
            Listing::Off => None,
            _ => {
                Some(source::fetch_tree(&client, hub, revision).map_err(crate::util::http::explain))
            }
        };
        if let Some(Err(e)) = &tree {
            if *listing == Listing::Required || e.downcast_ref::<source::Malformed>().is_some() {
                progress.finish();
                return Err(anyhow::anyhow!(
                    "the hub's file listing for revision {revision} could not be used, so the \
                     downloads' sha256 could not be checked: {e:#}. Nothing was downloaded; \
                     check --hub and --revision (or use --mirror without --hub to rely on the \
                     zips' own CRCs)"
                ));
            }
        }
        match tree {
            None => {}
            Some(Ok(tree)) => {
                for &i in &todo {
                    let u = &mut units[i];
                    match tree.get(&u.file_name) {
                        Some(e) => u.expected = e.clone(),
                        None => progress.println(format!(
                            "warning: the hub's listing for revision {revision} has no {}",
                            u.file_name
                        )),
                    }
                }
            }
            Some(Err(e)) => progress.println(format!(
                "warning: could not read the hub's file listing ({e:#}); sizes and sha256 are \
                 unknown, so only the zips' own CRC checks apply (give --hub to make this an error)"
            )),
        }
    }
    let mut runnable = Vec::new();
    for &i in &todo {
        let u = &mut units[i];
        let checked = install::check_destination(&state, &u.archive, &u.place).and_then(|_| {
            if u.expected.size.is_none() && !state.archive(&u.file_name).exists() {
                if let Some(from) = &u.from {
                    u.expected.size = probe_size(&client, from)?;
                    u.expected.size_from = source::SizeFrom::Server;
                }
            }
            Ok(())
        });
        match checked {
            Ok(()) => runnable.push(i),
            Err(e) => reports[i] = Some(report(u, Outcome::Failed(format!("{e:#}")))),
        }
    }

    let mut need = 0u64;
    for &i in &runnable {
        let u = &units[i];
        let cached = state.archive(&u.file_name);
        if let Ok(m) = fs::metadata(&cached) {
            need += m.len();
        } else if let Some(size) = u.expected.size {
            let have = fs::metadata(state.partial(&u.file_name))
                .map(|m| m.len())
                .unwrap_or(0);
            need += size.saturating_sub(have) + size;
        }
    }
    let available = fs4::available_space(&opts.root)
        .with_context(|| format!("reading free space of {}", opts.root.display()))?;
    if let Err(e) = check_space(need, available, &opts.root) {
        progress.finish();
        return Err(e);
    }

    progress.set_total(
        runnable
            .iter()
            .filter_map(|&i| units[i].expected.size)
            .sum(),
    );
    let queue = Mutex::new(runnable.iter().copied().collect::<VecDeque<usize>>());
    let results = Mutex::new(Vec::new());
    let workers = opts.jobs.max(1).min(runnable.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let client = match http_client(opts.timeout) {
                    Ok(c) => c,
                    Err(e) => {
                        while let Some(i) = queue.lock().unwrap().pop_front() {
                            results
                                .lock()
                                .unwrap()
                                .push((i, Outcome::Failed(format!("{e:#}"))));
                        }
                        return;
                    }
                };
                loop {
                    let Some(i) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let outcome = match get_one(opts, &state, &client, &units[i], &progress) {
                        Ok(o) => o,
                        Err(e) => {
                            let e = crate::util::http::explain(e);
                            progress.println(format!("{}: failed: {e:#}", units[i].file_name));
                            Outcome::Failed(format!("{e:#}"))
                        }
                    };
                    results.lock().unwrap().push((i, outcome));
                }
            });
        }
    });
    progress.finish();
    for (i, outcome) in results.into_inner().unwrap() {
        reports[i] = Some(report(&units[i], outcome));
    }
    Ok(reports.into_iter().flatten().collect())
}

fn report(u: &Unit, outcome: Outcome) -> ArchiveReport {
    ArchiveReport {
        archive: u.archive.clone(),
        tasks: u.selected.clone(),
        outcome,
    }
}

/// Fetches (or reuses) and installs one archive. An archive that fails its checks
/// ([`extract::Rejected`]) is deleted, naming it; when its bytes came from an earlier run (a
/// cached zip or a resumed partial file) it is then fetched once more from the start.
fn get_one(
    opts: &Options,
    state: &StateDir,
    client: &Client,
    u: &Unit,
    progress: &Progress,
) -> Result<Outcome> {
    let started = Instant::now();
    let label = &u.file_name;
    let log = |line: String| progress.println(line);
    let cached = state.archive(label);
    let mut downloaded_total = 0;
    let mut first_resumed = None;
    for attempt in 0..2 {
        let got = obtain(opts, state, client, u, progress, &log)?;
        downloaded_total += got.downloaded;
        first_resumed.get_or_insert(got.resumed_from);
        match install_cached(opts, state, u, &cached, &got) {
            Ok(installed) => {
                return finish(
                    opts,
                    state,
                    u,
                    &cached,
                    installed,
                    started,
                    downloaded_total,
                    first_resumed.unwrap_or(0),
                    &log,
                )
            }
            Err(e) if e.downcast_ref::<extract::Rejected>().is_some() => {
                let removed = fs::remove_file(&cached);
                let deleted = match removed {
                    Ok(()) => format!("deleted {}", cached.display()),
                    Err(err) => format!("could not delete {}: {err}", cached.display()),
                };
                let earlier = got.reused || got.resumed_from > 0;
                if attempt == 0 && earlier {
                    log(format!(
                        "{label}: the download of an earlier run fails its checks ({e:#}); \
                         {deleted}; fetching it again from the start"
                    ));
                    let part = state.partial(label);
                    let _ = fs::remove_file(fetch::validator_path(&part));
                    let _ = fs::remove_file(&part);
                    continue;
                }
                return Err(e.context(deleted));
            }
            Err(e) => return Err(e),
        }
    }
    bail!("{label}: still failing its checks after a fresh download")
}

/// A verified archive in `.odinw/archives/`, and where its bytes came from.
struct Obtained {
    size: u64,
    sha256: String,
    /// Bytes fetched now.
    downloaded: u64,
    /// Bytes of the partial file of an earlier run that were kept.
    resumed_from: u64,
    /// The zip of an earlier run was used as is.
    reused: bool,
}

/// The archive in `.odinw/archives/`: an earlier run's zip when it still matches the listing,
/// else a fresh (or resumed) download, checked against size and sha256.
fn obtain(
    opts: &Options,
    state: &StateDir,
    client: &Client,
    u: &Unit,
    progress: &Progress,
    log: &dyn Fn(String),
) -> Result<Obtained> {
    let label = &u.file_name;
    let cached = state.archive(label);
    if cached.exists() {
        let size = fs::metadata(&cached)?.len();
        let sha = sha256_file(&cached)?;
        let size_ok = u.expected.size.is_none_or(|s| s == size);
        let sha_ok = u.expected.sha256.as_ref().is_none_or(|s| *s == sha);
        if size_ok && sha_ok {
            log(format!(
                "{label}: using {}, the verified download of an earlier run",
                cached.display()
            ));
            return Ok(Obtained {
                size,
                sha256: sha,
                downloaded: 0,
                resumed_from: 0,
                reused: true,
            });
        }
        log(format!(
            "{label}: {}, the download of an earlier run, no longer matches the listing; \
             deleting it and fetching again",
            cached.display()
        ));
        fs::remove_file(&cached).with_context(|| format!("removing {}", cached.display()))?;
    }
    let from = match (&u.from, &opts.source) {
        (Some(from), _) => from.clone(),
        (None, Source::Roboflow(cfg)) => {
            let task = u.holds[0];
            let req = roboflow::export_request(cfg, task)?;
            Location::parse(&roboflow::export_link(client, &req, &opts.policy, log)?)?
        }
        (None, Source::Glip { .. }) => bail!("{label}: no URL was planned for a GLIP archive"),
    };
    let shown = if u.from.is_some() {
        from.to_string()
    } else {
        format!("RoboFlow's export link for {}", u.shown_url)
    };
    log(format!(
        "{label}: downloading {}from {shown}",
        u.expected
            .size
            .map(|s| format!("{} ", human_bytes(s)))
            .unwrap_or_default()
    ));
    let bar = progress.file(label, u.expected.size);
    let part = state.partial(label);
    let got = fetch::fetch(client, &from, &part, &u.expected, &opts.policy, &bar, log);
    bar.finish();
    let got = got?;
    if let Some(parent) = cached.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::rename(&part, &cached)
        .with_context(|| format!("moving {} to {}", part.display(), cached.display()))?;
    Ok(Obtained {
        size: got.size,
        sha256: got.sha256,
        downloaded: got.size - got.resumed_from,
        resumed_from: got.resumed_from,
        reused: false,
    })
}

fn install_cached(
    opts: &Options,
    state: &StateDir,
    u: &Unit,
    cached: &Path,
    got: &Obtained,
) -> Result<Installed> {
    let origin = Origin {
        source: match opts.source {
            Source::Glip { .. } => "glip".into(),
            Source::Roboflow(_) => "roboflow".into(),
        },
        url: u.shown_url.clone(),
        revision: u.revision.clone(),
        size: got.size,
        sha256: got.sha256.clone(),
        sha256_verified: u.expected.sha256.is_some(),
    };
    install::install(
        state,
        &u.archive,
        cached,
        &u.holds,
        &u.place,
        origin,
        &|_| {},
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    opts: &Options,
    state: &StateDir,
    u: &Unit,
    cached: &Path,
    installed: Installed,
    started: Instant,
    downloaded: u64,
    resumed_from: u64,
    log: &dyn Fn(String),
) -> Result<Outcome> {
    let label = &u.file_name;
    if !opts.keep_archives {
        fs::remove_file(cached).with_context(|| format!("removing {}", cached.display()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    for line in &installed.normalized {
        log(format!("{label}: {line}"));
    }
    for line in &installed.warnings {
        log(format!("{label}: warning: {line}"));
    }
    log(format!(
        "{label}: installed {} files ({}) as {} in {seconds:.1} s",
        installed.files,
        human_bytes(installed.bytes),
        state
            .odinw_dir()
            .join(install::installed_dir(&u.place))
            .display()
    ));
    Ok(Outcome::Installed {
        downloaded,
        resumed_from,
        seconds,
        installed,
    })
}

/// The archives that failed, with their errors.
pub fn failures(reports: &[ArchiveReport]) -> Vec<(&str, &str)> {
    reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed(e) => Some((r.archive.as_str(), e.as_str())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_check_names_the_need_and_the_root() {
        check_space(10, 10, Path::new("/data")).unwrap();
        let err = check_space(3 << 30, 1 << 30, Path::new("/data"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/data") && err.contains("3.0 GiB") && err.contains("1.0 GiB"),
            "{err}"
        );
    }

    #[test]
    fn two_task_archives_are_fetched_once_and_hold_both_tasks() {
        let tasks = registry::select(
            Suite::Odinw35,
            &[
                "EgoHands_generic".into(),
                "EgoHands_specific".into(),
                "BCCD".into(),
            ],
        )
        .unwrap();
        let opts = Options {
            root: PathBuf::from("/r"),
            tasks,
            source: Source::Glip {
                mirror: Some("http://m/zips/".into()),
                hub: source::HF_ENDPOINT.into(),
                revision: "main".into(),
                listing: Listing::Off,
            },
            jobs: 2,
            policy: RetryPolicy::default(),
            timeout: Duration::from_secs(5),
            keep_archives: false,
            recheck: false,
            display: progress::Display::silent(),
        };
        let units = plan(&opts).unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].selected, ["EgoHands_generic", "EgoHands_specific"]);
        assert_eq!(units[0].holds.len(), 2);
        assert_eq!(units[0].shown_url, "http://m/zips/EgoHands.zip");
        assert_eq!(units[0].revision, None);
    }
}

//! Fetches one file into its `.part` file, resuming what is already there: HTTP `Range`
//! requests (checked against `Content-Range`; a server that ignores Range restarts from 0),
//! retries with exponential backoff on 5xx/408/429, timeouts, resets and truncated bodies, and
//! checks size and sha256 at the end. `file://` sources are read the same way.
//!
//! A resume is only ever spliced onto bytes of the same file: the server's validator (a strong
//! `ETag`, else `Last-Modified`) is kept beside the `.part` file (`.part.validator`) and sent
//! as `If-Range`, so a server whose file changed answers with the whole new file; a `206`
//! whose `ETag` differs from the kept one is discarded too. Without a validator, a partial
//! file is resumed only when a published sha256 will catch a splice; otherwise it starts over.
//! The size the server announces is checked across attempts: without a listing, the size of
//! its first answer (or of a HEAD request before) is the one every resume must agree with.
//! Each transfer has an overall deadline ([`RetryPolicy::deadline`]), checked between reads
//! and retries, so a server that trickles bytes cannot hold a run forever.
use super::progress::FileProgress;
use super::source::{decode_percent, Expected, SizeFrom};
use crate::util::hash::hex;
use anyhow::{anyhow, Context, Result};
use reqwest::blocking::Client;
use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a file is read from.
#[derive(Clone, Debug, PartialEq)]
pub enum Location {
    Http(String),
    File(PathBuf),
}

impl Location {
    /// `http(s)://...`, `file:///path`, or a plain path.
    pub fn parse(url: &str) -> Result<Self> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Location::Http(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("file://") {
            let rest = rest.strip_prefix("localhost").unwrap_or(rest);
            if !rest.starts_with('/') {
                anyhow::bail!("{url}: a file:// URL needs an absolute path (file:///dir/...)");
            }
            return Ok(Location::File(PathBuf::from(decode_percent(rest))));
        }
        if url.contains("://") {
            anyhow::bail!("{url}: unsupported URL scheme; use http://, https:// or file://");
        }
        Ok(Location::File(PathBuf::from(url)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Http(u) => f.write_str(u),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Retry policy.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts after a failure that made no progress (progress resets the count).
    pub retries: u32,
    /// First wait; doubled after each failure without progress, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Overall time allowed for one transfer, retries included.
    pub deadline: Duration,
}

/// The default [`RetryPolicy::deadline`]: three hours per archive.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3 * 3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 6,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// The outcome of a fetch.
#[derive(Debug)]
pub struct Fetched {
    pub size: u64,
    pub sha256: String,
    /// Bytes that were already in the `.part` file from an earlier run.
    pub resumed_from: u64,
}

/// Why an attempt failed.
enum Failure {
    /// Worth retrying (network trouble, server errors, truncation).
    Retry(anyhow::Error),
    /// Not worth retrying (404, size disagreement, local I/O errors).
    Fatal(anyhow::Error),
}

fn fatal<T>(e: anyhow::Error) -> Result<T, Failure> {
    Err(Failure::Fatal(e))
}

/// SHA-256 of the bytes of the `.part` file, kept in step with its length.
struct PartHash {
    hasher: Sha256,
    upto: u64,
}

impl PartHash {
    fn new() -> Self {
        Self {
            hasher: Sha256::new(),
            upto: 0,
        }
    }

    /// Makes the hash cover exactly the first `len` bytes of `path`.
    fn catch_up(&mut self, path: &Path, len: u64) -> Result<()> {
        if self.upto > len {
            *self = Self::new();
        }
        if self.upto < len {
            let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            f.seek(SeekFrom::Start(self.upto))?;
            let mut rest = f.take(len - self.upto);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = rest
                    .read(&mut buf)
                    .with_context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    break;
                }
                self.hasher.update(&buf[..n]);
                self.upto += n as u64;
            }
        }
        Ok(())
    }
}

fn part_len(part: &Path) -> u64 {
    fs::metadata(part).map(|m| m.len()).unwrap_or(0)
}

/// Empties `part` (and forgets the validator of the bytes it held).
fn truncate(part: &Path) -> Result<()> {
    let _ = fs::remove_file(validator_path(part));
    File::create(part)
        .map(|_| ())
        .with_context(|| format!("truncating {}", part.display()))
}

/// Where the server's validator of the bytes in `part` is kept.
pub fn validator_path(part: &Path) -> PathBuf {
    let mut name = part.as_os_str().to_os_string();
    name.push(".validator");
    PathBuf::from(name)
}

/// The server's validators for the bytes of a `.part` file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Validator {
    /// A strong ETag (weak ones cannot be used with If-Range).
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validator {
    fn from_headers(h: &reqwest::header::HeaderMap) -> Self {
        let get = |k: reqwest::header::HeaderName| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Validator {
            etag: get(ETAG).filter(|e| !e.starts_with("W/")),
            last_modified: get(LAST_MODIFIED),
        }
    }

    /// The value for `If-Range`.
    fn if_range(&self) -> Option<&str> {
        self.etag.as_deref().or(self.last_modified.as_deref())
    }

    fn read(part: &Path) -> Option<Self> {
        let bytes = fs::read(validator_path(part)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write(&self, part: &Path) -> Result<()> {
        crate::util::fs::write_json_atomic(&validator_path(part), self)
    }
}

/// Fails once `deadline` has passed.
fn check_deadline(deadline: Instant, allowed: Duration, from: &str) -> Result<(), Failure> {
    if Instant::now() >= deadline {
        return fatal(anyhow!(
            "{from}: gave up: the transfer took longer than its deadline of {} s \
             (--deadline); the bytes received so far are kept for the next run",
            allowed.as_secs_f64()
        ));
    }
    Ok(())
}

/// Downloads `from` into `part`, resuming, retrying and verifying as described in the module
/// doc. `log` receives one line per notable event (resume, retry, restart).
pub fn fetch(
    client: &Client,
    from: &Location,
    part: &Path,
    expected: &Expected,
    policy: &RetryPolicy,
    progress: &FileProgress,
    log: &dyn Fn(String),
) -> Result<Fetched> {
    if let Some(parent) = part.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if let Some(size) = expected.size {
        progress.set_total(size);
        if part_len(part) > size {
            log(format!(
                "{from}: the partial file holds more than the expected {size} bytes; starting over"
            ));
            truncate(part)?;
        }
    }
    let resumed_from = part_len(part);
    if resumed_from > 0 {
        log(format!("{from}: resuming at byte {resumed_from}"));
    }
    let started = Instant::now();
    let deadline = started
        .checked_add(policy.deadline.min(Duration::from_secs(100 * 365 * 86_400)))
        .or_else(|| started.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(started);
    let mut hash = PartHash::new();
    let mut restarted_after_mismatch = false;
    // What the server announces is added to a copy (when the listing gave no size).
    let mut expected = expected.clone();
    let expected = &mut expected;
    loop {
        let mut failures = 0u32;
        let total = loop {
            let before = part_len(part);
            hash.catch_up(part, before)?;
            progress.set_position(before);
            if expected.size == Some(before) && before > 0 {
                break before; // complete already (killed after the last byte arrived)
            }
            let shown = from.to_string();
            let outcome = check_deadline(deadline, policy.deadline, &shown).and_then(|_| {
                let ends = Ends {
                    deadline,
                    allowed: policy.deadline,
                };
                match from {
                    Location::Http(url) => {
                        attempt_http(client, url, part, expected, &mut hash, progress, &ends, log)
                    }
                    Location::File(path) => {
                        attempt_file(path, part, expected, &mut hash, progress, &ends)
                    }
                }
            });
            match outcome {
                Ok(total) => break total,
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e)) => {
                    if part_len(part) > before {
                        failures = 0;
                    }
                    failures += 1;
                    if failures > policy.retries {
                        return Err(e.context(format!(
                            "{from}: giving up after {} attempts without progress",
                            policy.retries + 1
                        )));
                    }
                    let wait = policy
                        .backoff
                        .saturating_mul(1 << (failures - 1).min(16))
                        .min(policy.max_backoff)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    log(format!(
                        "{from}: {e:#}; retry {failures}/{} in {:.1} s",
                        policy.retries,
                        wait.as_secs_f64()
                    ));
                    progress.set_message(format!("retry {failures}"));
                    std::thread::sleep(wait);
                    progress.set_message("");
                }
            }
        };
        let size = part_len(part);
        hash.catch_up(part, size)?;
        if size != total {
            anyhow::bail!("{from}: downloaded {size} bytes but the server announced {total}");
        }
        let sha256 = hex(&hash.hasher.clone().finalize());
        match &expected.sha256 {
            Some(want) if *want != sha256 => {
                if resumed_from > 0 && !restarted_after_mismatch {
                    log(format!(
                        "{from}: sha256 mismatch after resuming an earlier partial file; downloading again from the start"
                    ));
                    restarted_after_mismatch = true;
                    truncate(part)?;
                    hash = PartHash::new();
                    continue;
                }
                let _ = fs::remove_file(part);
                anyhow::bail!(
                    "{from}: sha256 mismatch: expected {want}, got {sha256} ({size} bytes). \
                     The download ({}) was deleted; nothing installed earlier was touched. \
                     Run again to retry; if it persists the mirror serves a different file \
                     than the listing (try another --revision or --mirror)",
                    part.display()
                );
            }
            _ => {}
        }
        let _ = fs::remove_file(validator_path(part));
        return Ok(Fetched {
            size,
            sha256,
            resumed_from,
        });
    }
}

/// Parses `Content-Range: bytes a-b/total` (or `bytes */total`): (start, total).
pub fn parse_content_range(v: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    let start = if range.trim() == "*" {
        None
    } else {
        let (a, b) = range.trim().split_once('-')?;
        let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
        if b < a {
            return None;
        }
        Some(a)
    };
    Some((start, total))
}

fn check_total(total: Option<u64>, expected: &Expected, from: &str) -> Result<(), Failure> {
    if let (Some(t), Some(e)) = (total, expected.size) {
        if t != e {
            return fatal(match expected.size_from {
                SizeFrom::Listing => anyhow!(
                    "{from}: the server has {t} bytes but the listing says {e}; the mirror and \
                     the listing disagree (check --revision / --mirror)"
                ),
                SizeFrom::Server => anyhow!(
                    "{from}: the server has {t} bytes but {e} were announced earlier; its \
                     answers disagree, so the download stops here (the bytes received are kept; \
                     if a re-run fails the same way, the mirror is broken)"
                ),
            });
        }
    }
    Ok(())
}

/// Remembers the size the server announced when nothing else stated one.
fn learn_total(total: Option<u64>, expected: &mut Expected) {
    if let (Some(t), None) = (total, expected.size) {
        expected.size = Some(t);
        expected.size_from = SizeFrom::Server;
    }
}

/// The overall deadline of a transfer.
struct Ends {
    deadline: Instant,
    allowed: Duration,
}

#[allow(clippy::too_many_arguments)]
fn attempt_http(
    client: &Client,
    url: &str,
    part: &Path,
    expected: &mut Expected,
    hash: &mut PartHash,
    progress: &FileProgress,
    ends: &Ends,
    log: &dyn Fn(String),
) -> Result<u64, Failure> {
    let mut offset = part_len(part);
    let kept = Validator::read(part);
    if offset > 0
        && kept.as_ref().and_then(Validator::if_range).is_none()
        && expected.sha256.is_none()
    {
        log(format!(
            "{url}: the partial file has no validator (ETag or Last-Modified) to check that the \
             server's file is unchanged, and no published sha256; starting over"
        ));
        truncate(part).map_err(Failure::Fatal)?;
        *hash = PartHash::new();
        progress.set_position(0);
        offset = 0;
    }
    let mut req = client.get(url);
    if offset > 0 {
        req = req.header(RANGE, format!("bytes={offset}-"));
        if let Some(v) = kept.as_ref().and_then(Validator::if_range) {
            req = req.header(IF_RANGE, v);
        }
    }
    let mut resp = match req.send() {
        Ok(r) => r,
        // A refused certificate is refused again on every retry.
        Err(e)
            if e.is_builder() || e.is_redirect() || crate::util::http::is_certificate_error(&e) =>
        {
            return fatal(anyhow!(e).context(format!("GET {url}")))
        }
        Err(e) => return Err(Failure::Retry(anyhow!(e).context(format!("GET {url}")))),
    };
    let status = resp.status();
    let served = Validator::from_headers(resp.headers());
    let content_range = resp
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let total = match status {
        StatusCode::OK => {
            if offset > 0 {
                // The server ignored the Range header, or its file changed (If-Range), and
                // sends the whole file.
                log(format!(
                    "{url}: the server sent the whole file instead of resuming at byte \
                     {offset} (its file changed, or it ignores Range); starting over"
                ));
                truncate(part).map_err(Failure::Fatal)?;
                *hash = PartHash::new();
                progress.set_position(0);
            }
            served.write(part).map_err(Failure::Fatal)?;
            if offset > 0
                && expected.size_from == SizeFrom::Server
                && resp.content_length().is_some()
            {
                // A resume answered with the whole file, perhaps a new version of it: the
                // length it states now counts.
                expected.size = None;
            }
            resp.content_length()
        }
        StatusCode::PARTIAL_CONTENT => {
            let (old, new) = (
                kept.as_ref().and_then(|k| k.etag.as_deref()),
                served.etag.as_deref(),
            );
            if let (Some(old), Some(new)) = (old, new) {
                if old != new {
                    truncate(part).map_err(Failure::Fatal)?;
                    *hash = PartHash::new();
                    return Err(Failure::Retry(anyhow!(
                        "GET {url}: the server's file changed (ETag {old} became {new}) but it \
                         resumed anyway; starting over"
                    )));
                }
            }
            if offset == 0 {
                served.write(part).map_err(Failure::Fatal)?;
            }
            let parsed = content_range.as_deref().and_then(parse_content_range);
            match parsed {
                Some((Some(start), total)) if start == offset => total,
                _ => {
                    truncate(part).map_err(Failure::Fatal)?;
                    *hash = PartHash::new();
                    return Err(Failure::Retry(anyhow!(
                        "GET {url}: answered Range bytes={offset}- with Content-Range {:?}; starting over",
                        content_range.unwrap_or_default()
                    )));
                }
            }
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let total = content_range
                .as_deref()
                .and_then(parse_content_range)
                .and_then(|(_, t)| t);
            check_total(total, expected, url)?;
            if total == Some(offset) {
                return Ok(offset);
            }
            truncate(part).map_err(Failure::Fatal)?;
            *hash = PartHash::new();
            return Err(Failure::Retry(anyhow!(
                "GET {url}: the server refused to resume at byte {offset}; starting over"
            )));
        }
        StatusCode::NOT_FOUND | StatusCode::GONE => {
            return fatal(anyhow!(
                "GET {url} returned HTTP {status}: the mirror has no such file. Check the \
                 mirror URL (--mirror) and the revision (--revision), or try \
                 --source roboflow for tasks with a RoboFlow pin"
            ))
        }
        s if s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS
            || s.is_server_error() =>
        {
            return Err(Failure::Retry(anyhow!("GET {url} returned HTTP {status}")))
        }
        s => {
            return fatal(anyhow!(
                "GET {url} returned HTTP {s}{}",
                if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN {
                    " (access refused)"
                } else {
                    ""
                }
            ))
        }
    };
    check_total(total, expected, url)?;
    learn_total(total, expected);
    let total = total.or(expected.size);
    if let Some(t) = total {
        progress.set_total(t);
    }
    copy_body(&mut resp, part, hash, progress, url, ends)?;
    finish_attempt(part_len(part), total, url)
}

fn attempt_file(
    path: &Path,
    part: &Path,
    expected: &Expected,
    hash: &mut PartHash,
    progress: &FileProgress,
    ends: &Ends,
) -> Result<u64, Failure> {
    let shown = path.display().to_string();
    let mut src = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fatal(anyhow!(
                "{shown} does not exist: the mirror folder has no such file (check --mirror)"
            ))
        }
        Err(e) => return fatal(anyhow!(e).context(format!("opening {shown}"))),
    };
    let total = src
        .metadata()
        .map_err(|e| Failure::Fatal(anyhow!(e).context(format!("reading {shown}"))))?
        .len();
    check_total(Some(total), expected, &shown)?;
    progress.set_total(total);
    let offset = part_len(part);
    if offset > total {
        truncate(part).map_err(Failure::Fatal)?;
        *hash = PartHash::new();
        return Err(Failure::Retry(anyhow!(
            "{shown}: the partial file is longer than the source; starting over"
        )));
    }
    src.seek(SeekFrom::Start(offset))
        .map_err(|e| Failure::Fatal(anyhow!(e).context(format!("reading {shown}"))))?;
    copy_body(&mut src, part, hash, progress, &shown, ends)?;
    finish_attempt(part_len(part), Some(total), &shown)
}

/// Appends everything `body` yields to `part`, hashing it; a read error is retryable, and the
/// bytes received before it are kept (flushed) for the next attempt.
fn copy_body(
    body: &mut dyn Read,
    part: &Path,
    hash: &mut PartHash,
    progress: &FileProgress,
    from: &str,
    ends: &Ends,
) -> Result<(), Failure> {
    let file = File::options()
        .append(true)
        .create(true)
        .open(part)
        .map_err(|e| Failure::Fatal(anyhow!(e).context(format!("opening {}", part.display()))))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; 256 << 10];
    let mut received = 0u64;
    let read_error = loop {
        if Instant::now() >= ends.deadline {
            out.flush().map_err(|e| {
                Failure::Fatal(anyhow!(e).context(format!("writing {}", part.display())))
            })?;
            check_deadline(ends.deadline, ends.allowed, from)?;
        }
        match body.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(|e| {
                    Failure::Fatal(anyhow!(e).context(format!("writing {}", part.display())))
                })?;
                hash.hasher.update(&buf[..n]);
                hash.upto += n as u64;
                received += n as u64;
                progress.inc(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    out.flush()
        .map_err(|e| Failure::Fatal(anyhow!(e).context(format!("writing {}", part.display()))))?;
    match read_error {
        None => Ok(()),
        Some(e) => Err(Failure::Retry(anyhow!(
            "{from}: the connection broke after {received} bytes: {e}"
        ))),
    }
}

fn finish_attempt(have: u64, total: Option<u64>, from: &str) -> Result<u64, Failure> {
    match total {
        Some(t) if have < t => Err(Failure::Retry(anyhow!(
            "{from}: the body ended early ({have} of {t} bytes)"
        ))),
        Some(t) if have > t => fatal(anyhow!(
            "{from}: received {have} bytes, more than the {t} announced"
        )),
        Some(t) => Ok(t),
        None => Ok(have),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((Some(100), Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((Some(0), None)));
        assert_eq!(
            parse_content_range("bytes */5000"),
            Some((None, Some(5000)))
        );
        assert_eq!(parse_content_range("bytes 9-3/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("https://h/x").unwrap(),
            Location::Http("https://h/x".into())
        );
        assert_eq!(
            Location::parse("file:///srv/odinw%20zips/BCCD.zip").unwrap(),
            Location::File("/srv/odinw zips/BCCD.zip".into())
        );
        assert_eq!(
            Location::parse("mirror/BCCD.zip").unwrap(),
            Location::File("mirror/BCCD.zip".into())
        );
        assert!(Location::parse("ftp://h/x").is_err());
        assert!(Location::parse("file://relative/x").is_err());
    }

    #[test]
    fn file_source_resumes_a_partial_file_and_checks_the_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&src, &data).unwrap();
        let part = dir.path().join("p/src.bin.part");
        fs::create_dir_all(part.parent().unwrap()).unwrap();
        fs::write(&part, &data[..123_457]).unwrap();
        let want = hex(&Sha256::digest(&data));
        let expected = Expected {
            size: Some(data.len() as u64),
            sha256: Some(want.clone()),
            ..Expected::default()
        };
        let progress =
            super::super::progress::Progress::new(&super::super::progress::Display::silent(), None)
                .file("src", None);
        let client = Client::new();
        let got = fetch(
            &client,
            &Location::File(src.clone()),
            &part,
            &expected,
            &RetryPolicy::default(),
            &progress,
            &|_| {},
        )
        .unwrap();
        assert_eq!((got.size, got.resumed_from), (data.len() as u64, 123_457));
        assert_eq!(got.sha256, want);
        assert_eq!(fs::read(&part).unwrap(), data);

        // A wrong published checksum: the download is discarded and the error says so.
        fs::remove_file(&part).unwrap();
        let wrong = Expected {
            size: Some(data.len() as u64),
            sha256: Some("0".repeat(64)),
            ..Expected::default()
        };
        let err = fetch(
            &client,
            &Location::File(src),
            &part,
            &wrong,
            &RetryPolicy::default(),
            &progress,
            &|_| {},
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("sha256 mismatch"), "{err:#}");
        assert!(!part.exists());
    }
}

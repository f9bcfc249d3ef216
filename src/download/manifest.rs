//! The manifest of an installed archive, `<root>/.odinw/manifests/<Archive>.json`: where the
//! archive came from (url, size, sha256), when it was installed, and every file it put under
//! `<root>/odinw/` with its size and sha256. One manifest covers all tasks of its archive.
//!
//! A manifest is written only after extraction and normalisation succeeded, and before the
//! files are moved into place, so an archive whose manifest "matches" (every file present with
//! its recorded size) is complete. `odinw verify` re-hashes every file.
use super::extract::resolve_within;
use crate::util::hash::sha256_file;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Path relative to `<root>/odinw/`, with `/` separators.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// For a symbolic link: its target (size and sha256 are then 0 and empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub archive: String,
    /// The registry tasks this archive holds.
    pub tasks: Vec<String>,
    /// `glip` (GLIP's mirror or `--mirror`) or `roboflow`.
    pub source: String,
    /// Where the archive was fetched from (API keys removed).
    pub url: String,
    /// The Hugging Face revision, for the default source.
    pub revision: Option<String>,
    /// Size and sha256 of the archive as downloaded.
    pub size: u64,
    pub sha256: String,
    /// Whether the sha256 was compared with a published value (the hub's tree API), or only
    /// computed (the zip's own CRCs were still checked).
    pub sha256_verified: bool,
    /// The folder under `<root>/odinw/` this archive was installed as.
    pub installed: String,
    pub completed_unix: u64,
    /// RFC 3339, UTC.
    pub completed: String,
    /// Annotation files that `odinw download` wrote (normalisation), also listed in `files`.
    pub normalized: Vec<String>,
    /// Validation findings and missing splits, as printed at install time.
    pub warnings: Vec<String>,
    pub files: Vec<FileEntry>,
}

/// What a check found wrong with an installed archive.
#[derive(Debug, Default, PartialEq)]
pub struct Damage {
    pub missing: Vec<String>,
    pub changed: Vec<String>,
    /// Symbolic links under the installed folder (listed or not) that resolve outside it once
    /// every link on the way is followed.
    pub escaping: Vec<String>,
}

impl Damage {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.changed.is_empty() && self.escaping.is_empty()
    }

    /// One line: counts and the first few paths.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (what, list) in [
            ("missing", &self.missing),
            ("changed", &self.changed),
            ("links leaving the folder", &self.escaping),
        ] {
            if !list.is_empty() {
                let first: Vec<&str> = list.iter().take(3).map(String::as_str).collect();
                let more = if list.len() > 3 { ", ..." } else { "" };
                parts.push(format!(
                    "{} {what} ({}{more})",
                    list.len(),
                    first.join(", ")
                ));
            }
        }
        parts.join("; ")
    }
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid odinw manifest", path.display()))
    }

    /// Reads the manifest if there is one; a missing file is `None`, a broken one an error.
    pub fn read_if_present(path: &Path) -> Result<Option<Self>> {
        if path.exists() {
            Self::read(path).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        crate::util::fs::write_json_atomic(path, self)
    }

    fn full_path(odinw_dir: &Path, rel: &str) -> PathBuf {
        odinw_dir.join(rel)
    }

    /// Fast check (file sizes and link targets only, and that no link under the installed
    /// folder leads out of it), used to skip verified archives at once.
    pub fn quick_check(&self, odinw_dir: &Path) -> Damage {
        let mut damage = Damage {
            escaping: escaping_links(odinw_dir, &self.installed),
            ..Damage::default()
        };
        for f in &self.files {
            let p = Self::full_path(odinw_dir, &f.path);
            match &f.link {
                Some(target) => match std::fs::read_link(&p) {
                    Ok(t) if t == Path::new(target) => {}
                    Ok(_) => damage.changed.push(f.path.clone()),
                    Err(_) => damage.missing.push(f.path.clone()),
                },
                None => match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.is_file() && m.len() == f.size => {}
                    Ok(_) => damage.changed.push(f.path.clone()),
                    Err(_) => damage.missing.push(f.path.clone()),
                },
            }
        }
        damage
    }

    /// Full check: re-hashes every file (in parallel).
    pub fn full_check(&self, odinw_dir: &Path) -> Damage {
        let quick = self.quick_check(odinw_dir);
        let bad_hash: Vec<String> = self
            .files
            .par_iter()
            .filter(|f| f.link.is_none())
            .filter(|f| !quick.missing.contains(&f.path) && !quick.changed.contains(&f.path))
            .filter(|f| {
                sha256_file(&Self::full_path(odinw_dir, &f.path))
                    .map(|h| h != f.sha256)
                    .unwrap_or(true)
            })
            .map(|f| f.path.clone())
            .collect();
        let mut damage = quick;
        damage.changed.extend(bad_hash);
        damage.changed.sort();
        damage
    }

    /// Total bytes of the installed files.
    pub fn installed_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Every symbolic link under `<odinw_dir>/<installed>` that resolves outside that folder (or
/// loops), following each link on the way as the OS does ([`resolve_within`]), with its path
/// relative to `odinw_dir`. Symlinked folders are not entered; the walk is bounded by the tree.
pub fn escaping_links(odinw_dir: &Path, installed: &str) -> Vec<String> {
    let inside: Vec<String> = installed
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let read_link = |p: &[String]| {
        let path = p.iter().fold(odinw_dir.to_path_buf(), |a, c| a.join(c));
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_symlink() {
            return None;
        }
        std::fs::read_link(&path)
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    };
    let mut out = Vec::new();
    let mut stack = vec![inside.clone()];
    while let Some(dir) = stack.pop() {
        let path = dir.iter().fold(odinw_dir.to_path_buf(), |a, c| a.join(c));
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ty) = e.file_type() else { continue };
            let mut comps = dir.clone();
            comps.push(e.file_name().to_string_lossy().into_owned());
            if ty.is_dir() {
                stack.push(comps);
            } else if ty.is_symlink() {
                let ok = resolve_within(&comps, &read_link)
                    .is_ok_and(|r| r.len() >= inside.len() && r[..inside.len()] == inside[..]);
                if !ok {
                    out.push(comps.join("/"));
                }
            }
        }
    }
    out.sort();
    out
}

/// The current time as (unix seconds, RFC 3339 UTC string).
pub fn now() -> (u64, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs, rfc3339(secs))
}

/// Formats unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar, UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        // Values checked with `date -u -d @SECS +%Y-%m-%dT%H:%M:%SZ`.
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    fn manifest_with(files: Vec<FileEntry>) -> Manifest {
        Manifest {
            format: FORMAT,
            archive: "A".into(),
            tasks: vec!["A".into()],
            source: "glip".into(),
            url: "http://x/A.zip".into(),
            revision: None,
            size: 0,
            sha256: String::new(),
            sha256_verified: false,
            installed: "A".into(),
            completed_unix: 0,
            completed: rfc3339(0),
            normalized: vec![],
            warnings: vec![],
            files,
        }
    }

    #[test]
    fn checks_find_missing_resized_and_edited_files() {
        let dir = tempfile::tempdir().unwrap();
        let odinw = dir.path();
        std::fs::create_dir_all(odinw.join("A")).unwrap();
        let mut files = Vec::new();
        for name in ["a", "b", "c", "d"] {
            let p = odinw.join("A").join(name);
            std::fs::write(&p, name.repeat(10)).unwrap();
            files.push(FileEntry {
                path: format!("A/{name}"),
                size: 10,
                sha256: sha256_file(&p).unwrap(),
                link: None,
            });
        }
        let m = manifest_with(files);
        assert!(m.quick_check(odinw).is_empty());
        assert!(m.full_check(odinw).is_empty());
        std::fs::remove_file(odinw.join("A/a")).unwrap();
        std::fs::write(odinw.join("A/b"), "short").unwrap();
        std::fs::write(odinw.join("A/c"), "x".repeat(10)).unwrap(); // same size, new content
        let quick = m.quick_check(odinw);
        assert_eq!(quick.missing, vec!["A/a"]);
        assert_eq!(quick.changed, vec!["A/b"]);
        let full = m.full_check(odinw);
        assert_eq!(full.missing, vec!["A/a"]);
        assert_eq!(full.changed, vec!["A/b", "A/c"]);
        assert!(
            full.describe().contains("1 missing (A/a)"),
            "{}",
            full.describe()
        );
    }
}

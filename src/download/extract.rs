//! Safe extraction of a zip archive into a fresh folder. Every entry name is checked before
//! anything is written: absolute paths, `..` components and NUL bytes are rejected, and so are
//! symbolic links whose target leaves the extraction folder (links that stay inside are created
//! after all regular files, so nothing is ever written through one). Each file is checked
//! against its CRC-32 and declared size as it is written, and hashed for the manifest.
use super::manifest::FileEntry;
use crate::util::hash::hex;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;

/// An archive whose content is unusable (unsafe names, damaged data, missing folders):
/// downloading the same bytes again will not help, so the cached copy is discarded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

#[derive(Debug)]
enum Kind {
    Dir,
    File { size: u64 },
    Link { target: String },
}

#[derive(Debug)]
struct Entry {
    index: usize,
    components: Vec<String>,
    kind: Kind,
}

/// A zip whose entry names were all found safe.
pub struct Checked {
    archive: zip::ZipArchive<File>,
    entries: Vec<Entry>,
    label: String,
}

/// Splits an entry name into safe path components, or says why it is unsafe. `\` counts as a
/// separator (some Windows tools write it); `.` and empty components are dropped.
pub fn safe_components(name: &str) -> Result<Vec<String>, String> {
    if name.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let name = name.replace('\\', "/");
    if name.starts_with('/') {
        return Err("is an absolute path".into());
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err("is an absolute Windows path".into());
    }
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("climbs out of the folder with '..'".into()),
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// Resolves a link target relative to the link's folder; `Err` if it leaves the root.
fn resolve_link(link: &[String], target: &str) -> Result<Vec<String>, String> {
    let target = target.replace('\\', "/");
    if target.starts_with('/') || target.as_bytes().get(1) == Some(&b':') {
        return Err(format!("is a link to the absolute path {target:?}"));
    }
    let mut path: Vec<String> = link[..link.len().saturating_sub(1)].to_vec();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if path.pop().is_none() {
                    return Err(format!("is a link to {target:?}, outside the archive"));
                }
            }
            c => path.push(c.to_string()),
        }
    }
    Ok(path)
}

/// Opens `zip_path` and checks every entry name; nothing is written.
pub fn check(zip_path: &Path) -> Result<Checked> {
    let label = zip_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        anyhow!(Rejected(format!(
            "{label} is not a readable zip archive: {e}"
        )))
    })?;
    let mut entries = Vec::new();
    let mut seen = HashSet::new();
    for index in 0..archive.len() {
        let f = archive
            .by_index_raw(index)
            .with_context(|| format!("{label}: reading entry {index}"))?;
        let name = f.name().to_string();
        let components = safe_components(&name).map_err(|why| unsafe_entry(&label, &name, &why))?;
        if components.is_empty() || components[0] == "__MACOSX" {
            continue;
        }
        let kind = if f.is_symlink() {
            Kind::Link {
                target: String::new(),
            }
        } else if f.is_dir() {
            Kind::Dir
        } else {
            Kind::File { size: f.size() }
        };
        drop(f);
        if !matches!(kind, Kind::Dir) && !seen.insert(components.join("/")) {
            return Err(unsafe_entry(&label, &name, "appears twice"));
        }
        entries.push(Entry {
            index,
            components,
            kind,
        });
    }
    for e in entries.iter_mut() {
        if let Kind::Link { target } = &mut e.kind {
            let mut f = archive.by_index(e.index)?;
            let mut t = String::new();
            f.read_to_string(&mut t)
                .with_context(|| format!("{label}: reading link {}", e.components.join("/")))?;
            resolve_link(&e.components, &t)
                .map_err(|why| unsafe_entry(&label, &e.components.join("/"), &why))?;
            *target = t;
        }
    }
    Ok(Checked {
        archive,
        entries,
        label,
    })
}

fn unsafe_entry(label: &str, name: &str, why: &str) -> anyhow::Error {
    anyhow!(Rejected(format!(
        "{label} is unsafe: entry {name:?} {why}; nothing was extracted"
    )))
}

impl Checked {
    /// Sum of the declared sizes of the files.
    pub fn uncompressed_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                Kind::File { size } => size,
                _ => 0,
            })
            .sum()
    }

    /// The distinct first path components.
    pub fn top_level(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .map(|e| e.components[0].clone())
            .collect()
    }

    /// Whether every entry lies under the folder `name/`.
    pub fn all_under(&self, name: &str) -> bool {
        !self.entries.is_empty()
            && self.entries.iter().all(|e| {
                e.components[0] == name && (e.components.len() > 1 || matches!(e.kind, Kind::Dir))
            })
    }

    /// Extracts into `dest` (created; must not exist yet), calling `on_bytes` as data is
    /// written. Returns every file and link with its path relative to `dest`.
    pub fn extract_into(mut self, dest: &Path, on_bytes: &dyn Fn(u64)) -> Result<Vec<FileEntry>> {
        if dest.exists() {
            bail!(
                "{} already exists; refusing to extract over it",
                dest.display()
            );
        }
        fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 256 << 10];
        for e in self
            .entries
            .iter()
            .filter(|e| !matches!(e.kind, Kind::Link { .. }))
        {
            let rel = e.components.join("/");
            let path = e
                .components
                .iter()
                .fold(dest.to_path_buf(), |p, c| p.join(c));
            match e.kind {
                Kind::Dir => {
                    fs::create_dir_all(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                }
                Kind::File { size } => {
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent)
                            .with_context(|| format!("creating {}", parent.display()))?;
                    }
                    let mut reader = self
                        .archive
                        .by_index(e.index)
                        .with_context(|| format!("{}: opening entry {rel:?}", self.label))?;
                    let mut file = File::options()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut hasher = Sha256::new();
                    let mut written = 0u64;
                    loop {
                        let n = reader.read(&mut buf).map_err(|err| {
                            anyhow!(Rejected(format!(
                                "{} is damaged: entry {rel:?} fails its integrity check ({err}); \
                                 nothing was installed",
                                self.label
                            )))
                        })?;
                        if n == 0 {
                            break;
                        }
                        written += n as u64;
                        if written > size {
                            return Err(anyhow!(Rejected(format!(
                                "{} is damaged: entry {rel:?} holds more than its declared {size} bytes",
                                self.label
                            ))));
                        }
                        file.write_all(&buf[..n])
                            .with_context(|| format!("writing {}", path.display()))?;
                        hasher.update(&buf[..n]);
                        on_bytes(n as u64);
                    }
                    if written != size {
                        return Err(anyhow!(Rejected(format!(
                            "{} is damaged: entry {rel:?} has {written} of its declared {size} bytes",
                            self.label
                        ))));
                    }
                    out.push(FileEntry {
                        path: rel,
                        size,
                        sha256: hex(&hasher.finalize()),
                        link: None,
                    });
                }
                Kind::Link { .. } => unreachable!(),
            }
        }
        for e in &self.entries {
            if let Kind::Link { target } = &e.kind {
                let path = e
                    .components
                    .iter()
                    .fold(dest.to_path_buf(), |p, c| p.join(c));
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                make_link(target, &path)?;
                out.push(FileEntry {
                    path: e.components.join("/"),
                    size: 0,
                    sha256: String::new(),
                    link: Some(target.clone()),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(unix)]
fn make_link(target: &str, path: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, path)
        .with_context(|| format!("creating link {} -> {target}", path.display()))
}

#[cfg(not(unix))]
fn make_link(target: &str, path: &Path) -> Result<()> {
    bail!(
        "cannot create link {} -> {target}: symbolic links in archives are supported on Unix only",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_checked() {
        assert_eq!(
            safe_components("a/./b//c.jpg").unwrap(),
            ["a", "b", "c.jpg"]
        );
        assert_eq!(safe_components("a\\b.jpg").unwrap(), ["a", "b.jpg"]);
        assert!(safe_components("../x").unwrap_err().contains(".."));
        assert!(safe_components("a/../../x").is_err());
        assert!(safe_components("a/../x").is_err(), "any '..' is refused");
        assert!(safe_components("/etc/passwd")
            .unwrap_err()
            .contains("absolute"));
        assert!(safe_components("\\\\server\\x").is_err());
        assert!(safe_components("C:/x").unwrap_err().contains("Windows"));
        assert!(safe_components("a\0b").is_err());
    }

    #[test]
    fn links_must_stay_inside() {
        let link = vec!["A".to_string(), "sub".into(), "l".into()];
        assert_eq!(resolve_link(&link, "../x").unwrap(), ["A", "x"]);
        assert_eq!(resolve_link(&link, "../../x").unwrap(), ["x"]);
        assert!(resolve_link(&link, "../../../x").is_err());
        assert!(resolve_link(&link, "/etc/passwd").is_err());
    }
}

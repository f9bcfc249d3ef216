//! Safe extraction of a zip archive into a fresh folder. Everything is checked before anything
//! is written:
//! - entry names: absolute paths, `..` components and NUL bytes are refused, and so is a name
//!   that appears twice (exactly, or after `\` → `/` and `.` removal; the `zip` crate keeps
//!   only the last of two equal names, so the central directory is also walked here);
//! - symbolic links: each link is resolved inside the archive the way the OS will resolve it
//!   on disk, following every other link of the archive it passes through (`b -> a/..` with
//!   `a -> ..` leaves the folder even though `a/..` looks harmless); links that leave the
//!   folder, loop, or have entries beneath them are refused, and the links that stay inside are
//!   created after all regular files, so nothing is ever written through one;
//! - size: the declared uncompressed total may not exceed [`Limits`] (a multiple of the
//!   archive's size, and the free space), and each file is checked against its declared size
//!   and CRC-32 while it is written, so a zip bomb stops at the limit.
//!
//! [`extract_bytes`] and [`extract_file`] are the whole pipeline in one call (never panic,
//! bounded by the limits); the download path uses [`check`] and [`Checked::extract_into`].
use super::manifest::FileEntry;
use crate::util::hash::hex;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// An archive whose content is unusable (unsafe names, damaged data, missing folders):
/// downloading the same bytes again will not help, so the cached copy is discarded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// How much an archive may expand to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The declared uncompressed total may be at most this many times the archive's size...
    pub max_ratio: u64,
    /// ...or this many bytes, whichever is larger (small archives of JSON compress well).
    pub floor: u64,
    /// Bytes free where the archive is extracted (the total must fit).
    pub available: u64,
}

/// Default expansion limit: RoboFlow exports are JPEGs stored as is (ratio ~1) and COCO JSON
/// (deflate gives ~5-15x); a 100x archive is a zip bomb.
pub const MAX_RATIO: u64 = 100;
/// Below this, any expansion ratio is accepted.
pub const RATIO_FLOOR: u64 = 64 << 20;
/// Links may be followed at most this many times while resolving one (as Linux's `ELOOP`).
const MAX_HOPS: usize = 40;
/// The longest link target read from an archive.
const MAX_LINK_TARGET: u64 = 4096;

impl Limits {
    /// The default ratio and floor, with `available` bytes free.
    pub fn with_available(available: u64) -> Self {
        Limits {
            max_ratio: MAX_RATIO,
            floor: RATIO_FLOOR,
            available,
        }
    }
}

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
    /// For a link: where it points, relative to the extraction folder, every link followed.
    resolved: Vec<String>,
}

/// A zip whose entry names were all found safe.
pub struct Checked<R> {
    archive: zip::ZipArchive<R>,
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

/// Resolves `path` (components under a root folder) as the OS would, following the links that
/// `link_at` knows (path → target text) wherever they occur, `..` included. `Err` says why the
/// path leaves the root (or loops). Work is bounded: at most [`MAX_HOPS`] links are followed.
pub fn resolve_within(
    path: &[String],
    link_at: &dyn Fn(&[String]) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending: VecDeque<String> = path.iter().cloned().collect();
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        match c.as_str() {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err("leaves the folder".into());
                }
            }
            _ => {
                out.push(c);
                if let Some(target) = link_at(&out) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(format!("follows more than {MAX_HOPS} links (a loop)"));
                    }
                    let target = target.replace('\\', "/");
                    let b = target.as_bytes();
                    if b.first() == Some(&b'/') || (b.len() >= 2 && b[1] == b':') {
                        return Err(format!(
                            "passes through {} -> {target:?}, an absolute path",
                            out.join("/")
                        ));
                    }
                    out.pop();
                    for t in target.split('/').rev() {
                        pending.push_front(t.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Opens `zip_path` and checks every entry against `limits`; nothing is written.
pub fn check(zip_path: &Path, limits: &Limits) -> Result<Checked<File>> {
    let label = zip_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    check_reader(file, &label, limits)
}

fn rejected(msg: String) -> anyhow::Error {
    anyhow!(Rejected(msg))
}

/// The raw names of the central directory's entries, in order (the `zip` crate keeps one entry
/// per distinct name, so equal names are only visible here). Bounded by the archive's size.
fn central_names<R: Read + Seek>(r: &mut R, start: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let end = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(start))?;
    let mut pos = start;
    let mut names = Vec::new();
    let u16_at = |h: &[u8; 46], i: usize| u64::from(u16::from_le_bytes([h[i], h[i + 1]]));
    while pos + 46 <= end {
        let mut h = [0u8; 46];
        r.read_exact(&mut h)?;
        if h[..4] != [0x50, 0x4b, 0x01, 0x02] {
            break;
        }
        let (n, extra, comment) = (u16_at(&h, 28), u16_at(&h, 30), u16_at(&h, 32));
        let mut name = vec![0u8; n as usize];
        r.read_exact(&mut name)?;
        r.seek(SeekFrom::Current((extra + comment) as i64))?;
        pos += 46 + n + extra + comment;
        names.push(name);
    }
    Ok(names)
}

/// [`check`] for any reader; `label` names the archive in messages.
pub fn check_reader<R: Read + Seek>(
    mut reader: R,
    label: &str,
    limits: &Limits,
) -> Result<Checked<R>> {
    let label = label.to_string();
    let archive_len = reader
        .seek(SeekFrom::End(0))
        .with_context(|| format!("reading {label}"))?;
    let open = |r: R| {
        zip::ZipArchive::new(r)
            .map_err(|e| rejected(format!("{label} is not a readable zip archive: {e}")))
    };
    // Exact duplicate names: the crate's index keeps one entry per name, so the central
    // directory is walked (once) to see them all.
    let first = open(reader)?;
    let (distinct, dir_start) = (first.len(), first.central_directory_start());
    let mut reader = first.into_inner();
    let names = central_names(&mut reader, dir_start)
        .map_err(|e| rejected(format!("{label} has a damaged central directory: {e}")))?;
    let mut sorted: Vec<&Vec<u8>> = names.iter().collect();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        let name = String::from_utf8_lossy(w[0]).into_owned();
        return Err(unsafe_entry(&label, &name, "appears twice"));
    }
    if names.len() > distinct {
        return Err(rejected(format!(
            "{label} is unsafe: its central directory lists {} entries but only {distinct} \
             distinct names; nothing was extracted",
            names.len()
        )));
    }
    let mut archive = open(reader)?;

    let mut entries = Vec::new();
    let mut seen = HashSet::new();
    for index in 0..archive.len() {
        let f = archive
            .by_index_raw(index)
            .map_err(|e| rejected(format!("{label} is damaged: entry {index}: {e}")))?;
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
            resolved: Vec::new(),
        });
    }

    // Declared sizes against the limits, before any link is read.
    let total = entries
        .iter()
        .map(|e| match e.kind {
            Kind::File { size } => size,
            _ => 0,
        })
        .fold(0u64, u64::saturating_add);
    let allowed = archive_len
        .saturating_mul(limits.max_ratio)
        .max(limits.floor);
    if total > allowed {
        return Err(rejected(format!(
            "{label} is unsafe: it would expand to {total} bytes, more than {}x its own {archive_len} \
             bytes (a zip bomb?); nothing was extracted",
            limits.max_ratio
        )));
    }
    if total > limits.available {
        bail!(
            "not enough free space to extract {label}: it holds {}, {} is free",
            super::progress::human_bytes(total),
            super::progress::human_bytes(limits.available)
        );
    }

    // Links: read their targets, then resolve each through all the others.
    let mut links: HashMap<Vec<String>, String> = HashMap::new();
    for e in entries.iter_mut() {
        if let Kind::Link { target } = &mut e.kind {
            let shown = e.components.join("/");
            let f = archive
                .by_index(e.index)
                .map_err(|err| rejected(format!("{label} is damaged: link {shown:?}: {err}")))?;
            let mut bytes = Vec::new();
            f.take(MAX_LINK_TARGET + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| rejected(format!("{label} is damaged: link {shown:?}: {err}")))?;
            if bytes.len() as u64 > MAX_LINK_TARGET {
                return Err(unsafe_entry(
                    &label,
                    &shown,
                    "is a link with an overlong target",
                ));
            }
            let t = String::from_utf8(bytes)
                .map_err(|_| unsafe_entry(&label, &shown, "is a link to a non-UTF-8 path"))?;
            if t.is_empty() || t.contains('\0') {
                return Err(unsafe_entry(
                    &label,
                    &shown,
                    "is a link with an empty or NUL target",
                ));
            }
            links.insert(e.components.clone(), t.clone());
            *target = t;
        }
    }
    if !links.is_empty() {
        for e in &entries {
            for n in 1..e.components.len() {
                if let Some(t) = links.get(&e.components[..n]) {
                    return Err(unsafe_entry(
                        &label,
                        &e.components.join("/"),
                        &format!(
                            "lies beneath the link {} -> {t:?}",
                            e.components[..n].join("/")
                        ),
                    ));
                }
            }
        }
        let link_at = |p: &[String]| links.get(p).cloned();
        for e in entries.iter_mut() {
            if let Kind::Link { target } = &e.kind {
                let shown = e.components.join("/");
                e.resolved = resolve_within(&e.components, &link_at).map_err(|why| {
                    unsafe_entry(
                        &label,
                        &shown,
                        &format!("is a link to {target:?} that {why} once every link is followed"),
                    )
                })?;
            }
        }
    }
    Ok(Checked {
        archive,
        entries,
        label,
    })
}

fn unsafe_entry(label: &str, name: &str, why: &str) -> anyhow::Error {
    rejected(format!(
        "{label} is unsafe: entry {name:?} {why}; nothing was extracted"
    ))
}

/// Checks and extracts the zip in `bytes` into `dest` (created; must not exist): the whole
/// pipeline of this module in one call. Never panics; work and disk use are bounded by
/// `limits` and the size of `bytes`.
pub fn extract_bytes(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<Vec<FileEntry>> {
    check_reader(Cursor::new(bytes), "the archive", limits)?.extract_into(dest, &|_| {})
}

/// [`extract_bytes`] for a zip file.
pub fn extract_file(zip: &Path, dest: &Path, limits: &Limits) -> Result<Vec<FileEntry>> {
    check(zip, limits)?.extract_into(dest, &|_| {})
}

impl<R: Read + Seek> Checked<R> {
    /// Sum of the declared sizes of the files.
    pub fn uncompressed_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                Kind::File { size } => size,
                _ => 0,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The distinct first path components.
    pub fn top_level(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .map(|e| e.components[0].clone())
            .collect()
    }

    /// Whether every entry lies under the folder `name/`, and every link points there.
    pub fn all_under(&self, name: &str) -> bool {
        !self.entries.is_empty()
            && self.entries.iter().all(|e| {
                e.components[0] == name
                    && (e.components.len() > 1 || matches!(e.kind, Kind::Dir))
                    && match e.kind {
                        Kind::Link { .. } => e.resolved.first().is_some_and(|c| c == name),
                        _ => true,
                    }
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
        for e in &self.entries {
            let rel = e.components.join("/");
            let path = e
                .components
                .iter()
                .fold(dest.to_path_buf(), |p, c| p.join(c));
            match e.kind {
                Kind::Link { .. } => continue, // after every file
                Kind::Dir => {
                    fs::create_dir_all(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                }
                Kind::File { size } => {
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent)
                            .with_context(|| format!("creating {}", parent.display()))?;
                    }
                    let mut reader = self.archive.by_index(e.index).map_err(|err| {
                        rejected(format!("{} is damaged: entry {rel:?}: {err}", self.label))
                    })?;
                    let mut file = File::options()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut hasher = Sha256::new();
                    let mut written = 0u64;
                    loop {
                        let n = reader.read(&mut buf).map_err(|err| {
                            rejected(format!(
                                "{} is damaged: entry {rel:?} fails its integrity check ({err}); \
                                 nothing was installed",
                                self.label
                            ))
                        })?;
                        if n == 0 {
                            break;
                        }
                        written += n as u64;
                        if written > size {
                            return Err(rejected(format!(
                                "{} is damaged: entry {rel:?} holds more than its declared {size} bytes",
                                self.label
                            )));
                        }
                        file.write_all(&buf[..n])
                            .with_context(|| format!("writing {}", path.display()))?;
                        hasher.update(&buf[..n]);
                        on_bytes(n as u64);
                    }
                    if written != size {
                        return Err(rejected(format!(
                            "{} is damaged: entry {rel:?} has {written} of its declared {size} bytes",
                            self.label
                        )));
                    }
                    out.push(FileEntry {
                        path: rel,
                        size,
                        sha256: hex(&hasher.finalize()),
                        link: None,
                    });
                }
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

    fn v(p: &str) -> Vec<String> {
        p.split('/').map(String::from).collect()
    }

    type Writer = zip::ZipWriter<Cursor<Vec<u8>>>;

    fn zip_of(build: &dyn Fn(&mut Writer)) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        build(&mut w);
        w.finish().unwrap().into_inner()
    }

    fn opts() -> zip::write::SimpleFileOptions {
        zip::write::SimpleFileOptions::default()
    }

    const ROOMY: Limits = Limits {
        max_ratio: MAX_RATIO,
        floor: RATIO_FLOOR,
        available: u64::MAX,
    };

    #[test]
    fn extract_bytes_keeps_inner_links_and_refuses_chains_duplicates_and_bombs() {
        let dir = tempfile::tempdir().unwrap();
        let ok = zip_of(&|w| {
            w.start_file("A/img/a.jpg", opts()).unwrap();
            w.write_all(b"jpeg").unwrap();
            w.add_symlink("A/l1", "img", opts()).unwrap();
            w.add_symlink("A/l2", "l1/a.jpg", opts()).unwrap();
        });
        let dest = dir.path().join("ok");
        let files = extract_bytes(&ok, &dest, &ROOMY).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(fs::read(dest.join("A/l2")).unwrap(), b"jpeg");

        let chain = zip_of(&|w| {
            w.add_symlink("A/a", "..", opts()).unwrap();
            w.add_symlink("A/b", "a/..", opts()).unwrap();
        });
        let err = extract_bytes(&chain, &dir.path().join("chain"), &ROOMY).unwrap_err();
        assert!(err.downcast_ref::<Rejected>().is_some());
        assert!(
            format!("{err:#}").contains("\"A/b\" is a link to \"a/..\""),
            "{err:#}"
        );
        assert!(!dir.path().join("chain").exists(), "nothing written");

        // Deflated zeros: 2 MiB in a few KB, over a 10x limit with a 1 MiB floor.
        let bomb = zip_of(&|w| {
            let deflated = opts().compression_method(zip::CompressionMethod::Deflated);
            w.start_file("A/z.jpg", deflated).unwrap();
            w.write_all(&vec![0u8; 2 << 20]).unwrap();
        });
        let small = Limits {
            max_ratio: 10,
            floor: 1 << 20,
            available: u64::MAX,
        };
        let err = extract_bytes(&bomb, &dir.path().join("bomb"), &small).unwrap_err();
        assert!(format!("{err:#}").contains("zip bomb"), "{err:#}");
        extract_bytes(&bomb, &dir.path().join("bomb"), &ROOMY).unwrap();
        let tight = Limits {
            available: 1 << 20,
            ..ROOMY
        };
        let err = extract_bytes(&bomb, &dir.path().join("full"), &tight).unwrap_err();
        assert!(
            format!("{err:#}").contains("not enough free space"),
            "{err:#}"
        );

        // Garbage and truncations of a valid zip: errors, never a panic.
        for cut in [0, 10, ok.len() / 2, ok.len() - 1] {
            let dest = dir.path().join(format!("cut{cut}"));
            assert!(extract_bytes(&ok[..cut], &dest, &ROOMY).is_err());
        }
    }

    #[test]
    fn links_are_resolved_through_every_other_link() {
        let links: HashMap<Vec<String>, String> = [
            ("A/sub/l", "../x"),
            ("A/up", "../.."),
            ("A/a", ".."),
            ("A/b", "a/.."),
            ("A/c", "b/etc"),
            ("A/loop1", "loop2"),
            ("A/loop2", "loop1"),
            ("A/abs", "/etc/passwd"),
            ("A/in", "sub/../sub/l"),
        ]
        .into_iter()
        .map(|(k, t)| (v(k), t.to_string()))
        .collect();
        let at = |p: &[String]| links.get(p).cloned();
        assert_eq!(resolve_within(&v("A/sub/l"), &at).unwrap(), ["A", "x"]);
        assert_eq!(resolve_within(&v("A/in"), &at).unwrap(), ["A", "x"]);
        assert_eq!(
            resolve_within(&v("A/a"), &at).unwrap(),
            Vec::<String>::new()
        );
        // `A/b -> a/..`: lexically `A`, but `a` is `..` (the root), so `a/..` leaves it.
        assert!(resolve_within(&v("A/b"), &at)
            .unwrap_err()
            .contains("leaves"));
        assert!(resolve_within(&v("A/c"), &at).is_err());
        assert!(resolve_within(&v("A/up"), &at).is_err());
        assert!(resolve_within(&v("A/loop1"), &at)
            .unwrap_err()
            .contains("loop"));
        assert!(resolve_within(&v("A/abs"), &at)
            .unwrap_err()
            .contains("absolute"));
    }
}

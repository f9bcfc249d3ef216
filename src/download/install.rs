//! Installs a downloaded archive: extracts it safely into the staging area, checks that it
//! holds its tasks' folders, writes GLIP's annotation files where only RoboFlow's exist
//! (normalisation), validates every annotation file, writes the manifest, and only then moves
//! the folder into `<root>/odinw/` with a single rename. A run killed at any point leaves either
//! the old state or the new one, never a half-written dataset.
use super::extract::{self, Rejected};
use super::manifest::{self, FileEntry, Manifest};
use super::state::StateDir;
use crate::data::coco::CocoFile;
use crate::data::normalize::{self, Action};
use crate::data::validate::validate;
use crate::registry::Task;
use crate::util::hash::sha256_file;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Where an archive's contents go under `<root>/odinw/`.
#[derive(Clone, Debug)]
pub enum Place {
    /// GLIP's zips: `<Archive>/...` (the top folder is added when the zip lacks it).
    Glip { archive: String },
    /// A RoboFlow export (`train/`, `valid/`, `test/` at the top) goes into the task's folder.
    Under { folder: String },
}

/// Where the archive came from, for the manifest.
#[derive(Clone, Debug)]
pub struct Origin {
    pub source: String,
    pub url: String,
    pub revision: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub sha256_verified: bool,
}

/// The result of an install.
#[derive(Debug)]
pub struct Installed {
    pub files: usize,
    pub bytes: u64,
    /// One line per annotation file written by normalisation (and what was removed).
    pub normalized: Vec<String>,
    /// Missing splits and validation findings.
    pub warnings: Vec<String>,
}

/// The folder (relative to `<root>/odinw/`) an archive is installed as.
pub fn installed_dir(place: &Place) -> &str {
    match place {
        Place::Glip { archive } => archive,
        Place::Under { folder } => folder,
    }
}

/// Refuses to replace `<root>/odinw/<installed>` when it exists and no manifest of this archive
/// says odinw put it there (it may hold someone's own data).
pub fn check_destination(state: &StateDir, archive: &str, place: &Place) -> Result<()> {
    let installed = installed_dir(place);
    let dest = state.odinw_dir().join(installed);
    if !dest.exists() {
        return Ok(());
    }
    let manifest_path = state.manifest(archive);
    let ours = Manifest::read_if_present(&manifest_path)
        .ok()
        .flatten()
        .is_some_and(|m| {
            installed == m.installed || installed.starts_with(&format!("{}/", m.installed))
        });
    if ours {
        return Ok(());
    }
    bail!(
        "{} exists but was not installed by odinw download (no manifest at {}); move it away \
         or delete it, then run again",
        dest.display(),
        manifest_path.display()
    )
}

/// Installs `zip` (already verified) for `tasks` (every registry task the archive holds).
pub fn install(
    state: &StateDir,
    archive: &str,
    zip: &Path,
    tasks: &[&Task],
    place: &Place,
    origin: Origin,
    on_bytes: &dyn Fn(u64),
) -> Result<Installed> {
    let label = zip
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let available = fs4::available_space(state.root())
        .with_context(|| format!("reading free space of {}", state.root().display()))?;
    let checked = extract::check(zip, &extract::Limits::with_available(available))?;
    let staging = state.staging().join(archive);
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let stage_odinw = staging.join("odinw");
    let installed = installed_dir(place).to_string();
    let (dest, prefix) = match place {
        Place::Glip { archive } if checked.all_under(archive) => {
            (stage_odinw.clone(), String::new())
        }
        _ => (stage_odinw.join(&installed), format!("{installed}/")),
    };
    let top = checked.top_level();
    fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let extracted = checked.extract_into(&dest, on_bytes)?;
    let mut hashes: BTreeMap<String, FileEntry> = extracted
        .into_iter()
        .map(|mut f| {
            f.path = format!("{prefix}{}", f.path);
            (f.path.clone(), f)
        })
        .collect();

    for t in tasks {
        if !t.dir(&staging).is_dir() {
            let found: Vec<&str> = top.iter().map(String::as_str).collect();
            return Err(anyhow!(Rejected(format!(
                "{label} does not hold {} (task {}); its top level has: {}",
                Path::new("odinw").join(&t.folder).display(),
                t.name,
                found.join(", ")
            ))));
        }
    }

    let mut normalized = Vec::new();
    let mut warnings = Vec::new();
    let mut written = Vec::new();
    let mut seen = BTreeSet::new();
    for t in tasks {
        for split in t.split_names() {
            let files = &t.splits[split];
            if !seen.insert(files.ann_file.clone()) {
                continue;
            }
            let target = staging.join(&files.ann_file);
            let shown = PathBuf::from(&files.ann_file);
            if !target.exists() {
                let source = normalize::source_for(&target).filter(|s| s.is_file());
                match source {
                    Some(source) => {
                        let mut outcome =
                            normalize::normalize_file(&source, &target).map_err(|e| {
                                anyhow!(Rejected(format!("{label}: {}: {e:#}", shown.display())))
                            })?;
                        outcome.source = shown.with_file_name(source.file_name().unwrap());
                        outcome.target = shown.clone();
                        if outcome.action == Action::Written {
                            written.push(files.ann_file.clone());
                        }
                        normalized.push(outcome.describe());
                    }
                    None => {
                        warnings.push(format!(
                            "task {} has no {split} annotations: neither {} nor RoboFlow's {} is in {label}",
                            t.name,
                            shown.display(),
                            normalize::source_for(&shown)
                                .map(|p| p.display().to_string())
                                .unwrap_or_default()
                        ));
                        continue;
                    }
                }
            }
            let coco = CocoFile::read(&target)
                .map_err(|e| anyhow!(Rejected(format!("{label}: {}: {e:#}", shown.display()))))?;
            let img_dir = staging.join(&files.img_dir);
            for finding in validate(&coco, Some(&img_dir)) {
                if finding.is_error() {
                    return Err(anyhow!(Rejected(format!(
                        "{label} is unsafe: {}; nothing was installed",
                        finding.describe(&shown)
                    ))));
                }
                warnings.push(finding.describe(&shown));
            }
        }
    }

    // Every file now in the staged folder: hashes from extraction, the rest hashed here.
    let root_of_install = stage_odinw.join(&installed);
    let mut files = Vec::new();
    for path in walk(&root_of_install)? {
        let rel = path
            .strip_prefix(&stage_odinw)
            .expect("walked under the staging folder")
            .to_string_lossy()
            .replace('\\', "/");
        let entry = match hashes.remove(&rel) {
            Some(e) => e,
            None => {
                let meta = fs::symlink_metadata(&path)?;
                FileEntry {
                    path: rel,
                    size: meta.len(),
                    sha256: sha256_file(&path)?,
                    link: None,
                }
            }
        };
        files.push(entry);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let bytes = files.iter().map(|f| f.size).sum();
    let (completed_unix, completed) = manifest::now();
    let manifest = Manifest {
        format: manifest::FORMAT,
        archive: archive.to_string(),
        tasks: tasks.iter().map(|t| t.name.clone()).collect(),
        source: origin.source,
        url: origin.url,
        revision: origin.revision,
        size: origin.size,
        sha256: origin.sha256,
        sha256_verified: origin.sha256_verified,
        installed: installed.clone(),
        completed_unix,
        completed,
        normalized: written,
        warnings: warnings.clone(),
        files,
    };
    let count = manifest.files.len();
    // Manifest first, then the rename: a kill in between leaves a manifest whose files are
    // missing (not verified, redone on the next run), never files without their manifest.
    manifest.write(&state.manifest(archive))?;
    move_into_place(
        &root_of_install,
        &state.odinw_dir().join(&installed),
        &staging,
    )?;
    fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    Ok(Installed {
        files: count,
        bytes,
        normalized,
        warnings,
    })
}

/// Renames `staged` to `dest`; an existing `dest` (checked to be odinw's own) is first moved
/// into the staging folder and removed after the swap.
fn move_into_place(staged: &Path, dest: &Path, staging: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let old = staging.join("replaced");
    let had_old = dest.exists();
    if had_old {
        fs::rename(dest, &old)
            .with_context(|| format!("moving the old {} aside", dest.display()))?;
    }
    fs::rename(staged, dest).with_context(|| {
        format!(
            "moving {} into place as {} (the staging area and the dataset folder must be on one file system)",
            staged.display(),
            dest.display()
        )
    })?;
    if had_old {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// Every file and link under `dir`, recursively.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let ty = e.file_type()?;
            if ty.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}

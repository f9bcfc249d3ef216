//! RoboFlow COCO exports → GLIP's annotation files. A RoboFlow export's
//! `_annotations.coco.json` lists a root category (id 0, named after the supercategory of all
//! the others, with no annotations of its own); GLIP reads `annotations_without_background.json`,
//! the same file without it. The other categories keep their ids and names.
//!
//! Idempotent, and it never overwrites a file it did not write: what it writes is recorded (by
//! sha256) in `.odinw-normalized.json` beside the file; an existing target that differs from
//! what would be written and is not recorded there is left alone, and the outcome says so.
use super::coco::CocoFile;
use super::validate::{validate, Finding};
use crate::util::hash::{hex, sha256_file};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// RoboFlow's name for an export's annotation file.
pub const ROBOFLOW_FILE: &str = "_annotations.coco.json";
/// GLIP's name for it without the root category.
pub const GLIP_FILE: &str = "annotations_without_background.json";
/// The record of files this module wrote, one per folder.
pub const SIDECAR: &str = ".odinw-normalized.json";

/// What happened to category 0.
#[derive(Clone, Debug, PartialEq)]
pub enum Root {
    /// Removed: the root category's id, name and the number of categories under it.
    Removed {
        id: u64,
        name: String,
        children: usize,
    },
    /// There was no category 0.
    Absent,
    /// There was a category 0 but it is not a root category (the reason says why); kept.
    Kept(String),
}

/// What happened to the target file.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Written,
    /// The target already held exactly this content.
    Unchanged,
    /// The target exists with other content and was not written by odinw; left alone.
    LeftForeign,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub source: PathBuf,
    pub target: PathBuf,
    pub root: Root,
    pub action: Action,
}

impl Outcome {
    /// One line for the user.
    pub fn describe(&self) -> String {
        let root = match &self.root {
            Root::Removed { id, name, children } => format!(
                "removed root category {id} {name:?} (supercategory of the other {children}, no annotations)"
            ),
            Root::Absent => "no category 0 to remove".to_string(),
            Root::Kept(why) => format!("kept category 0: {why}"),
        };
        let action = match self.action {
            Action::Written => format!("wrote {}", self.target.display()),
            Action::Unchanged => format!("{} is up to date", self.target.display()),
            Action::LeftForeign => format!(
                "{} exists and was not written by odinw; left as is",
                self.target.display()
            ),
        };
        format!("{}: {root}; {action}", self.source.display())
    }
}

/// Removes the root category from `coco` if it is one.
pub fn strip_root_category(coco: &mut CocoFile) -> Root {
    let Some(pos) = coco.categories.iter().position(|c| c.id == 0) else {
        return Root::Absent;
    };
    let root = &coco.categories[pos];
    let used = coco
        .annotations
        .iter()
        .filter(|a| a.category_id == 0)
        .count();
    if used > 0 {
        return Root::Kept(format!("{:?} has {used} annotations", root.name));
    }
    let others: Vec<_> = coco.categories.iter().filter(|c| c.id != 0).collect();
    if others.is_empty() {
        return Root::Kept(format!("{:?} is the only category", root.name));
    }
    let outside: Vec<&str> = others
        .iter()
        .filter(|c| c.extra.get("supercategory").and_then(|v| v.as_str()) != Some(&root.name))
        .map(|c| c.name.as_str())
        .collect();
    if !outside.is_empty() {
        return Root::Kept(format!(
            "it is not the supercategory of {}",
            outside.join(", ")
        ));
    }
    let removed = coco.categories.remove(pos);
    Root::Removed {
        id: removed.id,
        name: removed.name,
        children: coco.categories.len(),
    }
}

/// The GLIP file made from a RoboFlow file: `_annotations.coco.json` →
/// `annotations_without_background.json`, `<s>_annotations.coco.json` →
/// `<s>_annotations_without_background.json`.
pub fn target_for(source: &Path) -> Option<PathBuf> {
    let name = source.file_name()?.to_str()?;
    let target = if name == ROBOFLOW_FILE {
        GLIP_FILE.to_string()
    } else {
        let prefix = name.strip_suffix(ROBOFLOW_FILE)?;
        format!("{prefix}_{GLIP_FILE}")
    };
    Some(source.with_file_name(target))
}

/// The RoboFlow file a GLIP file is made from (the inverse of [`target_for`]).
pub fn source_for(target: &Path) -> Option<PathBuf> {
    let name = target.file_name()?.to_str()?;
    let source = if name == GLIP_FILE {
        ROBOFLOW_FILE.to_string()
    } else {
        let prefix = name.strip_suffix(GLIP_FILE)?.strip_suffix('_')?;
        format!("{prefix}{ROBOFLOW_FILE}")
    };
    Some(target.with_file_name(source))
}

#[derive(Default, Serialize, Deserialize)]
struct Record {
    /// Target file name → what odinw wrote there.
    files: BTreeMap<String, Written>,
}

#[derive(Serialize, Deserialize)]
struct Written {
    sha256: String,
    source_sha256: String,
}

fn read_record(path: &Path) -> Result<Record> {
    if !path.exists() {
        return Ok(Record::default());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is damaged (odinw's record of the files it wrote); remove it to start over",
            path.display()
        )
    })
}

/// Writes `target` from `source` without the root category, as described in the module doc.
pub fn normalize_file(source: &Path, target: &Path) -> Result<Outcome> {
    let source_bytes =
        std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    let mut coco = CocoFile::from_slice(&source_bytes)
        .with_context(|| format!("{} is not a valid COCO file", source.display()))?;
    let root = strip_root_category(&mut coco);
    let mut bytes = serde_json::to_vec_pretty(&coco)?;
    bytes.push(b'\n');
    let sha = hex(&Sha256::digest(&bytes));
    let outcome = |action| Outcome {
        source: source.to_path_buf(),
        target: target.to_path_buf(),
        root: root.clone(),
        action,
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    let record_path = dir.join(SIDECAR);
    let mut record = read_record(&record_path)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if target.exists() {
        let current = sha256_file(target)?;
        if current == sha {
            return Ok(outcome(Action::Unchanged));
        }
        let ours = record.files.get(&name).is_some_and(|w| w.sha256 == current);
        if !ours {
            return Ok(outcome(Action::LeftForeign));
        }
    }
    crate::util::fs::write_atomic(target, &bytes)?;
    record.files.insert(
        name,
        Written {
            sha256: sha,
            source_sha256: hex(&Sha256::digest(&source_bytes)),
        },
    );
    crate::util::fs::write_json_atomic(&record_path, &record)?;
    Ok(outcome(Action::Written))
}

/// What `normalize_tree` did with one RoboFlow file.
#[derive(Debug)]
pub struct FileReport {
    pub source: PathBuf,
    /// What happened to the target (`None` when the source could not be normalised).
    pub outcome: Option<Outcome>,
    /// Validation findings of the target.
    pub findings: Vec<Finding>,
    /// Why the file failed (naming it): unreadable or invalid source or target.
    pub error: Option<String>,
}

impl FileReport {
    /// Whether this file failed, or its image paths leave its folder.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.findings.iter().any(Finding::is_error)
    }
}

/// Normalises every RoboFlow file under `dir` ([`find_exports`]) and validates each result
/// against the images beside it; one bad file does not stop the others.
pub fn normalize_tree(dir: &Path) -> Result<Vec<FileReport>> {
    Ok(find_exports(dir)?.into_iter().map(normalize_one).collect())
}

fn normalize_one(source: PathBuf) -> FileReport {
    let mut report = FileReport {
        outcome: None,
        findings: Vec::new(),
        error: None,
        source,
    };
    let Some(target) = target_for(&report.source) else {
        report.error = Some(format!(
            "{} is not a RoboFlow annotation file",
            report.source.display()
        ));
        return report;
    };
    match normalize_file(&report.source, &target) {
        Ok(outcome) => report.outcome = Some(outcome),
        Err(e) => {
            report.error = Some(format!("{e:#}"));
            return report;
        }
    }
    match CocoFile::read(&target) {
        Ok(coco) => report.findings = validate(&coco, target.parent()),
        Err(e) => report.error = Some(format!("{e:#}")),
    }
    report
}

/// Every RoboFlow annotation file under `dir` (recursively, sorted; hidden folders skipped).
pub fn find_exports(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let ty = e.file_type()?;
            if ty.is_dir() && !name.starts_with('.') {
                stack.push(path);
            } else if ty.is_file() && name.ends_with(ROBOFLOW_FILE) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = r#"{"info": {"year": "2021"}, "licenses": [],
      "categories": [{"id": 0, "name": "cells", "supercategory": "none"},
                     {"id": 1, "name": "Platelets", "supercategory": "cells"},
                     {"id": 2, "name": "RBC", "supercategory": "cells"}],
      "images": [{"id": 0, "file_name": "a.jpg", "height": 4, "width": 4}],
      "annotations": [{"id": 0, "image_id": 0, "category_id": 2, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 0}]}"#;

    #[test]
    fn names_map_both_ways() {
        for (s, t) in [
            (
                "d/_annotations.coco.json",
                "d/annotations_without_background.json",
            ),
            (
                "d/train_annotations.coco.json",
                "d/train_annotations_without_background.json",
            ),
        ] {
            assert_eq!(target_for(Path::new(s)).unwrap(), Path::new(t));
            assert_eq!(source_for(Path::new(t)).unwrap(), Path::new(s));
        }
        assert_eq!(target_for(Path::new("d/x.json")), None);
    }

    #[test]
    fn root_category_is_removed_only_when_it_is_one() {
        let mut coco = CocoFile::from_slice(EXPORT.as_bytes()).unwrap();
        assert_eq!(
            strip_root_category(&mut coco),
            Root::Removed {
                id: 0,
                name: "cells".into(),
                children: 2
            }
        );
        let ids: Vec<u64> = coco.categories.iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(strip_root_category(&mut coco), Root::Absent);

        let used = EXPORT.replace(r#""category_id": 2"#, r#""category_id": 0"#);
        let mut coco = CocoFile::from_slice(used.as_bytes()).unwrap();
        assert!(
            matches!(strip_root_category(&mut coco), Root::Kept(w) if w.contains("1 annotations"))
        );
        assert_eq!(coco.categories.len(), 3);

        let not_parent = EXPORT.replace(
            r#""supercategory": "cells"}]"#,
            r#""supercategory": "blood"}]"#,
        );
        let mut coco = CocoFile::from_slice(not_parent.as_bytes()).unwrap();
        assert!(matches!(strip_root_category(&mut coco), Root::Kept(w) if w.contains("RBC")));
    }

    #[test]
    fn writing_is_idempotent_and_never_clobbers_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join(ROBOFLOW_FILE);
        let dst = dir.path().join(GLIP_FILE);
        std::fs::write(&src, EXPORT).unwrap();
        assert_eq!(normalize_file(&src, &dst).unwrap().action, Action::Written);
        let first = std::fs::read(&dst).unwrap();
        let again = normalize_file(&src, &dst).unwrap();
        assert_eq!(again.action, Action::Unchanged);
        assert!(again
            .describe()
            .contains("removed root category 0 \"cells\""));
        assert_eq!(std::fs::read(&dst).unwrap(), first);

        // The source changes: odinw's own earlier output is replaced.
        std::fs::write(&src, EXPORT.replace("a.jpg", "b.jpg")).unwrap();
        assert_eq!(normalize_file(&src, &dst).unwrap().action, Action::Written);
        assert!(String::from_utf8(std::fs::read(&dst).unwrap())
            .unwrap()
            .contains("b.jpg"));

        // A file someone else wrote is left alone.
        std::fs::write(&dst, "{\"mine\": true}").unwrap();
        let foreign = normalize_file(&src, &dst).unwrap();
        assert_eq!(foreign.action, Action::LeftForeign);
        assert_eq!(std::fs::read(&dst).unwrap(), b"{\"mine\": true}");
    }
}

//! A COCO annotation file, read losslessly: the fields odinw uses are typed, every other field
//! (licenses, info, RoboFlow's extras, per-record keys) is kept in order and written back.
use crate::eval::GroundTruth;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Image {
    pub id: u64,
    #[serde(default)]
    pub file_name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Annotation {
    pub id: u64,
    pub image_id: u64,
    pub category_id: u64,
    /// `[x, y, w, h]`; kept as JSON numbers so integers are written back as integers.
    pub bbox: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Annotation {
    /// The box as floats, if it has four numeric entries.
    pub fn bbox_f64(&self) -> Option<[f64; 4]> {
        if self.bbox.len() != 4 {
            return None;
        }
        let mut b = [0.0; 4];
        for (o, v) in b.iter_mut().zip(&self.bbox) {
            *o = v.as_f64()?;
        }
        Some(b)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Category {
    pub id: u64,
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A whole annotation file. Top-level keys other than the three lists are kept in `extra`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CocoFile {
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    pub images: Vec<Image>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    pub categories: Vec<Category>,
}

impl CocoFile {
    /// Reads and parses `path`; errors name the file and, for bad JSON, the line and column.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid COCO file", path.display()))
    }

    /// Reads `path` once for two views of it: this file and the evaluator's ground truth (the
    /// text is parsed once, into a tree both are built from). Errors name the file.
    pub fn read_with_ground_truth(path: &Path) -> Result<(Self, GroundTruth)> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse_with_ground_truth(&bytes, path)
    }

    /// [`CocoFile::read_with_ground_truth`] of `bytes` read from `path`.
    pub fn parse_with_ground_truth(bytes: &[u8], path: &Path) -> Result<(Self, GroundTruth)> {
        let not_coco = || format!("{} is not a valid COCO file", path.display());
        let doc: Value = serde_json::from_slice(bytes).with_context(not_coco)?;
        let gt = GroundTruth::from_document(&doc, path, bytes)?;
        Ok((Self::deserialize(doc).with_context(not_coco)?, gt))
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Writes the file atomically as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::util::fs::write_json_atomic(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"info": {"year": "2020"}, "licenses": [], "categories": [{"id": 0, "name": "cells", "supercategory": "none"}],
            "images": [{"id": 0, "license": 1, "file_name": "a.jpg", "height": 416, "width": 416, "date_captured": "x"}],
            "annotations": [{"id": 0, "image_id": 0, "category_id": 0, "bbox": [1, 2, 3, 4.5], "area": 13.5, "segmentation": [], "iscrowd": 0}]}"#;
        let coco = CocoFile::from_slice(text.as_bytes()).unwrap();
        assert_eq!(coco.annotations[0].bbox_f64(), Some([1.0, 2.0, 3.0, 4.5]));
        let back: Value = serde_json::to_value(&coco).unwrap();
        let orig: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, orig);
        assert_eq!(back["annotations"][0]["bbox"][0].to_string(), "1");
    }

    #[test]
    fn one_parse_gives_the_file_and_its_ground_truth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        let text = r#"{"categories": [{"id": 1, "name": "cells"}], "images": [{"id": 7, "file_name": "a.jpg"}],
            "annotations": [{"id": 0, "image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4.5], "area": 13.5, "iscrowd": 0}]}"#;
        std::fs::write(&path, text).unwrap();
        let (coco, gt) = CocoFile::read_with_ground_truth(&path).unwrap();
        assert_eq!(coco.images[0].file_name, "a.jpg");
        assert_eq!(gt.num_boxes(), 1);
        assert!(gt.has_annotation_id0());
        assert_eq!(gt.categories()[0].name, "cells");
        // An error the evaluator finds names the file, the line and the record.
        std::fs::write(&path, text.replace("4.5]", "-4.5]")).unwrap();
        let err = match CocoFile::read_with_ground_truth(&path) {
            Err(e) => format!("{e:#}"),
            Ok(_) => panic!("a negative height was accepted"),
        };
        assert!(
            err.contains("a.json: line 2,") && err.contains("annotations[0]: bbox"),
            "{err}"
        );
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let err = CocoFile::from_slice(b"{\"images\": [,]}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}

//! The k-shot file written for one (shot, seed): the source file with only the kept images and
//! all of their annotations, everything else (categories, info, licenses, unknown keys) as is.
//!
//! Images and annotations stay in the source file's order (the file is a filtered copy), not in
//! GLIP's selection order: pycocotools indexes by id and GLIP's `COCODataset` sorts the ids again
//! on load, so order carries no meaning there, and a filtered copy diffs cleanly against the
//! source. A top-level `odinw_fewshot` key (ignored by pycocotools) records how the file was made,
//! so odinw can tell its own files from GLIP's prepared ones and skip those that are up to date.
use crate::data::coco::CocoFile;
use crate::util::rng::Seed;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The top-level key that marks a file as written by `odinw splits`.
pub const MARKER_KEY: &str = "odinw_fewshot";

/// Names the sampling rule; bumped if the rule or the file layout ever changes, so that older
/// odinw files are regenerated rather than reported up to date.
pub const SAMPLER: &str = "glip-cocodataset-shuffle-greedy/1";

/// What the marker records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub shot: u32,
    /// Decimal text, so seeds of any size survive JSON readers.
    pub seed: String,
    /// The source annotation file's name (not its path, which depends on the machine).
    pub source: String,
    pub source_sha256: String,
    pub sampler: String,
}

impl Marker {
    pub fn new(shot: u32, seed: &Seed, source: &str, source_sha256: &str) -> Self {
        Marker {
            shot,
            seed: seed.decimal().to_string(),
            source: source.to_string(),
            source_sha256: source_sha256.to_string(),
            sampler: SAMPLER.to_string(),
        }
    }

    /// The marker of a file, if odinw wrote it (`None` for GLIP's or anyone else's files).
    pub fn of(file: &CocoFile) -> Option<Marker> {
        file.extra
            .get(MARKER_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// `source` reduced to the images in `kept` (any order) and their annotations, with `marker`.
pub fn fewshot_file(source: &CocoFile, kept: &[u64], marker: Option<&Marker>) -> CocoFile {
    let keep: HashSet<u64> = kept.iter().copied().collect();
    let mut out = CocoFile {
        extra: source.extra.clone(),
        images: source
            .images
            .iter()
            .filter(|i| keep.contains(&i.id))
            .cloned()
            .collect(),
        annotations: source
            .annotations
            .iter()
            .filter(|a| keep.contains(&a.image_id))
            .cloned()
            .collect(),
        categories: source.categories.clone(),
    };
    out.extra.remove(MARKER_KEY);
    if let Some(m) = marker {
        out.extra.insert(
            MARKER_KEY.to_string(),
            serde_json::to_value(m).expect("a marker serialises"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_source_order_fields_and_marker() {
        let src: CocoFile = serde_json::from_str(
            r#"{"info": {"v": 1}, "images": [{"id": 9, "file_name": "a", "w": 3}, {"id": 2, "file_name": "b"}, {"id": 5}],
                "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 2, 2], "iscrowd": 1},
                                {"id": 2, "image_id": 9, "category_id": 1, "bbox": [0, 0, 2.5, 2]},
                                {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2]}],
                "categories": [{"id": 1, "name": "x", "supercategory": "s"}]}"#,
        )
        .unwrap();
        let m = Marker::new(3, &Seed::from(30), "src.json", "ab");
        let out = fewshot_file(&src, &[5, 9], Some(&m));
        assert_eq!(
            out.images.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![9, 5]
        );
        assert_eq!(
            out.annotations.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(out.images[0].extra["w"], 3);
        assert_eq!(out.extra["info"]["v"], 1);
        assert_eq!(Marker::of(&out), Some(m));
        assert_eq!(Marker::of(&fewshot_file(&out, &[5], None)), None);
    }
}

//! Compares a few-shot file on disk (GLIP's prepared file, or one odinw wrote earlier) with what
//! the generator makes from the same source, shot and seed: identical, or which image and
//! annotation ids differ.
use crate::data::coco::CocoFile;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// How an existing file relates to the generated one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    pub images_in_file: usize,
    pub images_generated: usize,
    pub images_only_in_file: Vec<u64>,
    pub images_only_generated: Vec<u64>,
    pub annotations_only_in_file: Vec<u64>,
    pub annotations_only_generated: Vec<u64>,
    /// Ids present in both whose records differ (annotation or image content).
    pub records_differing: usize,
    pub categories_differ: bool,
}

impl Comparison {
    /// Same image ids, same annotation ids, same records and categories.
    pub fn identical(&self) -> bool {
        self.images_only_in_file.is_empty()
            && self.images_only_generated.is_empty()
            && self.annotations_only_in_file.is_empty()
            && self.annotations_only_generated.is_empty()
            && self.records_differing == 0
            && !self.categories_differ
    }

    /// Same set of images (whatever the annotations).
    pub fn same_images(&self) -> bool {
        self.images_only_in_file.is_empty() && self.images_only_generated.is_empty()
    }
}

/// Compares `file` with `generated`; the marker key and list order are ignored.
pub fn compare(file: &CocoFile, generated: &CocoFile) -> Comparison {
    let (img_a, img_b) = (image_map(file), image_map(generated));
    let (ann_a, ann_b) = (annotation_map(file), annotation_map(generated));
    let only = |a: &HashMap<u64, Value>, b: &HashMap<u64, Value>| -> Vec<u64> {
        let s: BTreeSet<u64> = a.keys().filter(|k| !b.contains_key(k)).copied().collect();
        s.into_iter().collect()
    };
    let differing = |a: &HashMap<u64, Value>, b: &HashMap<u64, Value>| {
        a.iter()
            .filter(|(k, v)| b.get(k).is_some_and(|w| w != *v))
            .count()
    };
    let cats = |f: &CocoFile| serde_json::to_value(&f.categories).unwrap_or_default();
    Comparison {
        images_in_file: img_a.len(),
        images_generated: img_b.len(),
        images_only_in_file: only(&img_a, &img_b),
        images_only_generated: only(&img_b, &img_a),
        annotations_only_in_file: only(&ann_a, &ann_b),
        annotations_only_generated: only(&ann_b, &ann_a),
        records_differing: differing(&img_a, &img_b) + differing(&ann_a, &ann_b),
        categories_differ: cats(file) != cats(generated),
    }
}

fn image_map(f: &CocoFile) -> HashMap<u64, Value> {
    f.images
        .iter()
        .map(|i| (i.id, serde_json::to_value(i).unwrap_or_default()))
        .collect()
}

fn annotation_map(f: &CocoFile) -> HashMap<u64, Value> {
    f.annotations
        .iter()
        .map(|a| (a.id, serde_json::to_value(a).unwrap_or_default()))
        .collect()
}

/// Up to 10 ids, then a count of the rest.
fn id_list(ids: &[u64]) -> String {
    let mut s: Vec<String> = ids.iter().take(10).map(u64::to_string).collect();
    if ids.len() > 10 {
        s.push(format!("… {} more", ids.len() - 10));
    }
    format!("[{}]", s.join(", "))
}

/// `"; only in the file [..]; only generated [..]"`, leaving out empty sides.
fn only_lists(in_file: &[u64], generated: &[u64]) -> String {
    let mut s = String::new();
    if !in_file.is_empty() {
        s.push_str(&format!("; only in the file {}", id_list(in_file)));
    }
    if !generated.is_empty() {
        s.push_str(&format!("; only generated {}", id_list(generated)));
    }
    s
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.identical() {
            let n = self.images_in_file;
            return write!(f, "identical ({n} image{})", if n == 1 { "" } else { "s" });
        }
        let mut parts = Vec::new();
        if !self.same_images() {
            parts.push(format!(
                "images: {} in the file, {} generated{}",
                self.images_in_file,
                self.images_generated,
                only_lists(&self.images_only_in_file, &self.images_only_generated)
            ));
        }
        if !self.annotations_only_in_file.is_empty() || !self.annotations_only_generated.is_empty()
        {
            parts.push(format!(
                "annotations{}",
                only_lists(
                    &self.annotations_only_in_file,
                    &self.annotations_only_generated
                )
            ));
        }
        if self.records_differing > 0 {
            parts.push(format!(
                "{} records with the same id differ in content",
                self.records_differing
            ));
        }
        if self.categories_differ {
            parts.push("categories differ".into());
        }
        write!(f, "differs: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(images: &[u64], anns: &[(u64, u64)]) -> CocoFile {
        serde_json::from_value(serde_json::json!({
            "images": images.iter().map(|i| serde_json::json!({"id": i})).collect::<Vec<_>>(),
            "annotations": anns.iter().map(|(id, img)| serde_json::json!({"id": id, "image_id": img, "category_id": 1, "bbox": [0,0,5,5]})).collect::<Vec<_>>(),
            "categories": [{"id": 1, "name": "x"}],
        }))
        .unwrap()
    }

    #[test]
    fn reports_identity_and_differences() {
        let a = file(&[1, 2], &[(10, 1), (11, 2)]);
        let b = file(&[2, 1], &[(11, 2), (10, 1)]);
        assert!(compare(&a, &b).identical());
        assert_eq!(compare(&a, &b).to_string(), "identical (2 images)");
        let one = file(&[1], &[(10, 1)]);
        assert_eq!(compare(&one, &one).to_string(), "identical (1 image)");
        let c = file(&[1, 3], &[(10, 1), (12, 3)]);
        let cmp = compare(&a, &c);
        assert!(!cmp.identical());
        assert_eq!(cmp.images_only_in_file, vec![2]);
        assert_eq!(cmp.images_only_generated, vec![3]);
        assert_eq!(cmp.annotations_only_in_file, vec![11]);
        let text = cmp.to_string();
        assert!(
            text.contains(
                "images: 2 in the file, 2 generated; only in the file [2]; only generated [3]"
            ) && text.contains("annotations; only in the file [11]; only generated [12]"),
            "{text}"
        );
    }
}

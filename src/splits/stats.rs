//! Images and boxes per category in a (few-shot) COCO file, for the summary table and for the
//! warning about categories with fewer than k images.
use crate::data::coco::CocoFile;
use std::collections::{BTreeMap, BTreeSet};

/// Per category id: images holding at least one of its boxes, and its boxes (all annotations,
/// crowd and tiny ones included, as GLIP keeps them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub images: usize,
    pub boxes: usize,
    pub per_category: BTreeMap<u64, CategoryCount>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CategoryCount {
    pub images: usize,
    pub boxes: usize,
}

/// Counts `file`: every listed category gets an entry (possibly zero), as does any category id
/// used by an annotation without being listed.
pub fn counts(file: &CocoFile) -> Counts {
    let mut per_category: BTreeMap<u64, CategoryCount> = file
        .categories
        .iter()
        .map(|c| (c.id, CategoryCount::default()))
        .collect();
    let images: BTreeSet<u64> = file.images.iter().map(|i| i.id).collect();
    let mut seen: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut boxes = 0;
    for a in file
        .annotations
        .iter()
        .filter(|a| images.contains(&a.image_id))
    {
        boxes += 1;
        let entry = per_category.entry(a.category_id).or_default();
        entry.boxes += 1;
        if seen.insert((a.category_id, a.image_id)) {
            entry.images += 1;
        }
    }
    Counts {
        images: images.len(),
        boxes,
        per_category,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_images_once_per_category_and_every_box() {
        let f: CocoFile = serde_json::from_value(serde_json::json!({
            "images": [{"id": 1}, {"id": 2}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0,0,5,5]},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0,0,5,5], "iscrowd": 1},
                {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0,0,5,5]},
                {"id": 4, "image_id": 2, "category_id": 7, "bbox": [0,0,5,5]},
                {"id": 5, "image_id": 9, "category_id": 2, "bbox": [0,0,5,5]}
            ],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
        }))
        .unwrap();
        let c = counts(&f);
        assert_eq!((c.images, c.boxes), (2, 4));
        assert_eq!(
            c.per_category[&1],
            CategoryCount {
                images: 2,
                boxes: 3
            }
        );
        assert_eq!(c.per_category[&2], CategoryCount::default());
        assert_eq!(
            c.per_category[&7],
            CategoryCount {
                images: 1,
                boxes: 1
            }
        );
    }
}

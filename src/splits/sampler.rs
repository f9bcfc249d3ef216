//! GLIP's k-shot image sampler (`COCODataset.__init__` in `maskrcnn_benchmark/data/datasets/
//! coco.py`, protocol §4.3), on one COCO file:
//!
//! 1. image ids sorted ascending, keeping those with a valid annotation (`has_valid_annotation`:
//!    at least one annotation, crowd ones included, and not every box with `w <= 1` or `h <= 1`);
//! 2. unless the seed is 0, `random.Random(seed).shuffle(ids)`;
//! 3. a greedy pass: `need = [k] * len(categories)`; an image is kept when one of its distinct
//!    category ids `c` has `need[c-1] > 0`, and then `need[c-1] -= 1` for each of them.
//!
//! `need` is sized by the number of categories but indexed by `category_id - 1`, with Python's
//! indexing rules, which this module mirrors exactly: category id 0 (RoboFlow's background id in
//! a raw export) indexes `need[-1]`, the last counter, and shares it with category id
//! `len(categories)` if that occurs too. A valid image with a category id above the number of
//! categories makes GLIP's code raise `IndexError`; here it is an error naming the file, the
//! image and the id. The keypoint rule of `has_valid_annotation` is always true under GLIP's
//! default `MIN_KPS_PER_IMS = 0`, so it is not modelled.
use crate::data::coco::CocoFile;
use crate::util::rng::{PyRandom, Seed};
use anyhow::{bail, Result};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};

/// A COCO file prepared for sampling: the valid images in ascending id order, each with the
/// counter slots of its distinct category ids.
#[derive(Clone, Debug)]
pub struct SamplingIndex {
    /// Valid image ids, ascending.
    valid_ids: Vec<u64>,
    /// For each valid image (same order), one `need` slot per distinct category id.
    slots: Vec<Vec<usize>>,
    /// `len(coco.cats)`: the number of distinct category ids in `categories`.
    num_counters: usize,
    /// Images in the file (distinct ids).
    num_images: usize,
}

impl SamplingIndex {
    /// Indexes `coco`; `name` (the file) is used in error messages. Fails on duplicate image or
    /// annotation ids, non-numeric box sizes, and category ids GLIP's counter cannot index.
    pub fn new(coco: &CocoFile, name: &str) -> Result<Self> {
        Self::build(coco, name, true)
    }

    /// As [`SamplingIndex::new`] but keeping every image, as GLIP's `COCODataset` does when
    /// `remove_images_without_annotations` is off (its non-training splits). Only `--check` uses
    /// it, to say whether a prepared file was made that way.
    pub fn without_validity_filter(coco: &CocoFile, name: &str) -> Result<Self> {
        Self::build(coco, name, false)
    }

    fn build(coco: &CocoFile, name: &str, validity_filter: bool) -> Result<Self> {
        let mut seen = HashSet::with_capacity(coco.images.len());
        for img in &coco.images {
            if !seen.insert(img.id) {
                bail!("{name}: image id {} occurs more than once", img.id);
            }
        }
        let mut ann_ids = HashSet::with_capacity(coco.annotations.len());
        for ann in &coco.annotations {
            if !ann_ids.insert(ann.id) {
                bail!("{name}: annotation id {} occurs more than once", ann.id);
            }
        }
        let num_counters = coco
            .categories
            .iter()
            .map(|c| c.id)
            .collect::<HashSet<_>>()
            .len();

        // Annotations per image, in file order (pycocotools' imgToAnns).
        let mut per_image: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, ann) in coco.annotations.iter().enumerate() {
            per_image.entry(ann.image_id).or_default().push(i);
        }
        let mut sorted: Vec<u64> = seen.into_iter().collect();
        sorted.sort_unstable();

        let mut valid_ids = Vec::new();
        let mut slots = Vec::new();
        for id in &sorted {
            let anns = per_image.get(id).map(Vec::as_slice).unwrap_or(&[]);
            if validity_filter && !has_valid_annotation(coco, anns, name)? {
                continue;
            }
            let cats: BTreeSet<u64> = anns
                .iter()
                .map(|&i| coco.annotations[i].category_id)
                .collect();
            let mut image_slots = Vec::with_capacity(cats.len());
            for c in cats {
                match counter_slot(c, num_counters) {
                    Some(s) => image_slots.push(s),
                    None => bail!(
                        "{name}: image {id} has an annotation with category_id {c}, but the file \
                         has {num_counters} categories; GLIP's sampler counts category c in slot \
                         c-1 of a list of that length and fails (IndexError) on this file"
                    ),
                }
            }
            valid_ids.push(*id);
            slots.push(image_slots);
        }
        Ok(SamplingIndex {
            valid_ids,
            slots,
            num_counters,
            num_images: sorted.len(),
        })
    }

    /// Valid image ids (every image id without the filter), ascending: GLIP's starting order.
    pub fn valid_ids(&self) -> &[u64] {
        &self.valid_ids
    }

    /// Number of images in the file.
    pub fn num_images(&self) -> usize {
        self.num_images
    }

    /// The images GLIP keeps for `shot` and `seed`, in the order it keeps them (its dataset
    /// order). `shot` is at least 1: GLIP reads 0 as "no sampling".
    pub fn select(&self, shot: u32, seed: &Seed) -> Vec<u64> {
        assert!(shot > 0, "a k-shot split needs k >= 1");
        let mut order: Vec<usize> = (0..self.valid_ids.len()).collect();
        if !seed.is_zero() {
            PyRandom::new(seed).shuffle(&mut order);
        }
        let mut need = vec![i64::from(shot); self.num_counters];
        let mut kept = Vec::new();
        for i in order {
            let slots = &self.slots[i];
            if slots.iter().any(|&s| need[s] > 0) {
                kept.push(self.valid_ids[i]);
                for &s in slots {
                    need[s] -= 1;
                }
            }
        }
        kept
    }
}

/// The `need` slot Python's `need[c - 1]` reaches in a list of `len` counters, or `None` where
/// Python raises `IndexError`. Only `c == 0` gives a negative index (-1, the last slot).
pub fn counter_slot(category_id: u64, len: usize) -> Option<usize> {
    match category_id {
        0 => len.checked_sub(1),
        c if c <= len as u64 => Some(c as usize - 1),
        _ => None,
    }
}

/// GLIP's `has_valid_annotation` on one image's annotations (indices into `coco.annotations`):
/// false without annotations or when every box has some entry of `bbox[2:]` that is `<= 1`.
fn has_valid_annotation(coco: &CocoFile, anns: &[usize], name: &str) -> Result<bool> {
    if anns.is_empty() {
        return Ok(false);
    }
    for &i in anns {
        let ann = &coco.annotations[i];
        let mut tiny = false;
        for v in ann.bbox.iter().skip(2) {
            match v {
                Value::Number(n) => tiny |= n.as_f64().is_some_and(|x| x <= 1.0),
                other => bail!(
                    "{name}: annotation {} has a non-numeric bbox entry {other}",
                    ann.id
                ),
            }
        }
        if !tiny {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(annotation id, category id, w, h)`.
    type Ann = (u64, u64, f64, f64);

    /// A file from `(image id, annotations)` with `cats` categories 1..=cats.
    fn coco(images: &[(u64, &[Ann])], cats: u64) -> CocoFile {
        let images_json: Vec<Value> = images
            .iter()
            .map(|(id, _)| serde_json::json!({"id": id, "file_name": format!("{id}.jpg")}))
            .collect();
        let anns: Vec<Value> = images
            .iter()
            .flat_map(|(img, anns)| {
                anns.iter().map(move |(id, c, w, h)| {
                    serde_json::json!({"id": id, "image_id": img, "category_id": c, "bbox": [0, 0, w, h]})
                })
            })
            .collect();
        let cats: Vec<Value> = (1..=cats)
            .map(|c| serde_json::json!({"id": c, "name": format!("c{c}")}))
            .collect();
        serde_json::from_value(
            serde_json::json!({"images": images_json, "annotations": anns, "categories": cats}),
        )
        .unwrap()
    }

    #[test]
    fn validity_follows_has_valid_annotation() {
        let f = coco(
            &[
                (5, &[(1, 1, 10.0, 10.0)]),
                (2, &[]),                                     // no annotations
                (3, &[(2, 1, 1.0, 50.0), (3, 2, 50.0, 0.5)]), // all tiny
                (4, &[(4, 1, 1.0, 50.0), (5, 2, 1.5, 1.5)]),  // one real box
            ],
            2,
        );
        let idx = SamplingIndex::new(&f, "f.json").unwrap();
        assert_eq!(idx.valid_ids(), &[4, 5]);
        assert_eq!(idx.num_images(), 4);
        let all = SamplingIndex::without_validity_filter(&f, "f.json").unwrap();
        assert_eq!(all.valid_ids(), &[2, 3, 4, 5]);
        // Image 2 has no category, so it is never kept; image 3 (tiny boxes only) can be.
        assert_eq!(all.select(1, &Seed::from(0)), vec![3]);
    }

    #[test]
    fn seed_zero_is_the_greedy_pass_over_sorted_ids() {
        // Category 1 is in images 1, 2, 3; category 2 in 3 and 4.
        let f = coco(
            &[
                (4, &[(6, 2, 9.0, 9.0)]),
                (1, &[(1, 1, 9.0, 9.0)]),
                (2, &[(2, 1, 9.0, 9.0), (3, 1, 9.0, 9.0)]),
                (3, &[(4, 1, 9.0, 9.0), (5, 2, 9.0, 9.0)]),
            ],
            2,
        );
        let idx = SamplingIndex::new(&f, "f.json").unwrap();
        let zero = Seed::from(0);
        assert_eq!(idx.select(1, &zero), vec![1, 3]);
        assert_eq!(idx.select(2, &zero), vec![1, 2, 3, 4]);
    }

    #[test]
    fn category_zero_uses_the_last_counter_like_python() {
        assert_eq!(counter_slot(0, 3), Some(2));
        assert_eq!(counter_slot(3, 3), Some(2));
        assert_eq!(counter_slot(4, 3), None);
        assert_eq!(counter_slot(0, 0), None);
        // Categories 1..=2; image 1 has id 0 (slot 1), image 2 has id 2 (slot 1 too): with k=1
        // the second is not needed any more.
        let f = coco(&[(1, &[(1, 0, 9.0, 9.0)]), (2, &[(2, 2, 9.0, 9.0)])], 2);
        let idx = SamplingIndex::new(&f, "f.json").unwrap();
        assert_eq!(idx.select(1, &Seed::from(0)), vec![1]);
    }

    #[test]
    fn out_of_range_category_fails_only_on_valid_images() {
        let f = coco(&[(1, &[(1, 3, 9.0, 9.0)])], 2);
        let err = SamplingIndex::new(&f, "f.json").unwrap_err().to_string();
        assert!(
            err.contains("f.json") && err.contains("category_id 3") && err.contains("image 1"),
            "{err}"
        );
        let tiny = coco(&[(1, &[(1, 3, 0.5, 9.0)])], 2);
        assert!(SamplingIndex::new(&tiny, "f.json").is_ok());
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let f = coco(&[(1, &[(1, 1, 9.0, 9.0)]), (1, &[])], 1);
        let err = SamplingIndex::new(&f, "f.json").unwrap_err().to_string();
        assert!(err.contains("image id 1 occurs more than once"), "{err}");
        let f = coco(&[(1, &[(7, 1, 9.0, 9.0)]), (2, &[(7, 1, 9.0, 9.0)])], 1);
        let err = SamplingIndex::new(&f, "f.json").unwrap_err().to_string();
        assert!(err.contains("annotation id 7"), "{err}");
    }
}

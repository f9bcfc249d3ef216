//! Generated COCO files for the few-shot tests: the cases real exports rarely have (images
//! without annotations, all-tiny boxes, crowd boxes, ids out of order or above 2^32, rare
//! categories, RoboFlow's background id 0), from a small xorshift generator so the files are the
//! same on every run and independent of the MT19937 under test.
#![allow(dead_code)]
// xorshift64*: deterministic, and nothing like MT19937.
use super::rng::XorShift;
use serde_json::{json, Value};

/// Options for [`mixed`].
pub struct Mixed {
    pub images: usize,
    /// Category ids as listed (in this order) in `categories`.
    pub category_ids: Vec<u64>,
    /// Category ids annotations may use (may include ids not listed, or 0).
    pub used_ids: Vec<u64>,
    /// A category id placed in exactly 2 images (fewer than most k).
    pub rare: Option<u64>,
    pub seed: u64,
}

/// A file with every awkward case mixed in: ~10% images without annotations, ~10% with only
/// tiny boxes (w <= 1 or h <= 1), crowd boxes, tiny boxes beside real ones, float and integer
/// boxes, image ids in shuffled order (some above 2^32) and shuffled annotation ids.
pub fn mixed(o: &Mixed) -> Value {
    let mut g = XorShift::new(o.seed);
    let mut image_ids: Vec<u64> = (0..o.images as u64)
        .map(|i| {
            if i % 17 == 5 {
                (1 << 32) + i * 3
            } else {
                i * 7 + 3
            }
        })
        .collect();
    g.shuffle(&mut image_ids);
    let mut anns: Vec<(u64, u64, Value, u8)> = Vec::new(); // image, category, bbox, iscrowd
    let mut rare_left = 2;
    for &img in &image_ids {
        let kind = g.below(10);
        if kind == 0 {
            continue; // no annotations
        }
        let n = 1 + g.below(5);
        for k in 0..n {
            let mut cat = o.used_ids[g.below(o.used_ids.len() as u64) as usize];
            if Some(cat) == o.rare {
                cat = o.used_ids[0];
            }
            if k == 0 && rare_left > 0 && kind >= 2 && g.below(50) == 0 {
                if let Some(r) = o.rare {
                    cat = r;
                    rare_left -= 1;
                }
            }
            let tiny = kind == 1 || g.below(8) == 0;
            let bbox = if tiny {
                match g.below(3) {
                    0 => json!([g.below(100), g.below(100), 1, 20 + g.below(50)]),
                    1 => json!([g.below(100), g.below(100), 30.5, 0.75]),
                    _ => json!([1.5, 2.5, 0, 0]),
                }
            } else if g.below(2) == 0 {
                json!([
                    g.below(300),
                    g.below(300),
                    2 + g.below(200),
                    2 + g.below(200)
                ])
            } else {
                json!([
                    g.below(3000) as f64 / 10.0,
                    g.below(3000) as f64 / 10.0,
                    1.25 + g.below(2000) as f64 / 10.0,
                    1.5 + g.below(2000) as f64 / 10.0
                ])
            };
            let crowd = u8::from(g.below(20) == 0);
            anns.push((img, cat, bbox, crowd));
        }
    }
    let mut ann_ids: Vec<u64> = (0..anns.len() as u64).map(|i| i * 13 + 1).collect();
    g.shuffle(&mut ann_ids);
    let images: Vec<Value> = image_ids
        .iter()
        .map(|id| json!({"id": id, "license": 1, "file_name": format!("img_{id}.jpg"), "height": 480, "width": 640}))
        .collect();
    let annotations: Vec<Value> = anns
        .into_iter()
        .zip(ann_ids)
        .map(|((img, cat, bbox, crowd), id)| {
            json!({"id": id, "image_id": img, "category_id": cat, "bbox": bbox, "area": 1, "segmentation": [], "iscrowd": crowd})
        })
        .collect();
    let categories: Vec<Value> = o
        .category_ids
        .iter()
        .map(|c| json!({"id": c, "name": format!("class {c}"), "supercategory": "things"}))
        .collect();
    json!({
        "info": {"description": "generated for odinw tests"},
        "licenses": [{"id": 1, "name": "none"}],
        "categories": categories,
        "images": images,
        "annotations": annotations,
    })
}

/// RoboFlow's raw export minus category 0, as GLIP's `annotations_without_background.json`.
pub fn without_background(mut coco: Value) -> Value {
    coco["categories"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["id"] != 0);
    coco
}

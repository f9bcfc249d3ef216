//! A split loaded for training: every image decoded once (in parallel) with its boxes (COCO
//! xywh) and class indices (0-based, in ascending category id order, as the caption lists them).
use crate::data::coco::CocoFile;
use crate::preprocess::{self, RgbImage};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Sample {
    pub id: u64,
    pub file: PathBuf,
    pub image: RgbImage,
    pub boxes: Vec<[f64; 4]>,
    pub classes: Vec<usize>,
}

/// Loads `ann` with images from `img_dir`; `category_ids` are the task's ids in caption order.
/// Crowd boxes and boxes with a non-positive side are left out (GLIP drops degenerate boxes).
pub fn load(ann: &Path, img_dir: &Path, category_ids: &[u64]) -> Result<Vec<Sample>> {
    from_coco(&CocoFile::read(ann)?, ann, img_dir, category_ids)
}

/// [`load`], with the evaluator's ground truth of the same file, from one parse of it.
pub fn load_with_truth(
    ann: &Path,
    img_dir: &Path,
    category_ids: &[u64],
) -> Result<(Vec<Sample>, crate::eval::GroundTruth)> {
    let (coco, gt) = CocoFile::read_with_ground_truth(ann)?;
    Ok((from_coco(&coco, ann, img_dir, category_ids)?, gt))
}

fn from_coco(
    coco: &CocoFile,
    ann: &Path,
    img_dir: &Path,
    category_ids: &[u64],
) -> Result<Vec<Sample>> {
    let mut images: Vec<_> = coco.images.iter().collect();
    images.sort_by_key(|im| im.id);
    let mut samples: Vec<Sample> = images
        .par_iter()
        .map(|im| {
            let file = img_dir.join(&im.file_name);
            let image = preprocess::decode_file(&file).with_context(|| {
                format!("{}: image {} ({})", ann.display(), im.id, im.file_name)
            })?;
            Ok(Sample {
                id: im.id,
                file,
                image,
                boxes: Vec::new(),
                classes: Vec::new(),
            })
        })
        .collect::<Result<_>>()?;
    let by_id: std::collections::HashMap<u64, usize> =
        samples.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    for a in &coco.annotations {
        if a.extra.get("iscrowd").and_then(|v| v.as_u64()).unwrap_or(0) != 0 {
            continue;
        }
        let Some(&i) = by_id.get(&a.image_id) else {
            bail!(
                "{}: annotation {} refers to image {}, which the file does not list",
                ann.display(),
                a.id,
                a.image_id
            );
        };
        let Some(class) = category_ids.iter().position(|&c| c == a.category_id) else {
            bail!(
                "{}: annotation {} has category {}, not one of the task's {:?}",
                ann.display(),
                a.id,
                a.category_id,
                category_ids
            );
        };
        let Some(b) = a.bbox_f64() else {
            bail!("{}: annotation {} has no valid bbox", ann.display(), a.id);
        };
        if b[2] <= 0.0 || b[3] <= 0.0 {
            continue;
        }
        samples[i].boxes.push(b);
        samples[i].classes.push(class);
    }
    Ok(samples)
}

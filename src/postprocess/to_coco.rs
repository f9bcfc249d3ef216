//! Detections to COCO results as GLIP writes them (`prepare_for_coco_detection`): boxes scaled
//! from the resized image back to the original size (one f32 factor when both ratios agree,
//! else per axis), then `[x, y, w, h]` with "+1" widths; labels become json category ids.
use super::Detection;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// One COCO detection result (an entry of a results file such as `predictions.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoDetection {
    pub image_id: u64,
    pub category_id: u64,
    /// `[x, y, w, h]` in pixels.
    pub bbox: [f64; 4],
    pub score: f64,
}

impl CocoDetection {
    /// Finite score and box, non-negative width and height.
    pub fn validate(&self) -> Result<()> {
        if !self.score.is_finite() {
            bail!("score is {}", self.score);
        }
        if self.bbox.iter().any(|v| !v.is_finite()) {
            bail!("bbox {:?} has a non-finite number", self.bbox);
        }
        if self.bbox[2] < 0.0 || self.bbox[3] < 0.0 {
            bail!("bbox {:?} has a negative width or height", self.bbox);
        }
        Ok(())
    }
}

/// `dets` of an image resized to `resized` `(w, h)` whose json size is `original` `(w, h)`.
/// `category_ids[label − 1]` is the json id of each label.
pub fn to_coco(
    dets: &[Detection],
    resized: (u32, u32),
    original: (u32, u32),
    image_id: u64,
    category_ids: &[u64],
) -> Result<Vec<CocoDetection>> {
    let rw = original.0 as f64 / resized.0 as f64;
    let rh = original.1 as f64 / resized.1 as f64;
    let (rw, rh) = if rw == rh {
        (rw as f32, rw as f32)
    } else {
        (rw as f32, rh as f32)
    };
    let mut out = Vec::with_capacity(dets.len());
    for d in dets {
        let Some(&category_id) = category_ids.get(d.label.wrapping_sub(1)) else {
            bail!(
                "detection label {} has no category ({} categories)",
                d.label,
                category_ids.len()
            );
        };
        let [x1, y1, x2, y2] = [
            d.bbox[0] * rw,
            d.bbox[1] * rh,
            d.bbox[2] * rw,
            d.bbox[3] * rh,
        ];
        out.push(CocoDetection {
            image_id,
            category_id,
            bbox: [
                x1 as f64,
                y1 as f64,
                (x2 - x1 + 1.0) as f64,
                (y2 - y1 + 1.0) as f64,
            ],
            score: d.score as f64,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescales_and_adds_one() {
        let d = Detection {
            bbox: [10.0, 20.0, 29.0, 59.0],
            score: 0.5,
            label: 2,
        };
        let c = to_coco(&[d], (800, 600), (400, 300), 7, &[11, 12]).unwrap();
        assert_eq!(c[0].bbox, [5.0, 10.0, 10.5, 20.5]);
        assert_eq!((c[0].image_id, c[0].category_id, c[0].score), (7, 12, 0.5));
        let c = to_coco(&[d], (800, 600), (400, 600), 7, &[11, 12]).unwrap();
        assert_eq!(c[0].bbox, [5.0, 20.0, 10.5, 40.0]);
        assert!(to_coco(&[d], (8, 6), (4, 3), 7, &[11]).is_err());
    }
}

//! GLIP's ATSS assignment and training targets for one image (protocol §9,
//! `rpn/loss.py: ATSSLossComputation.prepare_targets`), in f32 like torch.
//!
//! For each ground-truth box: per level, the 9 anchors whose centres are nearest to the box
//! centre are candidates (ties resolved as torch's CPU `topk`, see [`super::torch_topk`]); the
//! IoU threshold is mean + unbiased std of the candidates' IoUs ("+1" areas); a candidate is
//! positive if its IoU reaches the threshold and its centre lies inside the box by more than
//! 0.01. An anchor positive for several boxes takes the one with the highest IoU (the first on
//! ties, like `max(dim=1)`). Targets: `encode(gt, anchor)` (weights 10,10,5,5, "+1"), the
//! centerness `sqrt(min(l,r)/max(l,r) · min(t,b)/max(t,b))` of the decoded target box around the
//! anchor centre, and the matched box's binary token row; negatives are all zeros.
//!
//! The mean and the std of the candidate IoUs are computed in f64 and rounded to f32 (torch's
//! CPU `std` does exactly this; its `mean` sums in f32 and may differ in the last bit, which can
//! only matter for an IoU within one ulp of the threshold).
use super::torch_topk;
use crate::model::spec::Level;
use crate::postprocess::anchors::anchor;
use crate::postprocess::decode::{decode, encode};
use anyhow::{bail, Result};

/// `MODEL.ATSS.TOPK`: candidates per level and box (one anchor per location).
pub const TOPK: usize = 9;
/// A positive anchor's centre must be this far inside its box (`> 0.01`).
pub const INSIDE_MARGIN: f32 = 0.01;

/// The step graph's targets for one image, `Q` anchors in the head's order, `T` tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTargets {
    /// `[Q]`: 1 for positive anchors, 0 otherwise.
    pub positive: Vec<f32>,
    /// `[Q·4]`: encoded regression targets (0 for negatives).
    pub reg: Vec<f32>,
    /// `[Q]`: centerness targets (0 for negatives).
    pub centerness: Vec<f32>,
    /// `[Q·T]`: the matched box's token row (0 for negatives).
    pub tokens: Vec<f32>,
    pub num_positive: usize,
    /// `[Q]`: the matched box's index into `gt_xyxy`, −1 for negatives.
    pub gt_index: Vec<i32>,
}

impl ImageTargets {
    /// All-negative targets for `q` anchors and `t` tokens.
    pub fn negatives(q: usize, t: usize) -> Self {
        ImageTargets {
            positive: vec![0.0; q],
            reg: vec![0.0; 4 * q],
            centerness: vec![0.0; q],
            tokens: vec![0.0; q * t],
            num_positive: 0,
            gt_index: vec![-1; q],
        }
    }
}

/// The anchors of a model's grid in the head's order (levels concatenated, y-major within a
/// level) and the number per level, from `model.json`'s `anchors.levels`.
pub fn anchor_grid(levels: &[Level]) -> (Vec<[f32; 4]>, Vec<usize>) {
    let mut anchors = Vec::with_capacity(levels.iter().map(|l| l.height * l.width).sum());
    let mut counts = Vec::with_capacity(levels.len());
    for l in levels {
        for y in 0..l.height {
            for x in 0..l.width {
                anchors.push(anchor(l.stride, l.size, x, y));
            }
        }
        counts.push(l.height * l.width);
    }
    (anchors, counts)
}

/// GLIP's `clip_to_image(remove_empty=True)`: coordinates clamped to `[0, W−1]` × `[0, H−1]`,
/// then boxes without `x2 > x1` and `y2 > y1` dropped (NaN coordinates drop the box). Returns
/// the kept boxes and their indices into `boxes`.
pub fn prepare_gt(boxes: &[[f32; 4]], image_w: u32, image_h: u32) -> (Vec<[f32; 4]>, Vec<usize>) {
    let (xm, ym) = (image_w as f32 - 1.0, image_h as f32 - 1.0);
    let mut kept = Vec::new();
    let mut index = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        // f32::clamp keeps NaN (as torch's clamp does); the comparisons below then drop it.
        let c = [
            b[0].clamp(0.0, xm.max(0.0)),
            b[1].clamp(0.0, ym.max(0.0)),
            b[2].clamp(0.0, xm.max(0.0)),
            b[3].clamp(0.0, ym.max(0.0)),
        ];
        if c[3] > c[1] && c[2] > c[0] {
            kept.push(c);
            index.push(i);
        }
    }
    (kept, index)
}

/// [`try_assign`] for inputs the caller has already made consistent; panics with the reason
/// otherwise (lengths that disagree are a bug in the caller, not bad data).
pub fn assign(
    anchors: &[[f32; 4]],
    level_counts: &[usize],
    gt_xyxy: &[[f32; 4]],
    gt_tokens: &[Vec<f32>],
    max_text_len: usize,
) -> ImageTargets {
    match try_assign(anchors, level_counts, gt_xyxy, gt_tokens, max_text_len) {
        Ok(t) => t,
        Err(e) => panic!("ATSS assignment: {e:#}"),
    }
}

/// ATSS assignment and targets for one image. `anchors`: xyxy in the head's order;
/// `level_counts`: anchors per level (summing to `anchors.len()`); `gt_xyxy`: boxes in the "+1"
/// convention in network-input pixels, already through [`prepare_gt`] (finite, `x2 ≥ x1`,
/// `y2 ≥ y1`); `gt_tokens`: per box, its binary positive-map row of `max_text_len` values.
pub fn try_assign(
    anchors: &[[f32; 4]],
    level_counts: &[usize],
    gt_xyxy: &[[f32; 4]],
    gt_tokens: &[Vec<f32>],
    max_text_len: usize,
) -> Result<ImageTargets> {
    check_inputs(anchors, level_counts, gt_xyxy, gt_tokens, max_text_len)?;
    let q = anchors.len();
    let mut out = ImageTargets::negatives(q, max_text_len);
    let centres: Vec<[f32; 2]> = anchors.iter().map(|a| centre(*a)).collect();
    // Per anchor: the best IoU among the boxes it is positive for, and that box.
    let mut best_iou = vec![f32::NEG_INFINITY; q];
    for (g, gt) in gt_xyxy.iter().enumerate() {
        let gc = centre(*gt);
        let candidates = nearest_per_level(&centres, level_counts, gc);
        let ious: Vec<f32> = candidates.iter().map(|&i| iou(anchors[i], *gt)).collect();
        let threshold = mean_plus_std(&ious);
        for (&i, &v) in candidates.iter().zip(&ious) {
            if v >= threshold && inside(centres[i], *gt) && v > best_iou[i] {
                best_iou[i] = v;
                out.gt_index[i] = g as i32;
            }
        }
    }
    let t = max_text_len;
    for (i, anchor) in anchors.iter().enumerate() {
        let Ok(g) = usize::try_from(out.gt_index[i]) else {
            continue;
        };
        let deltas = encode(gt_xyxy[g], *anchor);
        out.positive[i] = 1.0;
        out.reg[4 * i..4 * i + 4].copy_from_slice(&deltas);
        out.centerness[i] = centerness(deltas, *anchor);
        out.tokens[i * t..(i + 1) * t].copy_from_slice(&gt_tokens[g]);
        out.num_positive += 1;
    }
    Ok(out)
}

fn check_inputs(
    anchors: &[[f32; 4]],
    level_counts: &[usize],
    gt_xyxy: &[[f32; 4]],
    gt_tokens: &[Vec<f32>],
    max_text_len: usize,
) -> Result<()> {
    let total: usize = level_counts.iter().sum();
    if total != anchors.len() {
        bail!(
            "the level counts {level_counts:?} add up to {total} anchors, but there are {}",
            anchors.len()
        );
    }
    if gt_tokens.len() != gt_xyxy.len() {
        bail!(
            "{} ground-truth boxes but {} token rows",
            gt_xyxy.len(),
            gt_tokens.len()
        );
    }
    for (g, (b, row)) in gt_xyxy.iter().zip(gt_tokens).enumerate() {
        if !b.iter().all(|v| v.is_finite()) || b[2] < b[0] || b[3] < b[1] {
            bail!("ground-truth box {g} {b:?} is not a finite box with x2 >= x1 and y2 >= y1");
        }
        if row.len() != max_text_len {
            bail!(
                "ground-truth box {g} has a token row of {} values; expected max_text_len = {max_text_len}",
                row.len()
            );
        }
    }
    Ok(())
}

/// `((x1 + x2) / 2, (y1 + y2) / 2)`.
#[inline]
fn centre(b: [f32; 4]) -> [f32; 2] {
    [(b[2] + b[0]) / 2.0, (b[3] + b[1]) / 2.0]
}

/// `boxlist_iou` with "+1" areas, f32 in torch's order.
#[inline]
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let area_a = (a[2] - a[0] + 1.0) * (a[3] - a[1] + 1.0);
    let area_b = (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
    let inter = w * h;
    inter / (area_a + area_b - inter)
}

/// The candidates of one box: per level, the `TOPK` anchors nearest to `gc` (as torch's
/// `topk(largest=False)` picks them), as indices into the whole grid.
fn nearest_per_level(centres: &[[f32; 2]], level_counts: &[usize], gc: [f32; 2]) -> Vec<usize> {
    let mut out = Vec::with_capacity(TOPK * level_counts.len());
    let mut start = 0;
    let mut dist = Vec::new();
    for &count in level_counts {
        dist.clear();
        dist.extend(centres[start..start + count].iter().map(|c| {
            let (dx, dy) = (c[0] - gc[0], c[1] - gc[1]);
            (dx * dx + dy * dy).sqrt()
        }));
        out.extend(
            torch_topk::smallest_k(&dist, TOPK)
                .into_iter()
                .map(|i| i + start),
        );
        start += count;
    }
    out
}

/// `mean + std` (unbiased) of `v`, each computed in f64 and rounded to f32, added in f32.
/// NaN for fewer than two values, as torch's `std`.
fn mean_plus_std(v: &[f32]) -> f32 {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let ss: f64 = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum();
    let std = (ss / (n - 1.0)).sqrt();
    mean as f32 + std as f32
}

/// The anchor centre lies inside the box by more than [`INSIDE_MARGIN`].
#[inline]
fn inside(c: [f32; 2], b: [f32; 4]) -> bool {
    let m = (c[0] - b[0])
        .min(c[1] - b[1])
        .min(b[2] - c[0])
        .min(b[3] - c[1]);
    m > INSIDE_MARGIN
}

/// The centerness target of a positive anchor: the box decoded from its regression target,
/// measured from the anchor centre.
pub fn centerness(deltas: [f32; 4], anchor: [f32; 4]) -> f32 {
    let g = decode(deltas, anchor);
    let c = centre(anchor);
    let (l, r) = (c[0] - g[0], g[2] - c[0]);
    let (t, b) = (c[1] - g[1], g[3] - c[1]);
    ((l.min(r) / l.max(r)) * (t.min(b) / t.max(b))).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_192() -> (Vec<[f32; 4]>, Vec<usize>) {
        let levels: Vec<Level> = [(8, 24), (16, 12), (32, 6), (64, 3), (128, 2)]
            .iter()
            .map(|&(s, n)| Level {
                name: String::new(),
                stride: s,
                size: 8 * s,
                height: n,
                width: n,
                offset: 0,
                count: n * n,
            })
            .collect();
        anchor_grid(&levels)
    }

    #[test]
    fn the_demo_grid_has_769_anchors() {
        let (a, c) = grid_192();
        assert_eq!(a.len(), 769);
        assert_eq!(c, [576, 144, 36, 9, 4]);
        assert_eq!(a[1], [-20.0, -28.0, 43.0, 35.0]);
        assert_eq!(a[576], [-56.0, -56.0, 71.0, 71.0]);
    }

    #[test]
    fn a_box_on_an_anchor_gets_that_anchor_with_its_tokens() {
        let (a, c) = grid_192();
        // The P3 anchor at (10, 10) has centre (83.5, 83.5); a 40x40 box centred there.
        let gt = [63.5 + 0.0, 63.5, 103.5, 103.5];
        let t = assign(&a, &c, &[gt], &[vec![0.0, 1.0, 1.0, 0.0]], 4);
        let i = 10 * 24 + 10;
        assert_eq!(t.gt_index[i], 0);
        assert_eq!(t.positive[i], 1.0);
        assert_eq!(&t.tokens[4 * i..4 * i + 4], &[0.0, 1.0, 1.0, 0.0]);
        assert_eq!(&t.reg[4 * i..4 * i + 2], &[0.0, 0.0]);
        assert!((t.centerness[i] - 1.0).abs() < 1e-6);
        assert_eq!(
            t.num_positive,
            t.positive.iter().filter(|&&p| p == 1.0).count()
        );
        for j in 0..a.len() {
            if t.gt_index[j] < 0 {
                assert!(t.reg[4 * j..4 * j + 4].iter().all(|&v| v == 0.0));
                assert!(t.tokens[4 * j..4 * j + 4].iter().all(|&v| v == 0.0));
            }
        }
    }

    #[test]
    fn no_boxes_means_all_negative_and_bad_input_is_an_error() {
        let (a, c) = grid_192();
        let t = assign(&a, &c, &[], &[], 8);
        assert_eq!(t, ImageTargets::negatives(769, 8));
        assert!(try_assign(&a, &[1, 2], &[], &[], 8).is_err());
        assert!(try_assign(&a, &c, &[[0.0, 0.0, 5.0, 5.0]], &[], 8).is_err());
        assert!(try_assign(&a, &c, &[[0.0, 0.0, 5.0, 5.0]], &[vec![0.0; 7]], 8).is_err());
        let bad = [[0.0, 0.0, f32::NAN, 5.0]];
        assert!(try_assign(&a, &c, &bad, &[vec![0.0; 8]], 8).is_err());
    }

    #[test]
    fn prepare_gt_clips_and_drops_empty_boxes() {
        let boxes = [
            [-5.0, 2.0, 10.0, 300.0],
            [50.0, 50.0, 50.0, 60.0],
            [190.0, 10.0, 250.0, 20.0],
            [f32::NAN, 0.0, 5.0, 5.0],
            [191.5, 0.0, 400.0, 5.0],
        ];
        let (kept, idx) = prepare_gt(&boxes, 192, 100);
        assert_eq!(idx, [0, 2]);
        assert_eq!(kept, [[0.0, 2.0, 10.0, 99.0], [190.0, 10.0, 191.0, 20.0]]);
    }

    #[test]
    fn iou_uses_plus_one_areas() {
        assert_eq!(iou([0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 9.0]), 1.0);
        assert_eq!(iou([0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 4.0, 9.0]), 0.5);
        assert_eq!(iou([0.0, 0.0, 9.0, 9.0], [10.0, 0.0, 19.0, 9.0]), 0.0);
    }
}

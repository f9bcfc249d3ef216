//! Where a task's predictions go wrong, image by image, for the report's gallery: predictions
//! matched greedily to ground truth of the same class at IoU ≥ 0.5 (highest score first, each to
//! the unmatched box it overlaps most, as COCO matches), a score threshold (the one with the best
//! F1 over the task, so a model's calibration does not decide what is shown), and per image the
//! misses (ground truth without a match above the threshold) and false positives (predictions
//! above it without a match). The gallery shows the images with the most errors and one good one.
use crate::postprocess::CocoDetection as Detection;
use std::collections::BTreeMap;

/// IoU at which a prediction counts as finding a ground-truth box.
pub const MATCH_IOU: f64 = 0.5;

/// A ground-truth box and the score of the prediction that found it, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct GtBox {
    pub category_id: u64,
    pub bbox: [f64; 4],
    pub found_by: Option<f64>,
}

/// A prediction and whether it found a ground-truth box.
#[derive(Clone, Debug, PartialEq)]
pub struct PredBox {
    pub category_id: u64,
    pub bbox: [f64; 4],
    pub score: f64,
    pub hit: bool,
}

/// One image's boxes after matching.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageMatch {
    pub gt: Vec<GtBox>,
    pub pred: Vec<PredBox>,
}

impl ImageMatch {
    /// Ground truth not found by a prediction scoring at least `t`.
    pub fn misses(&self, t: f64) -> usize {
        self.gt
            .iter()
            .filter(|g| g.found_by.is_none_or(|s| s < t))
            .count()
    }

    /// Predictions scoring at least `t` that found nothing.
    pub fn false_positives(&self, t: f64) -> usize {
        self.pred.iter().filter(|p| p.score >= t && !p.hit).count()
    }

    pub fn errors(&self, t: f64) -> usize {
        self.misses(t) + self.false_positives(t)
    }
}

/// Matches one image's predictions to its ground truth (`(category, [x, y, w, h])`).
pub fn match_image(gt: &[(u64, [f64; 4])], mut pred: Vec<Detection>) -> ImageMatch {
    pred.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut gt: Vec<GtBox> = gt
        .iter()
        .map(|(c, b)| GtBox {
            category_id: *c,
            bbox: *b,
            found_by: None,
        })
        .collect();
    let pred = pred
        .into_iter()
        .map(|d| {
            let mut best: Option<(usize, f64)> = None;
            for (i, g) in gt.iter().enumerate() {
                if g.found_by.is_some() || g.category_id != d.category_id {
                    continue;
                }
                let iou = crate::eval::iou(&d.bbox, &g.bbox, false);
                if iou >= MATCH_IOU && best.is_none_or(|(_, b)| iou > b) {
                    best = Some((i, iou));
                }
            }
            if let Some((i, _)) = best {
                gt[i].found_by = Some(d.score);
            }
            PredBox {
                category_id: d.category_id,
                bbox: d.bbox,
                score: d.score,
                hit: best.is_some(),
            }
        })
        .collect();
    ImageMatch { gt, pred }
}

/// The score threshold with the best F1 over all images (ties: the higher threshold); 0.5
/// when there are no predictions.
pub fn best_f1_threshold(images: &BTreeMap<u64, ImageMatch>) -> f64 {
    let n_gt: usize = images.values().map(|m| m.gt.len()).sum();
    let mut preds: Vec<(f64, bool)> = images
        .values()
        .flat_map(|m| m.pred.iter().map(|p| (p.score, p.hit)))
        .collect();
    preds.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut best, mut best_f1) = (0.5, -1.0);
    let mut tp = 0usize;
    for (i, (score, hit)) in preds.iter().enumerate() {
        tp += *hit as usize;
        // Only where the next prediction scores lower: a threshold keeps all equal scores.
        if preds.get(i + 1).is_some_and(|n| n.0 == *score) {
            continue;
        }
        let f1 = 2.0 * tp as f64 / (n_gt + i + 1) as f64;
        if f1 > best_f1 {
            (best, best_f1) = (*score, f1);
        }
    }
    best
}

/// Why an image is in the gallery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Among the images with the most misses + false positives.
    MostErrors,
    /// An image with ground truth and no error (or the fewest), to show what works.
    Good,
}

/// Up to `n` images: the `n - 1` with the most errors (at threshold `t`, summed over the given
/// runs' matches), then the good one with the most ground truth among those with the fewest
/// errors. Ties go to the lower image id.
pub fn choose(runs: &[&BTreeMap<u64, ImageMatch>], t: &[f64], n: usize) -> Vec<(u64, Pick)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let errors = |id: u64| -> usize {
        runs.iter()
            .zip(t)
            .map(|(r, t)| r.get(&id).map_or(0, |m| m.errors(*t)))
            .sum()
    };
    let mut ids: Vec<(u64, usize, usize)> = first
        .iter()
        .map(|(id, m)| (*id, errors(*id), m.gt.len()))
        .collect();
    ids.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<(u64, Pick)> = ids
        .iter()
        .filter(|x| x.1 > 0)
        .take(n.saturating_sub(1))
        .map(|x| (x.0, Pick::MostErrors))
        .collect();
    let good = ids
        .iter()
        .filter(|x| x.2 > 0 && !out.iter().any(|o| o.0 == x.0))
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    if let Some(g) = good.filter(|_| n > 0) {
        out.push((g.0, Pick::Good));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(c: u64, b: [f64; 4], score: f64) -> Detection {
        Detection {
            image_id: 1,
            category_id: c,
            bbox: b,
            score,
        }
    }

    #[test]
    fn matching_is_greedy_by_score_within_a_class() {
        let gt = [(1, [0.0, 0.0, 10.0, 10.0]), (2, [50.0, 50.0, 10.0, 10.0])];
        let m = match_image(
            &gt,
            vec![
                det(1, [1.0, 0.0, 10.0, 10.0], 0.6), // IoU 0.82 with gt 0, but a higher score came first
                det(1, [0.0, 0.0, 10.0, 10.0], 0.9), // finds gt 0
                det(1, [50.0, 50.0, 10.0, 10.0], 0.8), // right box, wrong class
                det(2, [54.0, 50.0, 10.0, 10.0], 0.7), // IoU 6/14 < 0.5
            ],
        );
        assert_eq!(m.gt[0].found_by, Some(0.9));
        assert_eq!(m.gt[1].found_by, None);
        let hits: Vec<(f64, bool)> = m.pred.iter().map(|p| (p.score, p.hit)).collect();
        assert_eq!(
            hits,
            vec![(0.9, true), (0.8, false), (0.7, false), (0.6, false)]
        );
        assert_eq!(m.misses(0.5), 1);
        assert_eq!(m.misses(0.95), 2);
        assert_eq!(m.false_positives(0.65), 2);
        assert_eq!(m.false_positives(0.85), 0);
    }

    #[test]
    fn threshold_maximises_f1() {
        // 2 GT; predictions 0.9 hit, 0.8 miss, 0.7 hit, 0.2 miss.
        // F1 at 0.9: 2/3, at 0.8: 2/4, at 0.7: 4/5, at 0.2: 4/6 -> 0.7.
        let mut images = BTreeMap::new();
        images.insert(
            1,
            ImageMatch {
                gt: vec![],
                pred: [(0.9, true), (0.8, false), (0.7, true), (0.2, false)]
                    .iter()
                    .map(|(s, h)| PredBox {
                        category_id: 1,
                        bbox: [0.0; 4],
                        score: *s,
                        hit: *h,
                    })
                    .collect(),
            },
        );
        images.get_mut(&1).unwrap().gt = vec![
            GtBox {
                category_id: 1,
                bbox: [0.0; 4],
                found_by: Some(0.9)
            };
            2
        ];
        assert_eq!(best_f1_threshold(&images), 0.7);
        assert_eq!(best_f1_threshold(&BTreeMap::new()), 0.5);
    }

    #[test]
    fn choice_is_most_errors_then_one_good() {
        let gt = |n: usize| {
            vec![
                GtBox {
                    category_id: 1,
                    bbox: [0.0; 4],
                    found_by: Some(0.9)
                };
                n
            ]
        };
        let fp = |n: usize| {
            vec![
                PredBox {
                    category_id: 1,
                    bbox: [0.0; 4],
                    score: 0.9,
                    hit: false
                };
                n
            ]
        };
        let mut images = BTreeMap::new();
        images.insert(
            1,
            ImageMatch {
                gt: gt(1),
                pred: fp(1),
            },
        );
        images.insert(
            2,
            ImageMatch {
                gt: gt(3),
                pred: vec![],
            },
        );
        images.insert(
            3,
            ImageMatch {
                gt: gt(2),
                pred: fp(3),
            },
        );
        images.insert(
            4,
            ImageMatch {
                gt: vec![],
                pred: fp(2),
            },
        );
        images.insert(
            5,
            ImageMatch {
                gt: gt(1),
                pred: vec![],
            },
        );
        let picks = choose(&[&images], &[0.5], 3);
        assert_eq!(
            picks,
            vec![
                (3, Pick::MostErrors),
                (4, Pick::MostErrors),
                (2, Pick::Good)
            ]
        );
        // Two runs: errors add up.
        let mut other = images.clone();
        other.get_mut(&1).unwrap().pred = fp(5);
        let picks = choose(&[&images, &other], &[0.5, 0.5], 2);
        assert_eq!(picks, vec![(1, Pick::MostErrors), (2, Pick::Good)]);
        assert!(choose(&[], &[], 3).is_empty());
    }
}

//! Precision/recall curves per (category, area range, maxDets) (`COCOeval.accumulate`).
//!
//! For category `k`, the detections of all images (the first `maxDet` of each cell) are put
//! in descending score order with a stable sort over the concatenation in image order, so
//! ties go by image, then by rank within the image, as numpy's mergesort orders them. Sorting
//! once at the largest maxDets and filtering by rank gives the same order for the smaller ones.
//! Then, per threshold, with integer TP/FP counts `tp_j`, `fp_j`:
//! `rc_j = tp_j / npig`, `pr_j = tp_j / ((fp_j + tp_j) + 2^-52)`, precision made monotone from
//! the right, and for each recall threshold `r` the precision at the first `j` with
//! `rc_j >= r` (`np.searchsorted(rc, r, 'left')`), 0 when there is none. Cells with no regular
//! GT stay -1. The envelope and the search only need precision at the true positives, so one
//! pass collects them for all thresholds and a short backward walk per threshold fills the
//! recall thresholds (see [`fill_threshold`]).
use super::matching::{Flags, FP_SHIFT};
use super::params::Params;
use super::results::Detections;
use rayon::prelude::*;

/// The accumulated arrays, in pycocotools' layout.
pub struct Curves {
    /// `[T, R, K, A, M]`, -1 where undefined.
    pub precision: Vec<f64>,
    /// `[T, K, A, M]`, -1 where undefined.
    pub recall: Vec<f64>,
    /// `[T, R, K, A, M]`: the score at which each precision value is reached.
    pub scores: Vec<f64>,
}

/// One category's share: `[T, R, A, M]` precision and scores, `[T, A, M]` recall.
struct CategoryCurves {
    precision: Vec<f64>,
    recall: Vec<f64>,
    scores: Vec<f64>,
}

pub fn accumulate(
    dt: &Detections,
    flags: &[Flags],
    npig: &[[u64; 4]],
    num_images: usize,
    params: &Params,
) -> Curves {
    let (nt, nr, nk, na, nm) = (
        params.iou_thrs.len(),
        params.rec_thrs.len(),
        npig.len(),
        params.area_ranges.len(),
        params.max_dets.len(),
    );
    let per_cat: Vec<CategoryCurves> = (0..nk)
        .into_par_iter()
        .map(|k| category_curves(dt, flags, &npig[k], k, num_images, params))
        .collect();
    let mut precision = vec![-1.0; nt * nr * nk * na * nm];
    let mut scores = vec![-1.0; nt * nr * nk * na * nm];
    let mut recall = vec![-1.0; nt * nk * na * nm];
    for (k, c) in per_cat.iter().enumerate() {
        for t in 0..nt {
            for r in 0..nr {
                for a in 0..na {
                    for m in 0..nm {
                        let src = ((t * nr + r) * na + a) * nm + m;
                        let dst = (((t * nr + r) * nk + k) * na + a) * nm + m;
                        precision[dst] = c.precision[src];
                        scores[dst] = c.scores[src];
                    }
                }
            }
            for a in 0..na {
                for m in 0..nm {
                    recall[((t * nk + k) * na + a) * nm + m] = c.recall[(t * na + a) * nm + m];
                }
            }
        }
    }
    Curves {
        precision,
        recall,
        scores,
    }
}

/// A detection of the category being accumulated.
struct Entry {
    score: f64,
    rank: u32,
    flags: Flags,
}

/// A true positive at position `pos` of the score-sorted list, with the counts up to and
/// including it.
#[derive(Clone, Copy)]
struct Event {
    pos: u32,
    tp: u32,
    fp: u32,
}

/// Precision and score per recall threshold for one (category, area, maxDets, IoU threshold).
///
/// pycocotools computes `pr_j` at every position, makes it monotone from the right and reads it
/// at `idx(r) = searchsorted(rc, r, 'left')`. Recall only rises at true positives, so every
/// `idx(r)` is a TP position (or 0), and between two TPs precision can only fall (FPs) or stay
/// (ignored detections), so the envelope at a TP position is the maximum of `pr` over the TP
/// positions at or after it. Walking the TPs backwards gives the same numbers, computed with
/// the same operations, at a fraction of the cost.
fn fill_threshold(
    events: &[Event],
    scores: &[f64],
    npig: u64,
    rec_thrs: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let nr = rec_thrs.len();
    let mut precision = vec![0.0; nr];
    let mut score_at = vec![0.0; nr];
    if scores.is_empty() {
        return (precision, score_at);
    }
    let npig = npig as f64;
    let tp_last = events.last().map_or(0, |e| e.tp);
    // Thresholds above the final recall stay 0: searchsorted runs off the end.
    let mut ri = rec_thrs.partition_point(|&r| r <= f64::from(tp_last) / npig);
    let mut envelope = 0.0f64;
    for e in events.iter().rev() {
        let (tp, fp) = (f64::from(e.tp), f64::from(e.fp));
        let pr = tp / ((fp + tp) + f64::EPSILON);
        if pr > envelope {
            envelope = pr;
        }
        let rc_before = if e.pos == 0 {
            f64::NEG_INFINITY
        } else {
            f64::from(e.tp - 1) / npig
        };
        while ri > 0 && rec_thrs[ri - 1] > rc_before {
            ri -= 1;
            precision[ri] = envelope;
            score_at[ri] = scores[e.pos as usize];
        }
    }
    // Thresholds at or below the recall before the first TP (0) are found at position 0,
    // whose own precision is 0.
    while ri > 0 {
        ri -= 1;
        precision[ri] = envelope;
        score_at[ri] = scores[0];
    }
    (precision, score_at)
}

fn category_curves(
    dt: &Detections,
    flags: &[Flags],
    npig: &[u64; 4],
    k: usize,
    num_images: usize,
    params: &Params,
) -> CategoryCurves {
    let (nt, nr, na, nm) = (
        params.iou_thrs.len(),
        params.rec_thrs.len(),
        params.area_ranges.len(),
        params.max_dets.len(),
    );
    let mut out = CategoryCurves {
        precision: vec![-1.0; nt * nr * na * nm],
        recall: vec![-1.0; nt * na * nm],
        scores: vec![-1.0; nt * nr * na * nm],
    };
    if npig.iter().all(|&n| n == 0) {
        return out;
    }
    let max_det = params.max_dets.iter().copied().max().unwrap_or(0);
    // The category's detections (the first `max_det` of each cell) in image order, then
    // stable-sorted by descending score.
    let mut by_score: Vec<(f64, u32, u32)> = Vec::new();
    for i in 0..num_images {
        let r = dt.cell(k * num_images + i);
        let n = r.len().min(max_det);
        by_score
            .extend((r.start..r.start + n).map(|j| (dt.scores[j], j as u32, (j - r.start) as u32)));
    }
    by_score.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    let order: Vec<Entry> = by_score
        .iter()
        .map(|&(score, j, rank)| Entry {
            score,
            rank,
            flags: flags[j as usize],
        })
        .collect();

    let all_fp: u32 = ((1u32 << nt) - 1) << FP_SHIFT;
    let mut scores: Vec<f64> = Vec::with_capacity(order.len());
    // Per threshold: the positions where a true positive occurs, with the TP and FP counts
    // there. Precision only needs evaluating at those (see `fill_threshold`).
    let mut events: Vec<Vec<Event>> = vec![Vec::new(); nt];
    for (a, &n_regular) in npig.iter().enumerate() {
        if n_regular == 0 {
            continue;
        }
        for (m, &md) in params.max_dets.iter().enumerate() {
            scores.clear();
            events.iter_mut().for_each(Vec::clear);
            let mut fp_all = 0u32;
            let mut fp_some = [0u32; 16];
            let mut tp = [0u32; 16];
            for e in &order {
                if e.rank as usize >= md {
                    continue;
                }
                let pos = scores.len() as u32;
                scores.push(e.score);
                let code = e.flags[a];
                if code == all_fp {
                    fp_all += 1;
                } else if code != 0 {
                    for t in 0..nt {
                        if code & (1 << t) != 0 {
                            tp[t] += 1;
                            events[t].push(Event {
                                pos,
                                tp: tp[t],
                                fp: fp_all + fp_some[t],
                            });
                        } else if code & (1 << (t as u32 + FP_SHIFT)) != 0 {
                            fp_some[t] += 1;
                        }
                    }
                }
            }
            for (t, ev) in events.iter().enumerate() {
                let at = |r: usize| ((t * nr + r) * na + a) * nm + m;
                let (precision, score_at) =
                    fill_threshold(ev, &scores, n_regular, &params.rec_thrs);
                for r in 0..nr {
                    out.precision[at(r)] = precision[r];
                    out.scores[at(r)] = score_at[r];
                }
                out.recall[(t * na + a) * nm + m] = if scores.is_empty() {
                    0.0
                } else {
                    f64::from(tp[t]) / n_regular as f64
                };
            }
        }
    }
    out
}

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
//! GT stay -1. One backward pass per threshold does the envelope and the search together.
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
    // (score, detection index, rank in its cell) in image order, then stable-sorted.
    let mut order: Vec<(f64, u32, u32)> = Vec::new();
    for i in 0..num_images {
        let r = dt.cell(k * num_images + i);
        let n = r.len().min(max_det);
        for (rank, j) in (r.start..r.start + n).enumerate() {
            order.push((dt.scores[j], j as u32, rank as u32));
        }
    }
    order.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));

    let mut codes: Vec<u32> = Vec::with_capacity(order.len());
    let mut sorted_scores: Vec<f64> = Vec::with_capacity(order.len());
    for (a, &n_regular) in npig.iter().enumerate() {
        if n_regular == 0 {
            continue;
        }
        let npig = n_regular as f64;
        for (m, &md) in params.max_dets.iter().enumerate() {
            codes.clear();
            sorted_scores.clear();
            for &(score, j, rank) in &order {
                if (rank as usize) < md {
                    codes.push(flags[j as usize][a]);
                    sorted_scores.push(score);
                }
            }
            for t in 0..nt {
                let tp_bit = 1u32 << t;
                let fp_bit = 1u32 << (t as u32 + FP_SHIFT);
                let (mut tp, mut fp) = (0u64, 0u64);
                for &c in &codes {
                    tp += u64::from(c & tp_bit != 0);
                    fp += u64::from(c & fp_bit != 0);
                }
                let nd = codes.len();
                out.recall[(t * na + a) * nm + m] = if nd > 0 { tp as f64 / npig } else { 0.0 };
                let at = |r: usize| ((t * nr + r) * na + a) * nm + m;
                for r in 0..nr {
                    out.precision[at(r)] = 0.0;
                    out.scores[at(r)] = 0.0;
                }
                // Recall thresholds above the final recall get 0 (searchsorted runs off the
                // end); the others are filled walking back from the last detection.
                let rc_last = tp as f64 / npig;
                let mut ri = params.rec_thrs.partition_point(|&r| r <= rc_last);
                if nd == 0 {
                    continue;
                }
                let mut envelope = f64::NEG_INFINITY;
                for j in (0..nd).rev() {
                    let (tpf, fpf) = (tp as f64, fp as f64);
                    let pr = tpf / ((fpf + tpf) + f64::EPSILON);
                    if pr > envelope {
                        envelope = pr;
                    }
                    let c = codes[j];
                    tp -= u64::from(c & tp_bit != 0);
                    fp -= u64::from(c & fp_bit != 0);
                    let rc_prev = if j > 0 {
                        tp as f64 / npig
                    } else {
                        f64::NEG_INFINITY
                    };
                    while ri > 0 && params.rec_thrs[ri - 1] > rc_prev {
                        ri -= 1;
                        out.precision[at(ri)] = envelope;
                        out.scores[at(ri)] = sorted_scores[j];
                    }
                    if ri == 0 {
                        break;
                    }
                }
            }
        }
    }
    out
}

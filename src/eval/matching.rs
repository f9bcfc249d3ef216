//! Per-cell greedy matching (`COCOeval.evaluateImg`) for every area range and IoU threshold.
//!
//! For each detection (best score first, at most `maxDets[-1]`) and threshold `t`, the
//! matched GT is the last one, in GT order (regular GTs first, then ignored ones, each in file
//! order), whose IoU is at least the best so far (starting at `min(t, 1-1e-10)`), skipping GTs
//! already matched at `t` unless they are crowd; once a regular GT is matched, ignored GTs are
//! not considered. Only GTs with IoU >= the lowest threshold can ever match, so each detection
//! keeps just those candidates. A detection is ignored if it matched an ignored GT, or if it is
//! unmatched and its area is outside the range. "Matched" is pycocotools' `dtMatches != 0`,
//! which is false for a GT whose annotation id is 0 unless `fix_id0` is set.
//!
//! The outcome per detection and area range is packed in a `u32`: bit `t` = true positive at
//! threshold `t`, bit `16 + t` = false positive; neither = ignored.
use super::gt::GroundTruth;
use super::iou::iou;
use super::params::Params;
use super::results::Detections;

/// Packed outcomes of one detection, one word per area range.
pub type Flags = [u32; 4];

pub const FP_SHIFT: u32 = 16;

/// Reusable per-thread buffers (no allocation per cell once warmed up).
#[derive(Default)]
pub struct Scratch {
    cand_start: Vec<u32>,
    cands: Vec<(u32, f64)>,
    gt_ignored: Vec<bool>,
    taken: Vec<bool>,
    with_cands: Vec<u32>,
}

/// Matches cell `cell`, writing the flags of its detections (the first `max_det`) to `out`
/// (indexed like the cell's detections).
pub fn match_cell(
    gt: &GroundTruth,
    dt: &Detections,
    cell: usize,
    params: &Params,
    fix_id0: bool,
    s: &mut Scratch,
    out: &mut [Flags],
) {
    let gr = gt.cell(cell);
    let dr = dt.cell(cell);
    let max_det = params.max_dets[params.max_dets.len() - 1];
    let nd = dr.len().min(max_det);
    if nd == 0 {
        return;
    }
    let g_boxes = &gt.boxes[gr.clone()];
    let g_crowd = &gt.crowd[gr.clone()];
    let g_area = &gt.areas[gr.clone()];
    let g_ids = &gt.ann_ids[gr.clone()];
    let d_boxes = &dt.boxes[dr.start..dr.start + nd];
    let d_area = &dt.areas[dr.start..dr.start + nd];
    let thresholds = params.iou_thrs.len();
    debug_assert!(thresholds <= FP_SHIFT as usize);
    let all_t: u32 = (1u32 << thresholds) - 1;

    // Candidates: GTs a detection could match at the lowest threshold.
    let lowest = params
        .iou_thrs
        .iter()
        .fold(f64::INFINITY, |m, &t| m.min(t.min(1.0 - 1e-10)));
    s.cand_start.clear();
    s.cands.clear();
    for d in d_boxes {
        s.cand_start.push(s.cands.len() as u32);
        for (gi, g) in g_boxes.iter().enumerate() {
            let v = iou(d, g, g_crowd[gi]);
            if v >= lowest {
                s.cands.push((gi as u32, v));
            }
        }
    }
    s.cand_start.push(s.cands.len() as u32);
    s.taken.clear();
    s.taken.resize(g_boxes.len(), false);

    for (a, &[lo, hi]) in params.area_ranges.iter().enumerate() {
        s.gt_ignored.clear();
        s.gt_ignored.extend(
            g_crowd
                .iter()
                .zip(g_area)
                .map(|(&c, &ar)| c || ar < lo || ar > hi),
        );
        let out_of_range = |j: usize| d_area[j] < lo || d_area[j] > hi;
        // A detection without candidates is unmatched at every threshold: a false positive,
        // or ignored when out of range. The others are matched threshold by threshold, in
        // score order.
        s.with_cands.clear();
        for (j, o) in out[..nd].iter_mut().enumerate() {
            if s.cand_start[j] == s.cand_start[j + 1] {
                o[a] = if out_of_range(j) {
                    0
                } else {
                    all_t << FP_SHIFT
                };
            } else {
                o[a] = 0;
                s.with_cands.push(j as u32);
            }
        }
        if s.with_cands.is_empty() {
            continue;
        }
        for (t, &thr) in params.iou_thrs.iter().enumerate() {
            s.taken.iter_mut().for_each(|x| *x = false);
            let start_best = thr.min(1.0 - 1e-10);
            for &j in &s.with_cands {
                let j = j as usize;
                let cands = &s.cands[s.cand_start[j] as usize..s.cand_start[j + 1] as usize];
                let mut best = start_best;
                let mut m: Option<usize> = None;
                for pass_ignored in [false, true] {
                    if pass_ignored && m.is_some() {
                        break; // a regular match stops the scan at the ignored GTs
                    }
                    for &(gi, v) in cands {
                        let gi = gi as usize;
                        if s.gt_ignored[gi] != pass_ignored
                            || (s.taken[gi] && !g_crowd[gi])
                            || v < best
                        {
                            continue;
                        }
                        best = v;
                        m = Some(gi);
                    }
                }
                let (matched, mut ignored) = match m {
                    Some(gi) => {
                        s.taken[gi] = true;
                        (fix_id0 || g_ids[gi] != 0, s.gt_ignored[gi])
                    }
                    None => (false, false),
                };
                if !matched && out_of_range(j) {
                    ignored = true;
                }
                if !ignored {
                    out[j][a] |= if matched {
                        1 << t
                    } else {
                        1 << (t as u32 + FP_SHIFT)
                    };
                }
            }
        }
    }
}

/// The number of regular (not ignored) GTs per category and area range: `npig`.
pub fn regular_gt_counts(gt: &GroundTruth, params: &Params) -> Vec<[u64; 4]> {
    let ni = gt.images.len();
    (0..gt.categories.len())
        .map(|k| {
            let r = gt.cell_start[k * ni] as usize..gt.cell_start[(k + 1) * ni] as usize;
            let mut n = [0u64; 4];
            for g in r {
                if gt.crowd[g] {
                    continue;
                }
                for (a, &[lo, hi]) in params.area_ranges.iter().enumerate() {
                    let ar = gt.areas[g];
                    if !(ar < lo || ar > hi) {
                        n[a] += 1;
                    }
                }
            }
            n
        })
        .collect()
}

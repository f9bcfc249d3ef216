//! GLIP's `ATSSPostProcessor`: per level, candidates whose class score passes the threshold
//! (before centerness), the top 1000 by `score · sigmoid(centerness)`, boxes decoded; then over
//! all levels, class-aware NMS and a cap of 100 per image with `kthvalue`'s tie rule.
use super::anchors::anchor;
use super::decode::{clip, decode};
use super::nms::nms_class_aware;
use super::scores::{class_scores, sigmoid, ClassTokenMap};
use super::{Detection, LevelOutputs, PostprocessConfig};
use anyhow::{bail, Result};

/// The detections of one level, in descending score order (ties: lower `anchor·K + class`
/// first), with scores already `sqrt(cls · sigmoid(centerness))`.
pub fn select_level(
    level: &LevelOutputs,
    map: &ClassTokenMap,
    image_size: (u32, u32),
    cfg: &PostprocessConfig,
) -> Result<Vec<Detection>> {
    level.check()?;
    let (hw, t, k) = (
        level.height * level.width,
        level.num_tokens,
        map.num_classes(),
    );
    if let Some(max) = map.max_token() {
        if max >= t {
            bail!("class token {max} is past the model's {t} token logits");
        }
    }
    let used = map.used_tokens();
    let mut scratch = vec![0f32; t];
    let mut cls = vec![0f32; k];
    // (cls · sigmoid(ctr), flat index anchor·K + class)
    let mut candidates: Vec<(f32, usize)> = Vec::new();
    for a in 0..hw {
        class_scores(
            &level.dot_product_logits[a * t..(a + 1) * t],
            map,
            &used,
            &mut scratch,
            &mut cls,
        );
        let mut ctr = None;
        for (c, &s) in cls.iter().enumerate() {
            if s > cfg.pre_nms_thresh {
                let ctr = *ctr.get_or_insert_with(|| sigmoid(level.centerness[a]));
                candidates.push((s * ctr, a * k + c));
            }
        }
    }
    let by_score = |x: &(f32, usize), y: &(f32, usize)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
    let n = candidates.len().min(cfg.pre_nms_top_n);
    if n < candidates.len() {
        candidates.select_nth_unstable_by(n, by_score);
        candidates.truncate(n);
    }
    candidates.sort_unstable_by(by_score);
    let size = level.anchor_size();
    let mut out = Vec::with_capacity(n);
    for (s, flat) in candidates {
        let (a, c) = (flat / k, flat % k);
        let (x, y) = (a % level.width, a / level.width);
        let b = decode(level.deltas(a), anchor(level.stride, size, x, y));
        let b = clip(b, image_size.0, image_size.1);
        // remove_small_boxes(min_size = 0); only a NaN box fails it.
        if b[2] - b[0] + 1.0 >= 0.0 && b[3] - b[1] + 1.0 >= 0.0 {
            out.push(Detection {
                bbox: b,
                score: s.sqrt(),
                label: c + 1,
            });
        }
    }
    Ok(out)
}

/// Merges the levels' detections (in level order), applies class-aware NMS and the cap.
pub fn select_over_levels(levels: Vec<Vec<Detection>>, cfg: &PostprocessConfig) -> Vec<Detection> {
    let all: Vec<Detection> = levels.into_iter().flatten().collect();
    let boxes: Vec<[f32; 4]> = all.iter().map(|d| d.bbox).collect();
    let scores: Vec<f32> = all.iter().map(|d| d.score).collect();
    let labels: Vec<usize> = all.iter().map(|d| d.label).collect();
    let keep = nms_class_aware(&boxes, &scores, &labels, cfg.nms_thresh);
    let kept: Vec<Detection> = keep.into_iter().map(|i| all[i]).collect();
    cap(kept, cfg.detections_per_img)
}

/// GLIP's cap: with more than `max` detections, keep those scoring at least the `max`-th
/// highest score (`kthvalue(scores, n − max + 1)`), so ties can keep more than `max`.
pub fn cap(dets: Vec<Detection>, max: usize) -> Vec<Detection> {
    if dets.len() <= max || max == 0 {
        return dets;
    }
    let mut scores: Vec<f32> = dets.iter().map(|d| d.score).collect();
    let kth = dets.len() - max; // 0-based index of the (n − max + 1)-th smallest
    let (_, &mut threshold, _) = scores.select_nth_unstable_by(kth, f32::total_cmp);
    dets.into_iter().filter(|d| d.score >= threshold).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(score: f32) -> Detection {
        Detection {
            bbox: [0.0; 4],
            score,
            label: 1,
        }
    }

    #[test]
    fn cap_keeps_ties_at_the_threshold() {
        let dets: Vec<Detection> = [0.1, 0.5, 0.5, 0.5, 0.9].iter().map(|&s| det(s)).collect();
        let kept = cap(dets.clone(), 2);
        assert_eq!(
            kept.iter().map(|d| d.score).collect::<Vec<_>>(),
            [0.5, 0.5, 0.5, 0.9]
        );
        assert_eq!(cap(dets.clone(), 5).len(), 5);
        assert_eq!(cap(dets, 4).len(), 4);
    }
}

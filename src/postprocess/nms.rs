//! GLIP's class-aware NMS (`boxlist_ml_nms`, the CUDA `ml_nms` kernel): boxes in descending
//! score order suppress later boxes of the same label whose IoU with them is strictly above
//! the threshold; IoU uses "+1" areas in f32. The kept boxes come back in their original order.

/// IoU of two `[x1, y1, x2, y2]` boxes with "+1" widths and heights, as the kernel computes it.
#[inline]
pub fn iou_plus_one(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let left = a[0].max(b[0]);
    let right = a[2].min(b[2]);
    let top = a[1].max(b[1]);
    let bottom = a[3].min(b[3]);
    let width = (right - left + 1.0).max(0.0);
    let height = (bottom - top + 1.0).max(0.0);
    let inter = width * height;
    let area_a = (a[2] - a[0] + 1.0) * (a[3] - a[1] + 1.0);
    let area_b = (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    inter / (area_a + area_b - inter)
}

/// Indices (ascending) of the boxes NMS keeps. Equal scores are visited in index order.
pub fn nms_class_aware(
    boxes: &[[f32; 4]],
    scores: &[f32],
    labels: &[usize],
    iou: f32,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (i, &a) in order.iter().enumerate() {
        if suppressed[a] {
            continue;
        }
        keep.push(a);
        for &b in &order[i + 1..] {
            if !suppressed[b] && labels[b] == labels[a] && iou_plus_one(&boxes[a], &boxes[b]) > iou
            {
                suppressed[b] = true;
            }
        }
    }
    keep.sort_unstable();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_same_label_overlaps_strictly_above_the_threshold() {
        // Identical boxes: IoU 1. A 10x10 box vs one shifted by 2: inter 8·10 = 80, union 120.
        let boxes = [
            [0.0, 0.0, 9.0, 9.0],
            [0.0, 0.0, 9.0, 9.0],
            [2.0, 0.0, 11.0, 9.0],
            [0.0, 0.0, 9.0, 9.0],
        ];
        assert!((iou_plus_one(&boxes[0], &boxes[2]) - 80.0 / 120.0).abs() < 1e-7);
        let scores = [0.5, 0.9, 0.7, 0.8];
        let labels = [1, 1, 1, 2];
        assert_eq!(nms_class_aware(&boxes, &scores, &labels, 0.6), vec![1, 3]);
        assert_eq!(
            nms_class_aware(&boxes, &scores, &labels, 0.7),
            vec![1, 2, 3]
        );
        // IoU exactly at the threshold is kept (strict >): 1/2 here.
        let b2 = [[0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 19.0]];
        assert_eq!(nms_class_aware(&b2, &[1.0, 1.0], &[1, 1], 0.5), vec![0, 1]);
        assert_eq!(nms_class_aware(&b2, &[1.0, 1.0], &[1, 1], 0.49), vec![0]);
    }
}

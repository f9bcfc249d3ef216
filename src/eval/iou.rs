//! Box IoU exactly as pycocotools' C `bbIou` computes it, in doubles from the `[x, y, w, h]`
//! numbers: the same operations in the same order, so exact-threshold cases agree to the bit.
//! For a crowd GT the union is the detection's area.

#[inline]
pub fn iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let da = d[2] * d[3];
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let u = if crowd { da } else { da + g[2] * g[3] - i };
    i / u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_mask_api_bits() {
        // Spec case 33: maskApi gives 0.8000000000000002 here (an xyxy-area formula gives
        // 0.7999999999999998).
        let g = [378.98, 20.24, 122.1, 290.4];
        let d = [378.98, 20.24, 97.68, 290.4];
        assert_eq!(iou(&d, &g, false), 0.8000000000000002);
        // Crowd: intersection over the detection's area.
        assert_eq!(
            iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 100.0, 100.0], true),
            0.5
        );
        // Touching and empty boxes give 0.
        assert_eq!(
            iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 10.0, 10.0], false),
            0.0
        );
        assert_eq!(
            iou(&[0.0, 0.0, 0.0, 10.0], &[0.0, 0.0, 10.0, 10.0], false),
            0.0
        );
        assert_eq!(
            iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 5.0, 10.0], false),
            0.5
        );
    }
}

//! GLIP's anchors (`make_anchor_generator_complex` with one size and one aspect ratio per
//! level): a square of side 8·stride per feature-map location, in the legacy "+1" pixel
//! convention.

/// GLIP's FPN strides (P3–P7) and anchor sizes.
pub const STRIDES: [u32; 5] = [8, 16, 32, 64, 128];
pub const ANCHOR_SIZES: [u32; 5] = [64, 128, 256, 512, 1024];

/// The `(width, height)` of the feature map (and anchor grid) of the level with `stride` on a
/// `canvas_w x canvas_h` canvas: Swin's patch embedding and patch merging halve with ceil, and
/// P6/P7 are stride-2 convs (padding 1), so every level is `ceil(side / stride)`.
pub fn grid_size(canvas_w: u32, canvas_h: u32, stride: u32) -> (usize, usize) {
    (
        canvas_w.div_ceil(stride) as usize,
        canvas_h.div_ceil(stride) as usize,
    )
}

/// The anchor at column `x`, row `y` of a level with `stride` and anchor `size`, as
/// `[x1, y1, x2, y2]`: centred on `(s−1)/2 + (x·s, y·s)` with corners `±(size−1)/2` from it.
#[inline]
pub fn anchor(stride: u32, size: u32, x: usize, y: usize) -> [f32; 4] {
    let ctr = (stride as f32 - 1.0) * 0.5;
    let half = (size as f32 - 1.0) * 0.5;
    let (sx, sy) = ((x as u32 * stride) as f32, (y as u32 * stride) as f32);
    [
        ctr - half + sx,
        ctr - half + sy,
        ctr + half + sx,
        ctr + half + sy,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_anchors_match_the_protocol_table() {
        let want = [
            [-28.0, -28.0, 35.0, 35.0],
            [-56.0, -56.0, 71.0, 71.0],
            [-112.0, -112.0, 143.0, 143.0],
            [-224.0, -224.0, 287.0, 287.0],
            [-448.0, -448.0, 575.0, 575.0],
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(&anchor(STRIDES[i], ANCHOR_SIZES[i], 0, 0), w);
        }
        assert_eq!(anchor(8, 64, 2, 1), [-12.0, -20.0, 51.0, 43.0]);
    }

    #[test]
    fn grid_sizes_follow_the_canvas() {
        // GLIP-T at an 800x1216 canvas (an 800x1195 resize): P3..P7.
        let sizes: Vec<_> = STRIDES.iter().map(|&s| grid_size(1216, 800, s)).collect();
        assert_eq!(sizes, [(152, 100), (76, 50), (38, 25), (19, 13), (10, 7)]);
        assert_eq!(grid_size(32, 32, 128), (1, 1));
    }
}

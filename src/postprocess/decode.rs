//! GLIP's `BoxCoder.decode`: regression deltas against an anchor to a box, weights
//! (10, 10, 5, 5), width/height growth clamped at log(1000/16), "+1" pixel convention, then
//! clipped to the resized image. Every step is f32, in torch's order.

/// GLIP's box-coder weights and the clamp on dw, dh.
pub const WEIGHTS: [f32; 4] = [10.0, 10.0, 5.0, 5.0];

/// `ln(1000 / 16)` as f32, the upper clamp of dw and dh.
pub fn scale_clamp() -> f32 {
    (1000.0f64 / 16.0).ln() as f32
}

/// Decodes `deltas` `(dx, dy, dw, dh)` against `anchor` `[x1, y1, x2, y2]`.
#[inline]
pub fn decode(deltas: [f32; 4], anchor: [f32; 4]) -> [f32; 4] {
    let widths = anchor[2] - anchor[0] + 1.0;
    let heights = anchor[3] - anchor[1] + 1.0;
    let ctr_x = (anchor[2] + anchor[0]) / 2.0;
    let ctr_y = (anchor[3] + anchor[1]) / 2.0;
    let dx = deltas[0] / WEIGHTS[0];
    let dy = deltas[1] / WEIGHTS[1];
    let clamp = scale_clamp();
    let dw = (deltas[2] / WEIGHTS[2]).min(clamp);
    let dh = (deltas[3] / WEIGHTS[3]).min(clamp);
    let pred_ctr_x = dx * widths + ctr_x;
    let pred_ctr_y = dy * heights + ctr_y;
    let pred_w = dw.exp() * widths;
    let pred_h = dh.exp() * heights;
    [
        pred_ctr_x - 0.5 * (pred_w - 1.0),
        pred_ctr_y - 0.5 * (pred_h - 1.0),
        pred_ctr_x + 0.5 * (pred_w - 1.0),
        pred_ctr_y + 0.5 * (pred_h - 1.0),
    ]
}

/// The inverse of [`decode`] (`BoxCoder.encode`, GLIP's regression targets): the deltas that
/// move `anchor` onto `gt`, both `[x1, y1, x2, y2]` in the "+1" convention, in f32 and torch's
/// order of operations.
#[inline]
pub fn encode(gt: [f32; 4], anchor: [f32; 4]) -> [f32; 4] {
    let aw = anchor[2] - anchor[0] + 1.0;
    let ah = anchor[3] - anchor[1] + 1.0;
    let acx = (anchor[2] + anchor[0]) / 2.0;
    let acy = (anchor[3] + anchor[1]) / 2.0;
    let gw = gt[2] - gt[0] + 1.0;
    let gh = gt[3] - gt[1] + 1.0;
    let gcx = (gt[2] + gt[0]) / 2.0;
    let gcy = (gt[3] + gt[1]) / 2.0;
    [
        WEIGHTS[0] * (gcx - acx) / aw,
        WEIGHTS[1] * (gcy - acy) / ah,
        WEIGHTS[2] * (gw / aw).ln(),
        WEIGHTS[3] * (gh / ah).ln(),
    ]
}

/// `clip_to_image`: x into `[0, width−1]`, y into `[0, height−1]`.
#[inline]
pub fn clip(b: [f32; 4], width: u32, height: u32) -> [f32; 4] {
    let (xm, ym) = (width as f32 - 1.0, height as f32 - 1.0);
    [
        b[0].max(0.0).min(xm),
        b[1].max(0.0).min(ym),
        b[2].max(0.0).min(xm),
        b[3].max(0.0).min(ym),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_deltas_give_the_anchor_back() {
        let a = [-28.0, -28.0, 35.0, 35.0];
        assert_eq!(decode([0.0; 4], a), a);
        let b = decode([10.0, 0.0, 5.0 * 2f32.ln(), 0.0], a);
        // Width 64 → 128 around a centre moved by one width (64).
        assert_eq!(b, [3.5 - 63.5 + 64.0, -28.0, 3.5 + 63.5 + 64.0, 35.0]);
        assert_eq!(clip(b, 100, 30), [4.0, 0.0, 99.0, 29.0]);
        let huge = decode([0.0, 0.0, 1e6, 1e6], a);
        assert!((huge[2] - huge[0] + 1.0 - 64.0 * 62.5).abs() < 0.01);
    }

    #[test]
    fn encode_inverts_decode() {
        let a = [-28.0, -28.0, 35.0, 35.0];
        assert_eq!(encode(a, a), [0.0; 4]);
        // Width 64 -> 128, centre moved by one anchor width: dx = 10, dw = 5 ln 2.
        let b = [3.5 - 63.5 + 64.0, -28.0, 3.5 + 63.5 + 64.0, 35.0];
        let d = encode(b, a);
        assert_eq!(d[0], 10.0);
        assert!((d[2] - 5.0 * 2f32.ln()).abs() < 1e-6);
        for gt in [
            [10.0, 12.0, 30.5, 19.0],
            [0.0, 0.0, 0.0, 0.0],
            [-5.0, 3.0, 90.0, 200.0],
        ] {
            let back = decode(encode(gt, a), a);
            for i in 0..4 {
                assert!((back[i] - gt[i]).abs() < 1e-3, "{gt:?} -> {back:?}");
            }
        }
    }
}

//! GLIP's resize: the target size rule of `T.Resize(800, 1333)` and Pillow's bilinear resample
//! (`Image.resize(..., BILINEAR)`), reproduced byte for byte on 8-bit RGB images; and torch's
//! antialiased bilinear resize of a uint8 image ([`resize_bilinear_torch`], the kernel
//! torchvision's `resize(..., antialias=True)` runs on uint8), which differs from Pillow's only in
//! its fixed-point precision and its pass order.
//!
//! Pillow's resampler is separable: a horizontal pass into an 8-bit intermediate image, then a
//! vertical pass. Each output sample is a weighted sum of the input samples under the triangle
//! filter stretched by the scale factor when shrinking (antialiasing), with weights normalised
//! to sum 1, turned into 22-bit fixed point and accumulated in integers with a rounding offset.
use super::image::RgbImage;

/// GLIP's test-time `INPUT.MIN_SIZE_TEST` and `INPUT.MAX_SIZE_TEST`.
pub const MIN_SIZE: u32 = 800;
pub const MAX_SIZE: u32 = 1333;

/// GLIP's `Resize.get_size`: the output `(width, height)` for an image of `width × height`.
/// The short side becomes `min_size`, unless the long side would then pass `max_size`, in which
/// case the short side becomes `round(max_size · short / long)` (Python's round, ties to even);
/// the long side is then truncated, and an image whose short side already has that size keeps
/// its size.
pub fn glip_size(width: u32, height: u32, min_size: u32, max_size: u32) -> (u32, u32) {
    let (w, h) = (width as f64, height as f64);
    let (short, long) = (w.min(h), w.max(h));
    let mut size = min_size as f64;
    if long / short * size > max_size as f64 {
        size = (max_size as f64 * short / long).round_ties_even();
    }
    let size_i = size as u32;
    if (width <= height && width == size_i) || (height <= width && height == size_i) {
        return (width, height);
    }
    if width < height {
        (size_i, (size * h / w) as u32)
    } else {
        ((size * w / h) as u32, size_i)
    }
}

/// Pillow's check on a resize target (`Image.resize` → `ValueError`): both sides at least 1 px.
/// GLIP's size rule gives a 0-px side for images thinner than about `max_size : 0.5`
/// (e.g. 1×2667 at 800/1333), where GLIP's own loader raises.
pub fn check_target(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!(
            "resizes to {width}x{height}: Pillow's resize refuses a 0-px side (height and width must be > 0)"
        ));
    }
    Ok(())
}

/// Bits of fraction in Pillow's fixed-point weights for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The input range and fixed-point weights of each output sample along one axis.
struct Taps {
    /// Per output sample: first input index and number of inputs.
    bounds: Vec<(usize, usize)>,
    /// `ksize` weights per output sample (unused ones are 0).
    weights: Vec<i32>,
    ksize: usize,
    /// Bits of fraction of `weights`.
    bits: u32,
}

/// How the normalised weights become fixed point.
#[derive(Clone, Copy)]
enum Fixed {
    /// Pillow: always [`PRECISION_BITS`].
    Pillow,
    /// torch's uint8 antialiased kernel (`_compute_index_ranges_int16_weights`): int16 weights,
    /// the most bits (below 22) for which the largest weight of the axis, doubled, rounds below
    /// 2^15.
    Torch,
}

/// Pillow's triangle (bilinear) filter, support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` for the box `[0, in_size)` → `out_size`, followed by its 8-bit
/// normalisation of the weights to fixed point (rounded half away from zero). Both sizes must be
/// at least 1 ([`resize_bilinear`] checks): a 0-px side has no taps (its scale is infinite).
/// torch's antialiased kernel computes the same ranges and float weights (in f64).
fn taps(in_size: usize, out_size: usize) -> Taps {
    taps_fixed(in_size, out_size, Fixed::Pillow)
}

fn taps_fixed(in_size: usize, out_size: usize, fixed: Fixed) -> Taps {
    debug_assert!(in_size > 0 && out_size > 0);
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support (1) times the filter scale
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut normalised = vec![0f64; out_size * ksize];
    let mut k = vec![0f64; ksize];
    let inv = 1.0 / filter_scale;
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) conversion truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut sum = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = triangle(((x + xmin) as f64 - center + 0.5) * inv);
            *kx = w;
            sum += w;
        }
        let row = &mut normalised[xx * ksize..(xx + 1) * ksize];
        for (x, &kx) in k.iter().enumerate().take(n) {
            row[x] = if sum != 0.0 { kx / sum } else { kx };
        }
        bounds.push((xmin, n));
    }
    let bits = match fixed {
        Fixed::Pillow => PRECISION_BITS,
        Fixed::Torch => {
            let max = normalised.iter().cloned().fold(0.0, f64::max);
            (0..22)
                .find(|&b| (0.5 + max * (1u32 << (b + 1)) as f64) as i64 >= 1 << 15)
                .unwrap_or(22)
        }
    };
    let one = (1u32 << bits) as f64;
    let weights = normalised
        .iter()
        .map(|&w| {
            if w < 0.0 {
                (w * one - 0.5) as i32
            } else {
                (w * one + 0.5) as i32
            }
        })
        .collect();
    Taps {
        bounds,
        weights,
        ksize,
        bits,
    }
}

/// Pillow's `clip8`: the accumulated fixed-point sum (`bits` of fraction) back to a byte.
#[inline]
fn clip8(acc: i32, bits: u32) -> u8 {
    (acc >> bits).clamp(0, 255) as u8
}

/// The rounding offset the accumulators start from.
#[inline]
fn half(bits: u32) -> i32 {
    1 << (bits - 1)
}

/// Resizes to `width × height` exactly as Pillow's `Image.resize((width, height), BILINEAR)`
/// does for an RGB image (no `box`, no `reducing_gap`). Like Pillow 13, it runs the vertical pass
/// first when the height shrinks by more than twice as many pixels as the width does, and the
/// horizontal pass first otherwise; a dimension that keeps its size gets no pass.
///
/// A 0-px side, in or out, gives a black `width × height` image (no pixel to sample, or none to
/// fill). Pillow raises `ValueError("height and width must be > 0")` for a 0-px target instead;
/// callers that follow GLIP refuse such sizes first (see [`check_target`]).
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (img.width as usize, img.height as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        return RgbImage {
            width,
            height,
            data: vec![0; out_w * out_h * 3],
        };
    }
    let need_horizontal = out_w != in_w;
    let need_vertical = out_h != in_h;
    let vertical_first = need_horizontal
        && need_vertical
        && in_h > out_h
        && (in_h - out_h) as i64 > 2 * (in_w as i64 - out_w as i64);
    let data = if vertical_first {
        let rows = vertical_pass(&img.data, in_w, &taps(in_h, out_h));
        horizontal_pass(&rows, in_w, out_h, 0, &taps(in_w, out_w))
    } else if need_horizontal && need_vertical {
        let vert = taps(in_h, out_h);
        // Only the rows the vertical pass reads (Pillow's ybox_first..ybox_last).
        let first = vert.bounds.first().map_or(0, |b| b.0);
        let last = vert.bounds.last().map_or(0, |b| b.0 + b.1);
        let rows = horizontal_pass(&img.data, in_w, last - first, first, &taps(in_w, out_w));
        let vert = Taps {
            bounds: vert.bounds.iter().map(|&(s, n)| (s - first, n)).collect(),
            ..vert
        };
        vertical_pass(&rows, out_w, &vert)
    } else if need_horizontal {
        horizontal_pass(&img.data, in_w, in_h, 0, &taps(in_w, out_w))
    } else if need_vertical {
        vertical_pass(&img.data, in_w, &taps(in_h, out_h))
    } else {
        img.data.clone()
    };
    RgbImage {
        width,
        height,
        data,
    }
}

/// torch's `interpolate(mode="bilinear", antialias=True, align_corners=False)` on a uint8 image
/// to `width × height` (what torchvision's `resize(..., BILINEAR, antialias=True)` runs on a
/// uint8 tensor): Pillow's filter and ranges with torch's int16 fixed-point weights
/// ([`Fixed::Torch`]), always the horizontal pass first, each pass rounded to uint8. Both sides
/// of `img` and of the target must be at least 1 px (a 0-px side gives a black image).
pub fn resize_bilinear_torch(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (img.width as usize, img.height as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        return RgbImage {
            width,
            height,
            data: vec![0; out_w * out_h * 3],
        };
    }
    let mut data = if out_w != in_w {
        horizontal_pass(
            &img.data,
            in_w,
            in_h,
            0,
            &taps_fixed(in_w, out_w, Fixed::Torch),
        )
    } else {
        img.data.clone()
    };
    if out_h != in_h {
        data = vertical_pass(&data, out_w, &taps_fixed(in_h, out_h, Fixed::Torch));
    }
    RgbImage {
        width,
        height,
        data,
    }
}

/// Resamples `rows` rows of `src` (row width `in_w`), starting at row `first`, to the width
/// of `taps`.
fn horizontal_pass(src: &[u8], in_w: usize, rows: usize, first: usize, taps: &Taps) -> Vec<u8> {
    let out_w = taps.bounds.len();
    let mut out = vec![0u8; out_w * 3 * rows];
    for (r, out_row) in out.chunks_exact_mut(out_w * 3).enumerate() {
        let in_row = &src[(first + r) * in_w * 3..(first + r + 1) * in_w * 3];
        for (xx, px) in out_row.chunks_exact_mut(3).enumerate() {
            let (xmin, n) = taps.bounds[xx];
            let k = &taps.weights[xx * taps.ksize..xx * taps.ksize + n];
            let pixels = &in_row[xmin * 3..(xmin + n) * 3];
            let h = half(taps.bits);
            let (mut r, mut g, mut b) = (h, h, h);
            for (&w, s) in k.iter().zip(pixels.chunks_exact(3)) {
                r += s[0] as i32 * w;
                g += s[1] as i32 * w;
                b += s[2] as i32 * w;
            }
            px[0] = clip8(r, taps.bits);
            px[1] = clip8(g, taps.bits);
            px[2] = clip8(b, taps.bits);
        }
    }
    out
}

/// Resamples the rows of `src` (row width `width`) to the height of `taps`.
fn vertical_pass(src: &[u8], width: usize, taps: &Taps) -> Vec<u8> {
    let stride = width * 3;
    let out_h = taps.bounds.len();
    let mut out = vec![0u8; stride * out_h];
    let mut acc = vec![0i32; stride];
    for (yy, out_row) in out.chunks_exact_mut(stride).enumerate() {
        let (ymin, n) = taps.bounds[yy];
        let k = &taps.weights[yy * taps.ksize..yy * taps.ksize + n];
        acc.fill(half(taps.bits));
        for (y, &w) in k.iter().enumerate() {
            let row = &src[(ymin + y) * stride..(ymin + y + 1) * stride];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v as i32 * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a, taps.bits);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glip_size_follows_get_size() {
        assert_eq!(glip_size(640, 480, 800, 1333), (1066, 800));
        assert_eq!(glip_size(768, 1024, 800, 1333), (800, 1066));
        assert_eq!(glip_size(416, 416, 800, 1333), (800, 800));
        assert_eq!(glip_size(800, 600, 800, 1333), (1066, 800));
        // Too wide: the short side becomes round(1333 * 100 / 1000) = round(133.3) = 133.
        assert_eq!(glip_size(1000, 100, 800, 1333), (1330, 133));
        // Short side already at size: unchanged.
        assert_eq!(glip_size(1200, 800, 800, 1333), (1200, 800));
        // Ties round to even: 1333 * 3 / 26 = 153.807..; 1333 * 1 / 2 = 666.5 -> 666.
        assert_eq!(glip_size(2, 1, 800, 1333), (1332, 666));
    }

    #[test]
    fn same_size_is_a_copy_and_constant_images_stay_constant() {
        let img = RgbImage {
            width: 7,
            height: 5,
            data: (0..105).map(|i| (i * 37 % 256) as u8).collect(),
        };
        assert_eq!(resize_bilinear(&img, 7, 5), img);
        let flat = RgbImage {
            width: 9,
            height: 4,
            data: vec![200; 108],
        };
        let out = resize_bilinear(&flat, 23, 3);
        assert!(out.data.iter().all(|&v| v == 200));
    }

    /// Defect 1 of issue 12: a side resized to 0 px (a 1x400 image at the demo model's sizes)
    /// made `taps` overflow its capacity; now an empty image, and `check_target` refuses it.
    #[test]
    fn zero_sized_sides_do_not_panic() {
        let thin = RgbImage {
            width: 1,
            height: 400,
            data: vec![9; 1200],
        };
        let (w, h) = glip_size(1, 400, 192, 192);
        assert_eq!((w, h), (0, 0));
        assert!(check_target(w, h).is_err());
        assert!(check_target(1, 1).is_ok());
        let out = resize_bilinear(&thin, w, h);
        assert_eq!((out.width, out.height, out.data.len()), (0, 0, 0));
        let out = resize_bilinear(&thin, 0, 5);
        assert_eq!((out.width, out.height, out.data.len()), (0, 5, 0));
        let empty = RgbImage {
            width: 0,
            height: 3,
            data: Vec::new(),
        };
        assert_eq!(resize_bilinear(&empty, 2, 2).data, vec![0; 12]);
    }

    #[test]
    fn torch_weights_are_int16_with_the_most_bits_that_fit() {
        for (i, o) in [(10, 3), (3, 10), (1000, 800), (640, 1066), (5, 5)] {
            let t = taps_fixed(i, o, Fixed::Torch);
            let max = *t.weights.iter().max().unwrap();
            assert!(max < 1 << 15 && 2 * max >= 1 << 14, "{i}->{o}: {max}");
            for xx in 0..o {
                let s: i32 = t.weights[xx * t.ksize..(xx + 1) * t.ksize].iter().sum();
                assert!((s - (1 << t.bits)).abs() <= t.ksize as i32, "{i}->{o}");
            }
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(10, 3), (3, 10), (1000, 800), (640, 1066)] {
            let t = taps(i, o);
            for xx in 0..o {
                let s: i32 = t.weights[xx * t.ksize..(xx + 1) * t.ksize].iter().sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= t.ksize as i32,
                    "{i}->{o}"
                );
            }
        }
    }
}

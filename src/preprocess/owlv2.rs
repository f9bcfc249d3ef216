//! OWLv2's image pre-processing, as transformers' `Owlv2ImageProcessor` (torchvision backend)
//! does it and an OWLv2 model.json states it (`scripts/owlv2_export/model_json.py`): samples
//! ÷ 255, zero padding bottom/right to a square, a Gaussian anti-aliasing blur when the square
//! is larger than the model's input, bilinear resize (half-pixel centres, no antialias) to the
//! input size, then `(x - mean) / std` per RGB channel, into a CHW f32 buffer. Every step is in
//! f32 as torch computes it; the blur is applied as two 1-D passes where torchvision convolves
//! with their outer product (the same sums in another order).
use super::image::RgbImage;
use anyhow::{bail, Result};

/// `img` pre-processed for an OWLv2 graph of input `size` × `size`: CHW, RGB, f32.
pub fn owlv2_pixels(img: &RgbImage, size: u32, mean: [f32; 3], std: [f32; 3]) -> Result<Vec<f32>> {
    if img.width == 0 || img.height == 0 || size == 0 {
        bail!(
            "cannot pre-process a {}x{} image to {size}x{size}",
            img.width,
            img.height
        );
    }
    let side = img.width.max(img.height) as usize;
    let (w, h) = (img.width as usize, img.height as usize);
    let scale = 1.0f32 / 255.0;
    // Rescaled and zero-padded to side x side.
    let mut planes = vec![0f32; 3 * side * side];
    for y in 0..h {
        let row = &img.data[y * w * 3..(y + 1) * w * 3];
        for (x, px) in row.chunks_exact(3).enumerate() {
            for c in 0..3 {
                planes[c * side * side + y * side + x] = px[c] as f32 * scale;
            }
        }
    }
    // torch: factors = side / size (float32); sigma = clamp((factors - 1) / 2, min=0).
    let sigma = ((side as f32 / size as f32 - 1.0) / 2.0).max(0.0);
    if sigma > 0.0 {
        let taps = gaussian_taps(sigma);
        for plane in planes.chunks_exact_mut(side * side) {
            blur(plane, side, &taps);
        }
    }
    let n = size as usize;
    let mut out = vec![0f32; 3 * n * n];
    let xs = bilinear_taps(side, n);
    for c in 0..3 {
        let src = &planes[c * side * side..(c + 1) * side * side];
        let dst = &mut out[c * n * n..(c + 1) * n * n];
        for (oy, &(y0, y1, ly0, ly1)) in xs.iter().enumerate() {
            let (r0, r1) = (
                &src[y0 * side..(y0 + 1) * side],
                &src[y1 * side..(y1 + 1) * side],
            );
            for (ox, &(x0, x1, lx0, lx1)) in xs.iter().enumerate() {
                let v = ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]);
                dst[oy * n + ox] = (v - mean[c]) / std[c];
            }
        }
    }
    Ok(out)
}

/// torchvision's `_get_gaussian_kernel1d(2·ceil(3σ)+1, σ)`: softmax of -(t/σ)², t evenly spaced
/// over ±(k-1)/(2√2), i.e. exp(-½(i/σ)²) for i = -(k-1)/2..(k-1)/2, normalised.
fn gaussian_taps(sigma: f32) -> Vec<f32> {
    let k = 2 * (3.0 * sigma).ceil() as usize + 1;
    let lim = (k - 1) as f64 / (2.0 * std::f64::consts::SQRT_2);
    let x: Vec<f64> = (0..k)
        .map(|i| {
            let t = if k == 1 {
                -lim
            } else {
                -lim + 2.0 * lim * i as f64 / (k - 1) as f64
            };
            (t / sigma as f64).powi(2)
        })
        .collect();
    let m = x.iter().cloned().fold(f64::INFINITY, f64::min);
    let e: Vec<f64> = x.iter().map(|v| (m - v).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| (v / sum) as f32).collect()
}

/// Index `i` of a side of `len` samples reflected at the borders (torch's "reflect" padding,
/// the border sample not repeated).
fn reflect(i: isize, len: usize) -> usize {
    let n = len as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut j = i.rem_euclid(period);
    if j >= n {
        j = period - j;
    }
    j as usize
}

/// The separable Gaussian blur of a `side` × `side` plane, in place: rows, then columns.
fn blur(plane: &mut [f32], side: usize, taps: &[f32]) {
    let r = (taps.len() / 2) as isize;
    let mut tmp = vec![0f32; side];
    for y in 0..side {
        let row = &mut plane[y * side..(y + 1) * side];
        for (x, t) in tmp.iter_mut().enumerate() {
            *t = taps
                .iter()
                .enumerate()
                .map(|(k, w)| w * row[reflect(x as isize + k as isize - r, side)])
                .sum();
        }
        row.copy_from_slice(&tmp);
    }
    let mut col = vec![0f32; side];
    for x in 0..side {
        for (y, c) in col.iter_mut().enumerate() {
            *c = plane[y * side + x];
        }
        for (y, t) in tmp.iter_mut().enumerate() {
            *t = taps
                .iter()
                .enumerate()
                .map(|(k, w)| w * col[reflect(y as isize + k as isize - r, side)])
                .sum();
        }
        for (y, t) in tmp.iter().enumerate() {
            plane[y * side + x] = *t;
        }
    }
}

/// For each of `out` output samples of a bilinear resize from `len` samples (torch's
/// `upsample_bilinear2d`, align_corners=False): the two source indices and their weights.
fn bilinear_taps(len: usize, out: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = len as f32 / out as f32;
    (0..out)
        .map(|i| {
            let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
            let i0 = src as usize;
            let i1 = if i0 + 1 < len { i0 + 1 } else { i0 };
            let l1 = src - i0 as f32;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_are_a_normalised_gaussian() {
        let t = gaussian_taps(1.0);
        assert_eq!(t.len(), 7);
        assert!((t.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((t[3] / t[4] - (0.5f32).exp()).abs() < 1e-5);
    }

    #[test]
    fn reflect_does_not_repeat_the_border() {
        let got: Vec<usize> = (-3..8).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = RgbImage {
            width: 30,
            height: 30,
            data: vec![51; 30 * 30 * 3],
        };
        let out = owlv2_pixels(&img, 16, [0.0; 3], [1.0; 3]).unwrap();
        assert!(out.iter().all(|v| (v - 0.2).abs() < 1e-6));
    }
}

//! GLIP's pixel transform: `ToTensor` then `Normalize(format='bgr255')`, into a CHW f32 buffer
//! in BGR order.
use super::image::RgbImage;

/// GLIP's `INPUT.PIXEL_MEAN` and `INPUT.PIXEL_STD`, BGR order, 0–255 scale.
pub const PIXEL_MEAN: [f32; 3] = [103.530, 116.280, 123.675];
pub const PIXEL_STD: [f32; 3] = [57.375, 57.120, 58.395];

/// The normalised value of one 8-bit sample of BGR channel `c`, with torch's float32 steps:
/// `v / 255` (ToTensor), `· 255` (bgr255), `- mean`, `/ std`.
#[inline]
pub fn normalized(v: u8, c: usize) -> f32 {
    (v as f32 / 255.0 * 255.0 - PIXEL_MEAN[c]) / PIXEL_STD[c]
}

/// Writes `img` normalised into the top-left corner of a CHW plane set `out` of `3 × height ×
/// width` (`width`, `height` ≥ the image's; the rest is left as it is).
pub fn normalize_into(img: &RgbImage, out: &mut [f32], width: usize, height: usize) {
    assert!(img.width as usize <= width && img.height as usize <= height);
    assert_eq!(out.len(), 3 * width * height);
    // One lookup table per channel: 256 values instead of a division per sample.
    let lut: Vec<[f32; 256]> = (0..3)
        .map(|c| std::array::from_fn(|v| normalized(v as u8, c)))
        .collect();
    let iw = img.width as usize;
    let plane = width * height;
    for (y, row) in img.data.chunks_exact(iw * 3).enumerate() {
        for bgr in 0..3 {
            let rgb = 2 - bgr;
            let dst = &mut out[bgr * plane + y * width..bgr * plane + y * width + iw];
            for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                *d = lut[bgr][px[rgb] as usize];
            }
        }
    }
}

/// `img` normalised, CHW BGR, unpadded.
pub fn normalize(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut out = vec![0f32; 3 * w * h];
    normalize_into(img, &mut out, w, h);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_reordered_to_bgr() {
        let img = RgbImage {
            width: 1,
            height: 1,
            data: vec![10, 20, 30],
        };
        let t = normalize(&img);
        assert_eq!(t[0], normalized(30, 0));
        assert_eq!(t[2], normalized(10, 2));
        assert!((t[0] - (30.0 - 103.53) / 57.375).abs() < 1e-6);
    }
}

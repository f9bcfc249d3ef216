//! Grounding DINO's image pre-processing, as transformers' `GroundingDinoImageProcessor`
//! (torchvision backend) does it and a Grounding DINO model.json states it
//! (`scripts/grounding_dino_export/model_json.py`): the output size of
//! `get_size_with_aspect_ratio(shortest_edge, longest_edge)`, torch's antialiased bilinear resize
//! of the uint8 image ([`resize_bilinear_torch`]), `(x / 255 - mean) / std` per RGB channel in
//! f32, zero padding bottom/right to the model's fixed canvas, and the pixel mask (1 on the image).
use super::image::RgbImage;
use super::resize::resize_bilinear_torch;
use anyhow::{bail, Result};

/// The settings of model.json's `preprocess` this step uses.
#[derive(Clone, Copy, Debug)]
pub struct GdinoPreprocess {
    /// `[H, W]` of the image graph's input.
    pub canvas: [u32; 2],
    pub shortest_edge: u32,
    pub longest_edge: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// One image on the canvas: CHW f32 `pixels` [3, H, W], `mask` [H, W], and the resized image's
/// `(width, height)` (what the boxes are relative to).
#[derive(Clone, Debug)]
pub struct GdinoPixels {
    pub pixels: Vec<f32>,
    pub mask: Vec<i64>,
    pub resized: (u32, u32),
}

/// transformers' `get_size_with_aspect_ratio((height, width), shortest, longest)` as `(width,
/// height)`: the short side becomes `shortest`, unless the long side would then pass `longest`,
/// in which case the short side becomes `round(raw)`, `raw = longest · short / long` (ties to
/// even), and the long side `int(raw · long / short)`; an image whose short side already has
/// that size keeps its size. Unlike GLIP's rule, the long side is scaled by the unrounded `raw`.
pub fn gdino_size(width: u32, height: u32, shortest: u32, longest: u32) -> (u32, u32) {
    let (w, h) = (width as f64, height as f64);
    let (short, long) = (w.min(h), w.max(h));
    let mut size = shortest as f64;
    let mut raw = None;
    if long / short * size > longest as f64 {
        let r = longest as f64 * short / long;
        size = r.round_ties_even();
        raw = Some(r);
    }
    let s = size as u32;
    if (height <= width && height == s) || (width <= height && width == s) {
        return (width, height);
    }
    let scale = raw.unwrap_or(size);
    if width < height {
        (s, (scale * h / w) as u32)
    } else {
        ((scale * w / h) as u32, s)
    }
}

/// `img` pre-processed for the image graph: resized, normalised and padded to the canvas. An
/// image that resizes past the canvas or to a 0-px side is refused.
pub fn gdino_pixels(img: &RgbImage, pre: &GdinoPreprocess) -> Result<GdinoPixels> {
    let (w, h) = gdino_size(img.width, img.height, pre.shortest_edge, pre.longest_edge);
    let [ch, cw] = pre.canvas;
    if img.width == 0 || img.height == 0 || w == 0 || h == 0 {
        bail!(
            "a {}x{} image resizes to {w}x{h}: a 0-px side",
            img.width,
            img.height
        );
    }
    if w > cw || h > ch {
        bail!(
            "a {}x{} image resizes to {w}x{h}, larger than the model's {ch}x{cw} canvas \
             (export the model with a larger --canvas)",
            img.width,
            img.height
        );
    }
    let resized = resize_bilinear_torch(img, w, h);
    let (cw, ch, w, h) = (cw as usize, ch as usize, w as usize, h as usize);
    let mut pixels = vec![0f32; 3 * ch * cw];
    let mut mask = vec![0i64; ch * cw];
    for y in 0..h {
        let row = &resized.data[y * w * 3..(y + 1) * w * 3];
        for (x, px) in row.chunks_exact(3).enumerate() {
            for c in 0..3 {
                let v = px[c] as f32 / 255.0;
                pixels[c * ch * cw + y * cw + x] = (v - pre.mean[c]) / pre.std[c];
            }
        }
        mask[y * cw..y * cw + w].fill(1);
    }
    Ok(GdinoPixels {
        pixels,
        mask,
        resized: (w as u32, h as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rule_scales_the_long_side_by_the_unrounded_short_side() {
        assert_eq!(gdino_size(640, 480, 800, 1333), (1066, 800));
        assert_eq!(gdino_size(480, 640, 800, 1333), (800, 1066));
        assert_eq!(gdino_size(416, 416, 800, 1333), (800, 800));
        // Short side already at size: unchanged.
        assert_eq!(gdino_size(1200, 800, 800, 1333), (1200, 800));
        // Too wide: raw = 1333 * 100 / 1000 = 133.3 -> 133; long = int(133.3 * 10) = 1333
        // (GLIP's rule gives 1330).
        assert_eq!(gdino_size(1000, 100, 800, 1333), (1333, 133));
        // Ties to even: raw = 1333 / 2 = 666.5 -> 666; long = int(666.5 * 2) = 1333.
        assert_eq!(gdino_size(2, 1, 800, 1333), (1333, 666));
        assert_eq!(gdino_size(150, 100, 96, 160), (144, 96));
    }

    #[test]
    fn pads_with_zero_and_masks_the_image() {
        let img = RgbImage {
            width: 4,
            height: 2,
            data: vec![51; 4 * 2 * 3],
        };
        let pre = GdinoPreprocess {
            canvas: [6, 10],
            shortest_edge: 4,
            longest_edge: 8,
            mean: [0.1; 3],
            std: [0.5; 3],
        };
        let out = gdino_pixels(&img, &pre).unwrap();
        assert_eq!(out.resized, (8, 4));
        assert_eq!(out.mask.iter().sum::<i64>(), 32);
        assert!((out.pixels[0] - 0.2).abs() < 1e-6);
        assert_eq!(out.pixels[9], 0.0);
        let small = GdinoPreprocess {
            canvas: [4, 4],
            ..pre
        };
        assert!(gdino_pixels(&img, &small).is_err());
    }
}

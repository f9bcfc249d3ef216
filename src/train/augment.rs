//! GLIP's training augmentation (protocol §8.1): a short side drawn with `random.choice` from
//! `AUGMENT.MULT_MIN_SIZE_TRAIN` (480…800, scaled here to the model's input size), the usual
//! resize rule with the model's max size, then a horizontal flip with probability 0.5
//! (`random.random() < 0.5`), in that order, from a seeded CPython-exact RNG.
//!
//! Boxes follow `BoxList` exactly: COCO `xywh` → "+1" `xyxy` (`x2 = x + max(w − 1, 0)`), f32;
//! `clip_to_image(remove_empty=True)` in the original image (as `CocoGrounding` does before the
//! transforms); `resize` (× the f32 ratio); `transpose(FLIP_LEFT_RIGHT)`
//! (`x1' = W − x2 − 1`). The image goes through the inference pre-processing (Pillow bilinear
//! resize, BGR 0–255 normalisation, zero padding at the bottom/right into a canvas: the
//! batch's canvas, [`batch_canvas`], with a dynamic-canvas model and training graphs, the
//! model's fixed `input_size` otherwise), with the resized pixels mirrored when flipped, so with
//! `min_size` = the model's and no flip the training input is the inference input.
use super::targets::prepare_gt;
use crate::model::spec::Preprocess;
use crate::model::ModelSpec;
use crate::preprocess::normalize::normalize_into;
use crate::preprocess::{glip_size, resize_bilinear, RgbImage};
use crate::util::rng::PyRandom;
use anyhow::{bail, Result};

/// GLIP's `AUGMENT.MULT_MIN_SIZE_TRAIN` for an 800-pixel model.
pub const GLIP_TRAIN_SCALES: [u32; 5] = [480, 560, 640, 720, 800];
/// The test-time short side those scales are relative to.
pub const GLIP_MIN_SIZE: u32 = 800;
/// `AUGMENT.FLIP_PROB_TRAIN`.
pub const FLIP_PROB: f64 = 0.5;

/// The two draws augmentation needs, as CPython's `random.Random` makes them.
pub trait RngLike {
    /// `_randbelow(n)`: uniform in `[0, n)`.
    fn randbelow(&mut self, n: u64) -> u64;
    /// `random()`: uniform in `[0, 1)`.
    fn random(&mut self) -> f64;
}

impl RngLike for PyRandom {
    fn randbelow(&mut self, n: u64) -> u64 {
        PyRandom::randbelow(self, n)
    }
    fn random(&mut self) -> f64 {
        PyRandom::random(self)
    }
}

/// One image's augmentation: the short side to resize to, and whether to mirror.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AugmentPlan {
    pub min_size: u32,
    pub flip: bool,
}

/// Draws a plan as GLIP's transforms do: `random.choice(scales)` (`Resize.get_size`), then
/// `random.random() < 0.5` (`RandomHorizontalFlip`). `scales` must not be empty
/// ([`train_scales`] never is).
pub fn plan(rng: &mut impl RngLike, scales: &[u32]) -> AugmentPlan {
    assert!(!scales.is_empty(), "augmentation needs at least one scale");
    let min_size = scales[rng.randbelow(scales.len() as u64) as usize];
    let flip = rng.random() < FLIP_PROB;
    AugmentPlan { min_size, flip }
}

/// GLIP's training scales for a model whose test-time short side is `model_min_size`:
/// `round(s · model_min_size / 800)` (ties to even, at least 1). 800 gives GLIP's own list; the
/// demo's 192 gives 115, 134, 154, 173, 192.
pub fn train_scales(model_min_size: u32) -> Vec<u32> {
    GLIP_TRAIN_SCALES
        .iter()
        .map(|&s| {
            let v = (s as f64 * model_min_size as f64 / GLIP_MIN_SIZE as f64).round_ties_even();
            (v as u32).max(1)
        })
        .collect()
}

/// The resized (unpadded) `(width, height)` of an `orig_w × orig_h` image under `plan`.
pub fn resized_size(orig_w: u32, orig_h: u32, plan: &AugmentPlan, pre: &Preprocess) -> (u32, u32) {
    glip_size(orig_w, orig_h, plan.min_size, pre.resize.max_size)
}

/// COCO `xywh` boxes of an `orig_w × orig_h` image → "+1" `xyxy` in the resized
/// `new_w × new_h` image, mirrored if `flip`; boxes that are empty after clipping to the
/// original image are dropped. See [`transform_boxes_kept`] for which ones remain.
pub fn transform_boxes(
    boxes_xywh: &[[f64; 4]],
    orig_w: u32,
    orig_h: u32,
    new_w: u32,
    new_h: u32,
    flip: bool,
) -> Vec<[f32; 4]> {
    transform_boxes_kept(boxes_xywh, orig_w, orig_h, new_w, new_h, flip).0
}

/// [`transform_boxes`], also returning the index into `boxes_xywh` of each kept box (use it to
/// pair boxes with their categories / token rows).
pub fn transform_boxes_kept(
    boxes_xywh: &[[f64; 4]],
    orig_w: u32,
    orig_h: u32,
    new_w: u32,
    new_h: u32,
    flip: bool,
) -> (Vec<[f32; 4]>, Vec<usize>) {
    let xyxy: Vec<[f32; 4]> = boxes_xywh.iter().map(|b| xywh_to_xyxy(*b)).collect();
    let (clipped, kept) = prepare_gt(&xyxy, orig_w, orig_h);
    // BoxList.resize multiplies the f32 boxes by the f64 ratio rounded to f32.
    let rw = (new_w as f64 / orig_w as f64) as f32;
    let rh = (new_h as f64 / orig_h as f64) as f32;
    let w = new_w as f32;
    let out = clipped
        .into_iter()
        .map(|b| {
            let r = [b[0] * rw, b[1] * rh, b[2] * rw, b[3] * rh];
            if flip {
                [w - r[2] - 1.0, r[1], w - r[0] - 1.0, r[3]]
            } else {
                r
            }
        })
        .collect();
    (out, kept)
}

/// `BoxList(xywh).convert("xyxy")` on f32 values: `x2 = x + max(w − 1, 0)` (NaN stays NaN).
fn xywh_to_xyxy(b: [f64; 4]) -> [f32; 4] {
    let [x, y, w, h] = b.map(|v| v as f32);
    let keep_nan_max0 = |v: f32| if v < 0.0 { 0.0 } else { v };
    [x, y, x + keep_nan_max0(w - 1.0), y + keep_nan_max0(h - 1.0)]
}

/// The image mirrored left–right (`F.hflip`).
pub fn flip_image(img: &RgbImage) -> RgbImage {
    let row = img.width as usize * 3;
    let mut data = Vec::with_capacity(img.data.len());
    for src in img.data.chunks_exact(row.max(1)) {
        data.extend(src.chunks_exact(3).rev().flatten());
    }
    RgbImage {
        width: img.width,
        height: img.height,
        data,
    }
}

/// The resized (and mirrored) 8-bit image of `plan`, before normalisation.
pub fn augment_rgb(img: &RgbImage, plan: &AugmentPlan, pre: &Preprocess) -> RgbImage {
    let (w, h) = resized_size(img.width, img.height, plan, pre);
    let resized = if (w, h) == (img.width, img.height) {
        img.clone()
    } else {
        resize_bilinear(img, w, h)
    };
    if plan.flip {
        flip_image(&resized)
    } else {
        resized
    }
}

/// The canvas `(width, height)` of a training batch whose images resize to `sizes`
/// (`(width, height)` each): GLIP's `to_image_list(size_divisible=32)`, the largest width and
/// the largest height of the batch, each rounded up to the model's size divisibility
/// ([`ModelSpec::canvas`], the rule eval's per-image canvases use). `None` when `sizes` is empty.
pub fn batch_canvas(spec: &ModelSpec, sizes: &[(u32, u32)]) -> Option<(u32, u32)> {
    let w = sizes.iter().map(|s| s.0).max()?;
    let h = sizes.iter().map(|s| s.1).max()?;
    Some(spec.canvas(w, h))
}

/// One augmented image in the model's canvas: `[3, H, W]` f32, BGR, zero-padded.
#[derive(Clone, Debug, PartialEq)]
pub struct AugmentedImage {
    pub data: Vec<f32>,
    /// The resized, unpadded `(width, height)`.
    pub resized: (u32, u32),
}

/// Resizes, mirrors, normalises and pads `img` into a fresh `[3, H, W]` canvas of
/// `pre.input_size`.
pub fn apply_image(img: &RgbImage, plan: &AugmentPlan, pre: &Preprocess) -> Result<AugmentedImage> {
    let [h, w] = pre.input_size;
    let mut data = vec![0f32; 3 * h as usize * w as usize];
    let resized = apply_image_into(img, plan, pre, &mut data)?;
    Ok(AugmentedImage { data, resized })
}

/// Resizes, mirrors, normalises and pads `img` into a fresh `[3, H, W]` canvas of
/// `canvas` = `(W, H)`.
pub fn apply_image_on(
    img: &RgbImage,
    plan: &AugmentPlan,
    pre: &Preprocess,
    canvas: (u32, u32),
) -> Result<AugmentedImage> {
    let (w, h) = canvas;
    let mut data = vec![0f32; 3 * h as usize * w as usize];
    let resized = apply_image_into_canvas(img, plan, pre, canvas, &mut data)?;
    Ok(AugmentedImage { data, resized })
}

/// [`apply_image`] into `out` (`3·H·W` values, e.g. one item of a batch, fully overwritten).
/// Returns the resized `(width, height)`. Errors if the resized image does not fit the canvas.
pub fn apply_image_into(
    img: &RgbImage,
    plan: &AugmentPlan,
    pre: &Preprocess,
    out: &mut [f32],
) -> Result<(u32, u32)> {
    let [h, w] = pre.input_size;
    apply_image_into_canvas(img, plan, pre, (w, h), out)
}

/// [`apply_image_into`] on a `(width, height)` canvas.
pub fn apply_image_into_canvas(
    img: &RgbImage,
    plan: &AugmentPlan,
    pre: &Preprocess,
    canvas: (u32, u32),
    out: &mut [f32],
) -> Result<(u32, u32)> {
    let (cw, ch) = canvas;
    let (w, h) = resized_size(img.width, img.height, plan, pre);
    if w > cw || h > ch || w == 0 || h == 0 {
        bail!(
            "a {}x{} image resizes to {w}x{h} at short side {}, which does not fit the {cw}x{ch} canvas",
            img.width,
            img.height,
            plan.min_size
        );
    }
    let plane = 3 * ch as usize * cw as usize;
    if out.len() != plane {
        bail!(
            "the output buffer holds {} values; a 3x{ch}x{cw} image needs {plane}",
            out.len()
        );
    }
    let aug = augment_rgb(img, plan, pre);
    out.fill(0.0);
    normalize_into(&aug, out, cw as usize, ch as usize);
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::Resize;

    fn pre(size: u32, max: u32) -> Preprocess {
        Preprocess {
            input_size: [size, size],
            resize: Resize {
                min_size: size,
                max_size: max,
            },
            mean: [103.53, 116.28, 123.675],
            std: [57.375, 57.12, 58.395],
            size_divisibility: 32,
            canvas: None,
        }
    }

    #[test]
    fn scales_follow_glip_relative_to_the_model() {
        assert_eq!(train_scales(800), GLIP_TRAIN_SCALES);
        assert_eq!(train_scales(192), [115, 134, 154, 173, 192]);
        assert_eq!(train_scales(1), [1, 1, 1, 1, 1]);
    }

    #[test]
    fn boxes_by_hand() {
        // 200x100 image resized to 100x50 (ratio 0.5); box x=10 y=20 w=30 h=40.
        let b = [[10.0, 20.0, 30.0, 40.0]];
        assert_eq!(
            transform_boxes(&b, 200, 100, 100, 50, false),
            [[5.0, 10.0, 19.5, 29.5]]
        );
        // Flipped in the 100-wide image: x1 = 100 - 19.5 - 1, x2 = 100 - 5 - 1.
        assert_eq!(
            transform_boxes(&b, 200, 100, 100, 50, true),
            [[79.5, 10.0, 94.0, 29.5]]
        );
        // Clipped to the original image first (x2 = 250 -> 199), then scaled.
        let wide = [[150.0, 0.0, 101.0, 0.5], [-10.0, -10.0, 30.0, 30.0]];
        let (out, kept) = transform_boxes_kept(&wide, 200, 100, 100, 50, false);
        // The first box has h = 0.5: y2 = y1 + max(-0.5, 0) = y1, empty, dropped.
        assert_eq!(kept, [1]);
        assert_eq!(out, [[0.0, 0.0, 9.5, 9.5]]);
    }

    #[test]
    fn flipping_twice_is_the_identity() {
        let img = RgbImage {
            width: 5,
            height: 3,
            data: (0..45).map(|i| (i * 17 % 256) as u8).collect(),
        };
        let f = flip_image(&img);
        assert_ne!(f, img);
        assert_eq!(f.pixel(0, 1), img.pixel(4, 1));
        assert_eq!(flip_image(&f), img);
        let b = [[1.0, 0.0, 2.0, 3.0], [0.0, 1.0, 5.0, 1.0]];
        let once = transform_boxes(&b, 5, 3, 5, 3, true);
        let back: Vec<[f32; 4]> = once
            .iter()
            .map(|r| [5.0 - r[2] - 1.0, r[1], 5.0 - r[0] - 1.0, r[3]])
            .collect();
        assert_eq!(back, transform_boxes(&b, 5, 3, 5, 3, false));
    }

    #[test]
    fn same_seed_same_plans_and_every_choice_occurs() {
        let scales = train_scales(192);
        let draw = |seed: u64| {
            let mut rng = PyRandom::new(&seed.into());
            (0..200)
                .map(|_| plan(&mut rng, &scales))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        for s in &scales {
            assert!(a.iter().any(|p| p.min_size == *s));
        }
        let flips = a.iter().filter(|p| p.flip).count();
        assert!((60..140).contains(&flips), "{flips} flips in 200");
    }

    #[test]
    fn canvas_errors_are_reported() {
        let img = RgbImage {
            width: 300,
            height: 10,
            data: vec![0; 9000],
        };
        let p = AugmentPlan {
            min_size: 192,
            flip: false,
        };
        assert!(apply_image(&img, &p, &pre(192, 1333)).is_err());
        let mut small = vec![0.0; 5];
        assert!(apply_image_into(&img, &p, &pre(192, 192), &mut small).is_err());
    }
}

//! One training batch on GLIP's training canvas, the part both fine-tuning backends share (the
//! step graphs' [`trainer`](super::trainer) and ONNX Runtime training's
//! [`ort_inputs`](super::ort_inputs)): the batch's canvas (`to_image_list(size_divisible=32)`:
//! the largest resized width and height, each rounded up to 32; the model's fixed `input_size`
//! for fixed-canvas graphs), each augmented image normalised and zero-padded on it, the anchor
//! grid of that canvas, each image's ATSS targets against it, and the targets of a batch as the
//! graphs' dense target tensors.
use super::augment::{self, AugmentPlan};
use super::dataset::Sample;
use super::targets::{self, ImageTargets};
use super::text::TaskText;
use crate::engine::Tensor;
use crate::model::ModelSpec;
use anyhow::{bail, Context, Result};

/// An anchor grid: anchors in the head's order and the anchor count of each level.
pub type Grid = (Vec<[f32; 4]>, Vec<usize>);

/// The names of the dense target inputs, in the graphs' order.
pub const TARGET_NAMES: [&str; 4] = [
    "positive",
    "reg_targets",
    "centerness_targets",
    "token_targets",
];

/// The anchor grid of a `(width, height)` canvas.
pub fn grid(spec: &ModelSpec, canvas: (u32, u32)) -> Grid {
    targets::anchor_grid(&spec.levels_for(canvas))
}

/// The model's fixed canvas `(width, height)` (`input_size`).
pub fn fixed_canvas(spec: &ModelSpec) -> (u32, u32) {
    let [h, w] = spec.preprocess.input_size;
    (w, h)
}

/// The canvas `(width, height)` of a training batch whose images resize to `sizes`
/// (`(width, height)` each): GLIP's `to_image_list(size_divisible=32)` when the graphs take a
/// dynamic canvas, else (or for an empty batch) the model's fixed canvas.
pub fn training_canvas(spec: &ModelSpec, sizes: &[(u32, u32)], dynamic: bool) -> (u32, u32) {
    if dynamic {
        augment::batch_canvas(spec, sizes).unwrap_or_else(|| fixed_canvas(spec))
    } else {
        fixed_canvas(spec)
    }
}

/// The normalised `[1,3,H,W]` image of `sample` under `plan` on `canvas` (`(W, H)`), and its
/// resized size.
pub fn canvas_image(
    spec: &ModelSpec,
    sample: &Sample,
    plan: &AugmentPlan,
    canvas: (u32, u32),
) -> Result<(Tensor, (u32, u32))> {
    let a = augment::apply_image_on(&sample.image, plan, &spec.preprocess, canvas)
        .with_context(|| format!("preparing {}", sample.file.display()))?;
    Ok((
        Tensor::F32 {
            shape: vec![1, 3, canvas.1 as usize, canvas.0 as usize],
            data: a.data,
        },
        a.resized,
    ))
}

/// The ATSS targets of `sample` under `plan` (resized to `resized`, `(W, H)`) against the
/// canvas's `grid`: its boxes resized and mirrored like the image, each matched box's token row
/// from `text`.
pub fn image_targets(
    spec: &ModelSpec,
    text: &TaskText,
    sample: &Sample,
    plan: &AugmentPlan,
    resized: (u32, u32),
    grid: &Grid,
) -> Result<ImageTargets> {
    let (boxes, kept) = augment::transform_boxes_kept(
        &sample.boxes,
        sample.image.width,
        sample.image.height,
        resized.0,
        resized.1,
        plan.flip,
    );
    let rows: Vec<Vec<f32>> = kept
        .iter()
        .map(|&k| text.token_rows[sample.classes[k]].clone())
        .collect();
    let (anchors, level_counts) = grid;
    targets::try_assign(anchors, level_counts, &boxes, &rows, spec.text.max_text_len)
        .with_context(|| format!("ATSS targets for {}", sample.file.display()))
}

/// The dense target tensors of a batch, named as [`TARGET_NAMES`]: positive `[B,Q]`,
/// reg_targets `[B,Q,4]`, centerness_targets `[B,Q]`, token_targets `[B,Q,T]`. Every image's
/// targets must be for the same `Q` anchors and `t` tokens.
pub fn target_tensors(targets: &[&ImageTargets], t: usize) -> Result<Vec<(String, Tensor)>> {
    let b = targets.len();
    let q = targets.first().map_or(0, |tg| tg.positive.len());
    let mut positive = Vec::with_capacity(b * q);
    let mut reg = Vec::with_capacity(b * q * 4);
    let mut ctr = Vec::with_capacity(b * q);
    let mut tokens = Vec::with_capacity(b * q * t);
    for tg in targets {
        if tg.positive.len() != q || tg.tokens.len() != q * t {
            bail!(
                "targets for {} anchors x {} tokens, the graphs have {q} x {t}",
                tg.positive.len(),
                tg.tokens.len() / tg.positive.len().max(1)
            );
        }
        positive.extend_from_slice(&tg.positive);
        reg.extend_from_slice(&tg.reg);
        ctr.extend_from_slice(&tg.centerness);
        tokens.extend_from_slice(&tg.tokens);
    }
    let shapes = [vec![b, q], vec![b, q, 4], vec![b, q], vec![b, q, t]];
    Ok(TARGET_NAMES
        .iter()
        .zip(shapes)
        .zip([positive, reg, ctr, tokens])
        .map(|((name, shape), data)| (name.to_string(), Tensor::F32 { shape, data }))
        .collect())
}

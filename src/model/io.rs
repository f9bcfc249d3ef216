//! What goes into and comes out of a model's graphs besides images: the caption's token ids
//! cut to the model's text length ([`model_tokens`]) and GLIP's post-processing of a batch of
//! head outputs on the model's anchor levels ([`postprocess_outputs`]). Zero-shot evaluation
//! (`pipeline`) and fine-tuning (`train`) both use them.
use super::ModelSpec;
use crate::engine::Tensor;
use crate::postprocess::{
    self, BoxLayout, ClassTokenMap, Detection, LevelOutputs, PostprocessConfig,
};
use crate::prompt::PositiveMap;
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;

/// The caption's token ids for a model that reads at most `max_text_len` tokens (truncated with
/// `[SEP]`, asked of `sep` only then, kept last) and each class's token positions among them.
pub fn model_tokens(
    map: &PositiveMap,
    max_text_len: usize,
    sep: impl FnOnce() -> Result<i64>,
) -> Result<(Vec<i64>, ClassTokenMap)> {
    let mut ids: Vec<i64> = map.token_ids.iter().map(|&i| i as i64).collect();
    if ids.len() > max_text_len {
        ids.truncate(max_text_len);
        let sep = sep()?;
        if let Some(last) = ids.last_mut() {
            *last = sep;
        }
    }
    let n = ids.len();
    let classes = ClassTokenMap {
        tokens: map
            .classes
            .iter()
            .map(|c| c.tokens.iter().copied().filter(|&t| t < n).collect())
            .collect(),
    };
    Ok((ids, classes))
}

/// GLIP's post-processing of one batch of head outputs (`box_deltas`, `centerness`,
/// `token_logits`, batch first) for images of the given resized `sizes` on a `(width, height)`
/// canvas (which sets the anchor grid); detections are in the resized image's pixels.
pub fn postprocess_outputs(
    spec: &ModelSpec,
    post: &PostprocessConfig,
    outputs: &[(String, Tensor)],
    sizes: &[(u32, u32)],
    canvas: (u32, u32),
    classes: &ClassTokenMap,
) -> Result<Vec<Vec<Detection>>> {
    let b = sizes.len();
    let get = |name: &str| -> Result<&Tensor> {
        outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| anyhow!("the head graph has no output {name}"))
    };
    let deltas = get("box_deltas")?.as_f32()?;
    let centerness = get("centerness")?.as_f32()?;
    let logits_t = get("token_logits")?;
    let t = *logits_t.shape().last().unwrap_or(&0);
    let logits = logits_t.as_f32()?;
    let levels = spec.levels_for(canvas);
    let q: usize = levels.iter().map(|l| l.count).sum();
    // The anchor count must be this canvas's; a graph may return more images than asked for
    // (the training graphs' fixed batch).
    let anchors_out = get("box_deltas")?.shape().get(1).copied();
    if anchors_out != Some(q)
        || deltas.len() < b * q * 4
        || centerness.len() < b * q
        || logits.len() < b * q * t
    {
        bail!(
            "head outputs have shapes {:?}, {:?}, {:?}; expected {b} images x {q} anchors (a {}x{} canvas)",
            get("box_deltas")?.shape(),
            get("centerness")?.shape(),
            logits_t.shape(),
            canvas.0,
            canvas.1
        );
    }
    // Images are independent: a batch's post-processing runs on the rayon pool (in order).
    (0..b)
        .into_par_iter()
        .map(|i| {
            let outs: Vec<LevelOutputs> = levels
                .iter()
                .map(|l| {
                    let a0 = i * q + l.offset;
                    let a1 = a0 + l.count;
                    LevelOutputs {
                        stride: l.stride,
                        height: l.height,
                        width: l.width,
                        bbox_pred: &deltas[4 * a0..4 * a1],
                        box_layout: BoxLayout::AnchorsFirst,
                        centerness: &centerness[a0..a1],
                        dot_product_logits: &logits[a0 * t..a1 * t],
                        num_tokens: t,
                    }
                })
                .collect();
            postprocess::postprocess_image(&outs, classes, sizes[i], post)
        })
        .collect::<Result<Vec<_>>>()
        .context("post-processing")
}

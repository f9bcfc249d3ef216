//! OWLv2's post-processing on the image_detector graph's outputs of one image (`logits` [P, Q],
//! `pred_boxes` [P, 4] cx, cy, w, h relative to the padded square), as an OWLv2 model.json
//! states it (`scripts/owlv2_export/model_json.py`):
//! - [`detections`]: transformers' `Owlv2ImageProcessor.post_process_object_detection`
//!   (sigmoid of the best query's logit, its index as label, xyxy × the padded side,
//!   `score > threshold`, patch order, no NMS), in f32 as torch computes it;
//! - [`ensemble_logits`]: the authors' evaluator's prompt ensemble (scenic `evaluator.py`: the
//!   mean of a class's template logits);
//! - [`evaluator_top_k`]: that evaluator's selection and boxes (`get_top_k` with
//!   `exclusive_classes=False`, `unpad_box`, `format_predictions`): the top k of all (patch,
//!   class) sigmoid scores, boxes clipped to the image, COCO `[x, y, w, h]`.
use anyhow::{bail, Result};

/// One detection of [`detections`]: transformers' `scores`, `labels`, `boxes` entries.
#[derive(Clone, Debug, PartialEq)]
pub struct OwlDetection {
    pub score: f32,
    /// The query (class) index.
    pub label: usize,
    /// `[x1, y1, x2, y2]` in pixels of the original image padded to a square; not clipped.
    pub xyxy: [f32; 4],
}

/// One entry of [`evaluator_top_k`].
#[derive(Clone, Debug, PartialEq)]
pub struct TopDetection {
    pub score: f32,
    pub class: usize,
    /// COCO `[x, y, w, h]` in pixels of the original image.
    pub bbox: [f64; 4],
}

fn check(logits: &[f32], boxes: &[f32], queries: usize) -> Result<usize> {
    if queries == 0 || logits.len() % queries != 0 {
        bail!(
            "{} logits are not patches x {queries} queries",
            logits.len()
        );
    }
    let patches = logits.len() / queries;
    if boxes.len() != patches * 4 {
        bail!(
            "{} box values for {patches} patches (expected {})",
            boxes.len(),
            patches * 4
        );
    }
    Ok(patches)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// transformers' `post_process_object_detection` for one image of `(width, height)`.
pub fn detections(
    logits: &[f32],
    boxes: &[f32],
    queries: usize,
    original: (u32, u32),
    threshold: f32,
) -> Result<Vec<OwlDetection>> {
    let patches = check(logits, boxes, queries)?;
    let side = original.0.max(original.1) as f32;
    let mut out = Vec::new();
    for p in 0..patches {
        let row = &logits[p * queries..(p + 1) * queries];
        // torch.max: the first index among equal maxima.
        let (label, best) =
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                });
        let score = sigmoid(best);
        if score > threshold {
            let b = &boxes[p * 4..p * 4 + 4];
            let (cx, cy, w, h) = (b[0], b[1], b[2], b[3]);
            let xyxy = [
                (cx - 0.5 * w) * side,
                (cy - 0.5 * h) * side,
                (cx + 0.5 * w) * side,
                (cy + 0.5 * h) * side,
            ];
            out.push(OwlDetection { score, label, xyxy });
        }
    }
    Ok(out)
}

/// Logits [P, templates · classes] of template-major queries (every class for template 0,
/// then template 1, ...) to [P, classes]: each class's mean over its templates.
pub fn ensemble_logits(logits: &[f32], templates: usize, classes: usize) -> Result<Vec<f32>> {
    let q = templates * classes;
    if q == 0 || logits.len() % q != 0 {
        bail!(
            "{} logits are not patches x {templates} templates x {classes} classes",
            logits.len()
        );
    }
    Ok(logits
        .chunks_exact(q)
        .flat_map(|row| {
            (0..classes).map(move |c| {
                (0..templates).map(|t| row[t * classes + c]).sum::<f32>() / templates as f32
            })
        })
        .collect())
}

/// The evaluator's `k` best (patch, class) pairs of one image of `(width, height)`, by
/// sigmoid score (ties: the lower flat index `patch · classes + class` first, as
/// `jax.lax.top_k`), each with its box unpadded (`box / (size / max side) + 1e-6`, clipped to
/// [0, 1]) and scaled to COCO `[x, y, w, h]` pixels.
pub fn evaluator_top_k(
    logits: &[f32],
    boxes: &[f32],
    classes: usize,
    original: (u32, u32),
    k: usize,
) -> Result<Vec<TopDetection>> {
    check(logits, boxes, classes)?;
    let scores: Vec<f32> = logits.iter().map(|&v| sigmoid(v)).collect();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let (w, h) = (original.0 as f64, original.1 as f64);
    let side = w.max(h);
    let frac = [w / side, h / side, w / side, h / side];
    Ok(order
        .into_iter()
        .take(k)
        .map(|i| {
            let (p, class) = (i / classes, i % classes);
            let b: [f64; 4] = std::array::from_fn(|j| {
                (boxes[p * 4 + j] as f64 / (frac[j] + 1e-6)).clamp(0.0, 1.0)
            });
            let (bx, by) = (b[0] - b[2] / 2.0, b[1] - b[3] / 2.0);
            TopDetection {
                score: scores[i],
                class,
                bbox: [bx * w, by * h, b[2] * w, b[3] * h],
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensemble_is_the_mean_over_templates() {
        // 1 patch, 2 templates, 3 classes.
        let got = ensemble_logits(&[1.0, 2.0, 3.0, 3.0, 4.0, 5.0], 2, 3).unwrap();
        assert_eq!(got, vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn ties_take_the_first_query_and_mismatched_shapes_are_refused() {
        let d = detections(&[2.0, 2.0], &[0.5, 0.5, 0.25, 0.5], 2, (100, 50), 0.5).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label, 0);
        assert_eq!(d[0].xyxy, [37.5, 25.0, 62.5, 75.0]);
        assert!(detections(&[1.0, 2.0, 3.0], &[0.0; 4], 2, (1, 1), 0.1).is_err());
        assert!(evaluator_top_k(&[1.0, 2.0], &[0.0; 8], 2, (1, 1), 5).is_err());
    }
}

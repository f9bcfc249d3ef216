//! Grounding DINO's post-processing of one image and one caption, as mmdetection's ODinW
//! evaluation does it (`GroundingDINOHead._predict_by_feat_single`, transcribed in
//! `scripts/grounding_dino_export/postprocess.py`, PROTOCOL.md §3): class score = the mean of
//! the sigmoids of its tokens' logits (0 for a class without tokens); the top `k` of all
//! (query, class) scores (ties: the lower flat index `query · classes + class` first); boxes
//! cx, cy, w, h → x1, y1, x2, y2 scaled by the resized image, clamped to it and divided by the
//! resize factor, as COCO `[x, y, w, h]` of the original image. With chunked captions each
//! chunk's detections get their class offset by the classes before the chunk
//! ([`GdinoDetection::class`] is the caller's to offset) and the lists are concatenated.
use anyhow::{bail, Result};

/// One detection of [`top_k`].
#[derive(Clone, Debug, PartialEq)]
pub struct GdinoDetection {
    pub score: f64,
    /// The class index within the caption.
    pub class: usize,
    /// COCO `[x, y, w, h]` in pixels of the original image.
    pub bbox: [f64; 4],
}

/// The image's outputs for one caption.
pub struct GdinoImageOutputs<'a> {
    /// `[Q, T]` token logits.
    pub logits: &'a [f32],
    /// `[Q, 4]` cx, cy, w, h relative to the resized image.
    pub boxes: &'a [f32],
    /// T, the logits' last axis.
    pub text_len: usize,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `[Q, K]` class scores (row-major): the mean over each class's tokens of sigmoid(logit).
pub fn class_scores(out: &GdinoImageOutputs, class_tokens: &[Vec<usize>]) -> Result<Vec<f64>> {
    let t = out.text_len;
    if t == 0 || out.logits.len() % t != 0 || out.boxes.len() != out.logits.len() / t * 4 {
        bail!(
            "{} logits and {} box values are not queries x {t} tokens and queries x 4",
            out.logits.len(),
            out.boxes.len()
        );
    }
    if let Some(bad) = class_tokens.iter().flatten().find(|&&i| i >= t) {
        bail!("token position {bad} is past the logits' {t} tokens");
    }
    let k = class_tokens.len();
    let mut scores = Vec::with_capacity(out.logits.len() / t * k);
    for row in out.logits.chunks_exact(t) {
        for toks in class_tokens {
            scores.push(if toks.is_empty() {
                0.0
            } else {
                toks.iter().map(|&i| sigmoid(row[i] as f64)).sum::<f64>() / toks.len() as f64
            });
        }
    }
    Ok(scores)
}

/// The top `k` (query, class) pairs of one image and caption with their boxes; `resized` and
/// `original` are `(width, height)`.
pub fn top_k(
    out: &GdinoImageOutputs,
    class_tokens: &[Vec<usize>],
    resized: (u32, u32),
    original: (u32, u32),
    k: usize,
) -> Result<Vec<GdinoDetection>> {
    let scores = class_scores(out, class_tokens)?;
    let classes = class_tokens.len();
    if classes == 0 {
        return Ok(Vec::new());
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let (rw, rh) = (resized.0 as f64, resized.1 as f64);
    let (fx, fy) = (rw / original.0 as f64, rh / original.1 as f64);
    Ok(order
        .into_iter()
        .take(k)
        .map(|i| {
            let (q, class) = (i / classes, i % classes);
            let b = &out.boxes[q * 4..q * 4 + 4];
            let (cx, cy, w, h) = (b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64);
            let x1 = ((cx - w / 2.0) * rw).clamp(0.0, rw) / fx;
            let y1 = ((cy - h / 2.0) * rh).clamp(0.0, rh) / fy;
            let x2 = ((cx + w / 2.0) * rw).clamp(0.0, rw) / fx;
            let y2 = ((cy + h / 2.0) * rh).clamp(0.0, rh) / fy;
            GdinoDetection {
                score: scores[i],
                class,
                bbox: [x1, y1, x2 - x1, y2 - y1],
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_sigmoids_top_k_and_boxes() {
        // 2 queries, 3 tokens; class 0 = tokens [1, 2], class 1 = none.
        let logits = [0.0, 0.0, 0.0, 0.0, 10.0, -10.0];
        let boxes = [0.5, 0.5, 0.5, 0.5, 0.9, 0.5, 0.4, 2.0];
        let out = GdinoImageOutputs {
            logits: &logits,
            boxes: &boxes,
            text_len: 3,
        };
        let toks = vec![vec![1, 2], vec![]];
        let s = class_scores(&out, &toks).unwrap();
        assert_eq!(s, vec![0.5, 0.0, 0.5, 0.0]);
        let d = top_k(&out, &toks, (200, 100), (100, 100), 3).unwrap();
        assert_eq!(d.len(), 3);
        // Tie between query 0 and 1 of class 0: query 0 (lower flat index) first.
        assert_eq!((d[0].class, d[1].class, d[2].class), (0, 0, 1));
        assert_eq!(d[0].bbox, [25.0, 25.0, 50.0, 50.0]);
        // Query 1: x [0.7, 1.1] * 200 clamped to [140, 200], / 2; y [-0.5, 1.5] * 100 to [0, 100].
        let want = [70.0, 0.0, 30.0, 100.0];
        assert!(d[1]
            .bbox
            .iter()
            .zip(want)
            .all(|(a, b)| (a - b).abs() < 1e-5));
        assert!(class_scores(&out, &[vec![3]]).is_err());
    }
}

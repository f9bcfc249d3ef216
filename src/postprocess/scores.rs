//! Token logits to class scores (GLIP's `convert_grounding_to_od_logits` with `SCORE_AGG MEAN`):
//! a class's score is the mean over its tokens of `sigmoid(logit)`. A class without tokens
//! scores 0.

/// Which token positions belong to each class: class `c` (label `c + 1`) uses `tokens[c]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassTokenMap {
    pub tokens: Vec<Vec<usize>>,
}

impl ClassTokenMap {
    pub fn num_classes(&self) -> usize {
        self.tokens.len()
    }

    /// The largest token position used, if any.
    pub fn max_token(&self) -> Option<usize> {
        self.tokens.iter().flatten().copied().max()
    }

    /// The sorted, distinct token positions any class uses.
    pub fn used_tokens(&self) -> Vec<usize> {
        let mut used: Vec<usize> = self.tokens.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        used
    }
}

impl From<&crate::prompt::PositiveMap> for ClassTokenMap {
    fn from(map: &crate::prompt::PositiveMap) -> Self {
        ClassTokenMap {
            tokens: map.classes.iter().map(|c| c.tokens.clone()).collect(),
        }
    }
}

/// The logistic function in f32.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Computes the class scores of one anchor into `out` (one per class) from its token logits
/// `logits` (`T` values). `used` lists the tokens any class needs and `scratch` (len ≥ `T`)
/// receives their sigmoids.
#[inline]
pub fn class_scores(
    logits: &[f32],
    map: &ClassTokenMap,
    used: &[usize],
    scratch: &mut [f32],
    out: &mut [f32],
) {
    for &t in used {
        scratch[t] = sigmoid(logits[t]);
    }
    for (o, tokens) in out.iter_mut().zip(&map.tokens) {
        *o = if tokens.is_empty() {
            0.0
        } else {
            tokens.iter().map(|&t| scratch[t]).sum::<f32>() / tokens.len() as f32
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_probabilities_not_of_logits() {
        let map = ClassTokenMap {
            tokens: vec![vec![1], vec![2, 3], vec![]],
        };
        let logits = [9.0, 0.0, 2.0, -2.0];
        let mut scratch = [0.0; 4];
        let mut out = [1.0; 3];
        class_scores(&logits, &map, &map.used_tokens(), &mut scratch, &mut out);
        assert_eq!(out[0], 0.5);
        assert!((out[1] - 0.5).abs() < 1e-6); // (σ(2) + σ(−2)) / 2 = 0.5, σ(0) would be too
        assert_eq!(out[2], 0.0);
    }
}

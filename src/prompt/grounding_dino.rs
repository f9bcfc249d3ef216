//! Grounding DINO's text input for a list of class names, as mmdetection's ODinW evaluation
//! builds it (`scripts/grounding_dino_export/prompts.py`, PROTOCOL.md §2): each name cleaned by
//! `clean_label_name` (GLIP's [`clean_name`], the same three rules) and followed by `". "`; the
//! classes in groups of `chunked_size` ([`chunks`]); the caption tokenized with truncation to
//! max_text_len; each class's tokens by GLIP's span rule ([`span_tokens`]); and the text
//! self-attention mask and position ids of transformers'
//! `generate_masks_with_special_tokens_and_transfer_map` ([`text_masks`]).
use super::clean_name::clean_name;
use super::positive_map::{span_tokens, PromptTokenizer};
use super::SEPARATOR;
use anyhow::Result;
use std::ops::Range;

/// One caption's inputs for the text graph and the class → token positions post-processing reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GdinoPrompt {
    pub caption: String,
    /// `[CLS] … [SEP]`, at most max_text_len ids.
    pub input_ids: Vec<i64>,
    /// Row-major `[L, L]`.
    pub self_mask: Vec<bool>,
    pub position_ids: Vec<i64>,
    /// Each class's token positions (`[CLS]` = 0), empty when it has none.
    pub class_tokens: Vec<Vec<usize>>,
}

/// The caption of `names` (every cleaned name followed by `". "`, so it ends with `". "`) and
/// each class's character span `[start, end)` in code points.
pub fn build_caption(names: &[String]) -> (String, Vec<(usize, usize)>) {
    let mut caption = String::new();
    let mut len = 0;
    let mut spans = Vec::with_capacity(names.len());
    for name in names {
        let name = clean_name(name);
        let n = name.chars().count();
        spans.push((len, len + n));
        caption.push_str(&name);
        caption.push_str(SEPARATOR);
        len += n + SEPARATOR.chars().count();
    }
    (caption, spans)
}

/// mmdetection's `chunks`: the class index ranges of consecutive groups of `size`; one group
/// with every class when `size` ≤ 0.
pub fn chunks(classes: usize, size: i64) -> Vec<Range<usize>> {
    if size <= 0 {
        return std::iter::once(0..classes).collect();
    }
    let size = size as usize;
    (0..classes.div_ceil(size))
        .map(|i| i * size..((i + 1) * size).min(classes))
        .collect()
}

/// `[L, L]` text self-attention mask (row-major) and position ids for `ids`: a token's block
/// is the next special token at or after it; inside a block whose special token is neither the
/// first nor the last position, tokens attend to each other and a token's position id is its
/// distance to the previous special token minus 1; every token attends to itself; other
/// position ids are 0.
pub fn text_masks(ids: &[i64], specials: &[i64]) -> (Vec<bool>, Vec<i64>) {
    let l = ids.len();
    let special: Vec<bool> = ids.iter().map(|i| specials.contains(i)).collect();
    // The next special token at or after each position (l when none).
    let mut next = vec![l; l];
    let mut n = l;
    for i in (0..l).rev() {
        if special[i] {
            n = i;
        }
        next[i] = n;
    }
    // The previous special token strictly before each position (-1 when none).
    let mut prev = vec![-1i64; l];
    let mut p = -1i64;
    for i in 0..l {
        prev[i] = p;
        if special[i] {
            p = i as i64;
        }
    }
    let valid: Vec<bool> = next
        .iter()
        .map(|&n| n != 0 && n + 1 != l && n != l)
        .collect();
    let mut mask = vec![false; l * l];
    for i in 0..l {
        for j in 0..l {
            mask[i * l + j] = i == j || (valid[j] && next[i] == next[j]);
        }
    }
    let pos = (0..l)
        .map(|i| {
            if valid[i] {
                (i as i64 - prev[i] - 1).max(0)
            } else {
                0
            }
        })
        .collect();
    (mask, pos)
}

/// The prompt of `names` (one chunk): caption, truncated tokens, masks and class tokens.
pub fn gdino_prompt(
    names: &[String],
    tokenizer: &PromptTokenizer,
    max_text_len: usize,
    specials: &[i64],
) -> Result<GdinoPrompt> {
    let (caption, spans) = build_caption(names);
    let enc = tokenizer.encode_truncated(&caption, max_text_len)?;
    let char_to_token = |pos: isize| -> Option<usize> {
        let pos = usize::try_from(pos).ok()?;
        enc.char_to_token(pos, 0)
    };
    let class_tokens = spans
        .iter()
        .map(|&(s, e)| {
            span_tokens(&char_to_token, s, e)
                .into_iter()
                .filter(|&t| t < max_text_len)
                .collect()
        })
        .collect();
    let input_ids: Vec<i64> = enc.get_ids().iter().map(|&i| i as i64).collect();
    let (self_mask, position_ids) = text_masks(&input_ids, specials);
    Ok(GdinoPrompt {
        caption,
        input_ids,
        self_mask,
        position_ids,
        class_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_ends_with_the_separator_and_spans_cover_clean_names() {
        let names = ["red_block".to_string(), "a cat (pet)".to_string()];
        let (caption, spans) = build_caption(&names);
        assert_eq!(caption, "red block. a cat . ");
        assert_eq!(spans, vec![(0, 9), (11, 17)]);
    }

    #[test]
    fn chunks_are_consecutive_groups() {
        assert_eq!(chunks(5, 2), vec![0..2, 2..4, 4..5]);
        assert_eq!(chunks(5, -1), vec![0..5]);
        assert_eq!(chunks(4, 4), vec![0..4]);
    }

    #[test]
    fn masks_follow_the_blocks() {
        // [CLS] a b . c [SEP]
        let (mask, pos) = text_masks(&[101, 7, 8, 1012, 9, 102], &[101, 102, 1012, 1029]);
        assert_eq!(pos, vec![0, 0, 1, 2, 0, 0]);
        let row = |i: usize| mask[i * 6..(i + 1) * 6].to_vec();
        assert_eq!(row(0), vec![true, false, false, false, false, false]);
        assert_eq!(row(1), vec![false, true, true, true, false, false]);
        // c's block ends at the last position: only itself.
        assert_eq!(row(4), vec![false, false, false, false, true, false]);
    }
}

//! Grounding DINO's text input for a list of class names, as mmdetection's ODinW evaluation
//! builds it (`scripts/grounding_dino_export/prompts.py`, PROTOCOL.md §2): each name cleaned by
//! `clean_label_name` (GLIP's [`clean_name`], the same three rules), written as itself
//! (`to_plain_text_prompts`) or, where the task's `caption_prompt` has an entry for it, as
//! prefix + name + suffix (`to_enhance_text_prompts`), and followed by `". "`; the classes in
//! groups of `chunked_size` ([`chunks`]); the caption tokenized with truncation to
//! max_text_len; each class's tokens by GLIP's span rule ([`span_tokens`]); and the text
//! self-attention mask and position ids of transformers'
//! `generate_masks_with_special_tokens_and_transfer_map` ([`text_masks`]).
use super::clean_name::clean_name;
use super::positive_map::{span_tokens, PromptTokenizer};
use super::SEPARATOR;
use crate::registry::EnhancedPrompts;
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

/// The caption of `names` and each class's character span `[start, end)` in code points.
/// Every name is cleaned; a cleaned name that is a key of `prompts` is written
/// `prefix + (its name, else the cleaned name) + suffix`, the span covering only the middle
/// part; any other is written as itself, its span covering it. Each class is followed by
/// `". "`, so the caption ends with `". "`. `None` (or an empty map) gives the plain caption.
pub fn build_caption(
    names: &[String],
    prompts: Option<&EnhancedPrompts>,
) -> (String, Vec<(usize, usize)>) {
    let mut caption = String::new();
    let mut len = 0;
    let mut push = |caption: &mut String, s: &str| {
        caption.push_str(s);
        len += s.chars().count();
        len
    };
    let mut spans = Vec::with_capacity(names.len());
    for name in names {
        let name = clean_name(name);
        let entry = prompts.and_then(|p| p.get(&name));
        let prefix = entry.and_then(|e| e.prefix.as_deref()).unwrap_or("");
        let middle = entry.and_then(|e| e.name.as_deref()).unwrap_or(&name);
        let suffix = entry.and_then(|e| e.suffix.as_deref()).unwrap_or("");
        let start = push(&mut caption, prefix);
        let end = push(&mut caption, middle);
        spans.push((start, end));
        push(&mut caption, suffix);
        push(&mut caption, SEPARATOR);
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

/// The prompt of `names` (one chunk) with the task's `caption_prompt` `prompts`, if any:
/// caption, truncated tokens, masks and class tokens.
pub fn gdino_prompt(
    names: &[String],
    prompts: Option<&EnhancedPrompts>,
    tokenizer: &PromptTokenizer,
    max_text_len: usize,
    specials: &[i64],
) -> Result<GdinoPrompt> {
    let (caption, spans) = build_caption(names, prompts);
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
        let (caption, spans) = build_caption(&names, None);
        assert_eq!(caption, "red block. a cat . ");
        assert_eq!(spans, vec![(0, 9), (11, 17)]);
        assert_eq!(
            build_caption(&names, Some(&EnhancedPrompts::new())),
            (caption, spans)
        );
    }

    /// Written out by hand from mmdetection's `to_enhance_text_prompts` (prefix, then the name
    /// or the class name with the span over it, then the suffix, then ". ") for the prompts of
    /// its MM-Grounding-DINO ODinW configs, read from the registry.
    #[test]
    fn enhanced_captions_of_the_mm_grounding_dino_configs() {
        use crate::registry::{find, Suite};
        let family = "mm-grounding-dino";
        let caption = |suite, task: &str| {
            let t = find(suite, task).unwrap();
            let names: Vec<String> = t.categories.iter().map(|c| c.name.clone()).collect();
            build_caption(&names, t.mmdet_caption_prompt.get(family))
        };
        // {'hand': {'suffix': ' of a person'}}
        let hand = ("hand of a person. ".to_string(), vec![(0, 4)]);
        assert_eq!(caption(Suite::Odinw35, "EgoHands_generic"), hand);
        assert_eq!(caption(Suite::Odinw13, "EgoHands_generic"), hand);
        // {'package': {'prefix': 'there is a ', 'suffix': ' on the porch'}}
        let package = (
            "there is a package on the porch. ".to_string(),
            vec![(11, 18)],
        );
        assert_eq!(caption(Suite::Odinw35, "Packages"), package);
        assert_eq!(caption(Suite::Odinw13, "Packages"), package);
        // {'pothole': {'prefix': 'there are some ', 'name': 'holes', 'suffix': ' on the road'}}
        assert_eq!(
            caption(Suite::Odinw35, "pothole"),
            (
                "there are some holes on the road. ".to_string(),
                vec![(15, 20)]
            )
        );
        // Active in odinw35 only: odinw13's pothole prompt is not passed to its dataset.
        assert_eq!(
            caption(Suite::Odinw13, "pothole"),
            ("pothole. ".to_string(), vec![(0, 7)])
        );
        // {'Cottontail-Rabbit': {'name': 'rabbit'}} (odinw13 only; odinw35's class is 'rabbit').
        assert_eq!(
            caption(Suite::Odinw13, "CottontailRabbits"),
            ("rabbit. ".to_string(), vec![(0, 6)])
        );
        // {'CoW': {'name': 'flat mushroom'}, 'chanterelle': {'name': 'yellow mushroom'}}
        assert_eq!(
            caption(Suite::Odinw13, "NorthAmericaMushrooms"),
            (
                "flat mushroom. yellow mushroom. ".to_string(),
                vec![(0, 13), (15, 30)]
            )
        );
        // Grounding DINO's configs: Packages in odinw35 only, nothing in odinw13.
        let gd = |suite, task: &str| {
            find(suite, task)
                .unwrap()
                .mmdet_caption_prompt
                .get("grounding-dino")
        };
        assert!(gd(Suite::Odinw35, "Packages").is_some());
        assert!(gd(Suite::Odinw35, "EgoHands_generic").is_none());
        assert!(tasks_with(Suite::Odinw13, "grounding-dino").is_empty());
    }

    fn tasks_with(suite: crate::registry::Suite, family: &str) -> Vec<&'static str> {
        crate::registry::tasks(suite)
            .iter()
            .filter(|t| t.mmdet_caption_prompt.contains_key(family))
            .map(|t| t.name.as_str())
            .collect()
    }

    /// The tasks with an active caption_prompt, per suite and family, and every key names one
    /// of the task's classes after cleaning (else mmdetection would silently not use it).
    #[test]
    fn which_tasks_have_enhanced_prompts() {
        use crate::registry::{tasks, Suite};
        assert_eq!(tasks_with(Suite::Odinw35, "grounding-dino"), ["Packages"]);
        assert_eq!(
            tasks_with(Suite::Odinw35, "mm-grounding-dino"),
            ["EgoHands_generic", "Packages", "pothole"]
        );
        assert_eq!(
            tasks_with(Suite::Odinw13, "mm-grounding-dino"),
            [
                "CottontailRabbits",
                "EgoHands_generic",
                "NorthAmericaMushrooms",
                "Packages"
            ]
        );
        for suite in [Suite::Odinw35, Suite::Odinw13, Suite::Demo] {
            for t in tasks(suite) {
                for (family, prompts) in &t.mmdet_caption_prompt {
                    assert!(
                        crate::model::grounding_dino::is_grounding_dino(family),
                        "{}: {family}",
                        t.name
                    );
                    for key in prompts.keys() {
                        assert!(
                            t.categories.iter().any(|c| &clean_name(&c.name) == key),
                            "{}/{}: {key:?} is not a class",
                            suite.name(),
                            t.name
                        );
                    }
                }
            }
        }
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

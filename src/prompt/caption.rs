//! GLIP's inference query: the caption built from a task's categories (and its CAPTION_PROMPT),
//! with each class's character span (`create_queries_and_maps`).
use super::clean_name::clean_name;
use crate::registry::Task;
use anyhow::{bail, Result};

/// GLIP's `DATASETS.SEPARATION_TOKENS` for ODinW (from its pretrain yamls).
pub const SEPARATOR: &str = ". ";

/// One class in the caption: its json category id and name, and the half-open span
/// `[start, end)` of its grounded text in the caption, in Unicode code points (Python `str`
/// indices, as GLIP computes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassSpan {
    pub id: u64,
    pub category: String,
    pub start: usize,
    pub end: usize,
}

/// A caption and the spans of its classes, in ascending category id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caption {
    pub text: String,
    pub classes: Vec<ClassSpan>,
}

/// How a class is rendered in the caption: `prefix + text + suffix`, `text` being the span the
/// class is grounded to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptionPart {
    pub id: u64,
    pub category: String,
    pub prefix: String,
    pub text: String,
    pub suffix: String,
}

impl CaptionPart {
    /// Class `id` (named `category`) written as `text` alone, without prefix or suffix.
    pub fn plain(id: u64, category: &str, text: &str) -> Self {
        CaptionPart {
            id,
            category: category.to_string(),
            prefix: String::new(),
            text: text.to_string(),
            suffix: String::new(),
        }
    }
}

/// Builds the caption GLIP queries `task` with. With `use_prompt` and a CAPTION_PROMPT, class
/// `i` (by ascending id) is `prefix + name + suffix` of prompt entry `i`, the prompt's name used
/// as is and grounded; otherwise it is `clean_name(category name)`. Classes are joined with `". "`.
pub fn task_caption(task: &Task, use_prompt: bool) -> Result<Caption> {
    let mut categories: Vec<_> = task.categories.iter().collect();
    categories.sort_by_key(|c| c.id);
    let prompt = task.caption_prompt.as_ref().filter(|_| use_prompt);
    if let Some(p) = prompt {
        if p.len() != categories.len() {
            bail!(
                "task {}: CAPTION_PROMPT has {} entries but the task has {} categories",
                task.name,
                p.len(),
                categories.len()
            );
        }
    }
    let parts: Vec<CaptionPart> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| match prompt {
            Some(p) => CaptionPart {
                id: c.id,
                category: c.name.clone(),
                prefix: p[i].prefix.clone(),
                text: p[i].name.clone(),
                suffix: p[i].suffix.clone(),
            },
            None => CaptionPart::plain(c.id, &c.name, &clean_name(&c.name)),
        })
        .collect();
    Ok(build_caption(&parts))
}

/// Joins `parts` with [`SEPARATOR`] (none after the last), recording each name's span.
pub fn build_caption(parts: &[CaptionPart]) -> Caption {
    let mut text = String::new();
    let mut chars = 0usize;
    let mut classes = Vec::with_capacity(parts.len());
    let mut push = |text: &mut String, s: &str| {
        text.push_str(s);
        chars += s.chars().count();
        chars
    };
    for (i, part) in parts.iter().enumerate() {
        let start = push(&mut text, &part.prefix);
        let end = push(&mut text, &part.text);
        classes.push(ClassSpan {
            id: part.id,
            category: part.category.clone(),
            start,
            end,
        });
        push(&mut text, &part.suffix);
        if i + 1 < parts.len() {
            push(&mut text, SEPARATOR);
        }
    }
    Caption { text, classes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{find, Suite};

    #[test]
    fn aquarium_prompt_caption_matches_protocol() {
        let t = find(Suite::Odinw35, "Aquarium").unwrap();
        let c = task_caption(t, true).unwrap();
        assert_eq!(
            c.text,
            " fish. jellyfish. penguin , which is black and white. puffin with orange beaks . \
             shark. starfish. stingray which is flat and round"
        );
        assert_eq!((c.classes[0].start, c.classes[0].end), (1, 5));
        let plain = task_caption(t, false).unwrap();
        assert_eq!(
            plain.text,
            "fish. jellyfish. penguin. puffin. shark. starfish. stingray"
        );
    }

    #[test]
    fn spans_count_code_points() {
        let parts = [
            CaptionPart {
                id: 1,
                category: "x".into(),
                prefix: "é ".into(),
                text: "ß".into(),
                suffix: String::new(),
            },
            CaptionPart {
                id: 2,
                category: "y".into(),
                prefix: String::new(),
                text: "b".into(),
                suffix: String::new(),
            },
        ];
        let c = build_caption(&parts);
        assert_eq!(c.text, "é ß. b");
        assert_eq!((c.classes[0].start, c.classes[0].end), (2, 3));
        assert_eq!((c.classes[1].start, c.classes[1].end), (5, 6));
    }

    #[test]
    fn chess_blank_class_is_a_lone_space() {
        let t = find(Suite::Odinw35, "ChessPieces").unwrap();
        let c = task_caption(t, true).unwrap();
        assert!(c.text.starts_with(" . black bishop. black king"));
        assert_eq!((c.classes[0].start, c.classes[0].end), (0, 1));
    }
}

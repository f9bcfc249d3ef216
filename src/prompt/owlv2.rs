//! OWLv2's class-name queries as the authors' evaluator builds them (scenic
//! `evaluator.py` `get_predictions`): each class name in each prompt template of the model's
//! model.json, canonicalised (`label_ops._canonicalize_string_tf`), template-major (every class
//! for template 0, then template 1, ...), the order [`crate::postprocess::owlv2::ensemble_logits`]
//! reads.

/// scenic's `_canonicalize_string_tf`: lowercase; every character outside `[a-z0-9-# ]` becomes
/// a space; runs of whitespace become one space; runs of `-` one `-`; stripped.
pub fn canonicalize(text: &str) -> String {
    let lowered: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '#' || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut out = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        let last = out.chars().last();
        if (c == ' ' && last == Some(' ')) || (c == '-' && last == Some('-')) {
            continue;
        }
        out.push(c);
    }
    out.trim().to_string()
}

/// The `templates.len() × names.len()` queries, template-major, canonicalised.
pub fn class_queries(templates: &[String], names: &[String]) -> Vec<String> {
    templates
        .iter()
        .flat_map(|t| {
            names
                .iter()
                .map(move |n| canonicalize(&t.replacen("{}", n, 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalizes_as_scenic() {
        assert_eq!(
            canonicalize("  A Photo of the  RBC--x. "),
            "a photo of the rbc-x"
        );
        assert_eq!(
            canonicalize("itap of a red_blood (cell)."),
            "itap of a red blood cell"
        );
    }

    #[test]
    fn queries_are_template_major() {
        let t = vec!["a {}.".to_string(), "art of the {}.".to_string()];
        let n = vec!["Fish".to_string(), "shark".to_string()];
        assert_eq!(
            class_queries(&t, &n),
            ["a fish", "a shark", "art of the fish", "art of the shark"]
        );
    }
}

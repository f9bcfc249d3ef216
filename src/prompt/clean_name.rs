//! GLIP's `clean_name`: how a category name is tidied before it goes into the caption.

/// Applies GLIP's three rules, in order: remove the greedy span from the first `(` to the last
/// `)` after it (regex `\(.*\)`, applied to each line separately since `.` does not match a
/// newline), replace every `_` with a space, then replace each non-overlapping pair of spaces
/// with one space in a single left-to-right pass (three spaces become two). No lowercasing, no
/// trimming.
pub fn clean_name(name: &str) -> String {
    let without_parens = name
        .split('\n')
        .map(remove_parenthesised)
        .collect::<Vec<_>>()
        .join("\n");
    without_parens.replace('_', " ").replace("  ", " ")
}

/// `re.sub(r"\(.*\)", "", line)` for a line without newlines: every match is a greedy span from
/// a `(` to the last `)` after it; the search resumes after the match.
fn remove_parenthesised(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        match rest[open..].rfind(')') {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn follows_glip_rules() {
        assert_eq!(clean_name("follow_hand"), "follow hand");
        assert_eq!(clean_name("cat-British_Shorthair"), "cat-British Shorthair");
        assert_eq!(clean_name("  "), " ");
        assert_eq!(clean_name("   "), "  ");
        assert_eq!(clean_name("a (b) c (d) e"), "a e");
        assert_eq!(clean_name("a (b)x"), "a x");
        assert_eq!(clean_name("x(y"), "x(y");
        assert_eq!(clean_name("a__b"), "a b");
        assert_eq!(clean_name("CoW"), "CoW");
        assert_eq!(clean_name("t\\"), "t\\");
    }
}

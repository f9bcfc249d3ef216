//! Tokenizes a caption and maps each class's character span to token positions, with GLIP's
//! fallbacks (`create_positive_dict`).
use super::caption::Caption;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// GLIP's text length (`MODEL.LANGUAGE_BACKBONE.MAX_QUERY_LEN`): the model sees token positions
/// `0..256`, `[CLS]` at 0.
pub const MAX_QUERY_LEN: usize = 256;

/// bert-base-uncased's `tokenizer.json` (made by `scripts/make_bert_tokenizer.py`), GLIP's text
/// tokenizer, built into the binary.
const BERT_BASE_UNCASED: &str = include_str!("../../models/bert-base-uncased/tokenizer.json");

/// A Hugging Face tokenizer loaded from a `tokenizer.json`.
pub struct PromptTokenizer {
    inner: Tokenizer,
    source: String,
}

impl PromptTokenizer {
    /// GLIP's tokenizer, bert-base-uncased (lowercasing WordPiece), built into the binary.
    pub fn bert_base_uncased() -> Self {
        let inner = Tokenizer::from_bytes(BERT_BASE_UNCASED.as_bytes())
            .expect("the built-in bert-base-uncased tokenizer.json is valid");
        PromptTokenizer {
            inner,
            source: "built-in bert-base-uncased".into(),
        }
    }

    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading tokenizer {}", path.display()))?;
        let inner = Tokenizer::from_bytes(text.as_bytes())
            .map_err(|e| anyhow!("{}: not a valid tokenizer.json: {e}", path.display()))?;
        Ok(PromptTokenizer {
            inner,
            source: path.display().to_string(),
        })
    }

    /// Where the tokenizer came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Encodes `text` with special tokens and offsets in code points (as Python reports them).
    pub fn encode(&self, text: &str) -> Result<Encoding> {
        self.inner
            .encode_char_offsets(text, true)
            .map_err(|e| anyhow!("tokenizing {text:?} with {}: {e}", self.source))
    }

    /// [`Self::encode`] cut to at most `max_len` tokens, special tokens included (the text's
    /// tokens are cut, `[SEP]` kept), as transformers' `tokenizer(text, truncation=True,
    /// max_length=max_len)` does.
    pub fn encode_truncated(&self, text: &str, max_len: usize) -> Result<Encoding> {
        let mut inner = self.inner.clone();
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("truncating to {max_len} tokens with {}: {e}", self.source))?;
        inner
            .encode_char_offsets(text, true)
            .map_err(|e| anyhow!("tokenizing {text:?} with {}: {e}", self.source))
    }
}

/// One class's token positions in the tokenized caption (`[CLS]` = 0). Empty when GLIP assigns
/// it none (it can then never be predicted). `name` is the category name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClassTokens {
    pub id: u64,
    pub name: String,
    pub tokens: Vec<usize>,
}

/// A caption, its token count (with `[CLS]` and `[SEP]`) and each class's token positions.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PositiveMap {
    pub caption: String,
    pub num_tokens: usize,
    pub classes: Vec<ClassTokens>,
    /// The token strings, `[CLS]` first (for display).
    #[serde(skip)]
    pub token_strings: Vec<String>,
    /// The token ids, `[CLS]` first (what the text encoder is fed).
    #[serde(skip)]
    pub token_ids: Vec<u32>,
}

impl PositiveMap {
    /// Tokenizes `caption` and maps every class span to its tokens.
    pub fn new(caption: &Caption, tokenizer: &PromptTokenizer) -> Result<Self> {
        let encoding = tokenizer.encode(&caption.text)?;
        let char_to_token = |pos: isize| -> Option<usize> {
            let pos = usize::try_from(pos).ok()?;
            encoding.char_to_token(pos, 0)
        };
        let classes = caption
            .classes
            .iter()
            .map(|c| ClassTokens {
                id: c.id,
                name: c.category.clone(),
                tokens: span_tokens(&char_to_token, c.start, c.end),
            })
            .collect();
        Ok(PositiveMap {
            caption: caption.text.clone(),
            num_tokens: encoding.len(),
            classes,
            token_strings: encoding.get_tokens().to_vec(),
            token_ids: encoding.get_ids().to_vec(),
        })
    }

    /// The largest token position any class uses, if any.
    pub fn max_token(&self) -> Option<usize> {
        self.classes
            .iter()
            .filter_map(|c| c.tokens.last().copied())
            .max()
    }
}

/// GLIP's span → token rule. `char_to_token` answers `None` for a position no token covers and
/// for a negative position (where Python raises and GLIP's `except` turns it into `None`).
/// begin = token at `start`, else at `start+1`, else at `start+2`; end = token at `end-1`, else at
/// `end-2`, else at `end-3`; if either stays unknown (or begin > end) the class gets no tokens,
/// otherwise it gets `begin..=end`.
pub fn span_tokens(
    char_to_token: &dyn Fn(isize) -> Option<usize>,
    start: usize,
    end: usize,
) -> Vec<usize> {
    let (start, end) = (start as isize, end as isize);
    let begin = char_to_token(start)
        .or_else(|| char_to_token(start + 1))
        .or_else(|| char_to_token(start + 2));
    let last = char_to_token(end - 1)
        .or_else(|| char_to_token(end - 2))
        .or_else(|| char_to_token(end - 3));
    match (begin, last) {
        (Some(b), Some(e)) => (b..=e).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::caption::task_caption;
    use crate::registry::{find, Suite};

    fn map(suite: Suite, task: &str) -> PositiveMap {
        let t = find(suite, task).unwrap();
        let caption = task_caption(t, true).unwrap();
        PositiveMap::new(&caption, &PromptTokenizer::bert_base_uncased()).unwrap()
    }

    fn tokens(m: &PositiveMap) -> Vec<Vec<usize>> {
        m.classes.iter().map(|c| c.tokens.clone()).collect()
    }

    // The test vectors of the protocol, §5.3 and the ODinW-13 variants of Appendix A.
    #[test]
    fn protocol_test_vectors() {
        let m = map(Suite::Odinw35, "AerialMaritimeDrone_large");
        assert_eq!(m.caption, "boat. car. dock. jetski. lift");
        assert_eq!(
            tokens(&m),
            vec![vec![1], vec![3], vec![5], vec![7, 8], vec![10]]
        );
        let m = map(Suite::Odinw35, "Aquarium");
        assert_eq!(m.num_tokens, 34);
        assert_eq!(
            tokens(&m),
            vec![
                vec![1],
                vec![3, 4],
                vec![6],
                vec![14, 15],
                vec![21],
                vec![23, 24],
                vec![26, 27]
            ]
        );
        assert_eq!(tokens(&map(Suite::Odinw35, "EgoHands_generic")), [[1]]);
        assert_eq!(tokens(&map(Suite::Odinw35, "Packages")), [[4]]);
        let m = map(Suite::Odinw35, "pothole");
        assert_eq!(m.caption, "there are some holes on the road");
        assert_eq!(tokens(&m), [[4]]);
        let m = map(Suite::Odinw35, "DroneControl");
        assert_eq!(
            m.caption,
            "follow. follow hand. land. land hand. null. object. takeoff. takeoff-hand"
        );
        assert_eq!(m.classes[7].tokens, [17, 18, 19]);
        let m = map(Suite::Odinw35, "ChessPieces");
        assert!(m.classes[0].tokens.is_empty());
        assert!(m.classes[1..].iter().all(|c| c.tokens.len() == 2));

        let m = map(Suite::Odinw13, "Aquarium");
        assert_eq!(m.num_tokens, 19);
        assert_eq!(
            tokens(&m),
            vec![
                vec![1],
                vec![3, 4],
                vec![6],
                vec![8, 9],
                vec![11],
                vec![13, 14],
                vec![16, 17]
            ]
        );
        assert_eq!(
            tokens(&map(Suite::Odinw13, "CottontailRabbits")),
            [[1, 2, 3, 4]]
        );
        assert_eq!(tokens(&map(Suite::Odinw13, "EgoHands_generic")), [[1]]);
        let m = map(Suite::Odinw13, "NorthAmericaMushrooms");
        assert_eq!(tokens(&m), vec![vec![1], vec![3, 4, 5]]);
        assert_eq!(tokens(&map(Suite::Odinw13, "Packages")), [[1]]);
        assert_eq!(tokens(&map(Suite::Odinw13, "pothole")), [[1, 2]]);
    }

    #[test]
    fn boggle_boards_has_a_class_per_category() {
        let m = map(Suite::Odinw35, "boggleBoards");
        assert_eq!(m.classes.len(), 36);
        assert!(m.max_token().unwrap() < MAX_QUERY_LEN);
    }

    #[test]
    fn fallbacks_try_two_more_positions_and_negative_positions_are_none() {
        // Tokens cover chars 2..4 (token 1) and 6..7 (token 2).
        let c2t = |p: isize| match p {
            2..=3 => Some(1),
            6 => Some(2),
            _ => None,
        };
        assert_eq!(span_tokens(&c2t, 0, 4), vec![1]); // begin from start+2
        assert_eq!(span_tokens(&c2t, 2, 9), vec![1, 2]); // end from end-3
        assert!(span_tokens(&c2t, 0, 1).is_empty()); // end-1 = 0 unknown, end-2 < 0
        assert!(span_tokens(&c2t, 4, 5).is_empty());
    }
}

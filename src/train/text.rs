//! The task prompt for training: GLIP's caption (the same one inference uses: all classes in
//! category order, CAPTION_PROMPT applied), tokenized and padded to the model's fixed text
//! length, each class's token positions, and the binary token-target row of each class (§5.2:
//! the positive map GLIP's collate function turns into 0/1).
use crate::engine::{Graph, Tensor};
use crate::model::io::model_tokens;
use crate::postprocess::ClassTokenMap;
use crate::prompt::{Caption, PositiveMap, PromptTokenizer};
use anyhow::{anyhow, bail, Result};

pub struct TaskText {
    pub caption: String,
    /// `[1, T]` token ids, `[PAD]` (0) after the caption.
    pub input_ids: Tensor,
    /// `[1, T]`, 1 for the caption's tokens.
    pub attention_mask: Tensor,
    pub classes: ClassTokenMap,
    /// Per class (caption order), a 0/1 row of length T.
    pub token_rows: Vec<Vec<f32>>,
}

impl TaskText {
    /// The text encoder's output for this prompt (its first output: the hidden states).
    pub fn encode(&self, text_encoder: &mut Graph) -> Result<Tensor> {
        let out = text_encoder.run(&[
            ("input_ids", &self.input_ids),
            ("attention_mask", &self.attention_mask),
        ])?;
        Ok(out
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the text encoder has no output"))?
            .1)
    }

    pub fn new(
        caption: &Caption,
        tokenizer: &PromptTokenizer,
        max_text_len: usize,
        sep_id: i64,
    ) -> Result<Self> {
        let map = PositiveMap::new(caption, tokenizer)?;
        if map.token_ids.is_empty() {
            bail!("the caption {:?} has no tokens", caption.text);
        }
        let (mut ids, classes) = model_tokens(&map, max_text_len, || Ok(sep_id))?;
        let n = ids.len();
        let token_rows = classes
            .tokens
            .iter()
            .map(|toks| {
                let mut row = vec![0f32; max_text_len];
                for &t in toks {
                    row[t] = 1.0;
                }
                row
            })
            .collect();
        let mut mask = vec![1i64; n];
        ids.resize(max_text_len, 0);
        mask.resize(max_text_len, 0);
        Ok(TaskText {
            caption: caption.text.clone(),
            input_ids: Tensor::I64 {
                shape: vec![1, max_text_len],
                data: ids,
            },
            attention_mask: Tensor::I64 {
                shape: vec![1, max_text_len],
                data: mask,
            },
            classes,
            token_rows,
        })
    }
}

//! OWLv2 on ONNX Runtime: query embeddings from the text_encoder graph (once per task), then
//! the image_detector graph on batches of images pre-processed by
//! [`crate::preprocess::owlv2`], giving each image's logits and boxes for
//! [`crate::postprocess::owlv2`].
use crate::engine::{Graph, SessionOptions, Tensor};
use crate::model::owlv2::Owlv2Dir;
use crate::preprocess::owlv2::owlv2_pixels;
use crate::preprocess::RgbImage;
use crate::prompt::PromptTokenizer;
use anyhow::{anyhow, bail, Result};

/// The two graphs of an OWLv2 model directory and its tokenizer.
pub struct Owlv2Detector {
    pub model: Owlv2Dir,
    text: Graph,
    image: Graph,
    tokenizer: PromptTokenizer,
}

/// One image's outputs: `logits` [patches, queries] and `boxes` [patches, 4] (cx, cy, w, h
/// relative to the padded square).
#[derive(Clone, Debug)]
pub struct Owlv2Outputs {
    pub logits: Vec<f32>,
    pub boxes: Vec<f32>,
}

impl Owlv2Detector {
    pub fn load(model: Owlv2Dir, opts: &SessionOptions) -> Result<Self> {
        Ok(Owlv2Detector {
            text: Graph::open(&model.graph("text_encoder")?, opts)?,
            image: Graph::open(&model.graph("image_detector")?, opts)?,
            tokenizer: PromptTokenizer::from_file(&model.tokenizer())?,
            model,
        })
    }

    /// The L2-normalised embedding of each query, `[queries, D]`. Each query is tokenized with
    /// its start and end tokens; shorter ones are padded with the end token under a 0 mask (the
    /// text model is causal and pools at the end token, so padding changes nothing). A query
    /// longer than the model's max_text_len keeps its first max_text_len tokens, end token
    /// dropped, as the OWL-ViT/OWLv2 authors' evaluator does (scenic's
    /// `owl_vit/clip/tokenizer.py` `tokenize(text, max_token_len)`: `tokens[:max_token_len]`);
    /// the model then pools at the largest token id, as theirs does.
    pub fn embed_queries(&mut self, queries: &[String]) -> Result<Tensor> {
        if queries.is_empty() {
            bail!("no text queries");
        }
        let max = self.model.spec.text.max_text_len;
        let eot = *self
            .model
            .spec
            .text
            .special_tokens
            .get("<|endoftext|>")
            .ok_or_else(|| anyhow!("model.json text.special_tokens has no <|endoftext|>"))?;
        let mut ids = Vec::with_capacity(queries.len());
        for q in queries {
            let enc = self.tokenizer.encode(q)?;
            let mut t: Vec<i64> = enc.get_ids().iter().map(|&i| i as i64).collect();
            if t.len() > max {
                t.truncate(max);
            } else if t.last() != Some(&eot) {
                bail!("query {q:?} does not end with <|endoftext|> after tokenization");
            }
            ids.push(t);
        }
        let len = ids.iter().map(Vec::len).max().unwrap_or(2).max(2);
        let mut data = Vec::with_capacity(queries.len() * len);
        let mut mask = Vec::with_capacity(queries.len() * len);
        for t in &ids {
            data.extend(
                t.iter()
                    .copied()
                    .chain(std::iter::repeat_n(eot, len - t.len())),
            );
            mask.extend((0..len).map(|i| (i < t.len()) as i64));
        }
        let shape = vec![queries.len(), len];
        let out = self.text.run(&[
            (
                "input_ids",
                &Tensor::I64 {
                    shape: shape.clone(),
                    data,
                },
            ),
            ("attention_mask", &Tensor::I64 { shape, data: mask }),
        ])?;
        out.into_iter()
            .find(|(n, _)| n == "text_embeds")
            .map(|(_, t)| t)
            .ok_or_else(|| anyhow!("text_encoder has no text_embeds output"))
    }

    /// The image graph on `images` (one batch) with `query_embeds` from [`Self::embed_queries`].
    pub fn detect(
        &mut self,
        images: &[RgbImage],
        query_embeds: &Tensor,
    ) -> Result<Vec<Owlv2Outputs>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let pre = &self.model.spec.preprocess;
        let s = pre.input_size[0];
        let mut pixels = Vec::with_capacity(images.len() * 3 * (s * s) as usize);
        for img in images {
            pixels.extend(owlv2_pixels(img, s, pre.mean, pre.std)?);
        }
        let batch = Tensor::F32 {
            shape: vec![images.len(), 3, s as usize, s as usize],
            data: pixels,
        };
        let out = self
            .image
            .run(&[("pixel_values", &batch), ("query_embeds", query_embeds)])?;
        let get = |name: &str| {
            out.iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| anyhow!("image_detector has no {name} output"))
        };
        let (logits, boxes) = (get("logits")?, get("pred_boxes")?);
        let (l, b) = (logits.as_f32()?, boxes.as_f32()?);
        let n = images.len();
        if l.len() % n != 0 || b.len() % n != 0 {
            bail!("image_detector outputs do not split into {n} images");
        }
        Ok((0..n)
            .map(|i| Owlv2Outputs {
                logits: l[i * l.len() / n..(i + 1) * l.len() / n].to_vec(),
                boxes: b[i * b.len() / n..(i + 1) * b.len() / n].to_vec(),
            })
            .collect())
    }
}

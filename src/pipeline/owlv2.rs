//! OWLv2 on ONNX Runtime: query embeddings from the text_encoder graph (once per task), then
//! the image_detector graph on batches of images pre-processed by
//! [`crate::preprocess::owlv2`] ([`pixel_batch`], on the rayon pool), giving each image's logits
//! and boxes for [`crate::postprocess::owlv2`]. With I/O binding (`--io-binding`, on by default
//! for CUDA and TensorRT; [`crate::engine::binding`], as GLIP's pipeline) the query embeddings
//! are copied to the device once per task and stay there, the pixels go in, and only `logits`
//! and `pred_boxes` are computed and come back (not `objectness_logits`).
use super::IMAGE_OUTPUTS;
use crate::engine::binding::run_to_host;
use crate::engine::{BatchConstants, Graph, Input, SessionOptions, Tensor};
use crate::model::owlv2::{Owlv2Dir, Owlv2Preprocess};
use crate::preprocess::owlv2::owlv2_pixels;
use crate::preprocess::{decode_file, RgbImage};
use crate::prompt::PromptTokenizer;
use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use std::path::Path;

/// The two graphs of an OWLv2 model directory and its tokenizer.
pub struct Owlv2Detector {
    pub model: Owlv2Dir,
    text: Graph,
    image: Graph,
    tokenizer: PromptTokenizer,
    /// Whether the image graph runs through I/O binding.
    pub io_binding: bool,
}

/// A task's query embeddings (`[queries, D]`, from [`Owlv2Detector::embed_queries`]), fed to
/// every batch; with I/O binding copied to the device on first use and kept there.
pub struct QueryEmbeds(BatchConstants);

impl QueryEmbeds {
    pub fn new(embeds: Tensor) -> Self {
        QueryEmbeds(BatchConstants::shared(vec![(
            "query_embeds".into(),
            embeds,
        )]))
    }

    /// Whether a device copy was made (at most one per task, whatever the batch sizes).
    pub fn on_device(&self) -> bool {
        self.0.device_copies() > 0
    }
}

/// `images` pre-processed (in parallel) into one `[B, 3, S, S]` batch.
pub fn pixel_batch(pre: &Owlv2Preprocess, images: &[RgbImage]) -> Result<Tensor> {
    let s = pre.input_size[0];
    let plane = 3 * (s * s) as usize;
    let mut data = vec![0f32; images.len() * plane];
    data.par_chunks_exact_mut(plane.max(1))
        .zip(images.par_iter())
        .try_for_each(|(out, img)| {
            out.copy_from_slice(&owlv2_pixels(img, s, pre.mean, pre.std)?);
            Ok::<_, anyhow::Error>(())
        })?;
    Ok(Tensor::F32 {
        shape: vec![images.len(), 3, s as usize, s as usize],
        data,
    })
}

/// The image at `path` decoded and pre-processed: its (width, height) and its `[3, S, S]` pixels.
pub fn prepare_image(pre: &Owlv2Preprocess, path: &Path) -> Result<((u32, u32), Vec<f32>)> {
    let img = decode_file(path)?;
    let s = pre.input_size[0];
    Ok((
        (img.width, img.height),
        owlv2_pixels(&img, s, pre.mean, pre.std)?,
    ))
}

/// Images pre-processed one by one ([`prepare_image`]) as one `[B, 3, S, S]` batch.
pub fn stack_pixels(pre: &Owlv2Preprocess, planes: Vec<Vec<f32>>) -> Tensor {
    let s = pre.input_size[0] as usize;
    let n = planes.len();
    Tensor::F32 {
        shape: vec![n, 3, s, s],
        data: planes.concat(),
    }
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
            io_binding: opts.io_binding.enabled(opts.device),
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

    /// The image graph on `images` (one batch) with a task's `queries`.
    pub fn detect(
        &mut self,
        images: &[RgbImage],
        queries: &mut QueryEmbeds,
    ) -> Result<Vec<Owlv2Outputs>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let pixels = pixel_batch(&self.model.spec.preprocess, images)?;
        self.detect_pixels(&pixels, queries)
    }

    /// The image graph on a batch from [`pixel_batch`]: each image's logits and boxes.
    pub fn detect_pixels(
        &mut self,
        pixels: &Tensor,
        queries: &mut QueryEmbeds,
    ) -> Result<Vec<Owlv2Outputs>> {
        let n = pixels.shape()[0];
        let bound = self.io_binding;
        let mut inputs = vec![("pixel_values", Input::Host(pixels))];
        inputs.extend(queries.0.inputs(&self.image, n, bound)?);
        let out = run_to_host(&mut self.image, &inputs, &IMAGE_OUTPUTS, bound)?;
        let (l, b) = (out[0].1.as_f32()?, out[1].1.as_f32()?);
        if n == 0 || l.is_empty() || b.is_empty() || l.len() % n != 0 || b.len() % n != 0 {
            bail!("image_detector outputs do not split into {n} images");
        }
        Ok(l.chunks_exact(l.len() / n)
            .zip(b.chunks_exact(b.len() / n))
            .map(|(l, b)| Owlv2Outputs {
                logits: l.to_vec(),
                boxes: b.to_vec(),
            })
            .collect())
    }
}

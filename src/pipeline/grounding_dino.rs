//! Grounding DINO on ONNX Runtime: a caption's text features from the text_encoder graph (once
//! per caption, [`GdinoDetector::encode`]), then the image_detector graph on batches of images
//! pre-processed onto the model's canvas by [`crate::preprocess::grounding_dino`] with that
//! caption ([`GdinoDetector::detect`]), giving each image's token logits and boxes for
//! [`crate::postprocess::grounding_dino`]. With I/O binding (`--io-binding`, on by default for
//! CUDA and TensorRT; [`crate::engine::binding`], as GLIP's and OWLv2's pipelines) a caption's
//! text features, attention mask, position ids and self-attention mask are copied to the device
//! once per task and stay there, the pixels and pixel mask go in, and only `logits` and
//! `pred_boxes` are computed and come back.
use super::IMAGE_OUTPUTS;
use crate::engine::binding::run_to_host;
use crate::engine::{BatchConstants, Graph, Input, SessionOptions, Tensor};
use crate::model::grounding_dino::GdinoDir;
use crate::preprocess::grounding_dino::GdinoPixels;
use crate::prompt::grounding_dino::{gdino_prompt, GdinoPrompt};
use crate::prompt::PromptTokenizer;
use crate::registry::EnhancedPrompts;
use anyhow::{anyhow, bail, Result};

/// The two graphs of a Grounding DINO model directory and its tokenizer.
pub struct GdinoDetector {
    pub model: GdinoDir,
    text: Graph,
    image: Graph,
    tokenizer: PromptTokenizer,
    /// Whether the image graph runs through I/O binding.
    pub io_binding: bool,
}

/// One caption, encoded: its prompt and the image graph's text inputs (`text_features` `[L, D]`,
/// `attention_mask` and `position_ids` `[L]`, `text_self_attention_mask` `[L, L]`), fed to every
/// batch as they are; with I/O binding copied to the device on first use and kept there.
pub struct GdinoText {
    pub prompt: GdinoPrompt,
    inputs: BatchConstants,
}

impl GdinoText {
    /// Whether a device copy of the text inputs was made (at most one per caption).
    pub fn on_device(&self) -> bool {
        self.inputs.device_copies() > 0
    }
}

/// One image's outputs for one caption: `logits` [Q, T], `boxes` [Q, 4] (cx, cy, w, h relative
/// to the resized image).
#[derive(Clone, Debug)]
pub struct GdinoOutputs {
    pub logits: Vec<f32>,
    pub boxes: Vec<f32>,
    pub text_len: usize,
}

fn output(out: &[(String, Tensor)], name: &str, graph: &str) -> Result<Tensor> {
    out.iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| anyhow!("{graph} has no {name} output"))
}

impl GdinoDetector {
    pub fn load(model: GdinoDir, opts: &SessionOptions) -> Result<Self> {
        Ok(GdinoDetector {
            text: Graph::open(&model.graph("text_encoder")?, opts)?,
            image: Graph::open(&model.graph("image_detector")?, opts)?,
            tokenizer: PromptTokenizer::from_file(&model.tokenizer())?,
            io_binding: opts.io_binding.enabled(opts.device),
            model,
        })
    }

    /// The prompt of `names` (with the task's mmdetection `caption_prompt`, if any) and its
    /// text features (text_encoder on the one caption).
    pub fn encode(
        &mut self,
        names: &[String],
        prompts: Option<&EnhancedPrompts>,
    ) -> Result<GdinoText> {
        let text = &self.model.spec.text;
        let specials: Vec<i64> = text.special_tokens.values().copied().collect();
        let prompt = gdino_prompt(
            names,
            prompts,
            &self.tokenizer,
            text.max_text_len,
            &specials,
        )?;
        let l = prompt.input_ids.len();
        let ids = |data: Vec<i64>| Tensor::I64 {
            shape: vec![1, l],
            data,
        };
        let self_mask = Tensor::Bool {
            shape: vec![1, l, l],
            data: prompt.self_mask.clone(),
        };
        let out = self.text.run(&[
            ("input_ids", &ids(prompt.input_ids.clone())),
            ("attention_mask", &ids(vec![1; l])),
            ("token_type_ids", &ids(vec![0; l])),
            ("position_ids", &ids(prompt.position_ids.clone())),
            ("text_self_attention_mask", &self_mask),
        ])?;
        let features = output(&out, "text_features", "text_encoder")?;
        let shape = features.shape().to_vec();
        if shape.len() != 3 || shape[0] != 1 || shape[1] != l {
            bail!("text_encoder's text_features has shape {shape:?}, expected [1, {l}, D]");
        }
        let features = Tensor::F32 {
            shape: shape[1..].to_vec(),
            data: features.as_f32()?.to_vec(),
        };
        let inputs = BatchConstants::shared(vec![
            ("text_features".into(), features),
            (
                "attention_mask".into(),
                Tensor::I64 {
                    shape: vec![l],
                    data: vec![1; l],
                },
            ),
            (
                "position_ids".into(),
                Tensor::I64 {
                    shape: vec![l],
                    data: prompt.position_ids.clone(),
                },
            ),
            (
                "text_self_attention_mask".into(),
                Tensor::Bool {
                    shape: vec![l, l],
                    data: prompt.self_mask.clone(),
                },
            ),
        ]);
        Ok(GdinoText { prompt, inputs })
    }

    /// The image graph on `images` (one batch, already on the canvas) with caption `text`.
    pub fn detect(
        &mut self,
        images: &[&GdinoPixels],
        text: &mut GdinoText,
    ) -> Result<Vec<GdinoOutputs>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let [h, w] = self.model.spec.preprocess.canvas;
        let (h, w, n) = (h as usize, w as usize, images.len());
        let mut pixels = Vec::with_capacity(n * 3 * h * w);
        let mut mask = Vec::with_capacity(n * h * w);
        for img in images {
            if img.pixels.len() != 3 * h * w || img.mask.len() != h * w {
                bail!("an image is not on the model's {h}x{w} canvas");
            }
            pixels.extend_from_slice(&img.pixels);
            mask.extend_from_slice(&img.mask);
        }
        let pixels = Tensor::F32 {
            shape: vec![n, 3, h, w],
            data: pixels,
        };
        let mask = Tensor::I64 {
            shape: vec![n, h, w],
            data: mask,
        };
        let bound = self.io_binding;
        let mut inputs = vec![
            ("pixel_values", Input::Host(&pixels)),
            ("pixel_mask", Input::Host(&mask)),
        ];
        inputs.extend(text.inputs.inputs(&self.image, n, bound)?);
        let mut out = run_to_host(&mut self.image, &inputs, &IMAGE_OUTPUTS, bound)?;
        let boxes = out.pop().expect("two outputs").1;
        let logits = out.pop().expect("two outputs").1;
        let (ls, bs) = (logits.shape().to_vec(), boxes.shape().to_vec());
        if ls.len() != 3
            || bs.len() != 3
            || ls[0] != n
            || bs[0] != n
            || bs[1] != ls[1]
            || bs[2] != 4
        {
            bail!("image_detector outputs have shapes {ls:?} and {bs:?}, expected [{n}, Q, T] and [{n}, Q, 4]");
        }
        let (l, b) = (logits.as_f32()?, boxes.as_f32()?);
        let (lq, bq) = (ls[1] * ls[2], bs[1] * 4);
        Ok((0..n)
            .map(|i| GdinoOutputs {
                logits: l[i * lq..(i + 1) * lq].to_vec(),
                boxes: b[i * bq..(i + 1) * bq].to_vec(),
                text_len: ls[2],
            })
            .collect())
    }
}

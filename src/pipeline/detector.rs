//! A loaded GLIP-style detector: the three graphs of a model directory on one execution
//! provider, the model's tokenizer, and the steps between them (text features once per prompt,
//! image batches through backbone and head, GLIP's post-processing). A batch runs on one canvas:
//! its images normalised and zero-padded bottom/right to it ([`ModelSpec::canvas`]: GLIP's
//! ceil-32 of the largest resized image, or the fixed input of a v1 model). With I/O binding (the
//! default on CUDA and TensorRT) the backbone's p3..p7 stay in GPU memory for the head, and the
//! text features are copied to the GPU once per prompt and batch size
//! ([`crate::engine::binding`], shared with OWLv2's pipeline).
use crate::engine::binding::{run_kept, run_to_host};
use crate::engine::{BatchConstants, Device, Graph, Input, SessionOptions, Tensor};
use crate::model::io::model_tokens;
use crate::model::{ModelDir, ModelSpec};
use crate::postprocess::{ClassTokenMap, PostprocessConfig};
use crate::preprocess::{self, RgbImage, PIXEL_MEAN, PIXEL_STD};
use crate::prompt::{Caption, PositiveMap, PromptTokenizer};
use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use std::path::Path;

/// The head outputs post-processing reads.
const HEAD_OUTPUTS: [&str; 3] = ["box_deltas", "centerness", "token_logits"];

pub struct Detector {
    pub model: ModelDir,
    backbone: Graph,
    text_encoder: Graph,
    head: Graph,
    pub tokenizer: PromptTokenizer,
    pub post: PostprocessConfig,
    /// Whether graphs exchange tensors in the device's memory (I/O binding).
    pub io_binding: bool,
}

/// A prompt's text features, computed once and reused for every image of a task.
pub struct TextFeatures {
    /// The head's `text_hidden` and `attention_mask` (batch of one), repeated to each batch's
    /// size, kept in the device's memory with I/O binding.
    head_inputs: BatchConstants,
    /// Token positions of each class (label `c + 1` → `tokens[c]`).
    pub classes: ClassTokenMap,
    pub positive_map: PositiveMap,
}

/// One image decoded and resized for the model, with its original size.
pub struct Prepared {
    pub image: RgbImage,
    pub original: (u32, u32),
}

impl Detector {
    /// Opens the model's graphs for batches of up to `max_batch` images (TensorRT builds its
    /// engines for that range, every canvas of the model's resize rule and every text length;
    /// the other execution providers take any shape).
    pub fn load(model: ModelDir, opts: &SessionOptions, max_batch: usize) -> Result<Self> {
        let spec = &model.spec;
        if spec.preprocess.mean != PIXEL_MEAN || spec.preprocess.std != PIXEL_STD {
            bail!(
                "{}: mean/std {:?}/{:?} differ from GLIP's; other normalisations are not supported",
                model.dir.display(),
                spec.preprocess.mean,
                spec.preprocess.std
            );
        }
        let post = spec.postprocess.config();
        let profiles = match opts.device {
            Device::Tensorrt => Some(
                crate::model::profile::trt_profiles(spec, max_batch).ok_or_else(|| {
                    anyhow!(
                        "{}: model.json lacks the head's input shapes a TensorRT profile needs",
                        model.dir.display()
                    )
                })?,
            ),
            _ => None,
        };
        let open = |name: &str, k: usize| {
            Graph::open_profiled(&model.graph(name)?, opts, profiles.as_ref().map(|p| &p[k]))
        };
        Ok(Detector {
            backbone: open("image_backbone", 0)?,
            text_encoder: open("text_encoder", 1)?,
            head: open("head", 2)?,
            tokenizer: PromptTokenizer::from_file(&model.tokenizer())?,
            post,
            io_binding: opts.io_binding.enabled(opts.device),
            model,
        })
    }

    /// Tokenizes `caption` (truncated to the model's text length, `[SEP]` kept last), runs the
    /// text encoder, and maps each class to its tokens.
    pub fn encode_text(&mut self, caption: &Caption) -> Result<TextFeatures> {
        let text = &self.model.spec.text;
        let positive_map = PositiveMap::new(caption, &self.tokenizer)?;
        let (ids, classes) = model_tokens(&positive_map, text.max_text_len, || {
            text.special_tokens
                .get("sep")
                .copied()
                .ok_or_else(|| anyhow!("model.json text.special_tokens has no sep"))
        })?;
        let n = ids.len();
        let input_ids = Tensor::I64 {
            shape: vec![1, n],
            data: ids,
        };
        let mask = Tensor::I64 {
            shape: vec![1, n],
            data: vec![1; n],
        };
        let out = self
            .text_encoder
            .run(&[("input_ids", &input_ids), ("attention_mask", &mask)])?;
        let hidden = out
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the text encoder has no output"))?
            .1;
        Ok(TextFeatures {
            head_inputs: BatchConstants::repeated(vec![
                ("text_hidden".into(), hidden),
                ("attention_mask".into(), mask),
            ])?,
            classes,
            positive_map,
        })
    }

    /// The head's outputs for a batch (normalised and zero-padded into one input tensor of the
    /// `(width, height)` canvas), in host memory, for [`crate::model::io::postprocess_outputs`].
    pub fn infer(
        &mut self,
        batch: &[&RgbImage],
        canvas: (u32, u32),
        text: &mut TextFeatures,
    ) -> Result<Vec<(String, Tensor)>> {
        let b = batch.len();
        let (iw, ih) = (canvas.0 as usize, canvas.1 as usize);
        if let Some(img) = batch
            .iter()
            .find(|i| i.width as usize > iw || i.height as usize > ih)
        {
            bail!(
                "a {}x{} image does not fit the {iw}x{ih} canvas",
                img.width,
                img.height
            );
        }
        let plane = 3 * ih * iw;
        let mut data = vec![0f32; plane * b];
        data.par_chunks_exact_mut(plane)
            .zip(batch.par_iter())
            .for_each(|(out, img)| preprocess::normalize::normalize_into(img, out, iw, ih));
        let images = Tensor::F32 {
            shape: vec![b, 3, ih, iw],
            data,
        };
        // With I/O binding p3..p7 stay in the device's memory, the text features are there
        // already, and only the head outputs come back.
        let bound = self.io_binding;
        let features = run_kept(
            &mut self.backbone,
            &[("images", Input::Host(&images))],
            bound,
        )?;
        let mut inputs: Vec<(&str, Input)> = features
            .iter()
            .map(|(n, t)| (n.as_str(), t.input()))
            .collect();
        inputs.extend(text.head_inputs.inputs(&self.head, b, bound)?);
        run_to_host(&mut self.head, &inputs, &HEAD_OUTPUTS, bound)
    }
}

/// Decodes and resizes one image file as GLIP does, with the model's sizes.
pub fn prepare(spec: &ModelSpec, path: &Path) -> Result<Prepared> {
    let img = preprocess::decode_file(path)?;
    let r = &spec.preprocess.resize;
    let (w, h) = preprocess::glip_size(img.width, img.height, r.min_size, r.max_size);
    if let Err(e) = preprocess::check_target(w, h) {
        bail!(
            "{}: a {}x{} image {e}",
            path.display(),
            img.width,
            img.height
        );
    }
    let (iw, ih) = spec.canvas(w, h);
    if w > iw || h > ih {
        bail!(
            "{}: a {}x{} image resizes to {w}x{h}, larger than the model's fixed {iw}x{ih} input (re-export it: current exports take any canvas)",
            path.display(),
            img.width,
            img.height
        );
    }
    let original = (img.width, img.height);
    let image = if (w, h) == original {
        img
    } else {
        preprocess::resize_bilinear(&img, w, h)
    };
    Ok(Prepared { image, original })
}

//! GLIP's post-processing (§6.2–6.5 of the protocol) on plain head outputs: anchors, box
//! decoding with the "+1" convention, MEAN token → class aggregation, the 0.05 threshold before
//! centerness, top 1000 per level, `sqrt(cls · sigmoid(centerness))`, class-aware NMS at
//! IoU > 0.6, at most 100 detections per image, then COCO results in the original image size.
//!
//! Where GLIP (torch) leaves an order unspecified — `topk` among equal scores at the
//! 1000-th place, `sort` among equal scores in NMS — this implementation takes the lower index
//! first: within a level, candidates are ordered by score, then by `anchor · K + class`; levels
//! are concatenated P3 → P7. OWLv2's post-processing is in [`owlv2`], Grounding DINO's
//! (mmdetection's) in [`grounding_dino`].
pub mod anchors;
pub mod decode;
pub mod grounding_dino;
pub mod nms;
pub mod owlv2;
pub mod scores;
pub mod select;
pub mod to_coco;

pub use scores::ClassTokenMap;
pub use to_coco::{to_coco, CocoDetection};

use anyhow::{bail, Result};

/// GLIP's test-time post-processing settings (`MODEL.ATSS.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct PostprocessConfig {
    /// `INFERENCE_TH`: a class score must be above this (before centerness).
    pub pre_nms_thresh: f32,
    /// `PRE_NMS_TOP_N`: candidates kept per level.
    pub pre_nms_top_n: usize,
    /// `NMS_TH`: IoU above which a same-label box is suppressed.
    pub nms_thresh: f32,
    /// `DETECTIONS_PER_IMG`: the cap per image (ties at the cap are kept; 0 = no cap).
    pub detections_per_img: usize,
}

impl Default for PostprocessConfig {
    fn default() -> Self {
        PostprocessConfig {
            pre_nms_thresh: 0.05,
            pre_nms_top_n: 1000,
            nms_thresh: 0.6,
            detections_per_img: 100,
        }
    }
}

/// How a level's box regression is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxLayout {
    /// `[4, H, W]`: the conv output of one image (`bbox_pred[n]`), channel-major.
    ChannelsFirst,
    /// `[H·W, 4]`: one `(dx, dy, dw, dh)` row per anchor.
    AnchorsFirst,
}

/// One image's head outputs at one FPN level (A = 1 anchor per location). Anchor `a` is the
/// location `(x, y) = (a mod W, a div W)` of the padded image's feature map.
#[derive(Clone, Copy, Debug)]
pub struct LevelOutputs<'a> {
    /// 8, 16, 32, 64 or 128 (P3–P7); the anchor side is 8·stride.
    pub stride: u32,
    /// Feature-map height `H` and width `W`.
    pub height: usize,
    pub width: usize,
    /// Box deltas, `4·H·W` values in `box_layout`.
    pub bbox_pred: &'a [f32],
    pub box_layout: BoxLayout,
    /// Centerness logits, `H·W`.
    pub centerness: &'a [f32],
    /// Token logits, `[H·W, T]` row-major.
    pub dot_product_logits: &'a [f32],
    /// `T`, the number of token positions (256 for GLIP).
    pub num_tokens: usize,
}

impl LevelOutputs<'_> {
    fn check(&self) -> Result<()> {
        let hw = self.height * self.width;
        if self.bbox_pred.len() != 4 * hw
            || self.centerness.len() != hw
            || self.dot_product_logits.len() != hw * self.num_tokens
        {
            bail!(
                "level with stride {}: expected {} box values, {hw} centerness values and {} \
                 token logits for a {}x{} map with {} tokens; got {}, {} and {}",
                self.stride,
                4 * hw,
                hw * self.num_tokens,
                self.height,
                self.width,
                self.num_tokens,
                self.bbox_pred.len(),
                self.centerness.len(),
                self.dot_product_logits.len()
            );
        }
        if self.stride == 0 {
            bail!("level stride must be positive");
        }
        Ok(())
    }

    /// The anchor side: 8·stride, as GLIP's anchor sizes (64…1024) for strides 8…128.
    fn anchor_size(&self) -> u32 {
        8 * self.stride
    }

    #[inline]
    fn deltas(&self, a: usize) -> [f32; 4] {
        match self.box_layout {
            BoxLayout::AnchorsFirst => self.bbox_pred[4 * a..4 * a + 4].try_into().unwrap(),
            BoxLayout::ChannelsFirst => {
                let hw = self.height * self.width;
                std::array::from_fn(|i| self.bbox_pred[i * hw + a])
            }
        }
    }
}

/// A detection in the resized image: `[x1, y1, x2, y2]`, score, label (1-based class index).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub bbox: [f32; 4],
    pub score: f32,
    pub label: usize,
}

/// Post-processes one image: `levels` in P3 → P7 order, `image_size` the resized, unpadded
/// `(width, height)`. Returns the kept detections in concatenation order (not sorted).
pub fn postprocess_image(
    levels: &[LevelOutputs],
    map: &ClassTokenMap,
    image_size: (u32, u32),
    cfg: &PostprocessConfig,
) -> Result<Vec<Detection>> {
    let per_level = levels
        .iter()
        .map(|l| select::select_level(l, map, image_size, cfg))
        .collect::<Result<Vec<_>>>()?;
    Ok(select::select_over_levels(per_level, cfg))
}

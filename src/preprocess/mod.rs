//! GLIP's image pre-processing (§6.1 of the protocol): decode (no EXIF rotation), resize so the
//! short side is 800 and the long side at most 1333 with Pillow's bilinear filter, BGR 0–255
//! mean/std normalisation into CHW f32, zero padding to a multiple of 32 per batch. OWLv2's
//! (transformers' Owlv2ImageProcessor) is in [`owlv2`], Grounding DINO's
//! (GroundingDinoImageProcessor) in [`grounding_dino`].
pub mod batch;
pub mod decode;
pub mod grounding_dino;
pub mod image;
pub mod jpeg;
pub mod jpeg_header;
pub mod normalize;
pub mod owlv2;
pub mod resize;

pub use self::image::RgbImage;
pub use batch::{make_batch, Batch, SIZE_DIVISIBILITY};
pub use decode::{decode_bytes, decode_file, Decoder};
pub use normalize::{normalize, PIXEL_MEAN, PIXEL_STD};
pub use resize::{check_target, glip_size, resize_bilinear, MAX_SIZE, MIN_SIZE};

use anyhow::Result;
use std::path::Path;

/// One image after decoding and resizing, before normalisation and batching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resized {
    pub image: RgbImage,
    /// The decoded file's `(width, height)`, what boxes are rescaled back to.
    pub original: (u32, u32),
}

/// Decodes an image file and resizes it as GLIP does at test time; an image that resizes to a
/// 0-px side is refused, as Pillow's resize refuses it.
pub fn load_resized(path: &Path) -> Result<Resized> {
    let img = decode_file(path)?;
    let (w, h) = glip_size(img.width, img.height, MIN_SIZE, MAX_SIZE);
    check_target(w, h).map_err(|e| {
        anyhow::anyhow!(
            "{}: a {}x{} image {e}",
            path.display(),
            img.width,
            img.height
        )
    })?;
    Ok(resize_for_glip(&img))
}

/// Resizes a decoded image as GLIP does at test time (800 / 1333).
pub fn resize_for_glip(img: &RgbImage) -> Resized {
    let (w, h) = glip_size(img.width, img.height, MIN_SIZE, MAX_SIZE);
    Resized {
        image: resize_bilinear(img, w, h),
        original: (img.width, img.height),
    }
}

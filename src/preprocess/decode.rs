//! Image files to RGB as GLIP loads them (`PIL.Image.open(path).convert('RGB')`): no EXIF
//! rotation. Baseline JPEGs go through [`super::jpeg`], which matches Pillow's libjpeg-turbo
//! byte for byte; other JPEGs (progressive, CMYK, ...) and PNGs go through the `image` crate.
use super::image::RgbImage;
use super::jpeg::{self, JpegError};
use anyhow::{anyhow, bail, Context, Result};
use image::DynamicImage;
use std::path::Path;

/// Which decoder produced an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// The libjpeg-turbo-exact baseline decoder.
    ExactJpeg,
    /// The `image` crate (exact for PNG; JPEG samples may differ from Pillow's by a few levels).
    ImageCrate,
}

/// Reads and decodes an image file.
pub fn decode_file(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode_bytes(&bytes)
        .map(|(img, _)| img)
        .with_context(|| format!("decoding {}", path.display()))
}

/// Decodes an image file's bytes, saying which decoder did it.
pub fn decode_bytes(bytes: &[u8]) -> Result<(RgbImage, Decoder)> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        match jpeg::decode(bytes) {
            Ok(img) => return Ok((img, Decoder::ExactJpeg)),
            Err(JpegError::Unsupported(_)) => {}
            Err(e) => bail!("{e}"),
        }
    } else if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        bail!("not a JPEG or PNG file");
    }
    let img = image::load_from_memory(bytes).map_err(|e| anyhow!("{e}"))?;
    Ok((to_rgb8(img), Decoder::ImageCrate))
}

/// Pillow's `convert('RGB')` for the modes a PNG or JPEG opens as: grey replicated, alpha
/// dropped (not composited), 16-bit samples reduced to their high byte.
fn to_rgb8(img: DynamicImage) -> RgbImage {
    let (width, height) = (img.width(), img.height());
    let data = match img {
        DynamicImage::ImageRgb16(b) => b.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        DynamicImage::ImageRgba16(b) => b
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            .collect(),
        other => other.into_rgb8().into_raw(),
    };
    RgbImage {
        width,
        height,
        data,
    }
}

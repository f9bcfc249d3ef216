//! Image files to RGB as GLIP loads them (`PIL.Image.open(path).convert('RGB')`): no EXIF
//! rotation. JPEGs go through [`super::jpeg`] (Pillow's libjpeg-turbo and Pillow's checks: the
//! same pixels, or refused as Pillow refuses), PNGs through the `image` crate, with Pillow's
//! decompression-bomb limit first.
use super::image::RgbImage;
use super::jpeg;
use super::jpeg_header::MAX_IMAGE_PIXELS;
use anyhow::{anyhow, bail, Context, Result};
use image::DynamicImage;
use std::path::Path;

/// Which decoder produced an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// libjpeg-turbo driven as Pillow drives it.
    Jpeg,
    /// The `image` crate's PNG decoder.
    Png,
}

/// Reads and decodes an image file; errors name the file.
pub fn decode_file(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode_bytes(&bytes)
        .map(|(img, _)| img)
        .with_context(|| format!("decoding {}", path.display()))
}

/// Decodes an image file's bytes, saying which decoder did it. Never panics; time and memory
/// are bounded by the declared size, which is at most Pillow's limit (`2 · MAX_IMAGE_PIXELS`).
pub fn decode_bytes(bytes: &[u8]) -> Result<(RgbImage, Decoder)> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok((jpeg::decode(bytes)?, Decoder::Jpeg));
    }
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        bail!("not a JPEG or PNG file");
    }
    // IHDR's width and height (Pillow's size, checked by `Image.open`).
    if let (Some(w), Some(h)) = (bytes.get(16..20), bytes.get(20..24)) {
        let w = u32::from_be_bytes(w.try_into()?) as u64;
        let h = u32::from_be_bytes(h.try_into()?) as u64;
        if w.max(1) * h.max(1) > 2 * MAX_IMAGE_PIXELS {
            bail!(
                "DecompressionBombError: image size ({} pixels) exceeds limit of {} pixels",
                w * h,
                2 * MAX_IMAGE_PIXELS
            );
        }
    }
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| anyhow!("invalid PNG: {e}"))?;
    Ok((to_rgb8(img), Decoder::Png))
}

/// Pillow's `convert('RGB')` for the modes a PNG opens as: grey replicated, alpha dropped (not
/// composited), 16-bit samples reduced to their high byte.
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

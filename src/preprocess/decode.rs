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
    if zlib_data_broken(bytes) {
        bail!("invalid PNG: broken data stream (the image data fails zlib's checks)");
    }
    let bytes = as_pillow_reads_png(bytes);
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| anyhow!("invalid PNG: {e}"))?;
    Ok((to_rgb8(img), Decoder::Png))
}

/// Whether the IDAT chunks' zlib stream is invalid or fails its Adler-32 check, which Pillow's
/// zlib reports ("broken data stream") and the `image` crate ignores. A stream cut short is left
/// to the decoder (Pillow: truncated), and data past the image's size is not looked at.
fn zlib_data_broken(bytes: &[u8]) -> bool {
    let (Some(ihdr), mut idat, mut pos) = (bytes.get(16..29), Vec::new(), 8) else {
        return false;
    };
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let Some(data) = bytes.get(pos + 8..(pos + 8).saturating_add(len)) else {
            break;
        };
        if &head[4..] == b"IDAT" {
            idat.extend_from_slice(data);
        }
        pos = pos + 12 + len;
    }
    let (w, h) = (
        u32::from_be_bytes(ihdr[..4].try_into().unwrap()) as usize,
        u32::from_be_bytes(ihdr[4..8].try_into().unwrap()) as usize,
    );
    let channels = match ihdr[9] {
        2 => 3,
        4 => 2,
        6 => 4,
        _ => 1,
    };
    let row = (w * channels * ihdr[8] as usize).div_ceil(8);
    let limit = h
        .saturating_mul(row + 1)
        .saturating_mul(2)
        .saturating_add(4096);
    use miniz_oxide::inflate::TINFLStatus;
    matches!(
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&idat, limit),
        Err(e) if matches!(e.status, TINFLStatus::Adler32Mismatch | TINFLStatus::Failed)
    )
}

/// The PNG as Pillow reads it, for the `image` crate, which checks what Pillow does not: Pillow
/// verifies the CRC of each chunk before the image data, but reads the IDAT chunks and those
/// after them without checking theirs, and stops quietly where the chunk list ends without IEND.
/// So from the first IDAT on, each complete chunk gets its correct CRC, an IDAT cut short keeps
/// the data it has, and a file that ends at a chunk boundary (or within 12 bytes of one: a cut
/// IEND) gets an IEND.
fn as_pillow_reads_png(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut pos = 8;
    let mut in_data = false;
    while pos + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        in_data |= kind == b"IDAT";
        let Some(end) = (pos + 12).checked_add(len).filter(|&e| e <= bytes.len()) else {
            if kind != b"IDAT" {
                return out.map_or(std::borrow::Cow::Borrowed(bytes), std::borrow::Cow::Owned);
            }
            // An IDAT cut short: Pillow decodes what it holds (enough if every row is there).
            let data = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
            let mut v = out.unwrap_or_else(|| bytes.to_vec());
            v.truncate(pos);
            v.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(b"IDAT");
            hasher.update(data);
            v.extend_from_slice(b"IDAT");
            v.extend_from_slice(data);
            v.extend_from_slice(&hasher.finalize().to_be_bytes());
            v.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
            return std::borrow::Cow::Owned(v);
        };
        if kind == b"IEND" {
            break;
        }
        if in_data {
            let crc = crc32fast::hash(&bytes[pos + 4..end - 4]).to_be_bytes();
            if bytes[end - 4..end] != crc {
                out.get_or_insert_with(|| bytes.to_vec())[end - 4..end].copy_from_slice(&crc);
            }
        }
        pos = end;
    }
    if in_data && (pos + 12 > bytes.len() || bytes[pos + 4..pos + 8] != *b"IEND") {
        let mut v = out.unwrap_or_else(|| bytes.to_vec());
        v.truncate(pos);
        v.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
        return std::borrow::Cow::Owned(v);
    }
    out.map_or(std::borrow::Cow::Borrowed(bytes), std::borrow::Cow::Owned)
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

//! JPEG files decoded as GLIP's loader does (`PIL.Image.open(p).convert("RGB")`), with the
//! libjpeg-turbo decoder Pillow uses (as mozjpeg vendors it, built from source by `mozjpeg-sys`):
//! Pillow's own header checks ([`super::jpeg_header`]), then `jpeg_pillow.c`, a decoding loop that
//! behaves as Pillow's does (suspending
//! source fed in 64 KiB blocks, warnings ignored, libjpeg's defaults: accurate integer IDCT,
//! fancy upsampling), then `convert("RGB")`: grey replicated, CMYK inverted as Adobe writes it
//! (Pillow's `CMYK;I`) and converted with Pillow's `cmyk2rgb`.
//!
//! Every JPEG Pillow decodes gives the same pixels; every one it refuses is refused, with
//! Pillow's reason: truncated, corrupt (libjpeg's error), unsupported, or larger than Pillow's
//! decompression-bomb limit. Work and memory are bounded by the declared size, itself at most
//! `2 · MAX_IMAGE_PIXELS` pixels.
use super::image::RgbImage;
use super::jpeg_header::{read_header, Header};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::fmt;

// The static libjpeg that `jpeg_pillow.c` calls into; nothing in Rust uses its bindings.
use mozjpeg_sys as _;

/// Why a JPEG is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegError {
    /// Pillow's header reading refuses it (`Image.open` raises).
    Header(String),
    /// libjpeg needs data past the end: Pillow's "image file is truncated".
    Truncated,
    /// libjpeg's error (Pillow: "broken data stream").
    Corrupt(String),
}

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpegError::Header(m) => write!(f, "invalid JPEG: {m}"),
            JpegError::Truncated => write!(f, "invalid JPEG: image file is truncated"),
            JpegError::Corrupt(m) => write!(f, "invalid JPEG: broken data stream ({m})"),
        }
    }
}

impl std::error::Error for JpegError {}

/// Pillow's `ImageFile` read size (`decodermaxblock`): how much more libjpeg sees at a time.
const BLOCK: usize = 65536;

type AllocFn = extern "C" fn(*mut c_void, c_uint, c_uint, c_int) -> *mut u8;

extern "C" {
    fn odinw_jpeg_decode(
        data: *const u8,
        len: usize,
        block: usize,
        out_space: c_int,
        alloc: AllocFn,
        ctx: *mut c_void,
        msg: *mut c_char,
        msg_len: usize,
    ) -> c_int;
}

/// The output buffer the C side asks for once libjpeg knows the output size.
struct Output {
    header: Header,
    samples: Vec<u8>,
}

/// Gives the C side a buffer of `width · height · components` bytes, or NULL when the size is
/// not the one Pillow read from the header (Pillow sizes its image from its own reading) or the
/// memory cannot be had. Never unwinds.
extern "C" fn alloc_output(
    ctx: *mut c_void,
    width: c_uint,
    height: c_uint,
    comps: c_int,
) -> *mut u8 {
    // SAFETY: `ctx` is the `&mut Output` that `decode` passes, alive for the whole call.
    let out = unsafe { &mut *(ctx as *mut Output) };
    let h = out.header;
    if (width, height, comps) != (h.width, h.height, h.layers as c_int) {
        return std::ptr::null_mut();
    }
    let n = width as usize * height as usize * comps as usize;
    let Ok(layout) = std::alloc::Layout::array::<u8>(n) else {
        return std::ptr::null_mut();
    };
    if n == 0 {
        return std::ptr::null_mut();
    }
    // Zeroed pages come lazily from the system, so a huge frame whose data stops early (a
    // truncated file) costs only the rows libjpeg writes, as in Pillow.
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return ptr;
    }
    // SAFETY: `ptr` comes from the global allocator with `n` bytes of alignment 1, all initialised.
    out.samples = unsafe { Vec::from_raw_parts(ptr, n, n) };
    out.samples.as_mut_ptr()
}

/// Decodes a JPEG file's bytes to RGB exactly as Pillow's `Image.open(f).convert("RGB")`, or
/// refuses it as Pillow does.
pub fn decode(data: &[u8]) -> Result<RgbImage, JpegError> {
    let header = read_header(data).map_err(JpegError::Header)?;
    let mut out = Output {
        header,
        samples: Vec::new(),
    };
    let mut msg = [0 as c_char; 200];
    // SAFETY: `data` and `msg` are valid for the lengths given; `alloc_output` gets `&mut out`
    // back as its context and the C side writes only inside the buffer it returned.
    let rc = unsafe {
        odinw_jpeg_decode(
            data.as_ptr(),
            data.len(),
            BLOCK,
            header.layers as c_int,
            alloc_output,
            &mut out as *mut Output as *mut c_void,
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    match rc {
        0 => {}
        1 => return Err(JpegError::Truncated),
        2 => {
            // SAFETY: the C side wrote a NUL-terminated string into `msg`.
            let m = unsafe { CStr::from_ptr(msg.as_ptr()) };
            return Err(JpegError::Corrupt(m.to_string_lossy().into_owned()));
        }
        _ => {
            return Err(JpegError::Corrupt(format!(
            "libjpeg's frame is not the {}x{} {}-layer image of the header, or no memory for it",
            header.width, header.height, header.layers
        )))
        }
    }
    let data = match header.layers {
        3 => out.samples,
        1 => out.samples.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => out.samples.chunks_exact(4).flat_map(cmyk_to_rgb).collect(),
    };
    Ok(RgbImage {
        width: header.width,
        height: header.height,
        data,
    })
}

/// Pillow's `CMYK;I` unpacking (each sample inverted) followed by its `cmyk2rgb`:
/// `255 - k' - c'·(255 - k')/255` per channel, with its rounding division by 255.
fn cmyk_to_rgb(p: &[u8]) -> [u8; 3] {
    let nk = p[3] as i32; // 255 - (255 - k)
    let ch = |v: u8| {
        let t = (255 - v as i32) * nk + 128;
        (nk - (((t >> 8) + t) >> 8)).clamp(0, 255) as u8
    };
    [ch(p[0]), ch(p[1]), ch(p[2])]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_follows_pillow() {
        // No ink (inverted: 255) is white; full black (k inverted: 0) is black.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 255, 128, 255]), [0, 255, 128]);
    }
}

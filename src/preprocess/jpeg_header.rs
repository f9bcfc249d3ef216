//! Pillow's own reading of a JPEG's header (`JpegImagePlugin.JpegImageFile._open` and its
//! marker handlers, then `Image.open`'s checks), which refuses some files before libjpeg sees
//! them: the marker walk up to the first SOS, with its rules for junk bytes and unknown markers;
//! short or truncated segments; SOF with a precision other than 8 or a layer count other than
//! 1, 3 or 4; malformed DQT, JFIF, Adobe, Photoshop and ICC segments; a zero size; and
//! `DecompressionBombError` above twice `MAX_IMAGE_PIXELS`.

/// Pillow's `Image.MAX_IMAGE_PIXELS`: `1024 · 1024 · 1024 // 4 // 3`. Images with more than
/// twice this many pixels raise `DecompressionBombError` (more than once: a warning only).
pub const MAX_IMAGE_PIXELS: u64 = 1024 * 1024 * 1024 / 4 / 3;

/// What Pillow knows of a JPEG once it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// Pillow's mode: 1 (`L`), 3 (`RGB`) or 4 (`CMYK`) layers.
    pub layers: u8,
}

/// Python's `fp.read(n)` on the file's bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn read(&mut self, n: usize) -> &'a [u8] {
        let end = self.pos.saturating_add(n).min(self.data.len());
        let out = &self.data[self.pos..end];
        self.pos = end;
        out
    }

    /// A marker segment's payload: `n = i16(fp.read(2)) - 2; ImageFile._safe_read(fp, n)`.
    fn segment(&mut self) -> Result<&'a [u8], String> {
        let len = self.read(2);
        if len.len() < 2 {
            return Err("truncated marker segment length".into());
        }
        let n = u16::from_be_bytes([len[0], len[1]]) as i64 - 2;
        if n <= 0 {
            return Ok(&[]);
        }
        let s = self.read(n as usize);
        if (s.len() as i64) < n {
            return Err("Truncated File Read".into());
        }
        Ok(s)
    }
}

fn be16(s: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*s.get(at)?, *s.get(at + 1)?]))
}

fn be32(s: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(s.get(at..at + 4)?.try_into().ok()?))
}

/// Pillow's `Image.open` of a JPEG, up to its first SOS: the size and mode, or why it refuses.
pub fn read_header(data: &[u8]) -> Result<Header, String> {
    if !data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err("not a JPEG file".into());
    }
    let mut r = Reader { data, pos: 3 };
    let mut s: Vec<u8> = vec![0xFF];
    let (mut size, mut layers) = ((0u32, 0u32), 0u8);
    let mut icc: Vec<&[u8]> = Vec::new();
    let mut sos = false;
    while !s.is_empty() {
        if s[0] != 0xFF {
            s = r.read(1).to_vec();
            continue;
        }
        s.extend_from_slice(r.read(1));
        if s.len() < 2 {
            break;
        }
        let marker = u16::from_be_bytes([s[0], s[1]]);
        match marker {
            0xFFC0..=0xFFFE => {
                handle(marker, &mut r, &mut size, &mut layers, &mut icc)?;
                if marker == 0xFFDA {
                    sos = true;
                    break;
                }
                s = r.read(1).to_vec();
            }
            0xFFFF => s = vec![0xFF],
            0xFF00 => s = r.read(1).to_vec(),
            _ => return Err("no marker found".into()),
        }
    }
    if layers == 0 || size.0 == 0 || size.1 == 0 {
        return Err("cannot identify image file (no frame header, or a zero size)".into());
    }
    let pixels = size.0 as u64 * size.1 as u64;
    if pixels > 2 * MAX_IMAGE_PIXELS {
        return Err(format!(
            "DecompressionBombError: image size ({pixels} pixels) exceeds limit of {} pixels, could be decompression bomb DOS attack",
            2 * MAX_IMAGE_PIXELS
        ));
    }
    if !sos {
        return Err("cannot load this image (no scan before the end of the file)".into());
    }
    Ok(Header {
        width: size.0,
        height: size.1,
        layers,
    })
}

/// One marker's handler in Pillow's `MARKER` table.
fn handle<'a>(
    marker: u16,
    r: &mut Reader<'a>,
    size: &mut (u32, u32),
    layers: &mut u8,
    icc: &mut Vec<&'a [u8]>,
) -> Result<(), String> {
    match marker {
        // SOF0-3, 5-7, 9-11, 13-15, DHP.
        0xFFC0..=0xFFC3 | 0xFFC5..=0xFFC7 | 0xFFC9..=0xFFCB | 0xFFCD..=0xFFCF | 0xFFDE => {
            let s = r.segment()?;
            let (h, w) = (be16(s, 1), be16(s, 3));
            let (Some(h), Some(w)) = (h, w) else {
                return Err("short SOF segment".into());
            };
            *size = (w as u32, h as u32);
            if s[0] != 8 {
                return Err(format!("cannot handle {}-bit layers", s[0]));
            }
            let Some(&n) = s.get(5) else {
                return Err("short SOF segment".into());
            };
            if !matches!(n, 1 | 3 | 4) {
                return Err(format!("cannot handle {n}-layer images"));
            }
            *layers = n;
            if !icc.is_empty() {
                // `icclist.sort(); icclist[0][13]`
                if icc.iter().min().is_some_and(|p| p.len() < 14) {
                    return Err("short ICC_PROFILE segment".into());
                }
                icc.clear();
            }
            // `for i in range(6, len(s), 3): t = s[i:i+3]; ... t[2]`
            if (s.len() - 6) % 3 != 0 {
                return Err("SOF component list cut short".into());
            }
        }
        // DHT, DAC, SOS, DNL, DRI, EXP, COM: skipped.
        0xFFC4 | 0xFFCC | 0xFFDA | 0xFFDC | 0xFFDD | 0xFFDF | 0xFFFE => {
            r.segment()?;
        }
        0xFFDB => {
            let mut s = r.segment()?;
            while !s.is_empty() {
                let qt_length = if s[0] / 16 == 0 { 65 } else { 129 };
                if s.len() < qt_length {
                    return Err("bad quantization table marker".into());
                }
                s = &s[qt_length..];
            }
        }
        0xFFE0..=0xFFEF => app(marker, r.segment()?, icc)?,
        // JPG, RST0-7, SOI, EOI, JPG0-13: no payload read.
        _ => {}
    }
    Ok(())
}

/// `JpegImagePlugin.APP`: the checks of the segments it parses.
fn app<'a>(marker: u16, s: &'a [u8], icc: &mut Vec<&'a [u8]>) -> Result<(), String> {
    let bad = |what: &str| Err(format!("malformed {what} segment"));
    if marker == 0xFFE0 && s.starts_with(b"JFIF") {
        if be16(s, 5).is_none() {
            return bad("JFIF");
        }
    } else if marker == 0xFFE2 && s.starts_with(b"ICC_PROFILE\0") {
        icc.push(s);
    } else if marker == 0xFFED && s.starts_with(b"Photoshop 3.0\0") {
        // The resource loop stops quietly on a short field (struct.error), but a name length
        // past the end is an IndexError that escapes.
        let mut offset = 14usize;
        while s.get(offset..).is_some_and(|t| t.starts_with(b"8BIM")) {
            offset += 4;
            let Some(code) = be16(s, offset) else {
                break;
            };
            offset += 2;
            let Some(&name_len) = s.get(offset) else {
                return bad("Photoshop");
            };
            offset += 1 + name_len as usize;
            offset += offset & 1;
            let Some(size) = be32(s, offset) else {
                break;
            };
            offset += 4;
            let end = offset.saturating_add(size as usize).min(s.len());
            // ResolutionInfo's fields are read from the data: a short one stops the loop.
            if code == 0x03ED && end.saturating_sub(offset) < 14 {
                break;
            }
            offset = offset.saturating_add(size as usize);
            offset = offset.saturating_add(offset & 1);
        }
    } else if marker == 0xFFEE && s.starts_with(b"Adobe") && be16(s, 5).is_none() {
        return bad("Adobe");
    }
    Ok(())
}

//! A byte scanner for the shape nearly every result record has: `{"image_id": 7,
//! "category_id": 2, "bbox": [x, y, w, h], "score": s}` (keys in any order, each once, integer
//! ids, unescaped keys, a valid box). It returns `None` for anything else (a float or string id,
//! a fifth key, a repeated key, an escape, a malformed or out-of-range number, an unknown image,
//! a negative size, an error), and the caller hands that record to serde_json, which reads it
//! or says what is wrong. So what it accepts it reads exactly as serde_json does (the unit test
//! below compares the two on generated records), and every message still comes from one place.
//!
//! Why it exists (issue #17 allows a hand-written reader where a benchmark shows the need):
//! serde_json per record alone was 9-10% slower end to end than the hand-written reader it
//! replaced (median of 60 alternating `odinw score` runs of release builds on
//! `benchmarks/coco_eval`'s 506k detections, 2 cores); see
//! `benchmarks/coco_eval/serde_json_reader.md` for the numbers with this scanner.
//!
//! Numbers follow JSON's grammar (checked here) and are converted by `str::parse::<f64>`, which
//! rounds correctly, as serde_json does with `float_roundtrip` and as Python's `json` does.

/// What one scanned record holds.
pub(super) struct Scanned {
    /// Just past the closing `}`.
    pub end: usize,
    pub image: i64,
    pub category: i64,
    pub bbox: [f64; 4],
    pub score: f64,
}

/// Scans the record starting at `buf[start]` (a `{`), or `None` when serde_json should read it.
#[inline]
pub(super) fn scan(buf: &[u8], start: usize) -> Option<Scanned> {
    const IMAGE: u8 = 1;
    const CATEGORY: u8 = 2;
    const BBOX: u8 = 4;
    const SCORE: u8 = 8;
    if buf.get(start) != Some(&b'{') {
        return None;
    }
    let mut pos = start + 1;
    let mut seen = 0u8;
    let (mut image, mut category, mut bbox, mut score) = (0, 0, [0.0; 4], 0.0);
    loop {
        pos = ws(buf, pos);
        let key = string(buf, &mut pos)?;
        pos = ws(buf, pos);
        if buf.get(pos) != Some(&b':') {
            return None;
        }
        pos = ws(buf, pos + 1);
        let field = match key {
            b"image_id" => {
                image = integer(buf, &mut pos)?;
                IMAGE
            }
            b"category_id" => {
                category = integer(buf, &mut pos)?;
                CATEGORY
            }
            b"bbox" => {
                bbox = boxed(buf, &mut pos)?;
                BBOX
            }
            b"score" => {
                score = number(buf, &mut pos)?;
                SCORE
            }
            _ => return None,
        };
        if seen & field != 0 {
            return None;
        }
        seen |= field;
        pos = ws(buf, pos);
        match buf.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') if seen == IMAGE | CATEGORY | BBOX | SCORE => {
                return Some(Scanned {
                    end: pos + 1,
                    image,
                    category,
                    bbox,
                    score,
                });
            }
            _ => return None,
        }
    }
}

#[inline]
fn ws(buf: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = buf.get(pos) {
        pos += 1;
    }
    pos
}

/// A string without escapes or control characters (the text is known to be UTF-8).
#[inline]
fn string<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    if buf.get(*pos) != Some(&b'"') {
        return None;
    }
    let from = *pos + 1;
    let len = buf.get(from..)?.iter().position(|&b| b == b'"')?;
    let s = &buf[from..from + len];
    if s.iter().any(|&b| b == b'\\' || b < 0x20) {
        return None;
    }
    *pos = from + len + 1;
    Some(s)
}

/// A non-negative JSON integer that fits an `i64` (`0` or no leading zero; no fraction or
/// exponent, which serde_json reads as a float).
#[inline]
fn integer(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let digits = buf
        .get(*pos..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let token = &buf[*pos..*pos + digits];
    if digits == 0 || digits > 18 || (digits > 1 && token[0] == b'0') {
        return None;
    }
    if matches!(buf.get(*pos + digits), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    *pos += digits;
    Some(
        token
            .iter()
            .fold(0i64, |v, &d| v * 10 + i64::from(d - b'0')),
    )
}

/// A JSON number (grammar checked) as the nearest finite double.
#[inline]
fn number(buf: &[u8], pos: &mut usize) -> Option<f64> {
    let from = *pos;
    let mut p = from;
    let digits = |p: &mut usize| {
        let n = buf[*p..].iter().take_while(|b| b.is_ascii_digit()).count();
        *p += n;
        n
    };
    if buf.get(p) == Some(&b'-') {
        p += 1;
    }
    let int_start = p;
    match digits(&mut p) {
        0 => return None,
        n if n > 1 && buf[int_start] == b'0' => return None,
        _ => {}
    }
    if buf.get(p) == Some(&b'.') {
        p += 1;
        if digits(&mut p) == 0 {
            return None;
        }
    }
    if let Some(b'e' | b'E') = buf.get(p) {
        p += 1;
        if let Some(b'+' | b'-') = buf.get(p) {
            p += 1;
        }
        if digits(&mut p) == 0 {
            return None;
        }
    }
    // ASCII by construction.
    let value: f64 = std::str::from_utf8(&buf[from..p]).ok()?.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    *pos = p;
    Some(value)
}

/// `[x, y, w, h]`: four numbers, `w, h >= 0`.
#[inline]
fn boxed(buf: &[u8], pos: &mut usize) -> Option<[f64; 4]> {
    if buf.get(*pos) != Some(&b'[') {
        return None;
    }
    let mut b = [0.0; 4];
    let mut p = *pos + 1;
    for (i, v) in b.iter_mut().enumerate() {
        p = ws(buf, p);
        *v = number(buf, &mut p)?;
        p = ws(buf, p);
        let close = if i == 3 { b']' } else { b',' };
        if buf.get(p) != Some(&close) {
            return None;
        }
        p += 1;
    }
    if b[2] < 0.0 || b[3] < 0.0 {
        return None;
    }
    *pos = p;
    Some(b)
}

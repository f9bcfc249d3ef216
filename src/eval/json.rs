//! A small strict JSON pull reader for COCO files. It reads straight from the bytes, without
//! building a tree: numbers come back correctly rounded (as Python's `json` reads them) with
//! their exact integer value when they are integers, values the evaluator does not need are
//! skipped without allocating, and every error carries the byte offset it happened at.
//!
//! It follows the JSON grammar as Python's `json` does, except that the non-standard tokens
//! `NaN`, `Infinity` and `-Infinity` (which Python accepts) and numbers that overflow a double
//! are rejected: a score or box that is not finite is a broken input, not a number to rank.
use std::borrow::Cow;

/// Nesting deeper than this is rejected (Python's `json` stops at its recursion limit too).
const MAX_DEPTH: u32 = 512;

/// A parse error at byte offset `pos`.
#[derive(Debug, Clone)]
pub struct JsonError {
    pub pos: usize,
    pub msg: String,
}

pub type JResult<T> = Result<T, JsonError>;

/// A JSON number: its value as the nearest double, and its exact value when it is written as
/// an integer that fits an `i64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    pub value: f64,
    pub int: Option<i64>,
}

/// What the next value is, judged from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// Exact powers of ten representable in a double (the fast path of number parsing).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` starting at `pos` (0 for a whole file).
    pub fn new(buf: &'a [u8], pos: usize) -> JResult<Self> {
        if pos == 0 && buf.starts_with(b"\xEF\xBB\xBF") {
            return Err(JsonError {
                pos: 0,
                msg: "the file starts with a UTF-8 byte-order mark, which Python's json \
                      (and so pycocotools) rejects"
                    .into(),
            });
        }
        Ok(Reader { buf, pos, depth: 0 })
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn error<T>(&self, msg: impl Into<String>) -> JResult<T> {
        Err(JsonError {
            pos: self.pos,
            msg: msg.into(),
        })
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.buf.get(self.pos) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The kind of the next value (after whitespace); an error at the end of the input or at a
    /// byte that cannot start a value.
    pub fn peek_kind(&mut self) -> JResult<Kind> {
        self.skip_ws();
        match self.buf.get(self.pos) {
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Number),
            Some(b't' | b'f') => Ok(Kind::Bool),
            Some(b'n') => Ok(Kind::Null),
            Some(b'N' | b'I') => self.error(
                "NaN and Infinity are not valid JSON numbers (odinw rejects non-finite values)",
            ),
            Some(_) => self.error("expected a JSON value"),
            None => self.error("unexpected end of file, expected a JSON value"),
        }
    }

    fn expect_byte(&mut self, c: u8, what: &str) -> JResult<()> {
        self.skip_ws();
        if self.buf.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else if self.pos >= self.buf.len() {
            self.error(format!("unexpected end of file, expected {what}"))
        } else {
            self.error(format!("expected {what}"))
        }
    }

    fn enter(&mut self) -> JResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    /// Consumes `[`; then call [`Reader::array_next`] until it returns false.
    pub fn array_start(&mut self) -> JResult<()> {
        self.expect_byte(b'[', "'['")?;
        self.enter()
    }

    /// Moves to the next element of the array being read: true if there is one (the reader is
    /// then at its value), false after the closing `]`.
    pub fn array_next(&mut self, first: &mut bool) -> JResult<bool> {
        self.skip_ws();
        let c = self.buf.get(self.pos).copied();
        if *first {
            *first = false;
            if c == Some(b']') {
                self.pos += 1;
                self.depth = self.depth.saturating_sub(1);
                return Ok(false);
            }
            return Ok(true);
        }
        match c {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b']') => {
                self.pos += 1;
                self.depth = self.depth.saturating_sub(1);
                Ok(false)
            }
            None => self.error("unexpected end of file inside an array"),
            _ => self.error("expected ',' or ']' after an array element"),
        }
    }

    /// Consumes `{`; then call [`Reader::object_next`] until it returns `None`.
    pub fn object_start(&mut self) -> JResult<()> {
        self.expect_byte(b'{', "'{'")?;
        self.enter()
    }

    /// The next key of the object being read (the reader is then at its value), or `None`
    /// after the closing `}`.
    pub fn object_next(&mut self, first: &mut bool) -> JResult<Option<Cow<'a, [u8]>>> {
        self.skip_ws();
        let c = self.buf.get(self.pos).copied();
        if *first {
            *first = false;
            if c == Some(b'}') {
                self.pos += 1;
                self.depth = self.depth.saturating_sub(1);
                return Ok(None);
            }
        } else {
            match c {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(None);
                }
                None => return self.error("unexpected end of file inside an object"),
                _ => return self.error("expected ',' or '}' after an object member"),
            }
        }
        if self.buf.get(self.pos) != Some(&b'"') {
            return self.error("expected a string key in double quotes");
        }
        let key = self.string_bytes()?;
        self.expect_byte(b':', "':' after an object key")?;
        Ok(Some(key))
    }

    /// Reads a string value.
    pub fn string(&mut self) -> JResult<Cow<'a, str>> {
        self.skip_ws();
        if self.buf.get(self.pos) != Some(&b'"') {
            return self.error("expected a string");
        }
        let start = self.pos;
        match self.string_bytes()? {
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(s) => Ok(Cow::Borrowed(s)),
                Err(_) => Err(JsonError {
                    pos: start,
                    msg: "string is not valid UTF-8".into(),
                }),
            },
            Cow::Owned(v) => match String::from_utf8(v) {
                Ok(s) => Ok(Cow::Owned(s)),
                Err(_) => Err(JsonError {
                    pos: start,
                    msg: "string is not valid UTF-8".into(),
                }),
            },
        }
    }

    /// The bytes of the string at the reader (which is at its opening quote), unescaped.
    fn string_bytes(&mut self) -> JResult<Cow<'a, [u8]>> {
        let buf = self.buf;
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match buf.get(i) {
                Some(b'"') => {
                    self.check_utf8(start, i)?;
                    self.pos = i + 1;
                    return Ok(Cow::Borrowed(&buf[start..i]));
                }
                Some(b'\\') => break,
                Some(&c) if c < 0x20 => {
                    self.pos = i;
                    return self.error("control character inside a string");
                }
                Some(_) => i += 1,
                None => {
                    self.pos = i;
                    return self.error("unexpected end of file inside a string");
                }
            }
        }
        let mut out = buf[start..i].to_vec();
        loop {
            match buf.get(i) {
                Some(b'"') => {
                    self.check_utf8(start, i)?;
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    let esc = buf.get(i + 1).copied();
                    i += 2;
                    match esc {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'/') => out.push(b'/'),
                        Some(b'b') => out.push(8),
                        Some(b'f') => out.push(12),
                        Some(b'n') => out.push(b'\n'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'u') => {
                            let mut code = self.hex4(i)?;
                            i += 4;
                            if (0xD800..0xDC00).contains(&code)
                                && buf.get(i) == Some(&b'\\')
                                && buf.get(i + 1) == Some(&b'u')
                            {
                                let low = self.hex4(i + 2)?;
                                if (0xDC00..0xE000).contains(&low) {
                                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                    i += 6;
                                }
                            }
                            // A lone surrogate (Python keeps it) becomes U+FFFD here.
                            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => {
                            self.pos = i - 1;
                            return self.error("invalid escape in a string");
                        }
                    }
                }
                Some(&c) if c < 0x20 => {
                    self.pos = i;
                    return self.error("control character inside a string");
                }
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return self.error("unexpected end of file inside a string");
                }
            }
        }
    }

    /// Checks that the raw bytes of a string, `buf[start..end]`, are UTF-8 (escapes are ASCII,
    /// so this is the string's validity). Python reads the file as UTF-8 before parsing it, so
    /// it refuses such a file, keys and skipped values included; outside strings any non-ASCII
    /// byte is already a syntax error.
    fn check_utf8(&mut self, start: usize, end: usize) -> JResult<()> {
        match std::str::from_utf8(&self.buf[start..end]) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.pos = start + e.valid_up_to();
                self.error(format!(
                    "byte 0x{:02x} is not valid UTF-8 (Python's json, and so pycocotools, \
                     refuses the file)",
                    self.buf[self.pos]
                ))
            }
        }
    }

    fn hex4(&mut self, at: usize) -> JResult<u32> {
        let digits = self.buf.get(at..at + 4).unwrap_or(&[]);
        let mut v = 0u32;
        if digits.len() == 4 {
            for &d in digits {
                match (d as char).to_digit(16) {
                    Some(h) => v = v * 16 + h,
                    None => {
                        self.pos = at;
                        return self.error("invalid \\u escape in a string");
                    }
                }
            }
            return Ok(v);
        }
        self.pos = at;
        self.error("invalid \\u escape in a string")
    }

    /// Reads a number, correctly rounded; rejects `NaN`, `Infinity` and overflow.
    #[inline]
    pub fn number(&mut self) -> JResult<Number> {
        self.skip_ws();
        // Fast path for the usual shape `-?int(.frac)?` with at most 19 digits: one tight
        // loop, then one exact IEEE operation. Anything else takes the general path.
        let buf = self.buf;
        let len = buf.len();
        let start = self.pos;
        let mut i = start;
        let neg = i < len && buf[i] == b'-';
        i += usize::from(neg);
        let int_start = i;
        let mut mant: u64 = 0;
        while i < len {
            let d = buf[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mant = mant.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        let int_digits = i - int_start;
        let mut frac_digits = 0;
        if i < len && buf[i] == b'.' {
            let frac_start = i + 1;
            i = frac_start;
            while i < len {
                let d = buf[i].wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                mant = mant.wrapping_mul(10).wrapping_add(u64::from(d));
                i += 1;
            }
            frac_digits = i - frac_start;
        }
        let simple = int_digits > 0
            && (int_digits == 1 || buf[int_start] != b'0')
            && (frac_digits > 0 || i == int_start + int_digits)
            && int_digits + frac_digits <= 19
            && !(i < len && (buf[i] | 0x20) == b'e')
            && mant <= 1 << 53
            && frac_digits <= 22;
        if !simple {
            return self.number_general();
        }
        self.pos = i;
        let int = if frac_digits == 0 {
            Some(if neg {
                (mant as i64).wrapping_neg()
            } else {
                mant as i64
            })
        } else {
            None
        };
        // Both operands are exact doubles, so one IEEE operation rounds correctly.
        let value = mant as f64 / POW10[frac_digits];
        // "-0" is the integer 0 in Python; "-0.0" is the float -0.0.
        let value = if neg && int != Some(0) { -value } else { value };
        Ok(Number { value, int })
    }

    /// The general number reader: exponents, long mantissas, errors.
    fn number_general(&mut self) -> JResult<Number> {
        self.skip_ws();
        let buf = self.buf;
        let start = self.pos;
        let mut i = start;
        let neg = buf.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        // Up to 19 significant digits are accumulated exactly; `exp10` scales them.
        let mut mant: u64 = 0;
        let mut sig = 0u32;
        let mut truncated = false;
        let mut exp10: i64 = 0;
        match buf.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(&c) = buf.get(i) {
                    if !c.is_ascii_digit() {
                        break;
                    }
                    if sig < 19 {
                        mant = mant * 10 + u64::from(c - b'0');
                        sig += 1;
                    } else {
                        truncated |= c != b'0';
                        exp10 += 1;
                    }
                    i += 1;
                }
            }
            Some(b'I') | Some(b'N') => {
                return self.error(
                    "NaN and Infinity are not valid JSON numbers (odinw rejects non-finite values)",
                )
            }
            _ => return self.error("invalid number"),
        }
        let mut is_int = true;
        if buf.get(i) == Some(&b'.') {
            is_int = false;
            i += 1;
            let digits_start = i;
            while let Some(&c) = buf.get(i) {
                if !c.is_ascii_digit() {
                    break;
                }
                if sig < 19 {
                    mant = mant * 10 + u64::from(c - b'0');
                    if mant != 0 {
                        sig += 1;
                    }
                    exp10 -= 1;
                } else {
                    truncated |= c != b'0';
                }
                i += 1;
            }
            if i == digits_start {
                self.pos = i;
                return self.error("invalid number: no digits after the decimal point");
            }
        }
        if let Some(b'e' | b'E') = buf.get(i) {
            is_int = false;
            i += 1;
            let mut eneg = false;
            if let Some(&s @ (b'+' | b'-')) = buf.get(i) {
                eneg = s == b'-';
                i += 1;
            }
            let digits_start = i;
            let mut e: i64 = 0;
            while let Some(&c) = buf.get(i) {
                if !c.is_ascii_digit() {
                    break;
                }
                e = (e * 10 + i64::from(c - b'0')).min(1_000_000);
                i += 1;
            }
            if i == digits_start {
                self.pos = i;
                return self.error("invalid number: no digits in the exponent");
            }
            exp10 += if eneg { -e } else { e };
        }
        self.pos = i;
        let int = if is_int && exp10 == 0 {
            if neg {
                (mant <= 1 << 63).then(|| (mant as i64).wrapping_neg())
            } else {
                i64::try_from(mant).ok()
            }
        } else {
            None
        };
        let value = if mant == 0 && !truncated {
            0.0
        } else if !truncated && mant <= 1 << 53 && (-22..=22).contains(&exp10) {
            // Both operands are exact doubles, so one IEEE operation rounds correctly.
            let m = mant as f64;
            if exp10 >= 0 {
                m * POW10[exp10 as usize]
            } else {
                m / POW10[(-exp10) as usize]
            }
        } else {
            let text = &buf[start + usize::from(neg)..i];
            // The grammar was checked above, so this is ASCII that Rust's parser accepts; it
            // rounds correctly.
            std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        // "-0" is the integer 0 in Python, not the float -0.0.
        let value = if neg && int != Some(0) { -value } else { value };
        if !value.is_finite() {
            self.pos = start;
            return self.error(format!(
                "number {} is out of the range of a double",
                String::from_utf8_lossy(&buf[start..i])
            ));
        }
        Ok(Number { value, int })
    }

    /// Reads `true` or `false`.
    pub fn boolean(&mut self) -> JResult<bool> {
        self.skip_ws();
        if self.buf[self.pos..].starts_with(b"true") {
            self.pos += 4;
            Ok(true)
        } else if self.buf[self.pos..].starts_with(b"false") {
            self.pos += 5;
            Ok(false)
        } else {
            self.error("expected true or false")
        }
    }

    /// Skips one value of any kind, checking its syntax.
    pub fn skip_value(&mut self) -> JResult<()> {
        match self.peek_kind()? {
            Kind::Object => {
                self.object_start()?;
                let mut first = true;
                while self.object_next(&mut first)?.is_some() {
                    self.skip_value()?;
                }
            }
            Kind::Array => {
                self.array_start()?;
                let mut first = true;
                while self.array_next(&mut first)? {
                    self.skip_value()?;
                }
            }
            Kind::String => {
                self.string_bytes()?;
            }
            Kind::Number => {
                self.number()?;
            }
            Kind::Bool => {
                self.boolean()?;
            }
            Kind::Null => {
                if self.buf[self.pos..].starts_with(b"null") {
                    self.pos += 4;
                } else {
                    return self.error("expected null");
                }
            }
        }
        Ok(())
    }

    /// Checks that only whitespace follows the top-level value.
    pub fn finish(&mut self) -> JResult<()> {
        self.skip_ws();
        if self.pos < self.buf.len() {
            return self.error("extra data after the JSON value");
        }
        Ok(())
    }
}

/// `line L, column C` (1-based) of byte offset `pos` in `buf`.
pub fn line_col(buf: &[u8], pos: usize) -> (usize, usize) {
    let upto = &buf[..pos.min(buf.len())];
    let line = upto.iter().filter(|&&c| c == b'\n').count() + 1;
    let col = upto.len() - upto.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> JResult<Number> {
        Reader::new(s.as_bytes(), 0)?.number()
    }

    #[test]
    fn numbers_round_like_python() {
        // Values whose shortest repr needs 16-17 digits, where a sloppy parser is off by an ulp.
        for s in [
            "0.9350724220275879",
            "0.35000000000000003",
            "0.8999999999999999",
            "378.98",
            "1e-7",
            "123456789012345678901234567890",
            "2.2250738585072014e-308",
            "4.9e-324",
            "1.7976931348623157e308",
            "0.1",
            "-0.0",
            "5e-324",
            "9007199254740993",
            "0.30000000000000004",
        ] {
            let n = num(s).unwrap();
            let expect: f64 = s.parse().unwrap();
            assert_eq!(n.value.to_bits(), expect.to_bits(), "{s}");
        }
        // Python reads "-0" as the integer 0.
        assert_eq!(num("-0").unwrap().value.to_bits(), 0.0f64.to_bits());
        assert_eq!(num("42").unwrap().int, Some(42));
        assert_eq!(num("-9223372036854775808").unwrap().int, Some(i64::MIN));
        assert_eq!(num("9223372036854775808").unwrap().int, None);
        assert_eq!(num("42.0").unwrap().int, None);
        assert_eq!(num("1e2").unwrap().int, None);
    }

    #[test]
    fn rejects_what_json_forbids() {
        for s in [
            "NaN",
            "-Infinity",
            "Infinity",
            "1e400",
            "-1e999",
            "01x",
            ".5",
            "1.",
            "1e",
            "+1",
        ] {
            let r = Reader::new(s.as_bytes(), 0).unwrap().number();
            let bad = match r {
                Err(_) => true,
                Ok(_) => {
                    let mut rd = Reader::new(s.as_bytes(), 0).unwrap();
                    rd.number().unwrap();
                    rd.finish().is_err()
                }
            };
            assert!(bad, "{s} should be rejected");
        }
    }

    #[test]
    fn strings_and_skipping() {
        let text = br#"{"a\u0062": [1, {"x": "y\"z"}, true, null], "k": "\ud83d\ude00"}"#;
        let mut r = Reader::new(text, 0).unwrap();
        r.object_start().unwrap();
        let mut first = true;
        let k = r.object_next(&mut first).unwrap().unwrap();
        assert_eq!(&*k, b"ab");
        r.skip_value().unwrap();
        let k = r.object_next(&mut first).unwrap().unwrap();
        assert_eq!(&*k, b"k");
        assert_eq!(r.string().unwrap(), "\u{1F600}");
        assert!(r.object_next(&mut first).unwrap().is_none());
        r.finish().unwrap();
    }

    #[test]
    fn errors_have_positions() {
        let text = b"[1,\n 2,\n ]";
        let mut r = Reader::new(text, 0).unwrap();
        r.array_start().unwrap();
        let mut first = true;
        let mut err = None;
        while let Ok(true) = r.array_next(&mut first) {
            if let Err(e) = r.number() {
                err = Some(e);
                break;
            }
        }
        let e = err.unwrap();
        assert_eq!(line_col(text, e.pos), (3, 2));
        assert!(Reader::new(b"\xEF\xBB\xBF[]", 0).is_err());
    }
}

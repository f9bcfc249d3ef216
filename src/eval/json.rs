//! The evaluator's JSON, on serde_json: the whole-file checks Python's `json` makes before it
//! parses (a byte-order mark, invalid UTF-8 anywhere), a visitor that reads any value as a
//! [`Scalar`] (numbers with their exact integer value, strings borrowed when unescaped, the
//! kind of anything else), and serde_json's errors turned into byte positions and messages
//! that say what is wrong in Python's terms.
//!
//! Numbers are serde_json's with its `float_roundtrip` feature: correctly rounded, as Python's
//! `json` reads them. `NaN`, `Infinity` and numbers beyond a double (which Python accepts) are
//! rejected: a score or box that is not finite is a broken input, not a number to rank.
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// serde_json's nesting limit for values it deserializes (deeper input is refused, never a
/// stack overflow); values skipped as `IgnoredAny` are skipped without recursion.
pub const MAX_DEPTH: u32 = 128;

/// A parse or content error at byte offset `pos` of the file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("at byte {pos}: {msg}")]
pub struct JsonError {
    pub pos: usize,
    pub msg: String,
}

pub type JResult<T> = Result<T, JsonError>;

/// What a value is, for messages.
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

/// Any JSON value, as much of it as the evaluator reads: numbers (the nearest double, and the
/// exact value when written as an integer that fits an `i64`), strings, booleans; arrays and
/// objects are skipped (their syntax checked) and only their kind kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Num { value: f64, int: Option<i64> },
    Str(Cow<'a, str>),
    Bool(bool),
    Other(Kind),
}

impl Scalar<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Scalar::Num { .. } => Kind::Number,
            Scalar::Str(_) => Kind::String,
            Scalar::Bool(_) => Kind::Bool,
            Scalar::Other(k) => *k,
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Num {
            value: v as f64,
            int: Some(v),
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Num {
            value: v as f64,
            int: i64::try_from(v).ok(),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if !v.is_finite() {
            return Err(E::custom(OUT_OF_RANGE));
        }
        Ok(Scalar::Num {
            value: v,
            int: None,
        })
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other(Kind::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other(Kind::Array))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other(Kind::Object))
    }
}

/// Implements the `visit_*` methods of a visitor whose only accepted shape is an object, each
/// refusing with `self.not_an_object(kind)` (after skipping the value).
macro_rules! only_objects {
    () => {
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom(
                self.not_an_object($crate::eval::json::Kind::Number),
            ))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom(
                self.not_an_object($crate::eval::json::Kind::Number),
            ))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom(
                self.not_an_object($crate::eval::json::Kind::Number),
            ))
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::custom(
                self.not_an_object($crate::eval::json::Kind::String),
            ))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom(
                self.not_an_object($crate::eval::json::Kind::Bool),
            ))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom(
                self.not_an_object($crate::eval::json::Kind::Null),
            ))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(serde::de::Error::custom(
                self.not_an_object($crate::eval::json::Kind::Array),
            ))
        }
    };
}
pub(crate) use only_objects;

/// A map key, borrowed when it has no escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

const OUT_OF_RANGE: &str = "number is out of the range of a double";
const NON_FINITE: &str =
    "NaN and Infinity are not valid JSON numbers (odinw rejects non-finite values)";

/// The file as text, refused as Python's `json` (and so pycocotools) refuses it: a UTF-8
/// byte-order mark, or a byte that is not UTF-8 anywhere (keys and skipped values included:
/// Python decodes the whole file before parsing it).
pub fn text(bytes: &[u8]) -> JResult<&str> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(JsonError {
            pos: 0,
            msg: "the file starts with a UTF-8 byte-order mark, which Python's json \
                  (and so pycocotools) rejects"
                .into(),
        });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let pos = e.valid_up_to();
        JsonError {
            pos,
            msg: format!(
                "byte 0x{:02x} is not valid UTF-8 (Python's json, and so pycocotools, refuses \
                 the file)",
                bytes[pos]
            ),
        }
    })
}

/// The byte offset of serde_json's (1-based) line and column in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(p) => start += p + 1,
            None => return text.len(),
        }
    }
    (start + column.saturating_sub(1)).min(text.len())
}

/// A serde_json error from parsing `text[base..]` (or a value tree, without a position: then
/// `base`), as a position in the whole file and a message in the reader's words. `prefix`
/// (e.g. `annotations[3]: `) goes before the message.
pub fn error_at(text: &str, base: usize, e: &serde_json::Error, prefix: &str) -> JsonError {
    let full = e.to_string();
    let msg = match e.line() {
        0 => full.as_str(),
        line => full
            .strip_suffix(&format!(" at line {line} column {}", e.column()))
            .unwrap_or(&full),
    };
    let pos = match e.line() {
        0 => base,
        line => base + offset_of(&text[base..], line, e.column()),
    };
    let bytes = text.as_bytes();
    let here = bytes.get(pos).copied();
    let looks_non_finite = |p: usize| {
        let rest = &bytes[p.min(bytes.len())..];
        let rest = rest.strip_prefix(b"-").unwrap_or(rest);
        rest.starts_with(b"NaN") || rest.starts_with(b"Inf")
    };
    let msg: Cow<str> = if e.is_eof() {
        format!(
            "unexpected end of file{}",
            msg.strip_prefix("EOF").unwrap_or("")
        )
        .into()
    } else if e.is_syntax() && (looks_non_finite(pos) || looks_non_finite(pos.saturating_sub(1))) {
        NON_FINITE.into()
    } else if msg == "number out of range" {
        format!("{OUT_OF_RANGE} ({})", number_at(bytes, pos)).into()
    } else if msg == "trailing characters" {
        "extra data after the JSON value".into()
    } else if msg == "key must be a string" || (msg == "trailing comma" && here == Some(b'}')) {
        "expected a string key in double quotes".into()
    } else if msg == "trailing comma" {
        "expected a JSON value after ','".into()
    } else if msg == "expected value" {
        "expected a JSON value".into()
    } else if msg == "lone leading surrogate in hex escape" || msg == "unexpected end of hex escape"
    {
        "a \\u escape is a lone UTF-16 surrogate (Python's json keeps it; odinw refuses it \
         in the values it reads)"
            .into()
    } else if msg == "recursion limit exceeded" {
        format!("nesting deeper than {MAX_DEPTH} levels").into()
    } else {
        msg.into()
    };
    JsonError {
        pos,
        msg: format!("{prefix}{msg}"),
    }
}

/// The number text around `pos` (serde_json reports an overflow at or after its end).
fn number_at(bytes: &[u8], pos: usize) -> String {
    let is_num = |c: u8| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E');
    let mut start = pos.min(bytes.len());
    while start > 0 && is_num(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = start;
    while end < bytes.len() && is_num(bytes[end]) {
        end += 1;
    }
    String::from_utf8_lossy(&bytes[start..end.min(start + 40)]).into_owned()
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

    fn num(s: &str) -> JResult<Scalar<'_>> {
        let t = text(s.as_bytes())?;
        serde_json::from_str::<Scalar>(t).map_err(|e| error_at(t, 0, &e, ""))
    }

    fn value(s: &str) -> f64 {
        match num(s).unwrap() {
            Scalar::Num { value, .. } => value,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn int(s: &str) -> Option<i64> {
        match num(s).unwrap() {
            Scalar::Num { int, .. } => int,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn numbers_round_like_python() {
        // Values whose shortest repr needs 16-17 digits, where a sloppy parser is off by an
        // ulp; Rust's `str::parse` rounds correctly, as Python's float() does.
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
            "1.00000000000000011102230246251565404236316680908203125",
            "0.000000000000000000000000000000000000001234567890123456789",
        ] {
            let expect: f64 = s.parse().unwrap();
            assert_eq!(value(s).to_bits(), expect.to_bits(), "{s}");
        }
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(int("9223372036854775808"), None);
        assert_eq!(int("42.0"), None);
        assert_eq!(int("1e2"), None);
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
            assert!(num(s).is_err(), "{s} should be rejected");
        }
        assert!(num("NaN").unwrap_err().msg.contains("NaN and Infinity"));
        assert!(num("[1, -Infinity]")
            .unwrap_err()
            .msg
            .contains("NaN and Infinity"));
        let e = num("1e400").unwrap_err().msg;
        assert!(
            e.contains("out of the range of a double") && e.contains("1e400"),
            "{e}"
        );
        assert!(num("[1,\n 2,\n ")
            .unwrap_err()
            .msg
            .contains("unexpected end of file"));
        assert!(num("{\"a\": 1,}")
            .unwrap_err()
            .msg
            .contains("expected a string key"));
        assert!(num("[1] 2").unwrap_err().msg.contains("extra data"));
        // Values the evaluator skips are skipped without recursion (no stack overflow at any
        // depth); those it reads are nested two deep at most.
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(num(&deep).unwrap(), Scalar::Other(Kind::Array));
        let deep = "[".repeat(100_000) + &"]".repeat(99_999);
        assert!(num(&deep)
            .unwrap_err()
            .msg
            .contains("unexpected end of file"));
    }

    #[test]
    fn strings_and_kinds() {
        let t = r#"[{"a": [1, {"x": "y\"z"}, true, null]}, "\ud83d\ude00", "plain", false, null]"#;
        let v: Vec<Scalar> = serde_json::from_str(t).unwrap();
        assert_eq!(v[0], Scalar::Other(Kind::Object));
        assert_eq!(v[1], Scalar::Str("\u{1F600}".into()));
        assert!(matches!(&v[2], Scalar::Str(Cow::Borrowed("plain"))));
        assert_eq!(v[3], Scalar::Bool(false));
        assert_eq!(v[4], Scalar::Other(Kind::Null));
    }

    #[test]
    fn errors_have_positions() {
        let t = "[1,\n 2,\n ]";
        let e = num(t).unwrap_err();
        assert_eq!(line_col(t.as_bytes(), e.pos), (3, 2), "{e:?}");
        assert!(text(b"\xEF\xBB\xBF[]").is_err());
        let e = text(b"[\"a\xff\"]").unwrap_err();
        assert_eq!(e.pos, 3);
        assert!(e.msg.contains("0xff is not valid UTF-8"));
    }
}

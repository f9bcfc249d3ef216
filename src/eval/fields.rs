//! Typed readers for the few COCO fields the evaluator uses (ids, boxes, numbers, flags), on
//! top of serde_json (see `json`), with messages that say which field is wrong and why.
use super::ids::Id;
use super::json::{Kind, Scalar};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// An id as read, borrowing the string when it has no escapes.
pub enum IdVal<'a> {
    Int(i64),
    Str(Cow<'a, str>),
}

impl IdVal<'_> {
    pub fn to_id(&self) -> Id {
        match self {
            IdVal::Int(v) => Id::Int(*v),
            IdVal::Str(s) => Id::Str(s.as_ref().into()),
        }
    }
}

impl std::fmt::Display for IdVal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdVal::Int(v) => write!(f, "{v}"),
            IdVal::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// An integral number as an `i64`: JSON integers, and floats like `3.0` (Python's dicts treat
/// `3.0` and `3` as the same key).
fn integral(value: f64, int: Option<i64>) -> Option<i64> {
    int.or_else(|| (value.fract() == 0.0 && value.abs() < 9.2e18).then_some(value as i64))
}

/// An image or category id: an integer or a string.
pub fn id<'a>(v: Scalar<'a>, what: &str) -> Result<IdVal<'a>, String> {
    match v {
        Scalar::Num { value, int } => match integral(value, int) {
            Some(i) => Ok(IdVal::Int(i)),
            None => Err(format!(
                "{what} must be an integer or a string, not {value}"
            )),
        },
        Scalar::Str(s) => Ok(IdVal::Str(s)),
        other => Err(format!(
            "{what} must be an integer or a string, not {}",
            other.kind().name()
        )),
    }
}

/// An annotation id: an integer.
pub fn int(v: Scalar<'_>, what: &str) -> Result<i64, String> {
    match v {
        Scalar::Num { value, int } => {
            integral(value, int).ok_or_else(|| format!("{what} must be an integer, not {value}"))
        }
        other => Err(format!(
            "{what} must be an integer, not {}",
            other.kind().name()
        )),
    }
}

/// A finite number (serde_json refuses the others).
#[inline]
pub fn number(v: Scalar<'_>, what: &str) -> Result<f64, String> {
    match v {
        Scalar::Num { value, .. } => Ok(value),
        other => Err(format!(
            "{what} must be a number, not {}",
            other.kind().name()
        )),
    }
}

/// An `iscrowd` flag: `0`/`1` (any non-negative integer; non-zero is crowd) or a boolean.
pub fn crowd(v: Scalar<'_>) -> Result<bool, String> {
    match v {
        Scalar::Bool(b) => Ok(b),
        Scalar::Num { value, int } => match integral(value, int) {
            Some(i) if i >= 0 => Ok(i != 0),
            _ => Err(format!("iscrowd must be 0 or 1, not {value}")),
        },
        other => Err(format!(
            "iscrowd must be 0 or 1, not {}",
            other.kind().name()
        )),
    }
}

/// A box `[x, y, w, h]` of four finite numbers with `w, h >= 0`, or why the value is not one.
/// A wrong value is not a parse error (it is skipped whole): Python keeps the last value of a
/// repeated key, so a field is judged only once its record has been read.
pub struct Bbox(pub Result<[f64; 4], String>);

impl<'de> de::Deserialize<'de> for Bbox {
    #[inline]
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BboxVisitor)
    }
}

struct BboxVisitor;

fn not_an_array(kind: Kind) -> Bbox {
    Bbox(Err(format!(
        "bbox must be an array [x, y, width, height], not {}",
        kind.name()
    )))
}

impl<'de> Visitor<'de> for BboxVisitor {
    type Value = Bbox;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("bbox [x, y, width, height]")
    }
    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bbox, A::Error> {
        let mut b = [0.0; 4];
        let mut n = 0;
        let mut wrong = None;
        while let Some(v) = seq.next_element::<Scalar>()? {
            match number(v, "each bbox entry") {
                Ok(v) if n < 4 => b[n] = v,
                Ok(_) => {}
                Err(e) => wrong = wrong.or(Some(e)),
            }
            n += 1;
        }
        if let Some(e) = wrong {
            return Ok(Bbox(Err(e)));
        }
        if n != 4 {
            return Ok(Bbox(Err(format!(
                "bbox must have 4 numbers [x, y, width, height], not {n}"
            ))));
        }
        if b[2] < 0.0 || b[3] < 0.0 {
            return Ok(Bbox(Err(format!(
                "bbox [{}, {}, {}, {}] has a negative width or height",
                b[0], b[1], b[2], b[3]
            ))));
        }
        Ok(Bbox(Ok(b)))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Bbox, E> {
        Ok(not_an_array(Kind::Number))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Bbox, E> {
        Ok(not_an_array(Kind::Number))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Bbox, E> {
        Ok(not_an_array(Kind::Number))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Bbox, E> {
        Ok(not_an_array(Kind::String))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Bbox, E> {
        Ok(not_an_array(Kind::Bool))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Bbox, E> {
        Ok(not_an_array(Kind::Null))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Bbox, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(not_an_array(Kind::Object))
    }
}

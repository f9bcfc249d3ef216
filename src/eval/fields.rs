//! Typed readers for the few COCO fields the evaluator uses (ids, boxes, numbers, flags), on
//! top of the JSON reader, with messages that say which field is wrong and why.
use super::ids::Id;
use super::json::{JResult, Kind, Reader};
use std::borrow::Cow;

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
pub fn read_id<'a>(r: &mut Reader<'a>, what: &str) -> JResult<IdVal<'a>> {
    match r.peek_kind()? {
        Kind::Number => {
            let n = r.number()?;
            match integral(n.value, n.int) {
                Some(v) => Ok(IdVal::Int(v)),
                None => r.error(format!(
                    "{what} must be an integer or a string, not {}",
                    n.value
                )),
            }
        }
        Kind::String => Ok(IdVal::Str(r.string()?)),
        k => r.error(format!(
            "{what} must be an integer or a string, not {}",
            k.name()
        )),
    }
}

/// An annotation id: an integer.
pub fn read_int(r: &mut Reader<'_>, what: &str) -> JResult<i64> {
    match r.peek_kind()? {
        Kind::Number => {
            let n = r.number()?;
            match integral(n.value, n.int) {
                Some(v) => Ok(v),
                None => r.error(format!("{what} must be an integer, not {}", n.value)),
            }
        }
        k => r.error(format!("{what} must be an integer, not {}", k.name())),
    }
}

/// A finite number.
#[inline]
pub fn read_number(r: &mut Reader<'_>, what: &str) -> JResult<f64> {
    match r.peek_kind()? {
        Kind::Number => Ok(r.number()?.value),
        k => r.error(format!("{what} must be a number, not {}", k.name())),
    }
}

/// A box `[x, y, w, h]` of four finite numbers with `w, h >= 0`.
#[inline]
pub fn read_bbox(r: &mut Reader<'_>) -> JResult<[f64; 4]> {
    let kind = r.peek_kind()?;
    if kind != Kind::Array {
        return r.error(format!(
            "bbox must be an array [x, y, width, height], not {}",
            kind.name()
        ));
    }
    let start = r.pos();
    r.array_start()?;
    let mut b = [0.0; 4];
    let mut n = 0;
    let mut first = true;
    while r.array_next(&mut first)? {
        let v = read_number(r, "each bbox entry")?;
        if n < 4 {
            b[n] = v;
        }
        n += 1;
    }
    if n != 4 {
        return Err(super::json::JsonError {
            pos: start,
            msg: format!("bbox must have 4 numbers [x, y, width, height], not {n}"),
        });
    }
    if b[2] < 0.0 || b[3] < 0.0 {
        return Err(super::json::JsonError {
            pos: start,
            msg: format!(
                "bbox [{}, {}, {}, {}] has a negative width or height",
                b[0], b[1], b[2], b[3]
            ),
        });
    }
    Ok(b)
}

/// An `iscrowd` flag: `0`/`1` (any non-negative integer; non-zero is crowd) or a boolean.
pub fn read_crowd(r: &mut Reader<'_>) -> JResult<bool> {
    match r.peek_kind()? {
        Kind::Bool => r.boolean(),
        Kind::Number => {
            let n = r.number()?;
            match integral(n.value, n.int) {
                Some(v) if v >= 0 => Ok(v != 0),
                _ => r.error(format!("iscrowd must be 0 or 1, not {}", n.value)),
            }
        }
        k => r.error(format!("iscrowd must be 0 or 1, not {}", k.name())),
    }
}

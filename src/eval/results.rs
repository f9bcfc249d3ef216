//! Detections as pycocotools' `loadRes` + `_prepare` see them: every result must be on an
//! image of the ground truth, results of categories the ground truth does not list are
//! dropped, the area is `w*h`, and within each (category, image) cell the detections are in
//! descending score order, ties kept in input order (numpy's stable mergesort).
//!
//! A results file with millions of detections is parsed in parallel: the list is cut at
//! guessed element boundaries, each piece's records are read one by one ([`record_scan`] for
//! the common shape, serde_json for the rest and for every error), and a
//! piece is kept only if the piece before it ended exactly at its start (otherwise parsing
//! resumes from there), so the outcome is the same as one sequential pass.
use super::fields::{self, Bbox, IdVal};
use super::gt::GroundTruth;
use super::ids::Id;
use super::json::{self, only_objects, JResult, JsonError, Key, Kind, Scalar};
use super::record_scan;
use super::LoadError;
use rayon::prelude::*;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::path::Path;

/// One detection handed over in memory (for callers that have predictions, not a file).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub image_id: Id,
    pub category_id: Id,
    /// `[x, y, width, height]`.
    pub bbox: [f64; 4],
    pub score: f64,
}

/// Detections grouped like the ground truth: cell `k * num_images + i`, best score first.
pub struct Detections {
    pub(crate) cell_start: Vec<u32>,
    pub(crate) boxes: Vec<[f64; 4]>,
    pub(crate) scores: Vec<f64>,
    pub(crate) areas: Vec<f64>,
    num_input: usize,
    unknown_category: usize,
}

/// Parsed detections before grouping: cell index (`u32::MAX`: category not in the GT).
#[derive(Default)]
struct Flat {
    cells: Vec<u32>,
    boxes: Vec<[f64; 4]>,
    scores: Vec<f64>,
}

impl Flat {
    fn with_capacity(n: usize) -> Self {
        Flat {
            cells: Vec::with_capacity(n),
            boxes: Vec::with_capacity(n),
            scores: Vec::with_capacity(n),
        }
    }
    fn append(&mut self, mut other: Flat) {
        self.cells.append(&mut other.cells);
        self.boxes.append(&mut other.boxes);
        self.scores.append(&mut other.scores);
    }
}

const NO_CELL: u32 = u32::MAX;
/// Below this size a results file is parsed on one thread.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

impl Detections {
    /// Reads a results file (a JSON list of `{image_id, category_id, bbox, score}`).
    pub fn read(gt: &GroundTruth, path: &Path) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
        Self::from_json(gt, &bytes).map_err(|e| e.in_file(path, &bytes))
    }

    /// Parses a results list. An empty list is an error, as in pycocotools (`loadRes` raises
    /// IndexError); use [`Detections::from_records`] to score "no detections at all".
    pub fn from_json(gt: &GroundTruth, bytes: &[u8]) -> Result<Self, LoadError> {
        let flat = parse_list(gt, json::text(bytes)?)?;
        if flat.cells.is_empty() {
            return Err(LoadError::Invalid(
                "the results list is empty; pycocotools cannot score it (IndexError in loadRes)"
                    .into(),
            ));
        }
        Ok(group(gt, flat))
    }

    /// Detections from memory, checked like a results file (known image ids, finite numbers,
    /// no negative sizes). An empty slice is allowed and scores 0 wherever there is GT.
    pub fn from_records(gt: &GroundTruth, records: &[Detection]) -> Result<Self, LoadError> {
        let mut flat = Flat::with_capacity(records.len());
        for (n, d) in records.iter().enumerate() {
            let bad = |msg: String| LoadError::Invalid(format!("detection #{n}: {msg}"));
            let image = gt
                .image_index
                .get(&d.image_id)
                .ok_or_else(|| bad(unknown_image(&d.image_id.to_string())))?;
            if !d.bbox.iter().all(|v| v.is_finite()) || !d.score.is_finite() {
                return Err(bad("bbox and score must be finite numbers".into()));
            }
            if d.bbox[2] < 0.0 || d.bbox[3] < 0.0 {
                return Err(bad(format!(
                    "bbox {:?} has a negative width or height",
                    d.bbox
                )));
            }
            let cell = match gt.category_index.get(&d.category_id) {
                Some(k) => k as usize * gt.images.len() + image as usize,
                None => NO_CELL as usize,
            };
            flat.cells.push(cell as u32);
            flat.boxes.push(d.bbox);
            flat.scores.push(d.score);
        }
        Ok(group(gt, flat))
    }

    /// How many detections were given.
    pub fn num_input(&self) -> usize {
        self.num_input
    }

    /// How many were dropped because their category is not in the GT (pycocotools drops them
    /// silently).
    pub fn num_unknown_category(&self) -> usize {
        self.unknown_category
    }

    pub(crate) fn cell(&self, cell: usize) -> std::ops::Range<usize> {
        self.cell_start[cell] as usize..self.cell_start[cell + 1] as usize
    }
}

fn unknown_image(id: &str) -> String {
    format!(
        "image_id {id} is not an image of the ground truth (pycocotools: \"Results do not \
         correspond to current coco set\")"
    )
}

/// Groups by cell (stable) and sorts each cell by descending score (stable).
fn group(gt: &GroundTruth, flat: Flat) -> Detections {
    let ncells = gt.num_cells();
    let mut cell_start = vec![0u32; ncells + 1];
    let mut unknown_category = 0;
    for &c in &flat.cells {
        if c == NO_CELL {
            unknown_category += 1;
        } else {
            cell_start[c as usize + 1] += 1;
        }
    }
    for c in 0..ncells {
        cell_start[c + 1] += cell_start[c];
    }
    let kept = cell_start[ncells] as usize;
    let mut order = vec![0u32; kept];
    let mut fill = cell_start.clone();
    for (j, &c) in flat.cells.iter().enumerate() {
        if c != NO_CELL {
            order[fill[c as usize] as usize] = j as u32;
            fill[c as usize] += 1;
        }
    }
    drop(fill);
    let scores = &flat.scores;
    for c in 0..ncells {
        let cell = &mut order[cell_start[c] as usize..cell_start[c + 1] as usize];
        if cell.len() > 1 {
            // Descending score; `sort_by` is stable, and no score is NaN (checked on input),
            // so -0.0 and 0.0 tie as in numpy.
            cell.sort_by(|&a, &b| {
                scores[b as usize]
                    .partial_cmp(&scores[a as usize])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        }
    }
    let boxes: Vec<[f64; 4]> = order.iter().map(|&j| flat.boxes[j as usize]).collect();
    let scores: Vec<f64> = order.iter().map(|&j| flat.scores[j as usize]).collect();
    let areas = boxes.iter().map(|b| b[2] * b[3]).collect();
    Detections {
        cell_start,
        boxes,
        scores,
        areas,
        num_input: flat.cells.len(),
        unknown_category,
    }
}

/// One result as written in the file.
struct RawResult<'a> {
    image: IdVal<'a>,
    category: IdVal<'a>,
    bbox: [f64; 4],
    score: f64,
}

impl<'de> de::Deserialize<'de> for RawResult<'de> {
    #[inline]
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ResultVisitor)
    }
}

struct ResultVisitor;

impl ResultVisitor {
    fn not_an_object(&self, kind: Kind) -> String {
        format!(
            "must be an object {{image_id, category_id, bbox, score}}, not {}",
            kind.name()
        )
    }
}

impl<'de> Visitor<'de> for ResultVisitor {
    type Value = RawResult<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a result {image_id, category_id, bbox, score}")
    }
    only_objects!();
    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut image, mut category, mut bbox, mut score) = (None, None, None, None);
        // A repeated key keeps its last value, as Python's dict does; values are judged once
        // the record is read.
        while let Some(key) = map.next_key::<Key>()? {
            match &*key.0 {
                "image_id" => image = Some(map.next_value::<Scalar>()?),
                "category_id" => category = Some(map.next_value::<Scalar>()?),
                "bbox" => bbox = Some(map.next_value::<Bbox>()?.0),
                "score" => score = Some(map.next_value::<Scalar>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |what: &str| de::Error::custom(format!("missing \"{what}\""));
        let image = fields::id(image.ok_or_else(|| missing("image_id"))?, "image_id");
        let category = fields::id(
            category.ok_or_else(|| missing("category_id"))?,
            "category_id",
        );
        let bbox = bbox.ok_or_else(|| missing("bbox"))?;
        let score = fields::number(score.ok_or_else(|| missing("score"))?, "score");
        Ok(RawResult {
            image: image.map_err(de::Error::custom)?,
            category: category.map_err(de::Error::custom)?,
            bbox: bbox.map_err(de::Error::custom)?,
            score: score.map_err(de::Error::custom)?,
        })
    }
}

/// Parses the record at `text[start..]` into `out`; returns where it ends. The common shape is
/// scanned by [`record_scan`]; serde_json reads the rest and words every error.
#[inline]
fn parse_one(text: &str, start: usize, gt: &GroundTruth, out: &mut Flat) -> JResult<usize> {
    if let Some(r) = record_scan::scan(text.as_bytes(), start) {
        if let Some(image) = gt.image_index.get_int(r.image) {
            out.cells.push(match gt.category_index.get_int(r.category) {
                Some(k) => k * gt.images.len() as u32 + image,
                None => NO_CELL,
            });
            out.boxes.push(r.bbox);
            out.scores.push(r.score);
            return Ok(r.end);
        }
    }
    serde_one(text, start, gt, out)
}

/// [`parse_one`] through serde_json alone.
fn serde_one(text: &str, start: usize, gt: &GroundTruth, out: &mut Flat) -> JResult<usize> {
    let mut records = serde_json::Deserializer::from_str(&text[start..]).into_iter::<RawResult>();
    let r = match records.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(json::error_at(text, start, &e, "")),
        None => {
            return Err(JsonError {
                pos: text.len(),
                msg: "unexpected end of file inside the results list".into(),
            })
        }
    };
    let end = start + records.byte_offset();
    let image = match &r.image {
        IdVal::Int(i) => gt.image_index.get_int(*i),
        IdVal::Str(s) => gt.image_index.get_str(s),
    };
    let Some(image) = image else {
        return Err(JsonError {
            pos: start,
            msg: unknown_image(&r.image.to_string()),
        });
    };
    let category = match &r.category {
        IdVal::Int(i) => gt.category_index.get_int(*i),
        IdVal::Str(s) => gt.category_index.get_str(s),
    };
    out.cells.push(match category {
        Some(k) => k * gt.images.len() as u32 + image,
        None => NO_CELL,
    });
    out.boxes.push(r.bbox);
    out.scores.push(r.score);
    Ok(end)
}

/// The position of the first byte at or after `pos` that is not JSON whitespace.
#[inline]
fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = buf.get(pos) {
        pos += 1;
    }
    pos
}

/// What parsing one piece of the list produced.
struct Piece {
    flat: Flat,
    /// Where it stopped: at or past the next piece's start, or after the closing `]`.
    end: usize,
    closed: bool,
    /// The first error, with the index of the element (within the piece) it is in.
    error: Option<(usize, JsonError)>,
}

/// Parses elements from `start` (at an element) until the position reaches `stop` after a
/// comma, or the list closes.
fn parse_piece(gt: &GroundTruth, text: &str, start: usize, stop: usize) -> Piece {
    let buf = text.as_bytes();
    let mut flat = Flat::with_capacity(stop.min(buf.len()).saturating_sub(start) / 80);
    let mut pos = start;
    let result = (|| -> JResult<bool> {
        // The position is inside the list, at an element.
        loop {
            pos = parse_one(text, pos, gt, &mut flat)?;
            pos = skip_ws(buf, pos);
            match buf.get(pos) {
                Some(b',') => {
                    pos = skip_ws(buf, pos + 1);
                    if pos >= stop && pos < buf.len() {
                        return Ok(false);
                    }
                }
                Some(b']') => {
                    pos += 1;
                    return Ok(true);
                }
                None => {
                    return Err(JsonError {
                        pos,
                        msg: "unexpected end of file inside the results list".into(),
                    })
                }
                Some(_) => {
                    return Err(JsonError {
                        pos,
                        msg: "expected ',' or ']' after an array element".into(),
                    })
                }
            }
        }
    })();
    let n = flat.cells.len();
    match result {
        Ok(closed) => Piece {
            flat,
            end: pos,
            closed,
            error: None,
        },
        Err(e) => Piece {
            flat,
            end: pos,
            closed: false,
            error: Some((n, e)),
        },
    }
}

/// Candidate element starts near `n - 1` evenly spaced points after `from`: a `{` whose
/// previous non-space byte is `,`. A candidate inside a string is possible; the validation in
/// [`parse_list`] then discards it.
fn split_points(buf: &[u8], from: usize, n: usize) -> Vec<usize> {
    let len = buf.len();
    let mut out = Vec::new();
    for j in 1..n {
        let mut p = (from + (len - from) * j / n).max(out.last().map_or(0, |&l| l + 1));
        while p < len {
            if buf[p] == b'{' {
                let mut q = p;
                while q > from && matches!(buf[q - 1], b' ' | b'\n' | b'\r' | b'\t') {
                    q -= 1;
                }
                if q > from && buf[q - 1] == b',' {
                    out.push(p);
                    break;
                }
            }
            p += 1;
        }
    }
    out
}

fn located(e: JsonError, index: usize) -> JsonError {
    JsonError {
        pos: e.pos,
        msg: format!("results[{index}]: {}", e.msg),
    }
}

/// Parses a whole results list.
fn parse_list(gt: &GroundTruth, text: &str) -> JResult<Flat> {
    let buf = text.as_bytes();
    let open = skip_ws(buf, 0);
    if buf.get(open) != Some(&b'[') {
        // Not a list: say so if it is JSON at all, or what is wrong with it.
        return match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Err(JsonError {
                pos: open,
                msg: "results must be a JSON list of detections (pycocotools asserts that the \
                      results are a list)"
                    .into(),
            }),
            Err(e) => Err(json::error_at(text, 0, &e, "")),
        };
    }
    let body = skip_ws(buf, open + 1);
    if buf.get(body) == Some(&b']') {
        return match skip_ws(buf, body + 1) {
            end if end == buf.len() => Ok(Flat::default()),
            end => Err(JsonError {
                pos: end,
                msg: "extra data after the JSON value".into(),
            }),
        };
    }
    let threads = rayon::current_num_threads();
    let splits = if buf.len() >= PARALLEL_MIN_BYTES && threads > 1 {
        split_points(buf, body, threads * 4)
    } else {
        Vec::new()
    };
    let mut bounds = vec![body];
    bounds.extend(&splits);
    let pieces: Vec<Piece> = (0..bounds.len())
        .into_par_iter()
        .map(|j| {
            parse_piece(
                gt,
                text,
                bounds[j],
                bounds.get(j + 1).copied().unwrap_or(usize::MAX),
            )
        })
        .collect();

    let mut flat = Flat::default();
    for (j, piece) in pieces.into_iter().enumerate() {
        // Piece j > 0 is only reached when the piece before it stopped exactly at its start,
        // so it is a real element boundary.
        let base = flat.cells.len();
        if let Some((i, e)) = piece.error {
            return Err(located(e, base + i));
        }
        flat.append(piece.flat);
        let mut end = piece.end;
        let mut closed = piece.closed;
        if !closed && bounds.get(j + 1) != Some(&end) {
            // A guessed start was not an element boundary: finish sequentially.
            let rest = parse_piece(gt, text, end, usize::MAX);
            let base = flat.cells.len();
            if let Some((i, e)) = rest.error {
                return Err(located(e, base + i));
            }
            flat.append(rest.flat);
            if !rest.closed {
                break;
            }
            end = rest.end;
            closed = true;
        }
        if closed {
            let after = skip_ws(buf, end);
            if after < buf.len() {
                return Err(JsonError {
                    pos: after,
                    msg: "extra data after the JSON value".into(),
                });
            }
            return Ok(flat);
        }
    }
    // Only reached if the last piece neither closed the list nor failed, which cannot happen.
    Err(JsonError {
        pos: buf.len(),
        msg: "unexpected end of file inside the results list".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::PyRandom;

    /// A record in one of many spellings: common ones (which the scanner reads) and odd ones
    /// (float, negative, string and unknown ids, escapes, extra and repeated keys, bad boxes,
    /// exponents, leading zeros, huge numbers, truncation).
    fn record(rng: &mut PyRandom) -> String {
        let mut pick = |n: u64| rng.randbelow(n) as usize;
        let num = |pick: &mut dyn FnMut(u64) -> usize| -> String {
            // Separated by spaces; none contains one.
            let choices: Vec<&str> =
                "0 -0 1 12.5 0.1 -3.25 1e2 1E-2 2.5e+3 1e400 -1e400 1e-400 01 1. \
                 .5 - 1.0e 123456789012345678901234567890 0.30000000000000004 \
                 4.9406564584124654e-324 \"7\" true null [1] 1.7976931348623157e308 \
                 9007199254740993"
                    .split_whitespace()
                    .collect();
            match pick(3) {
                0 => format!("{}.{}", pick(1000), pick(100000)),
                1 => format!("{}", pick(640)),
                _ => choices[pick(choices.len() as u64)].to_string(),
            }
        };
        let id = |pick: &mut dyn FnMut(u64) -> usize| -> String {
            let choices: Vec<&str> =
                "1 2 3 4 5 6 0 -1 2.0 2.5 1e0 \"2\" 02 99999999999999999999 null -0"
                    .split_whitespace()
                    .collect();
            if pick(2) == 0 {
                format!("{}", 1 + pick(5))
            } else {
                choices[pick(choices.len() as u64)].to_string()
            }
        };
        let mut fields: Vec<String> = vec![
            format!("\"image_id\": {}", id(&mut pick)),
            format!("\"category_id\": {}", id(&mut pick)),
            format!(
                "\"bbox\": [{}, {},{}, {} ]",
                num(&mut pick),
                num(&mut pick),
                num(&mut pick),
                num(&mut pick)
            ),
            format!("\"score\": {}", num(&mut pick)),
        ];
        match pick(12) {
            0 => fields.push("\"extra\": {\"a\": [1, 2]}".into()),
            1 => fields.push(format!("\"score\": {}", num(&mut pick))),
            2 => {
                fields.remove(pick(4));
            }
            3 => fields[0] = format!("\"image\\u005fid\": {}", id(&mut pick)),
            4 => fields[2] = "\"bbox\": [1, 2, 3]".into(),
            5 => fields[2] = "\"bbox\": [1, 2, 3, 4, 5]".into(),
            _ => {}
        }
        for i in (1..fields.len()).rev() {
            let j = pick(i as u64 + 1);
            fields.swap(i, j);
        }
        let sep = [",", " , ", ",\n  ", ",\t"][pick(4)];
        let mut text = format!("{{ {} }}", fields.join(sep));
        if pick(20) == 0 {
            text.truncate(pick(text.len() as u64));
        }
        text
    }

    /// The scanner plus serde_json reads every record exactly as serde_json alone does: the same
    /// end, cell, box and score bits, or the same error.
    #[test]
    fn scanned_records_read_as_serde_json_reads_them() {
        let gt = GroundTruth::from_json(
            br#"{"images": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 5}],
                "annotations": [],
                "categories": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]}"#,
        )
        .unwrap();
        let mut rng = PyRandom::new(&17u64.into());
        let (mut scanned, mut total) = (0, 0);
        for _ in 0..20_000 {
            let text = format!("{}, ", record(&mut rng));
            let (mut a, mut b) = (Flat::default(), Flat::default());
            let fast = parse_one(&text, 0, &gt, &mut a);
            let slow = serde_one(&text, 0, &gt, &mut b);
            match (&fast, &slow) {
                (Ok(x), Ok(y)) => assert_eq!(x, y, "{text}"),
                (Err(x), Err(y)) => assert_eq!((x.pos, &x.msg), (y.pos, &y.msg), "{text}"),
                _ => panic!("{text}: scanner+serde {fast:?}, serde {slow:?}"),
            }
            let bits = |f: &Flat| {
                let b: Vec<u64> = f.boxes.iter().flatten().map(|v| v.to_bits()).collect();
                let s: Vec<u64> = f.scores.iter().map(|v| v.to_bits()).collect();
                (f.cells.clone(), b, s)
            };
            assert_eq!(bits(&a), bits(&b), "{text}");
            total += 1;
            scanned += usize::from(record_scan::scan(text.as_bytes(), 0).is_some());
        }
        // Both paths are exercised.
        assert!(
            scanned > total / 10 && scanned < total * 9 / 10,
            "{scanned} of {total} scanned"
        );
    }
}

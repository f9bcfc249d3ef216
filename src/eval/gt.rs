//! The ground truth as pycocotools sees it (`COCO(file)` then `COCOeval._prepare`): sorted
//! image and category ids, and the GT boxes grouped into (category, image) cells in the order
//! pycocotools visits them, with its quirks kept: the last annotation with a duplicated id
//! replaces every earlier one, annotations on unknown images or categories are never scored,
//! and the `ignore` field is not read (only `iscrowd`).
use super::fields::{self, Bbox};
use super::ids::{sorted_unique, Id, IdIndex, IntMap};
use super::json::{self, only_objects, JResult, JsonError, Key, Kind, Scalar};
use super::LoadError;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A category: its id and name (the id's text when the file gives no name).
#[derive(Clone, Debug, PartialEq)]
pub struct Category {
    pub id: Id,
    pub name: String,
}

/// Ground truth ready for evaluation. Cell `k * num_images + i` holds the GT boxes of category
/// `k` on image `i` (both indices into the sorted id lists).
pub struct GroundTruth {
    pub(crate) images: Vec<Id>,
    pub(crate) image_index: IdIndex,
    pub(crate) categories: Vec<Category>,
    pub(crate) category_index: IdIndex,
    pub(crate) cell_start: Vec<u32>,
    pub(crate) boxes: Vec<[f64; 4]>,
    pub(crate) areas: Vec<f64>,
    pub(crate) crowd: Vec<bool>,
    pub(crate) ann_ids: Vec<i64>,
    has_id0: bool,
    notes: Vec<String>,
}

/// One annotation as read from the file.
struct RawAnn {
    id: i64,
    image: Id,
    category: Id,
    bbox: [f64; 4],
    area: Option<f64>,
    crowd: Option<bool>,
}

impl GroundTruth {
    /// Reads a COCO ground-truth file; errors name the file and, where it applies, the line,
    /// column and record.
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
        Self::from_json(&bytes).map_err(|e| e.in_file(path, &bytes))
    }

    /// Parses a COCO ground-truth document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, LoadError> {
        let text = json::text(bytes)?;
        // The top level first, each list kept as its text: Python keeps the last value of a
        // repeated key, so only that list is read (and judged).
        let top = top_level(text)?;
        let list = |name| -> Result<_, LoadError> {
            let Some(&(base, end)) = top.get(name) else {
                return Ok(None);
            };
            let at = Cell::new(None);
            Ok(Some(
                List::new(name, &at)
                    .deserialize(&mut serde_json::Deserializer::from_str(&text[base..end]))
                    .map_err(|e| json::error_at(text, base, &e, &place(at.get())))?,
            ))
        };
        let raw = RawDocument {
            images: list("images")?.map(AnyList::into_images),
            categories: list("categories")?.map(AnyList::into_categories),
            annotations: list("annotations")?.map(AnyList::into_annotations),
        };
        build(raw.check().map_err(|msg| JsonError { pos: 0, msg })?)
    }

    /// The ground truth of `path`'s document already parsed (by `data::coco`, which reads the
    /// same file for its images and names), checked as [`GroundTruth::read`] checks it; errors
    /// name the file. `bytes` is the file's content: on an error it is read again to place the
    /// error at its line and column (the tree does not keep positions).
    pub fn from_document(
        doc: &serde_json::Value,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        let fail = |msg: String| {
            let e = Self::from_json(bytes)
                .err()
                .unwrap_or(LoadError::Invalid(msg));
            e.in_file(path, bytes)
        };
        let Some(top) = doc.as_object() else {
            return Err(fail(NOT_AN_OBJECT.into()));
        };
        let list = |name| -> Result<_, LoadError> {
            let Some(value) = top.get(name) else {
                return Ok(None);
            };
            let at = Cell::new(None);
            List::new(name, &at)
                .deserialize(value)
                .map(Some)
                .map_err(|e| fail(format!("{}{e}", place(at.get()))))
        };
        let raw = RawDocument {
            images: list("images")?.map(AnyList::into_images),
            categories: list("categories")?.map(AnyList::into_categories),
            annotations: list("annotations")?.map(AnyList::into_annotations),
        };
        let raw = raw.check().map_err(fail)?;
        build(raw).map_err(|e| e.in_file(path, bytes))
    }

    pub fn images(&self) -> &[Id] {
        &self.images
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The number of GT boxes that take part in the evaluation.
    pub fn num_boxes(&self) -> usize {
        self.boxes.len()
    }

    /// True when a scored GT box has annotation id 0, which pycocotools can never match
    /// (spec §4): the results then depend on `Options::fix_id0`.
    pub fn has_annotation_id0(&self) -> bool {
        self.has_id0
    }

    /// Things pycocotools would do silently (or refuse) that the user should know about.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub(crate) fn num_cells(&self) -> usize {
        self.images.len() * self.categories.len()
    }

    pub(crate) fn cell(&self, cell: usize) -> std::ops::Range<usize> {
        self.cell_start[cell] as usize..self.cell_start[cell + 1] as usize
    }
}

/// The three lists as read (`None`: the key is absent).
struct RawDocument {
    images: Option<Vec<Id>>,
    categories: Option<Vec<Category>>,
    annotations: Option<Vec<RawAnn>>,
}

/// The lists a ground truth needs.
struct Checked {
    images: Vec<Id>,
    categories: Vec<Category>,
    annotations: Vec<RawAnn>,
}

impl RawDocument {
    fn check(self) -> Result<Checked, String> {
        let missing =
            |what: &str| format!("the ground truth has no \"{what}\" list (pycocotools needs it)");
        Ok(Checked {
            images: self.images.ok_or_else(|| missing("images"))?,
            categories: self.categories.ok_or_else(|| missing("categories"))?,
            annotations: self.annotations.unwrap_or_default(),
        })
    }
}

const NOT_AN_OBJECT: &str =
    "the ground truth must be a JSON object with \"images\", \"annotations\" and \"categories\"";

/// Which record is being read (`"annotations", 3`), for messages: serde_json stops at the
/// first error, so the last record entered is the one at fault.
type At = Cell<Option<(&'static str, usize)>>;

fn place(at: Option<(&'static str, usize)>) -> String {
    at.map(|(list, n)| format!("{list}[{n}]: "))
        .unwrap_or_default()
}

/// The top-level object: where each key's value is (the last one of a repeated key), each
/// value checked by serde_json and skipped.
fn top_level(text: &str) -> JResult<HashMap<String, (usize, usize)>> {
    let buf = text.as_bytes();
    let ws = |mut p: usize| {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = buf.get(p) {
            p += 1;
        }
        p
    };
    let err = |pos: usize, msg: &str| JsonError {
        pos,
        msg: msg.into(),
    };
    // One value at `pos`, by serde_json: its end.
    fn value<'a, T: de::Deserialize<'a>>(text: &'a str, pos: usize) -> JResult<(T, usize)> {
        let mut it = serde_json::Deserializer::from_str(&text[pos..]).into_iter::<T>();
        match it.next() {
            Some(Ok(v)) => Ok((v, pos + it.byte_offset())),
            Some(Err(e)) => Err(json::error_at(text, pos, &e, "")),
            None => Err(JsonError {
                pos: text.len(),
                msg: "unexpected end of file, expected a JSON value".into(),
            }),
        }
    }
    let open = ws(0);
    if buf.get(open) != Some(&b'{') {
        value::<IgnoredAny>(text, open)?;
        return Err(err(open, NOT_AN_OBJECT));
    }
    let mut out = HashMap::new();
    let mut pos = ws(open + 1);
    if buf.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            if buf.get(pos) != Some(&b'"') {
                return Err(err(pos, "expected a string key in double quotes"));
            }
            let (key, end) = value::<String>(text, pos)?;
            pos = ws(end);
            if buf.get(pos) != Some(&b':') {
                return Err(err(pos, "expected ':' after an object key"));
            }
            let start = ws(pos + 1);
            let (_, end) = value::<IgnoredAny>(text, start)?;
            out.insert(key, (start, end));
            pos = ws(end);
            match buf.get(pos) {
                Some(b',') => pos = ws(pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                None => return Err(err(pos, "unexpected end of file inside an object")),
                Some(_) => return Err(err(pos, "expected ',' or '}' after an object member")),
            }
        }
    }
    let end = ws(pos);
    if end < buf.len() {
        return Err(err(end, "extra data after the JSON value"));
    }
    Ok(out)
}

/// One of the three lists, read by the record reader its name selects.
enum AnyList {
    Images(Vec<Id>),
    Categories(Vec<Category>),
    Annotations(Vec<RawAnn>),
}

impl AnyList {
    fn into_images(self) -> Vec<Id> {
        match self {
            AnyList::Images(v) => v,
            _ => Vec::new(),
        }
    }
    fn into_categories(self) -> Vec<Category> {
        match self {
            AnyList::Categories(v) => v,
            _ => Vec::new(),
        }
    }
    fn into_annotations(self) -> Vec<RawAnn> {
        match self {
            AnyList::Annotations(v) => v,
            _ => Vec::new(),
        }
    }
}

/// A list of records named `name` ("images", "categories" or "annotations").
struct List<'c> {
    name: &'static str,
    at: &'c At,
}

impl<'c> List<'c> {
    fn new(name: &'static str, at: &'c At) -> Self {
        List { name, at }
    }

    fn not_a_list<E: de::Error>(&self) -> E {
        E::custom(format!("\"{}\" must be a list", self.name))
    }

    fn records<'de, A: SeqAccess<'de>, R: ReadRecord>(
        &self,
        mut seq: A,
    ) -> Result<Vec<R::Out>, A::Error> {
        let mut out = Vec::new();
        loop {
            self.at.set(Some((self.name, out.len())));
            match seq.next_element_seed(Record::<R>(std::marker::PhantomData))? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        self.at.set(None);
        Ok(out)
    }
}

impl<'de> DeserializeSeed<'de> for List<'_> {
    type Value = AnyList;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for List<'_> {
    type Value = AnyList;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the {} list", self.name)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.not_a_list())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.not_a_list())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.not_a_list())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.not_a_list())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.not_a_list())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.not_a_list())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.not_a_list())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(match self.name {
            "images" => AnyList::Images(self.records::<A, ImageRecord>(seq)?),
            "categories" => AnyList::Categories(self.records::<A, CategoryRecord>(seq)?),
            _ => AnyList::Annotations(self.records::<A, AnnotationRecord>(seq)?),
        })
    }
}

/// How one kind of record is read from its object's fields.
trait ReadRecord {
    type Out;
    fn read<'de, A: MapAccess<'de>>(map: A) -> Result<Self::Out, A::Error>;
}

/// One record of a list: an object, read by `R`.
struct Record<R>(std::marker::PhantomData<R>);

impl<'de, R: ReadRecord> DeserializeSeed<'de> for Record<R> {
    type Value = R::Out;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<R::Out, D::Error> {
        d.deserialize_any(self)
    }
}

impl<R> Record<R> {
    fn not_an_object(&self, kind: Kind) -> String {
        format!("must be an object, not {}", kind.name())
    }
}

impl<'de, R: ReadRecord> Visitor<'de> for Record<R> {
    type Value = R::Out;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    only_objects!();
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<R::Out, A::Error> {
        R::read(map)
    }
}

/// A field's problem as the deserializer's error (placed after the field's value).
fn bad<E: de::Error>(msg: String) -> E {
    E::custom(msg)
}

fn missing<E: de::Error>(what: &str) -> E {
    E::custom(format!("missing \"{what}\""))
}

// A repeated key keeps its last value, as Python's dict does, so the records' fields are
// judged once the record is read.

struct ImageRecord;

impl ReadRecord for ImageRecord {
    type Out = Id;
    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Id, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<Key>()? {
            match &*key.0 {
                "id" => id = Some(map.next_value::<Scalar>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let id = id.ok_or_else(|| missing("id"))?;
        Ok(fields::id(id, "id").map_err(bad)?.to_id())
    }
}

struct CategoryRecord;

impl ReadRecord for CategoryRecord {
    type Out = Category;
    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Category, A::Error> {
        let (mut id, mut name) = (None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match &*key.0 {
                "id" => id = Some(map.next_value::<Scalar>()?),
                "name" => name = Some(map.next_value::<Scalar>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let id = fields::id(id.ok_or_else(|| missing("id"))?, "id")
            .map_err(bad)?
            .to_id();
        let name = match name {
            Some(Scalar::Str(s)) => s.into_owned(),
            _ => match &id {
                Id::Int(v) => v.to_string(),
                Id::Str(s) => s.to_string(),
            },
        };
        Ok(Category { id, name })
    }
}

struct AnnotationRecord;

impl ReadRecord for AnnotationRecord {
    type Out = RawAnn;
    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<RawAnn, A::Error> {
        let (mut id, mut image, mut category, mut bbox, mut area, mut crowd) =
            (None, None, None, None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match &*key.0 {
                "id" => id = Some(map.next_value::<Scalar>()?),
                "image_id" => image = Some(map.next_value::<Scalar>()?),
                "category_id" => category = Some(map.next_value::<Scalar>()?),
                "bbox" => bbox = Some(map.next_value::<Bbox>()?.0),
                "area" => area = Some(map.next_value::<Scalar>()?),
                "iscrowd" => crowd = Some(map.next_value::<Scalar>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let id = fields::int(id.ok_or_else(|| missing("id"))?, "id").map_err(bad)?;
        let image = image.ok_or_else(|| missing("image_id"))?;
        let image = fields::id(image, "image_id").map_err(bad)?.to_id();
        let category = category.ok_or_else(|| missing("category_id"))?;
        let category = fields::id(category, "category_id").map_err(bad)?.to_id();
        let bbox = bbox.ok_or_else(|| missing("bbox"))?.map_err(bad)?;
        let area = match area {
            Some(a) => {
                let a = fields::number(a, "area").map_err(bad)?;
                if a < 0.0 {
                    return Err(bad(format!("area {a} is negative")));
                }
                Some(a)
            }
            None => None,
        };
        let crowd = crowd.map(fields::crowd).transpose().map_err(bad)?;
        Ok(RawAnn {
            id,
            image,
            category,
            bbox,
            area,
            crowd,
        })
    }
}

fn build(raw: Checked) -> Result<GroundTruth, LoadError> {
    let images = sorted_unique(raw.images, "image ids").map_err(LoadError::Invalid)?;
    let image_index = IdIndex::new(&images);
    // `cats[cat['id']] = cat`: the last category with an id gives its name.
    let mut categories = raw.categories;
    categories.reverse();
    categories.sort_by(|a, b| a.id.cmp(&b.id)); // stable: the last in the file comes first
    categories.dedup_by(|later, earlier| later.id == earlier.id);
    sorted_unique(
        categories.iter().map(|c| c.id.clone()).collect(),
        "category ids",
    )
    .map_err(LoadError::Invalid)?;
    let category_index = IdIndex::new(&categories.iter().map(|c| c.id.clone()).collect::<Vec<_>>());
    let (ni, nk) = (images.len(), categories.len());
    if ni.saturating_mul(nk) >= u32::MAX as usize {
        return Err(LoadError::Invalid(format!(
            "{ni} images x {nk} categories is more (image, category) cells than odinw supports"
        )));
    }
    let anns = raw.annotations;

    let image_of: Vec<Option<u32>> = anns.iter().map(|a| image_index.get(&a.image)).collect();
    let cat_of: Vec<Option<u32>> = anns
        .iter()
        .map(|a| category_index.get(&a.category))
        .collect();

    // `anns[id] = ann`: with duplicated ids the last annotation stands for all of them.
    let mut last_with_id: IntMap<u32> = IntMap::default();
    let mut duplicated = 0usize;
    for (j, a) in anns.iter().enumerate() {
        if last_with_id.insert(a.id, j as u32).is_some() {
            duplicated += 1;
        }
    }

    // `getAnnIds(imgIds=sorted images, catIds)`: image by image in id order, file order within
    // an image, filtered on each annotation's own category.
    let mut by_image: Vec<Vec<u32>> = vec![Vec::new(); ni];
    let mut unscored = 0usize;
    for (j, (img, cat)) in image_of.iter().zip(&cat_of).enumerate() {
        match (img, cat) {
            (Some(i), Some(_)) => by_image[*i as usize].push(j as u32),
            _ => unscored += 1,
        }
    }
    // `loadAnns(ids)` then `_gts[image_id, category_id].append(...)`, keyed by the replacing
    // annotation's own image and category.
    let mut selected: Vec<(usize, u32)> = Vec::with_capacity(anns.len());
    for j in by_image.into_iter().flatten() {
        let d = if duplicated > 0 {
            last_with_id[&anns[j as usize].id]
        } else {
            j
        };
        if let (Some(i), Some(k)) = (image_of[d as usize], cat_of[d as usize]) {
            selected.push((k as usize * ni + i as usize, d));
        }
    }
    // Group by cell, keeping the selection order within a cell (a stable counting sort).
    let mut cell_start = vec![0u32; nk * ni + 1];
    for &(c, _) in &selected {
        cell_start[c + 1] += 1;
    }
    for c in 0..nk * ni {
        cell_start[c + 1] += cell_start[c];
    }
    let mut fill = cell_start.clone();
    let mut order = vec![0u32; selected.len()];
    for &(c, d) in &selected {
        order[fill[c] as usize] = d;
        fill[c] += 1;
    }
    let (mut no_area, mut no_crowd) = (0usize, 0usize);
    let mut boxes = Vec::with_capacity(order.len());
    let mut areas = Vec::with_capacity(order.len());
    let mut crowd = Vec::with_capacity(order.len());
    let mut ann_ids = Vec::with_capacity(order.len());
    for &d in &order {
        let a = &anns[d as usize];
        boxes.push(a.bbox);
        areas.push(a.area.unwrap_or_else(|| {
            no_area += 1;
            a.bbox[2] * a.bbox[3]
        }));
        crowd.push(a.crowd.unwrap_or_else(|| {
            no_crowd += 1;
            false
        }));
        ann_ids.push(a.id);
    }
    let has_id0 = ann_ids.contains(&0);

    let mut notes = Vec::new();
    if unscored > 0 {
        notes.push(format!(
            "{unscored} annotations are on images or categories the file does not list; \
             pycocotools never scores them (nor does odinw)"
        ));
    }
    if duplicated > 0 {
        notes.push(format!(
            "{duplicated} annotations repeat an earlier annotation id; as in pycocotools, the \
             last annotation with an id replaces the earlier ones"
        ));
    }
    if no_area > 0 {
        notes.push(format!(
            "{no_area} annotations have no \"area\": using width*height (pycocotools would \
             raise KeyError)"
        ));
    }
    if no_crowd > 0 {
        notes.push(format!(
            "{no_crowd} annotations have no \"iscrowd\": using 0 (pycocotools would raise \
             KeyError)"
        ));
    }
    Ok(GroundTruth {
        images,
        image_index,
        categories,
        category_index,
        cell_start,
        boxes,
        areas,
        crowd,
        ann_ids,
        has_id0,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's `json` keeps the last value of a repeated key and never looks at the others,
    /// so a broken earlier value is no error; the tree reader (`from_document`) agrees.
    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let text = r#"{"images": [{"name": 1}], "categories": [{"id": 1, "name": 3}],
            "annotations": [{"id": "x", "id": 4, "image_id": 7, "category_id": 1,
                             "bbox": [0, 0, -1], "bbox": [0, 0, 2, 3], "area": null}],
            "images": [{"id": 7}]}"#;
        let text = text.replace("\"area\": null}", "\"area\": -1, \"area\": 5}");
        let gt = GroundTruth::from_json(text.as_bytes()).unwrap();
        assert_eq!(gt.images(), &[Id::Int(7)]);
        assert_eq!(gt.categories()[0].name, "1");
        assert_eq!(gt.ann_ids, vec![4]);
        assert_eq!(gt.areas, vec![5.0]);
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let same = GroundTruth::from_document(&doc, "a.json".as_ref(), text.as_bytes()).unwrap();
        assert_eq!(same.ann_ids, gt.ann_ids);
        // The last value is judged.
        let bad = text.replace("\"area\": 5}", "\"area\": -2}");
        let e = GroundTruth::from_json(bad.as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("annotations[0]: area -2 is negative"), "{e}");
    }
}

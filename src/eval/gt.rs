//! The ground truth as pycocotools sees it (`COCO(file)` then `COCOeval._prepare`): sorted
//! image and category ids, and the GT boxes grouped into (category, image) cells in the order
//! pycocotools visits them, with its quirks kept: the last annotation with a duplicated id
//! replaces every earlier one, annotations on unknown images or categories are never scored,
//! and the `ignore` field is not read (only `iscrowd`).
use super::fields::{read_bbox, read_crowd, read_id, read_int, read_number};
use super::ids::{sorted_unique, Id, IdIndex, IntMap};
use super::json::{JResult, JsonError, Kind, Reader};
use super::LoadError;
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
        let mut r = Reader::new(bytes, 0).map_err(LoadError::Json)?;
        let raw = parse_document(&mut r).map_err(LoadError::Json)?;
        build(raw)
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

struct RawDocument {
    images: Vec<Id>,
    categories: Vec<Category>,
    annotations: Vec<RawAnn>,
}

fn with_context<T>(res: JResult<T>, ctx: impl FnOnce() -> String) -> JResult<T> {
    res.map_err(|e| JsonError {
        pos: e.pos,
        msg: format!("{}: {}", ctx(), e.msg),
    })
}

fn parse_document(r: &mut Reader<'_>) -> JResult<RawDocument> {
    if r.peek_kind()? != Kind::Object {
        return r.error(
            "the ground truth must be a JSON object with \"images\", \"annotations\" and \
             \"categories\"",
        );
    }
    let top = r.pos();
    r.object_start()?;
    let (mut images, mut categories, mut annotations) = (None, None, None);
    let mut first = true;
    while let Some(key) = r.object_next(&mut first)? {
        match &*key {
            b"images" => images = Some(parse_list(r, "images", parse_image)?),
            b"categories" => categories = Some(parse_list(r, "categories", parse_category)?),
            b"annotations" => annotations = Some(parse_list(r, "annotations", parse_ann)?),
            _ => r.skip_value()?,
        }
    }
    r.finish()?;
    let missing = |what: &str| JsonError {
        pos: top,
        msg: format!("the ground truth has no \"{what}\" list (pycocotools needs it)"),
    };
    Ok(RawDocument {
        images: images.ok_or_else(|| missing("images"))?,
        categories: categories.ok_or_else(|| missing("categories"))?,
        annotations: annotations.unwrap_or_default(),
    })
}

fn parse_list<'a, T>(
    r: &mut Reader<'a>,
    name: &str,
    item: impl Fn(&mut Reader<'a>) -> JResult<T>,
) -> JResult<Vec<T>> {
    if r.peek_kind()? != Kind::Array {
        return r.error(format!("\"{name}\" must be a list"));
    }
    r.array_start()?;
    let mut out = Vec::new();
    let mut first = true;
    while r.array_next(&mut first)? {
        let n = out.len();
        let start = r.pos();
        let v = with_context(
            if r.peek_kind()? == Kind::Object {
                item(r)
            } else {
                r.error("must be an object")
            },
            || format!("{name}[{n}]"),
        )
        .map_err(|mut e| {
            if e.pos < start {
                e.pos = start;
            }
            e
        })?;
        out.push(v);
    }
    Ok(out)
}

fn parse_image(r: &mut Reader<'_>) -> JResult<Id> {
    let start = r.pos();
    r.object_start()?;
    let mut id = None;
    let mut first = true;
    while let Some(key) = r.object_next(&mut first)? {
        match &*key {
            b"id" => id = Some(read_id(r, "id")?.to_id()),
            _ => r.skip_value()?,
        }
    }
    id.ok_or(JsonError {
        pos: start,
        msg: "missing \"id\"".into(),
    })
}

fn parse_category(r: &mut Reader<'_>) -> JResult<Category> {
    let start = r.pos();
    r.object_start()?;
    let (mut id, mut name) = (None, None);
    let mut first = true;
    while let Some(key) = r.object_next(&mut first)? {
        match &*key {
            b"id" => id = Some(read_id(r, "id")?.to_id()),
            b"name" if r.peek_kind()? == Kind::String => name = Some(r.string()?.into_owned()),
            _ => r.skip_value()?,
        }
    }
    let id = id.ok_or(JsonError {
        pos: start,
        msg: "missing \"id\"".into(),
    })?;
    let name = name.unwrap_or_else(|| match &id {
        Id::Int(v) => v.to_string(),
        Id::Str(s) => s.to_string(),
    });
    Ok(Category { id, name })
}

fn parse_ann(r: &mut Reader<'_>) -> JResult<RawAnn> {
    let start = r.pos();
    r.object_start()?;
    let (mut id, mut image, mut category, mut bbox, mut area, mut crowd) =
        (None, None, None, None, None, None);
    let mut first = true;
    while let Some(key) = r.object_next(&mut first)? {
        match &*key {
            b"id" => id = Some(read_int(r, "id")?),
            b"image_id" => image = Some(read_id(r, "image_id")?.to_id()),
            b"category_id" => category = Some(read_id(r, "category_id")?.to_id()),
            b"bbox" => bbox = Some(read_bbox(r)?),
            b"area" => {
                let a = read_number(r, "area")?;
                if a < 0.0 {
                    return r.error(format!("area {a} is negative"));
                }
                area = Some(a);
            }
            b"iscrowd" => crowd = Some(read_crowd(r)?),
            _ => r.skip_value()?,
        }
    }
    let missing = |what: &str| JsonError {
        pos: start,
        msg: format!("missing \"{what}\""),
    };
    Ok(RawAnn {
        id: id.ok_or_else(|| missing("id"))?,
        image: image.ok_or_else(|| missing("image_id"))?,
        category: category.ok_or_else(|| missing("category_id"))?,
        bbox: bbox.ok_or_else(|| missing("bbox"))?,
        area,
        crowd,
    })
}

fn build(raw: RawDocument) -> Result<GroundTruth, LoadError> {
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

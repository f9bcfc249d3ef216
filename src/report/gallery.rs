//! The report page's gallery: per task, a few test images (chosen by [`super::errors`]) with the
//! ground truth and the predictions above the task's threshold drawn and labelled (class,
//! score), downscaled to at most [`MAX_SIDE`] pixels and JPEG-encoded as `data:` URIs. The images
//! are found through the run's manifest (the scored annotation file of each task, the image
//! folder the registry gives for it). A task whose files cannot be read gets a note saying why,
//! never a failed report.
use super::errors::{self, ImageMatch, Pick};
use super::font;
use crate::data::coco::CocoFile;
use crate::preprocess::{decode_file, resize_bilinear, RgbImage};
use crate::registry::{self, Suite};
use crate::run::{for_each_detection, unit_dir, RunResults, UnitOutcome};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Longest side of a gallery image, in pixels.
pub const MAX_SIDE: u32 = 480;
/// Images per task (the most errors, then one good one).
pub const PER_TASK: usize = 4;
/// Larger images are not decoded (megapixels).
const MAX_MEGAPIXELS: u64 = 100;

const GT_FOUND: [u8; 3] = [0x1e, 0x9e, 0x4a];
const GT_MISSED: [u8; 3] = [0xff, 0x8c, 0x00];
const PRED_HIT: [u8; 3] = [0x1f, 0x6f, 0xd0];
const PRED_FALSE: [u8; 3] = [0xe0, 0x1b, 0x24];

/// One task's data for the gallery: its ground truth and each run's matched predictions.
pub struct TaskData {
    pub task: String,
    /// Which unit of the run the predictions are from (`task` or `task/seed<S>`).
    pub unit: String,
    pub coco: CocoFile,
    pub img_dir: PathBuf,
    pub ann_file: PathBuf,
    pub matches: BTreeMap<u64, ImageMatch>,
    pub threshold: f64,
}

/// One drawn image.
pub struct Shot {
    pub image_id: u64,
    pub file_name: String,
    pub pick: Pick,
    pub gt: usize,
    pub misses: usize,
    pub false_positives: usize,
    pub width: u32,
    pub height: u32,
    /// `data:image/jpeg;base64,...`
    pub data_uri: String,
}

/// Loads `task`'s ground truth and the run's predictions for it (the first evaluated seed of a
/// few-shot run) and matches them.
pub fn task_data(run: &RunResults, task: &str) -> Result<TaskData> {
    let unit = run
        .units_of(task)
        .find(|u| matches!(u.outcome, UnitOutcome::Done(_)))
        .ok_or_else(|| anyhow!("the task has no evaluated predictions"))?;
    let ann_file = ann_file(run, task)?;
    let coco = CocoFile::read(&ann_file)?;
    let img_dir = image_dir(&run.manifest.suite, task, &run.manifest.split, &ann_file);
    let mut gt: BTreeMap<u64, Vec<(u64, [f64; 4])>> =
        coco.images.iter().map(|i| (i.id, Vec::new())).collect();
    for a in &coco.annotations {
        if let (Some(b), Some(list)) = (a.bbox_f64(), gt.get_mut(&a.image_id)) {
            list.push((a.category_id, b));
        }
    }
    let mut preds: BTreeMap<u64, Vec<crate::postprocess::CocoDetection>> = BTreeMap::new();
    let path = unit_dir(&run.dir, task, unit.seed).join("predictions.json");
    for_each_detection(&path, |d| {
        if gt.contains_key(&d.image_id) {
            preds.entry(d.image_id).or_default().push(d);
        }
        Ok(())
    })?;
    let matches: BTreeMap<u64, ImageMatch> = gt
        .iter()
        .map(|(id, g)| {
            let p = preds.remove(id).unwrap_or_default();
            (*id, errors::match_image(g, p))
        })
        .collect();
    let threshold = errors::best_f1_threshold(&matches);
    Ok(TaskData {
        task: task.to_string(),
        unit: unit.key(),
        coco,
        img_dir,
        ann_file,
        matches,
        threshold,
    })
}

/// The task's annotation file as the manifest records it (relative paths: from the current
/// folder, else from the run's parent folder).
fn ann_file(run: &RunResults, task: &str) -> Result<PathBuf> {
    let rec = run
        .manifest
        .datasets
        .iter()
        .find(|d| d.task == task)
        .and_then(|d| d.files.first())
        .ok_or_else(|| anyhow!("the run's manifest records no annotation file for it"))?;
    let p = PathBuf::from(&rec.path);
    if p.is_file() {
        return Ok(p);
    }
    if let Some(parent) = run.dir.parent().filter(|_| p.is_relative()) {
        let q = parent.join(&p);
        if q.is_file() {
            return Ok(q);
        }
    }
    bail!("its annotation file {} is not there", p.display())
}

/// The task's image folder: the registry's for the split when the annotation file sits where
/// the registry puts it, else the annotation file's folder.
fn image_dir(suite: &str, task: &str, split: &str, ann: &Path) -> PathBuf {
    let fallback = ann.parent().map(Path::to_path_buf).unwrap_or_default();
    let Ok(suite) = <Suite as clap::ValueEnum>::from_str(suite, true) else {
        return fallback;
    };
    let Some(files) = registry::find(suite, task).and_then(|t| t.splits.get(split)) else {
        return fallback;
    };
    let rel = Path::new(&files.ann_file);
    if !ann.ends_with(rel) {
        return fallback;
    }
    let mut root = ann.to_path_buf();
    for _ in rel.components() {
        root.pop();
    }
    root.join(&files.img_dir)
}

/// The gallery of one task: images chosen over the given runs' matches (all of the same
/// annotation file), each drawn once per run; an image that cannot be read or drawn gives its
/// row's error instead.
pub fn shots(runs: &[&TaskData]) -> Vec<Result<Vec<Shot>>> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let maps: Vec<&BTreeMap<u64, ImageMatch>> = runs.iter().map(|r| &r.matches).collect();
    let ts: Vec<f64> = runs.iter().map(|r| r.threshold).collect();
    errors::choose(&maps, &ts, PER_TASK)
        .into_iter()
        .map(|(id, pick)| {
            let img = first
                .coco
                .images
                .iter()
                .find(|i| i.id == id)
                .ok_or_else(|| anyhow!("image {id} is not in the annotation file"))?;
            let path = image_path(&first.img_dir, &img.file_name)?;
            let pixels = load(&path)?;
            runs.iter()
                .map(|r| {
                    let m = r.matches.get(&id).cloned().unwrap_or_default();
                    let names = category_names(&r.coco);
                    draw(&pixels, &m, r.threshold, &names).map(|(w, h, uri)| Shot {
                        image_id: id,
                        file_name: img.file_name.clone(),
                        pick,
                        gt: m.gt.len(),
                        misses: m.misses(r.threshold),
                        false_positives: m.false_positives(r.threshold),
                        width: w,
                        height: h,
                        data_uri: uri,
                    })
                })
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("drawing {}", path.display()))
        })
        .collect()
}

/// `dir/file_name`, refusing names that leave `dir`.
fn image_path(dir: &Path, file_name: &str) -> Result<PathBuf> {
    let rel = Path::new(file_name);
    if file_name.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("image file name {file_name:?} is not a plain path inside the image folder");
    }
    Ok(dir.join(rel))
}

fn category_names(coco: &CocoFile) -> BTreeMap<u64, String> {
    coco.categories
        .iter()
        .map(|c| (c.id, c.name.clone()))
        .collect()
}

/// Decodes an image (refusing huge ones before decoding) and downscales it to [`MAX_SIDE`].
fn load(path: &Path) -> Result<(RgbImage, f64)> {
    let (w, h) = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(anyhow::Error::from)
        .and_then(|r| r.into_dimensions().map_err(anyhow::Error::from))
        .with_context(|| format!("reading the size of {}", path.display()))?;
    if w as u64 * h as u64 > MAX_MEGAPIXELS * 1_000_000 {
        bail!("{} is {w}x{h}: too large to draw", path.display());
    }
    let img = decode_file(path)?;
    let scale = (MAX_SIDE as f64 / img.width.max(img.height) as f64).min(1.0);
    if scale >= 1.0 {
        return Ok((img, 1.0));
    }
    let (nw, nh) = (
        ((img.width as f64 * scale).round() as u32).max(1),
        ((img.height as f64 * scale).round() as u32).max(1),
    );
    let small = resize_bilinear(&img, nw, nh);
    Ok((small, nw as f64 / img.width as f64))
}

/// Draws the ground truth (green found, orange missed, dashed) and the predictions scoring at
/// least `t` (blue hit, red false positive) with their labels; returns size and `data:` URI.
fn draw(
    (img, scale): &(RgbImage, f64),
    m: &ImageMatch,
    t: f64,
    names: &BTreeMap<u64, String>,
) -> Result<(u32, u32, String)> {
    let mut px = img.data.clone();
    let (w, h) = (img.width, img.height);
    let mut c = font::Target { px: &mut px, w, h };
    let name = |id: u64| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    let sb = |b: [f64; 4]| b.map(|v| v * scale);
    let mut labels = Vec::new();
    for g in &m.gt {
        let found = g.found_by.is_some_and(|s| s >= t);
        let color = if found { GT_FOUND } else { GT_MISSED };
        rect(&mut c, sb(g.bbox), color, true);
        if !found {
            labels.push((
                sb(g.bbox),
                format!("missed: {}", name(g.category_id)),
                color,
            ));
        }
    }
    for p in m.pred.iter().filter(|p| p.score >= t) {
        let color = if p.hit { PRED_HIT } else { PRED_FALSE };
        rect(&mut c, sb(p.bbox), color, false);
        labels.push((
            sb(p.bbox),
            format!("{} {:.2}", name(p.category_id), p.score),
            color,
        ));
    }
    for (b, text, color) in labels {
        label(&mut c, b, &text, color);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode(&px, w, h, image::ExtendedColorType::Rgb8)
        .context("encoding a gallery image as JPEG")?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&out);
    Ok((w, h, format!("data:image/jpeg;base64,{b64}")))
}

/// A box outline two pixels wide; dashed for ground truth.
fn rect(c: &mut font::Target, [x, y, bw, bh]: [f64; 4], color: [u8; 3], dashed: bool) {
    let (x0, y0) = (x.round() as i64, y.round() as i64);
    let (x1, y1) = ((x + bw).round() as i64, (y + bh).round() as i64);
    let on = |k: i64| !dashed || (k / 5) % 2 == 0;
    for k in x0..=x1 {
        if on(k - x0) {
            for d in 0..2 {
                c.blend(k, y0 + d, color, 1.0);
                c.blend(k, y1 - d, color, 1.0);
            }
        }
    }
    for k in y0..=y1 {
        if on(k - y0) {
            for d in 0..2 {
                c.blend(x0 + d, k, color, 1.0);
                c.blend(x1 - d, k, color, 1.0);
            }
        }
    }
}

/// A label on a filled band above the box's top-left corner (inside it at the image's top).
fn label(c: &mut font::Target, [x, y, _, _]: [f64; 4], text: &str, color: [u8; 3]) {
    const SIZE: f32 = 11.0;
    let tw = font::width(text, SIZE).ceil() as i64 + 4;
    let th = 14i64;
    let left = (x.round() as i64).clamp(0, (c.w as i64 - tw).max(0));
    let top = if y.round() as i64 - th >= 0 {
        y.round() as i64 - th
    } else {
        y.round() as i64 + 2
    };
    for yy in top..top + th {
        for xx in left..left + tw {
            c.blend(xx, yy, color, 0.85);
        }
    }
    c.text(
        left as f32 + 2.0,
        top as f32 + 11.0,
        text,
        SIZE,
        [0xff, 0xff, 0xff],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_must_stay_in_the_folder() {
        let d = Path::new("/data/test");
        assert_eq!(
            image_path(d, "a/b.jpg").unwrap(),
            PathBuf::from("/data/test/a/b.jpg")
        );
        for bad in ["../x.jpg", "/etc/passwd", "", "a/../../b.png"] {
            assert!(image_path(d, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_folder_comes_from_the_registry_when_the_layout_matches() {
        let t = registry::find(Suite::Odinw35, "BCCD").unwrap();
        let s = &t.splits["test"];
        let root = Path::new("/x/DATASET");
        let ann = root.join(&s.ann_file);
        assert_eq!(
            image_dir("odinw35", "BCCD", "test", &ann),
            root.join(&s.img_dir)
        );
        // Elsewhere, or for an unknown suite: the annotation file's folder.
        let other = Path::new("/y/ann.json");
        assert_eq!(
            image_dir("odinw35", "BCCD", "test", other),
            PathBuf::from("/y")
        );
        assert_eq!(
            image_dir("mine", "BCCD", "test", &ann),
            ann.parent().unwrap()
        );
    }

    #[test]
    fn drawing_marks_boxes_in_their_colours() {
        let img = RgbImage {
            width: 100,
            height: 80,
            data: vec![0xff; 100 * 80 * 3],
        };
        let m = errors::match_image(
            &[(1, [10.0, 20.0, 30.0, 30.0]), (1, [60.0, 10.0, 20.0, 20.0])],
            vec![crate::postprocess::CocoDetection {
                image_id: 1,
                category_id: 1,
                bbox: [10.0, 20.0, 30.0, 30.0],
                score: 0.9,
            }],
        );
        let names = BTreeMap::from([(1, "Ωcell".to_string())]);
        let (w, h, uri) = draw(&(img, 1.0), &m, 0.5, &names).unwrap();
        assert_eq!((w, h), (100, 80));
        let b64 = uri.strip_prefix("data:image/jpeg;base64,").unwrap();
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let back = crate::preprocess::decode_bytes(&jpeg).unwrap().0;
        let near = |p: [u8; 3], c: [u8; 3]| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) < 40);
        // The hit's box edge (blue, drawn over the found GT) and the missed GT (orange, dashed).
        assert!(
            near(back.pixel(25, 50), PRED_HIT),
            "{:?}",
            back.pixel(25, 50)
        );
        assert!(
            near(back.pixel(70, 30), GT_MISSED),
            "{:?}",
            back.pixel(70, 30)
        );
        // The box's inside is untouched.
        assert!(near(back.pixel(25, 40), [0xff; 3]));
    }
}

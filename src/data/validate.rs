//! Checks of a COCO annotation file: duplicate ids, annotations pointing at missing images or
//! categories, malformed, non-finite, negative or empty boxes, images missing on disk, and
//! image paths that leave the split folder (absolute, `..` above it, or a link out of it).
//! Each kind of problem is reported once, with its count and a first example; the last kind is
//! an error ([`Finding::is_error`]), the others are warnings.
use super::coco::CocoFile;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One kind of problem found in a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: &'static str,
    pub count: usize,
    pub example: String,
}

impl Finding {
    /// Whether the file must be refused (its image paths point outside its folder), rather than
    /// only warned about.
    pub fn is_error(&self) -> bool {
        self.kind == OUTSIDE_FOLDER
    }

    /// `<file>: <count> <kind> (e.g. <example>)`.
    pub fn describe(&self, file: &Path) -> String {
        format!(
            "{}: {} {} (e.g. {})",
            file.display(),
            self.count,
            self.kind,
            self.example
        )
    }
}

#[derive(Default)]
struct Tally {
    order: Vec<&'static str>,
    found: HashMap<&'static str, (usize, String)>,
}

impl Tally {
    fn add(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        match self.found.get_mut(kind) {
            Some((n, _)) => *n += 1,
            None => {
                self.order.push(kind);
                self.found.insert(kind, (1, example()));
            }
        }
    }

    fn into_findings(mut self) -> Vec<Finding> {
        self.order
            .iter()
            .map(|k| {
                let (count, example) = self.found.remove(k).unwrap();
                Finding {
                    kind: k,
                    count,
                    example,
                }
            })
            .collect()
    }
}

pub const DUP_IMAGE: &str = "duplicate image ids";
pub const DUP_ANN: &str = "duplicate annotation ids";
pub const DUP_CAT: &str = "duplicate category ids";
pub const NO_IMAGE: &str = "annotations pointing at missing images";
pub const NO_CATEGORY: &str = "annotations pointing at missing categories";
pub const BAD_BOX: &str = "boxes that are not 4 finite numbers";
pub const NEGATIVE_SIZE: &str = "boxes with negative width or height";
pub const NEGATIVE_POS: &str = "boxes with negative x or y";
pub const EMPTY_BOX: &str = "boxes of zero width or height";
pub const MISSING_ON_DISK: &str = "images missing on disk";
pub const OUTSIDE_FOLDER: &str = "image paths that leave the split folder";

/// Whether `file_name` names a path inside `dir`: not absolute, no `..` above `dir`, and (when
/// it exists) not reached through a link that leads out of `dir`.
pub fn stays_inside(dir: &Path, file_name: &str) -> bool {
    let name = file_name.replace('\\', "/");
    let b = name.as_bytes();
    if b.first() == Some(&b'/')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
        || name.contains('\0')
    {
        return false;
    }
    let mut depth = 0usize;
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    match (dir.join(file_name).canonicalize(), dir.canonicalize()) {
        (Ok(file), Ok(dir)) => file.starts_with(dir),
        _ => true, // missing: reported as missing, nothing outside is read
    }
}

/// Checks `coco`; with `image_dir`, also that every image file exists under it.
pub fn validate(coco: &CocoFile, image_dir: Option<&Path>) -> Vec<Finding> {
    let mut t = Tally::default();
    let mut image_ids = HashSet::new();
    for img in &coco.images {
        if !image_ids.insert(img.id) {
            t.add(DUP_IMAGE, || format!("image id {}", img.id));
        }
    }
    let mut cat_ids = HashSet::new();
    for c in &coco.categories {
        if !cat_ids.insert(c.id) {
            t.add(DUP_CAT, || format!("category id {}", c.id));
        }
    }
    let mut ann_ids = HashSet::new();
    for a in &coco.annotations {
        if !ann_ids.insert(a.id) {
            t.add(DUP_ANN, || format!("annotation id {}", a.id));
        }
        if !image_ids.contains(&a.image_id) {
            t.add(NO_IMAGE, || {
                format!("annotation {} -> image {}", a.id, a.image_id)
            });
        }
        if !cat_ids.contains(&a.category_id) {
            t.add(NO_CATEGORY, || {
                format!("annotation {} -> category {}", a.id, a.category_id)
            });
        }
        match a.bbox_f64().filter(|b| b.iter().all(|v| v.is_finite())) {
            None => t.add(BAD_BOX, || {
                format!(
                    "annotation {} bbox {}",
                    a.id,
                    serde_json::to_string(&a.bbox).unwrap_or_default()
                )
            }),
            Some([x, y, w, h]) => {
                let example = || format!("annotation {} bbox [{x}, {y}, {w}, {h}]", a.id);
                if w < 0.0 || h < 0.0 {
                    t.add(NEGATIVE_SIZE, example);
                } else if w == 0.0 || h == 0.0 {
                    t.add(EMPTY_BOX, example);
                }
                if x < 0.0 || y < 0.0 {
                    t.add(NEGATIVE_POS, example);
                }
            }
        }
    }
    if let Some(dir) = image_dir {
        for img in &coco.images {
            if !stays_inside(dir, &img.file_name) {
                t.add(OUTSIDE_FOLDER, || {
                    format!("image {} {:?}", img.id, img.file_name)
                });
            } else if img.file_name.is_empty() || !dir.join(&img.file_name).is_file() {
                t.add(MISSING_ON_DISK, || {
                    format!("image {} {:?}", img.id, img.file_name)
                });
            }
        }
    }
    t.into_findings()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_kind_is_counted_once_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"x").unwrap();
        let text = r#"{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}, {"id": 2, "file_name": ""}],
          "categories": [{"id": 1, "name": "x"}, {"id": 1, "name": "y"}],
          "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
            {"id": 1, "image_id": 9, "category_id": 1, "bbox": [0, 0, 5, 5]},
            {"id": 2, "image_id": 1, "category_id": 7, "bbox": [0, 0, 5, 5]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, null, 5]},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 2, -5, 5]},
            {"id": 6, "image_id": 1, "category_id": 1, "bbox": [-1, 2, 5, 0]},
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 0, 5]}
          ]}"#;
        let coco = CocoFile::from_slice(text.as_bytes()).unwrap();
        let found = validate(&coco, Some(dir.path()));
        let counts: Vec<(&str, usize)> = found.iter().map(|f| (f.kind, f.count)).collect();
        assert_eq!(
            counts,
            vec![
                (DUP_IMAGE, 1),
                (DUP_CAT, 1),
                (DUP_ANN, 1),
                (NO_IMAGE, 1),
                (NO_CATEGORY, 1),
                (BAD_BOX, 2),
                (NEGATIVE_SIZE, 1),
                (EMPTY_BOX, 2),
                (NEGATIVE_POS, 1),
                (MISSING_ON_DISK, 2),
            ]
        );
        let line = found[3].describe(Path::new("x.json"));
        assert_eq!(
            line,
            "x.json: 1 annotations pointing at missing images (e.g. annotation 1 -> image 9)"
        );
    }

    #[test]
    fn image_paths_must_stay_in_the_split_folder() {
        let dir = tempfile::tempdir().unwrap();
        let split = dir.path().join("train");
        std::fs::create_dir_all(split.join("sub")).unwrap();
        std::fs::write(split.join("a.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.jpg"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("../secret.jpg", split.join("l.jpg")).unwrap();
        for ok in ["a.jpg", "sub/../a.jpg", "./a.jpg", "missing.jpg"] {
            assert!(stays_inside(&split, ok), "{ok}");
        }
        for bad in [
            "/etc/passwd",
            "../secret.jpg",
            "sub/../../secret.jpg",
            "C:/x.jpg",
            "\\\\h\\x",
        ] {
            assert!(!stays_inside(&split, bad), "{bad}");
        }
        #[cfg(unix)]
        assert!(!stays_inside(&split, "l.jpg"), "a link out of the folder");
        let text = r#"{"images": [{"id": 1, "file_name": "/etc/passwd"}, {"id": 2, "file_name": "a.jpg"},
          {"id": 3, "file_name": "../secret.jpg"}], "categories": [], "annotations": []}"#;
        let coco = CocoFile::from_slice(text.as_bytes()).unwrap();
        let found = validate(&coco, Some(&split));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].kind, found[0].count), (OUTSIDE_FOLDER, 2));
        assert!(found[0].is_error() && found[0].example.contains("/etc/passwd"));
    }

    #[test]
    fn a_clean_file_has_no_findings() {
        let text = r#"{"images": [{"id": 0, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "x"}],
          "annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [0, 0.5, 5, 5.25]}]}"#;
        let coco = CocoFile::from_slice(text.as_bytes()).unwrap();
        assert!(validate(&coco, None).is_empty());
    }
}

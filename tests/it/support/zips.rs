//! Test data for download tests: generated RoboFlow-style COCO exports (images are
//! deterministic pseudo-random bytes; annotation files carry RoboFlow's root category 0),
//! zips built from folders in GLIP's layout, malicious zips, and the hub's tree listing.
use super::rng::XorShift;
use sha2::{Digest, Sha256};
use std::io::{Cursor, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// A generated COCO file in RoboFlow's form for `images` image names, with `classes` classes
/// under a root category named `root`.
pub fn roboflow_coco(
    rng: &mut XorShift,
    root: &str,
    classes: &[&str],
    images: &[String],
) -> String {
    let mut cats = vec![serde_json::json!({"id": 0, "name": root, "supercategory": "none"})];
    for (i, c) in classes.iter().enumerate() {
        cats.push(serde_json::json!({"id": i + 1, "name": c, "supercategory": root}));
    }
    let mut imgs = Vec::new();
    let mut anns = Vec::new();
    for (i, name) in images.iter().enumerate() {
        imgs.push(serde_json::json!({"id": i, "license": 1, "file_name": name, "height": 416, "width": 416,
                                     "date_captured": "2021-02-24T08:09:18+00:00"}));
        for _ in 0..(1 + rng.next() % 3) {
            let (x, y) = (rng.next() % 300, rng.next() % 300);
            let (w, h) = (1 + rng.next() % 100, 1 + rng.next() % 100);
            anns.push(serde_json::json!({"id": anns.len(), "image_id": i,
                "category_id": 1 + rng.next() % classes.len() as u64,
                "bbox": [x, y, w, h], "area": w * h, "segmentation": [], "iscrowd": 0}));
        }
    }
    serde_json::to_string(&serde_json::json!({
        "info": {"year": "2021", "description": "Exported from roboflow.ai"},
        "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}],
        "categories": cats, "images": imgs, "annotations": anns}))
    .unwrap()
}

/// Writes a RoboFlow export with split folders (`train/`, `valid/`, ...) into `dir`.
pub fn write_split_export(
    dir: &Path,
    seed: u64,
    splits: &[&str],
    classes: &[&str],
    images_per_split: usize,
    image_bytes: usize,
) {
    let mut rng = XorShift::new(seed);
    for split in splits {
        let d = dir.join(split);
        std::fs::create_dir_all(&d).unwrap();
        let names: Vec<String> = (0..images_per_split)
            .map(|i| format!("img_{split}_{i:04}_jpg.rf.{:016x}.jpg", rng.next()))
            .collect();
        for n in &names {
            std::fs::write(d.join(n), rng.bytes(image_bytes)).unwrap();
        }
        let coco = roboflow_coco(&mut rng, "things", classes, &names);
        std::fs::write(d.join("_annotations.coco.json"), coco).unwrap();
    }
}

/// Writes an "export" layout folder: `<s>_annotations.coco.json` for train/val/test and all
/// images beside them.
pub fn write_flat_export(
    dir: &Path,
    seed: u64,
    classes: &[&str],
    images_per_split: usize,
    image_bytes: usize,
) {
    let mut rng = XorShift::new(seed);
    std::fs::create_dir_all(dir).unwrap();
    for split in ["train", "val", "test"] {
        let names: Vec<String> = (0..images_per_split)
            .map(|i| format!("{split}_{i:04}.jpg"))
            .collect();
        for n in &names {
            std::fs::write(dir.join(n), rng.bytes(image_bytes)).unwrap();
        }
        let coco = roboflow_coco(&mut rng, "guns", classes, &names);
        std::fs::write(dir.join(format!("{split}_annotations.coco.json")), coco).unwrap();
    }
}

/// A zip of every file under `src`, each stored as `<prefix><relative path>` (sorted; images
/// stored, JSON deflated, like real archives).
pub fn zip_dir(src: &Path, prefix: &str) -> Vec<u8> {
    let files = super::files_under(src);
    let mut z = ZipBuilder::new();
    for f in files {
        let rel = f
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        z.file(&format!("{prefix}{rel}"), &std::fs::read(&f).unwrap());
    }
    z.finish()
}

/// Builds zips entry by entry, including hostile ones.
pub struct ZipBuilder {
    w: ZipWriter<Cursor<Vec<u8>>>,
}

impl Default for ZipBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ZipBuilder {
    pub fn new() -> Self {
        ZipBuilder {
            w: ZipWriter::new(Cursor::new(Vec::new())),
        }
    }
    pub fn file(&mut self, name: &str, bytes: &[u8]) -> &mut Self {
        let method = if name.ends_with(".json") {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let opts = SimpleFileOptions::default().compression_method(method);
        self.w.start_file(name, opts).unwrap();
        self.w.write_all(bytes).unwrap();
        self
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.w
            .add_symlink(name, target, SimpleFileOptions::default())
            .unwrap();
        self
    }
    /// A deflated entry of `n` zero bytes (written in chunks: a zip bomb costs no memory).
    pub fn zeros(&mut self, name: &str, n: u64) -> &mut Self {
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .large_file(n >= u32::MAX as u64);
        self.w.start_file(name, opts).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len() as u64) as usize;
            self.w.write_all(&chunk[..k]).unwrap();
            left -= k as u64;
        }
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.w.finish().unwrap().into_inner()
    }
}

/// `zip` with every occurrence of the entry name `from` (local and central headers) replaced
/// by `to`, of the same length: how a zip with two entries of one exact name is made (zip
/// writers refuse to write one).
pub fn rename_entry(mut zip: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "names of equal length");
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= zip.len() {
        if &zip[i..i + from.len()] == from {
            zip[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert_eq!(n, 2, "the name appears in the local and the central header");
    zip
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hub's tree API answer for these files (as `odinw_35/<name>`), LFS-style.
pub fn hub_listing(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<_> = files
        .iter()
        .map(|(name, bytes)| {
            serde_json::json!({"type": "file", "oid": "0123456789abcdef0123456789abcdef01234567",
                "size": bytes.len(), "path": format!("odinw_35/{name}"),
                "lfs": {"oid": sha256_hex(bytes), "size": bytes.len(), "pointerSize": 134}})
        })
        .collect();
    serde_json::to_vec(&entries).unwrap()
}

/// The paths a hub emulated by the test server uses for revision `rev`.
pub fn hub_zip_path(rev: &str, file: &str) -> String {
    format!("/GLIPModel/GLIP/resolve/{rev}/odinw_35/{file}")
}

pub fn hub_tree_path(rev: &str) -> String {
    format!("/api/models/GLIPModel/GLIP/tree/{rev}/odinw_35")
}

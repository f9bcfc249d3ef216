//! The fuzz corpus run in CI: each fuzz target (`tests/it/support/fuzz/targets.rs`, the same ones
//! `cargo fuzz` runs from `fuzz/`) gets its seed inputs (real fixtures from the repository and
//! generated ones) and thousands of seeded mutants of them, and no input may panic, take
//! more than a second of CPU time, or grow the heap past the target's limit. `ODINW_FUZZ_ITERS` and
//! `ODINW_FUZZ_SEED` change the number of mutants and the seed; each test prints its counts
//! (`cargo test --test it fuzz_corpus:: -- --nocapture`). Each test runs in a child process of
//! its own (the heap counters are process-wide).
use crate::support;

use image::ExtendedColorType;
use odinw::registry::{self, Suite};
use odinw::submission::check::{CheckOptions, CHALLENGE_SEEDS};
use odinw::submission::keys::KeyMap;
use serde_json::{json, Value};
use std::path::PathBuf;
use support::fuzz::mutate::{Mutator, IMAGE_DICT, JSON_DICT, ZIP_DICT};
use support::fuzz::{budget, run, targets, Outcome};
use support::rng::XorShift;
use support::zips::ZipBuilder;

const MIB: usize = 1 << 20;
/// Mutants per target unless `ODINW_FUZZ_ITERS` says otherwise.
const ITERS: usize = 2000;

fn demo() -> PathBuf {
    support::repo("demo")
}

/// Every annotation file of the demo suite.
fn demo_annotation_files() -> Vec<PathBuf> {
    let root = demo();
    let mut out = Vec::new();
    for t in registry::tasks(Suite::Demo) {
        for split in t.split_names() {
            out.push(t.ann_file(&root, split).unwrap());
        }
    }
    out
}

fn report(o: Outcome) {
    println!("{}", o.line());
    for f in &o.failures {
        println!("  {f}");
    }
    assert!(o.clean(), "{}\n{}", o.line(), o.failures.join("\n"));
}

fn rgb_pattern(w: u32, h: u32, channels: usize, salt: u64) -> Vec<u8> {
    let mut rng = XorShift::new(salt);
    let mut v = Vec::with_capacity((w * h) as usize * channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                // Smooth gradients with some noise, like photographs.
                let base = (x * 255 / w.max(1) + y * 97 / h.max(1)) as u64 + c as u64 * 40;
                v.push((base + rng.next() % 24) as u8);
            }
        }
    }
    v
}

/// The JPEG seeds: small files written by Pillow (`tests/it/support/fuzz/make_jpeg_seeds.py`).
fn jpeg_fixtures() -> Vec<Vec<u8>> {
    let dir = support::repo("tests/fixtures/fuzz");
    let files = support::images::files_with_ext(&dir, "jpg");
    assert!(files.len() >= 9, "JPEG seeds missing in {}", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn jpeg_fixture(name: &str) -> Vec<u8> {
    let p = support::repo("tests/fixtures/fuzz").join(name);
    std::fs::read(p).unwrap()
}

fn png(w: u32, h: u32, kind: ExtendedColorType) -> Vec<u8> {
    use image::ImageEncoder;
    let bytes_per_pixel = kind.bits_per_pixel() as usize / 8;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&rgb_pattern(w, h, bytes_per_pixel, 7), w, h, kind)
        .unwrap();
    out
}

/// JPEG/PNG decoding (`odinw::preprocess::decode_bytes`): demo PNGs, Pillow's JPEGs of odd
/// sizes (grey and colour, baseline and progressive, several qualities and subsamplings) and
/// generated PNGs (grey, grey+alpha, RGBA, 16-bit). The heap limit leaves room for
/// Pillow's largest accepted image (its decompression-bomb limit, 178,956,970 pixels × 3 B).
#[test]
fn fuzz_image_decoding() {
    let Some(_turn) = support::fuzz::take_turn(module_path!(), "fuzz_image_decoding") else {
        return;
    };
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let t = registry::find(Suite::Demo, "ColorShapes").unwrap();
    let dir = t.img_dir(&demo(), "train").unwrap();
    let pngs = support::images::files_with_ext(&dir, "png");
    seeds.extend(pngs.iter().take(2).map(|p| std::fs::read(p).unwrap()));
    seeds.extend(jpeg_fixtures());
    seeds.push(png(9, 7, ExtendedColorType::L8));
    seeds.push(png(9, 7, ExtendedColorType::La8));
    seeds.push(png(9, 7, ExtendedColorType::Rgba8));
    seeds.push(png(9, 7, ExtendedColorType::Rgb16));
    for s in &seeds {
        assert!(
            odinw::preprocess::decode_bytes(s).is_ok(),
            "a seed does not decode"
        );
    }
    let (iters, seed) = budget(ITERS);
    let mut m = Mutator::new(seed, IMAGE_DICT, 1 << 20);
    report(run(
        "decode",
        &seeds,
        &mut m,
        iters,
        640 * MIB,
        targets::decode,
    ));
}

/// The marker segments of a JPEG: (marker, start of the segment's 0xFF, end).
fn segments(j: &[u8]) -> Vec<(u8, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= j.len() && j[i] == 0xFF {
        let marker = j[i + 1];
        let len = u16::from_be_bytes([j[i + 2], j[i + 3]]) as usize;
        out.push((marker, i, i + 2 + len));
        if marker == 0xDA {
            break;
        }
        i += 2 + len;
    }
    out
}

/// Crafted JPEGs of issue 12: an over-subscribed Huffman table (three 1-bit codes, defect
/// 2) and a 2 KB file declaring 5000×5000 pixels with its scan header repeated 100 times and
/// no data (defect 4: it must be refused or decoded within a second and the declared size's
/// memory).
fn crafted_jpegs() -> Vec<Vec<u8>> {
    let base = jpeg_fixture("rgb_64x48.jpg");
    let segs = segments(&base);
    let &(_, sos, sos_end) = segs.iter().find(|s| s.0 == 0xDA).unwrap();
    // A DC table 0 with counts [3, 0, ...] placed last, so it is the one the scan uses.
    let mut dht = vec![0xFF, 0xC4, 0, 22, 0x00, 3];
    dht.extend([0u8; 15]);
    dht.extend([0, 1, 2]);
    let mut oversubscribed = base[..sos].to_vec();
    oversubscribed.extend(&dht);
    oversubscribed.extend(&base[sos..]);
    let mut huge = base[..sos].to_vec();
    let &(_, sof, _) = segs.iter().find(|s| s.0 == 0xC0).unwrap();
    // 5000 × 5000 (issue 12's file declares 10000 × 10000: 0.8 s in odinw with libjpeg-turbo
    // and 1.2 s in Pillow on a busy 2-core machine, too close to the 1-s bound to be a test).
    huge[sof + 5..sof + 9].copy_from_slice(&[0x13, 0x88, 0x13, 0x88]);
    for _ in 0..100 {
        huge.extend(&base[sos..sos_end]);
    }
    huge.extend([0xFF, 0xD9]);
    vec![oversubscribed, huge]
}

/// The crafted inputs of [`crafted_jpegs`] and mutants of them.
///
/// PENDING on the merge of branch `jpeg` (libjpeg-turbo replaces the hand-written decoder,
/// `Decoder::ExactJpeg`): the hand-written decoder panics on the first and spends over a
/// minute on the second, so while it is the one decoding, this test says so and checks
/// nothing. With any other decoder it runs.
#[test]
fn fuzz_crafted_jpegs() {
    let Some(_turn) = support::fuzz::take_turn(module_path!(), "fuzz_crafted_jpegs") else {
        return;
    };
    let decoder = odinw::preprocess::decode_bytes(&jpeg_fixture("rgb_7x5.jpg"))
        .map(|(_, d)| format!("{d:?}"))
        .unwrap();
    if decoder == "ExactJpeg" {
        println!(
            "PENDING: the hand-written JPEG decoder is still in use; the crafted inputs of \
             issue 12 run once branch jpeg is merged"
        );
        return;
    }
    let crafted = crafted_jpegs();
    let (iters, seed) = budget(ITERS);
    let mut m = Mutator::new(seed ^ 5, IMAGE_DICT, 1 << 20);
    report(run(
        "crafted",
        &crafted,
        &mut m,
        iters / 20,
        640 * MIB,
        targets::decode,
    ));
}

/// COCO annotation files (the evaluator's reader and the serde one): the demo suite's files
/// and generated RoboFlow-style exports.
#[test]
fn fuzz_coco_files() {
    let Some(_turn) = support::fuzz::take_turn(module_path!(), "fuzz_coco_files") else {
        return;
    };
    let mut seeds: Vec<Vec<u8>> = demo_annotation_files()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut rng = XorShift::new(5);
    let names: Vec<String> = (0..4).map(|i| format!("img_{i}.jpg")).collect();
    seeds.push(
        support::zips::roboflow_coco(&mut rng, "cells", &["RBC", "WBC"], &names).into_bytes(),
    );
    let (iters, seed) = budget(ITERS);
    let mut m = Mutator::new(seed ^ 1, JSON_DICT, 1 << 20);
    report(run("coco", &seeds, &mut m, iters, 256 * MIB, targets::coco));
}

/// Results files against a demo task's test annotations: generated lists (the file's image
/// ids; categories of the file and one it does not have), and an empty one.
#[test]
fn fuzz_results_files() {
    let Some(_turn) = support::fuzz::take_turn(module_path!(), "fuzz_results_files") else {
        return;
    };
    let t = registry::find(Suite::Demo, "ColorShapes").unwrap();
    let ann = t.ann_file(&demo(), "test").unwrap();
    let gt = odinw::eval::GroundTruth::read(&ann).unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(&ann).unwrap()).unwrap();
    let ids: Vec<u64> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    let mut rng = XorShift::new(9);
    let mut seeds = vec![b"[]".to_vec()];
    for n in [3usize, 40] {
        let list: Vec<Value> = (0..n)
            .map(|k| {
                let id = ids[k % ids.len()];
                json!({"image_id": id, "category_id": 1 + rng.next() % 4,
                       "bbox": [rng.next() % 200, rng.next() % 200, 1 + rng.next() % 90, 0.5 + (rng.next() % 90) as f64],
                       "score": (rng.next() % 1000) as f64 / 1000.0})
            })
            .collect();
        seeds.push(serde_json::to_vec(&list).unwrap());
    }
    let (iters, seed) = budget(ITERS);
    let mut m = Mutator::new(seed ^ 2, JSON_DICT, 1 << 20);
    report(run("results", &seeds, &mut m, iters, 256 * MIB, |b| {
        targets::results(&gt, b)
    }));
}

/// Zip extraction as `download` installs archives: small RoboFlow-like exports (JSON
/// deflated, images stored), folders, a link that stays inside, a highly compressible file.
#[test]
fn fuzz_zip_extraction() {
    let Some(_turn) = support::fuzz::take_turn(module_path!(), "fuzz_zip_extraction") else {
        return;
    };
    let mut rng = XorShift::new(11);
    let names: Vec<String> = (0..2).map(|i| format!("img_{i}.jpg")).collect();
    let coco = support::zips::roboflow_coco(&mut rng, "pets", &["cat", "dog"], &names);
    let mut seeds = Vec::new();
    let mut z = ZipBuilder::new();
    z.file("train/_annotations.coco.json", coco.as_bytes());
    for n in &names {
        z.file(&format!("train/{n}"), &rng.bytes(300));
    }
    seeds.push(z.finish());
    let mut z = ZipBuilder::new();
    z.file("export/README.roboflow.txt", b"exported")
        .file("export/valid/a.json", b"{\"images\": []}")
        .symlink("export/valid/link.json", "a.json");
    seeds.push(z.finish());
    let mut z = ZipBuilder::new();
    z.file("big.json", &vec![b' '; 200_000]);
    seeds.push(z.finish());
    let scratch = support::scratch();
    let (iters, seed) = budget(ITERS);
    let mut m = Mutator::new(seed ^ 3, ZIP_DICT, 1 << 20);
    report(run("zip", &seeds, &mut m, iters, 256 * MIB, |b| {
        targets::zip(b, scratch.path())
    }));
}

/// Submission files through the checker with the demo suite's test annotations: a zero-shot
/// and a few-shot submission of every demo task.
#[test]
fn fuzz_submission_checker() {
    let Some(_turn) = support::fuzz::take_turn(module_path!(), "fuzz_submission_checker") else {
        return;
    };
    let root = demo();
    let mut zero = serde_json::Map::new();
    let mut few = serde_json::Map::new();
    for t in registry::tasks(Suite::Demo) {
        let doc: Value =
            serde_json::from_slice(&std::fs::read(t.ann_file(&root, "test").unwrap()).unwrap())
                .unwrap();
        let list: Vec<Value> = doc["images"]
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .map(|im| {
                json!({"image_id": im["id"], "category_id": t.categories[0].id,
                       "bbox": [1.5, 2, 30, 40.25], "score": 0.75})
            })
            .collect();
        zero.insert(t.name.clone(), json!(list));
        few.insert(
            t.name.clone(),
            json!({"3": list.clone(), "30": list.clone(), "300": list}),
        );
    }
    let seeds = vec![
        serde_json::to_vec_pretty(&zero).unwrap(),
        serde_json::to_vec(&few).unwrap(),
    ];
    let opts = CheckOptions {
        root: Some(root.clone()),
        split: "test".into(),
        suite: Some(Suite::Demo),
        track: None,
        seeds: CHALLENGE_SEEDS.map(String::from).to_vec(),
        keys: KeyMap::registry(),
        max_examples: 10,
    };
    let scratch = support::scratch();
    let (iters, seed) = budget(ITERS);
    let mut m = Mutator::new(seed ^ 4, JSON_DICT, 1 << 20);
    report(run("submission", &seeds, &mut m, iters, 256 * MIB, |b| {
        targets::submission(b, scratch.path(), &opts)
    }));
}

//! Whole few-shot splits against the Python oracle (tests/oracles/fewshot.py: GLIP's sampler
//! written with pycocotools and CPython's `random`): for every shot and seed, the files
//! `odinw splits --ann` writes must hold exactly the image ids and annotation ids the oracle picks
//! (in the same order), records copied unchanged, and load in pycocotools; the library's
//! selection order must equal GLIP's. Runs on the real RoboFlow exports in ../shared (raw, and
//! without category 0 as GLIP ships them) and on generated files.
use crate::support;
use crate::support::read_json;
use crate::support::splits_gen;

use odinw::splits::{rng::Seed, Source};
use serde_json::Value;
use splits_gen::Mixed;
use std::collections::HashMap;
use std::path::Path;

const SHOTS: &str = "1,3,5,10";
const SEEDS: &str = "0,3,30,300,12345,4294967301,18446744073709551621,31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679";

fn ids(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect()
}

fn by_id(list: &Value) -> HashMap<u64, &Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| (v["id"].as_u64().unwrap(), v))
        .collect()
}

/// Splits `src` with odinw and with the oracle and compares every output file.
fn compare_with_oracle(python: &Path, src: &Path) {
    let out = support::scratch();
    let run = support::run_odinw(&[
        "splits",
        "--ann",
        src.to_str().unwrap(),
        "--shots",
        SHOTS,
        "--seeds",
        SEEDS,
        "--out",
        out.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        run.status.success(),
        "odinw splits failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let expected: Value = serde_json::from_str(&support::run_oracle(
        python,
        "fewshot.py",
        &[src.to_str().unwrap(), "--shots", SHOTS, "--seeds", SEEDS],
    ))
    .unwrap();
    let source_json = read_json(src);
    let source = Source::load(src).unwrap();
    let valid: Vec<u64> = serde_json::from_value(expected["valid"].clone()).unwrap();
    assert_eq!(source.index.valid_ids(), valid.as_slice(), "valid images");

    let src_images = by_id(&source_json["images"]);
    let src_anns = by_id(&source_json["annotations"]);
    let stem = src.file_stem().unwrap().to_str().unwrap();
    let results = expected["results"].as_array().unwrap();
    assert_eq!(results.len(), 4 * SEEDS.split(',').count());
    let mut sizes = HashMap::new();
    for r in results {
        let (shot, seed) = (r["shot"].as_u64().unwrap(), r["seed"].as_str().unwrap());
        let what = format!("{} shot {shot} seed {seed}", src.display());
        let name = format!("fewshot_{stem}_shot{shot}_seed{seed}.json");
        let file = read_json(&out.path().join(&name));

        let want_images: Vec<u64> = serde_json::from_value(r["image_ids"].clone()).unwrap();
        let want_anns: Vec<u64> = serde_json::from_value(r["annotation_ids"].clone()).unwrap();
        assert_eq!(ids(&file["images"]), want_images, "image ids, {what}");
        assert_eq!(
            ids(&file["annotations"]),
            want_anns,
            "annotation ids, {what}"
        );

        let selection: Vec<u64> = serde_json::from_value(r["selection"].clone()).unwrap();
        let seed_value: Seed = seed.parse().unwrap();
        assert_eq!(
            source.index.select(shot as u32, &seed_value),
            selection,
            "selection order, {what}"
        );

        // Records are copied unchanged; everything but the marker is the source's.
        for img in file["images"].as_array().unwrap() {
            assert_eq!(Some(&img), src_images.get(&img["id"].as_u64().unwrap()));
        }
        for ann in file["annotations"].as_array().unwrap() {
            assert_eq!(Some(&ann), src_anns.get(&ann["id"].as_u64().unwrap()));
        }
        let mut rest = file.as_object().unwrap().clone();
        let marker = rest.remove("odinw_fewshot").expect("marker");
        assert_eq!(marker["shot"], shot);
        assert_eq!(marker["seed"], seed);
        for (k, v) in source_json.as_object().unwrap() {
            if k != "images" && k != "annotations" {
                assert_eq!(rest.get(k), Some(v), "top-level {k}, {what}");
            }
        }
        sizes.insert(name, (want_images.len(), want_anns.len()));
    }

    // pycocotools loads every file, with the same counts.
    let loaded: Value = serde_json::from_str(&support::run_oracle(
        python,
        "fewshot.py",
        &["--load", out.path().to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(loaded.as_object().unwrap().len(), sizes.len());
    for (name, (images, anns)) in sizes {
        assert_eq!(loaded[&name]["images"], images, "{name}");
        assert_eq!(loaded[&name]["annotations"], anns, "{name}");
    }
}

#[test]
fn real_roboflow_exports_match_the_oracle() {
    let Some(python) = support::python_with(&["pycocotools"]) else {
        return;
    };
    let scratch = support::scratch();
    for dataset in ["BCCD.v3-raw.coco", "Aquarium Combined.v2-raw-1024.coco"] {
        for split in ["train", "valid", "test"] {
            let Some(raw) = support::shared_data(&format!(
                "roboflow/{dataset}/{split}/_annotations.coco.json"
            )) else {
                return;
            };
            // As exported (category 0 = RoboFlow's background entry) ...
            compare_with_oracle(&python, &raw);
            // ... and as GLIP ships it, without category 0.
            let folder = scratch.path().join(format!("{dataset}-{split}"));
            std::fs::create_dir_all(&folder).unwrap();
            let clean = folder.join("annotations_without_background.json");
            let coco = splits_gen::without_background(read_json(&raw));
            std::fs::write(&clean, serde_json::to_vec(&coco).unwrap()).unwrap();
            compare_with_oracle(&python, &clean);
        }
    }
}

fn write_generated(dir: &Path, name: &str, coco: &Value) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(coco).unwrap()).unwrap();
    p
}

#[test]
fn generated_files_match_the_oracle() {
    let Some(python) = support::python_with(&["pycocotools"]) else {
        return;
    };
    let scratch = support::scratch();
    let cases = [
        (
            "mixed.json",
            Mixed {
                images: 1500,
                category_ids: vec![6, 5, 4, 3, 2, 1],
                used_ids: vec![1, 2, 3, 4, 5],
                rare: Some(6),
                seed: 1,
            },
        ),
        (
            "few_images.json",
            Mixed {
                images: 12,
                category_ids: vec![1, 2, 3],
                used_ids: vec![1, 2, 3],
                rare: None,
                seed: 2,
            },
        ),
        (
            // RoboFlow-style background id 0 used by annotations, and an unlisted id equal to
            // the number of categories: both reach the last counter, as in Python.
            "background_ids.json",
            Mixed {
                images: 800,
                category_ids: vec![0, 1, 2, 3, 4],
                used_ids: vec![0, 1, 2, 3, 4, 5],
                rare: None,
                seed: 3,
            },
        ),
        (
            "one_category.json",
            Mixed {
                images: 300,
                category_ids: vec![1],
                used_ids: vec![1],
                rare: None,
                seed: 4,
            },
        ),
    ];
    for (name, opts) in &cases {
        let path = write_generated(scratch.path(), name, &splits_gen::mixed(opts));
        compare_with_oracle(&python, &path);
    }
    // No valid image at all: every file is empty of images, for both.
    let mut empty = splits_gen::mixed(&cases[1].1);
    for a in empty["annotations"].as_array_mut().unwrap() {
        a["bbox"] = serde_json::json!([0, 0, 1, 1]);
    }
    let path = write_generated(scratch.path(), "no_valid.json", &empty);
    compare_with_oracle(&python, &path);
}

#[test]
fn a_category_id_glip_cannot_index_fails_in_both() {
    let Some(python) = support::python_with(&["pycocotools"]) else {
        return;
    };
    let scratch = support::scratch();
    // Categories 1, 5, 9: three counters, so category 5 or 9 is out of GLIP's range.
    let coco = splits_gen::mixed(&Mixed {
        images: 50,
        category_ids: vec![1, 5, 9],
        used_ids: vec![1, 5, 9],
        rare: None,
        seed: 5,
    });
    let path = write_generated(scratch.path(), "sparse_ids.json", &coco);
    let run = support::run_odinw(&[
        "splits",
        "--ann",
        path.to_str().unwrap(),
        "--shots",
        "1",
        "--seeds",
        "3",
        "--out",
        scratch.path().to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("sparse_ids.json")
            && err.contains("IndexError")
            && err.contains("3 categories"),
        "{err}"
    );
    let oracle = std::process::Command::new(&python)
        .arg(support::repo("tests/oracles/fewshot.py"))
        .args([path.to_str().unwrap(), "--shots", "1", "--seeds", "3"])
        .output()
        .unwrap();
    assert_eq!(oracle.status.code(), Some(3), "the oracle fails too");
}

//! `odinw normalize` on the real RoboFlow exports in ../shared (compared with GLIP's README
//! procedure done by a Python oracle and loaded by pycocotools) and on generated files.
use crate::support;

use std::path::Path;
use support::{python_with, run_oracle, scratch};

fn run(args: &[&str]) -> std::process::Output {
    support::run_odinw(args)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Copies the export's annotation files (and, with `images`, its images) into `dst`.
fn copy_export(src: &Path, dst: &Path, images: bool) {
    for split in ["train", "valid", "test"] {
        std::fs::create_dir_all(dst.join(split)).unwrap();
        for e in std::fs::read_dir(src.join(split)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap();
            if images || name == "_annotations.coco.json" {
                std::fs::copy(&p, dst.join(split).join(name)).unwrap();
            }
        }
    }
}

#[test]
fn real_exports_match_glips_procedure_and_load_in_pycocotools() {
    let Some((bccd, aquarium)) = support::roboflow_exports() else {
        return;
    };
    let Some(python) = python_with(&["pycocotools"]) else {
        return;
    };
    for (src, images, root_name) in [(bccd, true, "cells"), (aquarium, false, "creatures")] {
        let dir = scratch();
        copy_export(&src, dir.path(), images);
        let out = run(&["normalize", dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        let said = text(&out);
        assert!(
            said.contains(&format!("removed root category 0 \"{root_name}\"")),
            "{said}"
        );
        assert!(said.contains("3 annotation files: 3 written"), "{said}");
        if images {
            assert!(!said.contains("images missing on disk"), "{said}");
        } else {
            assert!(said.contains("images missing on disk"), "{said}");
        }
        // Real data has a few zero-size boxes; they are reported with counts.
        assert!(said.contains("boxes of zero width or height"), "{said}");
        for split in ["train", "valid", "test"] {
            let source = dir.path().join(split).join("_annotations.coco.json");
            let ours = dir
                .path()
                .join(split)
                .join("annotations_without_background.json");
            let oracle: serde_json::Value = serde_json::from_str(&run_oracle(
                &python,
                "glip_without_background.py",
                &[source.to_str().unwrap(), ours.to_str().unwrap()],
            ))
            .unwrap();
            let got: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&ours).unwrap()).unwrap();
            assert_eq!(got, oracle["expected"], "{split}");
            let cat_ids: Vec<u64> = got["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_u64().unwrap())
                .collect();
            assert_eq!(oracle["coco_cat_ids"], serde_json::json!(cat_ids));
            assert_eq!(
                oracle["coco_ann_count"],
                serde_json::json!(got["annotations"].as_array().unwrap().len())
            );
        }
        // Idempotent: a second run writes nothing and changes nothing.
        let before: Vec<Vec<u8>> = ["train", "valid", "test"]
            .iter()
            .map(|s| {
                std::fs::read(
                    dir.path()
                        .join(s)
                        .join("annotations_without_background.json"),
                )
                .unwrap()
            })
            .collect();
        let out = run(&["normalize", dir.path().to_str().unwrap()]);
        assert!(
            text(&out).contains("0 written, 3 up to date"),
            "{}",
            text(&out)
        );
        for (i, s) in ["train", "valid", "test"].iter().enumerate() {
            assert_eq!(
                std::fs::read(
                    dir.path()
                        .join(s)
                        .join("annotations_without_background.json")
                )
                .unwrap(),
                before[i]
            );
        }
    }
}

#[test]
fn files_it_did_not_write_are_left_alone_and_problems_are_counted() {
    let dir = scratch();
    let d = dir.path().join("train");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("a.jpg"), b"x").unwrap();
    let coco = r#"{"categories": [{"id": 0, "name": "root", "supercategory": "none"},
                                  {"id": 1, "name": "x", "supercategory": "root"}],
      "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "gone.jpg"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},
                      {"id": 1, "image_id": 3, "category_id": 1, "bbox": [0, 0, -1, 1]},
                      {"id": 2, "image_id": 1, "category_id": 5, "bbox": [0, 0, 1, 1]}]}"#;
    std::fs::write(d.join("_annotations.coco.json"), coco).unwrap();
    let out = run(&["normalize", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for line in [
        "1 duplicate annotation ids (e.g. annotation id 1)",
        "1 annotations pointing at missing images (e.g. annotation 1 -> image 3)",
        "1 annotations pointing at missing categories (e.g. annotation 2 -> category 5)",
        "1 boxes with negative width or height",
        "1 images missing on disk (e.g. image 2 \"gone.jpg\")",
    ] {
        assert!(said.contains(line), "missing {line:?} in:\n{said}");
    }
    // The user's own file is never overwritten.
    std::fs::write(
        d.join("annotations_without_background.json"),
        "{\"mine\": 1}",
    )
    .unwrap();
    let out = run(&["normalize", dir.path().to_str().unwrap()]);
    assert!(
        text(&out).contains("was not written by odinw; left as is"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(d.join("annotations_without_background.json")).unwrap(),
        "{\"mine\": 1}"
    );
    let out = run(&["normalize", scratch().path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no RoboFlow annotation file"),
        "{}",
        text(&out)
    );
}

#[test]
fn every_bad_split_is_reported_and_image_paths_must_stay_in_their_folder() {
    let dir = scratch();
    let good = r#"{"categories": [{"id": 0, "name": "root", "supercategory": "none"},
                                  {"id": 1, "name": "x", "supercategory": "root"}],
      "images": [{"id": 1, "file_name": "a.jpg"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]}"#;
    let escaping = good.replace(
        r#"[{"id": 1, "file_name": "a.jpg"}]"#,
        r#"[{"id": 1, "file_name": "/etc/passwd"}, {"id": 2, "file_name": "../train/a.jpg"}]"#,
    );
    for (split, text) in [
        ("a_train", good.to_string()),
        ("b_valid", "{\"images\": [".to_string()),
        ("c_test", "[1, 2]".to_string()),
        ("d_escape", escaping),
    ] {
        let d = dir.path().join(split);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.jpg"), b"x").unwrap();
        std::fs::write(d.join("_annotations.coco.json"), text).unwrap();
    }
    let out = run(&["normalize", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    for split in ["b_valid", "c_test"] {
        let shown = dir.path().join(split).join("_annotations.coco.json");
        assert!(
            said.contains(&format!("{}: FAILED", shown.display())),
            "{split} not reported:\n{said}"
        );
    }
    assert!(
        said.contains("2 image paths that leave the split folder (e.g. image 1 \"/etc/passwd\")"),
        "{said}"
    );
    assert!(
        said.contains("4 annotation files: 2 written, 0 up to date, 0 left as found, 3 failed"),
        "{said}"
    );
    // The good split was still written.
    assert!(dir
        .path()
        .join("a_train/annotations_without_background.json")
        .is_file());
}

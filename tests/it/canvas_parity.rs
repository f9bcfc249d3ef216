//! `odinw eval` against GLIP in PyTorch (`scripts/glip_export`, rebuilt from the demo model's
//! graphs) fed one image at a time on GLIP's canvas (`tests/oracles/glip_canvas.py`), on images
//! of mixed sizes and orientations: generated ones (the demo suite's shapes, rotated, stretched
//! and cropped; always) and real RoboFlow photos (BCCD 640x480, Aquarium 768x1024, 576x1024 and
//! 1024x768; when ../shared/data is present). The model is the demo model, exported at 192x192,
//! and every image's canvas differs from that: with its resize rule changed to min 224 / max 320
//! (canvases 224..320 on a side) and with its own 192/192 (canvases 192 x 64..160). Every
//! detection must be matched (same image and class, score within 1e-4, IoU > 0.999), in both
//! directions. The old fixed canvas (`--fixed-canvas`, every image padded to 192x192) is
//! checked against the same PyTorch model on that canvas, and its match rate against GLIP's
//! per-image canvases is printed.
//!
//! The 190x410 image is the only one whose resize runs the vertical pass first in Pillow 13 (its
//! height shrinks by more than twice as many pixels as its width: to 148x319 under 224/320, to
//! 89x192 under 192/192); Pillow 12 always runs the horizontal pass first, and the two orders
//! round the 8-bit intermediate differently. odinw follows Pillow 13, and so does the oracle on
//! any Pillow (`glip_export.preprocess.resize_bilinear`; the export environment pins Pillow
//! 12.3.0). With Pillow 12.3.0's own resize the oracle's pixels differed from odinw's by 1 in
//! 3,038 of 141,636 values, and 21 of the image's 53 detections matched (scores up to 3.6e-4
//! apart, IoU >= 0.998): the README's former "known gap", which was not in the graphs (ONNX
//! Runtime and PyTorch agree within 4e-7 in score on 80 such images fed the same pixels).
use crate::support;
use crate::support::{iou, read_json, repo};

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn bbox(v: &Value) -> Vec<f64> {
    v["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Detections of `got` matched one to one in `want` (same image and class, score within 1e-4,
/// IoU > 0.999), and the larger of the two counts.
fn matched(got: &[Value], want: &[Value]) -> (usize, usize) {
    let mut used = vec![false; want.len()];
    let mut n = 0;
    for g in got {
        let gb = bbox(g);
        let found = want.iter().enumerate().position(|(i, w)| {
            !used[i]
                && w["image_id"] == g["image_id"]
                && w["category_id"] == g["category_id"]
                && (w["score"].as_f64().unwrap() - g["score"].as_f64().unwrap()).abs() < 1e-4
                && iou(&bbox(w), &gb) > 0.999
        });
        if let Some(i) = found {
            used[i] = true;
            n += 1;
        }
    }
    (n, got.len().max(want.len()))
}

/// The demo model with its resize rule changed (same graphs, exported at 192x192).
fn model_with_resize(dir: &Path, min_size: u32, max_size: u32) -> PathBuf {
    model_variant(dir, &format!("model-{min_size}-{max_size}"), |spec| {
        spec["preprocess"]["resize"]["min_size"] = json!(min_size);
        spec["preprocess"]["resize"]["max_size"] = json!(max_size);
    })
}

/// A copy of the demo model's files (not `train/`) in `dir/name`, its model.json edited.
fn model_variant(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(repo("models/demo")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), out.join(e.file_name())).unwrap();
        }
    }
    let mut spec = read_json(&out.join("model.json"));
    edit(&mut spec);
    std::fs::write(
        out.join("model.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    out
}

/// Writes the images of the test task (ColorShapes' categories) under `root`; returns
/// `(id, path)` per image.
fn write_task(root: &Path) -> Vec<(u64, PathBuf)> {
    let task = read_json(&repo("demo/tasks/ColorShapes.json"));
    let split = &task["splits"]["test"];
    let img_dir = root.join(split["img_dir"].as_str().unwrap());
    std::fs::create_dir_all(&img_dir).unwrap();
    let src = repo("demo/odinw/ShapesDemo/ColorShapes/test");
    let shape = |i: usize| image::open(src.join(format!("colorshapes_test_{i:03}.png"))).unwrap();
    use image::imageops::FilterType::Triangle;
    // (The demo images have various sizes; each is brought to a chosen, non-square one.)
    let generated: Vec<image::DynamicImage> = vec![
        shape(0).resize_exact(223, 297, Triangle), // portrait
        shape(1).resize_exact(223, 297, Triangle).rotate90(), // 297x223, landscape
        shape(2).resize_exact(500, 180, Triangle), // wide and thin
        shape(3)
            .resize_exact(200, 300, Triangle)
            .crop_imm(20, 0, 150, 290), // narrow portrait
        shape(4).resize_exact(640, 480, Triangle),
        // The one image resized vertical pass first (see the module doc).
        shape(6).resize_exact(190, 410, Triangle),
    ];
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for (i, img) in generated.iter().enumerate() {
        let name = format!("generated_{i}.png");
        img.to_rgb8().save(img_dir.join(&name)).unwrap();
        files.push((img_dir.join(&name), name));
    }
    // Real photos: BCCD's first two (640x480), Aquarium's first of each of its three sizes.
    for (dir, take, distinct_sizes) in [
        ("roboflow/BCCD.v3-raw.coco/test", 2, false),
        ("roboflow/Aquarium Combined.v2-raw-1024.coco/test", 3, true),
    ] {
        let Some(dir) = support::shared_data(dir) else {
            continue;
        };
        let paths = support::images::files_with_ext(&dir, "jpg");
        let mut sizes = Vec::new();
        for p in paths {
            let size = image::image_dimensions(&p).unwrap();
            if sizes.len() == take || (distinct_sizes && sizes.contains(&size)) {
                continue;
            }
            sizes.push(size);
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::copy(&p, img_dir.join(&name)).unwrap();
            files.push((img_dir.join(&name), name));
        }
    }
    let images: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, (p, name))| {
            let (w, h) = image::image_dimensions(p).unwrap();
            json!({"id": i + 1, "file_name": name, "width": w, "height": h})
        })
        .collect();
    let annotations: Vec<Value> = (0..files.len())
        .map(|i| json!({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0}))
        .collect();
    let coco =
        json!({"images": images, "annotations": annotations, "categories": task["categories"]});
    let ann = root.join(split["ann_file"].as_str().unwrap());
    std::fs::write(&ann, serde_json::to_vec(&coco).unwrap()).unwrap();
    files
        .into_iter()
        .enumerate()
        .map(|(i, (p, _))| (i as u64 + 1, p))
        .collect()
}

fn eval(model: &Path, root: &Path, out: &Path, extra: &[&str]) -> Vec<Value> {
    let _ = std::fs::remove_dir_all(out); // a kept folder's earlier run would be resumed
    let res = support::odinw()
        .args([
            "eval",
            "--suite",
            "demo",
            "--tasks",
            "ColorShapes",
            "--split",
            "test",
        ])
        .arg("--model")
        .arg(model)
        .arg("--root")
        .arg(root)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("ODINW_CACHE", out.with_extension("cache"))
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "odinw eval {extra:?}: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    read_json(&out.join("ColorShapes/predictions.json"))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_image_on_glips_canvas_matches_pytorch_glip() {
    let Some(torch) = support::torch_python() else {
        return;
    };
    let scratch = support::scratch();
    // ODINW_CANVAS_PARITY_DIR keeps the images, runs and the reference for a look afterwards.
    let kept = std::env::var_os("ODINW_CANVAS_PARITY_DIR").map(PathBuf::from);
    let dir = kept.as_deref().unwrap_or(scratch.path());
    let root = dir.join("root");
    let images = write_task(&root);
    let model224 = model_with_resize(dir, 224, 320);
    let demo = repo("models/demo");
    let list: Vec<Value> = images
        .iter()
        .map(|(id, p)| json!([id, p.display().to_string()]))
        .collect();
    let spec = json!({
        "model_dir": demo.display().to_string(),
        "task": repo("demo/tasks/ColorShapes.json").display().to_string(),
        "runs": [
            {"name": "glip224", "min_size": 224, "max_size": 320, "fixed": null, "images": list},
            {"name": "glip192", "min_size": 192, "max_size": 192, "fixed": null, "images": list},
            {"name": "fixed192", "min_size": 192, "max_size": 192, "fixed": [192, 192], "images": list},
        ]
    });
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let reference = dir.join("reference.json");
    support::run_oracle(
        &torch,
        "glip_canvas.py",
        &[spec_path.to_str().unwrap(), reference.to_str().unwrap()],
    );
    let reference = read_json(&reference);
    for run in ["glip224", "glip192"] {
        let canvases = reference[run]["canvases"].as_object().unwrap();
        assert_eq!(canvases.len(), images.len());
        for (id, c) in canvases {
            assert_ne!(
                c,
                &json!([192, 192]),
                "{run}: image {id}'s canvas is the export size"
            );
        }
    }
    let want = |run: &str| reference[run]["predictions"].as_array().unwrap().clone();

    // (label, model, options, PyTorch run, the canvas mode the run's manifest records)
    let per_image = "GLIP's per image (resize, then each side up to a multiple of 32)";
    let fixed = "fixed 192x192 (--fixed-canvas)";
    let cases: [(&str, &Path, &[&str], &str, &str); 4] = [
        (
            "per-image, batch 3",
            &model224,
            &["--batch", "3"],
            "glip224",
            per_image,
        ),
        (
            "per-image, batch 1",
            demo.as_path(),
            &[],
            "glip192",
            per_image,
        ),
        (
            "fixed canvas",
            demo.as_path(),
            &["--fixed-canvas"],
            "fixed192",
            fixed,
        ),
        (
            "fixed canvas vs GLIP",
            demo.as_path(),
            &["--fixed-canvas"],
            "glip192",
            fixed,
        ),
    ];
    for (k, (label, model, extra, run, mode)) in cases.iter().enumerate() {
        let out = dir.join(format!("run{k}"));
        let got = eval(model, &root, &out, extra);
        let manifest = read_json(&out.join("manifest.json"));
        assert_eq!(
            manifest["canvas"],
            json!(mode),
            "{label}: the manifest's canvas mode"
        );
        let want = want(run);
        let (n, total) = matched(&got, &want);
        eprintln!(
            "CANVAS PARITY {label:<22} vs PyTorch {run:<8}: {n}/{total} detections matched ({:.1}%), {} images",
            100.0 * n as f64 / total.max(1) as f64,
            images.len()
        );
        assert!(total > 20, "{label}: the demo model detects things");
        let per_image: Vec<String> = images
            .iter()
            .map(|(id, p)| {
                let of = |v: &[Value]| -> Vec<Value> {
                    v.iter()
                        .filter(|d| d["image_id"] == json!(id))
                        .cloned()
                        .collect()
                };
                let (g, w) = (of(&got), of(&want));
                let (n, t) = matched(&g, &w);
                format!("{}: {n}/{t}", p.file_name().unwrap().to_string_lossy())
            })
            .collect();
        if *label == "fixed canvas vs GLIP" {
            assert!(
                n < total,
                "the fixed canvas should not reproduce GLIP's canvases"
            );
        } else {
            assert_eq!(
                (n, got.len()),
                (total, want.len()),
                "{label}: odinw vs PyTorch GLIP; matched per image: {per_image:?}"
            );
        }
    }
}

/// A model directory of contract v1 (graphs of one fixed size, from before per-image canvases)
/// still loads and runs every image on that size: the demo's model.json written as v1 gives
/// exactly the v2 model's `--fixed-canvas` predictions, and its manifest says why.
#[test]
fn a_contract_v1_model_runs_every_image_on_its_fixed_size() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let dir = support::scratch();
    let root = dir.path().join("root");
    write_task(&root);
    let v1 = model_variant(dir.path(), "model-v1", |spec| {
        spec["contract_version"] = json!(1);
        let pre = spec["preprocess"].as_object_mut().unwrap();
        pre.remove("canvas");
        pre.remove("canvas_rule");
    });
    let got = eval(&v1, &root, &dir.path().join("v1"), &[]);
    let want = eval(
        &repo("models/demo"),
        &root,
        &dir.path().join("fixed"),
        &["--fixed-canvas"],
    );
    assert!(got.len() > 20, "the demo model detects things");
    assert_eq!(got, want, "v1 = the v2 graphs on the fixed canvas");
    let per_image = eval(&repo("models/demo"), &root, &dir.path().join("v2"), &[]);
    assert_ne!(
        got, per_image,
        "the images' own canvases give other detections"
    );
    let manifest = read_json(&dir.path().join("v1/manifest.json"));
    assert_eq!(
        manifest["canvas"],
        json!("fixed 192x192 (contract v1 model)")
    );
}

//! `odinw eval --model DIR` on Grounding DINO and MM-Grounding-DINO model directories: a tiny
//! seeded random model of each family (the export test's `_tiny_weights`: Swin, 1-layer BERT,
//! 50 queries, a 160x160 canvas) exported by `scripts/export_model.py`, run over the demo suite
//! and the real BCCD test split (../shared/data; skipped when absent). Every task's predictions
//! are compared with transformers' model (`GroundingDinoForObjectDetection` /
//! `MMGroundingDinoForObjectDetection` with its processor, `pad_size` = the canvas) on the same
//! decoded images, each caption built by the exporter's `prompts.build_caption` (mmdetection's
//! plain ODinW caption), followed by mmdetection's post-processing as the export test
//! transcribes it in torch (`_mmdet_reference`: positive map, mean of sigmoids, top k, boxes
//! scaled, clamped, rescaled): same (image, class) pairs and counts, each detection matched with
//! score within 1e-4 and IoU > 0.999, image by image. Only an image where PyTorch's two-stage
//! proposal ranking has two scores within 1e-5 among its first num_queries + 1 (their order is
//! fp32 noise, [`TIE`]) may differ, and at most 10% of a task's images (the demo suite has one
//! that does, for the tiny MM model). The MM model runs with `top_k` 40 written into its
//! model.json (a top k that cuts) and `--chunked-size 2` over the model.json's 5 (chunks
//! concatenated with offset classes; the flag wins).
//! The runs have a summary, report and manifest, and `--shard 0/2` + `--shard 1/2` merge to the
//! single-process run.
use crate::support;
use support::demo_runs::summary_without_time;
use support::family_eval::{
    assert_shards_merge, bccd_root, eval, predictions, prompted_root, raw_images, same,
};
use support::{read_json, scratch};

use odinw::registry::{select, Suite, Task};
use serde_json::{json, Value};
use std::path::Path;

/// Two proposals whose encoder scores are this close (logits) can swap places between ONNX
/// Runtime and PyTorch (their fp32 sums differ by ~1e-6); the query slots they fill have
/// different learned embeddings, so the outputs of both queries change.
const TIE: f64 = 1e-5;

/// At most this share of a task's images may differ, and only images with such a tie.
const MAX_UNSTABLE: f64 = 0.1;

/// The detections of image `id`.
fn of_image(dets: &[Value], id: u64) -> Vec<Value> {
    dets.iter()
        .filter(|d| d["image_id"].as_u64() == Some(id))
        .cloned()
        .collect()
}

/// Our detections of `task` matched with the oracle's image by image: every image must match,
/// except images where the reference's proposal ranking has a near-tie ([`TIE`]), which may
/// differ (at most [`MAX_UNSTABLE`] of the images); returns how many detections matched.
fn compare(what: &str, ours: &[Value], want: &Value) -> usize {
    let theirs = want["detections"].as_array().unwrap();
    let ids = |key: &str| -> Vec<u64> {
        want[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let (unstable, images) = (ids("unstable"), ids("image_ids"));
    let (mut matched, mut differing) = (0, Vec::new());
    for &id in &images {
        match same(what, &of_image(ours, id), &of_image(theirs, id)) {
            Ok(n) => matched += n,
            Err(e) if unstable.contains(&id) => differing.push((id, e)),
            Err(e) => panic!("{e}"),
        }
    }
    if !differing.is_empty() {
        eprintln!(
            "{what}: {} image(s) with near-tied proposals in PyTorch differ: {differing:?}",
            differing.len()
        );
    }
    assert!(
        differing.len() as f64 <= MAX_UNSTABLE * images.len() as f64,
        "{what}: {} of {} images differ",
        differing.len(),
        images.len()
    );
    matched
}

/// Builds and exports the tiny model of `family` into `dir/<family>/model`.
pub fn export(python: &Path, dir: &Path, family: &str) -> std::path::PathBuf {
    let root = dir.join(family);
    let code = format!(
        r#"
import sys, pathlib
sys.path.insert(0, {export_tests:?}); sys.path.insert(0, {scripts:?})
import export_model, test_grounding_dino
test_grounding_dino._tiny_weights(pathlib.Path({weights:?}), {mm})
assert export_model.main(["--family", {family:?}, "--weights", {weights:?}, "--out", {model:?}]) == 0
"#,
        export_tests = support::repo("tests/export").to_str().unwrap(),
        scripts = support::repo("scripts").to_str().unwrap(),
        weights = root.join("weights").to_str().unwrap(),
        model = root.join("model").to_str().unwrap(),
        mm = if family == "mm-grounding-dino" {
            "True"
        } else {
            "False"
        },
    );
    support::run_oracle_code(python, &code);
    root.join("model")
}

/// transformers' detections with mmdetection's rule for every task in `jobs` ({task: {names,
/// category_ids, images}}).
/// `chunk`: the classes per caption the run used (`--chunked-size`), else model.json's.
fn oracle(python: &Path, dir: &Path, family: &str, jobs: &Value, chunk: Option<i64>) -> Value {
    let job_file = dir.join(family).join("jobs.json");
    std::fs::write(&job_file, serde_json::to_vec(jobs).unwrap()).unwrap();
    let model_json = dir.join(family).join("model").join("model.json");
    let code = format!(
        r#"
import json, sys
sys.path.insert(0, {export_tests:?}); sys.path.insert(0, {scripts:?})
import torch
from PIL import Image
from transformers import GroundingDinoForObjectDetection, MMGroundingDinoForObjectDetection, GroundingDinoProcessor
from transformers.image_transforms import get_size_with_aspect_ratio
from grounding_dino_export import prompts
from test_grounding_dino import _mmdet_reference
weights = {weights:?}
desc = json.load(open({model_json:?}))
Model = MMGroundingDinoForObjectDetection if {family:?} == "mm-grounding-dino" else GroundingDinoForObjectDetection
model = Model.from_pretrained(weights).eval()
proc = GroundingDinoProcessor.from_pretrained(weights)
ch, cw = desc["preprocess"]["canvas"]
proc.image_processor.pad_size = {{"height": ch, "width": cw}}
size = proc.image_processor.size
chunk = {chunk}
if chunk is None:
    chunk = desc["text"].get("caption", {{}}).get("chunked_size", -1)
top_k = desc["postprocess"]["top_k"]
jobs = json.load(open({jobs:?}))
out = {{}}
for task, job in jobs.items():
    names, ids = job["names"], job["category_ids"]
    dets, unstable = [], []
    for im in job["images"]:
        w, h = im["width"], im["height"]
        image = Image.frombytes("RGB", (w, h), open(im["rgb"], "rb").read())
        resized = get_size_with_aspect_ratio((h, w), size.shortest_edge, size.longest_edge)
        offset = 0
        for group in prompts.chunks(names, chunk):
            caption, spans = prompts.build_caption(group, job["prompt"])
            inputs = proc(images=image, text=caption, return_tensors="pt", truncation=True)
            with torch.no_grad():
                o = model(**inputs)
            # The two-stage proposal ranking (topk of enc_outputs_class' max over tokens) picks
            # which proposal fills which query slot; a near-tie there is fp32 noise.
            ranked = torch.sort(o.enc_outputs_class[0].max(-1)[0], descending=True)[0]
            ranked = ranked[:model.config.num_queries + 1]
            if (ranked[:-1] - ranked[1:]).min().item() < {TIE}:
                unstable.append(im["id"])
            s, lab, xyxy = _mmdet_reference(o.logits[0], o.pred_boxes[0], caption, spans, proc.tokenizer,
                                            resized, (h, w), top_k)
            for sc, l, b in zip(s.tolist(), lab.tolist(), xyxy.tolist()):
                dets.append({{"image_id": im["id"], "category_id": ids[offset + l],
                              "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": sc}})
            offset += len(group)
    out[task] = {{"detections": dets, "unstable": sorted(set(unstable)), "image_ids": [im["id"] for im in job["images"]]}}
print(json.dumps(out))
"#,
        export_tests = support::repo("tests/export").to_str().unwrap(),
        scripts = support::repo("scripts").to_str().unwrap(),
        weights = dir.join(family).join("weights").to_str().unwrap(),
        model_json = model_json.to_str().unwrap(),
        jobs = job_file.to_str().unwrap(),
        TIE = TIE,
        chunk = chunk.map_or("None".to_string(), |c| c.to_string()),
    );
    let stdout = support::run_oracle_code(python, &code);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The oracle's job for `task` under `root`: its category names and ids in id order, the
/// caption_prompt mmdetection's configs give it for `family` (if any) and its images decoded by
/// odinw to raw RGB files.
fn job(task: &Task, family: &str, root: &Path, raw: &Path) -> Value {
    let mut cats: Vec<_> = task.categories.iter().collect();
    cats.sort_by_key(|c| c.id);
    let names: Vec<&str> = cats.iter().map(|c| c.name.as_str()).collect();
    let ids: Vec<u64> = cats.iter().map(|c| c.id).collect();
    let prompt = task.mmdet_caption_prompt.get(family);
    json!({"names": names, "category_ids": ids, "prompt": prompt, "images": raw_images(task, root, raw)})
}

/// Exports `family`, optionally rewrites its model.json, runs the demo suite (and BCCD) with
/// `--chunked-size chunk` if given and compares with the oracle; returns the demo run.
fn family_matches_transformers(
    python: &Path,
    dir: &Path,
    family: &str,
    chunk: Option<i64>,
    edit: impl FnOnce(&mut Value),
) -> std::path::PathBuf {
    let model = export(python, dir, family);
    let path = model.join("model.json");
    let mut desc = read_json(&path);
    edit(&mut desc);
    std::fs::write(&path, serde_json::to_vec_pretty(&desc).unwrap()).unwrap();

    let run = dir.join(family).join("run");
    let chunk_arg = chunk.map(|c| c.to_string());
    let mut extra = Vec::new();
    if let Some(c) = &chunk_arg {
        extra.extend(["--chunked-size", c.as_str()]);
    }
    eval(
        &model,
        &run,
        &[&["--suite", "demo", "--batch", "3"][..], &extra].concat(),
    );
    let demo_root = support::repo("demo");
    let tasks = select(Suite::Demo, &[]).unwrap();
    let raw = dir.join(family).join("raw");
    let mut jobs = serde_json::Map::new();
    for t in &tasks {
        jobs.insert(t.name.clone(), job(t, family, &demo_root, &raw));
    }
    let bccd_dir = dir.join("DATASET");
    let bccd = bccd_root(&bccd_dir).map(|task| {
        let bccd_run = dir.join(family).join("bccd_run");
        eval(
            &model,
            &bccd_run,
            &[
                "--suite",
                "odinw35",
                "--tasks",
                "BCCD",
                "--batch",
                "2",
                "--root",
                bccd_dir.to_str().unwrap(),
            ]
            .iter()
            .chain(&extra)
            .copied()
            .collect::<Vec<_>>(),
        );
        jobs.insert("BCCD".into(), job(task, family, &bccd_dir, &raw));
        bccd_run
    });
    // A task mmdetection's ODinW configs give a caption_prompt for this family (prefix, suffix
    // and, for pothole, a name replacing the class's): its caption and spans come from it.
    let prompted_name = if family == "grounding-dino" {
        "Packages"
    } else {
        "pothole"
    };
    let prompted_dir = dir.join(family).join("PROMPTED");
    let prompted = prompted_root(&prompted_dir, prompted_name);
    assert!(prompted.mmdet_caption_prompt.contains_key(family));
    let prompted_run = dir.join(family).join("prompted_run");
    eval(
        &model,
        &prompted_run,
        &[
            "--suite",
            "odinw35",
            "--tasks",
            prompted_name,
            "--root",
            prompted_dir.to_str().unwrap(),
        ]
        .iter()
        .chain(&extra)
        .copied()
        .collect::<Vec<_>>(),
    );
    jobs.insert(
        prompted_name.into(),
        job(prompted, family, &prompted_dir, &raw),
    );
    let want = oracle(python, dir, family, &Value::Object(jobs), chunk);
    let n = compare(
        &format!("{family} {prompted_name} (caption_prompt)"),
        &predictions(&prompted_run, prompted_name),
        &want[prompted_name],
    );
    assert!(n > 0);
    let log = std::fs::read_to_string(prompted_run.join(prompted_name).join("log.txt")).unwrap();
    let suffix = if family == "grounding-dino" {
        "there is a package on the porch. "
    } else {
        "there are some holes on the road. "
    };
    assert!(log.contains(suffix), "{log}");

    for t in &tasks {
        let n = compare(
            &format!("{family} {}", t.name),
            &predictions(&run, &t.name),
            &want[&t.name],
        );
        assert!(n > 0, "{family} {}: no detections", t.name);
    }
    if let Some(bccd_run) = &bccd {
        let n = compare(
            &format!("{family} BCCD"),
            &predictions(bccd_run, "BCCD"),
            &want["BCCD"],
        );
        assert!(n > 0);
        assert!(bccd_run.join("summary.json").is_file());
    }
    summary_without_time(&run);
    assert!(run.join("report").join("tasks.txt").is_file());
    for t in &tasks {
        assert!(run.join(&t.name).join("metrics.json").is_file());
    }
    let manifest = read_json(&run.join("manifest.json"));
    assert_eq!(manifest["family"], family, "{manifest}");
    run
}

#[test]
fn grounding_dino_eval_matches_transformers_and_shards_merge() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let dir = scratch();
    let run = family_matches_transformers(&python, dir.path(), "grounding-dino", None, |_| {});
    let model = dir.path().join("grounding-dino").join("model");
    // Two shards into one folder merge to the single run.
    assert_shards_merge(&model, dir.path(), &run);
}

#[test]
fn mm_grounding_dino_eval_matches_transformers_chunked() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let dir = scratch();
    // model.json says 5 classes per caption; --chunked-size 2 overrides it.
    let run = family_matches_transformers(&python, dir.path(), "mm-grounding-dino", Some(2), |d| {
        d["text"]["caption"]["chunked_size"] = 5.into();
        d["postprocess"]["top_k"] = 40.into();
    });
    let log = std::fs::read_to_string(run.join("ColorShapes").join("log.txt")).unwrap();
    assert_eq!(log.matches("\ncaption ").count(), 3, "{log}");
    assert!(log.contains("\nchunked_size 2\n"), "{log}");
    let manifest = read_json(&run.join("manifest.json"));
    assert!(
        manifest["queries"]
            .as_str()
            .unwrap()
            .contains("chunked_size 2;"),
        "{manifest}"
    );
}

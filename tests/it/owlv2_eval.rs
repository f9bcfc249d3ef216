//! `odinw eval --model DIR` on an OWLv2 model directory: a tiny seeded random OWLv2 (the export
//! test's `_tiny_weights`, with a 64-token text model so the prompt templates fit) exported by
//! `scripts/export_model.py`, run over the demo suite and the real BCCD test split
//! (../shared/data; skipped when absent). Every task's predictions are compared with
//! transformers' `Owlv2ForObjectDetection` on the same decoded images and the same queries (each
//! class name, as GLIP's caption grounds it, in model.json's templates, canonicalised by the
//! exporter's Python `prompts.class_prompts`), followed by the authors' evaluator's
//! post-processing transcribed in the oracle (template mean, sigmoid, top k of all (patch,
//! class) pairs, boxes unpadded, clipped, scaled): same count per image and class, each
//! detection matched with score within 1e-4 and IoU > 0.999. The run's summary and report
//! exist, and `--shard 0/2` + `--shard 1/2` merge to the single-process run.
use crate::support;
use support::demo_runs::summary_without_time;
use support::family_eval::{
    assert_same, assert_shards_merge, bccd_root, eval, predictions, raw_images,
};
use support::{read_json, scratch};

use odinw::prompt::task_caption;
use odinw::registry::{select, Suite, Task};
use serde_json::{json, Value};
use std::path::Path;

const TEXT_LEN: usize = 64;

/// Builds and exports the tiny model into `dir/model`; returns nothing (the Python side prints).
pub(crate) fn export(python: &Path, dir: &Path) {
    let code = format!(
        r#"
import sys, pathlib
sys.path.insert(0, {export_tests:?}); sys.path.insert(0, {scripts:?})
import export_model, test_owlv2
test_owlv2._tiny_weights(pathlib.Path({weights:?}), text_len={TEXT_LEN})
assert export_model.main(["--family", "owlv2", "--weights", {weights:?}, "--out", {model:?}]) == 0
"#,
        export_tests = support::repo("tests/export").to_str().unwrap(),
        scripts = support::repo("scripts").to_str().unwrap(),
        weights = dir.join("weights").to_str().unwrap(),
        model = dir.join("model").to_str().unwrap(),
    );
    support::run_oracle_code(python, &code);
}

/// transformers' detections for every task in `jobs` ({task: {names, category_ids, images}}).
fn oracle(python: &Path, dir: &Path, jobs: &Value, top_k: usize) -> Value {
    let job_file = dir.join("jobs.json");
    std::fs::write(&job_file, serde_json::to_vec(jobs).unwrap()).unwrap();
    let code = format!(
        r#"
import json, sys
sys.path.insert(0, {scripts:?})
import numpy as np, torch
from PIL import Image
from transformers import Owlv2ForObjectDetection, Owlv2Processor
from owlv2_export import prompts
weights = {weights:?}
model = Owlv2ForObjectDetection.from_pretrained(weights).eval()
proc = Owlv2Processor.from_pretrained(weights)
jobs = json.load(open({jobs:?}))
out = {{}}
for task, job in jobs.items():
    per_template = prompts.class_prompts(job["names"])
    T, C = len(per_template), len(job["names"])
    queries = [q for row in per_template for q in row]
    dets = []
    for im in job["images"]:
        w, h = im["width"], im["height"]
        image = Image.frombytes("RGB", (w, h), open(im["rgb"], "rb").read())
        inputs = proc(text=[queries], images=image, return_tensors="pt")
        with torch.no_grad():
            o = model(**inputs)
        logits = o.logits[0]  # [P, T*C], template-major
        P = logits.shape[0]
        ens = logits.reshape(P, T, C).mean(dim=1)
        scores = torch.sigmoid(ens).reshape(-1)
        k = min({top_k}, scores.numel())
        top = torch.topk(scores, k)
        boxes = o.pred_boxes[0].double().numpy()
        side = max(w, h)
        frac = np.array([w / side, h / side, w / side, h / side])
        for s, i in zip(top.values.tolist(), top.indices.tolist()):
            p, c = divmod(i, C)
            b = np.clip(boxes[p] / (frac + 1e-6), 0.0, 1.0)
            x, y = b[0] - b[2] / 2, b[1] - b[3] / 2
            dets.append({{"image_id": im["id"], "category_id": job["category_ids"][c],
                          "bbox": [x * w, y * h, b[2] * w, b[3] * h], "score": s}})
    out[task] = dets
print(json.dumps(out))
"#,
        scripts = support::repo("scripts").to_str().unwrap(),
        weights = dir.join("weights").to_str().unwrap(),
        jobs = job_file.to_str().unwrap(),
    );
    let stdout = support::run_oracle_code(python, &code);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The oracle's job for `task` under `root`: its class names (GLIP's grounded caption text,
/// prompt as the run uses it), category ids and images decoded by odinw to raw RGB files.
fn job(task: &Task, root: &Path, raw: &Path) -> Value {
    let caption = task_caption(task, true).unwrap();
    let names: Vec<String> = caption
        .classes
        .iter()
        .map(|c| {
            caption
                .text
                .chars()
                .skip(c.start)
                .take(c.end - c.start)
                .collect()
        })
        .collect();
    let ids: Vec<u64> = caption.classes.iter().map(|c| c.id).collect();
    let images = raw_images(task, root, raw);
    json!({"names": names, "category_ids": ids, "images": images})
}

#[test]
fn owlv2_eval_matches_transformers_and_shards_merge() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let dir = scratch();
    export(&python, dir.path());
    let model = dir.path().join("model");
    let top_k = read_json(&model.join("model.json"))["postprocess"]["evaluation"]["top_k"]
        .as_u64()
        .unwrap() as usize;

    // The demo suite, from the data bundled with the binary (the checkout's demo/ folder).
    let run = dir.path().join("run");
    eval(&model, &run, &["--suite", "demo", "--batch", "3"]);
    let demo_root = support::repo("demo");
    let tasks = select(Suite::Demo, &[]).unwrap();
    let mut jobs = serde_json::Map::new();
    for t in &tasks {
        jobs.insert(t.name.clone(), job(t, &demo_root, &dir.path().join("raw")));
    }

    // A real task: BCCD's test split in the registry's layout.
    let bccd_root_dir = dir.path().join("DATASET");
    let bccd = bccd_root(&bccd_root_dir).map(|task| {
        let bccd_run = dir.path().join("bccd_run");
        eval(
            &model,
            &bccd_run,
            &[
                "--suite",
                "odinw35",
                "--tasks",
                "BCCD",
                "--root",
                bccd_root_dir.to_str().unwrap(),
            ],
        );
        jobs.insert(
            "BCCD".into(),
            job(task, &bccd_root_dir, &dir.path().join("raw")),
        );
        bccd_run
    });
    let want = oracle(&python, dir.path(), &Value::Object(jobs), top_k);

    let mut compared = 0;
    for t in &tasks {
        let n = assert_same(
            &t.name,
            &predictions(&run, &t.name),
            want[&t.name].as_array().unwrap(),
        );
        assert!(n > 0, "{}: no detections", t.name);
        compared += n;
    }
    if let Some(bccd_run) = &bccd {
        let n = assert_same(
            "BCCD",
            &predictions(bccd_run, "BCCD"),
            want["BCCD"].as_array().unwrap(),
        );
        assert!(n > 0);
        assert!(bccd_run.join("summary.json").is_file());
    }
    assert!(compared > 0);

    // The run went through the driver: summary, report, metrics per task.
    summary_without_time(&run);
    assert!(run.join("report").join("tasks.txt").is_file());
    for t in &tasks {
        assert!(run.join(&t.name).join("metrics.json").is_file());
    }
    let manifest = read_json(&run.join("manifest.json"));
    assert_eq!(manifest["family"], "owlv2", "{manifest}");

    // Two shards into one folder merge to the single run, report included.
    let sharded = assert_shards_merge(&model, dir.path(), &run);
    assert_eq!(
        std::fs::read(sharded.join("report/tasks.txt")).unwrap(),
        std::fs::read(run.join("report/tasks.txt")).unwrap()
    );
}

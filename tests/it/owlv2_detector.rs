//! `pipeline::owlv2::Owlv2Detector` (Rust pre-processing, tokenization, both graphs through
//! odinw's engine, `postprocess::owlv2::detections`) against transformers'
//! `Owlv2ForObjectDetection` + `Owlv2Processor` + `post_process_object_detection` in PyTorch, on
//! a tiny seeded random OWLv2 exported by `scripts/export_model.py` (the export test's
//! weights), with generated images and real BCCD JPEGs (../shared/data; skipped when absent).
use crate::support;

use odinw::engine::SessionOptions;
use odinw::model::owlv2::Owlv2Dir;
use odinw::pipeline::owlv2::{Owlv2Detector, QueryEmbeds};
use odinw::postprocess::owlv2::detections;
use odinw::preprocess::{decode_file, RgbImage};
use serde_json::Value;
use std::path::Path;

const THRESHOLD: f32 = 0.6;
const LONG_QUERY: &str = "a query far longer than sixteen tokens";

fn oracle_code(repo: &Path, dir: &Path, images: &[RgbImage], queries: &[&str]) -> String {
    let mut jobs = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let f = dir.join(format!("img{i}.rgb"));
        std::fs::write(&f, &img.data).unwrap();
        jobs.push(format!(
            "({:?}, {}, {})",
            f.to_str().unwrap(),
            img.width,
            img.height
        ));
    }
    format!(
        r#"
import json, sys
sys.path.insert(0, {export_tests:?}); sys.path.insert(0, {scripts:?})
import torch
from PIL import Image
from transformers import Owlv2ForObjectDetection, Owlv2Processor
import export_model, test_owlv2
weights, out = {weights:?}, {model:?}
test_owlv2._tiny_weights(__import__("pathlib").Path(weights))
assert export_model.main(["--family", "owlv2", "--weights", weights, "--out", out]) == 0
model = Owlv2ForObjectDetection.from_pretrained(weights).eval()
proc = Owlv2Processor.from_pretrained(weights)
queries = {queries}
res = []
for path, w, h in [{jobs}]:
    im = Image.frombytes("RGB", (w, h), open(path, "rb").read())
    inputs = proc(text=[queries], images=im, return_tensors="pt")
    with torch.no_grad():
        o = model(**inputs)
    d = proc.image_processor.post_process_object_detection(o, threshold={thr}, target_sizes=[(h, w)])[0]
    res.append({{"logits": o.logits[0].ravel().tolist(), "boxes": o.pred_boxes[0].ravel().tolist(),
                "scores": d["scores"].tolist(), "labels": d["labels"].tolist(), "xyxy": d["boxes"].tolist()}})
# A query over 16 tokens, cut as scenic's OWL-ViT tokenizer cuts it: its first 16 tokens.
ids = torch.tensor([proc.tokenizer({long:?})["input_ids"][:16]])
assert len(proc.tokenizer({long:?})["input_ids"]) > 16
with torch.no_grad():
    e = model.owlv2.get_text_features(input_ids=ids, attention_mask=torch.ones_like(ids))
    e = getattr(e, "pooler_output", e)
res.append({{"long": (e / e.norm(dim=-1, keepdim=True))[0].tolist()}})
print(json.dumps(res))
"#,
        export_tests = repo.join("tests/export").to_str().unwrap(),
        scripts = repo.join("scripts").to_str().unwrap(),
        weights = dir.join("weights").to_str().unwrap(),
        model = dir.join("model").to_str().unwrap(),
        queries = serde_json::to_string(queries).unwrap(),
        jobs = jobs.join(", "),
        thr = THRESHOLD,
        long = LONG_QUERY,
    )
}

fn generated(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut lcg = crate::support::rng::Lcg(seed);
    let data = (0..width * height * 3)
        .map(|i| {
            let s = lcg.next();
            let x = (i / 3) % width;
            ((x * 200 / width) as u64 + (s >> 59)) as u8
        })
        .collect();
    RgbImage {
        width,
        height,
        data,
    }
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

#[test]
fn detector_matches_transformers() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let dir = support::scratch();
    let mut images = vec![generated(80, 48, 1), generated(120, 200, 2)];
    if let Some(bccd) = support::shared_data("roboflow/BCCD.v3-raw.coco/test") {
        let mut files: Vec<_> = std::fs::read_dir(&bccd)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        files.sort();
        images.extend(files.iter().take(2).map(|f| decode_file(f).unwrap()));
    }
    let queries = ["red blood cell", "a photo of the platelets", "wbc"];
    let code = oracle_code(&support::repo(""), dir.path(), &images, &queries);
    // The exporter prints a line first; the results are the last line.
    let stdout = support::run_oracle_code(&python, &code);
    let mut want: Vec<Value> = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let want_long = want.pop().unwrap();

    let model = Owlv2Dir::open(&dir.path().join("model")).unwrap();
    let mut det = Owlv2Detector::load(model, &SessionOptions::default()).unwrap();
    let owned: Vec<String> = queries.iter().map(|q| q.to_string()).collect();
    let embeds = det.embed_queries(&owned).unwrap();
    // Truncated as the authors' evaluator truncates, not refused.
    let long = det.embed_queries(&[LONG_QUERY.to_string()]).unwrap();
    assert!(max_rel(long.as_f32().unwrap(), &f32s(&want_long["long"])) < 1e-4);
    let got = det.detect(&images, &mut QueryEmbeds::new(embeds)).unwrap();
    let mut compared = 0;
    for ((img, g), w) in images.iter().zip(&got).zip(&want) {
        assert!(max_rel(&g.logits, &f32s(&w["logits"])) < 1e-4);
        assert!(max_rel(&g.boxes, &f32s(&w["boxes"])) < 1e-4);
        let dets = detections(
            &g.logits,
            &g.boxes,
            queries.len(),
            (img.width, img.height),
            THRESHOLD,
        )
        .unwrap();
        let scores = f32s(&w["scores"]);
        // A score within 1e-4 of the threshold may fall on either side in the two runtimes.
        let near = |s: f32| (s - THRESHOLD).abs() < 1e-4;
        let ours: Vec<_> = dets.iter().filter(|d| !near(d.score)).collect();
        let theirs: Vec<usize> = (0..scores.len()).filter(|&i| !near(scores[i])).collect();
        assert_eq!(ours.len(), theirs.len(), "{}x{}", img.width, img.height);
        for (d, &i) in ours.iter().zip(&theirs) {
            assert_eq!(d.label as u64, w["labels"][i].as_u64().unwrap());
            assert!((d.score - scores[i]).abs() < 1e-4);
            let r = f32s(&w["xyxy"][i]);
            let xywh = |v: &[f32]| {
                vec![
                    v[0] as f64,
                    v[1] as f64,
                    (v[2] - v[0]) as f64,
                    (v[3] - v[1]) as f64,
                ]
            };
            assert!(support::iou(&xywh(&d.xyxy), &xywh(&r)) > 0.999);
            compared += 1;
        }
    }
    assert!(compared > 0);
}

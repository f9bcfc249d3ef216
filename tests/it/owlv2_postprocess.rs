//! `postprocess::owlv2` against its references, on seeded random graph outputs made by the
//! oracle: [`detections`] against transformers' `Owlv2ImageProcessor.post_process_object_detection`
//! (PyTorch oracle interpreter, `ODINW_TORCH_PYTHON`), and the prompt ensemble with
//! [`evaluator_top_k`] against a numpy transcription of the OWL-ViT authors' evaluator
//! (google-research/scenic `owl_vit/evaluator.py`: the mean of the template logits in
//! `get_predict_fn`, `get_top_k` with `exclusive_classes=False`, `unpad_box`,
//! `format_predictions`).
use crate::support;

use odinw::postprocess::owlv2::{detections, ensemble_logits, evaluator_top_k};
use serde_json::Value;

const ORACLE: &str = r#"
import json
import numpy as np
import torch
from transformers import Owlv2ImageProcessor
from transformers.models.owlv2.modeling_owlv2 import Owlv2ObjectDetectionOutput

rng = np.random.default_rng(5)
proc = Owlv2ImageProcessor()
cases = []
for (w, h), q, thr in [((640, 480), 4, 0.5), ((300, 900), 9, 0.1), ((77, 77), 1, 0.7)]:
    p = 40
    logits = (rng.standard_normal((1, p, q)) * 2).astype(np.float32)
    boxes = rng.uniform(0.02, 0.98, (1, p, 4)).astype(np.float32)
    out = Owlv2ObjectDetectionOutput(logits=torch.from_numpy(logits), pred_boxes=torch.from_numpy(boxes))
    r = proc.post_process_object_detection(out, threshold=thr, target_sizes=[(h, w)])[0]
    cases.append({"kind": "transformers", "size": [w, h], "queries": q, "threshold": thr,
                  "logits": logits.ravel().tolist(), "boxes": boxes.ravel().tolist(),
                  "scores": r["scores"].tolist(), "labels": r["labels"].tolist(), "xyxy": r["boxes"].tolist()})

# scenic evaluator, transcribed: mean over templates, sigmoid, top k of the flat scores, unpad_box.
def unpad_box(box, w, h):
    side = max(w, h)
    frac = np.array([w / side, h / side, w / side, h / side]) + 1e-6
    return np.clip(box / frac, 0.0, 1.0)

for (w, h), t, c, k in [((640, 480), 7, 3, 20), ((200, 500), 7, 5, 300), ((64, 64), 2, 1, 10)]:
    p = 30
    logits = (rng.standard_normal((p, t * c)) * 2).astype(np.float32)
    boxes = rng.uniform(0.0, 1.0, (p, 4)).astype(np.float32)
    mean = logits.reshape(p, t, c).mean(axis=1)
    scores = 1 / (1 + np.exp(-mean.astype(np.float64)))
    order = np.argsort(-scores.ravel(), kind="stable")[:min(k, scores.size)]
    dets = []
    for i in order:
        patch, cls = divmod(int(i), c)
        bcx, bcy, bw, bh = unpad_box(boxes[patch], w, h)
        dets.append({"class": cls, "score": float(scores.ravel()[i]),
                     "bbox": [float((bcx - bw / 2) * w), float((bcy - bh / 2) * h), float(bw * w), float(bh * h)]})
    cases.append({"kind": "evaluator", "size": [w, h], "templates": t, "classes": c, "k": k,
                  "logits": logits.ravel().tolist(), "boxes": boxes.ravel().tolist(), "dets": dets})
print(json.dumps(cases))
"#;

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn size(v: &Value) -> (u32, u32) {
    (v[0].as_u64().unwrap() as u32, v[1].as_u64().unwrap() as u32)
}

#[test]
fn detections_match_transformers_and_the_evaluator_rule() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let cases: Vec<Value> =
        serde_json::from_str(&support::run_oracle_code(&python, ORACLE)).unwrap();
    let (mut compared, mut kinds) = (0, [0, 0]);
    for case in &cases {
        let (logits, boxes, wh) = (
            f32s(&case["logits"]),
            f32s(&case["boxes"]),
            size(&case["size"]),
        );
        if case["kind"] == "transformers" {
            kinds[0] += 1;
            let q = case["queries"].as_u64().unwrap() as usize;
            let thr = case["threshold"].as_f64().unwrap() as f32;
            let got = detections(&logits, &boxes, q, wh, thr).unwrap();
            let want = case["scores"].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{wh:?}");
            for (i, d) in got.iter().enumerate() {
                assert!((d.score as f64 - want[i].as_f64().unwrap()).abs() < 1e-6);
                assert_eq!(d.label as u64, case["labels"][i].as_u64().unwrap());
                // support::iou takes [x, y, w, h].
                let xywh = |v: &[f64]| vec![v[0], v[1], v[2] - v[0], v[3] - v[1]];
                let b = xywh(&d.xyxy.iter().map(|&v| v as f64).collect::<Vec<_>>());
                let r = xywh(
                    &f32s(&case["xyxy"][i])
                        .iter()
                        .map(|&v| v as f64)
                        .collect::<Vec<_>>(),
                );
                assert!(support::iou(&b, &r) > 0.999, "{b:?} vs {r:?}");
                compared += 1;
            }
        } else {
            kinds[1] += 1;
            let (t, c) = (
                case["templates"].as_u64().unwrap() as usize,
                case["classes"].as_u64().unwrap() as usize,
            );
            let mean = ensemble_logits(&logits, t, c).unwrap();
            let got = evaluator_top_k(&mean, &boxes, c, wh, case["k"].as_u64().unwrap() as usize)
                .unwrap();
            let want = case["dets"].as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (d, r) in got.iter().zip(want) {
                assert_eq!(d.class as u64, r["class"].as_u64().unwrap());
                assert!((d.score as f64 - r["score"].as_f64().unwrap()).abs() < 1e-6);
                for j in 0..4 {
                    assert!(
                        (d.bbox[j] - r["bbox"][j].as_f64().unwrap()).abs() < 1e-3,
                        "{d:?} vs {r}"
                    );
                }
                compared += 1;
            }
        }
    }
    assert_eq!(kinds, [3, 3]);
    assert!(compared > 50, "{compared}");
}

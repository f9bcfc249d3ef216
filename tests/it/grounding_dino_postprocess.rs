//! `postprocess::grounding_dino` against the exporter's Python (`grounding_dino_export/
//! postprocess.py` `detect_chunked`: mmdetection's mean of token sigmoids, top k of all (query,
//! class) pairs, boxes scaled, clamped and rescaled, chunks concatenated with offset labels),
//! run by the PyTorch oracle interpreter (`ODINW_TORCH_PYTHON`) on seeded random outputs: -inf
//! logits past the caption, boxes crossing the image border, a class without tokens, top k
//! that cuts and one that keeps everything, one and three chunks. Same detections in the same
//! order: label equal, score within 1e-9, box within 1e-6 px.
use crate::support;
use support::rng::SplitMix;

use odinw::postprocess::grounding_dino::{top_k, GdinoImageOutputs};
use serde_json::{json, Value};

const Q: usize = 30;
const T: usize = 40;

struct Chunk {
    logits: Vec<f32>,
    boxes: Vec<f32>,
    tokens: Vec<Vec<usize>>,
}

fn chunk(rng: &mut SplitMix, classes: usize) -> Chunk {
    let used = 12;
    let logits = (0..Q * T)
        .map(|i| {
            if i % T >= used {
                f32::NEG_INFINITY
            } else {
                rng.range(-6.0, 3.0) as f32
            }
        })
        .collect();
    let boxes = (0..Q * 4)
        .map(|i| {
            if i % 4 < 2 {
                rng.range(-0.1, 1.1) as f32
            } else {
                rng.range(0.01, 0.8) as f32
            }
        })
        .collect();
    let tokens = (0..classes)
        .map(|c| {
            if c == 1 {
                Vec::new()
            } else {
                let start = 1 + rng.below(used as u64 - 3) as usize;
                (start..start + 1 + rng.below(3) as usize).collect()
            }
        })
        .collect();
    Chunk {
        logits,
        boxes,
        tokens,
    }
}

#[test]
fn detections_match_the_exporters_python() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let mut rng = SplitMix(15);
    // (classes per chunk, top k, resized (w, h), original (w, h))
    let cases = [
        (vec![4], 300, (160, 96), (500, 300)),
        (vec![4], 17, (96, 160), (300, 500)),
        (vec![3, 3, 2], 25, (144, 96), (150, 100)),
    ];
    let dir = support::scratch();
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for (n, (sizes, k, resized, original)) in cases.iter().enumerate() {
        let chunks: Vec<Chunk> = sizes.iter().map(|&c| chunk(&mut rng, c)).collect();
        let mut per_chunk = Vec::new();
        let mut mine = Vec::new();
        let mut offset = 0;
        for (i, c) in chunks.iter().enumerate() {
            let f = |what: &str| dir.path().join(format!("c{n}_{i}.{what}"));
            let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            std::fs::write(f("logits"), bytes(&c.logits)).unwrap();
            std::fs::write(f("boxes"), bytes(&c.boxes)).unwrap();
            per_chunk.push(json!({"logits": f("logits"), "boxes": f("boxes"), "tokens": c.tokens}));
            let out = GdinoImageOutputs {
                logits: &c.logits,
                boxes: &c.boxes,
                text_len: T,
            };
            for d in top_k(&out, &c.tokens, *resized, *original, *k).unwrap() {
                let b = d.bbox;
                mine.push((
                    d.score,
                    offset + d.class,
                    [b[0], b[1], b[0] + b[2], b[1] + b[3]],
                ));
            }
            offset += c.tokens.len();
        }
        ours.push(mine);
        jobs.push(json!({"chunks": per_chunk, "k": k,
                         "resized_hw": [resized.1, resized.0], "orig_hw": [original.1, original.0]}));
    }
    let job_file = dir.path().join("jobs.json");
    std::fs::write(&job_file, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let code = format!(
        r#"
import json, sys
sys.path.insert(0, {scripts:?})
import numpy as np
from grounding_dino_export import postprocess
out = []
for job in json.load(open({jobs:?})):
    per = [(np.fromfile(c["logits"], dtype="<f4").reshape({Q}, {T}),
            np.fromfile(c["boxes"], dtype="<f4").reshape({Q}, 4), c["tokens"]) for c in job["chunks"]]
    s, l, b = postprocess.detect_chunked(per, job["resized_hw"], job["orig_hw"], job["k"])
    out.append([[float(x), int(y), [float(v) for v in z]] for x, y, z in zip(s, l, b)])
print(json.dumps(out))
"#,
        scripts = support::repo("scripts").to_str().unwrap(),
        jobs = job_file.to_str().unwrap(),
    );
    let want: Value = serde_json::from_str(
        support::run_oracle_code(&python, &code)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    for (n, (mine, theirs)) in ours.iter().zip(want.as_array().unwrap()).enumerate() {
        let theirs = theirs.as_array().unwrap();
        assert_eq!(mine.len(), theirs.len(), "case {n}: detection count");
        for (i, ((score, label, xyxy), t)) in mine.iter().zip(theirs).enumerate() {
            assert_eq!(
                *label as u64,
                t[1].as_u64().unwrap(),
                "case {n} #{i}: label"
            );
            assert!(
                (score - t[0].as_f64().unwrap()).abs() < 1e-9,
                "case {n} #{i}: score"
            );
            for (a, b) in xyxy.iter().zip(t[2].as_array().unwrap()) {
                assert!(
                    (a - b.as_f64().unwrap()).abs() < 1e-6,
                    "case {n} #{i}: box {xyxy:?} vs {t}"
                );
            }
        }
    }
}

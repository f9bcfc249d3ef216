//! The training batch canvas (`odinw::train::augment::batch_canvas`) against GLIP's own code in
//! PyTorch (`tests/oracles/glip_batch_canvas.py`: `Resize.get_size` and
//! `to_image_list(size_divisible=32)` as maskrcnn_benchmark writes them), on generated batches
//! of mixed sizes and orientations at every training scale, for the demo model and an
//! 800/1333 (GLIP-T) one; and the anchor count of each canvas the trainer's grid has.
use crate::support;

use odinw::model::spec::ModelSpec;
use odinw::splits::rng::PyRandom;
use odinw::train::augment::{batch_canvas, plan, resized_size, train_scales, AugmentPlan};
use odinw::train::targets::anchor_grid;
use std::path::Path;

fn demo_spec() -> ModelSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo/model.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// GLIP-T's resize rule (800, max 1333) with the demo's dynamic canvas.
fn glip_t_spec() -> ModelSpec {
    let mut spec = demo_spec();
    spec.preprocess.resize.min_size = 800;
    spec.preprocess.resize.max_size = 1333;
    spec
}

struct Case {
    images: Vec<(u32, u32)>,
    plans: Vec<AugmentPlan>,
}

fn cases(spec: &ModelSpec, seed: u64, n: usize) -> Vec<Case> {
    let scales = train_scales(spec.preprocess.resize.min_size);
    let mut rng = PyRandom::new(&seed.into());
    let big = spec.preprocess.resize.max_size as u64 * 2;
    (0..n)
        .map(|i| {
            let b = 1 + i % 4;
            let images: Vec<(u32, u32)> = (0..b)
                .map(|_| {
                    let w = 16 + rng.randbelow(big) as u32;
                    let h = 16 + rng.randbelow(big) as u32;
                    (w, h)
                })
                .collect();
            let plans = (0..b).map(|_| plan(&mut rng, &scales)).collect();
            Case { images, plans }
        })
        .collect()
}

#[test]
fn batch_canvas_is_glips_to_image_list() {
    let Some(python) = support::torch_python() else {
        return;
    };
    for (spec, seed) in [(demo_spec(), 1u64), (glip_t_spec(), 2)] {
        assert!(spec.dynamic_canvas());
        let cases = cases(&spec, seed, 300);
        let strides: Vec<u32> = spec.anchors.levels.iter().map(|l| l.stride).collect();
        let json: Vec<serde_json::Value> = cases
            .iter()
            .map(|c| {
                serde_json::json!({
                    "images": c.images,
                    "min_sizes": c.plans.iter().map(|p| p.min_size).collect::<Vec<_>>(),
                    "max_size": spec.preprocess.resize.max_size,
                    "size_divisible": spec.preprocess.size_divisibility,
                    "strides": strides,
                })
            })
            .collect();
        let dir = support::scratch();
        let path = dir.path().join("cases.json");
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        let out = support::run_oracle(&python, "glip_batch_canvas.py", &[path.to_str().unwrap()]);
        let expected: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(expected.len(), cases.len());
        let mut canvases = std::collections::BTreeSet::new();
        for (c, e) in cases.iter().zip(&expected) {
            let sizes: Vec<(u32, u32)> = c
                .images
                .iter()
                .zip(&c.plans)
                .map(|(&(w, h), p)| resized_size(w, h, p, &spec.preprocess))
                .collect();
            let want: Vec<(u32, u32)> = e["resized"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[1].as_u64().unwrap() as u32, r[0].as_u64().unwrap() as u32))
                .collect();
            assert_eq!(sizes, want, "resized sizes of {:?}", c.images);
            let canvas = batch_canvas(&spec, &sizes).unwrap();
            let (eh, ew) = (
                e["canvas"][0].as_u64().unwrap() as u32,
                e["canvas"][1].as_u64().unwrap() as u32,
            );
            assert_eq!(canvas, (ew, eh), "canvas of {sizes:?}");
            let (anchors, counts) = anchor_grid(&spec.levels_for(canvas));
            assert_eq!(
                anchors.len() as u64,
                e["anchors"].as_u64().unwrap(),
                "anchors of {canvas:?}"
            );
            assert_eq!(counts.iter().sum::<usize>(), anchors.len());
            canvases.insert(canvas);
        }
        // The generated batches meet many canvases, square and not.
        assert!(canvases.len() > 20, "{} canvases", canvases.len());
        assert!(canvases.iter().any(|(w, h)| w != h));
    }
    assert_eq!(batch_canvas(&demo_spec(), &[]), None);
}

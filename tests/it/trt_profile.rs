//! TensorRT's optimisation profiles (`model::profile`) against the demo model's real graphs: the
//! part of the TensorRT path that can be checked without a GPU. ONNX Runtime's TensorRT provider
//! wants a shape range (`name:AxBxC,...`) for every input with a dynamic axis; a range that names
//! a missing input, has the wrong rank or contradicts a fixed axis, or a head range whose level
//! sizes are not what the backbone gives on that canvas, would make TensorRT refuse the engine or
//! a canvas at run time. Here every graph input is covered, min <= opt <= max, and the backbone
//! and text encoder, run on CPU at each end of their ranges, give exactly the head's ranges,
//! which the head then accepts; with the resize rule set to 224/320 so that the smallest
//! (32x32), optimised-for (224x320) and largest (320x320) canvases all differ.
use crate::support::{self, repo};

use odinw::engine::{Graph, SessionOptions, Tensor, TrtProfile};
use odinw::model::{profile::trt_profiles, ModelSpec};
use std::collections::{BTreeMap, BTreeSet};

type Shapes = BTreeMap<String, Vec<usize>>;

/// ONNX Runtime's `trt_profile_*_shapes` form: `name:AxBxC` entries separated by commas.
fn parse(s: &str) -> Shapes {
    s.split(',')
        .map(|entry| {
            let (name, dims) = entry
                .split_once(':')
                .unwrap_or_else(|| panic!("{entry}: no ':'"));
            let dims = dims
                .split('x')
                .map(|d| d.parse().unwrap_or_else(|_| panic!("{entry}: bad dim {d}")))
                .collect();
            (name.to_string(), dims)
        })
        .collect()
}

fn ends(p: &TrtProfile) -> [Shapes; 3] {
    [parse(&p.min), parse(&p.opt), parse(&p.max)]
}

/// A tensor of `shape` with varied values (ids in the demo vocabulary for int64 inputs).
fn filled(shape: &[usize], int64: bool) -> Tensor {
    let n = shape.iter().product();
    if int64 {
        Tensor::I64 {
            shape: shape.to_vec(),
            data: (0..n).map(|i| 2 + (i % 40) as i64).collect(),
        }
    } else {
        Tensor::F32 {
            shape: shape.to_vec(),
            data: (0..n)
                .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
                .collect(),
        }
    }
}

fn shapes_of(outputs: &[(String, Tensor)]) -> Shapes {
    outputs
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec()))
        .collect()
}

/// Runs `graph` on inputs of the given shapes (or the given tensors) and returns its outputs.
fn run(graph: &mut Graph, shapes: &Shapes, given: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    let specs = graph.input_specs();
    let made: Vec<(String, Tensor)> = specs
        .iter()
        .filter(|(name, _, _)| !given.iter().any(|(n, _)| n == name))
        .map(|(name, int64, _)| (name.clone(), filled(&shapes[name], *int64)))
        .collect();
    let inputs: Vec<(&str, &Tensor)> = made
        .iter()
        .chain(given)
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    graph
        .run(&inputs)
        .unwrap_or_else(|e| panic!("{}: {e:#}", graph.path().display()))
}

#[test]
fn profiles_cover_every_input_and_chain_through_the_demo_graphs() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let mut spec = support::read_json(&repo("models/demo/model.json"));
    spec["preprocess"]["resize"]["min_size"] = 224.into();
    spec["preprocess"]["resize"]["max_size"] = 320.into();
    let spec: ModelSpec = serde_json::from_value(spec).unwrap();
    let profiles = trt_profiles(&spec, 3).expect("the demo model.json gives the head's channels");
    let names = ["image_backbone", "text_encoder", "head"];
    let opts = SessionOptions::default();
    let mut graphs: Vec<Graph> = names
        .iter()
        .map(|g| Graph::open(&repo("models/demo").join(&spec.graphs[*g].file), &opts).unwrap())
        .collect();

    for ((name, graph), profile) in names.iter().zip(&graphs).zip(&profiles) {
        let specs = graph.input_specs();
        let dynamic: BTreeSet<String> = specs
            .iter()
            .filter(|(_, _, shape)| shape.contains(&-1))
            .map(|(n, _, _)| n.clone())
            .collect();
        assert!(!dynamic.is_empty(), "{name}: the demo graphs are dynamic");
        let [lo, opt, hi] = ends(profile);
        for (end, shapes) in [("min", &lo), ("opt", &opt), ("max", &hi)] {
            let named: BTreeSet<String> = shapes.keys().cloned().collect();
            assert_eq!(named, dynamic, "{name} {end}: the inputs the profile names");
            for (input, _, shape) in &specs {
                let dims = &shapes[input];
                assert_eq!(dims.len(), shape.len(), "{name} {end} {input}: rank");
                for (d, s) in dims.iter().zip(shape) {
                    assert!(
                        *s < 0 || *d as i64 == *s,
                        "{name} {end} {input}: {dims:?} vs {shape:?}"
                    );
                    assert!(*d >= 1, "{name} {end} {input}: {dims:?}");
                }
            }
        }
        for input in &dynamic {
            for axis in 0..lo[input].len() {
                let (a, b, c) = (lo[input][axis], opt[input][axis], hi[input][axis]);
                assert!(
                    a <= b && b <= c,
                    "{name} {input} axis {axis}: {a} <= {b} <= {c}"
                );
            }
        }
    }

    let [back_ends, text_ends, head_ends] = [0, 1, 2].map(|g| ends(&profiles[g]));
    let canvases: Vec<Vec<usize>> = back_ends.iter().map(|s| s["images"].clone()).collect();
    assert_eq!(
        canvases,
        [
            vec![1, 3, 32, 32],
            vec![3, 3, 224, 320],
            vec![3, 3, 320, 320]
        ],
        "smallest canvas, min_size x max_size, max_size square (each rounded up to 32)"
    );
    for k in 0..3 {
        let levels = run(&mut graphs[0], &back_ends[k], &[]);
        let text = run(&mut graphs[1], &text_ends[k], &[]);
        let mut want = shapes_of(&levels);
        want.extend(shapes_of(&text));
        want.insert(
            "attention_mask".into(),
            text_ends[k]["attention_mask"].clone(),
        );
        assert_eq!(
            want, head_ends[k],
            "profile end {k}: the head's range is what the backbone and text encoder give"
        );
        // The head runs on exactly those tensors.
        let mut given = levels;
        given.extend(text);
        let out = run(&mut graphs[2], &head_ends[k], &given);
        assert!(out.iter().any(|(n, _)| n == "token_logits"));
    }
}

//! The engine runs a graph exactly as onnxruntime's Python API does: same outputs for the same
//! f32 and int64 inputs, output names in the graph's order, and clear errors for bad input.
use crate::support;

use odinw::engine::{Graph, SessionOptions, Tensor};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn cpu_outputs_match_onnxruntime_python() {
    let Some(python) = support::python_with(&["onnxruntime", "onnx", "numpy"]) else {
        return;
    };
    let dir = support::scratch();
    support::run_oracle(&python, "ort_graph.py", &[dir.path().to_str().unwrap()]);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("expected.json")).unwrap()).unwrap();

    let mut graph =
        Graph::open(&dir.path().join("model.onnx"), &SessionOptions::default()).unwrap();
    assert_eq!(graph.input_names(), ["images", "input_ids"]);
    assert_eq!(graph.output_names(), ["scores", "visual"]);
    let images = Tensor::F32 {
        shape: vec![2, 3, 8, 8],
        data: floats(&expected["images"]),
    };
    let ids = Tensor::I64 {
        shape: vec![2, 5],
        data: expected["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect(),
    };
    let out = graph
        .run(&[("images", &images), ("input_ids", &ids)])
        .unwrap();
    assert_eq!(out[0].0, "scores");
    assert_eq!(out[0].1.shape(), [2, 4]);
    for (name, tensor) in &out {
        let want = floats(&expected[name.as_str()]);
        let got = tensor.as_f32().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{name}: {g} vs {w}"
            );
        }
    }

    let wrong = Tensor::F32 {
        shape: vec![2, 3, 9, 8],
        data: vec![0.0; 2 * 3 * 9 * 8],
    };
    let err = graph
        .run(&[("images", &wrong), ("input_ids", &ids)])
        .unwrap_err();
    assert!(format!("{err:#}").contains("model.onnx"), "{err:#}");
}

#[test]
fn a_missing_graph_is_named() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let err = Graph::open(
        std::path::Path::new("/nonexistent/head.onnx"),
        &SessionOptions::default(),
    )
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("/nonexistent/head.onnx"),
        "{err:#}"
    );
}

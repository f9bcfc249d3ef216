//! Backend 2 (ONNX Runtime's training API) with the stock ONNX Runtime the suite runs on
//! (onnxruntime 1.31.1 from `$ODINW_PYTHON`, like the engine tests): opening the demo model's
//! training artifacts (tests/fixtures/ort_training/demo-linear, built by
//! scripts/make_ort_training_artifacts.py) fails with an error naming the library, its version
//! and the ways out, without a panic; the library stays usable for inference afterwards.
use crate::support;

use odinw::engine::runtime::{self, Device};
use odinw::engine::{Graph, SessionOptions, Tensor};
use odinw::train::ort_training::{Manifest, OrtTrainingBackend};
use std::path::PathBuf;

fn artifacts() -> PathBuf {
    support::repo("tests/fixtures/ort_training/demo-linear")
}

#[test]
fn the_committed_artifacts_describe_the_linear_track() {
    let manifest = Manifest::read(&artifacts()).unwrap();
    assert_eq!(manifest.track, "linear");
    assert!(manifest.contract_version == 2 && manifest.dynamic_canvas());
    assert_eq!(manifest.outputs[0], "loss");
    assert_eq!(manifest.trainable.len(), 9);
    let names: Vec<&str> = manifest.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "f3",
            "f4",
            "f5",
            "f6",
            "f7",
            "text_fused",
            "attention_mask",
            "positive",
            "reg_targets",
            "centerness_targets",
            "token_targets"
        ]
    );
}

#[test]
fn stock_onnx_runtime_has_no_training_api_and_says_what_to_do() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let err = match OrtTrainingBackend::open(&artifacts(), Device::Cpu) {
        Ok(_) => panic!("a stock ONNX Runtime opened training artifacts"),
        Err(e) => format!("{e:#}"),
    };
    let loaded = runtime::ensure_loaded(Device::Cpu).unwrap();
    eprintln!("{err}");
    for needle in [
        loaded.path.display().to_string().as_str(),
        &format!("ONNX Runtime {}", loaded.version),
        "Training is not enabled in this build of ONNX Runtime",
        "--enable_training_apis",
        "ORT_DYLIB_PATH",
        "--backend step-graphs",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }

    // Asking again gives the same answer, and inference on the same library still works.
    let again = OrtTrainingBackend::open(&artifacts(), Device::Cpu)
        .err()
        .unwrap();
    assert_eq!(format!("{again:#}"), err);
    let demo = support::repo("models/demo/text_encoder.onnx");
    let mut graph = Graph::open(&demo, &SessionOptions::default()).unwrap();
    let ids = Tensor::I64 {
        shape: vec![1, 4],
        data: vec![2, 40, 41, 3],
    };
    let mask = Tensor::I64 {
        shape: vec![1, 4],
        data: vec![1; 4],
    };
    let out = graph
        .run(&[("input_ids", &ids), ("attention_mask", &mask)])
        .unwrap();
    assert_eq!(out[0].1.shape(), [1, 4, 64]);
}

//! Backend 2's batches on GLIP's training canvas, with the stock ONNX Runtime the suite runs on:
//! [`OrtInputs`] prepares batches of generated images on a square, a landscape and a portrait
//! canvas for the committed artifacts (tests/fixtures/ort_training/demo-linear, contract v2,
//! dynamic canvas); each batch fits the artifacts' input contract, and the artifacts' own loss
//! graph (loss_graph.onnx, which the training and eval models are generated from) gives on it
//! the loss of the step-graphs backend's linear step graph (models/demo/train/linear_step.onnx,
//! GLIP's loss from the same targets, checked against PyTorch by tests/export) with the same
//! initial parameters. The training session itself needs a training-enabled ONNX Runtime
//! (ort_training_backend_trained).
use crate::support;
use crate::support::images::gradient_noise;

use odinw::engine::runtime::{self, Device};
use odinw::engine::{Graph, SessionOptions, Tensor};
use odinw::model::ModelDir;
use odinw::prompt::{build_caption, CaptionPart, PromptTokenizer};
use odinw::train::augment::AugmentPlan;
use odinw::train::dataset::Sample;
use odinw::train::manifest::{TrainManifest, TrainTrack};
use odinw::train::ort_inputs::OrtInputs;
use odinw::train::params::Params;
use odinw::train::text::TaskText;
use std::path::PathBuf;

fn sample(id: u64, width: u32, height: u32, boxes: Vec<[f64; 4]>) -> Sample {
    let classes = (0..boxes.len()).map(|i| i % 2).collect();
    Sample {
        id,
        file: PathBuf::from(format!("generated-{id}.png")),
        image: gradient_noise(width, height, id, 58),
        boxes,
        classes,
    }
}

fn text(model: &ModelDir) -> TaskText {
    let tokenizer = PromptTokenizer::from_file(&model.tokenizer()).unwrap();
    let parts: Vec<CaptionPart> = ["red circle", "blue square"]
        .iter()
        .enumerate()
        .map(|(i, n)| CaptionPart::plain(i as u64 + 1, n, n))
        .collect();
    let sep = model.spec.text.special_tokens["sep"];
    TaskText::new(
        &build_caption(&parts),
        &tokenizer,
        model.spec.text.max_text_len,
        sep,
    )
    .unwrap()
}

fn scalar(outputs: &[(String, Tensor)], name: &str) -> f32 {
    let t = &outputs.iter().find(|(n, _)| n == name).unwrap().1;
    t.as_f32().unwrap()[0]
}

#[test]
fn batches_on_glip_canvases_fit_the_artifacts_and_give_the_step_graphs_loss() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    runtime::ensure_loaded(Device::Cpu).unwrap();
    let model = ModelDir::open(&support::repo("models/demo")).unwrap();
    let dir = support::repo("tests/fixtures/ort_training/demo-linear");
    let opts = SessionOptions::default();
    let mut inputs = OrtInputs::open(&model, &dir, &opts).unwrap();
    assert!(inputs.dynamic_canvas());
    let text = text(&model);
    inputs.set_text(&text).unwrap();

    let step_manifest = TrainManifest::load(&model, TrainTrack::Linear).unwrap();
    let params = Params::read(
        &step_manifest.path_of(&step_manifest.params_file),
        &step_manifest.params,
    )
    .unwrap()
    .tensors();
    let mut step = Graph::open(&step_manifest.path_of(&step_manifest.step.file), &opts).unwrap();
    let mut loss_graph = Graph::open(&dir.join(&inputs.manifest().loss_graph), &opts).unwrap();

    let boxes = vec![[30.0, 20.0, 90.0, 70.0], [150.0, 60.0, 60.0, 100.0]];
    let landscape = [
        sample(1, 300, 200, boxes.clone()),
        sample(2, 280, 160, boxes.clone()),
    ];
    let portrait = [
        sample(3, 200, 300, boxes.clone()),
        sample(4, 170, 260, boxes.clone()),
    ];
    let mixed = [
        sample(5, 300, 200, boxes.clone()),
        sample(6, 200, 300, boxes),
    ];
    let plan = |min_size, flip| AugmentPlan { min_size, flip };
    let batches = [
        (&mixed, [plan(192, false), plan(173, true)]),
        (&landscape, [plan(154, true), plan(134, false)]),
        (&portrait, [plan(115, false), plan(154, true)]),
    ];
    let mut canvases = Vec::new();
    for (samples, plans) in batches {
        let items: Vec<(&Sample, AugmentPlan)> = samples.iter().zip(plans).collect();
        let batch = inputs.batch(&text, &items).unwrap();
        let (w, h) = batch.canvas;
        assert_eq!((w % 32, h % 32), (0, 0), "{:?}", batch.canvas);
        assert_eq!(batch.canvas, inputs.canvas(&items));
        // The named dims are the canvas's: P3 is an eighth of it, Q its anchor count.
        assert_eq!(batch.dims["f3_height"], h as usize / 8);
        assert_eq!(batch.dims["f3_width"], w as usize / 8);
        let q = batch.dims["anchors"];
        assert_eq!(
            q,
            model
                .spec
                .levels_for(batch.canvas)
                .iter()
                .map(|l| l.height * l.width)
                .sum::<usize>()
        );
        let positives: usize = batch.targets.iter().map(|t| t.num_positive).sum();
        assert!(
            positives >= 4,
            "{positives} positives on {:?}",
            batch.canvas
        );

        let named = batch.named();
        let ours = loss_graph.run(&named).unwrap();
        let mut feed: Vec<(&str, &Tensor)> = params.iter().map(|(n, t)| (n.as_str(), t)).collect();
        feed.extend(named.iter().copied());
        let theirs = step.run(&feed).unwrap();
        let mut worst = 0f32;
        for name in ["loss", "loss_token", "loss_reg", "loss_centerness"] {
            let (a, b) = (scalar(&ours, name), scalar(&theirs, name));
            worst = worst.max((a - b).abs() / b.abs().max(1e-3));
            assert!(a.is_finite() && a > 0.0, "{name} {a}");
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1e-3),
                "{name} on {:?}: loss graph {a}, step graph {b}",
                batch.canvas
            );
        }
        eprintln!(
            "canvas {w}x{h} (WxH): {q} anchors, {positives} positives, loss {}, \
             worst relative difference to the step graph {worst:.1e}",
            scalar(&ours, "loss")
        );
        canvases.push(batch.canvas);
    }
    assert!(canvases.iter().any(|(w, h)| w == h), "{canvases:?}");
    assert!(canvases.iter().any(|(w, h)| w > h), "{canvases:?}");
    assert!(canvases.iter().any(|(w, h)| w < h), "{canvases:?}");

    // A batch of the wrong size is refused with the artifacts' batch size.
    let one: Vec<(&Sample, AugmentPlan)> = vec![(&mixed[0], plan(192, false))];
    let err = inputs.batch(&text, &one).unwrap_err().to_string();
    assert!(err.contains("exactly 2 samples"), "{err}");
}

//! Backend 2's positive path, for a machine with an ONNX Runtime built with
//! `--enable_training_apis`: set `ODINW_ORT_TRAINING_DYLIB` to that library (this test then
//! loads it through `ORT_DYLIB_PATH`, in a process of its own: the other tests' process has
//! loaded the stock library); without it the test skips. On a synthetic batch with
//! positives it checks what the Python tests (tests/ort_training) check against PyTorch, as far
//! as Rust can without an oracle: train and eval losses agree, the learning rate is the
//! manifest's, AdamW steps change only trainable parameters and lower the loss, the checkpoint
//! saves. No published ONNX Runtime has the training API at 1.31, so this has not run yet.
use crate::support;
use odinw::engine::runtime::Device;
use odinw::engine::Tensor;
use odinw::model::ModelDir;
use odinw::train::ort_training::{Dim, InputSpec, OrtTrainingBackend};

/// The inputs' shapes on the demo model's 192x192 canvas (named dims resolved from its grid).
fn shape(spec: &InputSpec) -> Vec<usize> {
    let model = ModelDir::open(&support::repo("models/demo")).unwrap();
    let levels = model.spec.levels_for((192, 192));
    spec.shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n,
            Dim::Named(name) if name == "anchors" => {
                levels.iter().map(|l| l.height * l.width).sum()
            }
            Dim::Named(name) => {
                let (level, side) = name.split_once('_').unwrap();
                let l = &levels[level[1..].parse::<usize>().unwrap() - 3];
                if side == "height" {
                    l.height
                } else {
                    l.width
                }
            }
        })
        .collect()
}

fn batch(backend: &OrtTrainingBackend) -> Vec<(String, Tensor)> {
    let mut lcg = crate::support::rng::Lcg(0x2545_f491);
    let mut uniform = move || ((lcg.next() >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
    backend
        .manifest()
        .inputs
        .iter()
        .map(|spec| {
            let dims = shape(spec);
            let n: usize = dims.iter().product();
            let (q, t) = (dims.get(1).copied().unwrap_or(1), *dims.last().unwrap());
            let data: Vec<f32> = match spec.name.as_str() {
                // Anchors 100..110 of each image are positives of token 1.
                "positive" => (0..n)
                    .map(|i| f32::from(u8::from((100..110).contains(&(i % q)))))
                    .collect(),
                "centerness_targets" => (0..n)
                    .map(|i| {
                        if (100..110).contains(&(i % q)) {
                            0.5
                        } else {
                            0.0
                        }
                    })
                    .collect(),
                "token_targets" => (0..n)
                    .map(|i| f32::from(u8::from((100..110).contains(&(i / t % q)) && i % t == 1)))
                    .collect(),
                "reg_targets" => vec![0.0; n],
                _ => (0..n).map(|_| uniform()).collect(),
            };
            let tensor = if spec.name == "attention_mask" {
                Tensor::I64 {
                    shape: dims.clone(),
                    data: (0..n).map(|i| i64::from(i % t < 8)).collect(),
                }
            } else {
                Tensor::F32 {
                    shape: dims.clone(),
                    data,
                }
            };
            (spec.name.clone(), tensor)
        })
        .collect()
}

#[test]
fn trains_with_a_training_enabled_onnx_runtime() {
    let Some(lib) = std::env::var_os("ODINW_ORT_TRAINING_DYLIB") else {
        eprintln!("skipping: set ODINW_ORT_TRAINING_DYLIB to an ONNX Runtime built with --enable_training_apis");
        return;
    };
    let env = [("ORT_DYLIB_PATH", lib.as_os_str())];
    if !support::alone(
        module_path!(),
        "trains_with_a_training_enabled_onnx_runtime",
        &env,
    ) {
        return;
    }
    let dir = support::repo("tests/fixtures/ort_training/demo-linear");
    let scratch = tempfile::tempdir().unwrap();
    let mut backend = OrtTrainingBackend::open(&dir, Device::Cpu).unwrap();
    let base_lr = backend.manifest().optimizer.base_lr as f32;
    assert_eq!(backend.lr().unwrap(), base_lr);

    let data = batch(&backend);
    let inputs: Vec<(&str, &Tensor)> = data.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let before = backend.trainable_parameters().unwrap();
    let frozen = backend.manifest().frozen[0].name.clone();
    let frozen_before = backend.parameter(&frozen).unwrap();
    let eval = backend.eval_step(&inputs).unwrap();
    let first = backend.train_step(&inputs).unwrap();
    assert!(first.loss.is_finite() && first.loss > 0.0, "{first:?}");
    assert!(
        (first.loss - eval.loss).abs() <= 1e-5 * eval.loss,
        "{first:?} vs {eval:?}"
    );
    assert!((first.token + first.reg + first.centerness - first.loss).abs() <= 1e-5 * first.loss);

    backend.set_lr(1e-2).unwrap();
    let mut last = first.loss;
    backend.optimizer_step().unwrap();
    backend.lazy_reset_grad().unwrap();
    for _ in 0..4 {
        let losses = backend.train_step(&inputs).unwrap();
        backend.optimizer_step().unwrap();
        backend.lazy_reset_grad().unwrap();
        assert!(losses.loss < last, "{} after {last}", losses.loss);
        last = losses.loss;
    }
    for ((name, old), (_, new)) in before.iter().zip(backend.trainable_parameters().unwrap()) {
        assert_eq!(old.shape(), new.shape(), "{name}");
        assert_ne!(old, &new, "{name} did not change");
    }
    assert_eq!(backend.parameter(&frozen).unwrap(), frozen_before);
    let saved = scratch.path().join("checkpoint");
    backend.save_checkpoint(&saved, true).unwrap();
    assert!(saved.exists());
}

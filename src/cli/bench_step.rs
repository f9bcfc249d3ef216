//! `odinw bench-step`: times the training graphs of a model on one device with synthetic inputs
//! of the graphs' shapes (a few positive anchors, real token ids): one step-graph run (forward,
//! GLIP's loss and the gradients) and one AdamW update, either with parameters, gradients and
//! moments in host memory, or (`--io-binding on`, the default on a GPU) kept in the device's
//! memory and updated by the optimizer graphs as `odinw finetune` does. For `benchmarks/` and
//! the GPU notes, not for training. For the cached tracks (`prompt`, `linear`) it also times the
//! frozen front a step would need without odinw's feature cache (text encoder, image backbone,
//! and the DyHead tower for `linear`, on a batch of images: what GLIP recomputes every step)
//! and reports the ratio.
use crate::engine::runtime::{self, Device};
use crate::engine::{Graph, IoBinding, SessionOptions, Tensor};
use crate::model::ModelDir;
use crate::prompt::{build_caption, CaptionPart, PromptTokenizer};
use crate::train::graphs::{bound_inputs, take_output, TrackGraphs};
use crate::train::manifest::{TrainManifest, TrainTrack};
use crate::train::on_device::OnDevice;
use crate::train::optimizer::{AdamW, ParamGroup};
use crate::train::params::Params;
use crate::train::text::TaskText;
use anyhow::{anyhow, bail, Result};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// A model directory with training graphs (`train/`), or `demo`.
    #[arg(long, default_value = "demo")]
    model: String,
    #[arg(long, value_enum, default_value = "prompt")]
    track: TrainTrack,
    #[arg(long, value_enum, default_value = "cpu")]
    device: Device,
    /// Timed steps (after the warm-up ones).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Keep parameters, gradients and moments in the device's memory (auto: on for GPUs).
    #[arg(long, value_enum, default_value = "auto")]
    io_binding: IoBinding,
}

/// A deterministic pseudo-random value in [-0.5, 0.5) (no RNG state needed).
fn noise(i: usize) -> f32 {
    let x = (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17);
    (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
}

pub fn run(args: Args) -> Result<ExitCode> {
    let model = ModelDir::resolve(&args.model)?;
    let manifest = TrainManifest::load(&model, args.track)?;
    let params = Params::read(&manifest.path_of(&manifest.params_file), &manifest.params)?;
    let opts = SessionOptions {
        device: args.device,
        threads: args.threads,
        io_binding: args.io_binding,
        ..SessionOptions::default()
    };
    let bound = args.io_binding.enabled(args.device);
    let loaded = runtime::ensure_loaded(args.device)?;
    let t_load = Instant::now();
    let mut step = Graph::open(&manifest.path_of(&manifest.step.file), &opts)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let names: Vec<String> = params.specs.iter().map(|s| s.name.clone()).collect();
    let t = manifest.max_text_len;
    let text = bench_text(&model)?;
    let mut inputs: Vec<(String, Tensor)> = params.tensors();
    for (name, is_int, shape) in step.input_specs() {
        if names.contains(&name) {
            continue;
        }
        let dims = at_model_canvas(&model, &manifest, &name, &shape)?;
        let n: usize = dims.iter().product();
        let tensor = if is_int {
            // The real caption's ids (or mask), one row per batch item.
            let row = match name.as_str() {
                "attention_mask" => &text.attention_mask,
                _ => &text.input_ids,
            };
            let Tensor::I64 { data: row, .. } = row else {
                bail!("token ids are not int64");
            };
            if row.len() != t {
                bail!("the caption has {} token slots, the graphs {t}", row.len());
            }
            let data = (0..n).map(|i| row[i % t]).collect();
            Tensor::I64 { shape: dims, data }
        } else {
            let data = match name.as_str() {
                // Every 50th anchor positive, with plausible targets.
                "positive" => (0..n).map(|i| (i % 50 == 0) as u8 as f32).collect(),
                "centerness_targets" => (0..n)
                    .map(|i| if i % 50 == 0 { 0.6 } else { 0.0 })
                    .collect(),
                "token_targets" => (0..n)
                    .map(|i| ((i / t) % 50 == 0 && i % t == 2) as u8 as f32)
                    .collect(),
                "reg_targets" => (0..n)
                    .map(|i| if (i / 4) % 50 == 0 { noise(i) } else { 0.0 })
                    .collect(),
                _ => (0..n).map(noise).collect(),
            };
            Tensor::F32 { shape: dims, data }
        };
        inputs.push((name, tensor));
    }
    let groups: Vec<ParamGroup> = manifest
        .params
        .iter()
        .map(|p| ParamGroup {
            name: p.name.clone(),
            lr: p.lr,
            weight_decay: p.weight_decay,
        })
        .collect();
    let o = &manifest.optimizer;
    let mut adamw = AdamW::new(groups, (o.betas[0], o.betas[1]), o.eps);
    let mut on_device = if bound {
        Some(OnDevice::upload(&opts, &params, &adamw)?)
    } else {
        None
    };
    let mut values = params.values.clone();
    let mut step_ms = Vec::new();
    let mut adam_ms = Vec::new();
    let mut loss = f32::NAN;
    // The parameters lead `inputs` (in manifest order); the batch's data follow.
    let data = inputs.split_off(names.len());
    let mut param_inputs = inputs;
    for i in 0..args.warmup + args.steps {
        let t0 = Instant::now();
        let (dt, da) = if let Some(state) = on_device.as_mut() {
            let bound_inputs = bound_inputs(&manifest, state.params(), &data)?;
            let mut out = step.run_on_device(&bound_inputs)?;
            loss = take_output(&mut out, "loss")?.to_host()?.as_f32()?[0];
            let grads = names
                .iter()
                .map(|n| take_output(&mut out, &TrainManifest::grad_name(n)))
                .collect::<Result<Vec<_>>>()?;
            let dt = t0.elapsed().as_secs_f64() * 1e3;
            let t1 = Instant::now();
            state.step(&mut adamw, &grads, o.clip_grad_norm)?;
            (dt, t1.elapsed().as_secs_f64() * 1e3)
        } else {
            // As the trainer does: this step's parameter values go in.
            for ((_, slot), v) in param_inputs.iter_mut().zip(&values) {
                if let Tensor::F32 { data, .. } = slot {
                    data.clone_from(v);
                }
            }
            let refs: Vec<(&str, &Tensor)> = param_inputs
                .iter()
                .chain(&data)
                .map(|(n, t)| (n.as_str(), t))
                .collect();
            let mut out = step.run(&refs)?;
            let dt = t0.elapsed().as_secs_f64() * 1e3;
            loss = take_output(&mut out, "loss")?.as_f32()?[0];
            let mut grads: Vec<Vec<f32>> = names
                .iter()
                .map(|n| {
                    let g = take_output(&mut out, &TrainManifest::grad_name(n))?;
                    Ok(g.as_f32()?.to_vec())
                })
                .collect::<Result<_>>()?;
            let t1 = Instant::now();
            adamw.try_step(&mut values, &mut grads, o.clip_grad_norm)?;
            (dt, t1.elapsed().as_secs_f64() * 1e3)
        };
        if i >= args.warmup {
            step_ms.push(dt);
            adam_ms.push(da);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let mut front_ms = if args.track == TrainTrack::Full {
        Vec::new()
    } else {
        time_frozen_front(&model, &manifest, &text, &opts, args.warmup, args.steps)?
    };
    let front = median(&mut front_ms);
    let (step, adam) = (median(&mut step_ms), median(&mut adam_ms));
    let doc = serde_json::json!({
        "model": model.dir.display().to_string(),
        "track": args.track.name(),
        "device": format!("{:?}", args.device).to_lowercase(),
        "io_binding": bound,
        "ort_version": loaded.version,
        "batch": manifest.batch,
        "image_size": manifest.image_size,
        "trainable_values": params.numel(),
        "session_load_s": load_s,
        "step_ms_median": step,
        "adamw_ms_median": adam,
        // Cached tracks only: the frozen front of one batch, and how many times longer a step
        // would take if it recomputed that front (as GLIP does).
        "frozen_front_ms_median": (!front.is_nan()).then_some(front),
        "uncached_over_cached": (!front.is_nan()).then(|| (front + step + adam) / (step + adam)),
        "steps": args.steps,
        "loss": loss,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}

/// The shape of a step graph input at the model's own canvas (`image_size`): a dynamic-canvas
/// graph's level maps (`p3`..`p7`, `f3`..`f7`) take that canvas's grid of their level, its
/// `images` the canvas, its targets the canvas's anchor count.
fn at_model_canvas(
    model: &ModelDir,
    manifest: &TrainManifest,
    name: &str,
    shape: &[i64],
) -> Result<Vec<usize>> {
    let [h, w] = manifest.image_size;
    let levels = model.spec.levels_for((w as u32, h as u32));
    let level = name
        .strip_prefix(['p', 'f'])
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| n.checked_sub(3))
        .and_then(|i| levels.get(i));
    shape
        .iter()
        .enumerate()
        .map(|(axis, &d)| {
            Ok(match (axis, level) {
                _ if d >= 0 => d as usize,
                (2, Some(l)) => l.height,
                (3, Some(l)) => l.width,
                (2, None) if name == "images" => h,
                (3, None) if name == "images" => w,
                (1, None) => manifest.num_anchors,
                _ => bail!("step graph input {name} has a dynamic dimension {axis} ({shape:?})"),
            })
        })
        .collect()
}

/// Times the cached tracks' frozen front per step with the trainer's own code
/// ([`TrackGraphs::set_text`] and [`TrackGraphs::sample_inputs`] on `batch` noise images).
fn time_frozen_front(
    model: &ModelDir,
    manifest: &TrainManifest,
    text: &TaskText,
    opts: &SessionOptions,
    warmup: usize,
    steps: usize,
) -> Result<Vec<f64>> {
    let mut graphs = TrackGraphs::open(model, manifest.clone(), opts)?;
    let spec = &model.spec;
    let [h, w] = spec.preprocess.input_size;
    let canvases: Vec<Tensor> = (0..manifest.batch)
        .map(|b| Tensor::F32 {
            shape: vec![1, 3, h as usize, w as usize],
            data: (0..3 * (h * w) as usize).map(|i| noise(i + b)).collect(),
        })
        .collect();
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        graphs.set_text(text)?;
        std::hint::black_box(graphs.sample_inputs(&canvases, text)?);
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(times)
}

/// A four-class caption ("person. car. traffic light. dog") as the model tokenizes it.
fn bench_text(model: &ModelDir) -> Result<TaskText> {
    let tokenizer = PromptTokenizer::from_file(&model.tokenizer())?;
    let spec = &model.spec;
    let sep = *spec
        .text
        .special_tokens
        .get("sep")
        .ok_or_else(|| anyhow!("model.json text.special_tokens has no sep"))?;
    let names = ["person", "car", "traffic light", "dog"];
    let parts: Vec<CaptionPart> = names
        .iter()
        .enumerate()
        .map(|(i, n)| CaptionPart::plain(i as u64 + 1, n, n))
        .collect();
    TaskText::new(
        &build_caption(&parts),
        &tokenizer,
        spec.text.max_text_len,
        sep,
    )
}

//! `odinw finetune` end to end on the bundled demo suite with the embedded tiny model: a short
//! prompt-tuning run writes the run store (per seed), its checkpoints resume after a kill -9 with
//! the same history as an uninterrupted run, the few-shot submission is keyed by seed, and bad
//! input gives a clear error. The long run that must beat zero-shot is in the README / note
//! (`odinw finetune --model demo --track prompt --shots 3 --seeds 3,30,300 --suite demo`).
use crate::support;
use crate::support::{ok, read_json};

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{odinw, run_odinw, scratch};

fn finetune_args<'a>(
    out: &'a str,
    track: &'a str,
    epochs: &'a str,
    seeds: &'a str,
) -> Vec<&'a str> {
    vec![
        "finetune",
        "--model",
        "demo",
        "--suite",
        "demo",
        "--tasks",
        "NovelShapes",
        "--track",
        track,
        "--shots",
        "3",
        "--seeds",
        seeds,
        "--max-epochs",
        epochs,
        "--out",
        out,
    ]
}

fn history(run: &Path, seed: u64) -> Vec<Value> {
    let state = read_json(&run.join(format!("NovelShapes/seed{seed}/train/state.json")));
    state["history"].as_array().unwrap().clone()
}

#[test]
fn prompt_tuning_writes_a_few_shot_run_per_seed_and_a_seed_keyed_submission() {
    let dir = scratch();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    ok(run_odinw(&finetune_args(run_s, "prompt", "2", "3,30")));
    for seed in [3u64, 30] {
        let unit = run.join(format!("NovelShapes/seed{seed}"));
        let m = read_json(&unit.join("metrics.json"));
        let stats = m["stats"].as_array().unwrap();
        assert_eq!(stats.len(), 12);
        assert!(stats[0].as_f64().unwrap() >= 0.0);
        assert_eq!(m["finetune"]["seed"], seed);
        assert_eq!(m["finetune"]["shots"], 3);
        assert_eq!(m["finetune"]["track"], "prompt");
        let h = history(&run, seed);
        assert_eq!(h.len(), 2, "two epochs");
        for e in &h {
            assert!(e["loss"].as_f64().unwrap().is_finite());
            assert!(e["steps"].as_u64().unwrap() > 0);
        }
        // The best trained epoch by val AP is kept (GLIP's rule: never the untouched model,
        // whatever its val AP; an epoch not worse than the best so far replaces it), and
        // metrics.json says which.
        let ft = &m["finetune"];
        let val: Vec<f64> = h.iter().map(|e| e["val_ap"].as_f64().unwrap()).collect();
        let best = if val[1] >= val[0] { 2 } else { 1 };
        assert_eq!(ft["best_epoch"], best, "{ft} / {val:?}");
        assert_eq!(ft["best_val_ap"].as_f64(), Some(val[best - 1]), "{ft}");
        assert!(ft["initial_val_ap"].as_f64().unwrap() >= 0.0, "{ft}");
        // The generated k-shot files are kept in the unit, with GLIP's sampler's marker.
        assert!(unit
            .join(format!("train/train_shot3_seed{seed}.json"))
            .is_file());
        assert!(unit.join("predictions.json").is_file());
    }
    let manifest = read_json(&run.join("manifest.json"));
    assert_eq!(manifest["track"], "few-shot");
    assert_eq!(manifest["shots"], 3);
    // Re-running skips finished units.
    let again = ok(run_odinw(&finetune_args(run_s, "prompt", "2", "3,30")));
    assert!(String::from_utf8_lossy(&again.stderr).contains("done earlier"));

    let sub = dir.path().join("sub.json");
    ok(run_odinw(&[
        "submit",
        run_s,
        "--out",
        sub.to_str().unwrap(),
    ]));
    let doc = read_json(&sub);
    let text = doc.to_string();
    assert!(text.contains("\"3\"") && text.contains("\"30\""), "{text}");
}

#[test]
fn an_interrupted_run_resumes_with_the_same_history() {
    let dir = scratch();
    // Uninterrupted reference.
    let full = dir.path().join("full");
    ok(run_odinw(&finetune_args(
        full.to_str().unwrap(),
        "prompt",
        "3",
        "3",
    )));
    let reference = history(&full, 3);

    // Killed once the first epoch's checkpoint is on disk, then resumed; this run keeps its
    // parameters and optimizer state "on the device" (I/O binding on CPU), so resuming also
    // reloads them there from the checkpoint.
    let cut = dir.path().join("cut");
    let cut_s = cut.to_str().unwrap();
    let mut cut_args = finetune_args(cut_s, "prompt", "3", "3");
    cut_args.extend(["--io-binding", "on"]);
    let mut child = odinw()
        .args(&cut_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = cut.join("NovelShapes/seed3/train/state.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !state.is_file() && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let before = history(&cut, 3).len();
    assert!(before >= 1);
    let out = ok(run_odinw(&cut_args));
    let resumed = history(&cut, 3);
    assert_eq!(resumed.len(), reference.len());
    let log = std::fs::read_to_string(cut.join("NovelShapes/seed3/log.txt")).unwrap();
    if before < 3 {
        assert!(
            log.contains(&format!("resumed after epoch {before}")),
            "{log}\n{:?}",
            out
        );
    }
    for (a, b) in resumed.iter().zip(&reference) {
        for key in ["loss", "val_ap", "grad_norm"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                "epoch {}: {key} {x} after resuming vs {y} uninterrupted",
                a["epoch"]
            );
        }
    }
    let m1 = read_json(&full.join("NovelShapes/seed3/metrics.json"));
    let m2 = read_json(&cut.join("NovelShapes/seed3/metrics.json"));
    let (a, b) = (
        m1["stats"][0].as_f64().unwrap(),
        m2["stats"][0].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "test AP {a} vs {b}");
}

#[test]
fn linear_and_full_tracks_run_one_epoch() {
    let dir = scratch();
    for track in ["linear", "full"] {
        let run = dir.path().join(track);
        ok(run_odinw(&finetune_args(
            run.to_str().unwrap(),
            track,
            "1",
            "3",
        )));
        let h = history(&run, 3);
        assert_eq!(h.len(), 1);
        assert!(h[0]["loss"].as_f64().unwrap().is_finite());
        // The committed graphs of every track take any canvas (v2).
        let log = std::fs::read_to_string(run.join("NovelShapes/seed3/log.txt")).unwrap();
        assert!(log.contains("canvas: GLIP's"), "{track}: {log}");
    }
}

/// Training graphs of contract v1 (one size, no `canvas` entry) still train, on the model's
/// fixed canvas: the demo's linear manifest rewritten as v1 (its graphs take that size too).
#[test]
fn fixed_canvas_training_graphs_train_on_the_model_size() {
    let dir = scratch();
    let model = dir.path().join("model");
    let demo = odinw_demo_model();
    copy_files(&demo, &model);
    copy_files(&demo.join("train"), &model.join("train"));
    let manifest = model.join("train/linear.json");
    let mut v1: Value = read_json(&manifest);
    v1["contract_version"] = 1.into();
    v1.as_object_mut().unwrap().remove("canvas");
    std::fs::write(&manifest, serde_json::to_vec_pretty(&v1).unwrap()).unwrap();
    let run = dir.path().join("run");
    let mut args = finetune_args(run.to_str().unwrap(), "linear", "1", "3");
    args[2] = model.to_str().unwrap();
    ok(run_odinw(&args));
    assert_eq!(history(&run, 3).len(), 1);
    let log = std::fs::read_to_string(run.join("NovelShapes/seed3/log.txt")).unwrap();
    assert!(log.contains("canvas: fixed 192x192"), "{log}");
}

/// With `--io-binding on`, parameters and AdamW moments live in the execution provider's memory
/// and the optimizer graphs (models/optim/) update them; on CPU that path must train exactly
/// like the host optimizer (the same losses, gradient norms, val AP, parameters and moments).
#[test]
fn parameters_kept_on_the_device_train_like_host_parameters() {
    let dir = scratch();
    for (track, epochs) in [("prompt", "2"), ("full", "1")] {
        let runs: Vec<_> = ["off", "on"]
            .iter()
            .map(|binding| {
                let run = dir.path().join(format!("{track}-{binding}"));
                let mut args = finetune_args(run.to_str().unwrap(), track, epochs, "3");
                args.extend(["--io-binding", binding]);
                ok(run_odinw(&args));
                run
            })
            .collect();
        let (host, bound) = (history(&runs[0], 3), history(&runs[1], 3));
        assert_eq!(host.len(), bound.len());
        for (a, b) in host.iter().zip(&bound) {
            for key in ["loss", "loss_token", "grad_norm", "val_ap"] {
                let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                    "{track} epoch {}: {key} {x} on the host vs {y} on the device",
                    a["epoch"]
                );
            }
        }
        for file in ["params.bin", "optimizer.bin"] {
            let read =
                |run: &Path| std::fs::read(run.join("NovelShapes/seed3/train").join(file)).unwrap();
            let (x, y) = (read(&runs[0]), read(&runs[1]));
            assert_eq!(x.len(), y.len(), "{track} {file}");
            // optimizer.bin: "odinw-adamw\n", a u64 header length, the JSON header, then f32s.
            let start = if file == "optimizer.bin" {
                let len = u64::from_le_bytes(x[12..20].try_into().unwrap()) as usize;
                assert_eq!(x[..20 + len], y[..20 + len], "{track}: optimizer headers");
                20 + len
            } else {
                0
            };
            let floats = |b: &[u8]| -> Vec<f32> {
                b[start..]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            let worst = floats(&x)
                .iter()
                .zip(floats(&y))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-6,
                "{track} {file}: values differ by up to {worst}"
            );
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = scratch();
    let out = run_odinw(&[
        "finetune",
        "--model",
        "demo",
        "--suite",
        "demo",
        "--tasks",
        "NoSuchTask",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NoSuchTask"));

    // A model directory without training graphs names the missing file and the script.
    let model = dir.path().join("model");
    let demo = odinw_demo_model();
    copy_files(&demo, &model);
    let err = finetune_error(&model, &dir.path().join("r"));
    assert!(
        err.contains("export_train_step.py") && err.contains("prompt.json"),
        "{err}"
    );

    // A damaged parameter file is refused with its size.
    let train = model.join("train");
    copy_files(&demo.join("train"), &train);
    let bin = train.join("prompt_params.bin");
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes[..bytes.len() - 4]).unwrap();
    let err = finetune_error(&model, &dir.path().join("r2"));
    assert!(
        err.contains("prompt_params.bin") && err.contains("bytes"),
        "{err}"
    );
}

/// Copies the files (not the folders) of `from` into `to`.
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// What `odinw finetune` with `model` says on stderr when it fails (it must).
fn finetune_error(model: &Path, out: &Path) -> String {
    let out = run_odinw(&[
        "finetune",
        "--model",
        model.to_str().unwrap(),
        "--suite",
        "demo",
        "--tasks",
        "NovelShapes",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The source tree's demo model (what the binary embeds).
fn odinw_demo_model() -> std::path::PathBuf {
    support::repo("models/demo")
}

/// `odinw bench-step` runs every track of the demo model, and its host and device paths take
/// the same steps (the same loss after the same updates).
#[test]
fn bench_step_runs_every_track_and_both_paths_agree() {
    for track in ["prompt", "linear", "full"] {
        let loss = |binding: &str| {
            let out = ok(run_odinw(&[
                "bench-step",
                "--model",
                "demo",
                "--track",
                track,
                "--steps",
                "2",
                "--warmup",
                "1",
                "--io-binding",
                binding,
            ]));
            let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
            if track != "full" {
                assert!(doc["uncached_over_cached"].as_f64().unwrap() > 1.0, "{doc}");
            }
            doc["loss"].as_f64().unwrap()
        };
        let (host, device) = (loss("off"), loss("on"));
        assert!(host.is_finite(), "{track}: loss {host}");
        assert!(
            (host - device).abs() <= 1e-5 * host.abs(),
            "{track}: loss {host} on the host vs {device} on the device"
        );
    }
}

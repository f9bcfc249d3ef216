//! AdamW with gradient clipping (`odinw::train::optimizer`) against `torch.optim.AdamW` +
//! `clip_grad_norm_`, and GLIP's plateau schedule (`odinw::train::schedule`) against
//! `torch.optim.lr_scheduler.ReduceLROnPlateau`, both through `ODINW_TORCH_PYTHON` (a Python
//! with torch; skipped when unset).
use crate::support;
// splitmix64, as tests/oracles/adamw_torch.py computes it.
use crate::support::rng::splitmix64;

use odinw::splits::rng::PyRandom;
use odinw::train::optimizer::{AdamW, ParamGroup};
use odinw::train::schedule::{PlateauConfig, WarmupReduceLROnPlateau};
use serde_json::json;

/// Values in [-0.5, 0.5) for (step, tensor): the same numbers the oracle generates.
fn values(step: u64, tensor: u64, n: usize) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = splitmix64(((step * 16 + tensor) << 32) + i);
            (h >> 40) as f32 * (1.0 / 16_777_216.0) - 0.5
        })
        .collect()
}

#[test]
fn adamw_matches_torch() {
    let Some(python) = support::torch_python() else {
        return;
    };
    // Names as GLIP's groups would have them: weights, biases (lr x 2, no decay), a scalar, a
    // tensor large enough to be updated in parallel chunks.
    let groups = vec![
        ParamGroup {
            name: "rpn.head.bbox_pred.weight".into(),
            lr: 1e-4,
            weight_decay: 0.05,
        },
        ParamGroup {
            name: "rpn.head.bbox_pred.bias".into(),
            lr: 2e-4,
            weight_decay: 0.0,
        },
        ParamGroup {
            name: "rpn.head.log_scale".into(),
            lr: 2e-4,
            weight_decay: 0.0,
        },
        ParamGroup {
            name: "rpn.tunable_linear.weight".into(),
            lr: 0.05,
            weight_decay: 0.25,
        },
        ParamGroup {
            name: "language_backbone.body.x".into(),
            lr: 1e-5,
            weight_decay: 0.05,
        },
    ];
    let lens = [1000usize, 37, 1, 200_000, 64];
    let steps = 50;
    let mut rng = PyRandom::new(&11u64.into());
    // Gradient scales from 1e-5 to 1: clipping is active on most steps, not on all.
    let scales: Vec<f32> = (0..steps)
        .map(|_| 10f64.powf(-5.0 * rng.random()) as f32)
        .collect();
    let change_at = 25;
    let changed_lrs = [1e-5, 2e-5, 1e-6, 0.005, 1e-6];
    let spec = json!({
        "groups": groups.iter().zip(lens).map(|(g, n)| json!({"lr": g.lr, "weight_decay": g.weight_decay, "len": n})).collect::<Vec<_>>(),
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "clip": 1.0,
        "scales": scales,
        "lr_changes": {change_at.to_string(): changed_lrs},
    });
    let dir = support::scratch();
    let spec_path = dir.path().join("spec.json");
    let out_path = dir.path().join("params.bin");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = support::run_oracle(
        &python,
        "adamw_torch.py",
        &[spec_path.to_str().unwrap(), out_path.to_str().unwrap()],
    );
    let torch_norms: Vec<f64> = serde_json::from_str(&out).unwrap();
    let torch_params: Vec<f32> = std::fs::read(&out_path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();

    let mut opt = AdamW::new(groups, (0.9, 0.999), 1e-8);
    let mut params: Vec<Vec<f32>> = lens
        .iter()
        .enumerate()
        .map(|(t, &n)| values(1000, t as u64, n))
        .collect();
    let mut clipped = 0;
    for (step, &scale) in scales.iter().enumerate() {
        if step == change_at {
            opt.set_lrs(&changed_lrs).unwrap();
        }
        let mut grads: Vec<Vec<f32>> = lens
            .iter()
            .enumerate()
            .map(|(t, &n)| {
                values(step as u64, t as u64, n)
                    .iter()
                    .map(|v| v * scale)
                    .collect()
            })
            .collect();
        let norm = opt.step(&mut params, &mut grads, Some(1.0));
        let want = torch_norms[step];
        assert!(
            (norm as f64 - want).abs() <= 1e-5 * want,
            "step {step}: norm {norm} vs torch {want}"
        );
        clipped += usize::from(want > 1.0);
    }
    assert!(
        clipped > 5 && clipped < steps,
        "{clipped} of {steps} steps clipped"
    );
    let ours: Vec<f32> = params.concat();
    assert_eq!(ours.len(), torch_params.len());
    // Relative error per element; an element that ends near 0 after moving by much more (the
    // prompt tensor takes 50 steps of ~0.05) is compared at its tensor's RMS instead, since its
    // absolute error comes from the larger values it held along the way.
    let (mut worst, mut off) = (0.0f64, 0);
    for &n in &lens {
        let (a, b) = (&ours[off..off + n], &torch_params[off..off + n]);
        let rms = (b.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / n as f64).sqrt();
        for (&x, &y) in a.iter().zip(b) {
            worst = worst.max((x as f64 - y as f64).abs() / (y.abs() as f64).max(rms));
        }
        off += n;
    }
    eprintln!("AdamW: {steps} steps, {clipped} clipped; max relative error vs torch {worst:e}");
    assert!(worst <= 1e-5, "max relative error {worst:e}");
}

/// AP sequences with improvements, plateaus, exact ties, zeros and changes within the
/// relative threshold.
fn ap_sequences() -> Vec<Vec<f64>> {
    let mut rng = PyRandom::new(&3u64.into());
    let mut out = vec![
        vec![0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
        vec![
            0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1,
        ],
        vec![
            0.5, 0.50004, 0.50004, 0.50006, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4,
        ],
    ];
    for _ in 0..60 {
        let mut ap: f64 = 0.0;
        let seq = (0..40)
            .map(|_| {
                let r = rng.random();
                ap = if r < 0.15 {
                    0.0
                } else if r < 0.35 {
                    ap // exact tie
                } else if r < 0.5 {
                    ap * (1.0 + 1e-4 * rng.random() * 2.0) // around the threshold
                } else if r < 0.7 {
                    ap + 0.05 * rng.random()
                } else {
                    (ap - 0.05 * rng.random()).max(0.0)
                };
                ap
            })
            .collect();
        out.push(seq);
    }
    out
}

#[test]
fn plateau_schedule_matches_torch() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let lrs = vec![0.05, 0.1, 1e-5, 1e-4, 2e-6];
    let seqs = ap_sequences();
    let spec: Vec<_> = seqs
        .iter()
        .enumerate()
        .map(|(i, aps)| json!({"lrs": lrs, "patience": if i % 2 == 0 { 3 } else { 2 }, "aps": aps}))
        .collect();
    let dir = support::scratch();
    let path = dir.path().join("plateau.json");
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = support::run_oracle(&python, "plateau_torch.py", &[path.to_str().unwrap()]);
    let want: Vec<Vec<Vec<f64>>> = serde_json::from_str(&out).unwrap();
    let mut reductions = 0;
    for (i, (aps, want)) in seqs.iter().zip(&want).enumerate() {
        let mut s = WarmupReduceLROnPlateau::new(lrs.clone(), PlateauConfig::glip(i % 2 == 1));
        for (k, &ap) in aps.iter().enumerate() {
            reductions += usize::from(s.step(ap));
            assert_eq!(
                s.lrs(),
                want[k].as_slice(),
                "sequence {i} after AP {k} ({ap})"
            );
        }
    }
    eprintln!(
        "plateau: {} sequences, {reductions} reductions, learning rates identical",
        seqs.len()
    );
    assert!(reductions > 20);
}

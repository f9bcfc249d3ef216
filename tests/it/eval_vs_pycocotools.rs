//! Differential test of `odinw score` against pycocotools (tests/oracles/coco_score.py): many
//! seeded random datasets built to hit the hard parts (score ties within and across images,
//! crowd GTs, boxes on the area bounds, zero-size boxes, GT `area` unlike w*h, duplicates,
//! more than 100 detections per cell, images without GT, categories without detections or
//! without GT, annotation id 0, duplicated annotation ids, string ids, float32-style numbers),
//! hand-made adversarial cases (data: tests/fixtures/eval_cases/pycocotools/), and the real
//! RoboFlow exports in ../shared with synthetic
//! detections. For every job: the 12 stats and the per-category APs of `odinw score --json`,
//! and the library's precision, recall and scores arrays, must equal pycocotools' to the bit (the
//! issue asks for 1e-12; the checks are exact). pycocotools' last bits depend on its numpy (a mean
//! over more than 8192 values is summed differently from numpy 2.3 on), so every job is scored
//! with `--numpy` set to the oracle's numpy, and a ~5,000-image case, where the two differ, runs
//! against both a numpy 2.2 and a numpy >= 2.3 pycocotools (`$ODINW_PYTHON` and
//! `$ODINW_PYTHON_NUMPY_LATEST`, made by scripts/test.sh).
use crate::support;
use crate::support::coco_gen;
use crate::support::eval_cases;
use crate::support::rng::SplitMix;

use odinw::eval::{evaluate, Detections, GroundTruth, NumpySum, Options};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use support::{python_with, run_odinw, run_oracle, scratch, shared_data};

/// How numbers are written: integers, 2 decimals, float32 values, or full doubles.
#[derive(Clone, Copy)]
enum Style {
    Int,
    Dec2,
    F32,
    Full,
}

fn num(v: f64, style: Style) -> String {
    match style {
        Style::Int => format!("{}", v.round() as i64),
        Style::Dec2 => format!("{:?}", (v * 100.0).round() / 100.0),
        Style::F32 => format!("{:?}", v as f32 as f64),
        Style::Full => format!("{v:?}"),
    }
}

fn style(rng: &mut SplitMix) -> Style {
    [Style::Int, Style::Dec2, Style::F32, Style::Full][rng.below(4) as usize]
}

/// One scoring job: a GT and a results file (as text) and the options to score them with.
struct Job {
    name: String,
    gt: String,
    dt: String,
    fix_id0: bool,
    fill_defaults: bool,
}

/// A random dataset; `seed` picks everything.
fn random_job(seed: u64) -> Job {
    let mut rng = SplitMix(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5DEE_CE66);
    let string_ids = rng.chance(0.1);
    let fill_defaults = rng.chance(0.15);
    let n_img = 1 + rng.below(30) as usize;
    let n_cat = 1 + rng.below(6) as usize;
    let mut pool: Vec<u64> = (0..(n_img as u64 * 3 + 5)).collect();
    rng.shuffle(&mut pool);
    let img_id = |v: u64| {
        if string_ids {
            format!("\"im{v}\"")
        } else {
            v.to_string()
        }
    };
    let images: Vec<String> = pool[..n_img].iter().map(|&v| img_id(v)).collect();
    let mut cat_pool: Vec<u64> = (0..20).collect();
    rng.shuffle(&mut cat_pool);
    let cats: Vec<u64> = cat_pool[..n_cat].to_vec();
    let box_style = style(&mut rng);
    let score_style = rng.below(5);
    let id_base = if rng.chance(0.35) { 0 } else { 1 };
    let duplicate_ids = rng.chance(0.05);

    let mut gt_anns: Vec<(String, u64, [f64; 4])> = Vec::new(); // (image, category, box)
    let mut ann_text: Vec<String> = Vec::new();
    for img in &images {
        let n = if rng.chance(0.15) { 0 } else { rng.below(9) };
        for _ in 0..n {
            let cat = if rng.chance(0.02) {
                99
            } else {
                cats[rng.below(n_cat as u64) as usize]
            };
            let image = if rng.chance(0.02) {
                img_id(100_000)
            } else {
                img.clone()
            };
            let size = match rng.below(10) {
                0 => 0.0,
                1..=3 => rng.range(2.0, 32.0),
                4..=6 => rng.range(32.0, 96.0),
                _ => rng.range(96.0, 300.0),
            };
            let (mut w, mut h) = (size * rng.range(0.5, 1.5), size * rng.range(0.5, 1.5));
            match rng.below(20) {
                0 => (w, h) = (32.0, 32.0),
                1 => (w, h) = (96.0, 96.0),
                2 => w = 0.0,
                _ => {}
            }
            let b = [rng.range(0.0, 400.0), rng.range(0.0, 400.0), w, h];
            let txt: Vec<String> = b.iter().map(|&v| num(v, box_style)).collect();
            let parsed: Vec<f64> = txt.iter().map(|t| t.parse().unwrap()).collect();
            let bb = [parsed[0], parsed[1], parsed[2], parsed[3]];
            let id = if duplicate_ids && !ann_text.is_empty() && rng.chance(0.1) {
                id_base + rng.below(ann_text.len() as u64)
            } else {
                id_base + ann_text.len() as u64
            };
            let mut fields = format!(
                "\"id\": {id}, \"image_id\": {image}, \"category_id\": {cat}, \"bbox\": [{}]",
                txt.join(", ")
            );
            if !(fill_defaults && rng.chance(0.3)) {
                let area = match rng.below(10) {
                    0 => "1024".to_string(),
                    1 => "9216".to_string(),
                    2..=3 => num(bb[2] * bb[3] * rng.range(0.4, 1.0), Style::Full),
                    _ => format!("{:?}", bb[2] * bb[3]),
                };
                let _ = write!(fields, ", \"area\": {area}");
            }
            if !(fill_defaults && rng.chance(0.3)) {
                let crowd = u8::from(rng.chance(0.08));
                let _ = write!(fields, ", \"iscrowd\": {crowd}");
            }
            ann_text.push(format!("{{{fields}, \"segmentation\": []}}"));
            gt_anns.push((image, cat, bb));
        }
    }
    if rng.chance(0.3) {
        rng.shuffle(&mut ann_text);
    }
    let mut image_list = images.clone();
    rng.shuffle(&mut image_list);
    let gt = format!(
        "{{\"info\": {{\"year\": 2024}}, \"images\": [{}], \"annotations\": [{}], \"categories\": [{}]}}",
        image_list
            .iter()
            .map(|i| format!("{{\"id\": {i}, \"file_name\": \"x.jpg\"}}"))
            .collect::<Vec<_>>()
            .join(", "),
        ann_text.join(", "),
        cats.iter()
            .map(|c| format!("{{\"id\": {c}, \"name\": \"c{c}\"}}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let score = |rng: &mut SplitMix, base: f64| -> String {
        let s = (base + rng.range(-0.2, 0.2)).clamp(0.0, 1.0);
        match score_style {
            0 => format!("{:?}", (s * 10.0).round() / 10.0),
            1 => format!("{:?}", (s * 100.0).round() / 100.0),
            2 => format!("{:?}", s as f32 as f64),
            3 => format!("{s:?}"),
            _ => format!("{}", (s * 3.0).round() as i64),
        }
    };
    let mut dets: Vec<String> = Vec::new();
    let det = |img: &str, cat: u64, b: [f64; 4], s: String| {
        let txt: Vec<String> = b.iter().map(|&v| num(v, box_style)).collect();
        format!(
            "{{\"image_id\": {img}, \"category_id\": {cat}, \"bbox\": [{}], \"score\": {s}}}",
            txt.join(", ")
        )
    };
    for (image, cat, b) in &gt_anns {
        if !images.contains(image) || !rng.chance(0.85) {
            continue;
        }
        for _ in 0..1 + rng.below(3) {
            let j = rng.range(0.0, 0.35);
            let nb = if rng.chance(0.1) {
                *b
            } else {
                [
                    b[0] + b[2] * rng.range(-j, j),
                    b[1] + b[3] * rng.range(-j, j),
                    (b[2] * (1.0 + rng.range(-j, j))).max(0.0),
                    (b[3] * (1.0 + rng.range(-j, j))).max(0.0),
                ]
            };
            let c = if rng.chance(0.9) {
                *cat
            } else {
                cats[rng.below(n_cat as u64) as usize]
            };
            let s = score(&mut rng, 0.7);
            dets.push(det(image, c, nb, s));
        }
    }
    for img in &images {
        for _ in 0..rng.below(6) {
            let c = if rng.chance(0.03) {
                77
            } else {
                cats[rng.below(n_cat as u64) as usize]
            };
            let sz = rng.range(0.0, 150.0);
            let b = [
                rng.range(0.0, 400.0),
                rng.range(0.0, 400.0),
                sz,
                sz * rng.range(0.3, 2.0),
            ];
            let s = score(&mut rng, 0.3);
            dets.push(det(img, c, b, s));
        }
        if rng.chance(0.03) {
            // A crowded cell: more than maxDets=100 detections.
            let c = cats[rng.below(n_cat as u64) as usize];
            for _ in 0..101 + rng.below(30) {
                let b = [rng.range(0.0, 300.0), rng.range(0.0, 300.0), 40.0, 40.0];
                let s = score(&mut rng, 0.5);
                dets.push(det(img, c, b, s));
            }
        }
    }
    if dets.is_empty() {
        dets.push(det(&images[0], cats[0], [1.0, 2.0, 3.0, 4.0], "0.5".into()));
    }
    if rng.chance(0.5) {
        rng.shuffle(&mut dets);
    }
    Job {
        name: format!("random seed {seed}"),
        gt,
        dt: format!("[{}]", dets.join(",\n")),
        fix_id0: id_base == 0 && rng.chance(0.5),
        fill_defaults,
    }
}

/// The large realistic case of [`coco_gen::large_case`], annotation ids from 1.
fn large_job(seed: u64, n_img: usize) -> Job {
    let (gt, dt) = coco_gen::large_case(seed, n_img, 1);
    Job {
        name: format!("large case ({n_img} images, seed {seed})"),
        gt,
        dt,
        fix_id0: false,
        fill_defaults: false,
    }
}

/// The hand-made cases for the rules random data rarely reaches, kept as data
/// (`tests/fixtures/eval_cases/pycocotools/`).
fn adversarial_jobs() -> Vec<Job> {
    eval_cases::load("pycocotools")
        .into_iter()
        .map(|(_, case)| Job {
            name: case["name"].as_str().unwrap().to_string(),
            gt: eval_cases::text(&case, "gt"),
            dt: eval_cases::text(&case, "dt"),
            fix_id0: case["fix_id0"].as_bool().unwrap(),
            fill_defaults: false,
        })
        .collect()
}

/// Synthetic detections for a real RoboFlow export: jittered GT boxes, a wrong class now and
/// then, and background boxes, with 3-decimal scores (ties).
fn real_job(path: &Path, seed: u64, fix_id0: bool) -> Job {
    let gt_text = std::fs::read_to_string(path).unwrap();
    let gt: Value = serde_json::from_str(&gt_text).unwrap();
    let cats: Vec<i64> = gt["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let mut rng = SplitMix(seed);
    let mut dets = Vec::new();
    for a in gt["annotations"].as_array().unwrap() {
        let b: Vec<f64> = a["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for _ in 0..rng.below(3) {
            let j = rng.range(0.0, 0.3);
            let c = if rng.chance(0.9) {
                a["category_id"].as_i64().unwrap()
            } else {
                cats[rng.below(cats.len() as u64) as usize]
            };
            dets.push(json!({
                "image_id": a["image_id"], "category_id": c,
                "bbox": [b[0] + b[2] * rng.range(-j, j), b[1] + b[3] * rng.range(-j, j),
                         b[2] * (1.0 + rng.range(-j, j)), b[3] * (1.0 + rng.range(-j, j))],
                "score": (rng.range(0.3, 1.0) * 1000.0).round() / 1000.0,
            }));
        }
    }
    for im in gt["images"].as_array().unwrap() {
        for _ in 0..rng.below(8) {
            let s = rng.range(5.0, 200.0);
            dets.push(json!({
                "image_id": im["id"], "category_id": cats[rng.below(cats.len() as u64) as usize],
                "bbox": [rng.range(0.0, 400.0), rng.range(0.0, 400.0), s, s * rng.range(0.5, 2.0)],
                "score": (rng.range(0.0, 0.6) * 1000.0).round() / 1000.0,
            }));
        }
    }
    Job {
        name: format!("{} (fix_id0={fix_id0})", path.display()),
        gt: gt_text,
        dt: serde_json::to_string(&dets).unwrap(),
        fix_id0,
        fill_defaults: false,
    }
}

fn read_f64s(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The summation of the numpy the oracle ran on (`"numpy": "2.2.6"` in its output).
fn numpy_of(oracle: &Value) -> NumpySum {
    let v = oracle["numpy"]
        .as_str()
        .expect("oracle reports its numpy version");
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (2, 3) {
        NumpySum::Whole
    } else {
        NumpySum::Buffered
    }
}

fn repr_f64(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

/// Scores every job with odinw (CLI and library) and pycocotools; returns the failures.
fn compare_all(python: &Path, jobs: &[Job]) -> Vec<String> {
    let dir = scratch();
    let mut manifest = Vec::new();
    let mut paths: Vec<(PathBuf, PathBuf, PathBuf, PathBuf)> = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        let gt = dir.path().join(format!("{n}_gt.json"));
        let dt = dir.path().join(format!("{n}_dt.json"));
        std::fs::write(&gt, &job.gt).unwrap();
        std::fs::write(&dt, &job.dt).unwrap();
        let oracle = dir.path().join(format!("{n}_oracle.json"));
        let ours = dir.path().join(format!("{n}_odinw.json"));
        manifest.push(json!({"gt": gt, "dt": dt, "out": oracle, "fix_id0": job.fix_id0, "fill_defaults": job.fill_defaults}));
        paths.push((gt, dt, oracle, ours));
    }
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    run_oracle(python, "coco_score.py", &[manifest_path.to_str().unwrap()]);

    let mut failures = Vec::new();
    for (job, (gt, dt, oracle, ours)) in jobs.iter().zip(&paths) {
        let want: Value = serde_json::from_slice(&std::fs::read(oracle).unwrap()).unwrap();
        if let Some(e) = want.get("error") {
            failures.push(format!(
                "{}: pycocotools failed: {e} {}",
                job.name, want["message"]
            ));
            continue;
        }
        let numpy = numpy_of(&want);
        let mut args = vec![
            "score",
            "--gt",
            gt.to_str().unwrap(),
            "--dt",
            dt.to_str().unwrap(),
            "--json",
            ours.to_str().unwrap(),
            "--numpy",
            match numpy {
                NumpySum::Whole => "2.3",
                NumpySum::Buffered => "2.2",
            },
        ];
        if job.fix_id0 {
            args.push("--fix-id0");
        }
        let out = run_odinw(&args);
        if !out.status.success() {
            failures.push(format!(
                "{}: odinw failed: {}",
                job.name,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let got: Value = serde_json::from_slice(&std::fs::read(ours).unwrap()).unwrap();
        let mut bad = Vec::new();
        for (i, (g, w)) in got["stats"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["stats"].as_array().unwrap())
            .enumerate()
        {
            let (g, w) = (g.as_f64().unwrap(), repr_f64(w));
            if g.to_bits() != w.to_bits() {
                bad.push(format!("stat {i}: odinw {g:?}, pycocotools {w:?}"));
            }
        }
        let mut n_cat = 0;
        for entry in got["per_category"].as_object().unwrap().values() {
            let id = match &entry["id"] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let theirs = &want["per_category"][&id];
            for key in ["AP", "AP50", "APs", "APm", "APl"] {
                let (g, w) = (entry[key].as_f64().unwrap(), repr_f64(&theirs[key]));
                if g.to_bits() != w.to_bits() {
                    bad.push(format!(
                        "category {id} {key}: odinw {g:?}, pycocotools {w:?}"
                    ));
                }
            }
            n_cat += 1;
        }
        if n_cat != want["per_category"].as_object().unwrap().len() {
            bad.push("different category count".into());
        }
        // The arrays library callers get.
        let g = GroundTruth::read(gt).unwrap();
        let d = Detections::read(&g, dt).unwrap();
        let ev = evaluate(
            &g,
            &d,
            &Options {
                fix_id0: job.fix_id0,
                numpy,
            },
        );
        for (what, ours) in [
            ("precision", &ev.precision),
            ("recall", &ev.recall),
            ("scores", &ev.scores),
        ] {
            let theirs = read_f64s(&PathBuf::from(format!("{}.{what}.bin", oracle.display())));
            let differ = ours.len() != theirs.len()
                || ours
                    .iter()
                    .zip(&theirs)
                    .any(|(a, b)| a.to_bits() != b.to_bits());
            if differ {
                bad.push(format!("{what} array differs"));
            }
        }
        if !bad.is_empty() {
            failures.push(format!("{}: {}", job.name, bad.join("; ")));
        }
    }
    failures
}

#[test]
fn random_datasets_match_pycocotools() {
    let Some(python) = python_with(&["pycocotools", "numpy"]) else {
        return;
    };
    let jobs: Vec<Job> = (0..240).map(random_job).collect();
    let failures = compare_all(&python, &jobs);
    assert!(
        failures.is_empty(),
        "{} of {} jobs differ:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}

#[test]
fn adversarial_cases_match_pycocotools() {
    let Some(python) = python_with(&["pycocotools", "numpy"]) else {
        return;
    };
    let jobs = adversarial_jobs();
    assert_eq!(jobs.len(), 16, "tests/fixtures/eval_cases/pycocotools/");
    let failures = compare_all(&python, &jobs);
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}

#[test]
fn real_roboflow_exports_match_pycocotools() {
    let Some(python) = python_with(&["pycocotools", "numpy"]) else {
        return;
    };
    let mut jobs = Vec::new();
    for (n, rel) in [
        "roboflow/BCCD.v3-raw.coco/valid/_annotations.coco.json",
        "roboflow/BCCD.v3-raw.coco/test/_annotations.coco.json",
        "roboflow/Aquarium Combined.v2-raw-1024.coco/valid/_annotations.coco.json",
        "roboflow/Aquarium Combined.v2-raw-1024.coco/test/_annotations.coco.json",
    ]
    .iter()
    .enumerate()
    {
        let Some(path) = shared_data(rel) else {
            return;
        };
        for fix in [false, true] {
            jobs.push(real_job(&path, 1000 + n as u64, fix));
        }
    }
    let failures = compare_all(&python, &jobs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The numpy version of a Python, if it imports numpy and pycocotools.
fn numpy_version(python: &Path) -> Option<String> {
    let out = std::process::Command::new(python)
        .args(["-c", "import numpy, pycocotools; print(numpy.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// AP's mean with a naive left-to-right sum, for stat `i` of the AP group (0, 3, 4, 5: all
/// IoU thresholds, area `a`, maxDets 100).
fn naive_ap(ev: &odinw::eval::Evaluation, a: usize) -> f64 {
    let (nt, nr, nk) = (10, 101, ev.categories.len());
    let (mut sum, mut n) = (0.0, 0usize);
    for t in 0..nt {
        for r in 0..nr {
            for k in 0..nk {
                let v = ev.precision_at(t, r, k, a, 2);
                if v > -1.0 {
                    sum += v;
                    n += 1;
                }
            }
        }
    }
    sum / n as f64
}

/// A ~5,000-image case: every stat, per-category AP and array equal to pycocotools' on a numpy
/// 2.2 oracle and on a numpy >= 2.3 one. The case is large enough that it tells the two
/// summations apart, and a naive sum apart from both (asserted), so the exact comparison
/// checks the summation itself.
#[test]
fn large_case_matches_pycocotools_on_each_numpy() {
    let Some(python) = python_with(&["pycocotools", "numpy"]) else {
        return;
    };
    let mut oracles = vec![python];
    match std::env::var_os("ODINW_PYTHON_NUMPY_LATEST") {
        Some(p) => oracles.push(PathBuf::from(p)),
        None if std::env::var("ODINW_REQUIRE_ORACLES").as_deref() == Ok("1") => {
            panic!("ODINW_PYTHON_NUMPY_LATEST is not set (a Python with numpy >= 2.3 and pycocotools; scripts/test.sh makes one)")
        }
        None => eprintln!("note: ODINW_PYTHON_NUMPY_LATEST is not set: numpy >= 2.3 not compared"),
    }
    let job = large_job(20_240_611, 5000);

    // The case must separate the summations, or the exact checks below prove little.
    let dir = scratch();
    let (gt_path, dt_path) = (dir.path().join("gt.json"), dir.path().join("dt.json"));
    std::fs::write(&gt_path, &job.gt).unwrap();
    std::fs::write(&dt_path, &job.dt).unwrap();
    let g = GroundTruth::read(&gt_path).unwrap();
    let d = Detections::read(&g, &dt_path).unwrap();
    assert!(d.num_input() > 50_000);
    let ev = |numpy| {
        evaluate(
            &g,
            &d,
            &Options {
                fix_id0: false,
                numpy,
            },
        )
    };
    let (whole, buffered) = (ev(NumpySum::Whole), ev(NumpySum::Buffered));
    assert!(
        whole.stats != buffered.stats,
        "the large case does not tell numpy 2.2 from 2.3: {:?}",
        whole.stats
    );
    let naive_differs = [(0, 0), (3, 1), (4, 2), (5, 3)].iter().any(|&(i, a)| {
        let n = naive_ap(&whole, a);
        n != whole.stats[i] && n != buffered.stats[i]
    });
    assert!(
        naive_differs,
        "a naive sum gives the same AP on the large case"
    );

    let mut seen = Vec::new();
    for python in &oracles {
        let version = numpy_version(python)
            .unwrap_or_else(|| panic!("{} cannot import numpy and pycocotools", python.display()));
        let failures = compare_all(python, std::slice::from_ref(&job));
        assert!(
            failures.is_empty(),
            "numpy {version}: {}",
            failures.join("\n")
        );
        seen.push(version);
    }
    if oracles.len() > 1 {
        let family = |v: &String| numpy_of(&json!({ "numpy": v }));
        assert!(
            seen.iter().any(|v| family(v) == NumpySum::Whole)
                && seen.iter().any(|v| family(v) == NumpySum::Buffered),
            "the oracles' numpy versions {seen:?} should cover both <= 2.2 and >= 2.3"
        );
    }
}

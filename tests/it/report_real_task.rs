//! A run on locally mirrored real tasks (BCCD and Aquarium test splits from ../shared): noisy
//! copies of the ground truth as predictions, scored by pycocotools, written through the run
//! store; then the report, chart and a submission that the checker accepts and that equals the
//! run's predictions. Skips without ../shared or pycocotools. `ODINW_DEMO_OUT=DIR` keeps the
//! run and the submission there for inspection.
use crate::support;

use odinw::data::coco::CocoFile;
use odinw::postprocess::CocoDetection as Detection;
use odinw::registry::{find, Suite};
use odinw::run::{Manifest, Metrics, RunStore, Track};
use serde_json::Value;
use std::path::Path;
use support::{python_with, run_odinw, run_oracle, scratch};

/// The export's test annotations without RoboFlow's background category 0, where the
/// registry expects them under `root`.
fn mirror(export: &Path, task: &str, root: &Path) -> std::path::PathBuf {
    let mut coco = CocoFile::read(&export.join("test/_annotations.coco.json")).unwrap();
    coco.categories.retain(|c| c.id != 0);
    let dest = find(Suite::Odinw35, task)
        .unwrap()
        .ann_file(root, "test")
        .unwrap();
    coco.write(&dest).unwrap();
    dest
}

/// Ground-truth boxes moved by a deterministic jitter, with a score that falls with the jitter,
/// plus one false positive per image.
fn noisy_predictions(coco: &CocoFile) -> Vec<Detection> {
    let mut out = Vec::new();
    for (i, a) in coco.annotations.iter().enumerate() {
        let b = a.bbox_f64().unwrap();
        let j = ((i * 37) % 11) as f64 / 10.0 - 0.5; // -0.5 .. 0.5
        out.push(Detection {
            image_id: a.image_id,
            category_id: a.category_id,
            bbox: [
                b[0] + j * 0.2 * b[2],
                b[1] - j * 0.1 * b[3],
                b[2] * (1.0 + 0.1 * j),
                b[3],
            ],
            score: 0.9 - 0.5 * j.abs(),
        });
    }
    for img in &coco.images {
        out.push(Detection {
            image_id: img.id,
            category_id: coco.categories[0].id,
            bbox: [3.0, 4.0, 20.0, 30.0],
            score: 0.3,
        });
    }
    out
}

#[test]
fn real_tasks_give_tables_chart_and_an_accepted_submission() {
    let Some((bccd, aquarium)) = support::roboflow_exports() else {
        return;
    };
    let Some(python) = python_with(&["pycocotools"]) else {
        return;
    };
    let dir = scratch();
    let root = dir.path().join("DATASET");
    let run = dir.path().join("real-zeroshot");
    let mut m = Manifest::new(
        Track::ZeroShot,
        "odinw35",
        "test",
        vec!["Aquarium".into(), "BCCD".into()],
    );
    let mut stats = Vec::new();
    let mut files = Vec::new();
    for (task, export) in [("Aquarium", &aquarium), ("BCCD", &bccd)] {
        let ann = mirror(export, task, &root);
        files.push(odinw::run::DatasetRecord {
            task: task.into(),
            files: vec![odinw::run::FileRecord::of(&ann).unwrap()],
        });
    }
    m.datasets = files;
    let store = RunStore::create(&run, &m).unwrap();
    for task in ["Aquarium", "BCCD"] {
        let ann = find(Suite::Odinw35, task)
            .unwrap()
            .ann_file(&root, "test")
            .unwrap();
        let coco = CocoFile::read(&ann).unwrap();
        let n = store
            .write_predictions(task, None, noisy_predictions(&coco))
            .unwrap();
        assert_eq!(n as usize, coco.annotations.len() + coco.images.len());
        let pred = store.predictions_path(task, None);
        let oracle = run_oracle(
            &python,
            "coco_metrics.py",
            &[ann.to_str().unwrap(), pred.to_str().unwrap()],
        );
        let metrics: Metrics = serde_json::from_str(&oracle).unwrap();
        stats.push(metrics.stats[0]);
        store.write_metrics(task, None, &metrics).unwrap();
        store.write_log(task, None, &oracle).unwrap();
        store.finish_task(task, None, 1.0).unwrap();
    }
    let summary = store.finish_run().unwrap();
    assert!(summary.complete);
    let mean = (stats[0] + stats[1]) / 2.0;
    assert!((summary.mean_ap.unwrap() - mean).abs() < 1e-12);
    assert!(
        stats.iter().all(|s| *s > 0.05 && *s < 1.0),
        "noisy boxes score between: {stats:?}"
    );

    let out = run_odinw(&["report", run.to_str().unwrap()]);
    support::assert_ok(&out);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(&format!("mean AP {:.1}", mean * 100.0)),
        "{table}"
    );
    assert!(
        table.contains(&format!("{:.1}", stats[1] * 100.0)),
        "{table}"
    );
    let svg = std::fs::read_to_string(run.join("report/chart.svg")).unwrap();
    assert_eq!(svg.matches("class=\"bar\"").count(), 2);
    assert!(run.join("report/chart.png").exists());

    let sub = dir.path().join("submissions/real.json");
    let o = run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        sub.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_odinw(&[
        "submission",
        "check",
        sub.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let submitted: Value = serde_json::from_slice(&std::fs::read(&sub).unwrap()).unwrap();
    for task in ["Aquarium", "BCCD"] {
        let from_run: Vec<Detection> =
            serde_json::from_slice(&std::fs::read(store.predictions_path(task, None)).unwrap())
                .unwrap();
        let in_sub: Vec<Detection> = serde_json::from_value(submitted[task].clone()).unwrap();
        assert_eq!(in_sub, from_run, "{task}");
    }
    if let Some(keep) = std::env::var_os("ODINW_DEMO_OUT") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        let copy = std::process::Command::new("cp")
            .args(["-r", run.to_str().unwrap(), sub.to_str().unwrap()])
            .arg(keep)
            .status()
            .unwrap();
        assert!(copy.success());
    }
}

//! Synthetic runs for the report and submission tests: written through the library's
//! `RunStore`, the way `odinw eval` writes real ones, with metrics chosen so that every
//! aggregate can be computed by hand.
#![allow(dead_code)]
use odinw::postprocess::CocoDetection as Detection;
use odinw::run::{Manifest, Metrics, RunStore, Track};
use std::path::Path;

/// COCO stats with AP `ap`: AP50 = ap + .2, AP75 = ap − .05, APs = `aps` (-1: no small
/// objects), APm = ap / 2, APl = ap, AR1 .1, AR10 .2, AR100 = ap + .1, ARs -1, ARm .3, ARl .4
/// (each at most 1).
pub fn stats(ap: f64, aps: f64) -> [f64; 12] {
    let up = |v: f64| v.min(1.0);
    [
        ap,
        up(ap + 0.2),
        ap - 0.05,
        aps,
        ap / 2.0,
        ap,
        0.1,
        0.2,
        up(ap + 0.1),
        -1.0,
        0.3,
        0.4,
    ]
}

pub fn manifest(track: Track, suite: &str, split: &str, tasks: &[&str], seeds: &[u64]) -> Manifest {
    let mut m = Manifest::new(
        track,
        suite,
        split,
        tasks.iter().map(|t| t.to_string()).collect(),
    );
    m.seeds = seeds.to_vec();
    if track == Track::FewShot {
        m.shots = Some(3);
    }
    m
}

/// Records `ap` (and `aps`) for a unit, with a log, and finishes it.
pub fn finish(store: &RunStore, task: &str, seed: Option<u64>, ap: f64, aps: f64) {
    let mut m = Metrics::from_stats(stats(ap, aps));
    m.per_category.insert("thing".into(), serde_json::json!(ap));
    store.write_metrics(task, seed, &m).unwrap();
    store.write_log(task, seed, "evaluated\n").unwrap();
    store.finish_task(task, seed, 1.5).unwrap();
}

/// Deterministic detections for images 1..=images and categories 1..=categories.
pub fn detections(images: u64, categories: u64, salt: u64) -> Vec<Detection> {
    let mut out = Vec::new();
    for image_id in 1..=images {
        for k in 0..3u64 {
            let v = (image_id * 31 + k * 7 + salt * 13) % 97;
            out.push(Detection {
                image_id,
                category_id: 1 + (v % categories),
                bbox: [v as f64, (v / 2) as f64 + 0.25, 10.0 + k as f64, 12.5],
                score: (v as f64 + 1.0) / 100.0,
            });
        }
    }
    out
}

/// A minimal COCO annotation file with images 1..=images and categories 1..=categories.
pub fn annotation_file(path: &Path, images: u64, categories: u64) {
    let imgs: Vec<_> = (1..=images)
        .map(|i| serde_json::json!({"id": i, "file_name": format!("{i}.jpg"), "width": 100, "height": 100}))
        .collect();
    let cats: Vec<_> = (1..=categories)
        .map(|i| serde_json::json!({"id": i, "name": format!("c{i}")}))
        .collect();
    let anns: Vec<_> = (1..=images)
        .map(|i| serde_json::json!({"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}))
        .collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        serde_json::to_vec(
            &serde_json::json!({"images": imgs, "annotations": anns, "categories": cats}),
        )
        .unwrap(),
    )
    .unwrap();
}

/// With `ODINW_DEMO_OUT=DIR`, copies `run` there for inspection (the demo runs).
pub fn keep_for_demo(run: &Path) {
    if let Some(keep) = std::env::var_os("ODINW_DEMO_OUT") {
        std::fs::create_dir_all(&keep).unwrap();
        let ok = std::process::Command::new("cp")
            .arg("-r")
            .arg(run)
            .arg(&keep)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

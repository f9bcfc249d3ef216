//! The whole chain on a real task: the real BCCD export (../shared, skipped when absent) zipped in
//! GLIP's layout and served from a `file://` mirror → `odinw download` → `odinw eval` with the demo
//! model → its AP confirmed by pycocotools on the run's own predictions → `odinw submit` →
//! `odinw submission check` accepts it, and the submission equals the run's predictions.
use crate::support;
use crate::support::read_json;

use serde_json::Value;
use support::zips;

fn ok(out: std::process::Output) -> String {
    String::from_utf8_lossy(&support::ok(out).stdout).into_owned()
}

#[test]
fn bccd_download_eval_score_submit_check() {
    let Some(src) = support::shared_data("roboflow/BCCD.v3-raw.coco") else {
        return;
    };
    let Some(python) = support::python_with(&["onnxruntime", "pycocotools"]) else {
        return;
    };
    let dir = support::scratch();
    let mirror = dir.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(
        mirror.join("BCCD.zip"),
        zips::zip_dir(&src, "BCCD/BCCD.v3-raw.coco/"),
    )
    .unwrap();
    let root = dir.path().join("DATASET");
    let cache = dir.path().join("cache");
    let mirror_url = format!("file://{}", mirror.display());
    ok(support::odinw()
        .args([
            "download",
            "--tasks",
            "BCCD",
            "--mirror",
            &mirror_url,
            "--root",
        ])
        .arg(&root)
        .output()
        .unwrap());

    let run = dir.path().join("run");
    let model = support::repo("models/demo");
    ok(support::odinw()
        .args([
            "eval", "--track", "zeroshot", "--tasks", "bccd", "--split", "test",
        ])
        .arg("--model")
        .arg(&model)
        .arg("--root")
        .arg(&root)
        .arg("--out")
        .arg(&run)
        .env("ODINW_CACHE", &cache)
        .output()
        .unwrap());
    let predictions = run.join("BCCD/predictions.json");
    let preds = read_json(&predictions);
    assert!(
        !preds.as_array().unwrap().is_empty(),
        "the demo model detects something on BCCD"
    );

    // pycocotools on the run's own predictions gives the run's numbers.
    let gt = root.join("odinw/BCCD/BCCD.v3-raw.coco/test/annotations_without_background.json");
    let oracle_out = dir.path().join("oracle.json");
    let jobs = dir.path().join("jobs.json");
    std::fs::write(
        &jobs,
        serde_json::json!([{"gt": gt, "dt": predictions, "out": oracle_out, "fix_id0": false, "fill_defaults": false}]).to_string(),
    )
    .unwrap();
    support::run_oracle(&python, "coco_score.py", &[jobs.to_str().unwrap()]);
    let want: Vec<f64> = read_json(&oracle_out)["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v {
            Value::String(s) => s.parse().unwrap(),
            v => v.as_f64().unwrap(),
        })
        .collect();
    let metrics = read_json(&run.join("BCCD/metrics.json"));
    let got: Vec<f64> = metrics["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-12,
            "stats {got:?} vs pycocotools {want:?}"
        );
    }
    // BCCD numbers its annotations from 0: the run says whether pycocotools' id-0 rule mattered.
    assert_eq!(
        metrics["id0_quirk"]["gt_has_annotation_id0"], true,
        "{metrics}"
    );

    let submission = dir.path().join("submissions/bccd.json");
    ok(support::odinw()
        .arg("submit")
        .arg(&run)
        .arg("--out")
        .arg(&submission)
        .output()
        .unwrap());
    ok(support::odinw()
        .args(["submission", "check"])
        .arg(&submission)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap());
    let sub = read_json(&submission);
    assert_eq!(
        sub["BCCD"], preds,
        "the submission holds the run's predictions"
    );

    let report = ok(support::odinw().arg("report").arg(&run).output().unwrap());
    assert!(report.contains("BCCD"), "{report}");
    assert!(run.join("report/chart.png").is_file());
}

//! `odinw eval --track zeroshot` against a Python reference of the same pipeline (onnxruntime's
//! Python API, Pillow, numpy post-processing written from GLIP's protocol, pycocotools) on the
//! demo model and suite: the same detections up to float tolerance and the same AP; then
//! resuming, the embedded `odinw demo`, and a missing image named in the error.
use crate::support;
use crate::support::{copy_dir, iou, read_json, repo};

use std::path::Path;

fn demo_tasks() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo("demo/tasks"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    v.sort();
    v
}

fn eval_demo(out: &Path, root: &Path, cache: &Path) -> std::process::Output {
    let model = repo("models/demo");
    support::odinw()
        .args([
            "eval", "--track", "zeroshot", "--suite", "demo", "--split", "test",
        ])
        .arg("--model")
        .arg(&model)
        .arg("--root")
        .arg(root)
        .arg("--out")
        .arg(out)
        .env("ODINW_CACHE", cache)
        .output()
        .unwrap()
}

#[test]
fn predictions_and_ap_match_the_python_reference_and_reruns_resume() {
    let Some(python) = support::python_with(&["onnxruntime", "PIL", "tokenizers", "pycocotools"])
    else {
        return;
    };
    let dir = support::scratch();
    let run = dir.path().join("run");
    let cache = dir.path().join("cache");
    let out = eval_demo(&run, &repo("demo"), &cache);
    support::assert_ok(&out);

    let reference = dir.path().join("ref.json");
    let mut args = vec![
        repo("models/demo").display().to_string(),
        repo("demo").display().to_string(),
        "test".into(),
        reference.display().to_string(),
    ];
    args.extend(demo_tasks());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    support::run_oracle(&python, "zeroshot_reference.py", &args);
    let reference = read_json(&reference);

    let tasks = reference.as_object().unwrap();
    assert_eq!(tasks.len(), 4);
    for (task, want) in tasks {
        let got = read_json(&run.join(task).join("predictions.json"));
        let got = got.as_array().unwrap();
        let want_preds = want["predictions"].as_array().unwrap();
        assert_eq!(got.len(), want_preds.len(), "{task}: number of detections");
        assert!(got.len() > 100, "{task}: the demo model detects things");
        let mut used = vec![false; want_preds.len()];
        for g in got {
            let gb: Vec<f64> = g["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let found = want_preds.iter().enumerate().position(|(i, w)| {
                !used[i]
                    && w["image_id"] == g["image_id"]
                    && w["category_id"] == g["category_id"]
                    && (w["score"].as_f64().unwrap() - g["score"].as_f64().unwrap()).abs() < 1e-4
                    && iou(
                        &w["bbox"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_f64().unwrap())
                            .collect::<Vec<_>>(),
                        &gb,
                    ) > 0.999
            });
            let i = found.unwrap_or_else(|| panic!("{task}: no reference detection for {g}"));
            used[i] = true;
        }
        let metrics = read_json(&run.join(task).join("metrics.json"));
        let (ap, want_ap) = (
            metrics["stats"][0].as_f64().unwrap(),
            want["stats"][0].as_f64().unwrap(),
        );
        assert!(
            (ap - want_ap).abs() < 1e-3,
            "{task}: AP {ap} vs reference {want_ap}"
        );
        assert_eq!(metrics["caption"], want["caption"], "{task}: caption");
    }
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["evaluated"], 4);
    assert!(summary["mean_ap"].as_f64().unwrap() > 0.3, "{summary}");
    assert!(run.join("report/chart.svg").is_file());

    // A second run finds every task done and changes nothing.
    let before = std::fs::read(run.join("ColorShapes/predictions.json")).unwrap();
    let again = eval_demo(&run, &repo("demo"), &cache);
    assert!(again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(
        stderr.matches("done earlier, skipped").count(),
        4,
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(run.join("ColorShapes/predictions.json")).unwrap(),
        before
    );
}

#[test]
fn the_embedded_demo_runs_offline_and_prints_the_table() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let dir = support::scratch();
    let out = support::odinw()
        .args(["demo", "--out"])
        .arg(dir.path().join("run"))
        .env("ODINW_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    support::assert_ok(&out);
    for task in [
        "ColorShapes",
        "TexturedShapes",
        "ShapeDescriptions",
        "NovelShapes",
        "mean",
    ] {
        assert!(stdout.contains(task), "{stdout}");
    }
    assert!(stdout.contains("over 4/4 evaluated tasks"), "{stdout}");
    let summary = read_json(&dir.path().join("run/summary.json"));
    assert_eq!(summary["track"], "zero-shot");

    // The demo run makes a submission the checker accepts, holding the run's predictions.
    let sub = dir.path().join("demo-submission.json");
    let out = support::odinw()
        .arg("submit")
        .arg(dir.path().join("run"))
        .arg("--out")
        .arg(&sub)
        .output()
        .unwrap();
    support::assert_ok(&out);
    let out = support::odinw()
        .args(["submission", "check"])
        .arg(&sub)
        .arg("--root")
        .arg(repo("demo"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sub = read_json(&sub);
    for task in [
        "ColorShapes",
        "TexturedShapes",
        "ShapeDescriptions",
        "NovelShapes",
    ] {
        let preds = read_json(&dir.path().join("run").join(task).join("predictions.json"));
        assert_eq!(sub[task], preds, "{task}");
    }
}

#[test]
fn a_missing_image_fails_the_task_and_names_the_file() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let dir = support::scratch();
    let root = dir.path().join("root");
    copy_dir(&repo("demo"), &root);
    let victim = root.join("odinw/ShapesDemo/ColorShapes/test/colorshapes_test_003.png");
    assert!(
        victim.is_file(),
        "fixture layout changed: {}",
        victim.display()
    );
    std::fs::remove_file(&victim).unwrap();
    let out = eval_demo(&dir.path().join("run"), &root, &dir.path().join("cache"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("colorshapes_test_003.png") && stderr.contains("missing"),
        "{stderr}"
    );
    let summary = read_json(&dir.path().join("run/summary.json"));
    assert_eq!(summary["evaluated"], 3, "{summary}");
}

/// A task whose annotation file is absent fails alone: the other tasks run, the manifest is
/// written, and its error.json names the file; with every task's file absent the run is refused
/// before anything is written.
#[test]
fn a_missing_annotation_file_fails_that_task_alone() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let dir = support::scratch();
    let root = dir.path().join("root");
    copy_dir(&repo("demo"), &root);
    let victim = root.join("odinw/ShapesDemo/ColorShapes/test/annotations_without_background.json");
    std::fs::remove_file(&victim).unwrap();
    let out = eval_demo(&dir.path().join("run"), &root, &dir.path().join("cache"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} does not exist", victim.display())),
        "{stderr}"
    );
    let summary = read_json(&dir.path().join("run/summary.json"));
    assert_eq!(summary["evaluated"], 3, "{summary}");
    assert_eq!(summary["failed"][0]["task"], "ColorShapes", "{summary}");
    let error = read_json(&dir.path().join("run/ColorShapes/error.json"));
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("does not exist; fetch it with"),
        "{error}"
    );
    let manifest = read_json(&dir.path().join("run/manifest.json"));
    let recorded: Vec<&str> = manifest["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["task"].as_str().unwrap())
        .collect();
    assert_eq!(recorded.len(), 3);
    assert!(!recorded.contains(&"ColorShapes"), "{recorded:?}");

    for task in ["TexturedShapes", "ShapeDescriptions", "NovelShapes"] {
        let t = odinw::registry::find(odinw::registry::Suite::Demo, task).unwrap();
        std::fs::remove_file(t.ann_file(&root, "test").unwrap()).unwrap();
    }
    let out = eval_demo(&dir.path().join("run2"), &root, &dir.path().join("cache"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every other selected task lacks its data too"),
        "{stderr}"
    );
    assert!(!dir.path().join("run2").exists());
}

/// The README's exit code 2 for an invalid command line: counts below 1 are refused while
/// parsing, before any file is read or written.
#[test]
fn a_batch_below_one_is_an_invalid_command_line() {
    let dir = support::scratch();
    for flag in ["--batch", "--glip-batch"] {
        let out = support::odinw()
            .args([
                "eval", "--suite", "demo", "--model", "demo", flag, "0", "--out",
            ])
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        let text = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{flag}: {text}");
        assert!(text.contains(flag) && text.contains("0"), "{flag}: {text}");
        assert!(!dir.path().join("run").exists());
    }
}

/// The dataset root is `--root`, else `$ODINW_ROOT`, else `./DATASET` (the demo suite's bundled
/// data aside): seen in the error naming the missing annotation file and the fetch command.
#[test]
fn the_dataset_root_is_the_option_then_odinw_root_then_dataset() {
    let dir = support::scratch();
    let env_root = dir.path().join("env-root");
    let opt_root = dir.path().join("opt-root");
    let cases: [(&[&str], Option<&Path>, String); 3] = [
        (
            &["--root", opt_root.to_str().unwrap()],
            Some(&env_root),
            format!("--root {}", opt_root.display()),
        ),
        (
            &[],
            Some(&env_root),
            format!("--root {}", env_root.display()),
        ),
        (&[], None, "--root DATASET".into()),
    ];
    for (extra, env, want) in cases {
        let mut cmd = support::odinw();
        cmd.args([
            "eval", "--suite", "odinw35", "--tasks", "BCCD", "--model", "demo",
        ])
        .args(extra)
        .current_dir(dir.path())
        .env_remove("ODINW_ROOT");
        if let Some(e) = env {
            cmd.env("ODINW_ROOT", e);
        }
        let out = cmd.output().unwrap();
        let text = support::text(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!("odinw download --tasks BCCD {want}`")),
            "{want}: {text}"
        );
    }
}

//! The run store and `odinw report`: summary.json and every report format against numbers
//! computed by hand from synthetic runs, run comparison, the chart, exit codes.
use crate::support;
use crate::support::synthetic_run;
use crate::support::{copy_dir, read_json};

use odinw::run::{RunStore, Track};
use serde_json::Value;
use std::path::Path;
use support::{run_odinw, scratch};
use synthetic_run::{finish, keep_for_demo, manifest};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    assert!(close(a, expected), "{what}: {a} != {expected}");
}

/// BCCD .5, pothole .2, Raccoon .3 (the only one with small objects: APs .25), dice failed.
fn zero_shot_run(dir: &Path) -> RunStore {
    let m = manifest(
        Track::ZeroShot,
        "odinw35",
        "test",
        &["BCCD", "pothole", "Raccoon", "dice"],
        &[],
    );
    let store = RunStore::create(dir, &m).unwrap();
    finish(&store, "BCCD", None, 0.5, -1.0);
    finish(&store, "pothole", None, 0.2, -1.0);
    finish(&store, "Raccoon", None, 0.3, 0.25);
    store
        .fail_task("dice", None, "out of memory\nat layer 3", 0.5)
        .unwrap();
    store
}

/// BCCD .4/.5/.6, pothole .1/.2/.3 over seeds 3/30/300; Raccoon only seed 3 (.9).
fn few_shot_run(dir: &Path) -> RunStore {
    let m = manifest(
        Track::FewShot,
        "odinw35",
        "test",
        &["BCCD", "pothole", "Raccoon"],
        &[3, 30, 300],
    );
    let store = RunStore::create(dir, &m).unwrap();
    for (seed, a, b) in [(3, 0.4, 0.1), (30, 0.5, 0.2), (300, 0.6, 0.3)] {
        finish(&store, "BCCD", Some(seed), a, -1.0);
        finish(&store, "pothole", Some(seed), b, -1.0);
    }
    finish(&store, "Raccoon", Some(3), 0.9, -1.0);
    store
}

#[test]
fn zero_shot_summary_matches_hand_computed_numbers() {
    let dir = scratch();
    let run = dir.path().join("zs");
    zero_shot_run(&run);
    let s = read_json(&run.join("summary.json"));
    assert_eq!(s["track"], "zero-shot");
    assert_eq!(s["split"], "test");
    assert_close(&s["mean_ap"], (0.5 + 0.2 + 0.3) / 3.0, "mean_ap");
    assert_close(&s["median_ap"], 0.3, "median_ap");
    assert_eq!(s["evaluated"], 3);
    assert_eq!(s["expected"], 4);
    assert_eq!(s["complete"], false);
    assert_eq!(s["missing"], serde_json::json!([]));
    assert_eq!(s["failed"][0]["task"], "dice");
    assert_eq!(s["failed"][0]["error"], "out of memory\nat layer 3");
    assert_close(&s["tasks"]["BCCD"]["ap"], 0.5, "BCCD ap");
    assert_close(&s["tasks"]["BCCD"]["ap50"], 0.7, "BCCD ap50");
    assert_close(&s["tasks"]["pothole"]["ap75"], 0.15, "pothole ap75");
    assert_eq!(s["tasks"]["dice"]["status"], "failed");
    assert_eq!(s["tasks"]["dice"]["ap"], Value::Null);
    let tasks: Vec<&String> = s["tasks"].as_object().unwrap().keys().collect();
    assert_eq!(
        tasks,
        ["BCCD", "pothole", "Raccoon", "dice"],
        "manifest order"
    );
    // pothole and Raccoon are ODinW-13 tasks: the subset's summary names the 11 others.
    assert_eq!(s["odinw13"]["evaluated"], 2);
    assert_close(&s["odinw13"]["mean_ap"], 0.25, "13 mean");
    assert_eq!(s["odinw13"]["missing"].as_array().unwrap().len(), 11);
    assert_close(&s["odinw13"]["mean_ap_prompts_agree"], 0.3, "Raccoon only");
    let m = read_json(&run.join("manifest.json"));
    assert_eq!(m["timings"]["units"]["BCCD"], 1.5);
    assert_eq!(m["timings"]["units"]["dice"], 0.5);
    assert!(run.join("BCCD/metrics.json").exists() && run.join("BCCD/log.txt").exists());
    assert!(run.join("dice/error.json").exists());
}

#[test]
fn few_shot_summary_has_means_over_seeds_and_lists_missing_seeds() {
    let dir = scratch();
    let run = dir.path().join("fs");
    few_shot_run(&run);
    let s = read_json(&run.join("summary.json"));
    // Per task: BCCD mean .5, std .1; pothole mean .2, std .1 (ddof 1). Raccoon partial.
    assert_close(&s["tasks"]["BCCD"]["ap"], 0.5, "BCCD ap");
    assert_close(&s["tasks"]["BCCD"]["ap_std"], 0.1, "BCCD std");
    assert_close(&s["tasks"]["pothole"]["ap_std"], 0.1, "pothole std");
    assert_close(&s["tasks"]["BCCD"]["seeds"]["300"], 0.6, "BCCD seed 300");
    assert_eq!(s["tasks"]["Raccoon"]["status"], "partial");
    assert_close(&s["tasks"]["Raccoon"]["ap"], 0.9, "Raccoon partial mean");
    // Suite over the 2 complete tasks: mean .35, median .35; per seed .25/.35/.45 → std .1.
    assert_close(&s["mean_ap"], 0.35, "mean_ap");
    assert_close(&s["median_ap"], 0.35, "median_ap");
    assert_close(&s["per_seed_mean_ap"]["3"], 0.25, "seed 3 mean");
    assert_close(&s["per_seed_mean_ap"]["300"], 0.45, "seed 300 mean");
    assert_close(&s["mean_ap_std_over_seeds"], 0.1, "std over seeds");
    assert_eq!(s["evaluated"], 2);
    assert_eq!(s["expected"], 3);
    assert_eq!(
        s["missing"],
        serde_json::json!(["Raccoon/seed30", "Raccoon/seed300"])
    );
    assert!(run.join("BCCD/seed30/metrics.json").exists());
}

#[test]
fn odinw13_summary_of_an_odinw35_run_flags_the_six_prompt_changes() {
    let dir = scratch();
    let run = dir.path().join("r35");
    let thirteen: Vec<&str> = odinw::registry::tasks(odinw::registry::Suite::Odinw13)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let mut tasks = vec!["BCCD"];
    tasks.extend(&thirteen);
    let store = RunStore::create(
        &run,
        &manifest(Track::ZeroShot, "odinw35", "val", &tasks, &[]),
    )
    .unwrap();
    finish(&store, "BCCD", None, 0.99, -1.0);
    for (i, t) in thirteen.iter().enumerate() {
        finish(&store, t, None, 0.05 * (i + 1) as f64, -1.0);
    }
    let s = read_json(&run.join("summary.json"));
    let o = &s["odinw13"];
    assert_close(&o["mean_ap"], 0.35, "13 mean");
    assert_close(&o["median_ap"], 0.35, "13 median");
    assert_eq!(o["evaluated"], 13);
    assert_eq!(
        o["prompts_differ"],
        serde_json::json!([
            "Aquarium",
            "CottontailRabbits",
            "EgoHands_generic",
            "NorthAmericaMushrooms",
            "Packages",
            "pothole"
        ])
    );
    // Agreeing: positions 1, 7, 8, 9, 10, 11, 13 → (59 × .05) / 7.
    assert_close(
        &o["mean_ap_prompts_agree"],
        59.0 * 0.05 / 7.0,
        "agreeing mean",
    );
    assert_close(&s["mean_ap"], (0.99 + 0.05 * 91.0) / 14.0, "35 mean");
    let out = run_odinw(&["report", run.to_str().unwrap(), "--no-files"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ODinW-13 subset: mean AP 35.0, median AP 35.0, over 13/13 tasks; prompts differ from configs/odinw_13 for Aquarium, CottontailRabbits"), "{text}");
}

#[test]
fn report_files_hold_the_same_numbers_in_every_format() {
    let dir = scratch();
    let run = dir.path().join("zs");
    zero_shot_run(&run);
    let out = run_odinw(&["report", run.to_str().unwrap()]);
    support::assert_ok(&out);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("mean AP 33.3, median AP 30.0, over 3/4 evaluated tasks"),
        "{table}"
    );
    assert!(table.contains("failed: dice: out of memory"), "{table}");
    let rdir = run.join("report");
    for f in [
        "tasks.txt",
        "tasks.csv",
        "tasks.json",
        "tasks.parquet",
        "tasks.md",
        "tasks.tex",
        "chart.svg",
        "chart.png",
    ] {
        assert!(rdir.join(f).exists(), "{f} missing");
    }
    // CSV, parsed back: per-task rows ×100, then mean and median rows.
    let csv = std::fs::read_to_string(rdir.join("tasks.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        ["task", "status", "AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6);
    let num = |s: &str| s.parse::<f64>().unwrap();
    assert_eq!(rows[0][0], "BCCD");
    assert!(close(num(rows[0][2]), 50.0) && close(num(rows[0][3]), 70.0));
    assert_eq!(rows[3][..2], ["dice", "failed"]);
    assert_eq!(rows[3][2], "", "no AP for a failed task");
    assert_eq!(rows[4][..2], ["mean", "3/4 tasks"]);
    assert!(close(num(rows[4][2]), 100.0 / 3.0), "{}", rows[4][2]);
    assert!(close(num(rows[4][3]), (70.0 + 40.0 + 50.0) / 3.0));
    assert!(
        close(num(rows[4][5]), 25.0),
        "APs mean over the one task that has it"
    );
    assert!(close(num(rows[4][8]), (60.0 + 30.0 + 40.0) / 3.0), "AR100");
    assert_eq!(rows[5][0], "median");
    assert!(close(num(rows[5][2]), 30.0));
    // JSON records.
    let json = read_json(&rdir.join("tasks.json"));
    assert_eq!(json[2]["task"], "Raccoon");
    assert_close(&json[2]["APs"], 25.0, "Raccoon APs");
    assert_eq!(json[0]["APs"], Value::Null);
    // Parquet, read back with polars.
    use polars::prelude::*;
    let file = std::fs::File::open(rdir.join("tasks.parquet")).unwrap();
    let df = ParquetReader::new(file).finish().unwrap();
    assert_eq!(df.height(), 6);
    let ap = df.column("AP").unwrap().f64().unwrap();
    assert!(close(ap.get(1).unwrap(), 20.0) && close(ap.get(4).unwrap(), 100.0 / 3.0));
    // Markdown and LaTeX.
    let md = std::fs::read_to_string(rdir.join("tasks.md")).unwrap();
    assert!(md.starts_with("| task | status | AP | AP50 |"), "{md}");
    assert!(
        md.contains("| BCCD | ok | 50.0 | 70.0 | 45.0 | – | 25.0 | 50.0 | 60.0 |"),
        "{md}"
    );
    assert!(md.contains("| mean | 3/4 tasks | 33.3 | 53.3 |"), "{md}");
    let tex = std::fs::read_to_string(rdir.join("tasks.tex")).unwrap();
    assert!(tex.contains("\\begin{tabular}{llrrrrrrr}"), "{tex}");
    assert!(
        tex.contains("Raccoon & ok & 30.0 & 50.0 & 25.0 & 25.0 & 15.0 & 30.0 & 40.0 \\\\"),
        "{tex}"
    );
    assert!(tex.contains("\\midrule\nmean & 3/4 tasks & 33.3"), "{tex}");
    // Chart: one bar per evaluated task; the failed one named instead.
    let svg = std::fs::read_to_string(rdir.join("chart.svg")).unwrap();
    assert_eq!(svg.matches("class=\"bar\"").count(), 3);
    assert!(svg.contains("data-task=\"pothole\"") && svg.contains(">failed</text>"));
    let png = std::fs::read(rdir.join("chart.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    keep_for_demo(&run);
}

#[test]
fn few_shot_tables_show_seed_counts_and_std() {
    let dir = scratch();
    let run = dir.path().join("fs");
    few_shot_run(&run);
    let out = run_odinw(&[
        "report",
        run.to_str().unwrap(),
        "--format",
        "csv",
        "--no-files",
    ]);
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("task,status,seeds,AP,AP_std,AP50"),
        "{csv}"
    );
    assert!(lines[1].starts_with("BCCD,ok,3/3,50.0"), "{csv}");
    assert!(lines[3].starts_with("Raccoon,partial,1/3,90.0"), "{csv}");
    let mean: Vec<&str> = lines[4].split(',').collect();
    assert_eq!(mean[..3], ["mean", "2/3 tasks", ""]);
    assert!(
        close(mean[3].parse().unwrap(), 35.0) && close(mean[4].parse().unwrap(), 10.0),
        "{csv}"
    );
    assert!(!run.join("report").exists(), "--no-files wrote files");
    let out = run_odinw(&["report", run.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("mean AP 35.0 ± 10.0 (sample std over seeds)"),
        "{text}"
    );
    assert!(
        text.contains("missing: Raccoon/seed30, Raccoon/seed300"),
        "{text}"
    );
    let svg = std::fs::read_to_string(run.join("report/chart.svg")).unwrap();
    assert_eq!(svg.matches("class=\"bar\"").count(), 2);
    assert_eq!(
        svg.matches("<circle").count(),
        6,
        "a dot per evaluated seed"
    );
    assert!(svg.contains("partial (1 seeds)"));
    keep_for_demo(&run);
}

#[test]
fn comparison_shows_deltas_over_common_tasks() {
    let dir = scratch();
    let a = dir.path().join("base");
    zero_shot_run(&a);
    let b = dir.path().join("new");
    let m = manifest(
        Track::ZeroShot,
        "odinw35",
        "test",
        &["BCCD", "pothole", "Raccoon", "dice"],
        &[],
    );
    let store = RunStore::create(&b, &m).unwrap();
    finish(&store, "BCCD", None, 0.55, -1.0);
    finish(&store, "pothole", None, 0.1, -1.0);
    finish(&store, "dice", None, 0.4, -1.0);
    let out = run_odinw(&[
        "report",
        a.to_str().unwrap(),
        "--compare",
        b.to_str().unwrap(),
        "--json",
    ]);
    support::assert_ok(&out);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = j["table"].as_array().unwrap();
    assert_eq!(rows[0]["task"], "BCCD");
    assert_close(&rows[0]["ΔAP"], 5.0, "BCCD delta");
    assert_close(&rows[1]["ΔAP50"], -10.0, "pothole AP50 delta");
    assert_eq!(rows[2]["status"], "one run only");
    assert_eq!(rows[2]["ΔAP"], Value::Null);
    assert_eq!(rows[4]["task"], "mean");
    assert_eq!(rows[4]["status"], "2/4 tasks in both");
    assert_close(&rows[4]["AP [base]"], 35.0, "base mean over common");
    assert_close(&rows[4]["AP [new]"], 32.5, "new mean over common");
    assert_close(&rows[4]["ΔAP"], -2.5, "mean delta");
    assert!(a.join("report/compare_new.md").exists());
    let md = std::fs::read_to_string(a.join("report/compare_new.md")).unwrap();
    assert!(md.contains("| BCCD | both | 50.0 | 55.0 | +5.0 |"), "{md}");
}

#[test]
fn strict_exit_codes_and_errors() {
    let dir = scratch();
    let run = dir.path().join("zs");
    zero_shot_run(&run);
    let out = run_odinw(&["report", run.to_str().unwrap(), "--strict", "--no-files"]);
    assert_eq!(out.status.code(), Some(3), "incomplete run with --strict");
    let out = run_odinw(&["report", run.to_str().unwrap(), "--no-files"]);
    assert_eq!(out.status.code(), Some(0));
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run_odinw(&["report", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("is not an odinw run") && err.contains("manifest.json"),
        "{err}"
    );
    std::fs::write(run.join("BCCD/metrics.json"), r#"{"stats": [0.5]}"#).unwrap();
    let out = run_odinw(&["report", run.to_str().unwrap()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("BCCD/metrics.json") && err.contains("has 1 numbers, expected 12"),
        "{err}"
    );
}

#[test]
fn store_refuses_units_outside_the_manifest_and_resumes_compatible_runs() {
    let dir = scratch();
    let run = dir.path().join("fs");
    let store = few_shot_run(&run);
    let err = store.write_log("BCCD", None, "x").unwrap_err().to_string();
    assert!(err.contains("give one"), "{err}");
    let err = store
        .write_log("BCCD", Some(4), "x")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("seed 4 is not one of the run's seeds"),
        "{err}"
    );
    let err = store
        .write_log("Nope", Some(3), "x")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("task Nope is not one of the run's tasks"),
        "{err}"
    );
    let m = manifest(
        Track::FewShot,
        "odinw35",
        "test",
        &["BCCD", "pothole", "Raccoon"],
        &[3, 30, 300],
    );
    assert!(
        RunStore::create(&run, &m).is_err(),
        "create over an existing run"
    );
    let resumed = RunStore::resume(&run, &m).unwrap();
    assert!(resumed.is_done("BCCD", Some(30)) && !resumed.is_done("Raccoon", Some(30)));
    let other = manifest(
        Track::FewShot,
        "odinw35",
        "val",
        &["BCCD", "pothole", "Raccoon"],
        &[3, 30, 300],
    );
    let err = RunStore::resume(&run, &other).err().unwrap().to_string();
    assert!(
        err.contains("its split is test, this command's is val"),
        "{err}"
    );
}

#[test]
fn concurrent_finishes_leave_a_consistent_summary() {
    let dir = scratch();
    let run = dir.path().join("par");
    let tasks: Vec<String> = odinw::registry::tasks(odinw::registry::Suite::Odinw35)
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let names: Vec<&str> = tasks.iter().map(String::as_str).collect();
    let store = RunStore::create(
        &run,
        &manifest(Track::ZeroShot, "odinw35", "test", &names, &[]),
    )
    .unwrap();
    std::thread::scope(|s| {
        for chunk in names.chunks(9) {
            let store = &store;
            s.spawn(move || {
                for t in chunk {
                    finish(store, t, None, 0.4, -1.0);
                }
            });
        }
    });
    let s = read_json(&run.join("summary.json"));
    assert_eq!(s["evaluated"], 35);
    assert_close(&s["mean_ap"], 0.4, "mean");
    let m = read_json(&run.join("manifest.json"));
    assert_eq!(m["timings"]["units"].as_object().unwrap().len(), 35);
}

/// A unit whose files are corrupt is never counted as done: before a resumed run starts,
/// its folder is moved aside (the message names the file and the new place) and it runs
/// again; good units are left alone and the run stays loadable.
#[test]
fn unreadable_units_are_moved_aside_and_run_again() {
    let dir = scratch();
    let run = dir.path().join("zs");
    let store = zero_shot_run(&run);
    // BCCD: metrics cut short. pothole: predictions not JSON. dice: error.json garbage.
    let bccd = store.metrics_path("BCCD", None);
    let text = std::fs::read(&bccd).unwrap();
    std::fs::write(&bccd, &text[..text.len() / 2]).unwrap();
    std::fs::write(store.predictions_path("pothole", None), b"[{\"image_id\": ").unwrap();
    std::fs::write(run.join("dice/error.json"), b"\xff\xfe").unwrap();
    assert!(
        !store.is_done("BCCD", None),
        "a corrupt metrics file counts as done"
    );
    assert!(RunStore::open(&run).is_ok());

    let moved = store.set_aside_unreadable().unwrap();
    assert_eq!(moved.len(), 3, "{moved:#?}");
    for (unit, file) in [
        ("BCCD", "BCCD/metrics.json"),
        ("pothole", "pothole/predictions.json"),
        ("dice", "dice/error.json"),
    ] {
        let line = moved
            .iter()
            .find(|l| l.starts_with(&format!("{unit}:")))
            .unwrap_or_else(|| panic!("{unit} not moved: {moved:#?}"));
        assert!(line.contains(file), "{line}");
        let aside = line.split("moved to ").nth(1).unwrap();
        let aside = Path::new(aside.split(',').next().unwrap());
        assert!(aside.is_dir(), "{line}");
        assert!(
            aside
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{unit}.unreadable-")),
            "{line}"
        );
        assert!(!run.join(unit).exists(), "{unit} still in place");
    }
    // The old bytes are kept where the message says.
    let aside = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("BCCD.unreadable-")
        })
        .unwrap();
    assert_eq!(
        std::fs::read(aside.join("metrics.json")).unwrap(),
        &text[..text.len() / 2]
    );
    // Raccoon is untouched and done; the others are missing, so they run again.
    assert!(store.is_done("Raccoon", None));
    let summary: Value = read_json(&run.join("summary.json"));
    assert_eq!(summary["evaluated"], 1, "{summary}");
    assert_eq!(
        summary["missing"],
        serde_json::json!(["BCCD", "pothole", "dice"])
    );
    assert!(store.set_aside_unreadable().unwrap().is_empty());
    finish(&store, "BCCD", None, 0.5, -1.0);
    assert!(store.is_done("BCCD", None));
}

/// `odinw eval` on the demo suite: a task whose pipeline panics (forced with the test-only
/// `ODINW_TEST_PANIC_TASK`, which panics on a worker thread) fails alone with its error.json
/// and the others finish; resuming re-runs it. A corrupt metrics.json is then moved aside
/// and its task re-run, not "done earlier" forever.
#[test]
fn a_panicking_task_fails_alone_and_corrupt_units_rerun() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let dir = scratch();
    let run = dir.path().join("run");
    let eval = |panic_task: Option<&str>| {
        let mut cmd = support::odinw();
        cmd.args(["eval", "--suite", "demo", "--model"])
            .arg(support::repo("models/demo"))
            .arg("--out")
            .arg(&run)
            .env("ODINW_CACHE", dir.path().join("cache"))
            .env_remove("ODINW_TEST_PANIC_TASK");
        if let Some(t) = panic_task {
            cmd.env("ODINW_TEST_PANIC_TASK", t);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = eval(Some("TexturedShapes"));
    assert_eq!(code, Some(1), "{stderr}");
    let error = read_json(&run.join("TexturedShapes/error.json"));
    let msg = error["error"].as_str().unwrap();
    assert!(
        msg.contains("panicked") && msg.contains("deliberate panic in task TexturedShapes"),
        "{msg}"
    );
    assert!(
        stderr.contains("TexturedShapes") && stderr.contains("FAILED"),
        "{stderr}"
    );
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["evaluated"], 3, "{summary}");
    assert_eq!(summary["failed"][0]["task"], "TexturedShapes", "{summary}");
    for t in ["ColorShapes", "ShapeDescriptions", "NovelShapes"] {
        assert!(run.join(t).join("metrics.json").is_file(), "{t}: {stderr}");
    }

    let (code, stderr) = eval(None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!run.join("TexturedShapes/error.json").exists());
    assert!(stderr.contains("ColorShapes") && stderr.contains("done earlier, skipped"));

    let metrics = run.join("ColorShapes/metrics.json");
    std::fs::write(&metrics, b"{\"stats\": [0.5").unwrap();
    let (code, stderr) = eval(None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("ColorShapes/metrics.json") && stderr.contains("moved to"),
        "{stderr}"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("ColorShapes") && l.contains("skipped")),
        "{stderr}"
    );
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["evaluated"], 4, "{summary}");
    assert!(odinw::run::Metrics::read(&metrics).is_ok());
}

/// A 1×400 image in a task: the task either scores (a decoder that handles it) or fails with
/// the image named in its error.json; never a panic that ends the run.
#[test]
fn a_thin_image_never_ends_the_run() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let dir = scratch();
    let root = dir.path().join("root");
    copy_dir(&support::repo("demo"), &root);
    let victim = root.join("odinw/ShapesDemo/ColorShapes/test/colorshapes_test_003.png");
    assert!(victim.is_file(), "fixture layout changed");
    image::RgbImage::from_pixel(1, 400, image::Rgb([90, 120, 200]))
        .save(&victim)
        .unwrap();
    let run = dir.path().join("run");
    let out = support::odinw()
        .args(["eval", "--suite", "demo", "--model"])
        .arg(support::repo("models/demo"))
        .arg("--root")
        .arg(&root)
        .arg("--out")
        .arg(&run)
        .env("ODINW_CACHE", dir.path().join("cache"))
        .env_remove("ODINW_TEST_PANIC_TASK")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for t in ["TexturedShapes", "ShapeDescriptions", "NovelShapes"] {
        assert!(run.join(t).join("metrics.json").is_file(), "{t}: {stderr}");
    }
    match out.status.code() {
        Some(0) => assert!(run.join("ColorShapes/metrics.json").is_file()),
        Some(1) => {
            let error = read_json(&run.join("ColorShapes/error.json"));
            let msg = error["error"].as_str().unwrap();
            assert!(msg.contains("colorshapes_test_003.png"), "{msg}");
        }
        other => panic!("exit {other:?}: {stderr}"),
    }
}

/// `odinw finetune`: a unit whose training panics fails alone (error.json) and the next
/// task's unit is trained and scored.
#[test]
fn a_panicking_finetune_unit_fails_alone() {
    let dir = scratch();
    let run = dir.path().join("ft");
    let out = support::odinw()
        .args([
            "finetune",
            "--model",
            "demo",
            "--suite",
            "demo",
            "--tasks",
            "NovelShapes,ColorShapes",
            "--track",
            "prompt",
            "--shots",
            "3",
            "--seeds",
            "3",
            "--max-epochs",
            "1",
            "--out",
        ])
        .arg(&run)
        .env("ODINW_TEST_PANIC_TASK", "NovelShapes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error = read_json(&run.join("NovelShapes/seed3/error.json"));
    let msg = error["error"].as_str().unwrap();
    assert!(
        msg.contains("deliberate panic in task NovelShapes"),
        "{msg}"
    );
    assert!(
        odinw::run::Metrics::read(&run.join("ColorShapes/seed3/metrics.json")).is_ok(),
        "{stderr}"
    );
}

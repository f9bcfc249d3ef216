//! `odinw submit` and `odinw submission check`: a submission written from a synthetic run equals
//! the run's predictions and passes the checker; corrupted ones are rejected with the exact
//! reason and exit code 3.
use crate::support;
use crate::support::synthetic_run;

use odinw::postprocess::CocoDetection;
use odinw::registry::{find, Suite};
use odinw::run::{RunStore, Track};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use support::{run_odinw, scratch};
use synthetic_run::{annotation_file, detections, finish, manifest};

/// A dataset root with test annotations for BCCD (3 categories) and pothole (1), 5 images each.
fn dataset_root(dir: &Path) -> PathBuf {
    let root = dir.join("DATASET");
    for (task, cats) in [("BCCD", 3), ("pothole", 1)] {
        let t = find(Suite::Odinw35, task).unwrap();
        annotation_file(&t.ann_file(&root, "test").unwrap(), 5, cats);
    }
    root
}

fn few_shot_run(dir: &Path) -> PathBuf {
    seeded_run(&dir.join("fewshot-run"), Track::FewShot, &[3, 30, 300])
}

/// A run of `track` over `seeds` on BCCD and pothole: units `<task>/seed<S>/`.
fn seeded_run(run: &Path, track: Track, seeds: &[u64]) -> PathBuf {
    let store = RunStore::create(
        run,
        &manifest(track, "odinw35", "test", &["BCCD", "pothole"], seeds),
    )
    .unwrap();
    for (task, cats) in [("BCCD", 3), ("pothole", 1)] {
        for &seed in seeds {
            store
                .write_predictions(task, Some(seed), detections(5, cats, seed))
                .unwrap();
            finish(&store, task, Some(seed), 0.3, -1.0);
        }
    }
    run.to_path_buf()
}

fn zero_shot_run(dir: &Path) -> PathBuf {
    let run = dir.join("zeroshot-run");
    let store = RunStore::create(
        &run,
        &manifest(
            Track::ZeroShot,
            "odinw35",
            "test",
            &["BCCD", "pothole"],
            &[],
        ),
    )
    .unwrap();
    for (task, cats) in [("BCCD", 3), ("pothole", 1)] {
        store
            .write_predictions(task, None, detections(5, cats, 1))
            .unwrap();
        finish(&store, task, None, 0.3, -1.0);
    }
    run
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn submit(run: &Path, out: &Path) {
    let o = run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Runs the checker; returns (exit code, stderr lines of problems, JSON report).
fn check(file: &Path, root: &Path, extra: &[&str]) -> (i32, String, Value) {
    let mut args = vec![
        "submission",
        "check",
        file.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ];
    args.extend(extra);
    let text = run_odinw(&args);
    let mut json_args = args.clone();
    json_args.push("--json");
    let j = run_odinw(&json_args);
    assert_eq!(text.status.code(), j.status.code());
    (
        text.status.code().unwrap(),
        String::from_utf8(text.stderr).unwrap() + &String::from_utf8(text.stdout).unwrap(),
        serde_json::from_slice(&j.stdout).unwrap(),
    )
}

#[test]
fn few_shot_submission_equals_the_run_predictions_and_passes_the_checker() {
    let dir = scratch();
    let root = dataset_root(dir.path());
    let run = few_shot_run(dir.path());
    let out = dir.path().join("submissions/fs.json");
    submit(&run, &out);
    let sub = read(&out);
    let obj = sub.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["BCCD", "pothole"]);
    for task in ["BCCD", "pothole"] {
        assert_eq!(
            sub[task].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["3", "30", "300"]
        );
        for seed in ["3", "30", "300"] {
            let from_run: Vec<CocoDetection> = serde_json::from_value(read(
                &run.join(task).join(format!("seed{seed}/predictions.json")),
            ))
            .unwrap();
            let in_sub: Vec<CocoDetection> =
                serde_json::from_value(sub[task][seed].clone()).unwrap();
            assert_eq!(in_sub, from_run, "{task} seed {seed}");
            assert_eq!(in_sub.len(), 15);
        }
    }
    let (code, text, j) = check(&out, &root, &["--track", "few-shot"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("valid few-shot submission, 2 tasks, 90 results"),
        "{text}"
    );
    assert_eq!(j["valid"], true);
    // The whole suite is required with --suite: the 33 other tasks are named.
    let (code, text, j) = check(&out, &root, &["--suite"]);
    assert_eq!(code, 3);
    assert_eq!(j["problem_counts"]["missing_task"], 33);
    assert!(
        text.contains("task 'Aquarium': is missing (required by --suite odinw35)"),
        "{text}"
    );
    let (_, _, j) = check(&out, &root, &["--suite", "odinw13"]);
    assert_eq!(
        j["problem_counts"]["missing_task"], 12,
        "pothole is one of the 13"
    );
}

#[test]
fn zero_shot_submission_is_a_results_list_per_task() {
    let dir = scratch();
    let root = dataset_root(dir.path());
    let run = zero_shot_run(dir.path());
    let out = dir.path().join("zs.json");
    let o = run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success());
    let w: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (w["tasks"].as_u64(), w["results"].as_u64()),
        (Some(2), Some(30))
    );
    let sub = read(&out);
    let from_run: Vec<CocoDetection> =
        serde_json::from_value(read(&run.join("pothole/predictions.json"))).unwrap();
    let in_sub: Vec<CocoDetection> = serde_json::from_value(sub["pothole"].clone()).unwrap();
    assert_eq!(in_sub, from_run);
    let (code, text, _) = check(&out, &root, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("valid zero-shot/full-shot submission"),
        "{text}"
    );
    let (code, text, _) = check(&out, &root, &["--track", "few-shot"]);
    assert_eq!(code, 3);
    assert!(
        text.contains("task 'BCCD': is a results list, expected seed objects"),
        "{text}"
    );
}

/// A full-shot run (`finetune --shots 0`) over `seeds`: units `<task>/seed<S>/`.
fn full_shot_run(dir: &Path, seeds: &[u64]) -> PathBuf {
    let run = dir.join(format!("fullshot-run-{}", seeds.len()));
    seeded_run(&run, Track::FullShot, seeds)
}

#[test]
fn full_shot_submission_is_one_seeds_results_list_per_task() {
    let dir = scratch();
    let root = dataset_root(dir.path());
    let out = dir.path().join("fs.json");
    let submit_with = |run: &Path, extra: &[&str]| {
        let mut args = vec![
            "submit",
            run.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        run_odinw(&args)
    };
    let run = full_shot_run(dir.path(), &[3, 30]);
    // Two seeds: the leaderboard takes one list per task, so one must be picked.
    let o = submit_with(&run, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("pick one with --seed"), "{err}");
    assert!(!out.exists());
    let o = submit_with(&run, &["--seed", "7"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("has no seed 7 (its seeds: [3, 30])"), "{err}");
    let o = submit_with(&run, &["--seed", "30", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let w: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (w["track"].as_str(), w["seed"].as_u64()),
        (Some("full-shot"), Some(30))
    );
    let sub = read(&out);
    for task in ["BCCD", "pothole"] {
        let from_run: Vec<CocoDetection> =
            serde_json::from_value(read(&run.join(task).join("seed30/predictions.json"))).unwrap();
        let in_sub: Vec<CocoDetection> = serde_json::from_value(sub[task].clone()).unwrap();
        assert_eq!(in_sub, from_run, "{task}: seed 30's results list");
    }
    let (code, text, _) = check(&out, &root, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("valid zero-shot/full-shot submission"),
        "{text}"
    );
    // One seed needs no --seed; a few-shot run refuses one.
    let one = full_shot_run(dir.path(), &[3]);
    assert!(submit_with(&one, &[]).status.success());
    assert_eq!(
        read(&out)["pothole"],
        read(&one.join("pothole/seed3/predictions.json"))
    );
    let few = few_shot_run(dir.path());
    let err = String::from_utf8_lossy(&submit_with(&few, &["--seed", "3"]).stderr).into_owned();
    assert!(
        err.contains("--seed picks one seed of a full-shot run"),
        "{err}"
    );
}

#[test]
fn corrupted_submissions_are_rejected_with_the_exact_reason() {
    let dir = scratch();
    let root = dataset_root(dir.path());
    let run = few_shot_run(dir.path());
    let good = dir.path().join("good.json");
    submit(&run, &good);
    let base = read(&good);
    let ann = |task: &str| {
        find(Suite::Odinw35, task)
            .unwrap()
            .ann_file(&root, "test")
            .unwrap()
            .display()
            .to_string()
    };
    type Corrupt = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Corrupt, String, &str)> = vec![
        (
            "wrong image id",
            Box::new(|v| v["BCCD"]["3"][2]["image_id"] = json!(999)),
            format!("task 'BCCD' seed '3' result #2: image_id 999 is not an image of {}", ann("BCCD")),
            "unknown_image_id",
        ),
        (
            "wrong category id",
            Box::new(|v| v["BCCD"]["30"][4]["category_id"] = json!(7)),
            format!("task 'BCCD' seed '30' result #4: category_id 7 is not a category of {} (valid: 1, 2, 3)", ann("BCCD")),
            "unknown_category_id",
        ),
        (
            "missing seed",
            Box::new(|v| {
                v["pothole"].as_object_mut().unwrap().remove("30");
            }),
            "task 'pothole' seed '30': is missing (few-shot tasks need seeds 3, 30, 300)".into(),
            "missing_seed",
        ),
        (
            "NaN score",
            Box::new(|v| v["BCCD"]["300"][0]["score"] = json!("__NaN__")),
            "task 'BCCD' seed '300' result #0: score is NaN".into(),
            "non_finite_score",
        ),
        (
            "negative width",
            Box::new(|v| v["pothole"]["3"][1]["bbox"] = json!([1.0, 2.0, -4.0, 5.0])),
            "task 'pothole' seed '3' result #1: bbox width is negative (-4) in [1.0,2.0,-4.0,5.0]".into(),
            "negative_size",
        ),
        (
            "unknown task key",
            Box::new(|v| {
                let o = v.as_object_mut().unwrap();
                let x = o.remove("pothole").unwrap();
                o.insert("WildFireSmoke".into(), x);
            }),
            "task 'WildFireSmoke': is not a task key; did you mean 'WildfireSmoke'?".into(),
            "unknown_task",
        ),
        (
            "infinite box",
            Box::new(|v| v["BCCD"]["3"][0]["bbox"][1] = json!("__-Infinity__")),
            "task 'BCCD' seed '3' result #0: bbox[1] (y) is -Infinity".into(),
            "non_finite_bbox",
        ),
        (
            "missing field",
            Box::new(|v| {
                v["BCCD"]["3"][5].as_object_mut().unwrap().remove("score");
            }),
            "task 'BCCD' seed '3' result #5: has no 'score'".into(),
            "missing_field",
        ),
    ];
    for (name, corrupt, expected, kind) in cases {
        let mut v = base.clone();
        corrupt(&mut v);
        // Python's json.dump writes non-finite floats as bare NaN / -Infinity.
        let text = serde_json::to_string(&v)
            .unwrap()
            .replace("\"__NaN__\"", "NaN")
            .replace("\"__-Infinity__\"", "-Infinity");
        let file = dir.path().join(format!("{}.json", name.replace(' ', "_")));
        std::fs::write(&file, text).unwrap();
        let (code, out, j) = check(&file, &root, &[]);
        assert_eq!(code, 3, "{name}: {out}");
        assert!(
            out.contains(&expected),
            "{name}: expected {expected:?} in\n{out}"
        );
        assert_eq!(j["valid"], false);
        assert_eq!(
            j["problem_counts"].as_object().unwrap().len(),
            1,
            "{name}: {}",
            j["problem_counts"]
        );
        assert_eq!(
            j["problem_counts"][kind], 1,
            "{name}: {}",
            j["problem_counts"]
        );
        assert_eq!(j["problems"][0]["kind"], kind);
    }
}

#[test]
fn structural_problems_and_limits() {
    let dir = scratch();
    let root = dataset_root(dir.path());
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let f = write("list.json", "[]");
    let (code, out, _) = check(&f, &root, &[]);
    assert_eq!(code, 3);
    assert!(
        out.contains("the file is a list; a submission is an object"),
        "{out}"
    );
    let f = write(
        "trunc.json",
        r#"{"BCCD": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},"#,
    );
    let (code, out, j) = check(&f, &root, &[]);
    assert_eq!(code, 3);
    assert!(
        out.contains("task 'BCCD' result #1: invalid JSON: EOF while parsing"),
        "{out}"
    );
    assert_eq!(j["problems"][0]["kind"], "invalid_json");
    let f = write(
        "mixed.json",
        r#"{"BCCD": [], "pothole": {"3": [], "30": [], "300": []}}"#,
    );
    let (code, out, _) = check(&f, &root, &[]);
    assert_eq!(code, 3);
    assert!(
        out.contains("tasks BCCD are results lists (zero-/full-shot) but pothole are seed objects"),
        "{out}"
    );
    let many: Vec<Value> = (0..25)
        .map(|_| json!({"image_id": 77, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}))
        .collect();
    let f = write("many.json", &json!({"pothole": many}).to_string());
    let (code, out, j) = check(&f, &root, &["--max-examples", "3"]);
    assert_eq!(code, 3);
    assert_eq!(j["problem_counts"]["unknown_image_id"], 25);
    assert_eq!(j["problems"].as_array().unwrap().len(), 3);
    assert_eq!(j["problems_not_shown"], 22);
    assert!(out.contains("... and 22 more"), "{out}");
    // Without annotations the ids cannot be checked: a named problem, unless --no-ids.
    let f = write(
        "ok.json",
        r#"{"pothole": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]}"#,
    );
    let (code, out, _) = check(&f, &dir.path().join("nowhere"), &[]);
    assert_eq!(code, 3);
    assert!(
        out.contains("task 'pothole': cannot check ids: reading"),
        "{out}"
    );
    let o = run_odinw(&["submission", "check", f.to_str().unwrap(), "--no-ids"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn submit_refuses_incomplete_runs_and_other_splits() {
    let dir = scratch();
    let run = dir.path().join("part");
    let store = RunStore::create(
        &run,
        &manifest(
            Track::ZeroShot,
            "odinw35",
            "test",
            &["BCCD", "pothole"],
            &[],
        ),
    )
    .unwrap();
    store
        .write_predictions("BCCD", None, detections(2, 3, 0))
        .unwrap();
    finish(&store, "BCCD", None, 0.3, -1.0);
    let out = dir.path().join("s.json");
    let o = run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("has no predictions for 1 of 2 units: pothole"),
        "{err}"
    );
    assert!(!out.exists());
    let o = run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--allow-missing",
    ]);
    assert!(o.status.success());
    assert_eq!(read(&out).as_object().unwrap().len(), 1);
    let val = dir.path().join("val");
    RunStore::create(
        &val,
        &manifest(Track::ZeroShot, "odinw35", "val", &["BCCD"], &[]),
    )
    .unwrap();
    let o = run_odinw(&[
        "submit",
        val.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("evaluated the 'val' split; the leaderboard scores test-split predictions"),
        "{err}"
    );
}

#[test]
fn key_maps_rename_keys_in_submissions_and_checks() {
    let dir = scratch();
    let root = dataset_root(dir.path());
    let run = zero_shot_run(dir.path());
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, r#"{"pothole": "Pothole"}"#).unwrap();
    let out = dir.path().join("k.json");
    let o = run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(read(&out).get("Pothole").is_some());
    let (code, _, _) = check(&out, &root, &["--keys", keys.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (code, text, _) = check(&out, &root, &[]);
    assert_eq!(code, 3);
    assert!(
        text.contains("task 'Pothole': is not a task key; did you mean 'pothole'?"),
        "{text}"
    );
}

#[test]
fn numbers_pass_through_submit_exactly() {
    // Written by Python (repr: shortest round-trip digits); a parser that is not correctly
    // rounded reads 483.89999746008573 as 483.8999974600858.
    let dir = scratch();
    let run = dir.path().join("exact");
    let store = RunStore::create(
        &run,
        &manifest(Track::ZeroShot, "odinw35", "test", &["BCCD"], &[]),
    )
    .unwrap();
    let text = r#"[{"image_id": 1, "category_id": 2, "bbox": [483.89999746008573, 179.02468734749417, 89.27440532224756, 22.625829964607938], "score": 0.13927370519815263}]"#;
    std::fs::create_dir_all(store.task_dir("BCCD", None)).unwrap();
    std::fs::write(store.predictions_path("BCCD", None), text).unwrap();
    let out = dir.path().join("exact.json");
    submit(&run, &out);
    let sub = std::fs::read_to_string(&out).unwrap();
    for number in [
        "483.89999746008573",
        "179.02468734749417",
        "89.27440532224756",
        "22.625829964607938",
        "0.13927370519815263",
    ] {
        assert!(sub.contains(number), "{number} changed on the way: {sub}");
    }
}

/// `submit` names the run's suite in the check command it prints, and `submission check
/// --suite demo` reads the bundled demo annotations without `--root`, as `eval` does (also
/// with `$ODINW_ROOT` pointing elsewhere): a valid demo submission passes.
#[test]
fn demo_submissions_check_against_the_bundled_data_by_default() {
    let dir = scratch();
    let demo = support::repo("demo");
    let tasks: Vec<&str> = odinw::registry::tasks(Suite::Demo)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let run = dir.path().join("demo-run");
    let store = RunStore::create(
        &run,
        &manifest(Track::ZeroShot, "demo", "test", &tasks, &[]),
    )
    .unwrap();
    for t in odinw::registry::tasks(Suite::Demo) {
        let ann = read(&t.ann_file(&demo, "test").unwrap());
        let dets: Vec<CocoDetection> = ann["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|im| CocoDetection {
                image_id: im["id"].as_u64().unwrap(),
                category_id: t.categories[0].id,
                bbox: [1.0, 2.0, 3.0, 4.0],
                score: 0.5,
            })
            .collect();
        store.write_predictions(&t.name, None, dets).unwrap();
        finish(&store, &t.name, None, 0.3, -1.0);
    }
    let sub = dir.path().join("demo-sub.json");
    let o = run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        sub.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("check it with: odinw "))
        .unwrap_or_else(|| panic!("no check command in {stdout}"));
    assert!(printed.ends_with("--suite demo"), "{printed}");
    // The printed command, run as printed, passes.
    let empty = dir.path().join("elsewhere");
    std::fs::create_dir_all(&empty).unwrap();
    let out = support::odinw()
        .args(printed.split_whitespace())
        .env("ODINW_ROOT", &empty)
        .env("ODINW_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("valid zero-shot") && text.contains("4 tasks, 80 results"),
        "{text}"
    );
    // ... against the bundled demo data (unpacked into the cache), not $ODINW_ROOT.
    assert!(
        text.contains(&dir.path().join("cache").display().to_string()),
        "{text}"
    );
    // A wrong id is still caught against the bundled annotations.
    let mut bad = read(&sub);
    bad[tasks[0]][0]["image_id"] = json!(987654);
    std::fs::write(&sub, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = support::odinw()
        .args([
            "submission",
            "check",
            sub.to_str().unwrap(),
            "--suite",
            "demo",
        ])
        .env("ODINW_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // A run of some of a suite's tasks does not print --suite (it would require the others).
    let part = zero_shot_run(dir.path());
    let o = run_odinw(&[
        "submit",
        part.to_str().unwrap(),
        "--out",
        dir.path().join("part.json").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(!stdout.contains("--suite"), "{stdout}");
}

/// `submission check` names a task key that appears twice, a seed that appears twice in a
/// task and a seed the track does not have, each as the one problem of its file (exit 3).
/// The files are written as text: a JSON object type would merge the repeated keys.
#[test]
fn duplicate_keys_and_seeds_and_unknown_seeds_are_named() {
    let dir = scratch();
    let root = dataset_root(dir.path());
    let run = few_shot_run(dir.path());
    let good = dir.path().join("good.json");
    submit(&run, &good);
    let base = read(&good);
    let text = |v: &Value| serde_json::to_string(v).unwrap();
    let seeds = |task: &str, extra: &str| {
        let s = &base[task];
        format!(
            "{{\"3\": {}, \"30\": {}, \"300\": {}{extra}}}",
            text(&s["3"]),
            text(&s["30"]),
            text(&s["300"])
        )
    };
    let cases = [
        (
            "duplicate task key",
            format!(
                "{{\"BCCD\": {}, \"pothole\": {}, \"BCCD\": {}}}",
                seeds("BCCD", ""),
                seeds("pothole", ""),
                seeds("BCCD", "")
            ),
            "task 'BCCD': appears twice in the file",
            "duplicate_task",
        ),
        (
            "duplicate seed",
            format!(
                "{{\"BCCD\": {}, \"pothole\": {}}}",
                seeds("BCCD", ""),
                seeds(
                    "pothole",
                    &format!(", \"3\": {}", text(&base["pothole"]["3"]))
                )
            ),
            "task 'pothole' seed '3': appears twice",
            "duplicate_seed",
        ),
        (
            "unknown seed",
            format!(
                "{{\"BCCD\": {}, \"pothole\": {}}}",
                seeds("BCCD", ", \"5\": []"),
                seeds("pothole", "")
            ),
            "task 'BCCD' seed '5': is not a required seed (3, 30, 300)",
            "unknown_seed",
        ),
    ];
    // The hand-written layout itself is valid.
    let file = dir.path().join("layout.json");
    let layout = format!(
        "{{\"BCCD\": {}, \"pothole\": {}}}",
        seeds("BCCD", ""),
        seeds("pothole", "")
    );
    std::fs::write(&file, layout).unwrap();
    let (code, out, _) = check(&file, &root, &[]);
    assert_eq!(code, 0, "{out}");
    for (name, contents, expected, kind) in cases {
        let file = dir.path().join(format!("{}.json", name.replace(' ', "_")));
        std::fs::write(&file, contents).unwrap();
        let (code, out, j) = check(&file, &root, &[]);
        assert_eq!(code, 3, "{name}: {out}");
        assert!(
            out.contains(expected),
            "{name}: expected {expected:?} in\n{out}"
        );
        assert_eq!(
            j["problem_counts"],
            json!({ kind: 1 }),
            "{name}: {}",
            j["problems"]
        );
        assert_eq!(j["valid"], false);
    }
}

/// A run on another split than test: `submit` refuses it unless `--any-split`, and with it
/// prints a check command that carries `--split`; that command, run as printed (with the
/// dataset root added), checks against that split's annotations and passes. A test-split run's
/// command has no `--split`.
#[test]
fn submit_any_split_prints_the_split_in_its_check_command() {
    let dir = scratch();
    let root = dir.path().join("DATASET");
    let bccd = find(Suite::Odinw35, "BCCD").unwrap();
    // Val annotations with the run's 5 images; the test split has only 2, so checking the
    // submission against test would fail.
    annotation_file(&bccd.ann_file(&root, "val").unwrap(), 5, 3);
    annotation_file(&bccd.ann_file(&root, "test").unwrap(), 2, 3);
    let run = dir.path().join("val-run");
    let store = RunStore::create(
        &run,
        &manifest(Track::ZeroShot, "odinw35", "val", &["BCCD"], &[]),
    )
    .unwrap();
    store
        .write_predictions("BCCD", None, detections(5, 3, 2))
        .unwrap();
    finish(&store, "BCCD", None, 0.3, -1.0);
    let sub = dir.path().join("val.json");
    let args = [
        "submit",
        run.to_str().unwrap(),
        "--out",
        sub.to_str().unwrap(),
    ];
    let o = run_odinw(&args);
    assert_eq!(o.status.code(), Some(1), "{}", support::text(&o));
    assert!(!sub.exists());
    let o = run_odinw(&[&args[..], &["--any-split"][..]].concat());
    support::assert_ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let printed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("check it with: odinw "))
        .unwrap_or_else(|| panic!("no check command in {stdout}"));
    assert_eq!(
        printed,
        format!("submission check {} --split val", sub.display())
    );
    let (code, out, _) = check(&sub, &root, &["--split", "val"]);
    assert_eq!(code, 0, "{out}");
    // Without --split the same file is checked against the test split, which lacks images.
    let (code, out, _) = check(&sub, &root, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("is not an image of"), "{out}");

    let test_run = zero_shot_run(dir.path());
    let o = run_odinw(&[
        "submit",
        test_run.to_str().unwrap(),
        "--out",
        dir.path().join("test.json").to_str().unwrap(),
    ]);
    support::assert_ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("check it with: odinw submission check"),
        "{stdout}"
    );
    assert!(!stdout.contains("--split"), "{stdout}");
}

//! `odinw score` on bad input: every case fails with exit code 1 and a message that names the
//! file and the problem (with the line and record where there is one), never a panic, and
//! prints no summary.
use crate::support;

use support::{eval_cases, run_odinw, run_score, scratch};

const GOOD_GT: &str = r#"{"images": [{"id": 1}, {"id": 2}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "cell"}]}"#;
const GOOD_DT: &str =
    r#"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]"#;

/// What is wrong with `odinw score`'s answer to the given file contents, if anything: it must
/// fail with exit code 1, no panic and no summary, and a message that names `file` and
/// contains every phrase in `expect`.
fn refusal_problems(gt: &[u8], dt: &[u8], file: &str, expect: &[&str]) -> Vec<String> {
    let out = score(gt, dt);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(1) {
        problems.push(format!("exit {:?}, not 1", out.status.code()));
    }
    if stderr.contains("panicked") {
        problems.push("panicked".into());
    }
    if !out.stdout.is_empty() {
        problems.push("printed a summary despite the error".into());
    }
    for phrase in std::iter::once(&file).chain(expect) {
        if !stderr.contains(phrase) {
            problems.push(format!("no {phrase:?} in the message"));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("stderr: {stderr}"));
    }
    problems
}

/// Asserts [`refusal_problems`] finds none.
fn fails_bytes(gt: &[u8], dt: &[u8], file: &str, expect: &[&str]) {
    let problems = refusal_problems(gt, dt, file, expect);
    assert!(problems.is_empty(), "{expect:?}: {}", problems.join("; "));
}

/// Runs every refused case (tests/fixtures/eval_cases/refused/) whose bad file is `file`;
/// panics listing each failing case by name. Returns how many ran.
fn run_refused_cases(file: &str) -> usize {
    let mut ran = 0;
    let mut failures = Vec::new();
    for (stem, case) in eval_cases::load("refused") {
        if case["file"] != file {
            continue;
        }
        let expect: Vec<&str> = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let (gt, dt) = (eval_cases::text(&case, "gt"), eval_cases::text(&case, "dt"));
        let problems = refusal_problems(gt.as_bytes(), dt.as_bytes(), file, &expect);
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({stem}.json): {}",
                case["name"],
                problems.join("; ")
            ));
        }
        ran += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    ran
}

/// Broken ground-truth files (data: tests/fixtures/eval_cases/refused/truth-*.json).
#[test]
fn bad_ground_truth_is_reported() {
    assert_eq!(run_refused_cases("truth.json"), 14);
}

/// Broken results files (data: tests/fixtures/eval_cases/refused/results-*.json), and a large
/// one whose error must be as precise.
#[test]
fn bad_results_are_reported() {
    assert_eq!(run_refused_cases("results.json"), 13);
    const GOOD_DT_ITEM: &str =
        r#"{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}"#;
    // A large file goes through the parallel parser; its errors must be as precise.
    let mut big: Vec<String> = (0..40_000).map(|_| GOOD_DT_ITEM.to_string()).collect();
    big[31_234] = r#"{"image_id": 1, "category_id": 1, "bbox": [0, 0, 3, 1], "score": [1]}"#.into();
    fails_bytes(
        GOOD_GT.as_bytes(),
        format!("[{}]", big.join(",\n")).as_bytes(),
        "results.json",
        &["results[31234]", "line 31235", "score must be a number"],
    );
}

#[test]
fn missing_files_are_reported() {
    let dir = scratch();
    let out = run_odinw(&[
        "score",
        "--gt",
        dir.path().join("nope.json").to_str().unwrap(),
        "--dt",
        "x.json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("cannot read") && stderr.contains("nope.json"),
        "{stderr}"
    );
}

/// Python reads a JSON file as UTF-8 before parsing it, so pycocotools refuses a file with an
/// invalid byte anywhere: in a value, in a key (not a "missing field"), in a value the
/// evaluator skips. Each case is checked against Python's json when it is available.
#[test]
fn invalid_utf8_is_refused_as_python_refuses_it() {
    let python = support::python_with(&["json"]);
    let dt_cases: [&[u8]; 4] = [
        b"[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 10, 10], \"score\": 0.9, \"note\": \"\xff\"}]",
        b"[{\"image_\xc3id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 10, 10], \"score\": 0.9}]",
        // An encoded surrogate (CESU-8) and an overlong '/' are not UTF-8 either.
        b"[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 10, 10], \"score\": 0.9, \"x\": \"\xed\xa0\x80\"}]",
        b"[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 10, 10], \"score\": 0.9, \"\xc0\xaf\": 1}]",
    ];
    for dt in dt_cases {
        fails_bytes(
            GOOD_GT.as_bytes(),
            dt,
            "results.json",
            &["line 1", "not valid UTF-8"],
        );
        assert!(!stderr_of_score(GOOD_GT.as_bytes(), dt).contains("missing"));
        if let Some(py) = &python {
            assert!(!python_reads(py, dt), "Python's json reads {dt:?}");
        }
    }
    // A category name with a valid character, and with an invalid byte in its place.
    let gt = GOOD_GT.replace("\"cell\"", "\"c\u{e9}ll\"").into_bytes();
    let at = gt
        .windows(2)
        .position(|w| w == "\u{e9}".as_bytes())
        .unwrap();
    let mut bad = gt.clone();
    bad.splice(at..at + 2, [0xfe]);
    fails_bytes(&bad, GOOD_DT.as_bytes(), "truth.json", &["not valid UTF-8"]);
    if let Some(py) = &python {
        assert!(!python_reads(py, &bad));
        // The same file with a valid character is read by both.
        assert!(python_reads(py, &gt));
    }
}

/// `odinw score` on ground truth `gt` (as `truth.json`) and results `dt` (`results.json`).
fn score(gt: &[u8], dt: &[u8]) -> std::process::Output {
    let dir = scratch();
    let (g, d) = (
        dir.path().join("truth.json"),
        dir.path().join("results.json"),
    );
    std::fs::write(&g, gt).unwrap();
    std::fs::write(&d, dt).unwrap();
    run_score(&g, &d, &[])
}

fn stderr_of_score(gt: &[u8], dt: &[u8]) -> String {
    String::from_utf8_lossy(&score(gt, dt).stderr).into_owned()
}

/// Whether Python's json reads `bytes` as pycocotools opens a file (text mode, UTF-8).
fn python_reads(python: &std::path::Path, bytes: &[u8]) -> bool {
    let dir = scratch();
    let f = dir.path().join("f.json");
    std::fs::write(&f, bytes).unwrap();
    std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys; json.load(open(sys.argv[1], encoding='utf-8'))",
        ])
        .arg(&f)
        .output()
        .unwrap()
        .status
        .success()
}

/// `score --json` into a folder that does not exist is an error naming the folder; nothing
/// is created (a mistyped path must not become a folder tree).
#[test]
fn json_report_into_a_missing_folder_is_an_error() {
    let dir = scratch();
    let (g, d) = (
        dir.path().join("truth.json"),
        dir.path().join("results.json"),
    );
    std::fs::write(&g, GOOD_GT).unwrap();
    std::fs::write(&d, GOOD_DT).unwrap();
    let missing = dir.path().join("no/such");
    let report = missing.join("x.json");
    let out = run_score(&g, &d, &["--json", report.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!dir.path().join("no").exists(), "created the folder");
    // Into an existing folder it is written.
    let ok = dir.path().join("report.json");
    let out = run_score(&g, &d, &["--json", ok.to_str().unwrap()]);
    support::assert_ok(&out);
    assert!(ok.is_file());
}

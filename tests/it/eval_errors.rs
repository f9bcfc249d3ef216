//! `odinw score` on bad input: every case fails with exit code 1 and a message that names the
//! file and the problem (with the line and record where there is one), never a panic, and
//! prints no summary.
use crate::support;

use support::{run_odinw, scratch};

const GOOD_GT: &str = r#"{"images": [{"id": 1}, {"id": 2}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "cell"}]}"#;
const GOOD_DT: &str =
    r#"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]"#;

/// Runs `odinw score` with the given file contents; asserts failure and that stderr names
/// `file` and contains every phrase in `expect`.
fn fails(gt: &str, dt: &str, file: &str, expect: &[&str]) {
    fails_bytes(gt.as_bytes(), dt.as_bytes(), file, expect)
}

/// [`fails`] for contents that need not be UTF-8.
fn fails_bytes(gt: &[u8], dt: &[u8], file: &str, expect: &[&str]) {
    let dir = scratch();
    let g = dir.path().join("truth.json");
    let d = dir.path().join("results.json");
    std::fs::write(&g, gt).unwrap();
    std::fs::write(&d, dt).unwrap();
    let out = run_odinw(&[
        "score",
        "--gt",
        g.to_str().unwrap(),
        "--dt",
        d.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected failure for {expect:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "printed a summary despite the error");
    assert!(
        stderr.contains(file),
        "message does not name {file}: {stderr}"
    );
    for phrase in expect {
        assert!(stderr.contains(phrase), "missing {phrase:?} in: {stderr}");
    }
}

fn gt_with_ann(fields: &str) -> String {
    format!(
        r#"{{"images": [{{"id": 1}}], "annotations": [{{{fields}}}], "categories": [{{"id": 1}}]}}"#
    )
}

#[test]
fn bad_ground_truth_is_reported() {
    let t = "truth.json";
    fails(
        r#"{"images": ["#,
        GOOD_DT,
        t,
        &["line 1", "unexpected end of file"],
    );
    fails("[]", GOOD_DT, t, &["must be a JSON object"]);
    fails(
        r#"{"annotations": [], "categories": []}"#,
        GOOD_DT,
        t,
        &["no \"images\" list"],
    );
    fails(
        r#"{"images": [], "annotations": []}"#,
        GOOD_DT,
        t,
        &["no \"categories\" list"],
    );
    fails(
        &gt_with_ann(r#""id": 1, "image_id": 1, "category_id": 1"#),
        GOOD_DT,
        t,
        &["annotations[0]", "missing \"bbox\""],
    );
    fails(
        &gt_with_ann(r#""id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, -1]"#),
        GOOD_DT,
        t,
        &["annotations[0]", "negative width or height"],
    );
    fails(
        &gt_with_ann(r#""id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10]"#),
        GOOD_DT,
        t,
        &["bbox must have 4 numbers"],
    );
    fails(
        &gt_with_ann(
            r#""id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": NaN"#,
        ),
        GOOD_DT,
        t,
        &["line 1", "NaN"],
    );
    fails(
        &gt_with_ann(
            r#""id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": -4"#,
        ),
        GOOD_DT,
        t,
        &["area -4 is negative"],
    );
    fails(
        &gt_with_ann(
            r#""id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": "yes""#,
        ),
        GOOD_DT,
        t,
        &["iscrowd must be 0 or 1"],
    );
    fails(
        &gt_with_ann(r#""id": "a1", "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]"#),
        GOOD_DT,
        t,
        &["id must be an integer"],
    );
    fails(
        r#"{"images": [{"id": 1}, {"id": "2"}], "annotations": [], "categories": [{"id": 1}]}"#,
        GOOD_DT,
        t,
        &["image ids mix integers and strings"],
    );
    fails(
        &format!("\u{feff}{GOOD_GT}"),
        GOOD_DT,
        t,
        &["byte-order mark"],
    );
    fails(&format!("{GOOD_GT} {{}}"), GOOD_DT, t, &["extra data"]);
}

#[test]
fn bad_results_are_reported() {
    let r = "results.json";
    let one = |fields: &str| format!("[{GOOD_DT_ITEM}, {{{fields}}}]");
    const GOOD_DT_ITEM: &str =
        r#"{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}"#;
    fails(
        GOOD_GT,
        r#"[{"image_id": 1,}]"#,
        r,
        &["line 1", "expected a string key"],
    );
    fails(GOOD_GT, r#"{"image_id": 1}"#, r, &["must be a JSON list"]);
    fails(GOOD_GT, "[]", r, &["empty"]);
    fails(GOOD_GT, "[1, 2]", r, &["results[0]", "must be an object"]);
    fails(
        GOOD_GT,
        &one(r#""image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]"#),
        r,
        &["results[1]", "missing \"score\""],
    );
    fails(
        GOOD_GT,
        &one(r#""image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": Infinity"#),
        r,
        &["results[1]", "NaN and Infinity"],
    );
    fails(
        GOOD_GT,
        &one(r#""image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1e999"#),
        r,
        &["results[1]", "out of the range of a double"],
    );
    fails(
        GOOD_GT,
        &one(r#""image_id": 1, "category_id": 1, "bbox": [0, 0, -3, 1], "score": 0.5"#),
        r,
        &["results[1]", "negative width or height"],
    );
    fails(
        GOOD_GT,
        &one(r#""image_id": 7, "category_id": 1, "bbox": [0, 0, 3, 1], "score": 0.5"#),
        r,
        &[
            "results[1]",
            "image_id 7 is not an image of the ground truth",
        ],
    );
    fails(
        GOOD_GT,
        &one(r#""image_id": 1, "category_id": 1, "bbox": "0 0 3 1", "score": 0.5"#),
        r,
        &["bbox must be an array"],
    );
    fails(
        GOOD_GT,
        &one(r#""image_id": 1, "category_id": 1, "bbox": [0, 0, 3, 1], "score": "0.5""#),
        r,
        &["score must be a number"],
    );
    fails(
        GOOD_GT,
        &one(r#""image_id": null, "category_id": 1, "bbox": [0, 0, 3, 1], "score": 0.5"#),
        r,
        &["image_id must be an integer or a string"],
    );
    fails(GOOD_GT, &format!("{GOOD_DT} ]"), r, &["extra data"]);
    // A large file goes through the parallel parser; its errors must be as precise.
    let mut big: Vec<String> = (0..40_000).map(|_| GOOD_DT_ITEM.to_string()).collect();
    big[31_234] = r#"{"image_id": 1, "category_id": 1, "bbox": [0, 0, 3, 1], "score": [1]}"#.into();
    fails(
        GOOD_GT,
        &format!("[{}]", big.join(",\n")),
        r,
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

fn stderr_of_score(gt: &[u8], dt: &[u8]) -> String {
    let dir = scratch();
    let (g, d) = (
        dir.path().join("truth.json"),
        dir.path().join("results.json"),
    );
    std::fs::write(&g, gt).unwrap();
    std::fs::write(&d, dt).unwrap();
    let out = run_odinw(&[
        "score",
        "--gt",
        g.to_str().unwrap(),
        "--dt",
        d.to_str().unwrap(),
    ]);
    String::from_utf8_lossy(&out.stderr).into_owned()
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
    let out = run_odinw(&[
        "score",
        "--gt",
        g.to_str().unwrap(),
        "--dt",
        d.to_str().unwrap(),
        "--json",
        report.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!dir.path().join("no").exists(), "created the folder");
    // Into an existing folder it is written.
    let ok = dir.path().join("report.json");
    let out = run_odinw(&[
        "score",
        "--gt",
        g.to_str().unwrap(),
        "--dt",
        d.to_str().unwrap(),
        "--json",
        ok.to_str().unwrap(),
    ]);
    support::assert_ok(&out);
    assert!(ok.is_file());
}

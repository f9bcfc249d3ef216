//! The 37 edge cases of the COCO-eval spec (Appendix A, `tests/fixtures/eval/spec_appendix_a.jsonl`),
//! each with the 12 stats pycocotools 2.0.11 printed for it: `odinw score` must give exactly
//! those doubles. The cases pycocotools rejects are rejected; the few where odinw deliberately
//! differs are checked for that documented behaviour instead.
use crate::support;

use serde_json::Value;
use std::path::Path;
use support::{run_odinw, scratch};

const CASES: &str = include_str!("../fixtures/eval/spec_appendix_a.jsonl");

/// Runs `odinw score` on one case; returns (exit code, stdout, stderr, report JSON if any).
fn score(dir: &Path, gt: &str, dt: &str, extra: &[&str]) -> (i32, String, String, Option<Value>) {
    let (g, d, o) = (
        dir.join("gt.json"),
        dir.join("dt.json"),
        dir.join("out.json"),
    );
    std::fs::write(&g, gt).unwrap();
    std::fs::write(&d, dt).unwrap();
    let _ = std::fs::remove_file(&o);
    let mut args = vec![
        "score",
        "--gt",
        g.to_str().unwrap(),
        "--dt",
        d.to_str().unwrap(),
        "--json",
        o.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_odinw(&args);
    let report = std::fs::read(&o)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    )
}

fn stats_of(report: &Value) -> Vec<f64> {
    report["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn spec_appendix_cases_match_pycocotools_exactly() {
    let dir = scratch();
    let mut exact = 0;
    for line in CASES.lines() {
        // Case 35 uses Python's non-standard NaN token; keep it for the file, hide it from serde.
        let parsable = line.replace("\"score\":NaN", "\"score\":\"__NaN__\"");
        let case: Value = serde_json::from_str(&parsable).unwrap();
        let name = case["case"].as_str().unwrap().to_string();
        let number = &name[..2];
        let gt = case["gt"].to_string();
        let dt = case["dt"].to_string().replace("\"__NaN__\"", "NaN");
        let (code, stdout, stderr, report) = score(dir.path(), &gt, &dt, &[]);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        match number {
            // pycocotools raises KeyError for a GT without iscrowd; odinw reads it as 0 and
            // says so (the issue asks for GT with or without area/iscrowd to be accepted).
            "15" => {
                assert_eq!(code, 0, "{name}: {stderr}");
                assert!(stderr.contains("no \"iscrowd\""), "{name}: {stderr}");
                continue;
            }
            // class-agnostic evaluation (useCats=0) is not offered.
            "26" => continue,
            // Rejected by odinw on purpose: a negative width (25) and a NaN score (35) are
            // broken inputs that pycocotools would silently rank.
            "25" => {
                assert_eq!(code, 1, "{name}");
                assert!(stderr.contains("negative width"), "{name}: {stderr}");
                assert!(
                    stderr.contains("dt.json") && stderr.contains("results[1]"),
                    "{stderr}"
                );
                continue;
            }
            "35" => {
                assert_eq!(code, 1, "{name}");
                assert!(stderr.contains("NaN"), "{name}: {stderr}");
                continue;
            }
            _ => {}
        }
        let expected = &case["pycocotools_stats"];
        if let Some(exception) = expected.as_str() {
            assert_eq!(
                code, 1,
                "{name}: pycocotools raises {exception}; odinw must fail"
            );
            match number {
                "20" => assert!(
                    stderr.contains("not an image of the ground truth"),
                    "{stderr}"
                ),
                "21" => assert!(stderr.contains("empty"), "{stderr}"),
                _ => panic!("{name}: unexpected error case {exception}"),
            }
            continue;
        }
        assert_eq!(code, 0, "{name}: {stderr}");
        let want: Vec<f64> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().parse().unwrap())
            .collect();
        let got = stats_of(report.as_ref().unwrap());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name}: stat {i}: {g:?} != {w:?}");
        }
        // The printed summary rounds the same numbers.
        assert_eq!(stdout.lines().count(), 12, "{name}");
        exact += 1;
    }
    assert_eq!(exact, 31, "cases compared number for number");
}

//! The evaluation cases kept as data, `tests/fixtures/eval_cases/<kind>/<case>.json`, one file
//! a case, each with its `name`: `pycocotools/` (a ground truth `gt` and results `dt`, as JSON,
//! and `fix_id0`: scored by odinw and by pycocotools, which must agree to the bit) and
//! `refused/` (`gt` and `dt` as text, the `file` that is bad and the phrases its error must
//! `expect`). The spec's edge cases with pycocotools' printed stats are one JSON line each in
//! `spec_appendix_a.jsonl` there (`eval_spec_cases.rs`). Each runner runs every case and reports
//! each failing one by name.
use serde_json::Value;

/// Every case of `kind`, in file-name order: (file stem, case).
pub fn load(kind: &str) -> Vec<(String, Value)> {
    let dir = super::repo("tests/fixtures/eval_cases").join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, super::read_json(p))
        })
        .collect()
}

/// A case's text field (`gt` or `dt`): a string as it is (the bytes to write, broken or
/// not), anything else as JSON.
pub fn text(case: &Value, key: &str) -> String {
    match &case[key] {
        Value::String(s) => s.clone(),
        Value::Null => panic!("case {} has no {key:?}", case["name"]),
        v => serde_json::to_string(v).unwrap(),
    }
}

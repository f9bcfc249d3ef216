//! scripts/eval_glip_onnx.py, the Python reference the zero-shot tests compare `odinw eval`
//! with, must query GLIP's caption: for all 48 registry task records (odinw_35/ and odinw_13/),
//! with and without CAPTION_PROMPT, its caption and each class's tokens equal
//! `odinw prompt --json`'s (the same tokenizer.json on both sides).
use crate::support;

use serde_json::Value;
use std::path::Path;

#[test]
fn python_reference_caption_is_odinw_prompt_for_every_task_record() {
    let Some(python) = support::python_with(&["tokenizers", "numpy", "onnxruntime", "PIL"]) else {
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tokenizer = repo.join("models/bert-base-uncased/tokenizer.json");
    let mut records = Vec::new();
    for (dir, suite) in [("odinw_35", "odinw35"), ("odinw_13", "odinw13")] {
        let mut files: Vec<_> = std::fs::read_dir(repo.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        records.extend(files.into_iter().map(|p| (p, suite)));
    }
    assert_eq!(records.len(), 48, "35 + 13 task records");
    let mut args = vec![tokenizer.to_str().unwrap().to_string()];
    args.extend(records.iter().map(|(p, _)| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let oracle: Value = serde_json::from_str(&support::run_oracle(
        &python,
        "reference_captions.py",
        &args,
    ))
    .unwrap();
    let (mut with_prompt, mut prompted_records) = (0, 0);
    for (path, suite) in &records {
        let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        if !record["caption_prompt"].is_null() {
            prompted_records += 1;
        }
        let name = record["name"].as_str().unwrap();
        for mode in ["prompt", "no-prompt"] {
            let key = format!("{}/{mode}", path.display());
            let want = &oracle[&key];
            let mut cmd = vec![
                "prompt",
                name,
                "--suite",
                suite,
                "--tokenizer",
                tokenizer.to_str().unwrap(),
                "--json",
            ];
            if mode == "no-prompt" {
                cmd.push("--no-prompt");
            }
            let out = support::run_odinw(&cmd);
            assert!(
                out.status.success(),
                "{key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(got["caption"], want["caption"], "{key}: caption");
            let classes: Vec<Value> = got["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| serde_json::json!([c["id"], c["tokens"]]))
                .collect();
            assert_eq!(
                Value::Array(classes),
                want["classes"],
                "{key}: class tokens"
            );
            if mode == "prompt"
                && got["caption"] != oracle[format!("{}/no-prompt", path.display())]["caption"]
            {
                with_prompt += 1;
            }
        }
    }
    // Every record's CAPTION_PROMPT changes its caption, so both branches were compared.
    assert!(prompted_records > 0);
    assert_eq!(with_prompt, prompted_records);
}

//! Positive maps of every ODinW-35 and ODinW-13 task, with and without CAPTION_PROMPT, against
//! tests/oracles/prompt_maps.py (GLIP's query and span → token rules in Python, tokenized by
//! Python `tokenizers` from the bert-base-uncased vocab file).
use crate::support;

use odinw::prompt::{task_caption, PositiveMap, PromptTokenizer};
use odinw::registry::{tasks, Suite};
use serde_json::Value;

#[test]
fn positive_maps_match_python_for_every_task() {
    let Some(python) = support::python_with(&["tokenizers"]) else {
        return;
    };
    let Some(vocab) = support::shared_data("bert-base-uncased-vocab.txt") else {
        return;
    };
    let repo = env!("CARGO_MANIFEST_DIR");
    let oracle: Value = serde_json::from_str(&support::run_oracle(
        &python,
        "prompt_maps.py",
        &[vocab.to_str().unwrap(), repo],
    ))
    .unwrap();
    let tokenizer = PromptTokenizer::bert_base_uncased();
    let mut checked = 0;
    for suite in [Suite::Odinw35, Suite::Odinw13] {
        for task in tasks(suite) {
            for (mode, use_prompt) in [("prompt", true), ("no-prompt", false)] {
                let key = format!("{}/{}/{mode}", suite.name(), task.name);
                let want = &oracle[&key];
                assert!(want.is_object(), "oracle has no {key}");
                let map =
                    PositiveMap::new(&task_caption(task, use_prompt).unwrap(), &tokenizer).unwrap();
                assert_eq!(map.caption, want["caption"].as_str().unwrap(), "{key}");
                assert_eq!(map.num_tokens as u64, want["num_tokens"], "{key}");
                let got: Vec<Value> = map
                    .classes
                    .iter()
                    .map(|c| serde_json::json!([c.id, c.tokens]))
                    .collect();
                assert_eq!(&Value::Array(got), &want["classes"], "{key}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * (35 + 13));
}

#[test]
fn prompt_command_prints_json_and_table() {
    let out = support::run_odinw(&["prompt", "pothole", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["caption"], "there are some holes on the road");
    // Hugging Face tokenizers' BertWordPiece (bert-base-uncased) gives these ids.
    assert_eq!(
        v["token_ids"],
        serde_json::json!([101, 2045, 2024, 2070, 8198, 2006, 1996, 2346, 102])
    );
    assert_eq!(
        v["classes"],
        serde_json::json!([{"id": 1, "name": "pothole", "tokens": [4]}])
    );

    let out = support::run_odinw(&["prompt", "pothole", "--no-prompt", "--suite", "odinw13"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("caption: \"pothole\""), "{text}");
    assert!(text.contains("pot ##hole"), "{text}");

    let out = support::run_odinw(&["prompt", "ChessPieces"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(never predicted)"), "{text}");
}

#[test]
fn prompt_command_uses_a_given_tokenizer_and_reports_bad_ones() {
    let dir = support::scratch();
    let json = support::repo("models/bert-base-uncased/tokenizer.json");
    std::fs::copy(&json, dir.path().join("tokenizer.json")).unwrap();
    let model = dir.path().to_str().unwrap();
    let out = support::run_odinw(&["prompt", "BCCD", "--model", model, "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["caption"], "Platelets. RBC. WBC");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = support::run_odinw(&["prompt", "BCCD", "--tokenizer", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.json") && err.contains("not a valid tokenizer.json"),
        "{err}"
    );

    let empty = support::scratch();
    let out = support::run_odinw(&["prompt", "BCCD", "--model", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("has no tokenizer.json"));
}

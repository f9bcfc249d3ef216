//! `prompt::grounding_dino` against the exporter's Python (`grounding_dino_export/prompts.py`:
//! mmdetection's caption, chunks and class tokens, transformers' tokenizer with truncation, and
//! `text_masks`, itself checked against transformers' mask function by the export test), run by
//! the PyTorch oracle interpreter (`ODINW_TORCH_PYTHON`) with the built-in bert-base-uncased
//! tokenizer.json: the class names of every ODinW-35 task and the demo suite, chunked by 3 and
//! unchunked; every ODinW-35 and ODinW-13 task with a `caption_prompt` in mmdetection's configs
//! for either family, with it (`to_enhance_text_prompts`), whole and in chunks of 1; made-up
//! prompts on some classes of a demo task (prefix, name and suffix each alone and together, keys
//! matched after cleaning, a key naming no class), whole and in chunks of 3; and edge cases
//! (parentheses, underscores, double spaces, accents, '?', a list long enough to be cut at 256
//! tokens, with and without prompts). Caption, ids, class tokens, mask and position ids must be
//! equal.
use crate::support;

use odinw::prompt::grounding_dino::{chunks, gdino_prompt};
use odinw::prompt::PromptTokenizer;
use odinw::registry::{tasks, EnhancedPrompt, EnhancedPrompts, Suite};
use serde_json::{json, Value};

const SPECIALS: [i64; 4] = [101, 102, 1012, 1029];
const MAX_LEN: usize = 256;

/// One case: label, class names, chunked_size and the caption_prompt dict.
type Case = (String, Vec<String>, i64, Option<EnhancedPrompts>);

fn entry(prefix: Option<&str>, name: Option<&str>, suffix: Option<&str>) -> EnhancedPrompt {
    EnhancedPrompt {
        prefix: prefix.map(Into::into),
        name: name.map(Into::into),
        suffix: suffix.map(Into::into),
    }
}

/// Every case.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for suite in [Suite::Odinw35, Suite::Odinw13, Suite::Demo] {
        for task in tasks(suite) {
            let mut cats: Vec<_> = task.categories.iter().collect();
            cats.sort_by_key(|c| c.id);
            let names: Vec<String> = cats.iter().map(|c| c.name.clone()).collect();
            if suite != Suite::Odinw13 {
                for chunk in [-1, 3] {
                    out.push((
                        format!("{}/{}/{chunk}", suite.name(), task.name),
                        names.clone(),
                        chunk,
                        None,
                    ));
                }
            }
            for (family, prompts) in &task.mmdet_caption_prompt {
                for chunk in [-1, 1] {
                    out.push((
                        format!("{}/{}/{family}/{chunk}", suite.name(), task.name),
                        names.clone(),
                        chunk,
                        Some(prompts.clone()),
                    ));
                }
            }
        }
    }
    let demo = &tasks(Suite::Demo)[0];
    let names: Vec<String> = demo.categories.iter().map(|c| c.name.clone()).collect();
    let made_up: EnhancedPrompts = [
        (names[0].clone(), entry(Some("the "), None, None)),
        (names[1].clone(), entry(None, Some("a thing"), None)),
        (names[2].clone(), entry(None, None, Some(", which is odd"))),
        (
            names[names.len() - 1].clone(),
            entry(Some("see: "), Some("crème brûlée"), Some(" here?")),
        ),
        ("no such class".into(), entry(Some("x "), None, None)),
    ]
    .into_iter()
    .collect();
    for chunk in [-1, 3] {
        out.push((
            format!("demo/made-up/{chunk}"),
            names.clone(),
            chunk,
            Some(made_up.clone()),
        ));
    }
    let edge = [
        "a cat (pet)",
        "noise_thing",
        "two  spaces",
        "three   spaces",
        "café au lait",
        "what?",
        "x(y",
        "(all)",
        "__",
    ];
    out.push((
        "edge".into(),
        edge.iter().map(|s| s.to_string()).collect(),
        -1,
        None,
    ));
    // Keys are matched after clean_label_name.
    let edge_prompts: EnhancedPrompts = [
        (
            "a cat ".to_string(),
            entry(Some("one "), None, Some(" indoors")),
        ),
        ("noise thing".to_string(), entry(None, Some("noise"), None)),
        ("noise_thing".to_string(), entry(Some("never "), None, None)),
    ]
    .into_iter()
    .collect();
    out.push((
        "edge/prompts".into(),
        edge.iter().map(|s| s.to_string()).collect(),
        -1,
        Some(edge_prompts),
    ));
    let long: Vec<String> = (0..120).map(|i| format!("class_{i} thing")).collect();
    out.push(("long".into(), long.clone(), -1, None));
    out.push(("long/50".into(), long.clone(), 50, None));
    // Prompts that push later classes past the 256-token cut.
    let long_prompts: EnhancedPrompts = (0..120)
        .step_by(7)
        .map(|i| {
            (
                format!("class {i} thing"),
                entry(Some("there is a "), None, Some(" on the table")),
            )
        })
        .collect();
    out.push(("long/prompts".into(), long, -1, Some(long_prompts)));
    out
}

#[test]
fn prompts_match_the_exporters_python() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let cases = cases();
    let dir = support::scratch();
    let jobs: Vec<Value> = cases
        .iter()
        .map(|(label, names, chunk, prompts)| {
            json!({"label": label, "names": names, "chunk": chunk, "prompt": prompts})
        })
        .collect();
    let job_file = dir.path().join("jobs.json");
    std::fs::write(&job_file, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let code = format!(
        r#"
import json, sys
sys.path.insert(0, {scripts:?})
import numpy as np
from transformers import PreTrainedTokenizerFast
from grounding_dino_export import prompts
tok = PreTrainedTokenizerFast(tokenizer_file={tokenizer:?})
out = {{}}
for job in json.load(open({jobs:?})):
    res = []
    for group in prompts.chunks(job["names"], job["chunk"]):
        caption, spans = prompts.build_caption(group, job["prompt"])
        enc = prompts.tokenize(tok, caption, {MAX_LEN})
        ids = np.array([enc["input_ids"]])
        mask, pos = prompts.text_masks(ids)
        res.append({{"caption": caption, "ids": enc["input_ids"],
                     "tokens": prompts.class_tokens(enc, spans, {MAX_LEN}),
                     "mask": "".join("1" if m else "0" for m in mask[0].reshape(-1)),
                     "pos": pos[0].tolist()}})
    out[job["label"]] = res
print(json.dumps(out))
"#,
        scripts = support::repo("scripts").to_str().unwrap(),
        tokenizer = support::repo("models/bert-base-uncased/tokenizer.json")
            .to_str()
            .unwrap(),
        jobs = job_file.to_str().unwrap(),
    );
    let stdout = support::run_oracle_code(&python, &code);
    let want: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let tokenizer = PromptTokenizer::bert_base_uncased();
    let mut truncated = 0;
    let mut enhanced = 0;
    for (label, names, chunk, prompts) in &cases {
        let groups = chunks(names.len(), *chunk);
        let theirs = want[label].as_array().unwrap();
        assert_eq!(groups.len(), theirs.len(), "{label}: chunk count");
        for (g, w) in groups.iter().zip(theirs) {
            let p = gdino_prompt(
                &names[g.clone()],
                prompts.as_ref(),
                &tokenizer,
                MAX_LEN,
                &SPECIALS,
            )
            .unwrap();
            assert_eq!(p.caption, w["caption"].as_str().unwrap(), "{label}");
            assert_eq!(json!(p.input_ids), w["ids"], "{label}");
            assert_eq!(json!(p.class_tokens), w["tokens"], "{label}");
            assert_eq!(json!(p.position_ids), w["pos"], "{label}");
            let mask: String = p
                .self_mask
                .iter()
                .map(|&m| if m { '1' } else { '0' })
                .collect();
            assert_eq!(mask, w["mask"].as_str().unwrap(), "{label}: mask");
            truncated += usize::from(p.input_ids.len() == MAX_LEN);
            let plain = gdino_prompt(&names[g.clone()], None, &tokenizer, MAX_LEN, &SPECIALS);
            enhanced += usize::from(plain.unwrap().caption != p.caption);
        }
    }
    assert!(truncated >= 2, "no case reached the 256-token cut");
    // 8 task/family pairs, whole and in chunks of 1: 17 captions (NorthAmericaMushrooms'
    // two classes make two chunks); the made-up prompts 3 (whole, and both chunks of 3); the
    // edge and long prompts 1 each.
    assert_eq!(enhanced, 22, "captions that differ from the plain ones");
}

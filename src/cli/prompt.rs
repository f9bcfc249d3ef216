//! `odinw prompt TASK`: the caption GLIP queries a task with and each class's token positions.
use crate::prompt::{task_caption, PositiveMap, PromptTokenizer, MAX_QUERY_LEN};
use crate::registry::{self, Suite};
use anyhow::{anyhow, bail, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Task name (case-insensitive), e.g. Aquarium or ChessPieces.
    task: String,
    /// Which suite's names and prompts (ODinW-13 has its own for 6 tasks).
    #[arg(long, value_enum, default_value = "odinw35")]
    suite: Suite,
    /// Model folder whose `tokenizer.json` to use.
    #[arg(long, conflicts_with = "tokenizer")]
    model: Option<PathBuf>,
    /// A `tokenizer.json` to use (default: the built-in bert-base-uncased, GLIP's).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Ignore the task's CAPTION_PROMPT: plain (cleaned) class names.
    #[arg(long)]
    no_prompt: bool,
    /// Print `{"caption": ..., "token_ids": [...], "classes": [{"id", "name", "tokens"}]}`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let task = registry::select(args.suite, std::slice::from_ref(&args.task))?
        .pop()
        .ok_or_else(|| anyhow!("no task"))?;
    let tokenizer = match (&args.model, &args.tokenizer) {
        (Some(dir), _) => {
            let path = dir.join("tokenizer.json");
            if !path.is_file() {
                bail!("model folder {} has no tokenizer.json", dir.display());
            }
            PromptTokenizer::from_file(&path)?
        }
        (None, Some(path)) => PromptTokenizer::from_file(path)?,
        (None, None) => PromptTokenizer::bert_base_uncased(),
    };
    let caption = task_caption(task, !args.no_prompt)?;
    let map = PositiveMap::new(&caption, &tokenizer)?;
    if args.json {
        let json = serde_json::json!({
            "caption": map.caption,
            "token_ids": map.token_ids,
            "classes": map.classes
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_table(task.name.as_str(), args.suite, &tokenizer, &map);
    Ok(ExitCode::SUCCESS)
}

fn print_table(task: &str, suite: Suite, tokenizer: &PromptTokenizer, map: &PositiveMap) {
    println!(
        "{task} ({}), tokenizer: {}",
        suite.name(),
        tokenizer.source()
    );
    println!("caption: {:?}", map.caption);
    println!(
        "{} tokens with [CLS] and [SEP] (the model reads {MAX_QUERY_LEN})",
        map.num_tokens
    );
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["id", "class", "tokens", "token text"]);
    for c in &map.classes {
        let (positions, text) = if c.tokens.is_empty() {
            ("none".to_string(), "(never predicted)".to_string())
        } else {
            let pos: Vec<String> = c.tokens.iter().map(|t| t.to_string()).collect();
            let text: Vec<&str> = c
                .tokens
                .iter()
                .filter_map(|&t| map.token_strings.get(t).map(String::as_str))
                .collect();
            (pos.join(" "), text.join(" "))
        };
        table.add_row([c.id.to_string(), format!("{:?}", c.name), positions, text]);
    }
    println!("{table}");
}

//! `odinw list`: the tasks of a suite as a table, with what is on disk under the root. Status:
//! `verified` (installed by `odinw download` and its manifest matches the files on disk),
//! `present` (every split's annotation file is there), `partial`, or `missing`.
use crate::download::{self, state::StateDir};
use crate::registry::{self, Suite};
use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Which suite to list.
    #[arg(long, value_enum, default_value = "odinw35")]
    suite: Suite,
    /// Dataset root (default: $ODINW_ROOT, else ./DATASET; the demo suite's bundled data).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let root = super::args::data_root(args.suite, args.root.as_deref())?;
    let state = StateDir::new(&root);
    let mut verified_archives: BTreeMap<&str, bool> = BTreeMap::new();
    let rows: Vec<_> = registry::tasks(args.suite)
        .iter()
        .map(|t| {
            let images: Vec<(String, Option<usize>)> = t
                .split_names()
                .into_iter()
                .map(|s| (s.to_string(), count_images(&t.ann_file(&root, s).unwrap())))
                .collect();
            let present = images.iter().filter(|(_, n)| n.is_some()).count();
            let archive_ok = *verified_archives
                .entry(t.archive.as_str())
                .or_insert_with(|| download::is_verified(&state, &t.archive, false));
            let status = match present {
                n if n == images.len() && archive_ok => "verified",
                0 => "missing",
                n if n == images.len() => "present",
                _ => "partial",
            };
            (t, images, status)
        })
        .collect();
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(t, images, status)| {
                serde_json::json!({
                    "task": t.name,
                    "classes": t.categories.len(),
                    "splits": t.split_names(),
                    "images": images.iter().map(|(s, n)| (s.clone(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
                    "status": status,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["task", "classes", "splits", "images", "status"]);
    for (t, images, status) in &rows {
        let imgs: Vec<String> = images
            .iter()
            .filter_map(|(s, n)| n.map(|n| format!("{s} {n}")))
            .collect();
        table.add_row([
            t.name.clone(),
            t.categories.len().to_string(),
            t.split_names().join(" "),
            if imgs.is_empty() {
                "-".into()
            } else {
                imgs.join(", ")
            },
            status.to_string(),
        ]);
    }
    println!("{table}");
    println!(
        "{} tasks in {} under {}",
        rows.len(),
        args.suite.name(),
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Number of images in an annotation file, if it exists and parses.
fn count_images(path: &std::path::Path) -> Option<usize> {
    #[derive(serde::Deserialize)]
    struct Images {
        images: Vec<serde::de::IgnoredAny>,
    }
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice::<Images>(&text)
        .ok()
        .map(|i| i.images.len())
}

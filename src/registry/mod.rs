//! The ODinW task registry: the 35 ODinW-35 tasks and the 13 ODinW-13 tasks, as GLIP's task
//! configs define them (paths, splits, categories, prompts, few-shot files), embedded from
//! `odinw_35/*.json` and `odinw_13/*.json` at build time.
mod task;

pub use task::{
    CaptionPrompt, Category, EnhancedPrompt, EnhancedPrompts, Layout, RoboflowPin, SplitFiles, Task,
};

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/registry_files.rs"));

/// A benchmark suite: a named, ordered set of tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// ODinW-35: all 35 tasks, with `configs/odinw_35` prompts.
    Odinw35,
    /// ODinW-13: 13 of them, with the older `configs/odinw_13` names and prompts.
    Odinw13,
    /// The bundled demo suite: generated images, classes named by phrases or nonce words (`demo/`).
    Demo,
}

impl Suite {
    pub fn folder(self) -> &'static str {
        match self {
            Suite::Odinw35 => "odinw_35",
            Suite::Odinw13 => "odinw_13",
            Suite::Demo => "demo/tasks",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Suite::Odinw35 => "odinw35",
            Suite::Odinw13 => "odinw13",
            Suite::Demo => "demo",
        }
    }
}

fn all_tasks() -> &'static [(Suite, Vec<Task>)] {
    static TASKS: OnceLock<Vec<(Suite, Vec<Task>)>> = OnceLock::new();
    TASKS.get_or_init(|| {
        [Suite::Odinw35, Suite::Odinw13, Suite::Demo]
            .into_iter()
            .map(|suite| {
                let mut tasks: Vec<Task> = TASK_FILES
                    .iter()
                    .filter(|(folder, _, _)| *folder == suite.folder())
                    .map(|(folder, name, text)| {
                        serde_json::from_str(text).unwrap_or_else(|e| {
                            panic!("embedded registry file {folder}/{name} is invalid: {e}")
                        })
                    })
                    .collect();
                tasks.sort_by_key(|t| t.index);
                (suite, tasks)
            })
            .collect()
    })
}

/// The tasks of `suite`, in GLIP's order (`configs/odinw_35/_all.json`).
pub fn tasks(suite: Suite) -> &'static [Task] {
    &all_tasks().iter().find(|(s, _)| *s == suite).unwrap().1
}

/// Finds a task of `suite` by name, case-insensitively.
pub fn find(suite: Suite, name: &str) -> Option<&'static Task> {
    tasks(suite)
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name.trim()))
}

/// The tasks a command works on: all of `suite`, or the named ones (case-insensitive), in the
/// order given. An unknown name is an error that lists the valid names.
pub fn select(suite: Suite, names: &[String]) -> Result<Vec<&'static Task>> {
    if names.is_empty() {
        return Ok(tasks(suite).iter().collect());
    }
    let mut out = Vec::new();
    for name in names {
        match find(suite, name) {
            Some(t) if !out.iter().any(|o: &&Task| o.name == t.name) => out.push(t),
            Some(_) => {}
            None => {
                let in35 = suite == Suite::Odinw13 && find(Suite::Odinw35, name).is_some();
                let valid: Vec<&str> = tasks(suite).iter().map(|t| t.name.as_str()).collect();
                if in35 {
                    bail!("task '{name}' is in ODinW-35 but not in ODinW-13; use --suite odinw35");
                }
                bail!(
                    "unknown task '{name}' in {}; valid names: {}",
                    suite.name(),
                    valid.join(", ")
                );
            }
        }
    }
    Ok(out)
}

/// The dataset root: `--root`, else `$ODINW_ROOT`, else `./DATASET` (GLIP's default), so that
/// GLIP's own configs find the data under it too.
pub fn data_root(root: Option<&Path>) -> PathBuf {
    if let Some(r) = root {
        return r.to_path_buf();
    }
    match std::env::var_os("ODINW_ROOT") {
        Some(r) if !r.is_empty() => PathBuf::from(r),
        _ => PathBuf::from("DATASET"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_have_35_and_13_tasks_with_314_and_50_categories() {
        assert_eq!(tasks(Suite::Odinw35).len(), 35);
        assert_eq!(tasks(Suite::Odinw13).len(), 13);
        let cats = |s| tasks(s).iter().map(|t| t.categories.len()).sum::<usize>();
        assert_eq!(cats(Suite::Odinw35), 314);
        assert_eq!(cats(Suite::Odinw13), 50);
        assert!(tasks(Suite::Odinw13).iter().all(|t| t.in_odinw13));
        assert_eq!(
            tasks(Suite::Odinw35)
                .iter()
                .filter(|t| t.in_odinw13)
                .count(),
            13
        );
    }

    #[test]
    fn names_match_case_insensitively_and_unknown_names_fail() {
        let t = select(Suite::Odinw35, &["bccd".into(), "EGOHANDS_GENERIC".into()]).unwrap();
        assert_eq!(t[0].name, "BCCD");
        assert_eq!(t[1].name, "EgoHands_generic");
        let err = select(Suite::Odinw35, &["nope".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown task 'nope'") && err.contains("BCCD"),
            "{err}"
        );
        let err = select(Suite::Odinw13, &["BCCD".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not in ODinW-13"), "{err}");
    }

    #[test]
    fn glip_quirks_are_kept() {
        let voc = find(Suite::Odinw35, "PascalVOC").unwrap();
        assert_eq!(voc.splits["test"].ann_file, voc.splits["val"].ann_file);
        let boggle = find(Suite::Odinw35, "boggleBoards").unwrap();
        assert_eq!((boggle.categories.len(), boggle.num_classes_yaml), (36, 35));
        assert_eq!(boggle.layout, Layout::Export);
        let rabbits13 = find(Suite::Odinw13, "CottontailRabbits").unwrap();
        let rabbits35 = find(Suite::Odinw35, "CottontailRabbits").unwrap();
        assert_eq!(rabbits13.categories[0].name, "Cottontail-Rabbit");
        assert_eq!(rabbits35.categories[0].name, "rabbit");
        let minival = tasks(Suite::Odinw35)
            .iter()
            .filter(|t| t.splits.contains_key("minival"))
            .count();
        assert_eq!(minival, 11);
        let archives: std::collections::BTreeSet<_> =
            tasks(Suite::Odinw35).iter().map(|t| &t.archive).collect();
        assert_eq!(archives.len(), 32);
    }
}

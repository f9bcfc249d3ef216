//! The task keys of an EvalAI submission.
//!
//! The challenge's canonical key list is not published in GLIP's repository: its README's only
//! example key is `"WildFireSmoke"` while the task folder is `WildfireSmoke`, and the example
//! submission files exist only as Google Drive links (protocol §10, ecosystem §4.3). odinw
//! therefore uses the registry's task names (`odinw list`) as keys, and takes a JSON map
//! `{"<task>": "<key>", ...}` (`--keys FILE`) for any key the leaderboard spells otherwise.
use crate::registry::{self, Suite, Task};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct KeyMap {
    /// Registry task name → submission key, where they differ.
    renamed: BTreeMap<String, String>,
}

impl KeyMap {
    /// Keys = registry task names.
    pub fn registry() -> Self {
        Self::default()
    }

    /// Reads a `{"<task>": "<key>"}` map; tasks must be registry names, keys unique.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let map: BTreeMap<String, String> = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a JSON object of task name → key strings",
                path.display()
            )
        })?;
        let mut renamed = BTreeMap::new();
        for (task, key) in map {
            let Some(t) = registry::find(Suite::Odinw35, &task) else {
                bail!("{}: '{task}' is not an ODinW task name", path.display());
            };
            renamed.insert(t.name.clone(), key);
        }
        let out = Self { renamed };
        let mut seen = BTreeMap::new();
        for t in registry::tasks(Suite::Odinw35) {
            if let Some(other) = seen.insert(out.key(&t.name), &t.name) {
                bail!(
                    "{}: tasks {other} and {} would both use key '{}'",
                    path.display(),
                    t.name,
                    out.key(&t.name)
                );
            }
        }
        Ok(out)
    }

    /// The key of a registry task.
    pub fn key(&self, task: &str) -> String {
        self.renamed
            .get(task)
            .cloned()
            .unwrap_or_else(|| task.to_string())
    }

    /// The task a submission key stands for (exact match): an ODinW-35 task, else a task of
    /// the bundled demo suite (so demo runs can be submitted and checked like real ones).
    pub fn task(&self, key: &str) -> Option<&'static Task> {
        registry::tasks(Suite::Odinw35)
            .iter()
            .find(|t| self.key(&t.name) == key)
            .or_else(|| registry::tasks(Suite::Demo).iter().find(|t| t.name == key))
    }

    /// A valid key that `key` looks like a misspelling of (case, `_`, `-` and spaces ignored).
    pub fn suggest(&self, key: &str) -> Option<String> {
        let norm = |s: &str| {
            s.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        let want = norm(key);
        registry::tasks(Suite::Odinw35)
            .iter()
            .map(|t| self.key(&t.name))
            .find(|k| norm(k) == want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_keys_and_misspellings_get_suggestions() {
        let k = KeyMap::registry();
        assert_eq!(k.task("WildfireSmoke").unwrap().name, "WildfireSmoke");
        assert!(k.task("WildFireSmoke").is_none());
        assert_eq!(k.suggest("WildFireSmoke").as_deref(), Some("WildfireSmoke"));
        assert_eq!(
            k.suggest("egohands-generic").as_deref(),
            Some("EgoHands_generic")
        );
        assert_eq!(k.suggest("nothing"), None);
    }

    #[test]
    fn key_files_rename_and_refuse_clashes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.json");
        std::fs::write(&p, r#"{"WildfireSmoke": "WildFireSmoke"}"#).unwrap();
        let k = KeyMap::from_file(&p).unwrap();
        assert_eq!(k.key("WildfireSmoke"), "WildFireSmoke");
        assert_eq!(k.task("WildFireSmoke").unwrap().name, "WildfireSmoke");
        std::fs::write(&p, r#"{"BCCD": "pothole"}"#).unwrap();
        let err = KeyMap::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("both use key 'pothole'"), "{err}");
        std::fs::write(&p, r#"{"Nope": "x"}"#).unwrap();
        let err = KeyMap::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("'Nope' is not an ODinW task name"), "{err}");
    }
}

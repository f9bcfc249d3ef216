//! The files of a model directory, whatever its family: a graph's file by name, every file the
//! model consists of (for run manifests), and the check that what `model.json` names exists.
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A graph entry of `model.json`: the file it is in, relative to the model directory.
pub trait GraphFile {
    fn file(&self) -> &str;
}

/// The file of graph `name` in `dir`.
pub fn graph<G: GraphFile>(
    dir: &Path,
    graphs: &BTreeMap<String, G>,
    name: &str,
) -> Result<PathBuf> {
    match graphs.get(name) {
        Some(g) => Ok(dir.join(g.file())),
        None => bail!("{} has no graph {name}", dir.join("model.json").display()),
    }
}

/// `model.json`, the tokenizer and every graph.
pub fn all<G: GraphFile>(
    dir: &Path,
    graphs: &BTreeMap<String, G>,
    tokenizer: &str,
) -> Vec<PathBuf> {
    let mut files = vec![dir.join("model.json"), dir.join(tokenizer)];
    files.extend(graphs.values().map(|g| dir.join(g.file())));
    files
}

/// Fails naming the first of `files` that `model_json` names but that does not exist.
pub fn require(model_json: &Path, files: impl IntoIterator<Item = PathBuf>) -> Result<()> {
    for file in files {
        if !file.is_file() {
            bail!(
                "{} names {}, which does not exist",
                model_json.display(),
                file.display()
            );
        }
    }
    Ok(())
}

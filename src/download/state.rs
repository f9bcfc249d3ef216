//! The `<root>/.odinw/` folder, where `odinw download` keeps its own state beside GLIP's
//! `<root>/odinw/` tree: partial downloads, verified archives, per-archive manifests, a staging
//! area for extraction, and a lock so that two runs never work on one root at once.
use crate::util::fs::{lock_file, Lock};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Paths under `<root>/.odinw/`.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The dataset root itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/odinw`: GLIP's layout, where datasets are installed.
    pub fn odinw_dir(&self) -> PathBuf {
        self.root.join("odinw")
    }

    fn dir(&self) -> PathBuf {
        self.root.join(".odinw")
    }

    /// Where a download in progress is written (`<name>.part`); it survives a killed run and is
    /// resumed with an HTTP Range request.
    pub fn partial(&self, file_name: &str) -> PathBuf {
        self.dir().join("partial").join(format!("{file_name}.part"))
    }

    /// Where a download lands once its size and checksum are verified, until it is installed.
    pub fn archive(&self, file_name: &str) -> PathBuf {
        self.dir().join("archives").join(file_name)
    }

    /// The manifest of one archive (shared by the tasks the archive holds).
    pub fn manifest(&self, archive: &str) -> PathBuf {
        self.dir().join("manifests").join(format!("{archive}.json"))
    }

    /// Scratch space for extraction; emptied at the start of every run.
    pub fn staging(&self) -> PathBuf {
        self.dir().join("staging")
    }

    /// Creates the state folders and takes the root's lock (released when the guard drops, or
    /// by the OS when the process dies). A second concurrent run on the same root is an error.
    pub fn lock(&self) -> Result<RootLock> {
        for sub in ["partial", "archives", "manifests", "staging"] {
            let d = self.dir().join(sub);
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        let path = self.dir().join("lock");
        match lock_file(&path, false)? {
            Some(lock) => Ok(RootLock { _lock: lock }),
            None => bail!(
                "another odinw download is working on {} (lock {} is held); wait for it to finish",
                self.root.display(),
                path.display()
            ),
        }
    }

    /// Removes whatever an earlier, interrupted run left in the staging area.
    pub fn clear_staging(&self) -> Result<()> {
        let staging = self.staging();
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("removing {}", staging.display()))?;
        }
        fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))
    }
}

/// Holds the root's lock while alive.
pub struct RootLock {
    _lock: Lock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_root_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let first = state.lock().unwrap();
        let err = state
            .lock()
            .err()
            .expect("second lock must fail")
            .to_string();
        assert!(err.contains("another odinw download"), "{err}");
        drop(first);
        state.lock().unwrap();
    }
}

//! What ships inside the binary: the demo model (`models/demo/`) and the demo suite's data
//! (`demo/odinw/`), unpacked on first use into the cache (`<cache>/embedded/<name>-<hash>/`),
//! since ONNX Runtime and the pipeline read files. Unpacking is atomic: a folder that exists is
//! complete.
use crate::engine::runtime::cache_dir;
use crate::util::hash::hex;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/embedded_files.rs"));

/// The demo model's directory (unpacked if needed).
pub fn demo_model_dir() -> Result<PathBuf> {
    unpack("demo-model", DEMO_MODEL)
}

/// The demo suite's dataset root (holds `odinw/...`), unpacked if needed.
pub fn demo_data_root() -> Result<PathBuf> {
    unpack("demo-data", DEMO_DATA)
}

fn unpack(name: &str, files: &[(&str, &[u8])]) -> Result<PathBuf> {
    if files.is_empty() {
        anyhow::bail!("this odinw was built without its {name} files (models/demo/ and demo/ in the source tree)");
    }
    let mut hasher = Sha256::new();
    for (path, bytes) in files {
        hasher.update(path.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let hash = hex(&hasher.finalize());
    let root = cache_dir()?.join("embedded");
    let dir = root.join(format!("{name}-{}", &hash[..16]));
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}"))
        .tempdir_in(&root)
        .with_context(|| format!("creating a temporary folder in {}", root.display()))?;
    for (path, bytes) in files {
        let dest = tmp.path().join(Path::new(path));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
    }
    let kept = tmp.keep();
    match std::fs::rename(&kept, &dir) {
        Ok(()) => Ok(dir),
        // Another process unpacked the same files first.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&kept);
            Ok(dir)
        }
        Err(e) => Err(e).with_context(|| format!("moving {} to {}", kept.display(), dir.display())),
    }
}

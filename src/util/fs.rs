//! Atomic writes and lock files. A file is written to a temporary file beside its destination
//! (`tempfile`), flushed and synced to disk, and renamed over the destination, so a reader (or a
//! run killed half way) never sees a partial file; a failed write leaves nothing behind. A lock
//! file is held exclusively between threads and processes until its handle drops (or the
//! process dies).
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes).map_err(Into::into))
}

/// Writes `path` atomically through a buffered writer handed to `fill`.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            parent
        }
        None => Path::new("."),
    };
    let result = (|| -> Result<()> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".tmp");
        #[cfg(unix)]
        {
            // As `File::create` would make it (the umask applies), not tempfile's owner-only.
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let tmp = builder
            .tempfile_in(parent)
            .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
        // The file to write, and its path (removed when dropped unless persisted).
        let (file, tmp) = tmp.into_parts();
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        tmp.persist(path)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming the temporary file to {}", path.display()))?;
        Ok(())
    })();
    result.with_context(|| format!("writing {}", path.display()))
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    write_atomic_with(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")?;
        Ok(())
    })
}

/// Holds an exclusive lock on a lock file while alive.
pub struct Lock {
    _file: File,
}

/// Takes the exclusive lock on `path` (created if needed): waits for it with `wait`, else
/// returns `None` at once when another holder has it.
pub fn lock_file(path: &Path, wait: bool) -> Result<Option<Lock>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let got = if wait {
        fs4::fs_std::FileExt::lock_exclusive(&file).map(|()| true)
    } else {
        fs4::fs_std::FileExt::try_lock_exclusive(&file)
    };
    match got.with_context(|| format!("locking {}", path.display()))? {
        true => Ok(Some(Lock { _file: file })),
        false => Ok(None),
    }
}

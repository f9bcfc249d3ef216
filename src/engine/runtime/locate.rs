//! Where an ONNX Runtime library can come from, checked in order: `$ORT_DYLIB_PATH`, a Python
//! `onnxruntime`/`onnxruntime-gpu`, odinw's cache. Also reads a library's version without
//! loading it into `ort`, and preloads CUDA/cuDNN from Python's `nvidia-*` packages.
use super::{Device, ORT_VERSION};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the library was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `$ORT_DYLIB_PATH`.
    Env,
    /// An installed Python package.
    Python,
    /// odinw's cache, installed earlier.
    Cache,
    /// Installed from PyPI by this run.
    Installed,
}

#[derive(Clone, Debug)]
pub struct Candidate {
    pub path: PathBuf,
    pub source: Source,
}

/// `$ODINW_CACHE`, else `$XDG_CACHE_HOME/odinw`, else `~/.cache/odinw`.
pub fn cache_dir() -> Result<PathBuf> {
    cache_dir_from(|name| std::env::var_os(name))
}

/// [`cache_dir`] with the variables looked up by `var` (empty ones count as unset).
fn cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf> {
    let var = |name: &str| var(name).filter(|d| !d.is_empty());
    if let Some(d) = var("ODINW_CACHE") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("odinw"));
    }
    match var("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".cache/odinw")),
        None => bail!("cannot place odinw's cache: set ODINW_CACHE or HOME"),
    }
}

/// The library file name inside a wheel's `onnxruntime/capi/`.
pub fn library_name(version: &str) -> String {
    if cfg!(target_os = "macos") {
        format!("libonnxruntime.{version}.dylib")
    } else {
        format!("libonnxruntime.so.{version}")
    }
}

/// The first candidate that exists, in the documented order; `None` means "install it".
pub fn find(device: Device) -> Result<Option<Candidate>> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        if !path.is_file() {
            bail!(
                "ORT_DYLIB_PATH is {}, which is not a file; point it at libonnxruntime, or unset it",
                path.display()
            );
        }
        return Ok(Some(Candidate {
            path,
            source: Source::Env,
        }));
    }
    if std::env::var_os("ODINW_NO_PYTHON_ORT").is_none() {
        if let Some(path) = from_python(device) {
            return Ok(Some(Candidate {
                path,
                source: Source::Python,
            }));
        }
    }
    let cached = cache_dir()?
        .join(format!("{}-{ORT_VERSION}", device.package()))
        .join(library_name(ORT_VERSION));
    if cached.is_file() {
        return Ok(Some(Candidate {
            path: cached,
            source: Source::Cache,
        }));
    }
    Ok(None)
}

/// The `onnxruntime/capi` library of the Python on PATH (or `$ODINW_PYTHON`), if it is 1.31+
/// and, for GPU devices, carries the CUDA provider.
fn from_python(device: Device) -> Option<PathBuf> {
    let python = std::env::var("ODINW_PYTHON").unwrap_or_else(|_| "python3".into());
    let code = "import onnxruntime, os; print(onnxruntime.__version__); print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))";
    let out = Command::new(python).args(["-c", code]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let version = lines.next()?.trim().to_string();
    let capi = PathBuf::from(lines.next()?.trim());
    if !super::version_ok(&version) {
        return None;
    }
    if device != Device::Cpu && !capi.join("libonnxruntime_providers_cuda.so").is_file() {
        return None;
    }
    let path = capi.join(library_name(&version));
    path.is_file().then_some(path)
}

/// The version string the library reports (`OrtGetApiBase()->GetVersionString()`).
pub fn library_version(path: &Path) -> Result<String> {
    // SAFETY: loading ONNX Runtime runs no initialisers with preconditions; the symbol has the
    // C signature `const OrtApiBase* OrtGetApiBase(void)` and GetVersionString returns a static
    // NUL-terminated string.
    unsafe {
        let lib = libloading::Library::new(path)
            .with_context(|| format!("{} cannot be loaded as a shared library", path.display()))?;
        let get: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase").with_context(|| {
                format!("{} is not ONNX Runtime (no OrtGetApiBase)", path.display())
            })?;
        let base = get();
        if base.is_null() {
            bail!("{}: OrtGetApiBase returned null", path.display());
        }
        let s = std::ffi::CStr::from_ptr(((*base).GetVersionString)());
        let version = s.to_string_lossy().into_owned();
        // Keep the library loaded: ort will load the same file again.
        std::mem::forget(lib);
        Ok(version)
    }
}

/// Folders holding CUDA 13 and cuDNN 9 libraries from Python's `nvidia-*` packages (as PyTorch
/// and `onnxruntime-gpu[cuda,cudnn]` install them), beside the library or in site-packages.
pub fn nvidia_lib_dirs(ort_library: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let mut roots: Vec<PathBuf> = Vec::new();
    // <site-packages>/onnxruntime/capi/libonnxruntime.so → <site-packages>/nvidia
    if let Some(site) = ort_library
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
    {
        roots.push(site.join("nvidia"));
    }
    if let Some(dir) = ort_library.parent() {
        roots.push(dir.join("nvidia"));
    }
    let find = |subs: &[&str], lib: &str| {
        roots.iter().find_map(|r| {
            subs.iter()
                .map(|s| r.join(s).join("lib"))
                .find(|d| d.join(lib).exists())
        })
    };
    (
        find(&["cu13", "cuda_runtime"], "libcudart.so.13"),
        find(&["cudnn"], "libcudnn.so.9"),
    )
}

/// Preloads CUDA and cuDNN where found, so the CUDA provider resolves them without
/// `LD_LIBRARY_PATH`; failures are reported and left to the provider's own error.
pub fn preload_cuda(ort_library: &Path) {
    let (cuda, cudnn) = nvidia_lib_dirs(ort_library);
    if cuda.is_none() && cudnn.is_none() {
        return;
    }
    if let Err(e) = ort::ep::cuda::preload_dylibs(cuda.as_deref(), cudnn.as_deref()) {
        super::notice(&format!("warning: preloading CUDA libraries: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_odinw_cache_then_xdg_then_home() {
        let with = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            cache_dir_from(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.into()))
        };
        let all = [
            ("ODINW_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(with(&all).unwrap(), PathBuf::from("/c"));
        assert_eq!(with(&all[1..]).unwrap(), PathBuf::from("/x/odinw"));
        assert_eq!(with(&all[2..]).unwrap(), PathBuf::from("/h/.cache/odinw"));
        let empty = [("ODINW_CACHE", ""), ("XDG_CACHE_HOME", ""), ("HOME", "/h")];
        assert_eq!(with(&empty).unwrap(), PathBuf::from("/h/.cache/odinw"));
        let err = with(&[]).unwrap_err().to_string();
        assert!(err.contains("set ODINW_CACHE or HOME"), "{err}");
    }
}

//! ONNX Runtime provisioning. `ort` is built with `load-dynamic`, so `libonnxruntime` is found at
//! run time, in this order: `$ORT_DYLIB_PATH`; an installed Python `onnxruntime` (or
//! `onnxruntime-gpu` for CUDA/TensorRT); odinw's cache; else the pinned wheel is fetched from
//! PyPI into the cache on first use.
mod locate;
mod pypi;

pub use locate::{cache_dir, Candidate, Source};
pub use pypi::install_wheel;

use crate::util::reporter::Reporter;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The ONNX Runtime release odinw is built and tested against (`ort` 2.0.0-rc.15).
pub const ORT_VERSION: &str = "1.31.1";

/// Where inference runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    Tensorrt,
}

impl Device {
    /// The PyPI package whose library serves this device.
    pub fn package(self) -> &'static str {
        match self {
            Device::Cpu => "onnxruntime",
            Device::Cuda | Device::Tensorrt => "onnxruntime-gpu",
        }
    }
}

/// What was loaded, for `odinw doctor` and run manifests.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Loaded {
    pub path: PathBuf,
    pub source: Source,
    pub version: String,
}

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();
/// Where loading tells the user what it does (installing the library, a CUDA preload that
/// failed); like the library itself, one per process. Unset, nothing is shown.
static NOTICES: OnceLock<Box<dyn Reporter>> = OnceLock::new();

/// Sets where the runtime's notices go (the CLI: stderr), once per process; later calls are
/// ignored.
pub fn set_reporter(reporter: Box<dyn Reporter>) {
    let _ = NOTICES.set(reporter);
}

/// Tells the user `line` through the reporter set with [`set_reporter`].
pub(crate) fn notice(line: &str) {
    if let Some(r) = NOTICES.get() {
        r.message(line);
    }
}

/// Finds (installing if needed) and loads ONNX Runtime once per process. The first outcome is
/// final: `ort` cannot load a second library into the same process.
pub fn ensure_loaded(device: Device) -> Result<&'static Loaded> {
    let outcome = LOADED.get_or_init(|| load(device).map_err(|e| format!("{e:#}")));
    match outcome {
        Ok(l) => Ok(l),
        Err(e) => bail!("{e}"),
    }
}

fn load(device: Device) -> Result<Loaded> {
    let candidate = match locate::find(device)? {
        Some(c) => c,
        None => {
            let dir = cache_dir()?.join(format!("{}-{ORT_VERSION}", device.package()));
            notice(&format!(
                "ONNX Runtime not found; installing {}=={ORT_VERSION} from PyPI into {}",
                device.package(),
                dir.display()
            ));
            let path = install_wheel(&pypi::index_url(), device.package(), ORT_VERSION, &dir)?;
            Candidate {
                path,
                source: Source::Installed,
            }
        }
    };
    let version = locate::library_version(&candidate.path)?;
    if !version_ok(&version) {
        bail!(
            "{} is ONNX Runtime {version}; odinw needs 1.31 or newer (set ORT_DYLIB_PATH, or unset it to let odinw install {ORT_VERSION})",
            candidate.path.display()
        );
    }
    if device != Device::Cpu {
        locate::preload_cuda(&candidate.path);
    }
    let env = ort::init_from(&candidate.path)
        .with_context(|| format!("loading ONNX Runtime from {}", candidate.path.display()))?
        .with_name("odinw")
        .build()
        .with_context(|| format!("creating an environment with {}", candidate.path.display()))?;
    // Sessions find the environment through a weak reference: keep it alive for the process.
    let _ = ENVIRONMENT.set(env);
    Ok(Loaded {
        path: candidate.path,
        source: candidate.source,
        version,
    })
}

/// Whether a version string is at least 1.31.
pub fn version_ok(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major > 1 || (major == 1 && minor >= 31)
}

/// The process's ONNX Runtime environment (after [`ensure_loaded`]).
pub fn environment() -> Result<&'static ort::environment::Environment> {
    ENVIRONMENT
        .get()
        .ok_or_else(|| anyhow::anyhow!("ONNX Runtime is not loaded"))
}

/// Names of the execution providers compiled into the loaded library.
pub fn available_providers() -> Result<Vec<String>> {
    use ort::ep::ExecutionProvider;
    let mut out = vec!["CPUExecutionProvider".to_string()];
    if ort::ep::CUDA::is_available()? {
        out.push("CUDAExecutionProvider".into());
    }
    if ort::ep::TensorRT::is_available()? {
        out.push("TensorrtExecutionProvider".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_below_1_31_are_rejected() {
        assert!(version_ok("1.31.1"));
        assert!(version_ok("1.32.0"));
        assert!(version_ok("2.0.0"));
        assert!(!version_ok("1.30.9"));
        assert!(!version_ok("1.19.2"));
        assert!(!version_ok("garbage"));
    }
}

//! Installs ONNX Runtime's shared libraries from a PyPI wheel into odinw's cache: asks the index's
//! JSON API for the release, picks the wheel for this platform, checks its size and sha256, and
//! extracts `onnxruntime/capi/lib*` into place atomically.
use super::locate::library_name;
use crate::util::hash::hex;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `$ODINW_PYPI_URL`, else `https://pypi.org`.
pub fn index_url() -> String {
    std::env::var("ODINW_PYPI_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "https://pypi.org".into())
}

#[derive(Deserialize)]
struct Release {
    urls: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    filename: String,
    url: String,
    packagetype: String,
    digests: Digests,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
struct Digests {
    sha256: String,
}

/// The wheel tag for this machine (`manylinux_*_x86_64`, `manylinux_*_aarch64`).
fn platform_tag() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    }
}

/// Installs `package==version`'s libraries into `dir`; returns the main library's path.
pub fn install_wheel(index: &str, package: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    if !cfg!(target_os = "linux") {
        bail!("automatic ONNX Runtime install supports Linux only; set ORT_DYLIB_PATH");
    }
    let client = crate::util::http::client(Duration::from_secs(20), Duration::from_secs(900))?;
    let api = format!(
        "{}/pypi/{package}/{version}/json",
        index.trim_end_matches('/')
    );
    let body = client
        .get(&api)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .with_context(|| format!("asking {api} for {package}=={version}"))
        .map_err(crate::util::http::explain)?;
    let release: Release = serde_json::from_slice(&body)
        .with_context(|| format!("{api} did not return PyPI's JSON"))?;
    let wheel = release
        .urls
        .iter()
        .filter(|f| f.packagetype == "bdist_wheel")
        .filter(|f| f.filename.contains("manylinux") && f.filename.contains(platform_tag()))
        .min_by(|a, b| a.filename.cmp(&b.filename))
        .ok_or_else(|| {
            anyhow!(
                "{api} lists no manylinux {} wheel of {package}=={version}",
                platform_tag()
            )
        })?;
    let bytes = client
        .get(&wheel.url)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .with_context(|| format!("downloading {}", wheel.url))
        .map_err(crate::util::http::explain)?;
    if let Some(size) = wheel.size {
        if bytes.len() as u64 != size {
            bail!(
                "{}: got {} bytes, the index says {size}",
                wheel.url,
                bytes.len()
            );
        }
    }
    let sha = hex(&Sha256::digest(&bytes));
    if !sha.eq_ignore_ascii_case(&wheel.digests.sha256) {
        bail!(
            "{}: sha256 {sha} does not match the index's {}",
            wheel.url,
            wheel.digests.sha256
        );
    }
    extract_libraries(&bytes, &wheel.filename, dir)?;
    let lib = dir.join(library_name(version));
    if !lib.is_file() {
        bail!(
            "{} holds no onnxruntime/capi/{}",
            wheel.filename,
            library_name(version)
        );
    }
    Ok(lib)
}

/// Extracts `onnxruntime/capi/lib*` of a wheel into `dir` through a temporary folder.
fn extract_libraries(wheel: &[u8], name: &str, dir: &Path) -> Result<()> {
    let parent = dir
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", dir.display()))?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".ort-install")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .with_context(|| format!("{name} is not a valid wheel (zip)"))?;
    let mut count = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let path = entry.name().to_string();
        let Some(file) = path.strip_prefix("onnxruntime/capi/") else {
            continue;
        };
        if !file.starts_with("lib") || file.contains('/') || !file.contains(".so") {
            continue;
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data)?;
        let dest = tmp.path().join(file);
        std::fs::write(&dest, &data).with_context(|| format!("writing {}", dest.display()))?;
        count += 1;
    }
    if count == 0 {
        bail!("{name} holds no onnxruntime/capi/lib* files");
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir)
        .with_context(|| format!("moving {} to {}", kept.display(), dir.display()))?;
    Ok(())
}

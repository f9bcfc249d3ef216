//! Installs ONNX Runtime's shared libraries from a PyPI wheel into odinw's cache: reads the
//! project's page of the index's Simple API (`<index>/simple/<package>/`, JSON per PEP 691 or
//! HTML per PEP 503, as pip reads it), picks the release's wheel for this platform, checks its
//! size (when given) and sha256, and extracts `onnxruntime/capi/lib*` into place atomically.
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

/// One file of a project page of the Simple API (PEP 691 JSON; PEP 503 HTML gives no size).
#[derive(Debug, Deserialize, PartialEq)]
struct File {
    filename: String,
    url: String,
    hashes: Hashes,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Hashes {
    #[serde(default)]
    sha256: Option<String>,
}

#[derive(Deserialize)]
struct Project {
    files: Vec<File>,
}

/// The files of a Simple API project page at `page`: JSON (PEP 691) when the body is JSON, else
/// the anchors of the HTML page (PEP 503), whose `#sha256=` fragments carry the digests and
/// whose relative links resolve against `page`.
fn parse_project_page(page: &reqwest::Url, body: &[u8]) -> Result<Vec<File>> {
    let text = String::from_utf8_lossy(body);
    if text.trim_start().starts_with('{') {
        let p: Project = serde_json::from_str(&text)
            .with_context(|| format!("{page} is not a Simple API (PEP 691) JSON page"))?;
        return Ok(p.files);
    }
    let mut files = Vec::new();
    for a in text.split("<a ").skip(1) {
        let Some((attrs, rest)) = a.split_once('>') else {
            continue;
        };
        let Some(href) = attrs
            .split("href=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
        else {
            continue;
        };
        let href = href.replace("&amp;", "&");
        let filename = rest.split("</a>").next().unwrap_or("").trim().to_string();
        let (link, sha256) = match href.split_once("#sha256=") {
            Some((l, h)) => (l.to_string(), Some(h.to_string())),
            None => (href.clone(), None),
        };
        let url = page
            .join(&link)
            .with_context(|| format!("{page}: bad link {href:?}"))?;
        files.push(File {
            filename,
            url: url.to_string(),
            hashes: Hashes { sha256 },
            size: None,
        });
    }
    Ok(files)
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
    // The Simple API, as pip and uv use it (mirrors and private indexes serve it too).
    let page = format!("{}/simple/{package}/", index.trim_end_matches('/'));
    let page_url = reqwest::Url::parse(&page).with_context(|| format!("bad index URL {page}"))?;
    let body = client
        .get(page_url.clone())
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
        )
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .with_context(|| format!("asking {page} for {package}=={version}"))
        .map_err(crate::util::http::explain)?;
    let files = parse_project_page(&page_url, &body)?;
    let prefix = format!("{}-{version}-", package.replace('-', "_"));
    let wheel = files
        .iter()
        .filter(|f| f.filename.starts_with(&prefix) && f.filename.ends_with(".whl"))
        .filter(|f| f.filename.contains("manylinux") && f.filename.contains(platform_tag()))
        .min_by(|a, b| a.filename.cmp(&b.filename))
        .ok_or_else(|| {
            anyhow!(
                "{page} lists no manylinux {} wheel of {package}=={version}",
                platform_tag()
            )
        })?;
    let Some(want_sha) = &wheel.hashes.sha256 else {
        bail!("{page} gives no sha256 for {}", wheel.filename);
    };
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
    if !sha.eq_ignore_ascii_case(want_sha) {
        bail!(
            "{}: sha256 {sha} does not match the index's {want_sha}",
            wheel.url
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_json_project_pages_give_the_same_files() {
        let page = reqwest::Url::parse("https://index.test/simple/onnxruntime/").unwrap();
        let html = r#"<!DOCTYPE html><html><body><h1>Links</h1>
<a href="../../files/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl#sha256=ab12" data-requires-python="&gt;=3.10">onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl</a><br/>
<a href="https://cdn.test/onnxruntime-1.31.1.tar.gz">onnxruntime-1.31.1.tar.gz</a>
</body></html>"#;
        let got = parse_project_page(&page, html.as_bytes()).unwrap();
        let json = r#"{"meta": {"api-version": "1.1"}, "name": "onnxruntime", "files": [
{"filename": "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl", "url": "https://index.test/files/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl", "hashes": {"sha256": "ab12"}},
{"filename": "onnxruntime-1.31.1.tar.gz", "url": "https://cdn.test/onnxruntime-1.31.1.tar.gz", "hashes": {}}]}"#;
        assert_eq!(got, parse_project_page(&page, json.as_bytes()).unwrap());
        assert_eq!(
            got[0].url,
            "https://index.test/files/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl"
        );
        assert_eq!(got[1].hashes.sha256, None);
    }
}

//! ONNX Runtime provisioning: odinw installs the pinned wheel from a PyPI-style index (a local
//! server the test starts, serving a wheel built from the real library), verifies it, caches
//! it, and reports clear errors for bad checksums and bad ORT_DYLIB_PATH values.
mod common;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `python3 -m http.server` on a free loopback port, killed on drop.
struct StaticServer {
    child: Child,
    url: String,
}

impl StaticServer {
    fn start(python: &Path, dir: &Path) -> Self {
        let mut child = Command::new(python)
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting python http.server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 43123 (http://127.0.0.1:43123/) ..."
        let port: u16 = line
            .split("port ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected http.server banner: {line}"));
        StaticServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn real_library(python: &Path) -> PathBuf {
    let out = common::run_oracle_code(
        python,
        "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so.' + onnxruntime.__version__))",
    );
    PathBuf::from(out.trim())
}

/// Lays out `<root>/pypi/onnxruntime/1.31.1/json` and the wheel it names; returns the wheel's sha.
fn make_index(root: &Path, lib: &Path, url: &str, corrupt_sha: bool) -> String {
    let name = "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl";
    let files = root.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let wheel = files.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("onnxruntime/__init__.py", opts).unwrap();
    zip.write_all(b"").unwrap();
    zip.start_file("onnxruntime/capi/libonnxruntime.so.1.31.1", opts)
        .unwrap();
    zip.write_all(&std::fs::read(lib).unwrap()).unwrap();
    zip.finish().unwrap();
    let bytes = std::fs::read(&wheel).unwrap();
    let mut sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if corrupt_sha {
        // Flip the first hex digit: a well-formed digest that cannot match.
        let first = if sha.starts_with('0') { "1" } else { "0" };
        sha.replace_range(..1, first);
    }
    let json = serde_json::json!({"urls": [
        {"filename": "onnxruntime-1.31.1.tar.gz", "url": format!("{url}/files/none.tar.gz"), "packagetype": "sdist", "digests": {"sha256": "00"}},
        {"filename": name, "url": format!("{url}/files/{name}"), "packagetype": "bdist_wheel", "digests": {"sha256": sha}, "size": bytes.len()},
    ]});
    let api = root.join("pypi/onnxruntime/1.31.1");
    std::fs::create_dir_all(&api).unwrap();
    std::fs::write(api.join("json"), json.to_string()).unwrap();
    sha
}

fn doctor(cache: &Path, index: &str) -> (Option<i32>, Value, String) {
    let out = common::odinw()
        .args(["doctor", "--json"])
        .env("ODINW_CACHE", cache)
        .env("ODINW_PYPI_URL", index)
        .env("ODINW_NO_PYTHON_ORT", "1")
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A PyPI-style index of the real library's wheel, served from a scratch folder.
struct Index {
    dir: tempfile::TempDir,
    lib: PathBuf,
    server: StaticServer,
}

impl Index {
    /// `None` (the test skips) without an oracle Python holding onnxruntime.
    fn serve(corrupt_sha: bool) -> Option<Self> {
        let python = common::python_with(&["onnxruntime"])?;
        let lib = real_library(&python);
        let dir = common::scratch();
        let site = dir.path().join("index");
        std::fs::create_dir_all(&site).unwrap();
        let server = StaticServer::start(&python, &site);
        make_index(&site, &lib, &server.url, corrupt_sha);
        Some(Index { dir, lib, server })
    }
}

#[test]
fn installs_the_pinned_wheel_from_an_index_then_uses_the_cache() {
    let Some(index) = Index::serve(false) else {
        return;
    };
    let (lib, server) = (&index.lib, &index.server);
    let cache = index.dir.path().join("cache");

    let (code, v, err) = doctor(&cache, &server.url);
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["onnxruntime"]["source"], "installed", "{v}");
    assert_eq!(v["onnxruntime"]["version"], "1.31.1");
    let installed = cache.join("onnxruntime-1.31.1/libonnxruntime.so.1.31.1");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(lib).unwrap()
    );
    assert!(err.contains("installing onnxruntime==1.31.1"), "{err}");

    let (code, v, _) = doctor(&cache, "http://127.0.0.1:9"); // index unreachable: cache only
    assert_eq!(code, Some(0));
    assert_eq!(v["onnxruntime"]["source"], "cache", "{v}");
}

#[test]
fn a_wheel_with_the_wrong_checksum_is_refused_and_nothing_is_installed() {
    let Some(index) = Index::serve(true) else {
        return;
    };
    let server = &index.server;
    let cache = index.dir.path().join("cache");
    let (code, v, _) = doctor(&cache, &server.url);
    assert_eq!(code, Some(1));
    let err = v["onnxruntime"]["error"].as_str().unwrap();
    assert!(
        err.contains("sha256") && err.contains("does not match"),
        "{err}"
    );
    assert!(!cache.join("onnxruntime-1.31.1").exists());
}

#[test]
fn a_bad_ort_dylib_path_is_named_in_the_error() {
    let out = common::odinw()
        .args(["doctor", "--json"])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = v["onnxruntime"]["error"].as_str().unwrap();
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("not a file"),
        "{err}"
    );
}

#[test]
fn an_unreachable_index_gives_a_clear_error() {
    let dir = common::scratch();
    let (code, v, _) = doctor(&dir.path().join("cache"), "http://127.0.0.1:9");
    assert_eq!(code, Some(1));
    let err = v["onnxruntime"]["error"].as_str().unwrap();
    assert!(
        err.contains("127.0.0.1:9/pypi/onnxruntime/1.31.1/json"),
        "{err}"
    );
}

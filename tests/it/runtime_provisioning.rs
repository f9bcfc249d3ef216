//! ONNX Runtime provisioning: odinw installs the pinned wheel from a PyPI-style index (a local
//! server the test starts, serving a wheel built from the real library), verifies it, caches
//! it, and reports clear errors for bad checksums and bad ORT_DYLIB_PATH values. Over HTTPS
//! (a TLS front whose certificate a CA made by the test signed) it installs when that CA comes
//! through `SSL_CERT_FILE`, refuses with a message naming the variables without it, and goes
//! through `HTTPS_PROXY` unless `NO_PROXY` names the index's host.
use crate::support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::proxy::Proxy;
use support::tls::{TestCa, TlsFront};

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
    let out = support::run_oracle_code(
        python,
        "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so.' + onnxruntime.__version__))",
    );
    PathBuf::from(out.trim())
}

/// Lays out `<root>/simple/onnxruntime/` (the Simple API page) and the wheel it links; returns
/// the wheel's sha.
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
    // A PEP 503 project page, as `python -m http.server` serves it (text/html): a relative
    // link with the digest in its fragment, and an sdist the installer must skip.
    let html = format!(
        "<!DOCTYPE html><html><body><h1>Links for onnxruntime</h1>\n\
         <a href=\"{url}/files/none.tar.gz#sha256=00\">onnxruntime-1.31.1.tar.gz</a><br/>\n\
         <a href=\"../../files/{name}#sha256={sha}\" data-requires-python=\"&gt;=3.10\">{name}</a><br/>\n\
         </body></html>\n"
    );
    let page = root.join("simple/onnxruntime");
    std::fs::create_dir_all(&page).unwrap();
    std::fs::write(page.join("index.html"), html).unwrap();
    sha
}

fn doctor(cache: &Path, index: &str) -> (Option<i32>, Value, String) {
    doctor_env(cache, index, &[])
}

fn doctor_env(cache: &Path, index: &str, env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    // Trust and routing: only `env`'s variables.
    let out = support::odinw_clean_net()
        .args(["doctor", "--json"])
        .env("ODINW_CACHE", cache)
        .env("ODINW_PYPI_URL", index)
        .env("ODINW_NO_PYTHON_ORT", "1")
        .env_remove("ORT_DYLIB_PATH")
        .envs(env.iter().copied())
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
    _server: StaticServer,
    /// With `serve_https`: the TLS front the index is reached through.
    front: Option<TlsFront>,
    /// The index's URL (the JSON API names its wheel under it).
    url: String,
}

impl Index {
    /// `None` (the test skips) without an oracle Python holding onnxruntime.
    fn serve(corrupt_sha: bool) -> Option<Self> {
        Self::serve_with(corrupt_sha, None)
    }

    /// The index over HTTPS, with a certificate `ca` signed.
    fn serve_https(ca: &TestCa) -> Option<Self> {
        Self::serve_with(false, Some(ca))
    }

    fn serve_with(corrupt_sha: bool, ca: Option<&TestCa>) -> Option<Self> {
        let python = support::python_with(&["onnxruntime"])?;
        let lib = real_library(&python);
        let dir = support::scratch();
        let site = dir.path().join("index");
        std::fs::create_dir_all(&site).unwrap();
        let server = StaticServer::start(&python, &site);
        let front = ca.map(|ca| TlsFront::start(ca, &server.url));
        let url = match &front {
            Some(f) => f.url(),
            None => server.url.clone(),
        };
        make_index(&site, &lib, &url, corrupt_sha);
        Some(Index {
            dir,
            lib,
            _server: server,
            front,
            url,
        })
    }
}

#[test]
fn installs_the_pinned_wheel_from_an_index_then_uses_the_cache() {
    let Some(index) = Index::serve(false) else {
        return;
    };
    let lib = &index.lib;
    let cache = index.dir.path().join("cache");

    let (code, v, err) = doctor(&cache, &index.url);
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
    let cache = index.dir.path().join("cache");
    let (code, v, _) = doctor(&cache, &index.url);
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
    let out = support::odinw()
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
    let dir = support::scratch();
    let (code, v, _) = doctor(&dir.path().join("cache"), "http://127.0.0.1:9");
    assert_eq!(code, Some(1));
    let err = v["onnxruntime"]["error"].as_str().unwrap();
    assert!(err.contains("127.0.0.1:9/simple/onnxruntime/"), "{err}");
}

#[test]
fn installs_over_https_when_ssl_cert_file_holds_the_ca_and_explains_a_refusal_without() {
    let ca = TestCa::new();
    let Some(index) = Index::serve_https(&ca) else {
        return;
    };
    let front = index.front.as_ref().unwrap();

    // The system store does not hold the test CA: refused, with the variables named.
    let cache = index.dir.path().join("cache-untrusted");
    let (code, v, err) = doctor_env(&cache, &index.url, &[]);
    assert_eq!(code, Some(1), "{v} {err}");
    let msg = v["onnxruntime"]["error"].as_str().unwrap();
    for want in [
        "certificate was refused",
        "SSL_CERT_FILE unset",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "UnknownIssuer",
        "/simple/onnxruntime/",
    ] {
        assert!(msg.contains(want), "missing {want:?}: {msg}");
    }
    assert_eq!(front.handshakes(), 0);
    assert!(!cache.join("onnxruntime-1.31.1").exists());

    let pem = ca.pem();
    let cache = index.dir.path().join("cache");
    let (code, v, err) = doctor_env(
        &cache,
        &index.url,
        &[("SSL_CERT_FILE", pem.to_str().unwrap())],
    );
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["onnxruntime"]["source"], "installed", "{v}");
    assert_eq!(
        std::fs::read(cache.join("onnxruntime-1.31.1/libonnxruntime.so.1.31.1")).unwrap(),
        std::fs::read(&index.lib).unwrap()
    );
    assert_eq!(
        front.handshakes(),
        2,
        "the JSON API and the wheel, both over TLS"
    );
}

#[test]
fn installs_through_https_proxy_unless_no_proxy_names_the_index() {
    let ca = TestCa::new();
    let Some(index) = Index::serve_https(&ca) else {
        return;
    };
    let pem = ca.pem();
    let pem = pem.to_str().unwrap();
    let host = index.url.trim_start_matches("https://").to_string();

    let proxy = Proxy::start();
    let cache = index.dir.path().join("cache-proxy");
    let (code, v, err) = doctor_env(
        &cache,
        &index.url,
        &[("SSL_CERT_FILE", pem), ("HTTPS_PROXY", &proxy.url())],
    );
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["onnxruntime"]["source"], "installed", "{v}");
    assert_eq!(proxy.connects(), vec![host.clone(), host.clone()]);

    let proxy = Proxy::start();
    let cache = index.dir.path().join("cache-direct");
    let (code, v, err) = doctor_env(
        &cache,
        &index.url,
        &[
            ("SSL_CERT_FILE", pem),
            ("https_proxy", &proxy.url()),
            ("no_proxy", "127.0.0.1"),
        ],
    );
    assert_eq!(code, Some(0), "{v} {err}");
    assert!(proxy.connects().is_empty(), "{:?}", proxy.connects());
}

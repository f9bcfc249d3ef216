//! Shared helpers for integration tests: the built binary, the Python oracle, real data in
//! `../shared` (absent in a user's clone: tests skip), and scratch folders.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `odinw` binary built for this test run.
pub fn odinw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_odinw"))
}

/// Runs `odinw` with `args`, returning its output.
pub fn run_odinw(args: &[&str]) -> Output {
    odinw().args(args).output().expect("running odinw")
}

/// The Python interpreter that holds the oracles (pycocotools, ...): `$ODINW_PYTHON`, else
/// `python3`. Returns `None` (and prints why) when a needed module cannot be imported, so the
/// test skips; with `ODINW_REQUIRE_ORACLES=1` (set by `scripts/test.sh`) that is a failure.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var("ODINW_PYTHON").unwrap_or_else(|_| "python3".into()));
    let code = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    let ok = Command::new(&python)
        .args(["-c", &code])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(python);
    }
    let msg = format!(
        "python oracle {} cannot import {:?} (install scripts/requirements-test.txt)",
        python.display(),
        modules
    );
    if std::env::var("ODINW_REQUIRE_ORACLES").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// `$ODINW_TORCH_PYTHON`, a Python with torch (the export environment); `None` (the test
/// skips, saying why) when unset.
pub fn torch_python() -> Option<PathBuf> {
    match std::env::var_os("ODINW_TORCH_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipping: ODINW_TORCH_PYTHON is not set (a Python with torch)");
            None
        }
    }
}

/// Runs an oracle script from `tests/oracles/` with `args`; panics with its stderr on failure.
pub fn run_oracle(python: &Path, script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracles")
        .join(script);
    let out = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .expect("running python oracle");
    assert!(
        out.status.success(),
        "oracle {script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("oracle output is UTF-8")
}

/// `../shared/data/<rel>` beside the checkout, if present (it is not in a user's clone).
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

/// A fresh scratch folder, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("creating a temporary folder")
}

/// Runs a snippet of Python code with the oracle interpreter; panics with its stderr on failure.
pub fn run_oracle_code(python: &Path, code: &str) -> String {
    let out = Command::new(python)
        .args(["-c", code])
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}
pub mod proxy;
pub mod server;
pub mod tls;
pub mod zips;

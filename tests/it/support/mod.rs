//! Shared helpers for the integration tests: the built binary, the Python oracle, real data in
//! `../shared` (absent in a user's clone: tests skip), scratch folders, and a process of its own
//! for a test that needs one ([`alone`]).
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

/// `odinw score --gt gt --dt dt` with `extra` arguments.
pub fn run_score(gt: &Path, dt: &Path, extra: &[&str]) -> Output {
    odinw()
        .arg("score")
        .arg("--gt")
        .arg(gt)
        .arg("--dt")
        .arg(dt)
        .args(extra)
        .output()
        .expect("running odinw")
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

/// `../shared/data/<rel>` beside the checkout (or beside its parent, for a worktree under
/// `wt/`), if present (it is not in a user's clone).
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    // ../shared beside the checkout, or beside its parent (a worktree under wt/).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [repo.join("../shared/data"), repo.join("../../shared/data")];
    if let Some(p) = candidates.iter().map(|d| d.join(rel)).find(|p| p.exists()) {
        return Some(p);
    }
    eprintln!("skipping: {} is absent", candidates[0].join(rel).display());
    None
}

/// `<repository>/<rel>`: a file or folder of this checkout (`demo`, `models/demo`, ...).
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A JSON file's value; panics naming the file.
pub fn read_json(p: &Path) -> serde_json::Value {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Copies the folder `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A finished command's exit status, stdout and stderr, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that a command succeeded, showing its output if not.
pub fn assert_ok(out: &Output) {
    assert!(out.status.success(), "command failed:\n{}", text(out));
}

/// [`assert_ok`], passing the output on.
pub fn ok(out: Output) -> Output {
    assert_ok(&out);
    out
}

/// IoU of two COCO `[x, y, w, h]` boxes.
pub fn iou(a: &[f64], b: &[f64]) -> f64 {
    let (ax2, ay2, bx2, by2) = (a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]);
    let iw = (ax2.min(bx2) - a[0].max(b[0])).max(0.0);
    let ih = (ay2.min(by2) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// Every variable that decides network trust, routing and where downloads come from: a network
/// test removes them all ([`odinw_clean_net`]) and sets only its own.
pub const NETWORK_ENV: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
    "ODINW_ROOT",
    "HF_ENDPOINT",
    "ROBOFLOW_API_KEY",
    "ROBOFLOW_WORKSPACE",
    "ROBOFLOW_API_URL",
];

/// [`odinw`] with none of [`NETWORK_ENV`] set, so the caller's environment cannot leak in.
pub fn odinw_clean_net() -> Command {
    let mut c = odinw();
    for v in NETWORK_ENV {
        c.env_remove(v);
    }
    c
}

/// The real BCCD and Aquarium exports in `../shared/data/roboflow`, if both are present (the
/// test skips, saying why, when not).
pub fn roboflow_exports() -> Option<(PathBuf, PathBuf)> {
    Some((
        shared_data("roboflow/BCCD.v3-raw.coco")?,
        shared_data("roboflow/Aquarium Combined.v2-raw-1024.coco")?,
    ))
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
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
/// Runs test `test` of module `module` (its `module_path!()`) by itself in a child process of
/// this test binary, with `env` added to the child's environment, and returns `false` once it
/// passed (it panics with the child's output if not); in that child it returns `true` and the
/// caller runs the test's body. The integration tests share one process and run on parallel
/// threads: this is for a test that needs process-wide state to itself (the fuzz run's heap
/// counters and panic hook, an ONNX Runtime chosen by `ORT_DYLIB_PATH` before the first load).
pub fn alone(module: &str, test: &str, env: &[(&str, &std::ffi::OsStr)]) -> bool {
    const MARK: &str = "ODINW_TEST_ALONE";
    // `module_path!()` starts with the crate's name (`it::`), test names do not.
    let name = format!("{}::{test}", module.split_once("::").map_or("", |m| m.1));
    if std::env::var(MARK).as_deref() == Ok(name.as_str()) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(MARK, &name);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("running the test binary");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in its own process: {}\n{stdout}\n{stderr}",
        out.status
    );
    false
}

pub mod coco_gen;
pub mod demo_runs;
pub mod eval_cases;
pub mod family_eval;
pub mod fuzz;
pub mod images;
pub mod proxy;
pub mod rng;
pub mod server;
pub mod splits_gen;
pub mod synthetic_run;
pub mod tls;
pub mod zips;

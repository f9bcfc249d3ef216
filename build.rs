//! Embeds data into the binary, and builds the native code odinw links:
//! - `$OUT_DIR/registry_files.rs`: the task files of `odinw_35/`, `odinw_13/` and `demo/tasks/`,
//!   a list of `(suite folder, file name, contents)`;
//! - the static library of `src/preprocess/jpeg_pillow.c` (a JPEG decoding loop that behaves
//!   as Pillow's),
//!   compiled against the libjpeg headers of `mozjpeg-sys`;
//! - `$OUT_DIR/embedded_files.rs`: the demo model (`models/demo/`) and the demo suite's data
//!   (`demo/odinw/`), lists of `(relative path, bytes)`;
//! - `ODINW_GIT_COMMIT` / `ODINW_GIT_DIRTY` (environment of the compiler): the git commit odinw is
//!   built from and whether the tracked sources built into it differed from it, or `unknown` for
//!   both outside a git checkout of this crate (a crates.io or pip source build).
use std::{env, fs, path::Path, process::Command};

fn main() {
    compile_jpeg_loop();
    let root = env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = Path::new(&root);
    let out_dir = env::var("OUT_DIR").unwrap();

    let mut out = String::from("pub(crate) static TASK_FILES: &[(&str, &str, &str)] = &[\n");
    for suite in ["odinw_35", "odinw_13", "demo/tasks"] {
        for path in files_under(&root.join(suite)) {
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_name().unwrap().to_str().unwrap();
                out.push_str(&format!(
                    "    ({suite:?}, {name:?}, include_str!({:?})),\n",
                    path.display().to_string()
                ));
            }
        }
    }
    out.push_str("];\n");
    fs::write(Path::new(&out_dir).join("registry_files.rs"), out).unwrap();

    let mut out = String::new();
    for (name, dir, prefix) in [
        ("DEMO_MODEL", "models/demo", ""),
        ("DEMO_DATA", "demo/odinw", "odinw/"),
    ] {
        out.push_str(&format!(
            "pub(crate) static {name}: &[(&str, &[u8])] = &[\n"
        ));
        let base = root.join(dir);
        for path in files_under(&base) {
            let rel = path.strip_prefix(&base).unwrap().to_str().unwrap();
            if rel.ends_with("README.md") && prefix.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "    ({:?}, include_bytes!({:?})),\n",
                format!("{prefix}{rel}"),
                path.display().to_string()
            ));
        }
        out.push_str("];\n");
    }
    fs::write(Path::new(&out_dir).join("embedded_files.rs"), out).unwrap();

    let (commit, dirty) = git_state(root).unwrap_or(("unknown".into(), "unknown".into()));
    println!("cargo:rustc-env=ODINW_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=ODINW_GIT_DIRTY={dirty}");
}

/// What the binary is built from: a tracked change under these makes the build dirty.
const BUILT_FROM: [&str; 8] = [
    "src",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
    "odinw_35",
    "odinw_13",
    "demo",
    "models",
];

/// `git` run in `root`, its trimmed output if it succeeded.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit and dirty flag (`true`/`false`: a tracked file of [`BUILT_FROM`] differs from the
/// commit) when `root` is the top of a git work tree, with rerun-if-changed on what moves them:
/// HEAD, the branch's ref, the index, and those sources.
fn git_state(root: &Path) -> Option<(String, String)> {
    let top = git(root, &["rev-parse", "--show-toplevel"])?;
    if fs::canonicalize(&top).ok()? != fs::canonicalize(root).ok()? {
        return None; // a source tree unpacked inside some other repository
    }
    let git_dir = git(root, &["rev-parse", "--path-format=absolute", "--git-dir"])?;
    let common = git(
        root,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let (git_dir, common) = (Path::new(&git_dir), Path::new(&common));
    let mut watched = vec![
        git_dir.join("HEAD"),
        git_dir.join("index"),
        common.join("packed-refs"),
    ];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(branch));
    }
    watched.extend(BUILT_FROM.map(|p| root.join(p)));
    // A missing path would rerun this script on every build.
    for p in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let commit = git(root, &["rev-parse", "HEAD"])?;
    let mut args = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    args.extend(BUILT_FROM);
    let status = git(root, &args)?;
    Some((commit, (!status.is_empty()).to_string()))
}

/// Every file under `dir`, sorted, with rerun-if-changed for the folders and files.
/// A missing folder gives no files (a checkout without the demo model still builds; using it
/// then fails with a clear message).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    println!("cargo:rerun-if-changed={}", dir.display());
    if !dir.is_dir() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            println!("cargo:rerun-if-changed={}", p.display());
            out.push(p);
        }
    }
    out
}

/// The Pillow-like JPEG decoding loop in C, against the libjpeg that `mozjpeg-sys` builds
/// (its `links = "jpeg"` metadata gives `DEP_JPEG_INCLUDE`, a path list).
fn compile_jpeg_loop() {
    println!("cargo:rerun-if-changed=src/preprocess/jpeg_pillow.c");
    let mut build = cc::Build::new();
    build.file("src/preprocess/jpeg_pillow.c").opt_level(2);
    let dirs = env::var_os("DEP_JPEG_INCLUDE").expect("mozjpeg-sys gives DEP_JPEG_INCLUDE");
    for dir in env::split_paths(&dirs) {
        build.include(dir);
    }
    build.compile("odinw_jpeg_pillow");
    // mozjpeg-sys assembles libjpeg's x86 SIMD only when `nasm -v` runs; cargo does not show a
    // registry crate's build warnings, so say it here.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let nasm = std::process::Command::new("nasm").arg("-v").output();
    if matches!(arch.as_str(), "x86_64" | "x86") && !nasm.is_ok_and(|o| o.status.success()) {
        println!(
            "cargo:warning=nasm not found: libjpeg is built without its SIMD (JPEG decoding ~2x \
             slower, and some damaged JPEGs decode to other pixels than Pillow's)"
        );
    }
}

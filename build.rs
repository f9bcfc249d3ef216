//! Embeds data into the binary, and builds the native code odinw links:
//! - `$OUT_DIR/registry_files.rs`: the task files of `odinw_35/`, `odinw_13/` and `demo/tasks/`,
//!   a list of `(suite folder, file name, contents)`;
//! - the static library of `src/preprocess/jpeg_pillow.c` (a JPEG decoding loop that behaves
//!   as Pillow's),
//!   compiled against the libjpeg headers of `mozjpeg-sys`;
//! - `$OUT_DIR/embedded_files.rs`: the demo model (`models/demo/`) and the demo suite's data
//!   (`demo/odinw/`), lists of `(relative path, bytes)`.
use std::{env, fs, path::Path};

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

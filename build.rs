//! Embeds the task files of `odinw_35/` and `odinw_13/` into the binary: writes
//! `$OUT_DIR/registry_files.rs`, a list of `(suite folder, file name, contents)`.
use std::{env, fs, path::Path};

fn main() {
    let root = env::var("CARGO_MANIFEST_DIR").unwrap();
    let mut out = String::from("pub(crate) static TASK_FILES: &[(&str, &str, &str)] = &[\n");
    for suite in ["odinw_35", "odinw_13"] {
        let dir = Path::new(&root).join(suite);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            println!("cargo:rerun-if-changed={}", path.display());
            out.push_str(&format!(
                "    ({suite:?}, {name:?}, include_str!({:?})),\n",
                path.display().to_string()
            ));
        }
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("registry_files.rs");
    fs::write(dest, out).unwrap();
}

//! Zip archives through `odinw::download::extract` (check, then extraction into a scratch
//! folder whose every path must resolve inside it).
#![no_main]
#[path = "../../tests/it/support/fuzz/targets.rs"]
mod targets;

use std::sync::OnceLock;

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch folder"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::zip(data, scratch().path());
});

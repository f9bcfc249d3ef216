//! Submission files through `odinw submission check` against the demo suite's annotations.
#![no_main]
#[path = "../../tests/it/support/fuzz/targets.rs"]
mod targets;

use odinw::registry::Suite;
use odinw::submission::check::{CheckOptions, CHALLENGE_SEEDS};
use odinw::submission::keys::KeyMap;
use std::path::Path;
use std::sync::OnceLock;

fn setup() -> &'static (tempfile::TempDir, CheckOptions) {
    static SETUP: OnceLock<(tempfile::TempDir, CheckOptions)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let opts = CheckOptions {
            root: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo")),
            split: "test".into(),
            suite: Some(Suite::Demo),
            track: None,
            seeds: CHALLENGE_SEEDS.map(String::from).to_vec(),
            keys: KeyMap::registry(),
            max_examples: 10,
        };
        (tempfile::tempdir().expect("a scratch folder"), opts)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (dir, opts) = setup();
    targets::submission(data, dir.path(), opts);
});

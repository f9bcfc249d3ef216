//! Results files against the demo suite's ColorShapes test annotations.
#![no_main]
#[path = "../../tests/it/support/fuzz/targets.rs"]
mod targets;

use odinw::eval::GroundTruth;
use odinw::registry::{find, Suite};
use std::path::Path;
use std::sync::OnceLock;

fn gt() -> &'static GroundTruth {
    static GT: OnceLock<GroundTruth> = OnceLock::new();
    GT.get_or_init(|| {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo");
        let ann = find(Suite::Demo, "ColorShapes")
            .and_then(|t| t.ann_file(&demo, "test"))
            .expect("the demo suite");
        GroundTruth::read(&ann).expect("the demo annotations")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::results(gt(), data);
});

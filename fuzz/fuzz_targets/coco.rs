//! COCO annotation files through the evaluator's and the serde reader.
#![no_main]
#[path = "../../tests/it/support/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::coco(data);
});

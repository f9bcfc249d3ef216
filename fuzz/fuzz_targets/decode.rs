//! JPEG/PNG bytes through `odinw::preprocess::decode_bytes`.
#![no_main]
#[path = "../../tests/it/support/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::decode(data);
});

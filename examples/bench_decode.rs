//! Decoding alone, for `benchmarks/decode.sh`: each image of a list read and decoded to RGB
//! (`preprocess::decode_file`) `ROUNDS` times on one thread. Prints one JSON line.
//!
//!     bench_decode IMAGE_LIST ROUNDS
mod bench_common;

use odinw::preprocess::decode_file;
use std::time::Instant;

fn main() {
    let args = bench_common::args(2, "bench_decode IMAGE_LIST ROUNDS");
    let images = bench_common::image_list(&args[0]);
    let rounds: usize = args[1].parse().expect("ROUNDS");
    let mut pixels = 0u64;
    let start = Instant::now();
    for _ in 0..rounds {
        for path in &images {
            let img = decode_file(path).unwrap_or_else(|e| panic!("{e:#}"));
            pixels += img.width as u64 * img.height as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (images.len() * rounds) as f64;
    println!(
        "{{\"images\": {n}, \"images_per_s\": {:.2}, \"mpixels_per_s\": {:.2}}}",
        n / secs,
        pixels as f64 / secs / 1e6
    );
}

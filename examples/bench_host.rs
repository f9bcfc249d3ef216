//! The host side of GLIP inference on one core, for `benchmarks/host_pipeline.sh`: decode,
//! resize, normalise + pad, and post-process recorded head outputs, timed per stage.
//!
//!     bench_host IMAGE_LIST HEADS_DIR
//!
//! IMAGE_LIST holds one image path per line; HEADS_DIR holds `meta.json` and the raw f32 head
//! outputs written by `benchmarks/host_pipeline.py --make-heads`. Prints one JSON line.
mod bench_common;

use odinw::postprocess::{
    postprocess_image, BoxLayout, ClassTokenMap, LevelOutputs, PostprocessConfig,
};
use odinw::preprocess::{decode_file, make_batch, resize_for_glip};
use std::path::Path;
use std::time::{Duration, Instant};

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A level read from disk: stride, height, width, box deltas, centerness, token logits.
type RecordedLevel = (u32, usize, usize, Vec<f32>, Vec<f32>, Vec<f32>);

fn main() {
    let args = bench_common::args(2, "bench_host IMAGE_LIST HEADS_DIR");
    let images = bench_common::image_list(&args[0]);
    let heads = Path::new(&args[1]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(heads.join("meta.json")).unwrap()).unwrap();
    let t = meta["num_tokens"].as_u64().unwrap() as usize;
    let map = ClassTokenMap {
        tokens: serde_json::from_value(meta["classes"].clone()).unwrap(),
    };
    let size = (
        meta["size"][0].as_u64().unwrap() as u32,
        meta["size"][1].as_u64().unwrap() as u32,
    );
    let levels: Vec<RecordedLevel> = meta["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let f = |k: &str| read_f32(&heads.join(l[k].as_str().unwrap()));
            (
                l["stride"].as_u64().unwrap() as u32,
                l["height"].as_u64().unwrap() as usize,
                l["width"].as_u64().unwrap() as usize,
                f("bbox_pred"),
                f("centerness"),
                f("dot_product_logits"),
            )
        })
        .collect();
    let outputs: Vec<LevelOutputs> = levels
        .iter()
        .map(|(stride, h, w, b, c, d)| LevelOutputs {
            stride: *stride,
            height: *h,
            width: *w,
            bbox_pred: b,
            box_layout: BoxLayout::ChannelsFirst,
            centerness: c,
            dot_product_logits: d,
            num_tokens: t,
        })
        .collect();
    let cfg = PostprocessConfig::default();
    let (mut decode, mut resize, mut normalize, mut post) = [Duration::ZERO; 4].into();
    let mut detections = 0usize;
    for path in &images {
        let t0 = Instant::now();
        let img = decode_file(path).unwrap();
        let t1 = Instant::now();
        let resized = resize_for_glip(&img);
        let t2 = Instant::now();
        let batch = make_batch(&[&resized.image]);
        std::hint::black_box(&batch);
        let t3 = Instant::now();
        let dets = postprocess_image(&outputs, &map, size, &cfg).unwrap();
        let t4 = Instant::now();
        detections += dets.len();
        decode += t1 - t0;
        resize += t2 - t1;
        normalize += t3 - t2;
        post += t4 - t3;
    }
    let n = images.len() as f64;
    let rate = |d: Duration| n / d.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "images": images.len(),
            "decode": rate(decode), "resize": rate(resize), "normalize_pad": rate(normalize),
            "postprocess": rate(post), "total": rate(decode + resize + normalize + post),
            "detections_per_image": detections as f64 / n,
        })
    );
}

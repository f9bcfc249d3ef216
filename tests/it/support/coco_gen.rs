//! Generated COCO evaluation cases too large to keep as data: [`large_case`], a realistic
//! ground truth and results file of any size (the bit-exact pycocotools comparison on both
//! numpys, `odinw score`'s report and its default numpy).
use super::rng::SplitMix;

/// A large realistic case, as benchmarks/coco_eval/generate.py makes (fewer background
/// detections, so pycocotools takes seconds): `n_img` images, 16 categories with non-contiguous
/// ids (the last has detections only), about 6 GT boxes per image (some crowd, `area` below
/// w*h, some exactly 1024 or 9216), 3% of images without GT, jittered true positives with
/// duplicates and wrong classes, background boxes, now and then a cell with more than 100
/// detections; 4-decimal scores, so scores tie. AP averages 10 × 101 × 15 precision values,
/// far more than numpy's 8192-element buffer. Annotation ids count from `first_ann_id`.
/// Returns (ground truth, results) as JSON text.
pub fn large_case(seed: u64, n_img: usize, first_ann_id: usize) -> (String, String) {
    let mut rng = SplitMix(seed);
    let mut pool: Vec<u64> = (1..91).collect();
    rng.shuffle(&mut pool);
    let mut cats: Vec<u64> = pool[..16].to_vec();
    cats.sort_unstable();
    let gt_cats = &cats[..15];
    let sizes = [
        (640.0, 480.0),
        (480.0, 640.0),
        (640.0, 427.0),
        (500.0, 375.0),
    ];
    let (mut images, mut anns, mut dets) = (Vec::new(), Vec::new(), Vec::new());
    let r2 = |v: f64| (v * 100.0).round() / 100.0;
    for img in 1..=n_img {
        let (w_img, h_img) = sizes[rng.below(4) as usize];
        images.push(format!(
            "{{\"id\": {img}, \"file_name\": \"{img:012}.jpg\", \"width\": {w_img}, \"height\": {h_img}}}"
        ));
        let n_gt = if rng.chance(0.03) {
            0
        } else {
            (1 + (-(1.0 - rng.unit()).ln() * 5.0) as usize).min(25)
        };
        let mut det = |cat: u64, b: [f64; 4], score: f64| {
            dets.push(format!(
                "{{\"image_id\": {img}, \"category_id\": {cat}, \"bbox\": [{:?}, {:?}, {:?}, {:?}], \"score\": {:?}}}",
                r2(b[0]),
                r2(b[1]),
                r2(b[2].max(0.5)),
                r2(b[3].max(0.5)),
                (score.clamp(0.0, 1.0) * 1e4).round() / 1e4
            ));
        };
        for _ in 0..n_gt {
            let cat = gt_cats[rng.below(15) as usize];
            let s = match rng.below(3) {
                0 => rng.range(4.0, 32.0),
                1 => rng.range(32.0, 96.0),
                _ => rng.range(96.0, 400.0),
            };
            let w = r2((s * rng.range(0.6, 1.6)).min(w_img - 1.0));
            let h = r2((s * rng.range(0.6, 1.6)).min(h_img - 1.0));
            let x = r2(rng.range(0.0, w_img - w));
            let y = r2(rng.range(0.0, h_img - h));
            let area = match rng.below(100) {
                0 => 1024.0,
                1 => 9216.0,
                _ => r2(w * h * rng.range(0.45, 1.0)),
            };
            let crowd = u8::from(rng.chance(0.014));
            anns.push(format!(
                "{{\"id\": {}, \"image_id\": {img}, \"category_id\": {cat}, \"bbox\": [{x:?}, {y:?}, {w:?}, {h:?}], \"area\": {area:?}, \"iscrowd\": {crowd}, \"segmentation\": []}}",
                first_ann_id + anns.len()
            ));
            if rng.chance(0.85) {
                for _ in 0..1 + u64::from(rng.chance(0.3)) {
                    let j = rng.range(0.02, 0.25);
                    let c = if rng.chance(0.93) {
                        cat
                    } else {
                        cats[rng.below(16) as usize]
                    };
                    let b = [
                        x + w * rng.range(-j, j),
                        y + h * rng.range(-j, j),
                        w * (1.0 + rng.range(-j, j)),
                        h * (1.0 + rng.range(-j, j)),
                    ];
                    let score = 1.0 - rng.unit() * rng.unit();
                    det(c, b, score);
                }
            }
        }
        for _ in 0..rng.below(9) {
            let s = rng.range(8.0, 300.0);
            let b = [
                rng.range(0.0, w_img - 10.0),
                rng.range(0.0, h_img - 10.0),
                s * rng.range(0.5, 1.5),
                s * rng.range(0.5, 1.5),
            ];
            let score = rng.unit() * rng.unit() * 0.6;
            let c = cats[rng.below(16) as usize];
            det(c, b, score);
        }
        if img % 250 == 0 {
            let cat = gt_cats[rng.below(15) as usize];
            for _ in 0..101 + rng.below(20) {
                let b = [
                    rng.range(0.0, w_img - 40.0),
                    rng.range(0.0, h_img - 40.0),
                    40.0,
                    40.0,
                ];
                let score = rng.unit() * 0.5;
                det(cat, b, score);
            }
        }
    }
    let gt = format!(
        "{{\"images\": [{}], \"annotations\": [{}], \"categories\": [{}]}}",
        images.join(", "),
        anns.join(",\n"),
        cats.iter()
            .map(|c| format!("{{\"id\": {c}, \"name\": \"c{c}\"}}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    (gt, format!("[{}]", dets.join(",\n")))
}

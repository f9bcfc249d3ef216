//! Training augmentation (`odinw::train::augment`): without flip and at the model's own short
//! side, the training input is bit for bit the tensor the inference pipeline builds from the
//! same file; and a rectangle drawn into an image lands, after resize and flip, where
//! `transform_boxes` puts its box; plans draw what CPython's `random` draws.
use crate::support;

use odinw::model::spec::ModelSpec;
use odinw::pipeline::detector::prepare;
use odinw::preprocess::normalize::normalize_into;
use odinw::preprocess::{decode_file, RgbImage};
use odinw::train::augment::{apply_image, augment_rgb, transform_boxes, AugmentPlan};

fn demo_spec() -> ModelSpec {
    let path = support::repo("models/demo/model.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// GLIP-T's pre-processing in a fixed 800×1344 canvas.
fn glip_t_spec() -> ModelSpec {
    let mut spec = demo_spec();
    spec.preprocess.input_size = [800, 1344];
    spec.preprocess.resize.min_size = 800;
    spec.preprocess.resize.max_size = 1333;
    spec
}

fn noise(w: u32, h: u32) -> RgbImage {
    RgbImage {
        width: w,
        height: h,
        data: (0..w * h * 3)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    }
}

#[test]
fn unflipped_model_size_is_the_inference_input() {
    let dir = support::scratch();
    for (spec, (w, h)) in [
        (demo_spec(), (300, 200)),
        (demo_spec(), (150, 190)),
        (glip_t_spec(), (640, 480)),
    ] {
        let img = noise(w, h);
        let path = dir.path().join(format!("{w}x{h}.png"));
        image::RgbImage::from_raw(w, h, img.data.clone())
            .unwrap()
            .save(&path)
            .unwrap();
        // The inference path: detector::prepare, then the canvas as Detector::detect fills it.
        let prepared = prepare(&spec, &path).unwrap();
        let [ch, cw] = spec.preprocess.input_size;
        let mut eval = vec![0f32; 3 * ch as usize * cw as usize];
        normalize_into(&prepared.image, &mut eval, cw as usize, ch as usize);
        // The training path on the same decoded file.
        let plan = AugmentPlan {
            min_size: spec.preprocess.resize.min_size,
            flip: false,
        };
        let train = apply_image(&decode_file(&path).unwrap(), &plan, &spec.preprocess).unwrap();
        assert_eq!(train.resized, (prepared.image.width, prepared.image.height));
        assert!(
            train.data == eval,
            "{w}x{h}: training and inference inputs differ"
        );
    }
}

/// The first and last column and row whose red value is above half.
fn bright_extent(img: &RgbImage) -> [u32; 4] {
    let mut e = [u32::MAX, u32::MAX, 0, 0];
    for y in 0..img.height {
        for x in 0..img.width {
            if img.pixel(x, y)[0] > 127 {
                e = [e[0].min(x), e[1].min(y), e[2].max(x), e[3].max(y)];
            }
        }
    }
    e
}

#[test]
fn a_drawn_box_lands_where_transform_boxes_says() {
    let demo = demo_spec();
    let glip_t = glip_t_spec();
    let cases = [
        // (spec, original size, box xywh, min size)
        (&demo, (300, 200), [40u32, 30, 90, 50], 192),
        (&demo, (300, 200), [0, 0, 33, 21], 115),
        (&demo, (300, 200), [250, 150, 50, 50], 154),
        (&demo, (60, 40), [10, 5, 20, 30], 154), // upsampled x3.2
        (&glip_t, (640, 480), [100, 200, 301, 97], 560),
        (&glip_t, (640, 480), [600, 0, 40, 480], 800),
    ];
    for (spec, (w, h), b, min_size) in cases {
        let mut img = RgbImage {
            width: w,
            height: h,
            data: vec![0; (w * h * 3) as usize],
        };
        for y in b[1]..b[1] + b[3] {
            for x in b[0]..b[0] + b[2] {
                let i = ((y * w + x) * 3) as usize;
                img.data[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        for flip in [false, true] {
            let plan = AugmentPlan { min_size, flip };
            let out = augment_rgb(&img, &plan, &spec.preprocess);
            let xywh = [[b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64]];
            let boxes = transform_boxes(&xywh, w, h, out.width, out.height, flip);
            assert_eq!(boxes.len(), 1);
            let got = bright_extent(&out);
            let ratio = out.width as f32 / w as f32;
            // The "+1" box spans pixel columns x1..=x2; the resampled edge sits within about a
            // pixel of it, plus the (ratio - 1) by which "+1" widths do not scale.
            let tol = 1.0 + (ratio - 1.0).abs();
            for k in 0..4 {
                assert!(
                    (got[k] as f32 - boxes[0][k]).abs() <= tol,
                    "{w}x{h} box {b:?} {plan:?}: pixels {got:?}, transform {:?}",
                    boxes[0]
                );
            }
        }
    }
}

#[test]
fn plans_are_cpythons_choice_then_random() {
    let Some(python) = support::python_with(&["random"]) else {
        return;
    };
    let scales = odinw::train::augment::train_scales(192);
    let code = format!(
        "import json, random\nr = random.Random(7)\nprint(json.dumps([[r.choice({scales:?}), r.random() < 0.5] for _ in range(300)]))"
    );
    let want: Vec<(u32, bool)> =
        serde_json::from_str(&support::run_oracle_code(&python, &code)).unwrap();
    let mut rng = odinw::splits::rng::PyRandom::new(&7u64.into());
    let got: Vec<(u32, bool)> = (0..300)
        .map(|_| {
            let p = odinw::train::augment::plan(&mut rng, &scales);
            (p.min_size, p.flip)
        })
        .collect();
    assert_eq!(got, want);
}

//! `preprocess::owlv2::owlv2_pixels` against transformers' `Owlv2ImageProcessor` (torchvision
//! backend, run by the PyTorch oracle interpreter, `ODINW_TORCH_PYTHON`): generated images that
//! are blurred and downsampled, upsampled, square and thin, and real RoboFlow JPEGs
//! (../shared/data, decoded by odinw's Pillow-exact decoder; skipped when absent).
use crate::support;
use support::images::{gradient_noise, shared_jpgs};

use odinw::preprocess::decode_file;
use odinw::preprocess::owlv2::owlv2_pixels;
use odinw::preprocess::RgbImage;
use std::path::Path;

/// transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, Owlv2ImageProcessor's defaults (what the
/// oracle uses when given none).
const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// The processor's pixel_values of each `(image, size)`, from one oracle run.
fn oracle(python: &Path, dir: &Path, cases: &[(RgbImage, u32)]) -> Vec<Vec<f32>> {
    let mut jobs = Vec::new();
    for (i, (img, size)) in cases.iter().enumerate() {
        let input = dir.join(format!("in{i}.rgb"));
        std::fs::write(&input, &img.data).unwrap();
        jobs.push(format!(
            "({:?}, {}, {}, {size}, {:?})",
            input.to_str().unwrap(),
            img.width,
            img.height,
            dir.join(format!("out{i}.f32")).to_str().unwrap()
        ));
    }
    let code = format!(
        "from PIL import Image\nfrom transformers import Owlv2ImageProcessor\nimport numpy as np\n\
         for src, w, h, s, dst in [{}]:\n\
         \x20   im = Image.frombytes('RGB', (w, h), open(src, 'rb').read())\n\
         \x20   p = Owlv2ImageProcessor(size={{'height': s, 'width': s}})\n\
         \x20   x = p(images=im, return_tensors='pt')['pixel_values'][0].numpy().astype(np.float32)\n\
         \x20   open(dst, 'wb').write(x.tobytes())\n",
        jobs.join(", ")
    );
    support::run_oracle_code(python, &code);
    (0..cases.len())
        .map(|i| {
            std::fs::read(dir.join(format!("out{i}.f32")))
                .unwrap()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect()
}

fn check(python: &Path, cases: &[(RgbImage, u32)], what: &str) {
    let dir = support::scratch();
    for ((img, size), theirs) in cases.iter().zip(oracle(python, dir.path(), cases)) {
        let ours = owlv2_pixels(img, *size, MEAN, STD).unwrap();
        assert_eq!(ours.len(), theirs.len(), "{what}");
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "{what} ({}x{} -> {size}): max |odinw - transformers| = {worst}",
            img.width,
            img.height
        );
    }
}

#[test]
fn generated_images_match_owlv2_image_processor() {
    let Some(python) = support::torch_python() else {
        return;
    };
    // (width, height, size): blurred + downsampled landscape and portrait, upsampled, no
    // resize at all, a thin strip, odd sizes.
    let cases: Vec<_> = [
        (400, 250, 96),
        (180, 530, 128),
        (60, 45, 96),
        (96, 96, 96),
        (257, 31, 64),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(w, h, size))| (gradient_noise(w, h, i as u64 + 1, 58), size))
    .collect();
    check(&python, &cases, "generated");
}

#[test]
fn real_images_match_owlv2_image_processor() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let Some(files) = shared_jpgs("roboflow/BCCD.v3-raw.coco/test", 2) else {
        return;
    };
    let cases: Vec<_> = files
        .iter()
        .zip([224, 960])
        .map(|(f, size)| (decode_file(f).unwrap(), size))
        .collect();
    check(&python, &cases, "BCCD test images");
}

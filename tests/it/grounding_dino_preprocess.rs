//! `preprocess::grounding_dino` against transformers' `GroundingDinoImageProcessor` (torchvision
//! backend, run by the PyTorch oracle interpreter, `ODINW_TORCH_PYTHON`) with `pad_size` = the
//! canvas: generated images that shrink, grow, keep their size or hit the longest-edge rule, and
//! real RoboFlow JPEGs (../shared/data, decoded by odinw's Pillow-exact decoder; skipped when
//! absent). The resized uint8 image equals torchvision's `resize(antialias=True)` exactly, the
//! mask and the resized size the processor's exactly, pixel_values within 1e-5 (the processor
//! folds 1/255 into mean and std, odinw divides first: the f32 roundings differ).
use crate::support;
use support::images::{gradient_noise, read_f32, shared_jpgs};

use odinw::preprocess::grounding_dino::{gdino_pixels, GdinoPreprocess};
use odinw::preprocess::resize::resize_bilinear_torch;
use odinw::preprocess::{decode_file, RgbImage};
use std::path::Path;

/// transformers' IMAGENET_DEFAULT_MEAN / _STD, GroundingDinoImageProcessor's defaults.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Checks every `(image, shortest, longest, canvas)` against one oracle run.
fn check(python: &Path, cases: &[(RgbImage, u32, u32, [u32; 2])], what: &str) {
    let dir = support::scratch();
    let mut jobs = Vec::new();
    for (i, (img, s, l, [ch, cw])) in cases.iter().enumerate() {
        let input = dir.path().join(format!("in{i}.rgb"));
        std::fs::write(&input, &img.data).unwrap();
        jobs.push(format!(
            "({:?}, {}, {}, {s}, {l}, {ch}, {cw}, {:?})",
            input.to_str().unwrap(),
            img.width,
            img.height,
            dir.path().join(format!("out{i}")).to_str().unwrap()
        ));
    }
    let code = format!(
        "import numpy as np, torch, torchvision.transforms.v2.functional as F\n\
         from PIL import Image\nfrom transformers import GroundingDinoImageProcessor\n\
         from transformers.image_transforms import get_size_with_aspect_ratio\n\
         for src, w, h, s, l, ch, cw, dst in [{}]:\n\
         \x20   im = Image.frombytes('RGB', (w, h), open(src, 'rb').read())\n\
         \x20   p = GroundingDinoImageProcessor(size={{'shortest_edge': s, 'longest_edge': l}}, \
         pad_size={{'height': ch, 'width': cw}})\n\
         \x20   o = p(images=im, return_tensors='pt')\n\
         \x20   open(dst + '.f32', 'wb').write(o['pixel_values'][0].numpy().astype(np.float32).tobytes())\n\
         \x20   open(dst + '.mask', 'wb').write(o['pixel_mask'][0].numpy().astype(np.uint8).tobytes())\n\
         \x20   oh, ow = get_size_with_aspect_ratio((h, w), s, l)\n\
         \x20   x = torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous()\n\
         \x20   r = F.resize(x, [oh, ow], interpolation=F.InterpolationMode.BILINEAR, antialias=True)\n\
         \x20   open(dst + '.u8', 'wb').write(r.permute(1, 2, 0).contiguous().numpy().tobytes())\n\
         \x20   open(dst + '.size', 'w').write(f'{{ow}} {{oh}}')\n",
        jobs.join(", ")
    );
    support::run_oracle_code(python, &code);
    for (i, (img, s, l, canvas)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let pre = GdinoPreprocess {
            canvas: *canvas,
            shortest_edge: *s,
            longest_edge: *l,
            mean: MEAN,
            std: STD,
        };
        let ours = gdino_pixels(img, &pre).unwrap();
        let size = std::fs::read_to_string(out.with_extension("size")).unwrap();
        let (w, h) = (ours.resized.0, ours.resized.1);
        assert_eq!(format!("{w} {h}"), size, "{what} {i}: resized size");
        let resized = resize_bilinear_torch(img, w, h);
        let theirs = std::fs::read(out.with_extension("u8")).unwrap();
        let differ = resized
            .data
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differ, 0,
            "{what} {i} ({}x{} -> {w}x{h}): resized samples differing from torchvision",
            img.width, img.height
        );
        let mask: Vec<i64> = std::fs::read(out.with_extension("mask"))
            .unwrap()
            .into_iter()
            .map(i64::from)
            .collect();
        assert_eq!(ours.mask, mask, "{what} {i}: pixel_mask");
        let pixels = read_f32(&out.with_extension("f32"));
        assert_eq!(ours.pixels.len(), pixels.len());
        let worst = ours
            .pixels
            .iter()
            .zip(&pixels)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-5,
            "{what} {i}: max |odinw - transformers| = {worst}"
        );
    }
}

#[test]
fn generated_images_match_grounding_dino_image_processor() {
    let Some(python) = support::torch_python() else {
        return;
    };
    // (width, height, shortest, longest, canvas): shrink landscape/portrait, grow, unchanged,
    // longest-edge rule on a thin strip, odd sizes, the defaults on a small image.
    let cases: Vec<_> = [
        (400, 250, 96, 160, [160, 160]),
        (180, 530, 96, 160, [160, 160]),
        (60, 45, 96, 160, [160, 170]),
        (96, 130, 96, 160, [160, 160]),
        (257, 31, 96, 160, [160, 160]),
        (131, 257, 96, 160, [170, 160]),
        (333, 250, 800, 1333, [1333, 1333]),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(w, h, s, l, c))| (gradient_noise(w, h, i as u64 + 1, 57), s, l, c))
    .collect();
    check(&python, &cases, "generated");
}

#[test]
fn real_images_match_grounding_dino_image_processor() {
    let Some(python) = support::torch_python() else {
        return;
    };
    let Some(files) = shared_jpgs("roboflow/BCCD.v3-raw.coco/test", 2) else {
        return;
    };
    let cases: Vec<_> = files
        .iter()
        .zip([(96, 160, [160, 160]), (800, 1333, [1333, 1333])])
        .map(|(f, (s, l, c))| (decode_file(f).unwrap(), s, l, c))
        .collect();
    check(&python, &cases, "BCCD test images");
}

//! Pre-processing against tests/oracles/preprocess.py (Pillow decode and BILINEAR resize,
//! numpy normalisation in float32, batch padding): synthetic images of odd sizes, extreme aspect
//! ratios, PNG modes and JPEG variants, plus real ODinW images from ../shared when present.
mod common;

use odinw::preprocess::{
    decode_bytes, load_resized, make_batch, normalize, resize_bilinear, Decoder, RgbImage,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The first two sorted images of each split of the two real datasets.
fn real_images() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ds in ["BCCD.v3-raw.coco", "Aquarium Combined.v2-raw-1024.coco"] {
        for split in ["train", "valid", "test"] {
            let Some(dir) = common::shared_data(&format!("roboflow/{ds}/{split}")) else {
                return Vec::new();
            };
            let mut jpgs: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .collect();
            jpgs.sort();
            out.extend(jpgs.into_iter().take(2));
        }
    }
    out
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn max_abs_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn preprocessing_matches_pillow() {
    let Some(python) = common::python_with(&["PIL", "numpy"]) else {
        return;
    };
    let dir = common::scratch();
    let real = real_images();
    let mut args = vec![dir.path().to_str().unwrap().to_string()];
    args.extend(real.iter().map(|p| p.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let manifest: Value =
        serde_json::from_str(&common::run_oracle(&python, "preprocess.py", &args)).unwrap();
    let images = manifest["images"].as_array().unwrap();
    assert_eq!(images.len(), 31 + real.len());
    let mut resized_for_batch = Vec::new();
    for case in images {
        let path = Path::new(case["path"].as_str().unwrap());
        let name = path.file_name().unwrap().to_str().unwrap();
        let prefix = case["prefix"].as_str().unwrap();
        let size = &case["size"];
        let (w, h) = (
            size[0].as_u64().unwrap() as u32,
            size[1].as_u64().unwrap() as u32,
        );
        let want_decoded = std::fs::read(format!("{prefix}.decoded")).unwrap();
        let want_resized = std::fs::read(format!("{prefix}.resized")).unwrap();
        let (ow, oh) = (
            case["resized"][0].as_u64().unwrap() as u32,
            case["resized"][1].as_u64().unwrap() as u32,
        );

        // 1. Decoding: exact except where the `image` crate decodes a JPEG.
        let (decoded, decoder) = decode_bytes(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!((decoded.width, decoded.height), (w, h), "{name}");
        let jpeg_fallback = name.ends_with(".jpg") && decoder == Decoder::ImageCrate;
        assert_eq!(
            jpeg_fallback,
            name.starts_with("progressive"),
            "{name}: {decoder:?}"
        );
        if jpeg_fallback {
            let d = max_abs_diff(&decoded.data, &want_decoded);
            assert!(d <= 8, "{name}: fallback decode differs from Pillow by {d}");
        } else {
            assert!(
                decoded.data == want_decoded,
                "{name}: decoded samples differ from Pillow"
            );
        }

        // 2. Resizing Pillow's own decoded pixels: byte-exact.
        let pillow_decoded = RgbImage {
            width: w,
            height: h,
            data: want_decoded,
        };
        let resized = resize_bilinear(&pillow_decoded, ow, oh);
        if let Some(i) = (0..resized.data.len()).find(|&i| resized.data[i] != want_resized[i]) {
            panic!(
                "{name}: resize to {ow}x{oh} differs from Pillow at byte {i}: {} vs {}",
                resized.data[i], want_resized[i]
            );
        }

        // 3. The whole path from the file: the f32 tensor, bit for bit.
        if !jpeg_fallback {
            let loaded = load_resized(path).unwrap();
            assert_eq!(loaded.original, (w, h));
            assert_eq!(
                (loaded.image.width, loaded.image.height),
                (ow, oh),
                "{name}"
            );
            let tensor = normalize(&loaded.image);
            let want = read_f32(Path::new(&format!("{prefix}.tensor")));
            assert_eq!(tensor.len(), want.len(), "{name}");
            let same = tensor
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name}: normalised tensor differs from numpy");
        }
        if resized_for_batch.len() < 2 {
            resized_for_batch.push(resized);
        }
    }

    let shape: Vec<u64> = manifest["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let refs: Vec<&RgbImage> = resized_for_batch.iter().collect();
    let batch = make_batch(&refs);
    assert_eq!(
        vec![2, 3, batch.height as u64, batch.width as u64],
        shape,
        "batch shape"
    );
    let want = read_f32(&dir.path().join("batch.tensor"));
    assert!(
        batch
            .data
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "padded batch differs from numpy"
    );
}

/// Every 20th image of the real data (both datasets, all splits), decoded: the same bytes as
/// Pillow's (compared by SHA-256).
#[test]
fn real_images_decode_exactly_as_pillow() {
    let Some(python) = common::python_with(&["PIL"]) else {
        return;
    };
    let Some(root) = common::shared_data("roboflow") else {
        return;
    };
    let mut all = Vec::new();
    for ds in std::fs::read_dir(root).unwrap() {
        for split in std::fs::read_dir(ds.unwrap().path()).unwrap() {
            let split = split.unwrap().path();
            if split.is_dir() {
                all.extend(
                    std::fs::read_dir(split)
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .filter(|p| p.extension().is_some_and(|e| e == "jpg")),
                );
            }
        }
    }
    all.sort();
    let sample: Vec<String> = all
        .iter()
        .step_by(20)
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    assert!(sample.len() >= 40, "{} images", sample.len());
    let mut args = vec!["--hash"];
    args.extend(sample.iter().map(String::as_str));
    let hashes = common::run_oracle(&python, "preprocess.py", &args);
    for (path, want) in sample.iter().zip(hashes.lines()) {
        let (img, decoder) = decode_bytes(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(decoder, Decoder::ExactJpeg, "{path}");
        let got = odinw::util::hash::hex(&Sha256::digest(&img.data));
        assert_eq!(got, want, "{path}: decoded samples differ from Pillow");
    }
}

#[test]
fn bad_files_give_errors_naming_the_file() {
    let dir = common::scratch();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let err = format!("{:#}", load_resized(&text).unwrap_err());
    assert!(
        err.contains("notes.txt") && err.contains("not a JPEG or PNG"),
        "{err}"
    );
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, [0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00]).unwrap();
    let err = format!("{:#}", load_resized(&cut).unwrap_err());
    assert!(
        err.contains("cut.jpg") && err.contains("invalid JPEG"),
        "{err}"
    );
    let missing = dir.path().join("missing.png");
    let err = format!("{:#}", load_resized(&missing).unwrap_err());
    assert!(err.contains("missing.png"), "{err}");
}

/// Truncated and corrupted JPEGs give an image or an error, never a panic.
#[test]
fn damaged_jpegs_do_not_panic() {
    let Some(dir) = common::shared_data("roboflow/BCCD.v3-raw.coco/valid") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    let good = std::fs::read(&files[0]).unwrap();
    let mut state = 7u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..60 {
        let mut bytes = good.clone();
        if i % 3 == 0 {
            bytes.truncate((next() % good.len() as u64) as usize);
        } else {
            for _ in 0..1 + i % 5 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
        }
        let _ = decode_bytes(&bytes);
    }
}

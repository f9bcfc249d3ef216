//! Pre-processing against tests/oracles/preprocess.py (Pillow decode and BILINEAR resize,
//! numpy normalisation in float32, batch padding): synthetic images of odd sizes, extreme aspect
//! ratios, PNG modes and JPEG variants, plus real ODinW images from ../shared when present; and
//! Pillow's verdict (the same pixels, or a refusal) on crafted, cut and seeded mutated files
//! (tests/oracles/decode_mutants.py).
use crate::support;
use support::images::read_f32;

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
            let Some(dir) = support::shared_data(&format!("roboflow/{ds}/{split}")) else {
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

#[test]
fn preprocessing_matches_pillow() {
    let Some(python) = support::python_with(&["PIL", "numpy"]) else {
        return;
    };
    let dir = support::scratch();
    let real = real_images();
    let mut args = vec![dir.path().to_str().unwrap().to_string()];
    args.extend(real.iter().map(|p| p.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let manifest: Value =
        serde_json::from_str(&support::run_oracle(&python, "preprocess.py", &args)).unwrap();
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

        // 1. Decoding: exact, JPEG (progressive too) and PNG.
        let (decoded, decoder) = decode_bytes(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!((decoded.width, decoded.height), (w, h), "{name}");
        let want_decoder = if name.ends_with(".png") {
            Decoder::Png
        } else {
            Decoder::Jpeg
        };
        assert_eq!(decoder, want_decoder, "{name}");
        assert!(
            decoded.data == want_decoded,
            "{name}: decoded samples differ from Pillow"
        );

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
        {
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
    let Some(python) = support::python_with(&["PIL"]) else {
        return;
    };
    let Some(root) = support::shared_data("roboflow") else {
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
    let hashes = support::run_oracle(&python, "preprocess.py", &args);
    for (path, want) in sample.iter().zip(hashes.lines()) {
        let (img, decoder) = decode_bytes(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(decoder, Decoder::Jpeg, "{path}");
        let got = odinw::util::hash::hex(&Sha256::digest(&img.data));
        assert_eq!(got, want, "{path}: decoded samples differ from Pillow");
    }
}

#[test]
fn bad_files_give_errors_naming_the_file() {
    let dir = support::scratch();
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
    let Some(dir) = support::shared_data("roboflow/BCCD.v3-raw.coco/valid") else {
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

/// One file's verdicts: Pillow's (from the oracle's JSON line) and odinw's.
fn verdicts_disagree(case: &Value) -> Option<String> {
    let path = case["file"].as_str().unwrap();
    let name = Path::new(path).file_name().unwrap().to_string_lossy();
    let ours = decode_bytes(&std::fs::read(path).unwrap());
    match (case["ok"].as_bool().unwrap(), ours) {
        (true, Ok((img, _))) => {
            let size = [img.width as u64, img.height as u64];
            let want = [
                case["size"][0].as_u64().unwrap(),
                case["size"][1].as_u64().unwrap(),
            ];
            let hash = odinw::util::hash::hex(&Sha256::digest(&img.data));
            (size != want || hash != case["sha256"].as_str().unwrap())
                .then(|| format!("{name}: decoded, pixels differ from Pillow's"))
        }
        (false, Err(_)) => None,
        // Known gap: Pillow's zlib sees the stream's checksum only in some buffer states after
        // the last row; odinw checks it always (a PNG whose checksum alone is bad).
        (true, Err(e)) if name.ends_with(".png") && format!("{e:#}").contains("zlib's checks") => {
            eprintln!("known PNG gap: {name}: refused for its zlib checksum, Pillow decodes it");
            None
        }
        (true, Err(e)) => Some(format!("{name}: refused ({e:#}), Pillow decodes it")),
        (false, Ok(_)) => Some(format!(
            "{name}: decoded, Pillow refuses it ({})",
            case["error"].as_str().unwrap()
        )),
    }
}

/// Runs the decoding oracle (its files go under `dir`) and compares every file; returns the
/// oracle's verdicts and fails listing every disagreement.
fn agree_with_pillow(
    python: &Path,
    dir: &Path,
    seed: u64,
    n: usize,
    sources: &[PathBuf],
) -> Vec<Value> {
    let mut args = vec![
        dir.join("files").to_str().unwrap().to_string(),
        seed.to_string(),
        n.to_string(),
    ];
    args.extend(sources.iter().map(|p| p.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run_oracle(python, "decode_mutants.py", &args);
    let cases: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bad: Vec<String> = cases.iter().filter_map(verdicts_disagree).collect();
    let refused = cases.iter().filter(|c| !c["ok"].as_bool().unwrap()).count();
    eprintln!(
        "seed {seed}: {} files ({refused} refused by Pillow), {} disagreements",
        cases.len(),
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "{} of {} files:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
    cases
}

/// Issue 12, defects 2, 4 and 6, and the class: generated JPEGs (every decoder path: 4:2:0,
/// 4:2:2, 4:4:4, progressive, optimized, grey, CMYK, restart markers), crafted files (an
/// over-subscribed Huffman table, a 10000x10000 frame with its SOS repeated 100 times, tiny files
/// declaring huge sizes, cut files, Pillow-only marker rules, PNGs whole and cut) and seeded
/// mutants of the generated files: each decodes to Pillow's pixels or is refused as Pillow
/// refuses it. `ODINW_MUTANT_SEED` and `ODINW_MUTANTS` run another corpus.
#[test]
fn generated_crafted_and_mutated_files_agree_with_pillow() {
    let Some(python) = support::python_with(&["PIL", "numpy"]) else {
        return;
    };
    let seed = std::env::var("ODINW_MUTANT_SEED").map_or(12, |s| s.parse().unwrap());
    let n = std::env::var("ODINW_MUTANTS").map_or(200, |s| s.parse().unwrap());
    let dir = support::scratch();
    let cases = agree_with_pillow(&python, dir.path(), seed, n, &[]);
    let verdict = |name: &str| {
        let c = cases
            .iter()
            .find(|c| c["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not made"));
        c["ok"].as_bool().unwrap()
    };
    // The defects' files are refused (and by odinw too: checked above).
    for name in [
        "huffman_oversubscribed.jpg",
        "sos_repeated.jpg",
        "sos_repeated_progressive.jpg",
        "huge_65500x65500.jpg",
        "huge_13000x13000.jpg",
        "cut_60.jpg",
        "no_eoi.jpg",
        "png_cut_half.png",
    ] {
        assert!(!verdict(name), "{name}: Pillow decodes it");
    }
    for name in [
        "gen_progressive.jpg",
        "gen_cmyk.jpg",
        "gen_grey.jpg",
        "thin_1x400.jpg",
    ] {
        assert!(verdict(name), "{name}: Pillow refuses it");
    }
    let bomb = decode_bytes(
        &std::fs::read(
            cases
                .iter()
                .map(|c| c["file"].as_str().unwrap())
                .find(|f| f.ends_with("huge_65500x65500.jpg"))
                .unwrap(),
        )
        .unwrap(),
    );
    assert!(format!("{:#}", bomb.unwrap_err()).contains("DecompressionBombError"));
}

/// Seeded mutants of real RoboFlow JPEGs (BCCD and Aquarium, a few per split): Pillow's pixels or
/// Pillow's refusal, file for file. Skips when ../shared/data is absent.
#[test]
fn mutated_real_images_agree_with_pillow() {
    let Some(python) = support::python_with(&["PIL", "numpy"]) else {
        return;
    };
    let real = real_images();
    if real.is_empty() {
        eprintln!("skipped: no real images under ../shared/data");
        return;
    }
    let seed = std::env::var("ODINW_MUTANT_SEED").map_or(7, |s| s.parse().unwrap());
    let n = std::env::var("ODINW_MUTANTS").map_or(120, |s| s.parse().unwrap());
    let dir = support::scratch();
    agree_with_pillow(&python, dir.path(), seed, n, &real);
}

/// Issue 12, defect 1: an image GLIP's size rule shrinks to a 0-px side (1x2700 at 800/1333)
/// is refused with the file named, as Pillow's resize refuses it; no panic.
#[test]
fn thin_images_are_refused_not_a_panic() {
    let dir = support::scratch();
    let path = dir.path().join("thin.png");
    image::RgbImage::from_pixel(1, 2700, image::Rgb([10, 20, 30]))
        .save(&path)
        .unwrap();
    let err = format!("{:#}", load_resized(&path).unwrap_err());
    assert!(err.contains("thin.png") && err.contains("0-px"), "{err}");
    let wide = dir.path().join("wide.png");
    image::RgbImage::from_pixel(400, 1, image::Rgb([1, 2, 3]))
        .save(&wide)
        .unwrap();
    let ok = load_resized(&wide).unwrap();
    assert_eq!((ok.image.width, ok.image.height), (1200, 3));

    // The demo model (192/192): a 1x400 image resizes to 0x0, the case that panicked in
    // `odinw eval`; the error names the file.
    let path = support::repo("models/demo/model.json");
    let spec: odinw::model::spec::ModelSpec =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let path = dir.path().join("thin_demo.png");
    image::RgbImage::from_pixel(1, 400, image::Rgb([90, 20, 30]))
        .save(&path)
        .unwrap();
    let err = odinw::pipeline::detector::prepare(&spec, &path)
        .err()
        .unwrap();
    let err = format!("{err:#}");
    assert!(
        err.contains("thin_demo.png") && err.contains("0-px"),
        "{err}"
    );
}

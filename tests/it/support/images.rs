//! Test images for the pre-processing oracles: seeded generated ones and real RoboFlow JPEGs.
use odinw::preprocess::RgbImage;
use std::path::{Path, PathBuf};

/// A `width`x`height` image of smooth gradients plus seeded noise (`seed`'s LCG, the top
/// `64 - noise_shift` bits), so that both blur and interpolation matter.
pub fn gradient_noise(width: u32, height: u32, seed: u64, noise_shift: u32) -> RgbImage {
    let mut lcg = super::rng::Lcg(seed);
    let data = (0..width * height * 3)
        .map(|i| {
            let s = lcg.next();
            let x = (i / 3) % width;
            let y = (i / 3) / width;
            ((x * 255 / width + y * 97 / height) as u64 / 2 + (s >> noise_shift)) as u8
        })
        .collect();
    RgbImage {
        width,
        height,
        data,
    }
}

/// The little-endian f32 values of the file at `p` (an oracle's output).
pub fn read_f32(p: &Path) -> Vec<f32> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The files of `dir` with extension `ext`, sorted by name.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The first `n` JPEGs (by name) of `rel` under ../shared/data; `None` when the data is absent.
pub fn shared_jpgs(rel: &str, n: usize) -> Option<Vec<PathBuf>> {
    let mut files = files_with_ext(&super::shared_data(rel)?, "jpg");
    files.truncate(n);
    Some(files)
}

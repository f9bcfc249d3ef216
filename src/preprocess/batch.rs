//! GLIP's batching (`to_image_list`): images normalised and zero-padded at the bottom and right
//! to the batch's largest height and width, each rounded up to a multiple of 32.
use super::image::RgbImage;
use super::normalize::normalize_into;

/// GLIP's `DATALOADER.SIZE_DIVISIBILITY`.
pub const SIZE_DIVISIBILITY: u32 = 32;

/// A batch of pre-processed images: `[n, 3, height, width]` f32, BGR, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub data: Vec<f32>,
    pub height: u32,
    pub width: u32,
    /// Each image's resized, unpadded `(width, height)` (what post-processing clips to).
    pub sizes: Vec<(u32, u32)>,
}

impl Batch {
    /// The `[3, height, width]` slice of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = 3 * self.height as usize * self.width as usize;
        &self.data[i * n..(i + 1) * n]
    }
}

/// Rounds `v` up to a multiple of `d`.
pub fn round_up(v: u32, d: u32) -> u32 {
    v.div_ceil(d) * d
}

/// Normalises `images` (already resized) into one zero-padded batch. Padding depends on the
/// other images, as in GLIP: with one image per batch each is padded on its own.
pub fn make_batch(images: &[&RgbImage]) -> Batch {
    let max_w = images.iter().map(|i| i.width).max().unwrap_or(0);
    let max_h = images.iter().map(|i| i.height).max().unwrap_or(0);
    let (width, height) = (
        round_up(max_w, SIZE_DIVISIBILITY),
        round_up(max_h, SIZE_DIVISIBILITY),
    );
    let n = 3 * width as usize * height as usize;
    let mut data = vec![0f32; n * images.len()];
    for (img, out) in images.iter().zip(data.chunks_exact_mut(n.max(1))) {
        normalize_into(img, out, width as usize, height as usize);
    }
    Batch {
        data,
        height,
        width,
        sizes: images.iter().map(|i| (i.width, i.height)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::normalize::normalized;

    #[test]
    fn pads_to_the_batch_max_rounded_up_to_32() {
        let a = RgbImage {
            width: 33,
            height: 10,
            data: vec![7; 33 * 10 * 3],
        };
        let b = RgbImage {
            width: 5,
            height: 40,
            data: vec![9; 5 * 40 * 3],
        };
        let batch = make_batch(&[&a, &b]);
        assert_eq!((batch.width, batch.height), (64, 64));
        assert_eq!(batch.sizes, vec![(33, 10), (5, 40)]);
        let img0 = batch.image(0);
        assert_eq!(img0[0], normalized(7, 0));
        assert_eq!(img0[32], normalized(7, 0));
        assert_eq!(img0[33], 0.0);
        assert_eq!(img0[10 * 64], 0.0);
        let img1 = batch.image(1);
        assert_eq!(img1[2 * 64 * 64 + 39 * 64 + 4], normalized(9, 2));
        assert_eq!(img1[2 * 64 * 64 + 39 * 64 + 5], 0.0);
        assert_eq!(round_up(64, 32), 64);
    }
}

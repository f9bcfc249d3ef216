//! Which images run together, on which canvas. GLIP evaluates each image on its own canvas (its
//! resize zero-padded bottom/right to the next multiple of 32; `to_image_list` with
//! `TEST.IMS_PER_BATCH 1`), and its output depends on the canvas. [`CanvasMode::PerImage`] gives
//! every image that canvas and batches images whose canvases are equal (a RoboFlow task mostly
//! has one image size), so batching changes nothing but the speed. [`CanvasMode::GlipBatch`]
//! mirrors `TEST.IMS_PER_BATCH N`: N consecutive images padded to the batch's largest.
//! [`CanvasMode::Fixed`] pads every image to the size the model was exported at (odinw's
//! behaviour before per-image canvases; kept for comparisons).
use super::ModelSpec;
use std::collections::BTreeMap;

/// How images are put on canvases and batched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanvasMode {
    /// GLIP's canvas per image; images with the same canvas batched, up to the batch size.
    PerImage,
    /// GLIP's `TEST.IMS_PER_BATCH N`: N consecutive images on the canvas of the largest.
    GlipBatch(usize),
    /// Every image on the model's export size (`preprocess.input_size`).
    Fixed,
}

/// A batch to run: positions (in the task's image order) of its items, and its canvas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub items: Vec<usize>,
    /// `(width, height)`.
    pub canvas: (u32, u32),
}

/// Forms batches as resized images arrive in order. Images wait in groups until `batch` of a
/// group are there: per canvas ([`CanvasMode::PerImage`], [`CanvasMode::Fixed`]), or one group
/// of consecutive images whose canvas is set when it closes ([`CanvasMode::GlipBatch`]). At most
/// `max_waiting` wait in all (the largest group goes first when more would), so memory stays
/// bounded whatever the mix of sizes.
pub struct Batcher<'a> {
    spec: &'a ModelSpec,
    mode: CanvasMode,
    batch: usize,
    max_waiting: usize,
    /// Group key (the canvas; `(0, 0)` for the one GlipBatch group) → waiting positions and
    /// resized sizes; the first position decides the flush order.
    waiting: BTreeMap<(u32, u32), Vec<Waiting>>,
}

/// A waiting image: its position and resized `(width, height)`.
type Waiting = (usize, (u32, u32));

impl<'a> Batcher<'a> {
    pub fn new(spec: &'a ModelSpec, mode: CanvasMode, batch: usize) -> Self {
        let batch = match mode {
            CanvasMode::GlipBatch(n) => n.max(1),
            _ => batch.max(1),
        };
        Batcher {
            spec,
            mode,
            batch,
            max_waiting: 4 * batch,
            waiting: BTreeMap::new(),
        }
    }

    /// The images per batch (the decode stage prepares this many at a time).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The canvas of one resized `(width, height)` image on its own.
    pub fn canvas_of(&self, size: (u32, u32)) -> (u32, u32) {
        match self.mode {
            CanvasMode::Fixed => {
                let [h, w] = self.spec.preprocess.input_size;
                (w, h)
            }
            _ => self.spec.canvas(size.0, size.1),
        }
    }

    /// The group an image of resized `size` waits in.
    fn key(&self, size: (u32, u32)) -> (u32, u32) {
        match self.mode {
            CanvasMode::GlipBatch(_) => (0, 0),
            _ => self.canvas_of(size),
        }
    }

    /// Adds the image at `position` with resized `size`; returns the batches now complete.
    pub fn push(&mut self, position: usize, size: (u32, u32)) -> Vec<Planned> {
        let key = self.key(size);
        let group = self.waiting.entry(key).or_default();
        group.push((position, size));
        let mut out = Vec::new();
        if group.len() == self.batch {
            out.push(self.close(key));
        }
        let waiting: usize = self.waiting.values().map(Vec::len).sum();
        if waiting > self.max_waiting {
            let (&key, _) = self
                .waiting
                .iter()
                .max_by_key(|(_, v)| (v.len(), std::cmp::Reverse(v[0].0)))
                .expect("waiting is not empty");
            out.push(self.close(key));
        }
        out
    }

    /// The batches still waiting, oldest first.
    pub fn finish(&mut self) -> Vec<Planned> {
        let mut keys: Vec<_> = self.waiting.iter().map(|(k, v)| (v[0].0, *k)).collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, k)| self.close(k)).collect()
    }

    /// Takes the group `key` out as a batch: on its canvas, or for GlipBatch on the canvas of
    /// its largest width and height.
    fn close(&mut self, key: (u32, u32)) -> Planned {
        let group = self.waiting.remove(&key).unwrap_or_default();
        let canvas = match self.mode {
            CanvasMode::GlipBatch(_) => {
                let w = group.iter().map(|(_, s)| s.0).max().unwrap_or(0);
                let h = group.iter().map(|(_, s)| s.1).max().unwrap_or(0);
                self.spec.canvas(w, h)
            }
            _ => key,
        };
        Planned {
            items: group.into_iter().map(|(p, _)| p).collect(),
            canvas,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ModelSpec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo/model.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn per_image_groups_equal_canvases_and_flushes_in_order() {
        let spec = spec();
        let mut b = Batcher::new(&spec, CanvasMode::PerImage, 2);
        assert!(b.push(0, (192, 144)).is_empty());
        assert!(b.push(1, (144, 192)).is_empty());
        // 190x150 has 192x160 as its canvas too.
        assert_eq!(
            b.push(2, (190, 150)),
            vec![Planned {
                items: vec![0, 2],
                canvas: (192, 160)
            }]
        );
        assert!(b.push(3, (100, 100)).is_empty());
        assert_eq!(
            b.finish(),
            vec![
                Planned {
                    items: vec![1],
                    canvas: (160, 192)
                },
                Planned {
                    items: vec![3],
                    canvas: (128, 128)
                }
            ]
        );
    }

    #[test]
    fn waiting_images_stay_bounded() {
        let spec = spec();
        let mut b = Batcher::new(&spec, CanvasMode::PerImage, 2);
        let mut planned = Vec::new();
        for i in 0..20 {
            planned.extend(b.push(i, (32 * (i as u32 + 1), 32)));
            assert!(b.waiting.values().map(Vec::len).sum::<usize>() <= 8);
        }
        planned.extend(b.finish());
        let mut all: Vec<usize> = planned.iter().flat_map(|p| p.items.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn glip_batch_pads_consecutive_images_to_the_largest() {
        let spec = spec();
        let mut b = Batcher::new(&spec, CanvasMode::GlipBatch(2), 8);
        assert_eq!(b.batch(), 2);
        assert!(b.push(0, (192, 100)).is_empty());
        assert_eq!(
            b.push(1, (120, 190)),
            vec![Planned {
                items: vec![0, 1],
                canvas: (192, 192)
            }]
        );
        assert!(b.push(2, (33, 33)).is_empty());
        assert_eq!(
            b.finish(),
            vec![Planned {
                items: vec![2],
                canvas: (64, 64)
            }]
        );
    }

    #[test]
    fn fixed_uses_the_export_size() {
        let spec = spec();
        let mut b = Batcher::new(&spec, CanvasMode::Fixed, 1);
        let [h, w] = spec.preprocess.input_size;
        assert_eq!(
            b.push(0, (10, 10)),
            vec![Planned {
                items: vec![0],
                canvas: (w, h)
            }]
        );
    }
}

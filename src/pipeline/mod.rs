//! Running a detector over ODinW tasks: [`detector`] (graphs, text features, batches, GLIP's
//! post-processing), [`canvas`] (which images run together, on which canvas) and [`zeroshot`] (per task: prompt, images, predictions, AP, run store).
pub mod canvas;
pub mod detector;
pub mod zeroshot;

pub use detector::Detector;

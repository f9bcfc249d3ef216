//! Running a detector over ODinW tasks: [`detector`] (graphs, text features, batches, GLIP's
//! post-processing; canvases from [`crate::model::canvas`]) and [`zeroshot`] (per task: prompt, images, predictions, AP, run store).
pub mod detector;
pub mod zeroshot;

pub use detector::Detector;

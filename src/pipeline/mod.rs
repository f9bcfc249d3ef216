//! Running a detector over ODinW tasks: [`detector`] (graphs, text features, batches, GLIP's
//! post-processing; canvases from [`crate::model::canvas`]) and [`zeroshot`] (per task: prompt, images, predictions, AP, run store).
//! [`owlv2`]: OWLv2's two graphs (not yet part of a run).
pub mod detector;
pub mod owlv2;
pub mod zeroshot;

pub use detector::Detector;

//! Running a detector over ODinW tasks: [`detector`] (graphs, text features, batches, GLIP's
//! post-processing; canvases from [`crate::model::canvas`]) and [`zeroshot`] (per task: prompt, images, predictions, AP, run store).
//! [`owlv2`]: OWLv2's two graphs; [`owlv2_eval`]: an OWLv2 model on a task of a run.
//! [`grounding_dino`] and [`grounding_dino_eval`]: the same for Grounding DINO / MM-Grounding-DINO.
//! [`task_run`]: what both families share per task (inputs, scoring, recording).
pub mod detector;
pub mod grounding_dino;
pub mod grounding_dino_eval;
pub mod owlv2;
pub mod owlv2_eval;
pub mod task_run;
pub mod zeroshot;

pub use detector::Detector;

/// The image graph outputs OWLv2's and Grounding DINO's evaluations read (the only ones computed
/// and copied back with I/O binding).
const IMAGE_OUTPUTS: [&str; 2] = ["logits", "pred_boxes"];

//! Fine-tuning (GLIP's protocol §8–9) natively on ONNX Runtime. The pipeline of one run:
//! [`fewshot`] (which k-shot train/val files) → [`dataset`] (decoded images and boxes) →
//! [`augment`] (seeded multi-scale resize and flips) → [`targets`] (ATSS assignment, token
//! targets) → [`graphs`] (frozen features, cached; the step graph's loss and gradients; the
//! predict graph) → [`optimizer`] (AdamW, GLIP's parameter groups, gradient clipping; with
//! I/O binding, [`on_device`] keeps parameters and moments in GPU memory) →
//! [`schedule`] (ReduceLROnPlateau, early stopping) → [`trainer`] (epochs, validation,
//! checkpoints, test scoring). [`manifest`] and [`params`] read the model's training graphs
//! (`<model>/train/`, made by `scripts/export_train_step.py`). [`ort_training`] is the second
//! backend: ONNX Runtime's training API, for libraries built with it; [`ort_inputs`] builds its
//! batches with the same per-batch canvas and targets ([`batch`]) as the first.
pub mod augment;
pub mod batch;
pub mod dataset;
pub mod fewshot;
pub mod graphs;
pub mod manifest;
pub mod on_device;
pub mod optimizer;
pub mod ort_inputs;
pub mod ort_training;
pub mod params;
pub mod schedule;
pub mod targets;
pub mod text;
pub mod torch_topk;
pub mod trainer;

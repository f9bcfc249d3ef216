//! Fine-tuning (issue #8, protocol §8–9): the parts of GLIP's training loop that run in Rust
//! around the training-step graphs — ATSS targets, seeded augmentation, AdamW with gradient
//! clipping, and the plateau schedule with early stopping.
pub mod augment;
pub mod optimizer;
pub mod schedule;
pub mod targets;
pub mod torch_topk;

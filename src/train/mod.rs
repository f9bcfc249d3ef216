//! Fine-tuning (issue #8, TRAIN_CONTRACT.md). [`ort_training`]: backend 2, ONNX Runtime's
//! training API.
pub mod ort_training;

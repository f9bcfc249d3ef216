//! `odinw`: a benchmark harness for Object Detection in the Wild.
//!
//! The modules are in layers, and each only uses modules of lower layers (checked by
//! `tests/architecture.rs`): [`cli`] (parses arguments and prints) → [`train`], [`report`],
//! [`submission`], [`pipeline`] → [`run`] (the run store and the run driver: units, skipping,
//! failures, closing), [`model`] → [`download`], [`splits`], [`postprocess`] → [`data`],
//! [`engine`], [`prompt`] → [`eval`] (COCO AP), [`preprocess`], [`registry`] (which tasks exist
//! and where their files live), [`util`] (atomic writes, locks, hashing, CPython's RNG, the
//! reporter library code talks to the user through).
pub mod cli;
pub mod data;
pub mod download;
pub mod engine;
pub mod eval;
pub mod model;
pub mod pipeline;
pub mod postprocess;
pub mod preprocess;
pub mod prompt;
pub mod registry;
pub mod report;
pub mod run;
pub mod splits;
pub mod submission;
pub mod train;
pub mod util;

//! `odinw`: a benchmark harness for Object Detection in the Wild.
//!
//! The modules read like the pipeline: [`registry`] (which tasks exist and where their files
//! live) → data (download, normalise, validate) → splits (few-shot subsets) → model/engine →
//! postprocess → eval (COCO AP) → report/submission, and train. [`cli`] wires them to the
//! command line; [`util`] holds atomic writes and hashing.
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

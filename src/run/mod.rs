//! The run store: one folder per run of `eval` or `finetune`, laid out so that tables, charts
//! and EvalAI submissions can be made from it at any time, even while it is still running.
//!
//! ```text
//! RUN/
//!   manifest.json          what was run, with what (see [`Manifest`])
//!   summary.json           suite mean/median, evaluated/expected, per-task AP (see [`Summary`])
//!   <task>/                zero-shot and full-shot runs: one folder per task
//!     predictions.json     COCO results list: image_id, category_id, bbox [x,y,w,h], score
//!     metrics.json         {"stats": [12 COCOeval numbers], "per_category": {...}, ...}
//!     log.txt              what the pipeline logged for the task
//!     error.json           only when the task failed: {"error": "..."}
//!   <task>/seed<S>/        few-shot runs: the same files, one folder per seed
//! ```
//!
//! Every file is written atomically; `summary.json` and `manifest.json` are refreshed under a
//! lock (`RUN/.lock`) each time a task finishes or fails.
//!
//! [`Driver`] owns a run's lifecycle (units, skipping, failures, closing); [`setup`] builds the
//! manifest a run starts with; [`aggregate`] computes the suite statistics that `summary.json`
//! and every report show; [`RunStore`] is the folder. [`shard`] splits a run's units over
//! processes; [`merge`] keeps their shared folder (`RUN/shards.json`) and closes it; [`launch`]
//! writes the Slurm and Kubernetes jobs that run the shards.
pub mod aggregate;
pub mod driver;
pub mod guard;
pub mod launch;
mod manifest;
pub mod merge;
mod metrics;
mod predictions;
mod results;
pub mod setup;
pub mod shard;
mod store;
mod summary;

pub use aggregate::{Aggregate, Failure, Odinw13Stats, SuiteStats};
pub use driver::{Driver, Finish, RunFiles, Sharding, UnitReport};
pub use manifest::{
    now_unix, unit_key, DatasetRecord, FileRecord, FinetuneTask, ImageIdSet, Manifest, Provenance,
    RuntimeRecord, Timings, Track,
};
pub use metrics::{FinetuneRecord, Id0Quirk, Metrics};
pub use predictions::{for_each_detection, PredictionsWriter};
pub use results::{run_name, unit_dir, RunResults, Unit, UnitOutcome};
pub use setup::{ModelRecord, RunSetup};
pub use store::{Closed, RunStore, UnitRecord};
pub use summary::{Summary, TaskSummary};

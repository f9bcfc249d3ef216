//! odinw's integration tests, one binary (`cargo test --test it`; one module's tests:
//! `cargo test --test it download::`). Each module was a test binary of its own; the helpers
//! they share are in [`support`]. The tests run on parallel threads of one process, so none may
//! change process-wide state (the environment, the working directory): a child `Command` gets
//! its environment from the test, and a test that needs the process to itself runs in a child
//! process ([`support::alone`]).
mod support;

mod architecture;
mod canvas_parity;
mod download;
mod download_claims;
mod engine_vs_onnxruntime;
mod eval_errors;
mod eval_library;
mod eval_spec_cases;
mod eval_vs_pycocotools;
mod finetune_demo;
mod finetune_selection;
mod fuzz_corpus;
mod grounding_dino_eval;
mod grounding_dino_postprocess;
mod grounding_dino_preprocess;
mod grounding_dino_prompt;
mod https_proxy;
mod io_binding;
mod model_family;
mod normalize;
mod ort_training_backend;
mod ort_training_backend_trained;
mod ort_training_inputs;
mod owlv2_detector;
mod owlv2_eval;
mod owlv2_postprocess;
mod owlv2_preprocess;
mod postprocess_oracle;
mod preprocess_pillow;
mod prompt_maps;
mod provenance;
mod reference_caption;
mod report_html;
mod report_real_task;
mod run_report;
mod runtime_provisioning;
mod score_report;
mod shards;
mod slurm;
mod splits_cli;
mod splits_oracle;
mod splits_rng;
mod submission;
mod train_augment;
mod train_canvas;
mod train_optim;
mod train_targets;
mod trt_profile;
mod zeroshot_pipeline;
mod zeroshot_real_task;

/// The fuzz run's counting allocator ([`support::fuzz`]): it counts for the whole binary and
/// limits only while a fuzz input runs, in a process of its own.
#[global_allocator]
static ALLOC: support::fuzz::Counting = support::fuzz::Counting;

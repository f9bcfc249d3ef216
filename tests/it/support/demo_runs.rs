//! The demo runs that the shard and Slurm tests compare with their single-process twins: their
//! arguments, their scheduler environment, and a run's `summary.json` without the time it was
//! written.
use std::path::Path;
use std::process::Command;

/// `odinw eval` on the demo suite with the demo model (4 units).
pub const DEMO_EVAL: [&str; 7] = [
    "eval",
    "--model",
    "demo",
    "--suite",
    "demo",
    "--threads",
    "1",
];

/// `odinw finetune` of 2 demo tasks × 2 seeds, one epoch (4 units).
pub const DEMO_FINETUNE: [&str; 17] = [
    "finetune",
    "--model",
    "demo",
    "--suite",
    "demo",
    "--tasks",
    "NovelShapes,ColorShapes",
    "--track",
    "prompt",
    "--shots",
    "3",
    "--seeds",
    "3,30",
    "--max-epochs",
    "1",
    "--threads",
    "1",
];

/// `base` followed by `--out OUT`.
pub fn with_out(base: &[&str], out: &Path) -> Vec<String> {
    base.iter()
        .map(|s| s.to_string())
        .chain(["--out".to_string(), out.display().to_string()])
        .collect()
}

/// `RUN/summary.json` without `updated_unix` (when it was written), which must be there.
pub fn summary_without_time(run: &Path) -> serde_json::Value {
    let mut s = super::read_json(&run.join("summary.json"));
    let t = s
        .as_object_mut()
        .unwrap()
        .remove("updated_unix")
        .expect("summary.json has updated_unix");
    assert!(t.as_u64().unwrap() > 0);
    s
}

/// Runs `cmd` with exactly the scheduler environment `env`: a test machine may itself be a
/// Slurm array element or a Kubernetes pod, whose shard variables are removed first.
pub fn scheduler_env(cmd: &mut Command, env: &[(&str, &str)]) {
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
}

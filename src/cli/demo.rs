//! `odinw demo`: the zero-shot track on the bundled demo suite (generated images, classes named
//! by multi-word phrases or nonce words) with the embedded tiny model; offline, in seconds.
use super::eval;
use crate::registry::Suite;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    eval::run(eval::Args {
        track: eval::EvalTrack::Zeroshot,
        model: "demo".into(),
        suite: Suite::Demo,
        tasks: Vec::new(),
        split: "test".into(),
        root: None,
        device: crate::engine::Device::Cpu,
        fp16: false,
        batch: 1,
        io_binding: crate::engine::IoBinding::Auto,
        threads: 0,
        no_prompt: false,
        fix_id0: false,
        out: Some(args.out),
        json: args.json,
    })
}

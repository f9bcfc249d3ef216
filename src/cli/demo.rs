//! `odinw demo`: the zero-shot track on the bundled demo suite (generated images, classes named
//! by multi-word phrases or nonce words) with the embedded tiny model; offline, in seconds.
use super::args::{RunArgs, TaskArgs};
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
        run: RunArgs {
            model: "demo".into(),
            select: TaskArgs {
                suite: Suite::Demo,
                tasks: Vec::new(),
                root: None,
            },
            split: "test".into(),
            device: crate::engine::Device::Cpu,
            threads: 0,
            io_binding: crate::engine::IoBinding::Auto,
            no_prompt: false,
            fix_id0: false,
            out: Some(args.out),
            json: args.json,
            shard: Default::default(),
        },
        fp16: false,
        batch: 1,
        glip_batch: None,
        fixed_canvas: false,
        chunked_size: None,
    })
}

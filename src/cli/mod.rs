//! Command-line interface: one file per subcommand, each a thin layer over the library.
mod info;
mod list;
mod prompt;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "odinw",
    version,
    about = "Benchmark harness for Object Detection in the Wild (ODinW)"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the tasks of a suite, with what is on disk.
    List(list::Args),
    /// Show one task: folder, splits, categories, prompts, few-shot files.
    Info(info::Args),
    /// Show the caption GLIP queries a task with and each class's token positions.
    Prompt(prompt::Args),
}

/// Runs the command line and maps failures to exit codes (1 = failed, 2 = usage).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List(a) => list::run(a),
        Command::Info(a) => info::run(a),
        Command::Prompt(a) => prompt::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

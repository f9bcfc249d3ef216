//! The `odinw` command. Exit codes: 0 success, 1 the command failed (the message says why),
//! 2 the command line was invalid.
use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`odinw list | head`), like other Unix tools.
    // SAFETY: restoring the default action of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    odinw::cli::main()
}

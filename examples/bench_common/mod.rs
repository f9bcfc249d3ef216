//! What the benchmark examples share: their command line and the image list
//! (`benchmarks/image_list.sh` writes it: one image path per line).
use std::path::PathBuf;

/// The command line's arguments after the program's name; exits with `usage` unless there are
/// `n` of them.
pub fn args(n: usize, usage: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != n {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    }
    args
}

/// The image paths listed in `list`, one a line.
pub fn image_list(list: &str) -> Vec<PathBuf> {
    std::fs::read_to_string(list)
        .unwrap_or_else(|e| panic!("reading the image list {list}: {e}"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect()
}

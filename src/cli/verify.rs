//! `odinw verify`: re-checks installed archives offline against their manifests (every file's
//! size and sha256), without the network.
use super::args::TaskArgs;
use crate::download::manifest::Manifest;
use crate::download::progress::human_bytes;
use crate::download::state::StateDir;
use crate::registry::Suite;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    select: TaskArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.select.suite == Suite::Demo && args.select.root.is_none() {
        println!("the demo suite is built into odinw (nothing was downloaded, nothing to verify)");
        return Ok(ExitCode::SUCCESS);
    }
    let root = args.select.data_root()?;
    let state = StateDir::new(&root);
    let tasks = args.select.select()?;
    let mut archives: Vec<(String, Vec<String>)> = Vec::new();
    for t in tasks {
        match archives.iter_mut().find(|(a, _)| *a == t.archive) {
            Some((_, names)) => names.push(t.name.clone()),
            None => archives.push((t.archive.clone(), vec![t.name.clone()])),
        }
    }
    let (mut ok, mut damaged, mut absent) = (0, 0, 0);
    for (archive, names) in &archives {
        let label = super::download::archive_label(archive, names);
        let path = state.manifest(archive);
        let line = match Manifest::read_if_present(&path) {
            Err(e) => {
                damaged += 1;
                format!("DAMAGED: {e:#}")
            }
            Ok(None) => {
                absent += 1;
                "not installed by odinw download (no manifest)".to_string()
            }
            Ok(Some(m)) => {
                let damage = m.full_check(&state.odinw_dir());
                if damage.is_empty() {
                    ok += 1;
                    format!(
                        "ok: {} files, {}, sha256 of each matches",
                        m.files.len(),
                        human_bytes(m.installed_bytes())
                    )
                } else {
                    damaged += 1;
                    format!(
                        "DAMAGED: {} (run odinw download again to repair)",
                        damage.describe()
                    )
                }
            }
        };
        println!("{label:<24} {line}");
    }
    println!(
        "{} archive{} under {}: {ok} verified, {damaged} damaged, {absent} not installed",
        archives.len(),
        if archives.len() == 1 { "" } else { "s" },
        root.join("odinw").display()
    );
    Ok(if damaged + absent > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

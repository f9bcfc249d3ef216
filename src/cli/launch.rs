//! `odinw launch slurm|k8s --shards N -- <odinw command>`: the scheduler's job for a sharded
//! run (a Slurm array with a dependent merge job, submitted with `--submit`, waited for with
//! `--wait`; a Kubernetes Indexed Job manifest to `kubectl apply`).
use crate::run::launch::{self, K8sLaunch, Resources, ShardedCommand, SlurmLaunch};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum Command {
    /// A Slurm job array (one element per shard) and an `afterany` merge job.
    Slurm(SlurmArgs),
    /// A Kubernetes Indexed Job (one pod per shard) on a shared volume.
    K8s(K8sArgs),
}

#[derive(clap::Args)]
pub struct Common {
    /// Number of shards (array elements / pods).
    #[arg(long)]
    shards: usize,
    /// GPUs per shard.
    #[arg(long, default_value_t = 1)]
    gpus: u32,
    /// CPUs per shard.
    #[arg(long, default_value_t = 8)]
    cpus: u32,
    /// Memory per shard, GiB.
    #[arg(long, default_value_t = 32)]
    mem: u32,
    /// The odinw command every shard runs (`eval ...` or `finetune ...` with `--out RUN`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl Common {
    fn resources(&self, time: &str) -> Resources {
        Resources {
            gpus: self.gpus,
            cpus: self.cpus,
            mem_gib: self.mem,
            time: time.to_string(),
        }
    }
}

#[derive(clap::Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    common: Common,
    /// Time limit per element (Slurm's --time).
    #[arg(long, default_value = "04:00:00")]
    time: String,
    #[arg(long)]
    partition: Option<String>,
    #[arg(long, default_value = "odinw")]
    job_name: String,
    /// Where the scripts and logs go [default: RUN/slurm].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The odinw the jobs run [default: this executable].
    #[arg(long)]
    odinw: Option<PathBuf>,
    /// Submit with sbatch (the array, then the merge job).
    #[arg(long)]
    submit: bool,
    /// With --submit: wait for the merge job and exit with its status (3: units missing or
    /// failed, listed in its log).
    #[arg(long, requires = "submit")]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 86400)]
    timeout: u64,
}

#[derive(clap::Args)]
pub struct K8sArgs {
    #[command(flatten)]
    common: Common,
    /// The container image (odinw on PATH).
    #[arg(long)]
    image: String,
    /// The PersistentVolumeClaim (ReadWriteMany) holding the dataset root and the run.
    #[arg(long)]
    claim: String,
    /// Where the claim is mounted; --out (and --root) must be under it.
    #[arg(long, default_value = "/shared")]
    mount: PathBuf,
    #[arg(long, default_value = "odinw")]
    name: String,
    /// Write the manifest here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Slurm(a) => slurm(a),
        Command::K8s(a) => k8s(a),
    }
}

fn slurm(a: SlurmArgs) -> Result<ExitCode> {
    let command = ShardedCommand::parse(&a.common.command)?;
    let odinw = match a.odinw {
        Some(p) => p,
        None => std::env::current_exe().context("finding this executable")?,
    };
    let launch = SlurmLaunch {
        shards: a.common.shards,
        dir: a.dir.unwrap_or_else(|| command.out.join("slurm")),
        resources: a.common.resources(&a.time),
        command,
        odinw,
        partition: a.partition,
        job_name: a.job_name,
    };
    let scripts = launch.write()?;
    println!("wrote {}", scripts.shards.display());
    println!("wrote {}", scripts.merge.display());
    if !a.submit {
        println!(
            "submit: jid=$(sbatch --parsable {}) && sbatch --dependency=afterany:$jid {}",
            scripts.shards.display(),
            scripts.merge.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = launch::submit_slurm(&scripts)?;
    println!(
        "submitted array job {} ({} elements) and merge job {} (afterany); logs in {}",
        jobs.array_job,
        launch.shards,
        jobs.merge_job,
        scripts.logs.display()
    );
    if !a.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let end = launch::wait_slurm(&jobs.merge_job, Duration::from_secs(a.timeout))?;
    println!(
        "merge job {} ended {} (exit code {}:{}); its log: {}/merge_{}.out",
        jobs.merge_job,
        end.state,
        end.exit_code,
        end.signal,
        scripts.logs.display(),
        jobs.merge_job
    );
    Ok(ExitCode::from(end.status().clamp(0, 255) as u8))
}

fn k8s(a: K8sArgs) -> Result<ExitCode> {
    let launch = K8sLaunch {
        shards: a.common.shards,
        command: ShardedCommand::parse(&a.common.command)?,
        resources: a.common.resources(""),
        name: a.name,
        image: a.image,
        claim: a.claim,
        mount: a.mount,
    };
    let text = serde_json::to_string_pretty(&launch.job()?)? + "\n";
    match a.output {
        Some(p) => {
            crate::util::fs::write_atomic(&p, text.as_bytes())?;
            println!("wrote {} (kubectl apply -f {})", p.display(), p.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

//! Launchers for sharded runs on the schedulers people have, not a scheduler of odinw's own:
//! a Slurm job array with a dependent `afterany` merge job ([`slurm_scripts`], submitted and
//! waited for by [`submit_slurm`]), and a Kubernetes Indexed Job ([`k8s_job`], JSON, which is
//! YAML that `kubectl apply -f` reads). Each array element or pod runs the same odinw command
//! and takes its shard from `SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT` or
//! `JOB_COMPLETION_INDEX` (`--shards N`).
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The odinw command the shards run (`eval ...` or `finetune ...`), checked.
#[derive(Clone, Debug)]
pub struct ShardedCommand {
    /// The arguments after the program name, without any `--shard`/`--shards`.
    pub args: Vec<String>,
    /// Its `--out`: the run folder every shard writes into (on a shared filesystem).
    pub out: PathBuf,
    /// Its `--root`, if it names one (the dataset every shard reads).
    pub root: Option<PathBuf>,
}

/// `args[i]` as the option `name`: `--name V` (its value, and 2 arguments taken) or `--name=V`
/// (1 taken); `None` when `args[i]` is another argument.
fn option_at(args: &[String], i: usize, name: &str) -> Option<(Option<String>, usize)> {
    match args[i].strip_prefix(name)? {
        "" => Some((args.get(i + 1).cloned(), 2)),
        v => v.strip_prefix('=').map(|v| (Some(v.to_string()), 1)),
    }
}

impl ShardedCommand {
    /// Checks `args` (an optional leading `odinw`, then `eval` or `finetune` and its options):
    /// it must name its run folder with `--out`, and must not choose a shard itself.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut args: Vec<String> = args.to_vec();
        if args
            .first()
            .is_some_and(|a| a == "odinw" || a.ends_with("/odinw"))
        {
            args.remove(0);
        }
        match args.first().map(String::as_str) {
            Some("eval" | "finetune") => {}
            Some(other) => bail!("only `eval` and `finetune` run in shards, not `{other}`"),
            None => bail!("give the odinw command to shard after `--`, e.g. `-- eval --out RUN`"),
        }
        let (mut out, mut root) = (None, None);
        let mut i = 1;
        while i < args.len() {
            let a = &args[i];
            if a == "--shard"
                || a == "--shards"
                || a.starts_with("--shard=")
                || a.starts_with("--shards=")
            {
                bail!("leave {a} out of the command: the launcher gives each element its shard");
            }
            if let Some((v, took)) = option_at(&args, i, "--out") {
                out = v;
                i += took;
            } else if let Some((v, took)) = option_at(&args, i, "--root") {
                root = v.map(PathBuf::from);
                i += took;
            } else {
                i += 1;
            }
        }
        let Some(out) = out else {
            bail!(
                "the command must name its run folder with --out (on a filesystem every node sees)"
            );
        };
        Ok(Self {
            args,
            out: PathBuf::from(out),
            root,
        })
    }
}

/// What each Slurm array element (or Kubernetes pod) asks for.
#[derive(Clone, Debug)]
pub struct Resources {
    pub gpus: u32,
    pub cpus: u32,
    /// Memory, as Slurm and Kubernetes write it (`16G` / `16Gi`); in GiB here.
    pub mem_gib: u32,
    /// Slurm's `--time` (e.g. `04:00:00`).
    pub time: String,
}

/// The Slurm side of a launch: where the scripts and logs go, and the options of every job.
#[derive(Clone, Debug)]
pub struct SlurmLaunch {
    pub shards: usize,
    pub command: ShardedCommand,
    pub resources: Resources,
    /// The odinw executable the jobs run (an absolute path every node can reach).
    pub odinw: PathBuf,
    /// Folder for `shards.sbatch`, `merge.sbatch` and `logs/`.
    pub dir: PathBuf,
    pub partition: Option<String>,
    pub job_name: String,
}

/// The two scripts of a Slurm launch.
pub struct SlurmScripts {
    pub shards: PathBuf,
    pub merge: PathBuf,
    pub logs: PathBuf,
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl SlurmLaunch {
    fn header(&self, name: &str, logs: &Path, array: bool) -> String {
        let r = &self.resources;
        let mut h = format!("#!/bin/bash\n#SBATCH --job-name={}\n", quote(name));
        if array {
            h += &format!("#SBATCH --array=0-{}\n", self.shards - 1);
            h += &format!("#SBATCH --cpus-per-task={}\n", r.cpus.max(1));
            h += &format!("#SBATCH --mem={}G\n", r.mem_gib.max(1));
            if r.gpus > 0 {
                h += &format!("#SBATCH --gres=gpu:{}\n", r.gpus);
            }
            h += &format!("#SBATCH --time={}\n", r.time);
            let l = logs.display();
            h += &format!(
                "#SBATCH --output={l}/shard_%A_%a.out\n#SBATCH --error={l}/shard_%A_%a.err\n"
            );
        } else {
            h += "#SBATCH --cpus-per-task=1\n#SBATCH --mem=2G\n#SBATCH --time=00:30:00\n";
            let l = logs.display();
            h += &format!("#SBATCH --output={l}/merge_%j.out\n#SBATCH --error={l}/merge_%j.err\n");
        }
        if let Some(p) = &self.partition {
            h += &format!("#SBATCH --partition={}\n", quote(p));
        }
        h
    }

    /// The array script: element `SLURM_ARRAY_TASK_ID` of `shards` runs the command with
    /// `--shards N` (its shard comes from the array's environment).
    pub fn shards_script(&self) -> String {
        let logs = absolute(&self.dir).join("logs");
        let mut args: Vec<String> = vec![quote(&self.odinw.display().to_string())];
        args.extend(self.command.args.iter().map(|a| quote(a)));
        args.push("--shards".into());
        args.push(self.shards.to_string());
        format!(
            "{}\n# odinw launch slurm: shard $SLURM_ARRAY_TASK_ID of {} of the run in {}.\n\
             # The shard that finishes the run's last unit merges it; the dependent merge job\n\
             # (merge.sbatch, afterany) merges it whatever happened, and lists what is missing.\n\
             set -euo pipefail\nexec {}\n",
            self.header(&self.job_name, &logs, true),
            self.shards,
            absolute(&self.command.out).display(),
            args.join(" ")
        )
    }

    /// The merge script: `odinw merge RUN`; its exit status is the launch's (0, or 3 when a
    /// unit is missing or failed).
    pub fn merge_script(&self) -> String {
        let logs = absolute(&self.dir).join("logs");
        format!(
            "{}\n# odinw launch slurm: merges the run after every array element (afterany).\n\
             set -euo pipefail\nexec {} merge {}\n",
            self.header(&format!("{}-merge", self.job_name), &logs, false),
            quote(&self.odinw.display().to_string()),
            quote(&absolute(&self.command.out).display().to_string())
        )
    }

    /// Writes `shards.sbatch`, `merge.sbatch` and creates `logs/` in [`Self::dir`].
    pub fn write(&self) -> Result<SlurmScripts> {
        if self.shards == 0 {
            bail!("--shards must be at least 1");
        }
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let shards = self.dir.join("shards.sbatch");
        let merge = self.dir.join("merge.sbatch");
        crate::util::fs::write_atomic(&shards, self.shards_script().as_bytes())?;
        crate::util::fs::write_atomic(&merge, self.merge_script().as_bytes())?;
        Ok(SlurmScripts {
            shards,
            merge,
            logs,
        })
    }
}

/// The job ids of a submitted launch.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Submitted {
    pub array_job: String,
    pub merge_job: String,
}

/// `sbatch --parsable FILE [extra]`: the job id.
fn sbatch(script: &Path, extra: &[String]) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .context("running sbatch (is Slurm's client installed and on PATH?)")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {text:?}");
    }
    Ok(id)
}

/// Submits the array, then the merge job with `--dependency=afterany:<array>`.
pub fn submit_slurm(scripts: &SlurmScripts) -> Result<Submitted> {
    let array_job = sbatch(&scripts.shards, &[])?;
    let merge_job = sbatch(
        &scripts.merge,
        &[format!("--dependency=afterany:{array_job}")],
    )?;
    Ok(Submitted {
        array_job,
        merge_job,
    })
}

/// How a Slurm job ended: its state and exit status (`ExitCode=S:G` of `scontrol`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JobEnd {
    pub state: String,
    pub exit_code: i32,
    pub signal: i32,
}

impl JobEnd {
    /// The status to exit with: the job's own, 1 for a signal or a state other than
    /// COMPLETED/FAILED (cancelled, timed out, ...), never 0 for a job that did not complete.
    pub fn status(&self) -> i32 {
        match self.state.as_str() {
            "COMPLETED" => 0,
            "FAILED" if self.signal == 0 && self.exit_code != 0 => self.exit_code,
            _ => 1,
        }
    }
}

/// Waits until Slurm no longer lists `job` as pending or running (polling `squeue`, which is
/// faster than `sbatch --wait`'s growing sleeps), then reads how it ended from `scontrol`.
/// Gives up after `timeout`.
pub fn wait_slurm(job: &str, timeout: Duration) -> Result<JobEnd> {
    let start = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-j", job, "-o", "%T"])
            .output()
            .context("running squeue")?;
        let listed = String::from_utf8_lossy(&out.stdout);
        let active = listed.lines().any(|s| {
            matches!(
                s.trim(),
                "PENDING"
                    | "RUNNING"
                    | "CONFIGURING"
                    | "COMPLETING"
                    | "SUSPENDED"
                    | "REQUEUED"
                    | "RESIZING"
            )
        });
        if out.status.success() && !active {
            break;
        }
        if start.elapsed() > timeout {
            bail!("job {job} still not finished after {:?}", timeout);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = Command::new("scontrol")
        .args(["-o", "show", "job", job])
        .output()
        .context("running scontrol")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_job_end(&text).with_context(|| {
        format!(
            "job {job}: scontrol shows no end state ({}{})",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// `JobState` and `ExitCode` of `scontrol -o show job` (the first record).
pub fn parse_job_end(text: &str) -> Option<JobEnd> {
    let line = text.lines().next()?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    let state = field("JobState")?.to_string();
    let (code, signal) = field("ExitCode")?.split_once(':')?;
    Some(JobEnd {
        state,
        exit_code: code.parse().ok()?,
        signal: signal.parse().ok()?,
    })
}

/// The Kubernetes side of a launch.
#[derive(Clone, Debug)]
pub struct K8sLaunch {
    pub shards: usize,
    pub command: ShardedCommand,
    pub resources: Resources,
    pub name: String,
    pub image: String,
    /// The PersistentVolumeClaim (ReadWriteMany) that holds the dataset root and the run.
    pub claim: String,
    /// Where the claim is mounted in each pod; `--out` (and `--root`) must be under it.
    pub mount: PathBuf,
}

impl K8sLaunch {
    /// The Indexed Job: completions = parallelism = shards, each pod `odinw <command> --shards
    /// N` (its index from `JOB_COMPLETION_INDEX`), the shared claim mounted, GPUs as
    /// `nvidia.com/gpu` limits, one retry per index.
    pub fn job(&self) -> Result<Value> {
        if self.shards == 0 {
            bail!("--shards must be at least 1");
        }
        let under_mount = |p: &Path, what: &str| -> Result<()> {
            if !p.is_absolute() || !p.starts_with(&self.mount) {
                bail!(
                    "{what} {} must be an absolute path under the shared volume's mount {} \
                     (every pod writes there)",
                    p.display(),
                    self.mount.display()
                );
            }
            Ok(())
        };
        under_mount(&self.command.out, "--out")?;
        if let Some(root) = &self.command.root {
            under_mount(root, "--root")?;
        }
        let mut command: Vec<String> = vec!["odinw".into()];
        command.extend(self.command.args.iter().cloned());
        command.extend(["--shards".to_string(), self.shards.to_string()]);
        let r = &self.resources;
        let mut limits = serde_json::Map::new();
        limits.insert("cpu".into(), json!(r.cpus.max(1).to_string()));
        limits.insert("memory".into(), json!(format!("{}Gi", r.mem_gib.max(1))));
        if r.gpus > 0 {
            limits.insert("nvidia.com/gpu".into(), json!(r.gpus.to_string()));
        }
        Ok(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": self.name,
                "labels": { "app.kubernetes.io/name": "odinw" }
            },
            "spec": {
                "completionMode": "Indexed",
                "completions": self.shards,
                "parallelism": self.shards,
                "backoffLimitPerIndex": 1,
                "maxFailedIndexes": self.shards,
                "template": {
                    "metadata": { "labels": { "app.kubernetes.io/name": "odinw" } },
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": "odinw",
                            "image": self.image,
                            "command": command,
                            "resources": { "requests": limits.clone(), "limits": limits },
                            "volumeMounts": [{
                                "name": "shared",
                                "mountPath": self.mount.display().to_string()
                            }]
                        }],
                        "volumes": [{
                            "name": "shared",
                            "persistentVolumeClaim": { "claimName": self.claim }
                        }]
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_command_must_name_its_run_and_leave_the_shard_to_the_launcher() {
        let c = ShardedCommand::parse(&args("odinw eval --suite demo --out /s/run")).unwrap();
        assert_eq!(c.args, args("eval --suite demo --out /s/run"));
        assert_eq!(c.out, PathBuf::from("/s/run"));
        assert_eq!(c.root, None);
        for root in ["--root /d", "--root=/d"] {
            let c = ShardedCommand::parse(&args(&format!("eval {root} --out /s/run"))).unwrap();
            assert_eq!(
                (c.root, c.out),
                (Some("/d".into()), "/s/run".into()),
                "{root}"
            );
        }
        assert_eq!(
            ShardedCommand::parse(&args("finetune --out=/r"))
                .unwrap()
                .out,
            PathBuf::from("/r")
        );
        for bad in [
            "eval --suite demo",
            "eval --out r --shard 0/2",
            "report r",
            "",
        ] {
            assert!(ShardedCommand::parse(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn scontrol_end_states_map_to_exit_statuses() {
        let line = "JobId=7 JobName=m UserId=root(0) JobState=FAILED Reason=NonZeroExitCode \
                    Dependency=(null) ExitCode=3:0 RunTime=00:00:01";
        let end = parse_job_end(line).unwrap();
        assert_eq!(
            (end.state.as_str(), end.exit_code, end.signal),
            ("FAILED", 3, 0)
        );
        assert_eq!(end.status(), 3);
        let ok = parse_job_end("JobId=8 JobState=COMPLETED ExitCode=0:0").unwrap();
        assert_eq!(ok.status(), 0);
        let killed = parse_job_end("JobId=9 JobState=FAILED ExitCode=0:9").unwrap();
        assert_eq!(killed.status(), 1);
        let cancelled = parse_job_end("JobId=9 JobState=CANCELLED ExitCode=0:0").unwrap();
        assert_eq!(cancelled.status(), 1);
        assert!(parse_job_end("slurm_load_jobs error: Invalid job id specified").is_none());
    }
}

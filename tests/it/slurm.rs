//! `odinw launch slurm --submit --wait` on a real Slurm: the single-node fixture
//! (`scripts/slurm_single_node.sh`, copied from `../shared/reference/`) is started, a sharded demo
//! fine-tune (4 array elements) and a sharded demo zero-shot (2) run as job arrays with their
//! `afterany` merge job, and the merged runs are compared with single-process runs (summary,
//! report tables, `odinw submit`: see `shards.rs` for what is compared and what is not). One
//! element is made to fail: the merge job exits 3, its log lists the unit with its shard, and a
//! second launch redoes only that unit.
//!
//! Needs root and apt-get (the fixture installs Slurm's Debian packages). Without them the test
//! skips, saying so, unless `ODINW_REQUIRE_SLURM=1` (set by `scripts/test.sh` as root, so CI
//! runs it): then a Slurm that cannot start is a failure.
use crate::support;
use support::demo_runs::{scheduler_env, summary_without_time, with_out, DEMO_EVAL, DEMO_FINETUNE};
use support::{ok, read_json, repo, run_odinw, scratch, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Starts the fixture; `None` (after saying why) when this machine cannot run it.
fn start_slurm() -> Option<bool> {
    let required = std::env::var("ODINW_REQUIRE_SLURM").is_ok_and(|v| v == "1");
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = Command::new("sh")
        .args(["-c", "command -v apt-get"])
        .output()
        .is_ok_and(|o| o.status.success());
    let have_slurm = Command::new("sh")
        .args(["-c", "command -v slurmctld && command -v sbatch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !root || (!apt && !have_slurm) {
        let why =
            format!("the Slurm fixture needs root and apt-get (root: {root}, apt-get: {apt})");
        assert!(!required, "ODINW_REQUIRE_SLURM=1 but {why}");
        eprintln!("SKIPPED slurm:: tests: {why}; set ODINW_REQUIRE_SLURM=1 to make this a failure");
        return None;
    }
    let running_before = Path::new("/run/slurm-fixture/pids").exists();
    let out = Command::new("bash")
        .arg(repo("scripts/slurm_single_node.sh"))
        .arg("start")
        // Four elements at once on a small machine (nothing is enforced without cgroups).
        .env("SLURM_FIXTURE_CPUS", "4")
        .output()
        .expect("running scripts/slurm_single_node.sh");
    if !out.status.success() {
        let msg = format!("the Slurm fixture did not start:\n{}", text(&out));
        assert!(!required, "{msg}");
        eprintln!("SKIPPED slurm:: tests: {msg}");
        return None;
    }
    Some(running_before)
}

/// Stops the fixture when dropped, if this test started it.
struct Fixture {
    stop: bool,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.stop {
            let _ = Command::new("bash")
                .arg(repo("scripts/slurm_single_node.sh"))
                .arg("stop")
                .output();
        }
    }
}

fn launch(shards: &str, command: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = support::odinw();
    cmd.args([
        "launch",
        "slurm",
        "--shards",
        shards,
        "--gpus",
        "0",
        "--cpus",
        "1",
        "--mem",
        "1",
        "--time",
        "00:15:00",
        "--submit",
        "--wait",
        "--timeout",
        "600",
        "--",
    ])
    .args(command);
    scheduler_env(&mut cmd, env);
    cmd.output().expect("running odinw launch slurm")
}

/// The command in one process (never a shard, even inside a Slurm array).
fn single(args: &[String]) -> Output {
    let mut cmd = support::odinw();
    cmd.args(args);
    scheduler_env(&mut cmd, &[]);
    cmd.output().expect("running odinw")
}

fn assert_same(a: &Path, b: &Path, dir: &Path) {
    assert_eq!(summary_without_time(a), summary_without_time(b));
    for f in [
        "tasks.txt",
        "tasks.csv",
        "tasks.json",
        "tasks.parquet",
        "tasks.md",
        "tasks.tex",
        "chart.svg",
        "chart.png",
    ] {
        let (x, y) = (a.join("report").join(f), b.join("report").join(f));
        assert!(
            std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
            "report/{f} differs"
        );
    }
    let submit = |run: &Path, name: &str| {
        let out = dir.join(name);
        ok(run_odinw(&[
            "submit",
            run.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]));
        std::fs::read(out).unwrap()
    };
    assert!(
        submit(a, "a.json") == submit(b, "b.json"),
        "submissions differ"
    );
}

fn merge_log(launched: &Output) -> String {
    // "merge job J ended ... its log: PATH"
    let stdout = String::from_utf8_lossy(&launched.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.split("its log: ").nth(1))
        .unwrap_or_else(|| panic!("no merge log named:\n{}", text(launched)));
    std::fs::read_to_string(PathBuf::from(path.trim())).unwrap_or_default()
}

#[test]
fn sharded_runs_on_slurm_merge_to_the_single_process_runs() {
    let Some(running_before) = start_slurm() else {
        return;
    };
    let _fixture = Fixture {
        stop: !running_before,
    };
    let dir = scratch();
    let d = dir.path();

    // Fine-tuning: 2 tasks × 2 seeds in 4 array elements.
    let (one, sharded) = (d.join("ft-one/run"), d.join("ft-sharded/run"));
    ok(single(&with_out(&DEMO_FINETUNE, &one)));
    let out = launch("4", &with_out(&DEMO_FINETUNE, &sharded), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("COMPLETED"), "{}", text(&out));
    assert_eq!(read_json(&sharded.join("shards.json"))["shards"], 4);
    for i in 0..4 {
        let logs = std::fs::read_dir(sharded.join("slurm/logs")).unwrap();
        let n = logs
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.starts_with("shard_") && name.ends_with(&format!("_{i}.err"))
            })
            .count();
        assert_eq!(n, 1, "element {i}'s log");
    }
    assert_same(&one, &sharded, d);

    // Zero-shot in 2 elements, one unit failing: the merge job exits 3 and names it.
    let (one, sharded) = (d.join("zs-one/run"), d.join("zs-sharded/run"));
    ok(single(&with_out(&DEMO_EVAL, &one)));
    let bad = [("ODINW_TEST_PANIC_TASK", "TexturedShapes")];
    let out = launch("2", &with_out(&DEMO_EVAL, &sharded), &bad);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let plan = read_json(&sharded.join("shards.json"));
    let shard = plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "TexturedShapes")
        .unwrap()["shard"]
        .clone();
    let log = merge_log(&out);
    let want = format!("failed: TexturedShapes (shard {shard}/2)");
    assert!(log.contains(&want), "merge log:\n{log}");
    // Launched again: only the failed unit runs, and the run merges complete.
    let out = launch("2", &with_out(&DEMO_EVAL, &sharded), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let mut ran = 0;
    for e in std::fs::read_dir(sharded.join("slurm/logs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "err") && p.to_string_lossy().contains("shard_") {
            let t = std::fs::read_to_string(&p).unwrap();
            ran += t
                .lines()
                .filter(|l| l.contains(" AP ") || l.contains("AP  "))
                .count();
        }
    }
    // 4 units in the first launch (one of them failed, so 3 with AP) + 1 in the second.
    assert_eq!(ran, 4, "units that ran over both launches");
    assert_same(&one, &sharded, d);
}

//! Sharded runs (`--shard I/N`, `odinw plan`, `odinw merge`): the demo zero-shot and a demo
//! fine-tune run as N concurrent processes into one folder merge to the single-process run,
//! byte for byte: `summary.json` (all but `updated_unix`, the time it was written), the report
//! tables and chart (`report/tasks.*`, `chart.svg`, `chart.png`), every unit's predictions and
//! metrics (paths into the run folder aside), and `odinw submit`'s file. Not compared: `manifest.json` (its command line holds
//! `--shard`, and its timings are wall-clock times) and `report/index.html` (it shows the
//! manifest). A failed unit is listed with its shard, and rerunning that shard redoes only it.
use crate::support;
use support::demo_runs::{scheduler_env, summary_without_time, with_out, DEMO_EVAL, DEMO_FINETUNE};
use support::{odinw, ok, read_json, run_odinw, scratch, text};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The report files a sharded run must reproduce exactly.
const REPORT_FILES: [&str; 8] = [
    "tasks.txt",
    "tasks.csv",
    "tasks.json",
    "tasks.parquet",
    "tasks.md",
    "tasks.tex",
    "chart.svg",
    "chart.png",
];

fn eval_args(out: &Path) -> Vec<String> {
    with_out(&DEMO_EVAL, out)
}

fn finetune_args(out: &Path) -> Vec<String> {
    with_out(&DEMO_FINETUNE, out)
}

fn start(args: &[String], extra: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd: Command = odinw();
    cmd.args(args).args(extra);
    scheduler_env(&mut cmd, env);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting odinw")
}

/// Runs `n` shards of `args` at the same time; returns their outputs in shard order.
fn run_shards(args: &[String], n: usize, env: &[(&str, &str)]) -> Vec<Output> {
    let children: Vec<Child> = (0..n)
        .map(|i| start(args, &["--shard", &format!("{i}/{n}")], env))
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("waiting for odinw"))
        .collect()
}

fn single(args: &[String]) -> Output {
    ok(start(args, &[], &[])
        .wait_with_output()
        .expect("waiting for odinw"))
}

fn submit(run: &Path, out: &Path) -> Vec<u8> {
    ok(run_odinw(&[
        "submit",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    std::fs::read(out).unwrap()
}

/// Asserts the sharded run `b` is the single-process run `a` (see the module's doc).
fn assert_same_run(a: &Path, b: &Path, units: &[PathBuf], scratch: &Path) {
    assert_eq!(summary_without_time(a), summary_without_time(b));
    // The summary's bytes too, once the time is set equal.
    let bytes = |p: &Path| {
        let mut v = read_json(&p.join("summary.json"));
        v["updated_unix"] = 0.into();
        serde_json::to_vec_pretty(&v).unwrap()
    };
    assert_eq!(bytes(a), bytes(b));
    for f in REPORT_FILES {
        let (x, y) = (a.join("report").join(f), b.join("report").join(f));
        assert!(
            std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
            "report/{f} differs between the single-process and the sharded run"
        );
    }
    // Units: the same bytes, once each run's own folder in the paths a fine-tuning unit
    // records (its best parameters' file) reads `RUN`.
    let unit_file = |run: &Path, u: &Path, f: &str| {
        let text = std::fs::read_to_string(run.join(u).join(f)).unwrap();
        text.replace(&run.display().to_string(), "RUN")
    };
    for u in units {
        for f in ["predictions.json", "metrics.json"] {
            let (x, y) = (unit_file(a, u, f), unit_file(b, u, f));
            assert!(x == y, "{}/{f} differs:\n{x}\n---\n{y}", u.display());
        }
    }
    let sa = submit(a, &scratch.join("a.json"));
    let sb = submit(b, &scratch.join("b.json"));
    assert!(!sa.is_empty());
    assert!(sa == sb, "odinw submit's files differ");
}

fn merged_by(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).contains("run: "))
        .count()
}

#[test]
fn demo_eval_in_three_concurrent_shards_is_the_single_process_run() {
    let dir = scratch();
    let (a, b) = (dir.path().join("one/run"), dir.path().join("sharded/run"));
    single(&eval_args(&a));
    let outs = run_shards(&eval_args(&b), 3, &[]);
    for o in &outs {
        support::assert_ok(o);
    }
    // The shard that finished the last unit merged the run (two may both have seen it done).
    assert!(merged_by(&outs) >= 1, "no shard merged the run");
    let plan = read_json(&b.join("shards.json"));
    assert_eq!(plan["shards"], 3);
    let units: Vec<PathBuf> = [
        "ColorShapes",
        "ShapeDescriptions",
        "TexturedShapes",
        "NovelShapes",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    // Each unit ran in the shard the plan gave it, and only there.
    for u in plan["units"].as_array().unwrap() {
        let (name, shard) = (u["unit"].as_str().unwrap(), u["shard"].as_u64().unwrap());
        for (i, o) in outs.iter().enumerate() {
            let ran = String::from_utf8_lossy(&o.stderr)
                .lines()
                .any(|l| l.starts_with(name) && l.contains("AP"));
            assert_eq!(ran, i as u64 == shard, "{name} in shard {i}:\n{}", text(o));
        }
    }
    assert_same_run(&a, &b, &units, dir.path());

    // `odinw merge` again writes the same summary and report.
    let merged = ok(run_odinw(&["merge", b.to_str().unwrap()]));
    assert!(text(&merged).contains("run: "));
    assert_same_run(&a, &b, &units, dir.path());
}

#[test]
fn demo_finetune_in_two_concurrent_shards_is_the_single_process_run() {
    let dir = scratch();
    let (a, b) = (dir.path().join("one/run"), dir.path().join("sharded/run"));
    single(&finetune_args(&a));
    let outs = run_shards(&finetune_args(&b), 2, &[]);
    for o in &outs {
        support::assert_ok(o);
    }
    assert!(merged_by(&outs) >= 1, "no shard merged the run");
    let units: Vec<PathBuf> = ["NovelShapes", "ColorShapes"]
        .iter()
        .flat_map(|t| [format!("{t}/seed3"), format!("{t}/seed30")])
        .map(PathBuf::from)
        .collect();
    assert_same_run(&a, &b, &units, dir.path());
}

#[test]
fn a_failed_unit_is_listed_with_its_shard_and_its_rerun_redoes_only_it() {
    let dir = scratch();
    let (a, b) = (dir.path().join("one/run"), dir.path().join("sharded/run"));
    single(&eval_args(&a));
    let plan = ok(run_odinw(&[
        "plan", "eval", "--suite", "demo", "--shards", "2", "--json",
    ]));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let shard_of = |unit: &str| {
        plan["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == unit)
            .unwrap()["shard"]
            .as_u64()
            .unwrap()
    };
    let bad = shard_of("TexturedShapes");
    let env = [("ODINW_TEST_PANIC_TASK", "TexturedShapes")];
    let outs = run_shards(&eval_args(&b), 2, &env);
    assert!(
        !outs[bad as usize].status.success(),
        "{}",
        text(&outs[bad as usize])
    );
    assert!(outs[1 - bad as usize].status.success());
    let s = read_json(&b.join("summary.json"));
    assert_eq!(s["failed"][0]["task"], "TexturedShapes", "{s}");

    let merged = run_odinw(&["merge", b.to_str().unwrap()]);
    assert_eq!(merged.status.code(), Some(3), "{}", text(&merged));
    let want = format!("failed: TexturedShapes (shard {bad}/2): internal error");
    assert!(text(&merged).contains(&want), "{}", text(&merged));
    let json = run_odinw(&["merge", b.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["complete"], false);
    assert_eq!(json["unfinished"][0]["unit"], "TexturedShapes");
    assert_eq!(json["unfinished"][0]["shard"], bad);

    // The same shard again: the failed unit runs, its other units are skipped, the run merges.
    let again = ok(
        start(&eval_args(&b), &["--shard", &format!("{bad}/2")], &[])
            .wait_with_output()
            .unwrap(),
    );
    let err = String::from_utf8_lossy(&again.stderr);
    let ran: Vec<&str> = err.lines().filter(|l| l.contains("AP ")).collect();
    assert_eq!(ran.len(), 1, "{err}");
    assert!(ran[0].starts_with("TexturedShapes"), "{err}");
    assert!(err.contains("done earlier, skipped") || plan_units_of(&plan, bad) == 1);
    assert!(text(&again).contains("run: "), "{}", text(&again));
    let units: Vec<PathBuf> = [
        "ColorShapes",
        "ShapeDescriptions",
        "TexturedShapes",
        "NovelShapes",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_same_run(&a, &b, &units, dir.path());

    // Another shard count on the same folder is refused: units would run twice or never.
    let other = start(&eval_args(&b), &["--shard", "0/3"], &[])
        .wait_with_output()
        .unwrap();
    assert!(!other.status.success());
    assert!(
        text(&other).contains("was planned for 2 shard(s)"),
        "{}",
        text(&other)
    );
}

fn plan_units_of(plan: &serde_json::Value, shard: u64) -> usize {
    plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["shard"] == shard)
        .count()
}

#[test]
fn plan_is_deterministic_balanced_and_takes_the_shard_from_the_environment() {
    let plan = |extra: &[&str], env: &[(&str, &str)]| -> serde_json::Value {
        let mut cmd = odinw();
        cmd.args([
            "plan", "finetune", "--suite", "demo", "--seeds", "3,30,300", "--json",
        ])
        .args(extra);
        scheduler_env(&mut cmd, env);
        let out = ok(cmd.output().unwrap());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let p = plan(&["--shards", "4"], &[]);
    assert_eq!(p, plan(&["--shards", "4"], &[]));
    let units = p["units"].as_array().unwrap();
    assert_eq!(units.len(), 12);
    // Run order: tasks in suite order, then seeds.
    assert_eq!(units[0]["unit"], "ColorShapes/seed3");
    assert_eq!(units[2]["unit"], "ColorShapes/seed300");
    assert!(units.iter().all(|u| u["counted"] == true));
    // Each unit's cost from the demo's own annotation files: (min(train, 3 × classes) × 4
    // (GLIP's 3-shot GENERAL_COPY) + min(val, 3 × classes)) × 200 epochs + test images.
    for u in units {
        let task = u["unit"].as_str().unwrap().split('/').next().unwrap();
        let count = |split: &str| {
            let f = support::repo(&format!(
                "demo/odinw/ShapesDemo/{task}/{split}/annotations_without_background.json"
            ));
            let v = read_json(&f);
            (
                v["images"].as_array().unwrap().len() as u64,
                v["categories"].as_array().unwrap().len() as u64,
            )
        };
        let ((train, k), (val, _), (test, _)) = (count("train"), count("valid"), count("test"));
        let want = (train.min(3 * k) * 4 + val.min(3 * k)) * 200 + test;
        assert_eq!(u["cost"].as_u64().unwrap(), want, "{u}");
    }
    let loads: Vec<u64> = p["loads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let total: u64 = units.iter().map(|u| u["cost"].as_u64().unwrap()).sum();
    assert_eq!(loads.iter().sum::<u64>(), total);
    assert_eq!(
        p["makespan"].as_u64().unwrap(),
        *loads.iter().max().unwrap()
    );
    // LPT's guarantee: within 4/3 − 1/(3N) of the optimum, which is at least the ideal.
    assert!(p["ratio"].as_f64().unwrap() <= 4.0 / 3.0 - 1.0 / 12.0 + 1e-9);
    // The same plan from Slurm's and Kubernetes' variables.
    let slurm = plan(
        &[],
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
    );
    assert_eq!(slurm, p);
    let k8s = plan(&["--shards", "4"], &[("JOB_COMPLETION_INDEX", "2")]);
    assert_eq!(k8s, p);
    // Bad shard options are an invalid command line (exit code 2), named.
    for (bad, why) in [
        (["--shard", "4/4"], "out of range for 4 shards"),
        (["--shard", "a/4"], "index \"a\" is not a number"),
    ] {
        let out = odinw()
            .args(["plan", "eval", "--suite", "demo"])
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(why), "{}", text(&out));
    }
}

/// `odinw launch k8s` writes an Indexed Job: one pod per shard, all of them at once, each
/// running the command with `--shards N` (its index from JOB_COMPLETION_INDEX), the shared
/// claim mounted where --out is, GPU limits; and refuses a run folder outside the volume.
#[test]
fn the_kubernetes_manifest_is_an_indexed_job_over_a_shared_volume() {
    let dir = scratch();
    let file = dir.path().join("job.yaml");
    let out = ok(run_odinw(&[
        "launch",
        "k8s",
        "--shards",
        "6",
        "--gpus",
        "1",
        "--image",
        "registry.example/odinw:1",
        "--claim",
        "odinw-shared",
        "--mount",
        "/shared",
        "-o",
        file.to_str().unwrap(),
        "--",
        "eval",
        "--suite",
        "odinw35",
        "--root",
        "/shared/DATASET",
        "--out",
        "/shared/runs/zs",
    ]));
    assert!(text(&out).contains("kubectl apply -f"));
    // JSON is YAML; kubectl reads it as is.
    let job = read_json(&file);
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 6);
    assert_eq!(spec["parallelism"], 6);
    assert_eq!(spec["backoffLimitPerIndex"], 1, "one retry per index");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/odinw:1");
    let cmd: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        cmd,
        [
            "odinw",
            "eval",
            "--suite",
            "odinw35",
            "--root",
            "/shared/DATASET",
            "--out",
            "/shared/runs/zs",
            "--shards",
            "6"
        ]
    );
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
    let mount = &c["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/shared");
    let vol = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume is declared");
    assert_eq!(vol["persistentVolumeClaim"]["claimName"], "odinw-shared");

    // Each pod's index gives a distinct shard of the same plan: every unit in exactly one.
    let mut seen = std::collections::BTreeMap::new();
    for index in 0..6 {
        let mut cmd = odinw();
        cmd.args([
            "plan", "eval", "--suite", "odinw35", "--shards", "6", "--json",
        ])
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .env_remove("SLURM_ARRAY_TASK_ID");
        let plan: serde_json::Value =
            serde_json::from_slice(&ok(cmd.output().unwrap()).stdout).unwrap();
        for u in plan["units"].as_array().unwrap() {
            if u["shard"] == index {
                assert!(seen.insert(u["unit"].to_string(), index).is_none());
            }
        }
    }
    assert_eq!(seen.len(), 35);

    // A run folder or dataset root the pods cannot share is refused, as is a command that
    // picks its shard.
    for bad in [
        vec!["eval", "--out", "runs/zs"],
        vec!["eval", "--out", "/elsewhere/zs"],
        vec!["eval", "--out", "/shared/zs", "--shard", "0/2"],
        vec![
            "eval",
            "--root",
            "/elsewhere/DATASET",
            "--out",
            "/shared/zs",
        ],
        vec!["eval", "--root=/elsewhere/DATASET", "--out", "/shared/zs"],
        vec!["eval", "--root", "DATASET", "--out", "/shared/zs"],
    ] {
        let mut args = vec![
            "launch", "k8s", "--shards", "2", "--image", "i", "--claim", "c", "--",
        ];
        args.extend(bad);
        let out = run_odinw(&args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
}

/// `odinw launch slurm` without --submit writes the array and merge scripts: array size,
/// resources, time limit, log paths, the command with --shards, and the merge of the run.
#[test]
fn the_slurm_scripts_hold_the_array_its_resources_and_the_merge() {
    let dir = scratch();
    let run = dir.path().join("run");
    let out = ok(run_odinw(&[
        "launch",
        "slurm",
        "--shards",
        "8",
        "--gpus",
        "2",
        "--cpus",
        "6",
        "--mem",
        "40",
        "--time",
        "02:00:00",
        "--partition",
        "gpu",
        "--",
        "finetune",
        "--suite",
        "demo",
        "--out",
        run.to_str().unwrap(),
    ]));
    assert!(text(&out).contains("afterany"), "{}", text(&out));
    let script = std::fs::read_to_string(run.join("slurm/shards.sbatch")).unwrap();
    let logs = run.join("slurm/logs");
    for line in [
        "#SBATCH --array=0-7".to_string(),
        "#SBATCH --gres=gpu:2".into(),
        "#SBATCH --cpus-per-task=6".into(),
        "#SBATCH --mem=40G".into(),
        "#SBATCH --time=02:00:00".into(),
        "#SBATCH --partition=gpu".into(),
        format!("#SBATCH --output={}/shard_%A_%a.out", logs.display()),
        format!("#SBATCH --error={}/shard_%A_%a.err", logs.display()),
    ] {
        assert!(script.lines().any(|l| l == line), "{line} in:\n{script}");
    }
    let exec = script.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(
        exec.ends_with(&format!(
            "finetune --suite demo --out {} --shards 8",
            run.display()
        )),
        "{exec}"
    );
    let merge = std::fs::read_to_string(run.join("slurm/merge.sbatch")).unwrap();
    assert!(
        merge.contains(&format!("merge {}", run.display())),
        "{merge}"
    );
}

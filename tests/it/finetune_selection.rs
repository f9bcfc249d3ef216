//! Model selection and GENERAL_COPY in fine-tuning, as GLIP's task yamls set them: checkpoints
//! are selected on the registry's `val_split_during_ft` (`minival` for 11 tasks), k-shot as GLIP's
//! prepared `fewshot_minival_shot{K}_seed{S}.json` or sampled from the minival split; GENERAL_COPY
//! follows GLIP README's recipes or the task yaml's value. A generated task whose record selects
//! on a generated minival split is fine-tuned end to end; the registry's values are compared with
//! the reference registry made from GLIP's yamls (../shared/reference, skipped when absent).
use crate::support;
use crate::support::read_json;

use odinw::engine::SessionOptions;
use odinw::model::ModelDir;
use odinw::prompt::PromptTokenizer;
use odinw::registry::{tasks, SplitFiles, Suite, Task};
use odinw::run::{Manifest, RunStore, Track};
use odinw::train::fewshot::{self, CopyChoice};
use odinw::train::graphs::TrackGraphs;
use odinw::train::manifest::{TrainManifest, TrainTrack};
use odinw::train::params::Params;
use odinw::train::trainer::{self, RunContext};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::{run_odinw, scratch};

fn demo_root() -> PathBuf {
    support::repo("demo")
}

fn image_ids(ann: &Path) -> BTreeSet<u64> {
    read_json(ann)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| im["id"].as_u64().unwrap())
        .collect()
}

/// The demo task NovelShapes, re-recorded as a minival task: a `minival` split made of every
/// other image of its val split (written into `dir`), `val_split_during_ft: minival`, and a
/// yaml GENERAL_COPY of 6.
fn minival_task(dir: &Path) -> Task {
    let mut task: Task =
        serde_json::from_value(read_json(&demo_root().join("tasks/NovelShapes.json"))).unwrap();
    let val = &task.splits["val"];
    let val_ann = demo_root().join(&val.ann_file);
    let img_dir = demo_root().join(&val.img_dir);
    let mut coco = read_json(&val_ann);
    let keep: BTreeSet<u64> = coco["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| im["id"].as_u64().unwrap())
        .filter(|id| id % 2 == 1)
        .collect();
    coco["images"]
        .as_array_mut()
        .unwrap()
        .retain(|im| keep.contains(&im["id"].as_u64().unwrap()));
    coco["annotations"]
        .as_array_mut()
        .unwrap()
        .retain(|a| keep.contains(&a["image_id"].as_u64().unwrap()));
    let mini = dir.join("mini_val");
    std::fs::create_dir_all(&mini).unwrap();
    let ann = mini.join("annotations_without_background.json");
    std::fs::write(&ann, serde_json::to_vec(&coco).unwrap()).unwrap();
    task.splits.insert(
        "minival".into(),
        SplitFiles {
            ann_file: ann.display().to_string(),
            img_dir: img_dir.display().to_string(),
        },
    );
    task.val_split_during_ft = "minival".into();
    task.general_copy = 6;
    task
}

#[test]
fn minival_task_selects_on_its_minival_split() {
    let dir = scratch();
    let task = minival_task(dir.path());
    let mini_ann = PathBuf::from(&task.splits["minival"].ann_file);
    let mini_ids = image_ids(&mini_ann);
    let val_ids = image_ids(&demo_root().join(&task.splits["val"].ann_file));
    assert!(mini_ids.len() < val_ids.len());
    assert_eq!(fewshot::selection_split(&task).unwrap(), "minival");

    // Full data: the whole minival split.
    let work = dir.path().join("w0");
    std::fs::create_dir_all(&work).unwrap();
    let s = fewshot::resolve(&task, &demo_root(), 0, 3, "test", &work).unwrap();
    assert_eq!(s.val_split, "minival");
    assert_eq!(s.val.ann, mini_ann);

    // k-shot, nothing prepared: sampled from minival with GLIP's sampler.
    let work = dir.path().join("w3");
    std::fs::create_dir_all(&work).unwrap();
    let s = fewshot::resolve(&task, &demo_root(), 1, 3, "test", &work).unwrap();
    assert_eq!(s.val_split, "minival");
    assert_eq!(s.val.ann, work.join("minival_shot1_seed3.json"));
    assert!(
        s.val.origin.contains(&mini_ann.display().to_string()),
        "{}",
        s.val.origin
    );
    let picked = image_ids(&s.val.ann);
    assert!(
        !picked.is_empty() && picked.is_subset(&mini_ids),
        "{picked:?}"
    );

    // k-shot with GLIP's prepared fewshot_minival file registered and on disk: used as is.
    let mut prepared = task.clone();
    let pattern = dir
        .path()
        .join("mini_val/fewshot_minival_shot{shot}_seed{seed}.json");
    prepared
        .fewshot
        .files
        .insert("minival".into(), pattern.display().to_string());
    let file = dir
        .path()
        .join("mini_val/fewshot_minival_shot1_seed30.json");
    std::fs::copy(&mini_ann, &file).unwrap();
    let s = fewshot::resolve(&prepared, &demo_root(), 1, 30, "test", &work).unwrap();
    assert_eq!(s.val.ann, file);
    assert!(s.val.origin.contains("prepared"), "{}", s.val.origin);

    // A record that names a selection split it does not have is refused, naming both.
    let mut broken = task.clone();
    broken.splits.remove("minival");
    let err = format!(
        "{:#}",
        fewshot::resolve(&broken, &demo_root(), 1, 3, "test", &work).unwrap_err()
    );
    assert!(
        err.contains("minival") && err.contains("val_split_during_ft"),
        "{err}"
    );
}

#[test]
fn general_copy_follows_glip_recipes_and_the_task_yaml() {
    let dir = scratch();
    let task = minival_task(dir.path());
    for (shots, want) in [(1, 8), (3, 4), (5, 2), (10, 1), (0, 1)] {
        assert_eq!(
            fewshot::general_copy(&task, shots, CopyChoice::Recipe).0,
            want
        );
    }
    // No README recipe for 2 shots: the yaml's value, as GLIP without the custom option.
    let (n, origin) = fewshot::general_copy(&task, 2, CopyChoice::Recipe);
    assert_eq!(n, 6);
    assert!(origin.contains("GENERAL_COPY"), "{origin}");
    for shots in [0, 1, 3, 5, 10] {
        assert_eq!(fewshot::general_copy(&task, shots, CopyChoice::Task).0, 6);
        assert_eq!(
            fewshot::general_copy(&task, shots, CopyChoice::Fixed(3)).0,
            3
        );
    }
    assert_eq!("task".parse::<CopyChoice>(), Ok(CopyChoice::Task));
    assert_eq!("recipe".parse::<CopyChoice>(), Ok(CopyChoice::Recipe));
    assert_eq!("12".parse::<CopyChoice>(), Ok(CopyChoice::Fixed(12)));
    assert!("0".parse::<CopyChoice>().is_err() && "x".parse::<CopyChoice>().is_err());
}

/// The registry's selection split and GENERAL_COPY equal the reference registry made from
/// GLIP's yamls (`test_split_during_ft`, `general_copy_yaml`), for all 48 records.
#[test]
fn registry_selection_split_and_copy_match_glips_yamls() {
    let Some(reference) = support::shared_data("../reference/odinw-registry.json") else {
        return;
    };
    let reference = read_json(&reference);
    let mut minival = BTreeSet::new();
    let mut checked = 0;
    for suite in [Suite::Odinw35, Suite::Odinw13] {
        for task in tasks(suite) {
            let key = task.yaml.trim_start_matches("configs/");
            let r = &reference[key];
            assert!(r.is_object(), "reference has no {key}");
            let test = r["test_split_during_ft"].as_str().unwrap();
            let want = test.trim_matches(|c| "()\",' ".contains(c));
            assert_eq!(fewshot::selection_split(task).unwrap(), want, "{key}");
            assert_eq!(
                fewshot::general_copy(task, 3, CopyChoice::Task).0 as u64,
                r["general_copy_yaml"].as_u64().unwrap(),
                "{key}"
            );
            if want == "minival" && suite == Suite::Odinw35 {
                minival.insert(task.name.clone());
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 48);
    assert_eq!(minival.len(), 11, "{minival:?}");
}

/// One epoch of prompt tuning on the generated minival task: the run selects on minival, says so
/// in metrics.json and the log, and uses the yaml GENERAL_COPY when asked.
#[test]
fn finetuning_a_minival_task_selects_on_minival_end_to_end() {
    let dir = scratch();
    let task = minival_task(dir.path());
    let model = ModelDir::resolve("demo").unwrap();
    let manifest = TrainManifest::load(&model, TrainTrack::Prompt).unwrap();
    let initial = Params::read(&manifest.path_of(&manifest.params_file), &manifest.params).unwrap();
    let session = SessionOptions::default();
    odinw::engine::runtime::ensure_loaded(session.device).unwrap();
    let mut graphs = TrackGraphs::open(&model, manifest, &session).unwrap();
    let tokenizer = PromptTokenizer::from_file(&model.tokenizer()).unwrap();
    let post = model.spec.postprocess.config();
    let ctx = RunContext {
        spec: &model.spec,
        session: &session,
        tokenizer: &tokenizer,
        post: &post,
        initial: &initial,
    };
    let mut m = Manifest::new(Track::FewShot, "demo", "test", vec![task.name.clone()]);
    m.shots = Some(3);
    m.seeds = vec![3];
    let store = RunStore::create(&dir.path().join("run"), &m).unwrap();
    let opts = trainer::Options {
        shots: 3,
        general_copy: CopyChoice::Task,
        max_epochs: 1,
        step_patience: 3,
        stop_patience: 8,
        base_lr: None,
        use_prompt: true,
        fix_id0: false,
        test_split: "test".into(),
        verbose: false,
        progress: odinw::util::reporter::Progress::hidden(),
    };
    let o = trainer::run_task(&ctx, &mut graphs, &task, &demo_root(), 3, &opts, &store).unwrap();
    assert_eq!((o.val_split.as_str(), o.general_copy), ("minival", 6));
    let unit = store.task_dir(&task.name, Some(3));
    let metrics = read_json(&unit.join("metrics.json"));
    let ft = &metrics["finetune"];
    assert_eq!(ft["val_split"], "minival");
    assert_eq!(ft["general_copy"], 6);
    assert_eq!(
        ft["val_file"],
        json!(unit
            .join("train/minival_shot3_seed3.json")
            .display()
            .to_string())
    );
    let log = std::fs::read_to_string(unit.join("log.txt")).unwrap();
    assert!(log.contains("model selection on minival"), "{log}");
    assert!(log.contains("general copy 6"), "{log}");
    // One epoch over the 3-shot set wrapped 6 times: 6 × its images, in batches.
    let state = read_json(&unit.join("train/state.json"));
    assert_eq!(state["history"].as_array().unwrap().len(), 1);
}

/// `odinw finetune` prints the selection split per run and records it and GENERAL_COPY in the
/// run's manifest.
#[test]
fn finetune_cli_records_the_selection_split_and_copy() {
    let dir = scratch();
    let run = dir.path().join("run");
    let out = run_odinw(&[
        "finetune",
        "--model",
        "demo",
        "--suite",
        "demo",
        "--tasks",
        "NovelShapes",
        "--shots",
        "1",
        "--seeds",
        "3",
        "--max-epochs",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("(val AP") && stderr.contains("copy ×8"),
        "{stderr}"
    );
    let m = read_json(&run.join("manifest.json"));
    let t = &m["finetune_tasks"]["NovelShapes"];
    assert_eq!(t["selection_split"], "val");
    assert_eq!(t["general_copy"], 8);
    // Resuming the run with another GENERAL_COPY would mix two protocols: refused.
    let other = run_odinw(&[
        "finetune",
        "--model",
        "demo",
        "--suite",
        "demo",
        "--tasks",
        "NovelShapes",
        "--shots",
        "1",
        "--seeds",
        "3",
        "--max-epochs",
        "1",
        "--general-copy",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("GENERAL_COPY"), "{err}");
    let bad = run_odinw(&[
        "finetune",
        "--model",
        "demo",
        "--suite",
        "demo",
        "--general-copy",
        "0",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--general-copy"));
}

//! What the `odinw eval --model DIR` parity tests of the non-GLIP families share
//! (tests/it/owlv2_eval.rs, tests/it/grounding_dino_eval.rs): running the binary, reading a
//! task's predictions, BCCD's test split laid out for the registry, images decoded by odinw to
//! raw RGB files for the oracle, and the one-to-one match of two detection lists.
use super::{iou, odinw, ok, read_json, shared_data};
use odinw::data::coco::CocoFile;
use odinw::preprocess::decode_file;
use odinw::registry::{find, select, Suite, Task};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Key = (u64, u64);

fn grouped(dets: &[Value]) -> BTreeMap<Key, Vec<(f64, Vec<f64>)>> {
    let mut m: BTreeMap<Key, Vec<(f64, Vec<f64>)>> = BTreeMap::new();
    for d in dets {
        let key = (
            d["image_id"].as_u64().unwrap(),
            d["category_id"].as_u64().unwrap(),
        );
        let bbox = d["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        m.entry(key)
            .or_default()
            .push((d["score"].as_f64().unwrap(), bbox));
    }
    m
}

/// Every detection of `ours` matched one-to-one with one of `theirs` of the same image and
/// class (score within 1e-4, IoU > 0.999); returns how many.
pub fn assert_same(task: &str, ours: &[Value], theirs: &[Value]) -> usize {
    same(task, ours, theirs).unwrap_or_else(|e| panic!("{e}"))
}

/// [`assert_same`], the first difference as an error.
pub fn same(task: &str, ours: &[Value], theirs: &[Value]) -> Result<usize, String> {
    let (a, b) = (grouped(ours), grouped(theirs));
    if a.keys().ne(b.keys()) {
        return Err(format!(
            "{task}: (image, class) pairs differ: {:?} vs {:?}",
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>()
        ));
    }
    for (key, mine) in &a {
        let mut left = b[key].clone();
        if mine.len() != left.len() {
            return Err(format!(
                "{task} {key:?}: detection counts {} vs {}",
                mine.len(),
                left.len()
            ));
        }
        for (score, bbox) in mine {
            let Some(i) = left
                .iter()
                .position(|(s, bb)| (s - score).abs() < 1e-4 && iou(bbox, bb) > 0.999)
            else {
                return Err(format!(
                    "{task} {key:?}: no match for score {score} box {bbox:?} in {left:?}"
                ));
            };
            left.swap_remove(i);
        }
    }
    Ok(ours.len())
}

/// `odinw eval --threads 1 --model MODEL --out OUT EXTRA…`; returns its stdout.
pub fn eval(model: &Path, out: &Path, extra: &[&str]) -> String {
    let mut cmd = odinw();
    cmd.args(["eval", "--threads", "1", "--model"])
        .arg(model)
        .arg("--out")
        .arg(out)
        .args(extra);
    super::demo_runs::scheduler_env(&mut cmd, &[]);
    String::from_utf8_lossy(&ok(cmd.output().unwrap()).stdout).into_owned()
}

/// Two shards of `model`'s demo-suite run (`--batch 3`, as `run` was made) into one folder under
/// `dir` merge to `run`: the same summary and every task's predictions byte for byte. Returns
/// the sharded run's folder.
pub fn assert_shards_merge(model: &Path, dir: &Path, run: &Path) -> PathBuf {
    let sharded = dir.join("sharded");
    for shard in ["0/2", "1/2"] {
        eval(
            model,
            &sharded,
            &["--suite", "demo", "--batch", "3", "--shard", shard],
        );
    }
    assert_eq!(
        super::demo_runs::summary_without_time(&sharded),
        super::demo_runs::summary_without_time(run)
    );
    for t in select(Suite::Demo, &[]).unwrap() {
        assert_eq!(
            std::fs::read(sharded.join(&t.name).join("predictions.json")).unwrap(),
            std::fs::read(run.join(&t.name).join("predictions.json")).unwrap(),
            "{}",
            t.name
        );
    }
    sharded
}

/// `RUN/<task>/predictions.json`.
pub fn predictions(run: &Path, task: &str) -> Vec<Value> {
    read_json(&run.join(task).join("predictions.json"))
        .as_array()
        .unwrap()
        .clone()
}

/// BCCD's test split of ../shared/data laid out under `root` as the registry expects it (`None`
/// when the shared data is absent).
pub fn bccd_root(root: &Path) -> Option<&'static Task> {
    let export = shared_data("roboflow/BCCD.v3-raw.coco")?;
    let task = find(Suite::Odinw35, "BCCD").unwrap();
    let mut coco = CocoFile::read(&export.join("test/_annotations.coco.json")).unwrap();
    coco.categories.retain(|c| c.id != 0);
    let (ann, img_dir) = (
        task.ann_file(root, "test").unwrap(),
        task.img_dir(root, "test").unwrap(),
    );
    std::fs::create_dir_all(&img_dir).unwrap();
    for im in &coco.images {
        std::fs::copy(
            export.join("test").join(&im.file_name),
            img_dir.join(&im.file_name),
        )
        .unwrap();
    }
    coco.write(&ann).unwrap();
    Some(task)
}

/// ODinW-35's `name` laid out under `root` with a test split made of the demo's first three
/// ColorShapes test images, every box relabelled as the task's one class: a task whose
/// mmdetection `caption_prompt` (registry `mmdet_caption_prompt`) the real data here lacks.
pub fn prompted_root(root: &Path, name: &str) -> &'static Task {
    let task = find(Suite::Odinw35, name).unwrap();
    assert_eq!(task.categories.len(), 1, "{name}: one class expected");
    let class = &task.categories[0];
    let demo = super::repo("demo/odinw/ShapesDemo/ColorShapes/test");
    let mut coco = CocoFile::read(&demo.join("annotations_without_background.json")).unwrap();
    coco.images.sort_by_key(|im| im.id);
    coco.images.truncate(3);
    let kept: Vec<u64> = coco.images.iter().map(|im| im.id).collect();
    coco.annotations.retain(|a| kept.contains(&a.image_id));
    for a in &mut coco.annotations {
        a.category_id = class.id;
    }
    coco.categories = vec![odinw::data::coco::Category {
        id: class.id,
        name: class.name.clone(),
        extra: Default::default(),
    }];
    let (ann, img_dir) = (
        task.ann_file(root, "test").unwrap(),
        task.img_dir(root, "test").unwrap(),
    );
    std::fs::create_dir_all(&img_dir).unwrap();
    for im in &coco.images {
        std::fs::copy(demo.join(&im.file_name), img_dir.join(&im.file_name)).unwrap();
    }
    coco.write(&ann).unwrap();
    task
}

/// `task`'s test images under `root`, decoded by odinw into raw RGB files in `raw`:
/// `[{id, width, height, rgb}]`.
pub fn raw_images(task: &Task, root: &Path, raw: &Path) -> Vec<Value> {
    let (ann, img_dir) = task.split_files(root, "test").unwrap();
    let coco = CocoFile::read(&ann).unwrap();
    std::fs::create_dir_all(raw).unwrap();
    coco.images
        .iter()
        .map(|im| {
            let img = decode_file(&img_dir.join(&im.file_name)).unwrap();
            let f: PathBuf = raw.join(format!("{}_{}.rgb", task.name, im.id));
            std::fs::write(&f, &img.data).unwrap();
            json!({"id": im.id, "width": img.width, "height": img.height, "rgb": f})
        })
        .collect()
}

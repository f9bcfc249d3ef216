//! `odinw splits` on registry tasks and single files: GLIP's file names and places (split-dir,
//! mini_val and export layouts), markers and idempotent re-runs, prepared files left alone and
//! `--check`ed, warnings, and clear errors. Data is generated, so this runs without ../shared.
use crate::support;
use crate::support::splits_gen;

use odinw::splits::{rng::Seed, sampler::SamplingIndex, write, Source};
use serde_json::{json, Value};
use splits_gen::Mixed;
use std::path::{Path, PathBuf};

fn write(path: &Path, v: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn generated(seed: u64, cats: u64) -> Value {
    splits_gen::mixed(&Mixed {
        images: 200,
        category_ids: (1..=cats).collect(),
        used_ids: (1..=cats).collect(),
        rare: None,
        seed,
    })
}

fn odinw(args: &[&str]) -> (i32, String, String) {
    let o = support::run_odinw(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A root holding BCCD's train and valid annotation files, at GLIP's paths.
fn bccd_root() -> (tempfile::TempDir, PathBuf) {
    let root = support::scratch();
    let dir = root.path().join("odinw/BCCD/BCCD.v3-raw.coco");
    write(
        &dir.join("train/annotations_without_background.json"),
        &generated(10, 3),
    );
    write(
        &dir.join("valid/annotations_without_background.json"),
        &generated(11, 3),
    );
    (root, dir)
}

#[test]
fn registry_files_land_at_glips_places_and_reruns_are_idempotent() {
    let (root, dir) = bccd_root();
    let r = root.path().to_str().unwrap();
    let args = [
        "splits",
        "--tasks",
        "BCCD",
        "--root",
        r,
        "--shots",
        "1,3",
        "--seeds",
        "3,4294967301",
    ];
    let (code, out, err) = odinw(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("BCCD train") && out.contains("4 written"),
        "{out}"
    );
    for (split, folder) in [("train", "train"), ("val", "valid")] {
        for shot in [1, 3] {
            for seed in ["3", "4294967301"] {
                let p = dir.join(format!(
                    "{folder}/fewshot_{split}_shot{shot}_seed{seed}.json"
                ));
                let f = read(&p);
                assert_eq!(f["odinw_fewshot"]["shot"], shot, "{}", p.display());
                assert_eq!(f["odinw_fewshot"]["seed"], seed);
                assert_eq!(
                    f["odinw_fewshot"]["source"],
                    "annotations_without_background.json"
                );
            }
        }
    }
    let (code, out, _) = odinw(&args);
    assert_eq!(code, 0);
    assert!(out.contains("0 written, 4 up to date"), "{out}");

    // A changed source makes odinw's files stale; --force rewrites up-to-date ones.
    write(
        &dir.join("train/annotations_without_background.json"),
        &generated(12, 3),
    );
    let (_, out, _) = odinw(&args);
    assert!(
        out.lines()
            .any(|l| l.starts_with("BCCD train") && l.contains("4 written")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("BCCD val") && l.contains("4 up to date")),
        "{out}"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let (_, out, _) = odinw(&forced);
    let summaries: Vec<&str> = out.lines().filter(|l| l.starts_with("BCCD ")).collect();
    assert_eq!(summaries.len(), 2, "{out}");
    assert!(
        summaries
            .iter()
            .all(|l| l.contains("4 written, 0 up to date")),
        "{out}"
    );
}

#[test]
fn prepared_files_are_used_as_they_are_and_checked() {
    let (root, dir) = bccd_root();
    let r = root.path().to_str().unwrap();
    let train = dir.join("train");
    // Generate, then turn two files into "GLIP's": no marker. One keeps the generator's images,
    // the other loses one image.
    let (code, _, err) = odinw(&[
        "splits", "--tasks", "bccd", "--root", r, "--shots", "1,3", "--seeds", "3", "--split",
        "train", "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let same = train.join("fewshot_train_shot1_seed3.json");
    let other = train.join("fewshot_train_shot3_seed3.json");
    for (p, drop_one) in [(&same, false), (&other, true)] {
        let mut f = read(p);
        f.as_object_mut().unwrap().remove("odinw_fewshot");
        if drop_one {
            f["images"].as_array_mut().unwrap().remove(0);
        }
        write(p, &f);
    }
    let before = (
        std::fs::read(&same).unwrap(),
        std::fs::read(&other).unwrap(),
    );

    let (code, out, _) = odinw(&[
        "splits", "--tasks", "bccd", "--root", r, "--shots", "1,3", "--seeds", "3", "--split",
        "train", "--force",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("2 prepared (not by odinw) used as they are"),
        "{out}"
    );
    assert!(
        out.contains("kept as it is: fewshot_train_shot3_seed3.json"),
        "{out}"
    );
    assert_eq!(
        before,
        (
            std::fs::read(&same).unwrap(),
            std::fs::read(&other).unwrap()
        ),
        "prepared files are never rewritten"
    );

    let check = |shots: &str| {
        odinw(&[
            "splits", "--tasks", "bccd", "--root", r, "--shots", shots, "--seeds", "3,30",
            "--split", "train", "--check",
        ])
    };
    let (code, out, _) = check("1,3");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 of 4 few-shot files present"), "{out}");
    assert!(
        out.contains("fewshot_train_shot1_seed3.json (not written by odinw): identical"),
        "{out}"
    );
    assert!(
        out.contains("fewshot_train_shot3_seed3.json (not written by odinw): differs: images:"),
        "{out}"
    );
    assert!(out.contains("only generated ["), "{out}");
    let (code, out, _) = check("1");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("every existing few-shot file is reproduced"),
        "{out}"
    );

    // Prepared files made another way are recognised: the unshuffled pass, and the pass without
    // the validity filter (GLIP's setting for splits it does not train on).
    let source = Source::load(&train.join("annotations_without_background.json")).unwrap();
    let seed30: Seed = "30".parse().unwrap();
    let unshuffled = source.index.select(5, &Seed::from(0));
    assert_ne!(unshuffled, source.index.select(5, &seed30));
    let all = SamplingIndex::without_validity_filter(&source.coco, "train").unwrap();
    let unfiltered = all.select(10, &seed30);
    assert_ne!(unfiltered, source.index.select(10, &seed30));
    for (shot, kept) in [(5, &unshuffled), (10, &unfiltered)] {
        let f = write::fewshot_file(&source.coco, kept, None);
        f.write(&train.join(format!("fewshot_train_shot{shot}_seed30.json")))
            .unwrap();
    }
    let (code, out, _) = check("5,10");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|l| l.contains("shot5_seed30")
            && l.contains("its images are those of the unshuffled greedy pass (seed 0)")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains("shot10_seed30")
            && l.contains("its images are those of the same seed without the validity filter")),
        "{out}"
    );
}

#[test]
fn minival_and_export_layouts_use_glips_names() {
    let root = support::scratch();
    let r = root.path().to_str().unwrap();
    write(
        &root
            .path()
            .join("odinw/EgoHands/generic/mini_val/annotations_without_background.json"),
        &generated(20, 1),
    );
    write(
        &root
            .path()
            .join("odinw/pistols/export/train_annotations_without_background.json"),
        &generated(21, 1),
    );
    let (code, out, err) = odinw(&[
        "splits",
        "--tasks",
        "EgoHands_generic,pistols",
        "--root",
        r,
        "--shots",
        "1",
        "--seeds",
        "3",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(root
        .path()
        .join("odinw/EgoHands/generic/mini_val/fewshot_minival_shot1_seed3.json")
        .exists());
    assert!(root
        .path()
        .join("odinw/pistols/export/fewshot_train_shot1_seed3.json")
        .exists());
    // The splits whose files are absent are named, not fatal.
    assert!(
        err.contains("skipped, annotation file missing: EgoHands_generic:"),
        "{err}"
    );
}

#[test]
fn any_file_with_big_seeds_and_default_output_folder() {
    let dir = support::scratch();
    let ann = dir.path().join("my set.json");
    write(&ann, &generated(30, 2));
    let big = "123456789012345678901234567890";
    let (code, out, err) = odinw(&[
        "splits",
        "--ann",
        ann.to_str().unwrap(),
        "--shots",
        "2",
        "--seeds",
        &format!("0,00{big}"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for seed in ["0", big] {
        let p = dir
            .path()
            .join(format!("fewshot_my set_shot2_seed{seed}.json"));
        assert_eq!(read(&p)["odinw_fewshot"]["seed"], seed);
    }
}

#[test]
fn categories_with_fewer_than_k_images_are_reported() {
    let dir = support::scratch();
    let ann = dir.path().join("a.json");
    let box_ = |id: u64, img: u64, cat: u64| json!({"id": id, "image_id": img, "category_id": cat, "bbox": [0, 0, 10, 10]});
    let coco = json!({
        "images": (1..=6).map(|i| json!({"id": i, "file_name": format!("{i}.jpg")})).collect::<Vec<_>>(),
        "annotations": [box_(1, 1, 1), box_(2, 2, 1), box_(3, 3, 1), box_(4, 4, 1), box_(5, 5, 2), box_(6, 6, 2), box_(7, 6, 2)],
        "categories": [{"id": 1, "name": "common"}, {"id": 2, "name": "rare"}],
    });
    write(&ann, &coco);
    let (code, out, err) = odinw(&[
        "splits",
        "--ann",
        ann.to_str().unwrap(),
        "--shots",
        "1,3,5",
        "--seeds",
        "3,30",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 rare") && out.contains("2/3"), "{out}");
    assert!(
        err.contains("category 2 \"rare\" has fewer than k images (k=3: 2, k=5: 2)"),
        "{err}"
    );
    assert!(
        err.contains("category 1 \"common\" has fewer than k images (k=5: 4)"),
        "{err}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = support::scratch();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, b"{\"images\": [").unwrap();
    let (code, _, err) = odinw(&["splits", "--ann", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("broken.json") && err.contains("not a valid COCO file"),
        "{err}"
    );

    let (code, _, err) = odinw(&["splits", "--ann", "x.json", "--shots", "0"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = odinw(&["splits", "--ann", "x.json", "--seeds=-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid seed \"-1\""), "{err}");
    let (code, _, _) = odinw(&["splits", "--out", "d"]);
    assert_eq!(code, 2);
    let (code, _, _) = odinw(&["splits", "--ann", "x.json", "--tasks", "BCCD"]);
    assert_eq!(code, 2);
    let (code, _, err) = odinw(&["splits", "--tasks", "nope", "--root", "/nonexistent"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown task 'nope'"), "{err}");
    let (code, _, err) = odinw(&["splits", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("download them first"), "{err}");
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    support::files_under(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, bytes, modified)
        })
        .collect()
}

/// `--ann FILE --out DIR` writes `DIR/fewshot_<stem>_shot{K}_seed{S}.json` and nothing beside
/// FILE; `--check` writes nothing, neither the files that are absent nor over one that differs
/// (for `--ann` and for registry tasks), and says what it found.
#[test]
fn out_folder_receives_the_files_and_check_writes_nothing() {
    let dir = support::scratch();
    let src = dir.path().join("src");
    let ann = src.join("a.json");
    write(&ann, &generated(40, 3));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let run = |shots: &str, extra: &[&str]| {
        let mut args = vec![
            "splits",
            "--ann",
            ann.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--shots",
            shots,
            "--seeds",
            "3,30",
        ];
        args.extend(extra);
        odinw(&args)
    };
    let (code, stdout, err) = run("1,3", &["--quiet"]);
    assert_eq!(code, 0, "{stdout}{err}");
    let names = |d: &Path| -> Vec<String> {
        support::files_under(d)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&src), ["a.json"], "nothing is written beside FILE");
    assert_eq!(
        names(&out),
        [
            "fewshot_a_shot1_seed3.json",
            "fewshot_a_shot1_seed30.json",
            "fewshot_a_shot3_seed3.json",
            "fewshot_a_shot3_seed30.json",
        ]
    );
    assert_eq!(
        read(&out.join("fewshot_a_shot3_seed30.json"))["odinw_fewshot"]["seed"],
        "30"
    );

    // One file loses an image (it keeps odinw's marker): it differs, and stays as it is.
    let stale = out.join("fewshot_a_shot3_seed3.json");
    let mut f = read(&stale);
    f["images"].as_array_mut().unwrap().remove(0);
    write(&stale, &f);
    let before = snapshot(dir.path());
    let (code, stdout, err) = run("1,3,5", &["--check"]);
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(stdout.contains("4 of 6 few-shot files present"), "{stdout}");
    assert!(
        stdout.contains("fewshot_a_shot1_seed3.json (written by odinw): identical"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fewshot_a_shot3_seed3.json (written by odinw): differs"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 few-shot file(s) differ from the generator's"),
        "{stdout}"
    );
    assert_eq!(before, snapshot(dir.path()), "--check wrote a file");

    // Registry tasks: nothing there yet, and --check makes nothing.
    let (root, _) = bccd_root();
    let before = snapshot(root.path());
    let (code, stdout, err) = odinw(&[
        "splits",
        "--tasks",
        "BCCD",
        "--root",
        root.path().to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains("BCCD train: 0 of 12 few-shot files present"),
        "{stdout}"
    );
    assert_eq!(before, snapshot(root.path()), "--check wrote a file");
}

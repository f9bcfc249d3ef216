//! The `family` of a model directory: GLIP directories without the field load unchanged (as
//! GLIP), GLIP's loader refuses another family's directory naming the family, `odinw eval`
//! reads an OWLv2 directory by OWLv2's contract and a Grounding DINO / MM-Grounding-DINO one by
//! theirs (a broken one is refused as such; working ones run, tests/it/owlv2_eval.rs and
//! tests/it/grounding_dino_eval.rs) and refuses a family it has no pipeline for, naming it, and
//! `odinw finetune` refuses any non-GLIP family (OWLv2, MM-Grounding-DINO) as GLIP-only;
//! `--glip-batch` and `--fixed-canvas` are refused for OWLv2 and Grounding DINO, and
//! `--chunked-size` for GLIP and OWLv2.
use crate::support;
use crate::support::{copy_dir, repo};

use odinw::model::ModelDir;
use std::path::Path;

/// The demo model with `edit` applied to its model.json, in a scratch directory.
fn demo_model_with(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    copy_dir(&repo("models/demo"), dir);
    let path = dir.join("model.json");
    let mut json = support::read_json(&path);
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

/// The top of a model.json as `scripts/export_model.py --family owlv2` writes it (its GLIP
/// fields absent), with graphs that exist in the directory.
fn owlv2_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["text_encoder.onnx", "image_detector.onnx", "tokenizer.json"] {
        std::fs::write(dir.join(f), b"").unwrap();
    }
    let json = serde_json::json!({
        "contract": "odinw-grounding-model",
        "contract_version": 2,
        "family": "owlv2",
        "config": "owlv2",
        "graphs": {
            "text_encoder": {"file": "text_encoder.onnx"},
            "image_detector": {"file": "image_detector.onnx"}
        },
        "preprocess": {"input_size": [960, 960], "mean": [0.48, 0.46, 0.41], "std": [0.27, 0.26, 0.28]},
        "text": {"tokenizer": "tokenizer.json", "max_text_len": 16},
        "postprocess": {"nms": "none"}
    });
    std::fs::write(
        dir.join("model.json"),
        serde_json::to_vec_pretty(&json).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_glip_model_json_without_family_loads_as_glip() {
    let dir = support::scratch();
    let model = dir.path().join("model");
    demo_model_with(&model, |j| {
        j.as_object_mut().unwrap().remove("family");
    });
    let loaded = ModelDir::open(&model).unwrap();
    assert_eq!(loaded.spec.family, "glip");
    let committed = ModelDir::open(&repo("models/demo")).unwrap();
    assert_eq!(committed.spec.family, "glip");
}

/// `eval_demo_with` into `run`, which must fail before writing the run's manifest; its stderr.
fn refused_before_writing(model: &Path, run: &Path, extra: &[&str]) -> String {
    let out = eval_demo_with(model, run, extra);
    let stderr = support::text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(!run.join("manifest.json").exists(), "{stderr}");
    stderr
}

/// `eval_demo` with `extra` arguments.
fn eval_demo_with(model: &Path, run: &Path, extra: &[&str]) -> std::process::Output {
    let root = repo("demo");
    let mut args = vec![
        "eval",
        "--suite",
        "demo",
        "--tasks",
        "ColorShapes",
        "--split",
        "test",
        "--model",
        model.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    support::run_odinw(&args)
}

/// GLIP's canvas options are refused for the families with one fixed input (OWLv2, Grounding
/// DINO), naming them, before anything is written.
#[test]
fn glip_canvas_options_are_refused_for_other_families() {
    let dir = support::scratch();
    let owl = dir.path().join("owl");
    owlv2_model(&owl);
    let gdino = dir.path().join("gdino");
    demo_model_with(&gdino, |j| {
        j["family"] = "grounding-dino".into();
    });
    for model in [&owl, &gdino] {
        for extra in [&["--glip-batch", "2"][..], &["--fixed-canvas"][..]] {
            let stderr = refused_before_writing(model, &dir.path().join("run"), extra);
            assert!(
                stderr.contains("--glip-batch and --fixed-canvas are GLIP's canvases"),
                "{stderr}"
            );
        }
    }
}

/// `--chunked-size` splits a Grounding DINO caption: refused for GLIP and OWLv2 models, naming
/// the family, before anything is written.
#[test]
fn chunked_size_is_refused_for_glip_and_owlv2() {
    let dir = support::scratch();
    let owl = dir.path().join("owl");
    owlv2_model(&owl);
    let glip = repo("models/demo");
    for (model, family) in [(&owl, "OWLv2"), (&glip, "GLIP")] {
        let run = dir.path().join("run");
        let stderr = refused_before_writing(model, &run, &["--chunked-size", "2"]);
        assert!(
            stderr.contains("--chunked-size splits a Grounding DINO caption")
                && stderr.contains(&format!("a {family} model")),
            "{stderr}"
        );
    }
}

#[test]
fn eval_reads_owlv2_by_its_contract_and_refuses_unknown_families() {
    let dir = support::scratch();
    let model = dir.path().join("owl");
    owlv2_model(&model);
    let err = format!("{:#}", ModelDir::open(&model).unwrap_err());
    assert!(
        err.contains("\"owlv2\"") && err.contains("only the glip family"),
        "{err}"
    );
    // This model.json lacks OWLv2's prompt templates and top-k: refused as an OWLv2 file.
    let stderr = refused_before_writing(&model, &dir.path().join("run"), &[]);
    assert!(
        stderr.contains("not a valid OWLv2 model.json") && stderr.contains("model.json"),
        "{stderr}"
    );

    // A Grounding DINO family's model.json without its contract's fields: refused as such.
    for family in ["grounding-dino", "mm-grounding-dino"] {
        let gdino = dir.path().join(family);
        demo_model_with(&gdino, |j| {
            j["family"] = family.into();
        });
        let err = format!("{:#}", ModelDir::open(&gdino).unwrap_err());
        assert!(err.contains(&format!("\"{family}\"")), "{err}");
        let run = dir.path().join(format!("run-{family}"));
        let stderr = refused_before_writing(&gdino, &run, &[]);
        assert!(
            stderr.contains("not a valid Grounding DINO model.json"),
            "{stderr}"
        );
    }

    let other = dir.path().join("yolo");
    demo_model_with(&other, |j| {
        j["family"] = "yolo-world".into();
    });
    let stderr = refused_before_writing(&other, &dir.path().join("run2"), &[]);
    assert!(stderr.contains("family \"yolo-world\""), "{stderr}");
}

#[test]
fn finetune_says_it_is_glip_only() {
    let dir = support::scratch();
    let model = dir.path().join("owl");
    owlv2_model(&model);
    let gdino = dir.path().join("gdino");
    demo_model_with(&gdino, |j| {
        j["family"] = "mm-grounding-dino".into();
    });
    for (model, family) in [(&model, "owlv2"), (&gdino, "mm-grounding-dino")] {
        finetune_refused(model, family, dir.path());
    }
}

fn finetune_refused(model: &Path, family: &str, dir: &Path) {
    let out = support::run_odinw(&[
        "finetune",
        "--model",
        model.to_str().unwrap(),
        "--suite",
        "demo",
        "--tasks",
        "NovelShapes",
        "--shots",
        "1",
        "--root",
        repo("demo").to_str().unwrap(),
        "--out",
        dir.join("run").to_str().unwrap(),
    ]);
    let stderr = support::text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("fine-tuning is GLIP's only") && stderr.contains(&format!("\"{family}\"")),
        "{stderr}"
    );
}

#[test]
fn another_family_in_an_unreadable_model_json_is_still_a_parse_error() {
    let dir = support::scratch();
    let model = dir.path().join("broken");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("model.json"), b"{\"family\": \"owlv2\", ").unwrap();
    let err = format!("{:#}", ModelDir::open(&model).unwrap_err());
    assert!(err.contains("is not a valid model.json"), "{err}");
}

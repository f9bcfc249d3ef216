//! The run manifest's provenance, each field checked against an independent computation: the
//! git commit and dirty flag (git itself), the exact command line, the sha256 of each task's
//! evaluated image-id set (from the annotation file), the model files' sha256 (the files in
//! the repository), the annotation files' and the download manifest's sha256, the ONNX Runtime
//! version, provider and precision, and the execution providers of each graph.
//! `--device tensorrt` (and `cuda`) where ONNX Runtime cannot create the provider fails, naming the
//! library it could not load.
use crate::support;
use crate::support::{copy_dir, repo};

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo(""))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn the_manifest_records_commit_command_image_ids_models_dataset_manifest_and_providers() {
    let Some(python) = support::python_with(&["onnxruntime"]) else {
        return;
    };
    let dir = support::scratch();
    let root = dir.path().join("root");
    copy_dir(&repo("demo"), &root);
    // A download manifest for the demo archive, as `odinw download` leaves one.
    let dm = root.join(".odinw/manifests/ShapesDemo.json");
    std::fs::create_dir_all(dm.parent().unwrap()).unwrap();
    std::fs::write(&dm, br#"{"archive": "ShapesDemo", "sha256": "test"}"#).unwrap();
    let run = dir.path().join("run");
    let args: Vec<String> = [
        "eval",
        "--track",
        "zeroshot",
        "--suite",
        "demo",
        "--tasks",
        "ColorShapes,NovelShapes",
        "--split",
        "test",
        "--model",
        repo("models/demo").to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--device",
        "cpu",
    ]
    .map(String::from)
    .to_vec();
    let out = support::odinw()
        .args(&args)
        .env("ODINW_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    support::assert_ok(&out);
    let m: Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    let p = &m["provenance"];

    // The build: this checkout's commit, and whether the sources built into odinw differ.
    match git(&["rev-parse", "HEAD"]) {
        Some(head) if git(&["rev-parse", "--show-toplevel"]).is_some() => {
            assert_eq!(p["odinw_commit"], head, "{p}");
            let status = git(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "src",
                "build.rs",
                "Cargo.toml",
                "Cargo.lock",
                "odinw_35",
                "odinw_13",
                "demo",
                "models",
            ])
            .unwrap();
            assert_eq!(p["odinw_dirty"], !status.is_empty(), "{p} / {status}");
        }
        _ => {
            assert_eq!(p["odinw_commit"], "unknown");
            assert_eq!(p["odinw_dirty"], Value::Null);
        }
    }

    // The runtime: the ONNX Runtime odinw loaded (the oracle Python's onnxruntime, unless
    // $ORT_DYLIB_PATH names another), the provider asked for, the model's precision.
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        let version = support::run_oracle_code(
            &python,
            "import onnxruntime; print(onnxruntime.__version__)",
        );
        assert_eq!(
            m["runtime"]["ort_version"],
            version.trim(),
            "{}",
            m["runtime"]
        );
    }
    assert_eq!(m["runtime"]["execution_provider"], "cpu");
    assert_eq!(m["runtime"]["precision"], "fp32");

    // The exact command line.
    let mut want = vec![env!("CARGO_BIN_EXE_odinw").to_string()];
    want.extend(args.iter().cloned());
    assert_eq!(m["command"], serde_json::json!(want));

    // Image-id sets, from the annotation files.
    for task in ["ColorShapes", "NovelShapes"] {
        let ann = root.join(format!(
            "odinw/ShapesDemo/{task}/test/annotations_without_background.json"
        ));
        let coco: Value = serde_json::from_slice(&std::fs::read(&ann).unwrap()).unwrap();
        let mut ids: Vec<u64> = coco["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_u64().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
        assert_eq!(p["image_ids"][task]["count"], ids.len(), "{task}");
        assert_eq!(
            p["image_ids"][task]["sha256"],
            sha256_hex(text.as_bytes()),
            "{task}"
        );
        // The evaluated annotation file, hashed.
        let record = m["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["task"] == task)
            .unwrap_or_else(|| panic!("{task} in datasets: {}", m["datasets"]));
        let bytes = std::fs::read(&ann).unwrap();
        assert_eq!(record["files"][0]["path"], ann.display().to_string());
        assert_eq!(record["files"][0]["sha256"], sha256_hex(&bytes), "{task}");
        assert_eq!(record["files"][0]["bytes"], bytes.len(), "{task}");
        // The dataset's download manifest.
        assert_eq!(
            p["dataset_manifests"][task]["sha256"],
            sha256_hex(&std::fs::read(&dm).unwrap()),
            "{task}"
        );
        assert_eq!(
            p["dataset_manifests"][task]["path"],
            dm.display().to_string()
        );
    }

    // The model files, hashed from the repository.
    let models = m["models"].as_array().unwrap();
    let names: Vec<&str> = models
        .iter()
        .map(|f| {
            Path::new(f["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
        })
        .collect();
    for file in [
        "model.json",
        "tokenizer.json",
        "image_backbone.onnx",
        "text_encoder.onnx",
        "head.onnx",
    ] {
        let i = names
            .iter()
            .position(|n| *n == file)
            .unwrap_or_else(|| panic!("{file} not in {names:?}"));
        let bytes = std::fs::read(repo("models/demo").join(file)).unwrap();
        assert_eq!(models[i]["sha256"], sha256_hex(&bytes), "{file}");
        assert_eq!(models[i]["bytes"], bytes.len(), "{file}");
    }

    // Each graph and the providers that ran it: CPU only on --device cpu.
    let graphs = p["graphs"].as_array().unwrap();
    let mut opened: Vec<&str> = graphs
        .iter()
        .map(|g| {
            Path::new(g["graph"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
        })
        .collect();
    opened.sort_unstable();
    assert_eq!(
        opened,
        ["head.onnx", "image_backbone.onnx", "text_encoder.onnx"],
        "{p}"
    );
    for g in graphs {
        assert_eq!(
            g["providers"],
            serde_json::json!(["CPUExecutionProvider"]),
            "{g}"
        );
    }
}

#[test]
fn a_gpu_provider_that_cannot_be_created_fails_and_names_the_library() {
    let Some(python) = support::python_with(&["onnxruntime"]) else {
        return;
    };
    // The Python onnxruntime's own library; skip where it can really run TensorRT.
    let capi = support::run_oracle_code(
        &python,
        "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))",
    );
    let capi = PathBuf::from(capi.trim());
    let lib = std::fs::read_dir(&capi)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("libonnxruntime.so.")
        })
        .expect("libonnxruntime.so.* in onnxruntime/capi");
    let trt = capi.join("libonnxruntime_providers_tensorrt.so");
    if trt.is_file() && Path::new("/usr/lib/x86_64-linux-gnu/libnvinfer.so.10").exists() {
        eprintln!("skipped: this machine may be able to run TensorRT");
        return;
    }
    let dir = support::scratch();
    let eval = |device: &str| {
        let out = support::odinw()
            .args([
                "eval",
                "--track",
                "zeroshot",
                "--suite",
                "demo",
                "--tasks",
                "ColorShapes",
                "--split",
                "test",
                "--device",
                device,
                "--out",
            ])
            .arg(dir.path().join(device))
            .env("ORT_DYLIB_PATH", &lib)
            .env("ODINW_CACHE", dir.path().join("cache"))
            .output()
            .unwrap();
        assert!(
            !dir.path()
                .join(device)
                .join("ColorShapes/predictions.json")
                .exists(),
            "nothing ran on another provider"
        );
        out
    };
    // CUDA likewise, where this ONNX Runtime has no CUDA provider.
    let cuda = capi.join("libonnxruntime_providers_cuda.so");
    if !cuda.is_file() {
        let out = eval("cuda");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("could not create CUDAExecutionProvider")
                && err.contains(&format!("could not load {}", cuda.display())),
            "{err}"
        );
    }
    let out = eval("tensorrt");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not create TensorrtExecutionProvider"),
        "{err}"
    );
    // The library: the provider itself when this ONNX Runtime has none, else what it needs.
    if trt.is_file() {
        assert!(
            err.contains("could not load") && err.contains("libnvinfer"),
            "{err}"
        );
    } else {
        assert!(
            err.contains(&format!("could not load {}", trt.display())),
            "{err}"
        );
    }
}

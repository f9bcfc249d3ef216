//! The I/O-binding path of `odinw eval` (backbone outputs and text features kept in the
//! device's memory, as on CUDA) gives exactly the predictions of the host path. This machine
//! has no GPU, so both run on CPU, where ONNX Runtime binds to host memory: the binding logic
//! (which outputs go where, text features uploaded once per batch size, a smaller last batch)
//! is the one CUDA runs.
mod common;

use std::path::{Path, PathBuf};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn eval(out: &Path, cache: &Path, io_binding: &str, batch: &str) -> String {
    let o = common::odinw()
        .args([
            "eval", "--suite", "demo", "--split", "test", "--batch", batch,
        ])
        .args(["--io-binding", io_binding])
        .arg("--model")
        .arg(repo("models/demo"))
        .arg("--root")
        .arg(repo("demo"))
        .arg("--out")
        .arg(out)
        .env("ODINW_CACHE", cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bound_and_host_paths_predict_the_same() {
    if common::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let dir = common::scratch();
    let cache = dir.path().join("cache");
    let host = dir.path().join("host");
    let bound = dir.path().join("bound");
    eval(&host, &cache, "off", "3");
    // 20 test images per task in batches of 3: a last batch of 2 needs its own text upload.
    let log = eval(&bound, &cache, "on", "3");
    assert!(log.contains("images/s after the first batch"), "{log}");
    let mut tasks = 0;
    for entry in std::fs::read_dir(repo("demo/tasks")).unwrap() {
        let name = entry
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let read = |run: &Path| std::fs::read(run.join(&name).join("predictions.json")).unwrap();
        let (h, b) = (read(&host), read(&bound));
        let detections: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert!(
            detections.as_array().unwrap().len() > 100,
            "{name}: the demo model detects things"
        );
        assert!(
            h == b,
            "{name}: bound predictions differ from the host path"
        );
        tasks += 1;
    }
    assert_eq!(tasks, 3);
}

//! What `odinw score` reports beside the stats (README "Scoring"): the `--json` fields
//! (`id0_quirk` with both scorings checked against pycocotools with the id-0 GT as it is and
//! with its id moved, `stat_names`, `fix_id0`, the detection counts, `notes`, `numpy`), the notes
//! on stderr (id 0 changing the result, detections of unknown categories, GT without `area`
//! or `iscrowd`), the `--per-category` table (the JSON's per-category values), and `--numpy
//! 2.3` as the default, on a case where numpy 2.2 and 2.3 give different last bits.
use crate::support;
use crate::support::coco_gen::large_case;

use odinw::eval::{evaluate, Detections, GroundTruth, NumpySum, Options};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;
use support::{python_with, run_oracle, run_score, scratch};

/// `odinw score` on `gt` and `dt` (written into `dir` under `name`) with `--json` and `extra`:
/// its output and the JSON report.
fn score(dir: &Path, name: &str, gt: &str, dt: &str, extra: &[&str]) -> (Output, Value) {
    let (gt_path, dt_path) = write_case(dir, name, gt, dt);
    score_files(&gt_path, &dt_path, extra)
}

/// Writes `<name>_gt.json` and `<name>_dt.json` into `dir`.
fn write_case(dir: &Path, name: &str, gt: &str, dt: &str) -> (PathBuf, PathBuf) {
    let gt_path = dir.join(format!("{name}_gt.json"));
    let dt_path = dir.join(format!("{name}_dt.json"));
    std::fs::write(&gt_path, gt).unwrap();
    std::fs::write(&dt_path, dt).unwrap();
    (gt_path, dt_path)
}

/// [`score`] on files already written; the report lands beside the GT with a name from `extra`.
fn score_files(gt: &Path, dt: &Path, extra: &[&str]) -> (Output, Value) {
    let report = gt.with_file_name(format!(
        "{}_report{}.json",
        gt.file_stem().unwrap().to_string_lossy(),
        extra.join("").replace(['-', '.', ' '], "_")
    ));
    let mut args = vec!["--json", report.to_str().unwrap()];
    args.extend(extra);
    let out = run_score(gt, dt, &args);
    support::assert_ok(&out);
    (out, support::read_json(&report))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A JSON list of numbers as their bits.
fn bits(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap().to_bits())
        .collect()
}

/// The oracle's stats (Python reprs) as bits.
fn oracle_bits(v: &Value) -> Vec<u64> {
    assert!(v.get("error").is_none(), "pycocotools failed: {v}");
    v["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().parse::<f64>().unwrap().to_bits())
        .collect()
}

/// pycocotools (tests/oracles/coco_score.py) on each `(gt, dt, fix_id0, fill_defaults)`; its
/// answers in order (`{"error": ...}` where pycocotools raised).
fn pycocotools(python: &Path, dir: &Path, jobs: &[(&Path, &Path, bool, bool)]) -> Vec<Value> {
    let manifest: Vec<Value> = jobs
        .iter()
        .enumerate()
        .map(|(n, (gt, dt, fix_id0, fill_defaults))| {
            json!({"gt": gt, "dt": dt, "out": dir.join(format!("oracle_{n}.json")),
                   "fix_id0": fix_id0, "fill_defaults": fill_defaults})
        })
        .collect();
    let path = dir.join("oracle_manifest.json");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    run_oracle(python, "coco_score.py", &[path.to_str().unwrap()]);
    (0..jobs.len())
        .map(|n| support::read_json(&dir.join(format!("oracle_{n}.json"))))
        .collect()
}

/// The `--numpy` value for the numpy an oracle ran on (`"numpy": "2.2.6"`).
fn numpy_flag(oracle: &Value) -> &'static str {
    let v = oracle["numpy"]
        .as_str()
        .expect("the oracle's numpy version");
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    if (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 3) {
        "2.3"
    } else {
        "2.2"
    }
}

/// The id-0 note's text for AP `quirk` and `fixed`, as the README describes it.
fn id0_note(gt: &Path, quirk: f64, fixed: f64) -> String {
    format!(
        "note: {}: a GT annotation has id 0, which pycocotools never matches; AP is {quirk:.4} \
         with that quirk (published ODinW numbers) and {fixed:.4} with --fix-id0",
        gt.display()
    )
}

/// A GT whose annotation ids count from 0 (RoboFlow's numbering): `stats_pycocotools` is
/// pycocotools on the file as it is, `stats_fixed` pycocotools with the id-0 annotation given
/// an unused id, bit for bit; `stats` is the first without `--fix-id0` and the second with it;
/// `differs` says they differ, and a note on stderr gives both APs. Ids from 1 have no
/// `id0_quirk` and no note; an id-0 GT that no detection comes near changes nothing: `differs`
/// is false and there is no note.
#[test]
fn id0_quirk_holds_pycocotools_with_and_without_the_id0_annotation_matched() {
    let Some(python) = python_with(&["pycocotools", "numpy"]) else {
        return;
    };
    let dir = scratch();
    let d = dir.path();
    let (gt0, dt0) = large_case(2, 60, 0);
    let (gt0, dt0) = write_case(d, "id0", &gt0, &dt0);
    // The same detections, the GT numbered from 1: no annotation id 0.
    let (gt1, dt1) = large_case(2, 60, 1);
    let (gt1, dt1) = write_case(d, "id1", &gt1, &dt1);
    // Annotation id 0 on an image without detections: the quirk cannot change anything.
    let quiet_gt = json!({
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [
            {"id": 0, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 1, "image_id": 2, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [100, 10, 20, 30], "area": 600, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]});
    let quiet_dt = json!([
        {"image_id": 2, "category_id": 1, "bbox": [12, 10, 50, 48], "score": 0.9},
        {"image_id": 2, "category_id": 2, "bbox": [100, 12, 22, 30], "score": 0.4},
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 20, 20], "score": 0.7}]);
    let (gtq, dtq) = write_case(d, "quiet", &quiet_gt.to_string(), &quiet_dt.to_string());
    let oracle = pycocotools(
        &python,
        d,
        &[
            (&gt0, &dt0, false, false),
            (&gt0, &dt0, true, false),
            (&gtq, &dtq, false, false),
            (&gtq, &dtq, true, false),
        ],
    );
    let numpy = numpy_flag(&oracle[0]);
    let (want_quirk, want_fixed) = (oracle_bits(&oracle[0]), oracle_bits(&oracle[1]));
    assert_ne!(
        want_quirk, want_fixed,
        "the case should make the id-0 quirk matter"
    );

    let (out, plain) = score_files(&gt0, &dt0, &["--numpy", numpy]);
    let (out_fixed, fixed) = score_files(&gt0, &dt0, &["--numpy", numpy, "--fix-id0"]);
    for (report, fix) in [(&plain, false), (&fixed, true)] {
        let q = &report["id0_quirk"];
        assert_eq!(q["gt_has_annotation_id0"], true, "{q}");
        assert_eq!(q["differs"], true, "{q}");
        assert_eq!(bits(&q["stats_pycocotools"]), want_quirk, "--fix-id0 {fix}");
        assert_eq!(bits(&q["stats_fixed"]), want_fixed, "--fix-id0 {fix}");
        assert_eq!(report["fix_id0"], fix);
        let main = if fix { &want_fixed } else { &want_quirk };
        assert_eq!(&bits(&report["stats"]), main, "--fix-id0 {fix}");
    }
    let ap = |b: &[u64]| f64::from_bits(b[0]);
    let note = id0_note(&gt0, ap(&want_quirk), ap(&want_fixed));
    assert!(
        stderr(&out).lines().any(|l| l == note),
        "no {note:?} in\n{}",
        stderr(&out)
    );
    let shown = format!("{note} (shown)");
    assert!(
        stderr(&out_fixed).lines().any(|l| l == shown),
        "no {shown:?} in\n{}",
        stderr(&out_fixed)
    );

    let (out, report) = score_files(&gt1, &dt1, &["--numpy", numpy]);
    assert!(report.get("id0_quirk").is_none(), "{}", report["id0_quirk"]);
    assert!(!stderr(&out).contains("id 0"), "{}", stderr(&out));

    let (out, report) = score_files(&gtq, &dtq, &[]);
    let q = &report["id0_quirk"];
    assert_eq!(q["gt_has_annotation_id0"], true, "{q}");
    assert_eq!(q["differs"], false, "{q}");
    assert_eq!(bits(&q["stats_pycocotools"]), oracle_bits(&oracle[2]));
    assert_eq!(bits(&q["stats_fixed"]), oracle_bits(&oracle[3]));
    assert!(!stderr(&out).contains("id 0"), "{}", stderr(&out));
}

/// `stat_names`, `fix_id0`, `num_detections`, `num_detections_unknown_category`, `notes` and
/// `numpy`: results of categories the GT does not list are counted, named in a note and
/// dropped (the stats are pycocotools' and those of the file without them); GT annotations
/// without `area` or `iscrowd` are scored as w*h and 0 (pycocotools raises KeyError on the file,
/// and gives the same stats once they are filled in), with a note on stderr and in `notes`.
#[test]
fn report_fields_counts_and_notes() {
    let Some(python) = python_with(&["pycocotools", "numpy"]) else {
        return;
    };
    let dir = scratch();
    let d = dir.path();
    let gt = json!({
        "images": [{"id": 1}, {"id": 2}, {"id": 3}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 30], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [100, 80, 120, 90], "area": 9000},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [50, 60, 20, 20], "area": 400, "iscrowd": 0},
            {"id": 4, "image_id": 3, "category_id": 2, "bbox": [5, 6, 64, 64]}],
        "categories": [{"id": 1, "name": "fish"}, {"id": 2, "name": "shark"}]});
    let known = vec![
        json!({"image_id": 1, "category_id": 1, "bbox": [11, 9, 40, 31], "score": 0.9}),
        json!({"image_id": 1, "category_id": 2, "bbox": [101, 82, 118, 88], "score": 0.8}),
        json!({"image_id": 2, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.7}),
        json!({"image_id": 2, "category_id": 1, "bbox": [52, 61, 19, 20], "score": 0.5}),
        json!({"image_id": 3, "category_id": 2, "bbox": [5, 6, 60, 66], "score": 0.5}),
    ];
    let mut all = known.clone();
    all.insert(
        1,
        json!({"image_id": 1, "category_id": 9, "bbox": [11, 9, 40, 31], "score": 0.95}),
    );
    all.push(json!({"image_id": 3, "category_id": 7, "bbox": [5, 6, 60, 66], "score": 0.6}));
    let (gt_path, dt_path) = write_case(d, "notes", &gt.to_string(), &json!(all).to_string());
    let known_dt = d.join("known_dt.json");
    std::fs::write(&known_dt, json!(known).to_string()).unwrap();

    let (out, report) = score_files(&gt_path, &dt_path, &[]);
    assert_eq!(
        report["stat_names"],
        json!([
            "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"
        ])
    );
    assert_eq!(report["fix_id0"], false);
    assert_eq!(report["numpy"], "numpy>=2.3");
    assert_eq!(report["num_detections"], 7);
    assert_eq!(report["num_detections_unknown_category"], 2);
    let area_note =
        "2 annotations have no \"area\": using width*height (pycocotools would raise KeyError)";
    let crowd_note =
        "2 annotations have no \"iscrowd\": using 0 (pycocotools would raise KeyError)";
    assert_eq!(report["notes"], json!([area_note, crowd_note]));
    let err = stderr(&out);
    for line in [
        format!("note: {}: {area_note}", gt_path.display()),
        format!("note: {}: {crowd_note}", gt_path.display()),
        format!(
            "note: {}: 2 of 7 detections have a category the ground truth does not list; \
             pycocotools ignores them (so does odinw)",
            dt_path.display()
        ),
    ] {
        assert!(err.lines().any(|l| l == line), "no {line:?} in\n{err}");
    }

    let oracle = pycocotools(
        &python,
        d,
        &[
            (&gt_path, &dt_path, false, false),
            (&gt_path, &dt_path, false, true),
        ],
    );
    assert_eq!(
        oracle[0]["error"], "KeyError",
        "pycocotools should refuse a GT without area: {}",
        oracle[0]
    );
    assert_eq!(bits(&report["stats"]), oracle_bits(&oracle[1]));
    let (_, without) = score_files(&gt_path, &known_dt, &[]);
    assert_eq!(bits(&report["stats"]), bits(&without["stats"]));
    assert_eq!(without["num_detections"], 5);
    assert_eq!(without["num_detections_unknown_category"], 0);

    let (_, fixed) = score_files(&gt_path, &dt_path, &["--fix-id0", "--numpy", "2.2"]);
    assert_eq!(fixed["fix_id0"], true);
    assert_eq!(fixed["numpy"], "numpy<=2.2");

    // A clean GT and results: no notes, nothing unknown.
    let mut clean = gt.clone();
    for a in clean["annotations"].as_array_mut().unwrap() {
        let b = a["bbox"].as_array().unwrap();
        let area = b[2].as_f64().unwrap() * b[3].as_f64().unwrap();
        a.as_object_mut()
            .unwrap()
            .entry("area")
            .or_insert(json!(area));
        a.as_object_mut()
            .unwrap()
            .entry("iscrowd")
            .or_insert(json!(0));
    }
    let (out, report) = score(
        d,
        "clean",
        &clean.to_string(),
        &json!(known).to_string(),
        &[],
    );
    assert_eq!(report["notes"], json!([]));
    assert_eq!(report["num_detections_unknown_category"], 0);
    assert!(!stderr(&out).contains("note:"), "{}", stderr(&out));
    assert_eq!(bits(&report["stats"]), oracle_bits(&oracle[1]));
}

/// One row of the `--per-category` table: (category, id, AP, AP50, APs, APm, APl) as printed.
fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in stdout.lines() {
        if !line.starts_with('│') {
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('│')
            .split(['┆', '│'])
            .map(|c| c.trim().to_string())
            .collect();
        if cells.first().map(String::as_str) == Some("category") {
            assert_eq!(
                cells,
                ["category", "id", "AP", "AP50", "APs", "APm", "APl"],
                "header"
            );
            in_table = true;
        } else if in_table {
            rows.push(cells);
        }
    }
    assert!(in_table, "no per-category table in\n{stdout}");
    rows
}

/// `--per-category` prints one row per category, in the report's order, with the JSON's
/// per-category AP, AP50, APs, APm, APl to 3 decimals (-1 where a category has no GT).
#[test]
fn per_category_table_shows_the_reports_values() {
    let dir = scratch();
    let (gt, dt) = large_case(11, 80, 1);
    let (out, report) = score(dir.path(), "table", &gt, &dt, &["--per-category"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows = table_rows(&stdout);
    let per_category = report["per_category"].as_object().unwrap();
    assert_eq!(rows.len(), per_category.len(), "{stdout}");
    assert_eq!(rows.len(), 16);
    let keys = ["AP", "AP50", "APs", "APm", "APl"];
    let mut columns_differ = [false; 4];
    for (row, (name, entry)) in rows.iter().zip(per_category) {
        assert_eq!(&row[0], name, "{stdout}");
        assert_eq!(row[1], entry["id"].to_string(), "{name}");
        let values: Vec<f64> = keys.iter().map(|k| entry[k].as_f64().unwrap()).collect();
        let printed: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
        assert_eq!(row[2..], printed[..], "category {name}: {stdout}");
        for (i, w) in printed.windows(2).enumerate() {
            columns_differ[i] |= w[0] != w[1];
        }
    }
    // The case tells neighbouring columns apart and has a category without GT (-1).
    assert!(columns_differ.iter().all(|&d| d), "{stdout}");
    assert!(rows.iter().any(|r| r[2] == "-1.000"), "{stdout}");
    // Without the flag there is no table.
    let out = run_score(
        &dir.path().join("table_gt.json"),
        &dir.path().join("table_dt.json"),
        &[],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains('┆'));
}

/// Without `--numpy` the numbers are numpy >= 2.3's: on a case where numpy 2.2 and 2.3 give
/// different last bits, the default equals `--numpy 2.3` (and pycocotools on numpy >= 2.3 when
/// `$ODINW_PYTHON_NUMPY_LATEST` names one) and differs from `--numpy 2.2`.
#[test]
fn numpy_2_3_is_the_default() {
    let dir = scratch();
    let (gt, dt) = large_case(20_240_611, 400, 1);
    let (gt_path, dt_path) = write_case(dir.path(), "numpy", &gt, &dt);
    // The case must tell the two summations apart, or the comparison proves nothing.
    let g = GroundTruth::read(&gt_path).unwrap();
    let det = Detections::read(&g, &dt_path).unwrap();
    let ev = |numpy| {
        evaluate(
            &g,
            &det,
            &Options {
                fix_id0: false,
                numpy,
            },
        )
    };
    assert_ne!(
        ev(NumpySum::Whole).stats,
        ev(NumpySum::Buffered).stats,
        "the case does not tell numpy 2.2 from 2.3"
    );
    let (_, default) = score_files(&gt_path, &dt_path, &[]);
    let (_, v23) = score_files(&gt_path, &dt_path, &["--numpy", "2.3"]);
    let (_, v22) = score_files(&gt_path, &dt_path, &["--numpy", "2.2"]);
    assert_eq!(default["numpy"], "numpy>=2.3");
    assert_eq!(bits(&default["stats"]), bits(&v23["stats"]));
    assert_ne!(bits(&default["stats"]), bits(&v22["stats"]));
    assert_eq!(default["per_category"], v23["per_category"]);

    let Some(latest) = std::env::var_os("ODINW_PYTHON_NUMPY_LATEST") else {
        if std::env::var("ODINW_REQUIRE_ORACLES").as_deref() == Ok("1") {
            panic!("ODINW_PYTHON_NUMPY_LATEST is not set (a Python with numpy >= 2.3 and pycocotools; scripts/test.sh makes one)");
        }
        eprintln!("note: ODINW_PYTHON_NUMPY_LATEST is not set: numpy >= 2.3 not compared");
        return;
    };
    let oracle = pycocotools(
        Path::new(&latest),
        dir.path(),
        &[(&gt_path, &dt_path, false, false)],
    );
    assert_eq!(numpy_flag(&oracle[0]), "2.3", "{}", oracle[0]["numpy"]);
    assert_eq!(bits(&default["stats"]), oracle_bits(&oracle[0]));
}

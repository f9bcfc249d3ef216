//! The library API a pipeline calls with its own predictions: detections handed over in memory
//! score exactly like the same detections read from a results file, an empty prediction set
//! scores 0 (pycocotools cannot score it at all), and bad records are refused with the record
//! named.
use odinw::eval::{evaluate, Detection, Detections, GroundTruth, Id, Options};
use serde_json::Value;

const GT: &str = r#"{"images": [{"id": 3}, {"id": 1}, {"id": 2}],
 "annotations": [
  {"id": 0, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40.5, 30.25], "area": 1225.125, "iscrowd": 0},
  {"id": 1, "image_id": 1, "category_id": 2, "bbox": [100, 80, 120, 90], "area": 10800, "iscrowd": 0},
  {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 300, 200], "area": 60000, "iscrowd": 1},
  {"id": 3, "image_id": 2, "category_id": 1, "bbox": [50, 60, 20, 20], "area": 400, "iscrowd": 0},
  {"id": 4, "image_id": 3, "category_id": 2, "bbox": [5.5, 6.5, 64, 64], "area": 4096, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "fish"}, {"id": 2, "name": "shark"}]}"#;

const DT: &str = r#"[
 {"image_id": 1, "category_id": 1, "bbox": [11.2, 9.8, 40.1, 30.0], "score": 0.9350724220275879},
 {"image_id": 1, "category_id": 1, "bbox": [200, 200, 30, 30], "score": 0.5},
 {"image_id": 1, "category_id": 2, "bbox": [101, 82, 118, 88], "score": 0.8},
 {"image_id": 2, "category_id": 1, "bbox": [52, 61, 19, 20], "score": 0.5},
 {"image_id": 2, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.7},
 {"image_id": 3, "category_id": 2, "bbox": [5, 6, 60, 66], "score": 0.5},
 {"image_id": 3, "category_id": 1, "bbox": [5, 6, 60, 66], "score": 0.3}]"#;

fn records() -> Vec<Detection> {
    let list: Vec<Value> = serde_json::from_str(DT).unwrap();
    list.iter()
        .map(|d| {
            let b: Vec<f64> = d["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            Detection {
                image_id: Id::Int(d["image_id"].as_i64().unwrap()),
                category_id: Id::Int(d["category_id"].as_i64().unwrap()),
                bbox: [b[0], b[1], b[2], b[3]],
                score: d["score"].as_f64().unwrap(),
            }
        })
        .collect()
}

#[test]
fn in_memory_detections_score_like_a_results_file() {
    let gt = GroundTruth::from_json(GT.as_bytes()).unwrap();
    assert!(gt.has_annotation_id0());
    let from_file = Detections::from_json(&gt, DT.as_bytes()).unwrap();
    let from_memory = Detections::from_records(&gt, &records()).unwrap();
    for fix_id0 in [false, true] {
        let opts = Options {
            fix_id0,
            ..Options::default()
        };
        let a = evaluate(&gt, &from_file, &opts);
        let b = evaluate(&gt, &from_memory, &opts);
        assert_eq!(a.stats.map(f64::to_bits), b.stats.map(f64::to_bits));
        assert!(a
            .precision
            .iter()
            .zip(&b.precision)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(a.recall, b.recall);
        assert_eq!(a.per_category, b.per_category);
        assert_eq!(a.summary().lines().count(), 12);
        assert_eq!(a.precision.len(), 10 * 101 * 2 * 4 * 3);
        // [T, R, K, A, M] in C order: (t, r, k, a, m) = (0, 0, 1, 0, 2) is ((1 * 4) + 0) * 3 + 2.
        assert_eq!(
            a.precision_at(0, 0, 1, 0, 2).to_bits(),
            a.precision[14].to_bits()
        );
    }
    // The id-0 GT (fish on image 1) is matched only with the fix.
    let quirk = evaluate(&gt, &from_file, &Options::default());
    let fixed = evaluate(
        &gt,
        &from_file,
        &Options {
            fix_id0: true,
            ..Options::default()
        },
    );
    assert!(fixed.per_category[0].ap > quirk.per_category[0].ap);
    assert_eq!(fixed.per_category[1].ap, quirk.per_category[1].ap);
}

#[test]
fn no_detections_score_zero() {
    let gt = GroundTruth::from_json(GT.as_bytes()).unwrap();
    let none = Detections::from_records(&gt, &[]).unwrap();
    let ev = evaluate(&gt, &none, &Options::default());
    // Every area range that has regular GT scores 0; the others are undefined (-1).
    assert_eq!(
        ev.stats,
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    // A results *file* with an empty list is refused, as in pycocotools.
    let err = Detections::from_json(&gt, b"[]").err().unwrap().to_string();
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn bad_records_are_refused() {
    let gt = GroundTruth::from_json(GT.as_bytes()).unwrap();
    let mut r = records();
    r[4].image_id = Id::Int(99);
    let err = Detections::from_records(&gt, &r).err().unwrap().to_string();
    assert!(
        err.contains("detection #4") && err.contains("image_id 99"),
        "{err}"
    );
    let mut r = records();
    r[2].score = f64::NAN;
    let err = Detections::from_records(&gt, &r).err().unwrap().to_string();
    assert!(
        err.contains("detection #2") && err.contains("finite"),
        "{err}"
    );
    let mut r = records();
    r[1].bbox[3] = -1.0;
    let err = Detections::from_records(&gt, &r).err().unwrap().to_string();
    assert!(
        err.contains("detection #1") && err.contains("negative"),
        "{err}"
    );
}

#[test]
fn parallel_parsing_survives_braces_inside_strings() {
    // A results file above the parallel-parsing size whose strings are full of ", {" (the
    // pattern the parser guesses element starts from): guesses inside strings must be thrown
    // away and the outcome must equal the detections themselves.
    let gt = GroundTruth::from_json(GT.as_bytes()).unwrap();
    let mut text = String::from("[");
    let mut records = Vec::new();
    for n in 0..12000u32 {
        let image = 1 + n % 3;
        let b = [
            f64::from(n % 97),
            f64::from(n % 89),
            20.0 + f64::from(n % 13),
            30.0,
        ];
        let score = f64::from(n % 1000) / 1000.0;
        let note = r#", {\"image_id\": 9, \"bbox\": [1, 2, 3, 4]}, {"#.repeat(3);
        if n > 0 {
            text.push_str(", ");
        }
        text.push_str(&format!(
            r#"{{"note": "{note}", "image_id": {image}, "category_id": {}, "bbox": [{:?}, {:?}, {:?}, {:?}], "score": {score:?}, "extra": [{{"a": ", {{"}}]}}"#,
            1 + n % 2,
            b[0],
            b[1],
            b[2],
            b[3]
        ));
        records.push(Detection {
            image_id: Id::Int(i64::from(image)),
            category_id: Id::Int(i64::from(1 + n % 2)),
            bbox: b,
            score,
        });
    }
    text.push(']');
    assert!(
        text.len() > 2 << 20,
        "the file must be large enough to be parsed in parallel"
    );
    let parsed = Detections::from_json(&gt, text.as_bytes()).unwrap();
    assert_eq!(parsed.num_input(), 12000);
    let direct = Detections::from_records(&gt, &records).unwrap();
    let (a, b) = (
        evaluate(&gt, &parsed, &Options::default()),
        evaluate(&gt, &direct, &Options::default()),
    );
    assert_eq!(a.stats.map(f64::to_bits), b.stats.map(f64::to_bits));
    assert_eq!(a.precision, b.precision);
}

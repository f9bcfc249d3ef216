//! What each fuzz target does with one input, shared by the seeded corpus run in `cargo test`
//! (`tests/it/fuzz_corpus.rs`) and the `cargo fuzz` targets (`fuzz/`): the bytes go through
//! odinw's public reader for that kind of file, which must return a value or an error (never
//! panic), and what it returns must hold together. Each returns whether the input was accepted.
#![allow(dead_code)]
use odinw::eval::{self, Detections, GroundTruth};
use odinw::submission::check::{check_file, CheckOptions};
use std::path::Path;

/// JPEG or PNG bytes through the decoder `eval` uses: an image whose pixel buffer matches its
/// size, or an error.
pub fn decode(bytes: &[u8]) -> bool {
    let Ok((img, _)) = odinw::preprocess::decode_bytes(bytes) else {
        return false;
    };
    {
        assert_eq!(
            img.data.len() as u64,
            img.width as u64 * img.height as u64 * 3,
            "decoded buffer size"
        );
        assert!(img.width > 0 && img.height > 0, "decoded an empty image");
    }
    true
}

/// A COCO annotation file through both readers (the evaluator's strict pull reader and the
/// serde one `normalize` and the pipeline use); when the evaluator reads it, it is scored
/// against no detections.
pub fn coco(bytes: &[u8]) -> bool {
    let serde_ok = odinw::data::coco::CocoFile::from_slice(bytes).is_ok();
    // The one-parse reader (pipelines) accepts only what both readers accept, and gives the
    // same ground truth.
    let both =
        odinw::data::coco::CocoFile::parse_with_ground_truth(bytes, "fuzz.json".as_ref()).ok();
    let Ok(gt) = GroundTruth::from_json(bytes) else {
        assert!(
            both.is_none(),
            "the one-parse reader accepted a bad ground truth"
        );
        return serde_ok;
    };
    if let Some((_, one)) = &both {
        assert_eq!(one.images(), gt.images());
        assert_eq!(one.categories(), gt.categories());
        assert_eq!(one.num_boxes(), gt.num_boxes());
        assert_eq!(one.notes(), gt.notes());
    }
    if let Ok(dt) = Detections::from_records(&gt, &[]) {
        let _ = eval::report::score(&gt, &dt, false);
    }
    true
}

/// A results file against `gt` (the evaluator's reader), scored when it reads.
pub fn results(gt: &GroundTruth, bytes: &[u8]) -> bool {
    let Ok(dt) = Detections::from_json(gt, bytes) else {
        return false;
    };
    let scored = eval::report::score(gt, &dt, false);
    for s in scored.main.stats {
        assert!(s == -1.0 || (0.0..=1.0).contains(&s), "stat {s}");
    }
    true
}

/// A zip through the dataset installer's extraction into `scratch/out` (removed first): an
/// error, or files that all resolve inside the folder.
pub fn zip(bytes: &[u8], scratch: &Path) -> bool {
    use odinw::download::extract::{extract_bytes, Limits};
    let dest = scratch.join("out");
    if dest.exists() {
        std::fs::remove_dir_all(&dest).expect("clearing the extraction folder");
    }
    // Small limits keep each run's disk use small; the ratio rule is the installer's.
    let limits = Limits {
        available: 64 << 20,
        ..Limits::with_available(0)
    };
    if extract_bytes(bytes, &dest, &limits).is_err() {
        return false;
    }
    assert_inside(&dest);
    true
}

/// Every path under `dest`, links followed, stays inside `dest`.
fn assert_inside(dest: &Path) {
    let root = dest.canonicalize().expect("the extraction folder");
    let mut stack = vec![dest.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if let Ok(real) = p.canonicalize() {
                assert!(
                    real.starts_with(&root),
                    "{} resolves to {}, outside {}",
                    p.display(),
                    real.display(),
                    root.display()
                );
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
}

/// A submission file through `odinw submission check` with `opts`: a report, or an error.
pub fn submission(bytes: &[u8], scratch: &Path, opts: &CheckOptions) -> bool {
    let file = scratch.join("submission.json");
    std::fs::write(&file, bytes).expect("writing the submission");
    let Ok(report) = check_file(&file, opts) else {
        return false;
    };
    assert_eq!(
        report.valid,
        report.problem_counts.is_empty(),
        "valid with problems"
    );
    report.valid
}

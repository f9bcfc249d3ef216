//! `predictions.json`: a COCO results list, written one detection per line as it is produced
//! and read back one detection at a time, so neither side holds the whole list in memory.
use anyhow::{Context, Result};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::Deserializer;
use std::fmt;
use std::io::{BufReader, Write};
use std::path::Path;

use crate::postprocess::CocoDetection;

/// The evaluator's in-memory form of a result.
impl From<&CocoDetection> for crate::eval::Detection {
    fn from(d: &CocoDetection) -> Self {
        crate::eval::Detection {
            image_id: d.image_id.into(),
            category_id: d.category_id.into(),
            bbox: d.bbox,
            score: d.score,
        }
    }
}

/// Writes a results list one detection at a time: `[`, one object per line, `]`.
pub struct PredictionsWriter<W: Write> {
    out: W,
    count: u64,
}

impl<W: Write> PredictionsWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out, count: 0 }
    }

    /// Appends one detection; non-finite numbers and negative sizes are refused.
    pub fn push(&mut self, det: &CocoDetection) -> Result<()> {
        det.validate()
            .with_context(|| format!("detection #{} (image_id {})", self.count, det.image_id))?;
        self.out
            .write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
        serde_json::to_writer(&mut self.out, det)?;
        self.count += 1;
        Ok(())
    }

    /// Closes the list and returns the writer and the number of detections written.
    pub fn finish(mut self) -> Result<(W, u64)> {
        self.out
            .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        Ok((self.out, self.count))
    }
}

/// Calls `f` on each detection of the results list in `path`, in file order, without reading
/// the whole list into memory. Returns how many there were. Errors name the file and the index.
pub fn for_each_detection(path: &Path, f: impl FnMut(CocoDetection) -> Result<()>) -> Result<u64> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, file));
    let mut state = Each {
        f,
        count: 0,
        error: None,
    };
    let result = (&mut state).deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = state.error {
        return Err(e.context(format!("{}: detection #{}", path.display(), state.count)));
    }
    result.with_context(|| {
        format!(
            "{} is not a COCO results list (after {} detections)",
            path.display(),
            state.count
        )
    })?;
    Ok(state.count)
}

struct Each<F> {
    f: F,
    count: u64,
    error: Option<anyhow::Error>,
}

impl<'de, F: FnMut(CocoDetection) -> Result<()>> DeserializeSeed<'de> for &mut Each<F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(CocoDetection) -> Result<()>> Visitor<'de> for &mut Each<F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of COCO detections")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(det) = seq.next_element::<CocoDetection>()? {
            if let Err(e) = det.validate().and_then(|()| (self.f)(det)) {
                self.error = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
            self.count += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(i: u64, score: f64) -> CocoDetection {
        CocoDetection {
            image_id: i,
            category_id: 1,
            bbox: [1.0, 2.5, 3.0, 4.0],
            score,
        }
    }

    #[test]
    fn written_lists_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let mut w = PredictionsWriter::new(Vec::new());
        for i in 0..3 {
            w.push(&det(i, 0.5)).unwrap();
        }
        let (bytes, n) = w.finish().unwrap();
        assert_eq!(n, 3);
        std::fs::write(&path, &bytes).unwrap();
        let parsed: Vec<CocoDetection> = serde_json::from_slice(&bytes).unwrap();
        let mut seen = Vec::new();
        for_each_detection(&path, |d| {
            seen.push(d);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, parsed);
        let (empty, _) = PredictionsWriter::new(Vec::new()).finish().unwrap();
        assert_eq!(
            serde_json::from_slice::<Vec<CocoDetection>>(&empty).unwrap(),
            []
        );
    }

    #[test]
    fn non_finite_scores_are_refused_on_write() {
        let mut w = PredictionsWriter::new(Vec::new());
        let err = w.push(&det(7, f64::NAN)).unwrap_err();
        assert!(format!("{err:#}").contains("score is NaN"), "{err:#}");
    }

    #[test]
    fn bad_files_name_the_file_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"[{"image_id":1,"category_id":1,"bbox":[0,0,1,1],"score":0.5},{"image_id":2}]"#,
        )
        .unwrap();
        let err = format!("{:#}", for_each_detection(&path, |_| Ok(())).unwrap_err());
        assert!(
            err.contains("p.json") && err.contains("after 1 detections"),
            "{err}"
        );
        std::fs::write(
            &path,
            r#"[{"image_id":1,"category_id":1,"bbox":[0,0,-1,1],"score":0.5}]"#,
        )
        .unwrap();
        let err = format!("{:#}", for_each_detection(&path, |_| Ok(())).unwrap_err());
        assert!(
            err.contains("detection #0") && err.contains("negative"),
            "{err}"
        );
    }
}

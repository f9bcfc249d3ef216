//! COCO bbox evaluation that gives pycocotools' numbers (`COCOeval(gt, dt, "bbox")` with
//! default parameters), bit for bit, in pure Rust.
//!
//! ```no_run
//! use odinw::eval::{evaluate, Detections, GroundTruth, Options};
//! let gt = GroundTruth::read("valid/_annotations.coco.json".as_ref())?;
//! let dt = Detections::read(&gt, "predictions.json".as_ref())?;
//! let ev = evaluate(&gt, &dt, &Options::default());
//! println!("AP = {}", ev.stats[0]);
//! # Ok::<(), odinw::eval::LoadError>(())
//! ```
//!
//! Files: `json` (serde_json, Python's checks, error positions), `ids`/`fields` (typed fields), `gt` and `results` (loading
//! with pycocotools' selection rules), `params`, `iou`, `matching` (`evaluateImg`),
//! `accumulate`, `summarize`. The one deliberate difference from pycocotools, on request, is
//! [`Options::fix_id0`]; input pycocotools would score into garbage (NaN, infinities,
//! negative sizes) is rejected.
mod accumulate;
mod fields;
mod gt;
mod ids;
mod iou;
mod json;
mod matching;
mod params;
mod record_scan;
pub mod report;
mod results;
mod summarize;

pub use gt::{Category, GroundTruth};
pub use ids::Id;
pub use iou::iou;
pub use params::Params;
pub use results::{Detection, Detections};
pub use summarize::{numpy_mean, pairwise_sum, NumpySum, STAT_NAMES};

use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// How to score.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Let a GT whose annotation id is 0 be matched, as if ids had been renumbered from 1.
    /// pycocotools never matches it (spec §4, case 16); RoboFlow exports, and so every ODinW
    /// split, number annotations from 0, and published ODinW numbers carry that quirk, so the
    /// default keeps it.
    pub fix_id0: bool,
    /// Which numpy's `np.mean` the summary numbers reproduce (pycocotools' last bits depend on
    /// it once a mean covers more than 8192 values); default numpy >= 2.3.
    pub numpy: NumpySum,
}

/// Per-category AP as GLIP's `bbox.csv` reports it: the mean of the defined precision values
/// of one category (-1 when it has no regular GT).
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryAp {
    pub id: Id,
    pub name: String,
    /// AP@[.50:.95], all areas, maxDets 100.
    pub ap: f64,
    pub ap50: f64,
    pub ap_small: f64,
    pub ap_medium: f64,
    pub ap_large: f64,
}

/// Everything `evaluate` + `accumulate` + `summarize` produce.
pub struct Evaluation {
    pub params: Params,
    pub categories: Vec<Category>,
    /// `[T, R, K, A, M]` (IoU threshold, recall threshold, category, area range, maxDets), -1
    /// where undefined; see [`Evaluation::precision_at`].
    pub precision: Vec<f64>,
    /// `[T, K, A, M]`.
    pub recall: Vec<f64>,
    /// `[T, R, K, A, M]`: the detection score at which each precision value is reached.
    pub scores: Vec<f64>,
    /// pycocotools' `stats`, in its order (see [`STAT_NAMES`]).
    pub stats: [f64; 12],
    pub per_category: Vec<CategoryAp>,
    /// Whether [`Options::fix_id0`] was on.
    pub fix_id0: bool,
    /// [`Options::numpy`].
    pub numpy: NumpySum,
}

impl Evaluation {
    fn dims(&self) -> summarize::Dims {
        summarize::Dims {
            t: self.params.iou_thrs.len(),
            r: self.params.rec_thrs.len(),
            k: self.categories.len(),
            a: self.params.area_ranges.len(),
            m: self.params.max_dets.len(),
        }
    }

    pub fn precision_at(&self, t: usize, r: usize, k: usize, a: usize, m: usize) -> f64 {
        let d = self.dims();
        self.precision[(((t * d.r + r) * d.k + k) * d.a + a) * d.m + m]
    }

    pub fn recall_at(&self, t: usize, k: usize, a: usize, m: usize) -> f64 {
        let d = self.dims();
        self.recall[((t * d.k + k) * d.a + a) * d.m + m]
    }

    /// pycocotools' 12-line summary.
    pub fn summary(&self) -> String {
        summarize::summary_text(&self.stats, &self.params)
    }
}

/// Scores `dt` against `gt` with pycocotools' default bbox parameters.
pub fn evaluate(gt: &GroundTruth, dt: &Detections, opts: &Options) -> Evaluation {
    let params = Params::default();
    let ni = gt.images.len();
    let ncells = gt.num_cells();

    // Matching, in parallel over blocks of consecutive cells (each owns its detections).
    let mut flags: Vec<matching::Flags> = vec![[0; 4]; dt.boxes.len()];
    let target = (dt.boxes.len() / (rayon::current_num_threads() * 16)).max(2048);
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut first = 0;
    for c in 0..ncells {
        if (dt.cell_start[c + 1] - dt.cell_start[first]) as usize >= target {
            blocks.push((first, c + 1));
            first = c + 1;
        }
    }
    if first < ncells {
        blocks.push((first, ncells));
    }
    let mut slices: Vec<&mut [matching::Flags]> = Vec::with_capacity(blocks.len());
    let mut rest: &mut [matching::Flags] = &mut flags;
    for &(c0, c1) in &blocks {
        let n = (dt.cell_start[c1] - dt.cell_start[c0]) as usize;
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        slices.push(head);
        rest = tail;
    }
    blocks.into_par_iter().zip(slices).for_each_init(
        matching::Scratch::default,
        |scratch, ((c0, c1), out)| {
            let base = dt.cell_start[c0] as usize;
            for c in c0..c1 {
                let r = dt.cell(c);
                if r.is_empty() {
                    continue;
                }
                matching::match_cell(
                    gt,
                    dt,
                    c,
                    &params,
                    opts.fix_id0,
                    scratch,
                    &mut out[r.start - base..r.end - base],
                );
            }
        },
    );

    let npig = matching::regular_gt_counts(gt, &params);
    let curves = accumulate::accumulate(dt, &flags, &npig, ni, &params);
    let mut ev = Evaluation {
        params,
        categories: gt.categories.clone(),
        precision: curves.precision,
        recall: curves.recall,
        scores: curves.scores,
        stats: [-1.0; 12],
        per_category: Vec::new(),
        fix_id0: opts.fix_id0,
        numpy: opts.numpy,
    };
    let d = ev.dims();
    ev.stats = summarize::stats(&ev.precision, &ev.recall, d, &ev.params, opts.numpy);
    let md = ev.params.max_dets[2];
    ev.per_category = (0..d.k)
        .map(|k| {
            let ap = |iou, area| {
                summarize::summarize_one(
                    &ev.precision,
                    &ev.recall,
                    d,
                    &ev.params,
                    true,
                    iou,
                    area,
                    md,
                    Some(k),
                    opts.numpy,
                )
            };
            CategoryAp {
                id: ev.categories[k].id.clone(),
                name: ev.categories[k].name.clone(),
                ap: ap(None, "all"),
                ap50: ap(Some(0.5), "all"),
                ap_small: ap(None, "small"),
                ap_medium: ap(None, "medium"),
                ap_large: ap(None, "large"),
            }
        })
        .collect();
    ev
}

/// Why a ground-truth or results file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A syntax or content error at a byte offset (file not yet known).
    #[error(transparent)]
    Json(#[from] json::JsonError),
    /// A content error without a position (file not yet known).
    #[error("{0}")]
    Invalid(String),
    /// Either of the above, placed in its file.
    #[error("{}: {place}{msg}", path.display())]
    InFile {
        path: PathBuf,
        place: String,
        msg: String,
    },
}

impl LoadError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        LoadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Names the file (and the line and column) the error is in.
    fn in_file(self, path: &Path, bytes: &[u8]) -> Self {
        match self {
            LoadError::Json(e) => {
                let (line, col) = json::line_col(bytes, e.pos);
                LoadError::InFile {
                    path: path.to_path_buf(),
                    place: format!("line {line}, column {col}: "),
                    msg: e.msg,
                }
            }
            LoadError::Invalid(msg) => LoadError::InFile {
                path: path.to_path_buf(),
                place: String::new(),
                msg,
            },
            other => other,
        }
    }
}

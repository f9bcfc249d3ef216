//! The metrics document `odinw score --json` and every run's `metrics.json` share: the 12
//! stats, per-category AP as GLIP's `bbox.csv`, and — when the GT has an annotation id 0 — the
//! stats both with pycocotools' id-0 quirk and with it fixed, so reports can say whether it
//! changed the number.
use super::{evaluate, Detections, Evaluation, GroundTruth, Id, Options, STAT_NAMES};
use serde_json::{json, Map, Value};

/// An evaluation, and the same one with the id-0 rule flipped when the GT has an id 0.
pub struct Scored {
    pub main: Evaluation,
    pub other: Option<Evaluation>,
    pub fix_id0: bool,
}

/// Scores `dt` against `gt`; with an annotation id 0 in the GT, scores the other way too.
pub fn score(gt: &GroundTruth, dt: &Detections, fix_id0: bool) -> Scored {
    score_with(
        gt,
        dt,
        &Options {
            fix_id0,
            ..Options::default()
        },
    )
}

/// [`score`] with all of [`Options`].
pub fn score_with(gt: &GroundTruth, dt: &Detections, opts: &Options) -> Scored {
    let main = evaluate(gt, dt, opts);
    let other = gt.has_annotation_id0().then(|| {
        evaluate(
            gt,
            dt,
            &Options {
                fix_id0: !opts.fix_id0,
                ..opts.clone()
            },
        )
    });
    Scored {
        main,
        other,
        fix_id0: opts.fix_id0,
    }
}

impl Scored {
    /// `(stats with the quirk, stats fixed)` when the GT has an annotation id 0.
    pub fn id0_pair(&self) -> Option<(&Evaluation, &Evaluation)> {
        self.other.as_ref().map(|o| {
            if self.fix_id0 {
                (o, &self.main)
            } else {
                (&self.main, o)
            }
        })
    }

    /// `{"gt_has_annotation_id0", "differs", "stats_pycocotools", "stats_fixed"}`.
    pub fn id0_quirk_json(&self) -> Option<Value> {
        self.id0_pair().map(|(quirk, fixed)| {
            json!({
                "gt_has_annotation_id0": true,
                "differs": quirk.stats != fixed.stats,
                "stats_pycocotools": quirk.stats,
                "stats_fixed": fixed.stats,
            })
        })
    }

    /// The metrics document: stats, stat names, per-category AP, the id-0 comparison, counts
    /// and the GT loader's notes.
    pub fn metrics_json(&self, gt: &GroundTruth, dt: &Detections) -> Map<String, Value> {
        let mut report = Map::new();
        report.insert("fix_id0".into(), json!(self.fix_id0));
        report.insert("stat_names".into(), json!(STAT_NAMES));
        report.insert("stats".into(), json!(self.main.stats));
        report.insert("per_category".into(), per_category_json(&self.main));
        if let Some(v) = self.id0_quirk_json() {
            report.insert("id0_quirk".into(), v);
        }
        report.insert("num_detections".into(), json!(dt.num_input()));
        report.insert(
            "num_detections_unknown_category".into(),
            json!(dt.num_unknown_category()),
        );
        report.insert("notes".into(), json!(gt.notes()));
        report
    }
}

fn id_json(id: &Id) -> Value {
    match id {
        Id::Int(v) => json!(v),
        Id::Str(s) => json!(s.as_ref()),
    }
}

/// `{name: {"id", "AP", "AP50", "APs", "APm", "APl"}}`; a name shared by several categories
/// gets ` (id N)` appended so no entry is lost.
pub fn per_category_json(ev: &Evaluation) -> Value {
    let mut out = Map::new();
    for c in &ev.per_category {
        let shared = ev.per_category.iter().filter(|o| o.name == c.name).count() > 1;
        let key = if shared {
            format!("{} (id {})", c.name, c.id)
        } else {
            c.name.clone()
        };
        out.insert(
            key,
            json!({
                "id": id_json(&c.id),
                "AP": c.ap,
                "AP50": c.ap50,
                "APs": c.ap_small,
                "APm": c.ap_medium,
                "APl": c.ap_large,
            }),
        );
    }
    Value::Object(out)
}

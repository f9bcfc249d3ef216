//! What a metrics document is built from (the document itself is `run::Metrics`, written by
//! `odinw score --json` and as every run's `metrics.json`): the evaluation and, when the GT has
//! an annotation id 0, the same one with pycocotools' id-0 quirk flipped, so reports can say
//! whether it changed the number; and per-category AP as GLIP's `bbox.csv` has it.
use super::{evaluate, Detections, Evaluation, GroundTruth, Id, Options};
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

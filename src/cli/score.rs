//! `odinw score --gt GT.json --dt DT.json`: pycocotools' bbox AP for a results file, with its
//! 12-line summary, per-category AP (as GLIP's `bbox.csv`) and a JSON report.
use crate::eval::{self, Detections, Evaluation, GroundTruth, Id, Options, STAT_NAMES};
use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// COCO ground-truth file (images, annotations, categories).
    #[arg(long)]
    gt: PathBuf,
    /// Results file: a JSON list of {image_id, category_id, bbox: [x,y,w,h], score}.
    #[arg(long)]
    dt: PathBuf,
    /// Also write the numbers as JSON: {"stats": [12], "per_category": {...}, ...}.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print AP per category (AP, AP50, APs, APm, APl, as in GLIP's bbox.csv).
    #[arg(long)]
    per_category: bool,
    /// Let GT annotations with id 0 be matched (pycocotools never matches them; RoboFlow
    /// exports number annotations from 0). Without it the numbers are pycocotools'.
    #[arg(long)]
    fix_id0: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let gt = GroundTruth::read(&args.gt)?;
    let dt = Detections::read(&gt, &args.dt)?;
    for note in gt.notes() {
        eprintln!("note: {}: {note}", args.gt.display());
    }
    if dt.num_unknown_category() > 0 {
        eprintln!(
            "note: {}: {} of {} detections have a category the ground truth does not list; \
             pycocotools ignores them (so does odinw)",
            args.dt.display(),
            dt.num_unknown_category(),
            dt.num_input()
        );
    }
    let opts = Options {
        fix_id0: args.fix_id0,
    };
    let ev = eval::evaluate(&gt, &dt, &opts);
    // With an annotation id 0 in the GT, score the other way too, to say whether it matters.
    let other = gt.has_annotation_id0().then(|| {
        eval::evaluate(
            &gt,
            &dt,
            &Options {
                fix_id0: !args.fix_id0,
            },
        )
    });
    print!("{}", ev.summary());
    if args.per_category {
        print_per_category(&ev);
    }
    let id0 = other.as_ref().map(|o| {
        let (quirk, fixed) = if args.fix_id0 { (o, &ev) } else { (&ev, o) };
        let differs = quirk.stats != fixed.stats;
        if differs {
            eprintln!(
                "note: {}: a GT annotation has id 0, which pycocotools never matches; AP is \
                 {:.4} with that quirk (published ODinW numbers) and {:.4} with --fix-id0{}",
                args.gt.display(),
                quirk.stats[0],
                fixed.stats[0],
                if args.fix_id0 { " (shown)" } else { "" }
            );
        }
        json!({
            "gt_has_annotation_id0": true,
            "differs": differs,
            "stats_pycocotools": quirk.stats,
            "stats_fixed": fixed.stats,
        })
    });
    if let Some(path) = &args.json {
        let mut report = Map::new();
        report.insert("gt".into(), json!(args.gt.display().to_string()));
        report.insert("dt".into(), json!(args.dt.display().to_string()));
        report.insert("fix_id0".into(), json!(args.fix_id0));
        report.insert("stat_names".into(), json!(STAT_NAMES));
        report.insert("stats".into(), json!(ev.stats));
        report.insert("per_category".into(), per_category_json(&ev));
        if let Some(v) = id0 {
            report.insert("id0_quirk".into(), v);
        }
        report.insert("num_detections".into(), json!(dt.num_input()));
        report.insert(
            "num_detections_unknown_category".into(),
            json!(dt.num_unknown_category()),
        );
        report.insert("notes".into(), json!(gt.notes()));
        crate::util::fs::write_json_atomic(path, &Value::Object(report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn id_json(id: &Id) -> Value {
    match id {
        Id::Int(v) => json!(v),
        Id::Str(s) => json!(s.as_ref()),
    }
}

/// `{name: {"id", "AP", "AP50", "APs", "APm", "APl"}}`; a name shared by several categories
/// gets ` (id N)` appended so no entry is lost.
fn per_category_json(ev: &Evaluation) -> Value {
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

fn print_per_category(ev: &Evaluation) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["category", "id", "AP", "AP50", "APs", "APm", "APl"]);
    let f = |v: f64| format!("{v:.3}");
    for c in &ev.per_category {
        table.add_row([
            c.name.clone(),
            c.id.to_string(),
            f(c.ap),
            f(c.ap50),
            f(c.ap_small),
            f(c.ap_medium),
            f(c.ap_large),
        ]);
    }
    println!("{table}");
}

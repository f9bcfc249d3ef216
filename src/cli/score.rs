//! `odinw score --gt GT.json --dt DT.json`: pycocotools' bbox AP for a results file, with its
//! 12-line summary, per-category AP (as GLIP's `bbox.csv`) and a JSON report.
use crate::eval::{self, Detections, Evaluation, GroundTruth};
use crate::run::Metrics;
use anyhow::{bail, Result};
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
    /// The numpy whose `np.mean` pycocotools' summary is reproduced with, to the last bit: 2.3
    /// (numpy 2.3 and later) or 2.2 (numpy 2.2 and earlier, as GLIP's published numbers). They
    /// differ in the last bits when a mean covers more than 8192 values.
    #[arg(long, value_enum, default_value = "2.3")]
    numpy: eval::NumpySum,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(path) = &args.json {
        // Like a shell redirection, the report goes into an existing folder; a mistyped path
        // is an error, not a new folder tree.
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent.filter(|d| !d.is_dir()) {
            bail!(
                "cannot write {}: the folder {} does not exist",
                path.display(),
                dir.display()
            );
        }
    }
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
    let opts = eval::Options {
        fix_id0: args.fix_id0,
        numpy: args.numpy,
    };
    let scored = eval::report::score_with(&gt, &dt, &opts);
    let ev = &scored.main;
    print!("{}", ev.summary());
    if args.per_category {
        print_per_category(ev);
    }
    if let Some((quirk, fixed)) = scored.id0_pair() {
        if quirk.stats != fixed.stats {
            eprintln!(
                "note: {}: a GT annotation has id 0, which pycocotools never matches; AP is \
                 {:.4} with that quirk (published ODinW numbers) and {:.4} with --fix-id0{}",
                args.gt.display(),
                quirk.stats[0],
                fixed.stats[0],
                if args.fix_id0 { " (shown)" } else { "" }
            );
        }
    }
    if let Some(path) = &args.json {
        let mut report = Map::new();
        report.insert("gt".into(), json!(args.gt.display().to_string()));
        report.insert("dt".into(), json!(args.dt.display().to_string()));
        report.insert("numpy".into(), json!(args.numpy.label()));
        if let Value::Object(metrics) = serde_json::to_value(Metrics::of(&scored, &gt, &dt))? {
            report.extend(metrics);
        }
        crate::util::fs::write_json_atomic(path, &Value::Object(report))?;
    }
    Ok(ExitCode::SUCCESS)
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

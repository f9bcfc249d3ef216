//! Reports of runs (aggregated by [`crate::run::aggregate`]): output formats ([`formats`]), comparison of two
//! runs ([`compare`]), the AP chart ([`chart`], text in [`font`]) and the HTML page ([`html`])
//! with its image gallery ([`gallery`], images chosen by [`errors`]). [`write_files`] and
//! [`write_html`] write them beside the run (`RUN/report/`).
pub mod chart;
pub mod compare;
pub mod errors;
pub mod font;
pub mod formats;
pub mod gallery;
pub mod html;

use crate::run::aggregate::Aggregate;
use crate::run::RunResults;
use anyhow::Result;
use formats::Format;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The lines printed under a run's table: suite mean and median, evaluated / expected, what is
/// missing or failed, and the ODinW-13 subset of an ODinW-35 run that lists all 13 tasks.
pub fn summary_notes(agg: &Aggregate) -> Vec<String> {
    let s = &agg.stats;
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.1}", v * 100.0));
    let mut head = format!("{} {} on {}", agg.suite, agg.track.name(), agg.split);
    if let Some(k) = agg.shots {
        head.push_str(&format!(", {k}-shot"));
    }
    if agg.has_seeds() {
        let seeds: Vec<String> = agg.seeds.iter().map(|s| s.to_string()).collect();
        head.push_str(&format!(", seeds {}", seeds.join("/")));
    }
    let mut mean = format!("mean AP {}", pct(s.mean_ap()));
    if let Some(sd) = s.mean_ap_std_over_seeds {
        mean.push_str(&format!(" ± {:.1} (sample std over seeds)", sd * 100.0));
    }
    let mut notes = vec![format!(
        "{head}: {mean}, median AP {}, over {}/{} evaluated tasks",
        pct(s.median_ap()),
        s.evaluated,
        s.expected
    )];
    if !s.missing.is_empty() {
        notes.push(format!("missing: {}", s.missing.join(", ")));
    }
    for f in &s.failed {
        notes.push(format!(
            "failed: {}: {}",
            crate::run::unit_key(&f.task, f.seed),
            f.error.lines().next().unwrap_or_default()
        ));
    }
    if let Some(o) = agg.odinw13.as_ref().filter(|o| o.in_run == o.expected) {
        let mut line = format!(
            "ODinW-13 subset: mean AP {}, median AP {}, over {}/{} tasks",
            pct(o.mean_ap),
            pct(o.median_ap),
            o.evaluated,
            o.expected
        );
        if !o.prompts_differ.is_empty() {
            line.push_str(&format!(
                "; prompts differ from configs/odinw_13 for {} (mean over the agreeing tasks: {})",
                o.prompts_differ.join(", "),
                pct(o.mean_ap_prompts_agree)
            ));
        }
        notes.push(line);
    }
    notes
}

/// Writes the report of `agg` into `dir`: `tasks.{txt,csv,json,parquet,md,tex}` and
/// `chart.{svg,png}`. Returns the paths written.
pub fn write_files(agg: &Aggregate, dir: &Path) -> Result<Vec<PathBuf>> {
    let df = formats::report_frame(agg)?;
    let notes = summary_notes(agg);
    let mut written = Vec::new();
    for f in Format::ALL {
        let path = dir.join(format!("tasks.{}", f.extension()));
        formats::write_file(&df, f, &notes, &path)?;
        written.push(path);
    }
    let chart = chart::Chart::of(agg)?;
    let svg = dir.join("chart.svg");
    crate::util::fs::write_atomic(&svg, chart.svg().as_bytes())?;
    let png = dir.join("chart.png");
    crate::util::fs::write_atomic(&png, &chart.png()?)?;
    written.extend([svg, png]);
    Ok(written)
}

/// Writes a closed run's report files into `RUN/report/`: [`write_files`] and [`write_html`].
pub struct ReportFiles;

impl crate::run::RunFiles for ReportFiles {
    fn write(&self, results: &RunResults, aggregate: &Aggregate) -> Result<()> {
        let dir = results.dir.join("report");
        write_files(aggregate, &dir)?;
        write_html((results, aggregate), None, &dir)?;
        Ok(())
    }
}

/// What the HTML page shows of a run: its table, notes, chart, manifest and gallery data.
pub fn run_page(run: &RunResults, agg: &Aggregate) -> Result<html::RunPage> {
    let path = run.dir.join("manifest.json");
    let manifest: std::result::Result<serde_json::Value, String> = std::fs::read(&path)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(serde_json::from_slice(&b)?))
        .map_err(|e| format!("{}: {e}", path.display()));
    let tasks = run
        .manifest
        .tasks
        .par_iter()
        .map(|t| {
            let data = gallery::task_data(run, t).map_err(|e| format!("{e:#}"));
            (t.clone(), data)
        })
        .collect();
    Ok(html::RunPage {
        name: agg.run_name.clone(),
        frame: formats::report_frame(agg)?,
        notes: summary_notes(agg),
        chart_svg: chart::Chart::of(agg)?.svg(),
        manifest,
        tasks,
    })
}

/// Writes `index.html` into `dir`: the page of `run`, or with `other` the two runs side by side
/// with their comparison. Returns its path.
pub fn write_html(
    run: (&RunResults, &Aggregate),
    other: Option<(&RunResults, &Aggregate)>,
    dir: &Path,
) -> Result<PathBuf> {
    let a = run_page(run.0, run.1)?;
    let page = match other {
        None => html::page(&a, None)?,
        Some((rb, b)) => {
            let pb = run_page(rb, b)?;
            let c = html::Comparison {
                other: &pb,
                frame: compare::compare_frame(run.1, b)?,
                notes: compare::compare_notes(run.1, b),
            };
            html::page(&a, Some(&c))?
        }
    };
    let path = dir.join("index.html");
    crate::util::fs::write_atomic(&path, page.as_bytes())?;
    Ok(path)
}

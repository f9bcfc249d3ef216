//! Side-by-side comparison of two runs: per task AP and AP50 of each with the deltas (B − A),
//! then mean and median over the tasks evaluated in both, so the deltas compare like with like.
use crate::run::aggregate::Aggregate;
use anyhow::Result;
use polars::prelude::*;

/// Column labels for the two runs: their names, or `A`/`B` when the names are equal.
fn labels(a: &Aggregate, b: &Aggregate) -> (String, String) {
    if a.run_name == b.run_name {
        ("A".into(), "B".into())
    } else {
        (a.run_name.clone(), b.run_name.clone())
    }
}

/// A task and, when evaluated, its AP and AP50 × 100.
type TaskValues = (String, Option<(f64, Option<f64>)>);

/// Per-task AP and AP50 of the evaluated tasks, × 100.
fn values(agg: &Aggregate) -> PolarsResult<Vec<TaskValues>> {
    let t = &agg.tasks;
    let names = t.column("task")?.str()?;
    let status = t.column("status")?.str()?;
    let ap = t.column("AP")?.f64()?;
    let ap50 = t.column("AP50")?.f64()?;
    Ok((0..t.height())
        .map(|i| {
            let name = names.get(i).unwrap_or_default().to_string();
            let v = (status.get(i) == Some("ok"))
                .then(|| {
                    ap.get(i)
                        .map(|a| (a * 100.0, ap50.get(i).map(|x| x * 100.0)))
                })
                .flatten();
            (name, v)
        })
        .collect())
}

/// The comparison table: `task`, `AP [A]`, `AP [B]`, `ΔAP`, `AP50 [A]`, `AP50 [B]`, `ΔAP50`,
/// with tasks of A in order, then tasks only B has; `mean` and `median` rows over the tasks
/// evaluated in both (`common` column counts them).
pub fn compare_frame(a: &Aggregate, b: &Aggregate) -> Result<DataFrame> {
    anyhow::Context::context(build(a, b), "building the comparison table")
}

fn build(a: &Aggregate, b: &Aggregate) -> PolarsResult<DataFrame> {
    let (la, lb) = labels(a, b);
    let va = values(a)?;
    let vb = values(b)?;
    let mut tasks: Vec<String> = va.iter().map(|(t, _)| t.clone()).collect();
    for (t, _) in &vb {
        if !tasks.contains(t) {
            tasks.push(t.clone());
        }
    }
    let get = |v: &[TaskValues], t: &str| v.iter().find(|(n, _)| n == t).and_then(|(_, x)| *x);
    let mut cols: [Vec<Option<f64>>; 6] = Default::default();
    let mut common = Vec::new();
    for t in &tasks {
        let (x, y) = (get(&va, t), get(&vb, t));
        cols[0].push(x.map(|v| v.0));
        cols[1].push(y.map(|v| v.0));
        cols[2].push(x.zip(y).map(|(x, y)| y.0 - x.0));
        cols[3].push(x.and_then(|v| v.1));
        cols[4].push(y.and_then(|v| v.1));
        cols[5].push(x.zip(y).and_then(|(x, y)| Some(y.1? - x.1?)));
        common.push(x.is_some() && y.is_some());
    }
    let both = BooleanChunked::new("both".into(), &common);
    let n_common = common.iter().filter(|c| **c).count();
    let mut columns = Vec::new();
    let names = [
        format!("AP [{la}]"),
        format!("AP [{lb}]"),
        "ΔAP".to_string(),
        format!("AP50 [{la}]"),
        format!("AP50 [{lb}]"),
        "ΔAP50".to_string(),
    ];
    for (name, mut v) in names.iter().zip(cols) {
        let s = Series::new(name.as_str().into(), &v).filter(&both)?;
        v.extend([s.mean(), s.median()]);
        columns.push(Column::new(name.as_str().into(), v));
    }
    let mut task_col = tasks.clone();
    task_col.extend(["mean".into(), "median".into()]);
    let status: Vec<String> = common
        .iter()
        .map(|c| if *c { "both" } else { "one run only" }.to_string())
        .chain(std::iter::repeat_n(
            format!("{n_common}/{} tasks in both", tasks.len()),
            2,
        ))
        .collect();
    let h = task_col.len();
    columns.insert(0, Column::new("status".into(), status));
    columns.insert(0, Column::new("task".into(), task_col));
    DataFrame::new(h, columns)
}

/// Lines that warn when the two runs are not comparable as they stand.
pub fn compare_notes(a: &Aggregate, b: &Aggregate) -> Vec<String> {
    let (la, lb) = labels(a, b);
    let mut notes = vec![format!(
        "Δ = {lb} − {la}, AP × 100; mean and median over the tasks evaluated in both runs"
    )];
    let pairs = [
        (
            "track",
            a.track.name().to_string(),
            b.track.name().to_string(),
        ),
        ("suite", a.suite.clone(), b.suite.clone()),
        ("split", a.split.clone(), b.split.clone()),
        ("shots", shots(a.shots), shots(b.shots)),
        ("seeds", seeds(&a.seeds), seeds(&b.seeds)),
    ];
    for (what, x, y) in pairs {
        if x != y {
            notes.push(format!(
                "warning: the runs differ in {what}: {x} ({la}) vs {y} ({lb})"
            ));
        }
    }
    notes
}

fn shots(k: Option<u32>) -> String {
    k.map_or("none".into(), |k| format!("{k}-shot"))
}

fn seeds(s: &[u64]) -> String {
    if s.is_empty() {
        return "none".into();
    }
    s.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("/")
}

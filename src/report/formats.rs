//! The report table in each output format: the terminal (comfy-table), CSV, JSON and Parquet
//! (polars writers) and Markdown and LaTeX (rendered here). Values are AP × 100; text formats
//! round to one decimal, the data formats keep full precision.
use crate::run::aggregate::{Aggregate, COLUMNS};
use crate::util::fs::write_atomic;
use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use polars::prelude::*;
use std::path::Path;

/// The output formats of `odinw report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
    Markdown,
    Latex,
}

impl Format {
    /// File extension of the format's file beside the run.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
            Format::Markdown => "md",
            Format::Latex => "tex",
        }
    }

    pub const ALL: [Format; 6] = [
        Format::Table,
        Format::Csv,
        Format::Json,
        Format::Parquet,
        Format::Markdown,
        Format::Latex,
    ];
}

/// The per-task report of one run: `task`, `status`, (`seeds`), the [`COLUMNS`] × 100,
/// (`AP_std` × 100), then a `mean` and a `median` row over the evaluated tasks.
pub fn report_frame(agg: &Aggregate) -> Result<DataFrame> {
    anyhow::Context::context(build_report_frame(agg), "building the report table")
}

fn build_report_frame(agg: &Aggregate) -> PolarsResult<DataFrame> {
    let t = &agg.tasks;
    let s = &agg.stats;
    let evaluated = format!("{}/{} tasks", s.evaluated, s.expected);
    let mut task: Vec<String> = t
        .column("task")?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect();
    task.extend(["mean".to_string(), "median".to_string()]);
    let mut status: Vec<String> = t
        .column("status")?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect();
    status.extend([evaluated.clone(), evaluated]);
    let h = task.len();
    let mut columns = vec![
        Column::new("task".into(), task),
        Column::new("status".into(), status),
    ];
    if agg.has_seeds() {
        let done = t.column("seeds_done")?.u32()?;
        let expected = t.column("seeds_expected")?.u32()?;
        let mut seeds: Vec<Option<String>> = done
            .iter()
            .zip(expected.iter())
            .map(|(d, e)| Some(format!("{}/{}", d.unwrap_or(0), e.unwrap_or(0))))
            .collect();
        seeds.extend([None, None]);
        columns.push(Column::new("seeds".into(), seeds));
    }
    for (i, (name, _)) in COLUMNS.iter().enumerate() {
        let mut v = percent(t.column(name)?)?;
        v.extend([s.mean[i].map(pct), s.median[i].map(pct)]);
        columns.push(Column::new((*name).into(), v));
        if i == 0 && agg.has_seeds() {
            let mut std = percent(t.column("AP_std")?)?;
            std.extend([s.mean_ap_std_over_seeds.map(pct), None]);
            columns.push(Column::new("AP_std".into(), std));
        }
    }
    DataFrame::new(h, columns)
}

fn pct(v: f64) -> f64 {
    v * 100.0
}

fn percent(c: &Column) -> PolarsResult<Vec<Option<f64>>> {
    Ok(c.f64()?.iter().map(|v| v.map(pct)).collect())
}

/// The table in `format` as bytes. `notes` are the summary lines that text formats print
/// under the table (CSV, JSON and Parquet hold the table only).
pub fn render(df: &DataFrame, format: Format, notes: &[String]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::Csv => {
            CsvWriter::new(&mut out).finish(&mut df.clone())?;
        }
        Format::Json => {
            JsonWriter::new(&mut out)
                .with_json_format(JsonFormat::Json)
                .finish(&mut df.clone())?;
            out.push(b'\n');
        }
        Format::Parquet => {
            ParquetWriter::new(&mut out).finish(&mut df.clone())?;
        }
        Format::Table | Format::Markdown | Format::Latex => {
            out = render_text(df, format, notes)?.into_bytes();
        }
    }
    Ok(out)
}

/// Writes `df` to `path` in `format`, atomically.
pub fn write_file(df: &DataFrame, format: Format, notes: &[String], path: &Path) -> Result<()> {
    let bytes =
        render(df, format, notes).with_context(|| format!("rendering {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// The table as text in `format` (table, markdown or latex; others are written as files).
pub fn render_text(df: &DataFrame, format: Format, notes: &[String]) -> Result<String> {
    let header: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let rows = cells(df)?;
    Ok(match format {
        Format::Markdown => markdown(&header, &rows, notes),
        Format::Latex => latex(&header, &rows, notes),
        _ => terminal(df, &header, &rows, notes),
    })
}

/// Every cell as text: floats with one decimal (deltas signed), nulls as `–`.
pub(crate) fn cells(df: &DataFrame) -> PolarsResult<Vec<Vec<String>>> {
    let mut rows = vec![Vec::with_capacity(df.width()); df.height()];
    for c in df.columns() {
        let signed = c.name().starts_with('Δ');
        for (i, row) in rows.iter_mut().enumerate() {
            row.push(match c.get(i)? {
                AnyValue::Null => "–".to_string(),
                AnyValue::Float64(v) if signed => format!("{v:+.1}"),
                AnyValue::Float64(v) => format!("{v:.1}"),
                AnyValue::String(s) => s.to_string(),
                AnyValue::StringOwned(s) => s.to_string(),
                other => other.to_string(),
            });
        }
    }
    Ok(rows)
}

fn is_numeric(df: &DataFrame, col: usize) -> bool {
    df.columns()[col].dtype().is_primitive_numeric()
}

fn terminal(df: &DataFrame, header: &[String], rows: &[Vec<String>], notes: &[String]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(header);
    for row in rows {
        table.add_row(row);
    }
    for i in 0..header.len() {
        if is_numeric(df, i) {
            if let Some(col) = table.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    let mut out = table.to_string();
    out.push('\n');
    for n in notes {
        out.push_str(n);
        out.push('\n');
    }
    out
}

fn markdown(header: &[String], rows: &[Vec<String>], notes: &[String]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let line = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        )
    };
    let mut out = line(header);
    let align: Vec<String> = header
        .iter()
        .map(|h| {
            if h == "task" || h == "status" {
                "---".into()
            } else {
                "---:".into()
            }
        })
        .collect();
    out.push_str(&format!("| {} |\n", align.join(" | ")));
    for r in rows {
        out.push_str(&line(r));
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&format!("{}\n", esc(n)));
        }
    }
    out
}

/// Escapes LaTeX's special characters.
pub fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '–' => out.push_str("--"),
            'Δ' => out.push_str("$\\Delta$"),
            '±' => out.push_str("$\\pm$"),
            _ => out.push(ch),
        }
    }
    out
}

fn latex(header: &[String], rows: &[Vec<String>], notes: &[String]) -> String {
    let spec: String = header
        .iter()
        .map(|h| {
            if h == "task" || h == "status" {
                'l'
            } else {
                'r'
            }
        })
        .collect();
    let row = |cells: &[String]| {
        format!(
            "{} \\\\\n",
            cells
                .iter()
                .map(|c| latex_escape(c))
                .collect::<Vec<_>>()
                .join(" & ")
        )
    };
    let mut out = String::from("% generated by odinw report; needs \\usepackage{booktabs}\n");
    out.push_str("\\begin{table}[t]\n\\centering\n\\small\n");
    out.push_str(&format!("\\begin{{tabular}}{{{spec}}}\n\\toprule\n"));
    out.push_str(&row(header));
    out.push_str("\\midrule\n");
    let summary_start = rows
        .iter()
        .position(|r| r[0] == "mean")
        .unwrap_or(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if i == summary_start && i > 0 {
            out.push_str("\\midrule\n");
        }
        out.push_str(&row(r));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    if !notes.is_empty() {
        let text: Vec<String> = notes.iter().map(|n| latex_escape(n)).collect();
        out.push_str(&format!("\\caption{{{}}}\n", text.join("; ")));
    }
    out.push_str("\\end{table}\n");
    out
}

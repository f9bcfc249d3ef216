//! `RUN/report/index.html`: one self-contained page (inline CSS and JavaScript, images as
//! `data:` URIs, nothing fetched) with the per-task table (sortable by clicking a header, or by
//! `#sort=COLUMN` / `#sort=-COLUMN` in the address), the chart, a comparison with a second run
//! side by side, a gallery of test images per task with boxes drawn (see [`super::gallery`]) and
//! the run's provenance: its `manifest.json`, every field shown as it is.
use super::formats;
use super::gallery::{self, Shot, TaskData};
use polars::prelude::{AnyValue, DataFrame};
use serde_json::Value;
use std::fmt::Write;

/// What the page shows of one run.
pub struct RunPage {
    pub name: String,
    pub frame: DataFrame,
    pub notes: Vec<String>,
    pub chart_svg: String,
    /// `RUN/manifest.json` as read, or why it could not be read.
    pub manifest: Result<Value, String>,
    /// Per task of the manifest: its gallery data, or why there is none.
    pub tasks: Vec<(String, Result<TaskData, String>)>,
}

/// The comparison of two runs: its table and notes.
pub struct Comparison<'a> {
    pub other: &'a RunPage,
    pub frame: DataFrame,
    pub notes: Vec<String>,
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn page(run: &RunPage, cmp: Option<&Comparison>) -> anyhow::Result<String> {
    let mut h = String::new();
    let title = match cmp {
        Some(c) => format!("odinw report: {} vs {}", run.name, c.other.name),
        None => format!("odinw report: {}", run.name),
    };
    write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    )?;
    h.push_str("<nav><a href=\"#results\">Results</a>");
    if cmp.is_some() {
        h.push_str(" · <a href=\"#compare\">Comparison</a>");
    }
    h.push_str(
        " · <a href=\"#chart\">Chart</a> · <a href=\"#gallery\">Gallery</a> · \
         <a href=\"#provenance\">Provenance</a></nav>\n",
    );

    h.push_str("<section id=\"results\">\n");
    for (r, id) in std::iter::once(run)
        .chain(cmp.map(|c| c.other))
        .zip(["tasks", "tasks-2"])
    {
        writeln!(h, "<h2>Per-task results: {}</h2>", esc(&r.name))?;
        notes(&mut h, &r.notes);
        table(&mut h, &r.frame, id)?;
    }
    h.push_str("</section>\n");

    if let Some(c) = cmp {
        write!(
            h,
            "<section id=\"compare\">\n<h2>{} vs {}</h2>\n",
            esc(&run.name),
            esc(&c.other.name)
        )?;
        notes(&mut h, &c.notes);
        table(&mut h, &c.frame, "compare")?;
        h.push_str("</section>\n");
    }

    h.push_str("<section id=\"chart\">\n<h2>Chart</h2>\n<div class=\"side\">\n");
    for r in std::iter::once(run).chain(cmp.map(|c| c.other)) {
        writeln!(h, "<div class=\"chart\">{}</div>", r.chart_svg)?;
    }
    h.push_str("</div>\n</section>\n");

    gallery_section(&mut h, run, cmp.map(|c| c.other))?;

    h.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n<div class=\"side\">\n");
    for r in std::iter::once(run).chain(cmp.map(|c| c.other)) {
        write!(
            h,
            "<div class=\"manifest\">\n<h3>{}/manifest.json</h3>\n",
            esc(&r.name)
        )?;
        match &r.manifest {
            Ok(v) => h.push_str(&value_html(v)),
            Err(e) => write!(h, "<p class=\"error\">{}</p>", esc(e))?,
        }
        h.push_str("</div>\n");
    }
    h.push_str("</div>\n</section>\n");
    write!(
        h,
        "<footer>Written by odinw {}.</footer>\n<script>{JS}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    )?;
    Ok(h)
}

fn notes(h: &mut String, notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    h.push_str("<ul class=\"notes\">\n");
    for n in notes {
        h.push_str(&format!("<li>{}</li>\n", esc(n)));
    }
    h.push_str("</ul>\n");
}

/// The table with its cells as the text formats print them; each cell's `data-v` holds the
/// value to sort by. The trailing `mean` and `median` rows go into `<tfoot>`, out of the sort.
fn table(h: &mut String, df: &DataFrame, id: &str) -> anyhow::Result<()> {
    let rows = formats::cells(df)?;
    let cols = df.columns();
    write!(h, "<table class=\"sortable\" id=\"{id}\">\n<thead><tr>")?;
    for c in cols {
        let num = c.dtype().is_primitive_numeric();
        write!(
            h,
            "<th{} title=\"sort\">{}</th>",
            if num { " class=\"num\"" } else { "" },
            esc(c.name())
        )?;
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let summary_from = rows
        .iter()
        .position(|r| r.first().is_some_and(|t| t == "mean"))
        .unwrap_or(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if i == summary_from {
            h.push_str("</tbody>\n<tfoot>\n");
        }
        let status = df
            .column("status")
            .ok()
            .and_then(|c| c.get(i).ok())
            .map(|v| match v {
                AnyValue::String(s) => s.to_string(),
                AnyValue::StringOwned(s) => s.to_string(),
                _ => String::new(),
            })
            .unwrap_or_default();
        let class = match status.as_str() {
            "ok" | "both" => "",
            _ if i >= summary_from => " class=\"summary\"",
            _ => " class=\"problem\"",
        };
        write!(h, "<tr{class}>")?;
        for (j, text) in row.iter().enumerate() {
            let c = &cols[j];
            let (v, num) = match c.get(i)? {
                AnyValue::Float64(v) => (format!("{v}"), true),
                AnyValue::Null => (String::new(), c.dtype().is_primitive_numeric()),
                _ => (text.clone(), false),
            };
            write!(
                h,
                "<td{} data-v=\"{}\">{}</td>",
                if num { " class=\"num\"" } else { "" },
                esc(&v),
                esc(text)
            )?;
        }
        h.push_str("</tr>\n");
    }
    h.push_str(if summary_from < rows.len() {
        "</tfoot>\n</table>\n"
    } else {
        "</tbody>\n</table>\n"
    });
    Ok(())
}

fn gallery_section(h: &mut String, run: &RunPage, other: Option<&RunPage>) -> anyhow::Result<()> {
    h.push_str("<section id=\"gallery\">\n<h2>Gallery</h2>\n");
    writeln!(
        h,
        "<p class=\"legend\">Per task, the {} test images with the most errors (missed ground truth + \
         false positives) and one that goes well. Predictions are drawn from the task's score \
         threshold with the best F1 at IoU {}: \
         <span class=\"k\" style=\"border-color:#1f6fd0\">blue</span> found an object, \
         <span class=\"k\" style=\"border-color:#e01b24\">red</span> false positive (label: class, \
         score); ground truth dashed: <span class=\"k dash\" style=\"border-color:#1e9e4a\">green</span> \
         found, <span class=\"k dash\" style=\"border-color:#ff8c00\">orange</span> missed.</p>",
        gallery::PER_TASK - 1,
        super::errors::MATCH_IOU
    )?;
    for (task, data) in &run.tasks {
        write!(
            h,
            "<div class=\"task\" data-task=\"{}\">\n<h3>{}</h3>\n",
            esc(task),
            esc(task)
        )?;
        let a = match data {
            Ok(a) => a,
            Err(e) => {
                write!(h, "<p class=\"error\">No gallery: {}</p>\n</div>\n", esc(e))?;
                continue;
            }
        };
        // The second run's images beside the first's when both scored the same file.
        let b = other.and_then(|o| {
            o.tasks
                .iter()
                .find(|(t, _)| t == task)
                .and_then(|(_, d)| d.as_ref().ok())
        });
        let pair = b.filter(|b| same_file(a, b));
        let mut runs = vec![a];
        let mut names = vec![run.name.as_str()];
        if let (Some(b), Some(o)) = (pair, other) {
            runs.push(b);
            names.push(o.name.as_str());
        }
        for (r, name) in runs.iter().zip(&names) {
            writeln!(
                h,
                "<p class=\"meta\">{}: {} · threshold {:.3} · {}</p>",
                esc(name),
                esc(&r.unit),
                r.threshold,
                esc(&r.ann_file.display().to_string())
            )?;
        }
        if other.is_some() && pair.is_none() {
            h.push_str(
                "<p class=\"meta\">The second run has no evaluated predictions on the same \
                 annotation file for this task: its images are not shown.</p>\n",
            );
        }
        h.push_str("<div class=\"shots\">\n");
        for row in gallery::shots(&runs) {
            match row {
                Ok(shots) => {
                    h.push_str(if runs.len() > 1 {
                        "<div class=\"row pair\">"
                    } else {
                        "<div class=\"row\">"
                    });
                    for (s, name) in shots.iter().zip(&names) {
                        figure(h, s, if runs.len() > 1 { Some(name) } else { None })?;
                    }
                    h.push_str("</div>\n");
                }
                Err(e) => writeln!(h, "<p class=\"error\">{}</p>", esc(&format!("{e:#}")))?,
            }
        }
        h.push_str("</div>\n</div>\n");
    }
    h.push_str("</section>\n");
    Ok(())
}

fn same_file(a: &TaskData, b: &TaskData) -> bool {
    let ids = |d: &TaskData| d.coco.images.iter().map(|i| i.id).collect::<Vec<_>>();
    a.ann_file == b.ann_file || ids(a) == ids(b)
}

fn figure(h: &mut String, s: &Shot, run: Option<&&str>) -> anyhow::Result<()> {
    let pick = match s.pick {
        super::errors::Pick::MostErrors => "errors",
        super::errors::Pick::Good => "good",
    };
    let who = run.map(|r| format!("{}: ", esc(r))).unwrap_or_default();
    write!(
        h,
        "<figure data-image-id=\"{}\" data-pick=\"{pick}\" style=\"width:{}px\"><img src=\"{}\" width=\"{}\" height=\"{}\" \
         alt=\"{}\"><figcaption>{who}{} · {} GT, {} missed, {} false positive{}</figcaption></figure>",
        s.image_id,
        s.width,
        s.data_uri,
        s.width,
        s.height,
        esc(&s.file_name),
        esc(&s.file_name),
        s.gt,
        s.misses,
        s.false_positives,
        if s.false_positives == 1 { "" } else { "s" }
    )?;
    Ok(())
}

/// A JSON value as nested key/value tables, arrays of scalars on one line.
pub fn value_html(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "<span class=\"empty\">{}</span>".into(),
        Value::Object(m) => {
            let mut out = String::from("<table class=\"kv\">");
            for (k, v) in m {
                out.push_str(&format!(
                    "<tr><th>{}</th><td>{}</td></tr>",
                    esc(k),
                    value_html(v)
                ));
            }
            out.push_str("</table>");
            out
        }
        Value::Array(a) if a.is_empty() => "<span class=\"empty\">[]</span>".into(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => a
            .iter()
            .map(|x| format!("<code>{}</code>", esc(&scalar(x))))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(a) => {
            let mut out = String::from("<ol class=\"items\">");
            for x in a {
                out.push_str(&format!("<li>{}</li>", value_html(x)));
            }
            out.push_str("</ol>");
            out
        }
        other => format!("<code>{}</code>", esc(&scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const CSS: &str = r#"
body{font-family:"DejaVu Sans",Verdana,system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}h3{font-size:1.05em;margin:1.2em 0 .3em}
nav a{color:#1f5fa8}
table.sortable{border-collapse:collapse;font-size:.9em;margin:.5em 0}
table.sortable th,table.sortable td{border:1px solid #ddd;padding:.25em .6em}
table.sortable th{background:#f3f5f8;cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th[data-dir=asc]::after{content:" ▲"}table.sortable th[data-dir=desc]::after{content:" ▼"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.problem td{color:#a33}tfoot td{font-weight:bold;background:#fafafa}
ul.notes{color:#555;font-size:.9em;padding-left:1.2em}
.side{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.chart svg{max-width:100%;height:auto}
.legend,.meta{font-size:.85em;color:#555;margin:.2em 0}
.k{border:2px solid;padding:0 .3em}.k.dash{border-style:dashed}
.shots{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start;margin:.6em 0}
.shots .row{display:flex;gap:.4em}.shots .row.pair{border:1px solid #e4e4e4;padding:.3em}
figure{margin:0;max-width:100%}
figure img{display:block;max-width:100%;height:auto;border:1px solid #ccc}
figcaption{font-size:.78em;color:#444;overflow-wrap:anywhere}
figure[data-pick=good] img{border-color:#1e9e4a}
.error{color:#a33}
table.kv{border-collapse:collapse;font-size:.85em}table.kv th{text-align:left;vertical-align:top;padding:.15em .6em .15em 0;color:#555;font-weight:normal;white-space:nowrap}
table.kv td{padding:.15em 0;overflow-wrap:anywhere}ol.items{margin:0;padding-left:1.4em}
code{font-size:.95em}.empty{color:#999}
.manifest{flex:1 1 500px;min-width:0}
footer{margin-top:2em;color:#888;font-size:.8em}
"#;

const JS: &str = r#"
(function(){
  function key(td){var v=td.getAttribute('data-v');if(v===null||v==='')return null;var n=Number(v);return isNaN(n)?v.toLowerCase():n;}
  function sortBy(table,i,dir){
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
      if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
      var c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
      return dir==='asc'?c:-c;});
    rows.forEach(function(r){body.appendChild(r);});
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,j){
      if(j===i)th.setAttribute('data-dir',dir);else th.removeAttribute('data-dir');});
  }
  var tables=document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables,function(t){
    Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
      th.addEventListener('click',function(){
        var d=th.getAttribute('data-dir')==='desc'?'asc':(th.getAttribute('data-dir')==='asc'?'desc':(th.classList.contains('num')?'desc':'asc'));
        sortBy(t,i,d);});});});
  var m=/^#sort=(-?)(.+)$/.exec(location.hash);
  if(m){var name=decodeURIComponent(m[2]);
    Array.prototype.forEach.call(tables,function(t){
      Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
        if(th.textContent===name)sortBy(t,i,m[1]==='-'?'desc':'asc');});});}
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn any_manifest_renders_as_key_values() {
        let v: Value = serde_json::json!({
            "command": ["odinw", "eval", "--tasks", "<BCCD>"],
            "git": {"commit": "abc", "dirty": false},
            "models": [{"path": "m.onnx", "sha256": "00"}],
            "empty": {},
        });
        let h = value_html(&v);
        assert!(h.contains("<th>command</th><td><code>odinw</code> <code>eval</code>"));
        assert!(h.contains("<code>&lt;BCCD&gt;</code>"));
        assert!(h.contains("<th>dirty</th><td><code>false</code></td>"));
        assert!(h.contains("<ol class=\"items\"><li><table class=\"kv\"><tr><th>path</th>"));
        assert!(h.contains("<th>empty</th><td><span class=\"empty\">{}</span>"));
    }
}

//! `odinw report`'s HTML page (`RUN/report/index.html`): on runs with planted errors (the demo
//! suite's test images, predictions equal to the ground truth except one image whose objects are
//! all missed and one with three confident false positives), the page holds every task's row,
//! the chart, the manifest and a gallery whose first images are the planted ones, as decodable
//! JPEG `data:` URIs; nothing is fetched from a network. Then in a real browser (headless
//! Chromium, `$ODINW_CHROMIUM` or `chromium` on PATH; skipped when absent, except with `CI=true`):
//! the DOM after scripts ran (the table sorted by `#sort=-AP`), and screenshots that must not be
//! blank, of the planted run, a comparison, the demo run (`odinw demo`, needs onnxruntime) and
//! real tasks (BCCD and Aquarium from ../shared, skipped when absent). `ODINW_SCREENSHOTS=DIR`
//! keeps the screenshots there.
use crate::support;
use crate::support::repo;

use base64::Engine;
use odinw::data::coco::CocoFile;
use odinw::eval::{evaluate, Detections, GroundTruth, Options};
use odinw::postprocess::CocoDetection as Detection;
use odinw::run::{DatasetRecord, FileRecord, Manifest, Metrics, RunStore, Track};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{odinw, run_odinw, scratch};

fn demo_ann(task: &str) -> PathBuf {
    repo(&format!(
        "demo/odinw/ShapesDemo/{task}/test/annotations_without_background.json"
    ))
}

/// What was planted in one task's predictions, and the errors each image then has.
struct Planted {
    /// The image whose objects get no prediction, and how many it has.
    miss: (u64, usize),
    /// The image that gets three confident false positives.
    fp: u64,
    /// Per image: ground-truth boxes, and those with no area (real exports have a few: a
    /// prediction equal to one overlaps it nowhere, so it counts as a miss and a false positive).
    boxes: BTreeMap<u64, (usize, usize)>,
}

impl Planted {
    /// Misses and false positives of an image.
    fn errors(&self, id: u64) -> (usize, usize) {
        let (n, empty) = self.boxes[&id];
        if id == self.miss.0 {
            (n, 0)
        } else if id == self.fp {
            (empty, empty + 3)
        } else {
            (empty, empty)
        }
    }

    /// The gallery's expected images: the 3 with the most errors (ties: lower id), then the
    /// error-free image with the most boxes (ties: lower id).
    fn expected(&self) -> Vec<(u64, &'static str)> {
        let total = |id: u64| self.errors(id).0 + self.errors(id).1;
        let mut ids: Vec<u64> = self.boxes.keys().copied().collect();
        ids.sort_by(|a, b| total(*b).cmp(&total(*a)).then(a.cmp(b)));
        let mut out: Vec<(u64, &str)> = ids
            .iter()
            .filter(|id| total(**id) > 0)
            .take(3)
            .map(|id| (*id, "errors"))
            .collect();
        let good = ids
            .iter()
            .filter(|id| total(**id) == 0 && self.boxes[*id].0 > 0)
            .max_by(|a, b| self.boxes[*a].0.cmp(&self.boxes[*b].0).then(b.cmp(a)))
            .unwrap();
        out.push((*good, "good"));
        out
    }
}

/// The ground truth as predictions (score 0.9) except for the planted errors: `miss` gets none,
/// `fp` gets three 5×5 boxes at score 0.95 in its top-left corner. `shift` moves the choice.
fn plant(coco: &CocoFile, shift: usize) -> (Vec<Detection>, Planted) {
    let mut boxes: BTreeMap<u64, (usize, usize)> =
        coco.images.iter().map(|i| (i.id, (0, 0))).collect();
    for a in &coco.annotations {
        let b = a.bbox_f64().unwrap();
        let e = boxes.get_mut(&a.image_id).unwrap();
        e.0 += 1;
        e.1 += (b[2] <= 0.0 || b[3] <= 0.0) as usize;
    }
    let ids: Vec<(u64, usize)> = coco
        .images
        .iter()
        .map(|i| (i.id, boxes[&i.id].0))
        .filter(|x| x.1 > 0)
        .collect();
    let miss = ids[shift % ids.len()];
    let fp = ids[(shift + 1) % ids.len()].0;
    let mut out = Vec::new();
    for a in coco.annotations.iter().filter(|a| a.image_id != miss.0) {
        out.push(Detection {
            image_id: a.image_id,
            category_id: a.category_id,
            bbox: a.bbox_f64().unwrap(),
            score: 0.9,
        });
    }
    for k in 0..3 {
        out.push(Detection {
            image_id: fp,
            category_id: coco.categories[k % coco.categories.len()].id,
            bbox: [k as f64 * 6.0, 0.0, 5.0, 5.0],
            score: 0.95,
        });
    }
    (out, Planted { miss, fp, boxes })
}

/// Scores a task's predictions with odinw's evaluator and records them in the run.
fn record(store: &RunStore, task: &str, ann: &Path, preds: Vec<Detection>) {
    store.write_predictions(task, None, preds).unwrap();
    let gt = GroundTruth::read(ann).unwrap();
    let dt = Detections::read(&gt, &store.predictions_path(task, None)).unwrap();
    let ev = evaluate(&gt, &dt, &Options::default());
    store
        .write_metrics(task, None, &Metrics::from_stats(ev.stats))
        .unwrap();
    store.finish_task(task, None, 1.0).unwrap();
}

/// A run of `tasks` (name, annotation file) of `suite` with planted errors; returns what was
/// planted per task.
fn planted_run(run: &Path, suite: &str, tasks: &[(&str, PathBuf)], shift: usize) -> Vec<Planted> {
    let mut m = Manifest::new(
        Track::ZeroShot,
        suite,
        "test",
        tasks.iter().map(|t| t.0.to_string()).collect(),
    );
    m.datasets = tasks
        .iter()
        .map(|(t, ann)| DatasetRecord {
            task: t.to_string(),
            files: vec![FileRecord::of(ann).unwrap()],
        })
        .collect();
    let store = RunStore::create(run, &m).unwrap();
    let mut planted = Vec::new();
    for (task, ann) in tasks {
        let coco = CocoFile::read(ann).unwrap();
        let (preds, p) = plant(&coco, shift);
        record(&store, task, ann, preds);
        planted.push(p);
    }
    store.finish_run().unwrap();
    planted
}

fn report(args: &[&str]) {
    let out = run_odinw(args);
    support::assert_ok(&out);
}

/// The page's gallery figures in order: (task, image id, pick, caption).
fn figures(page: &str) -> Vec<(String, u64, String, String)> {
    let mut out = Vec::new();
    for part in page.split("<div class=\"task\" data-task=\"").skip(1) {
        let task = part[..part.find('"').unwrap()].to_string();
        for f in part.split("<figure ").skip(1) {
            let attr = |name: &str| {
                let k = format!("{name}=\"");
                let s = &f[f.find(&k).unwrap() + k.len()..];
                s[..s.find('"').unwrap()].to_string()
            };
            let cap = &f[f.find("<figcaption>").unwrap() + 12..f.find("</figcaption>").unwrap()];
            out.push((
                task.clone(),
                attr("data-image-id").parse().unwrap(),
                attr("data-pick"),
                cap.to_string(),
            ));
        }
    }
    out
}

/// The images' `data:` URIs, decoded: (width, height) of each.
fn image_sizes(page: &str) -> Vec<(u32, u32)> {
    page.split("src=\"data:image/jpeg;base64,")
        .skip(1)
        .map(|s| {
            let b64 = &s[..s.find('"').unwrap()];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let img = odinw::preprocess::decode_bytes(&bytes).unwrap().0;
            (img.width, img.height)
        })
        .collect()
}

/// The first cell of each body row of the table with `id`.
fn first_column(page: &str, id: &str) -> Vec<String> {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let t = &page[start..];
    let body = &t[t.find("<tbody>").unwrap()..t.find("</tbody>").unwrap()];
    body.split("<tr")
        .skip(1)
        .map(|r| {
            let td = &r[r.find("<td").unwrap()..];
            td[td.find('>').unwrap() + 1..td.find("</td>").unwrap()].to_string()
        })
        .collect()
}

/// Nothing on the page is fetched: no `src`, `href` or `url(` other than `data:` and anchors.
fn assert_self_contained(page: &str) {
    for key in ["src=\"", "href=\"", "url("] {
        for s in page.split(key).skip(1) {
            assert!(
                s.starts_with("data:") || s.starts_with('#'),
                "{key}{}",
                &s[..s.len().min(60)]
            );
        }
    }
    assert!(!page.contains("<link"), "an external stylesheet");
    assert!(!page.contains("@import"));
}

fn check_planted(page: &str, tasks: &[&str], planted: &[Planted]) {
    let figs = figures(page);
    for (task, p) in tasks.iter().zip(planted) {
        let mine: Vec<_> = figs.iter().filter(|f| f.0 == *task).collect();
        // The images with the most errors first, then the good one; each caption counts them.
        let got: Vec<(u64, &str)> = mine.iter().map(|f| (f.1, f.2.as_str())).collect();
        assert_eq!(got, p.expected(), "{task}");
        for (id, _) in &got {
            let (m, f) = p.errors(*id);
            let caption = &mine.iter().find(|x| x.1 == *id).unwrap().3;
            let s = if f == 1 { "" } else { "s" };
            let want = format!("{} GT, {m} missed, {f} false positive{s}", p.boxes[id].0);
            assert!(caption.ends_with(&want), "{caption} (expected {want})");
        }
        // The planted images are among them (the demo's and BCCD's boxes all have an area).
        if p.boxes.values().all(|b| b.1 == 0) {
            assert!(got.iter().any(|g| g.0 == p.miss.0) && got.iter().any(|g| g.0 == p.fp));
        }
    }
}

const DEMO_TASKS: [&str; 2] = ["ColorShapes", "TexturedShapes"];

fn demo_planted_run(run: &Path, shift: usize) -> Vec<Planted> {
    let tasks: Vec<(&str, PathBuf)> = DEMO_TASKS.iter().map(|t| (*t, demo_ann(t))).collect();
    planted_run(run, "demo", &tasks, shift)
}

#[test]
fn page_has_rows_chart_manifest_and_a_gallery_of_the_planted_errors() {
    let dir = scratch();
    let run = dir.path().join("planted");
    let planted = demo_planted_run(&run, 0);
    report(&["report", run.to_str().unwrap()]);
    let page = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert_eq!(first_column(&page, "tasks"), DEMO_TASKS);
    assert!(page.contains("<tfoot>") && page.contains(">mean</td>"));
    assert_eq!(page.matches("class=\"bar\"").count(), 2, "one bar per task");
    check_planted(&page, &DEMO_TASKS, &planted);
    // Each image is a JPEG of the original size (demo images are under 480 px).
    let sizes = image_sizes(&page);
    assert_eq!(sizes.len(), 6);
    let coco = CocoFile::read(&demo_ann("ColorShapes")).unwrap();
    let first = figures(&page)[0].1;
    let img = coco.images.iter().find(|i| i.id == first).unwrap();
    assert_eq!(
        (sizes[0].0 as u64, sizes[0].1 as u64),
        (
            img.extra["width"].as_u64().unwrap(),
            img.extra["height"].as_u64().unwrap()
        )
    );
    // The manifest, every field: the recorded command and the annotation files' hashes.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    let sha = manifest["datasets"][0]["files"][0]["sha256"]
        .as_str()
        .unwrap();
    assert!(page.contains(&format!("<code>{sha}</code>")));
    assert!(page.contains("<th>odinw_version</th>"));
    assert_self_contained(&page);
}

#[test]
fn a_task_without_images_gets_a_note_and_the_page_is_still_written() {
    let dir = scratch();
    let run = dir.path().join("noimg");
    // The demo annotation file copied away from its images.
    let ann = dir.path().join("elsewhere/ann.json");
    std::fs::create_dir_all(ann.parent().unwrap()).unwrap();
    std::fs::copy(demo_ann("ColorShapes"), &ann).unwrap();
    planted_run(&run, "demo", &[("ColorShapes", ann)], 0);
    report(&["report", run.to_str().unwrap()]);
    let page = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert_eq!(first_column(&page, "tasks"), ["ColorShapes"]);
    assert!(figures(&page).is_empty());
    assert!(
        page.contains("class=\"error\">reading ") && page.contains("elsewhere/colorshapes_test_"),
        "the error names the image file"
    );
}

#[test]
fn compare_shows_both_runs_and_their_images_side_by_side() {
    let dir = scratch();
    let (a, b) = (dir.path().join("run-a"), dir.path().join("run-b"));
    demo_planted_run(&a, 0);
    demo_planted_run(&b, 3);
    report(&[
        "report",
        a.to_str().unwrap(),
        "--compare",
        b.to_str().unwrap(),
    ]);
    let page = std::fs::read_to_string(a.join("report/index.html")).unwrap();
    assert!(page.contains("<title>odinw report: run-a vs run-b</title>"));
    assert_eq!(first_column(&page, "tasks"), DEMO_TASKS);
    assert_eq!(first_column(&page, "tasks-2"), DEMO_TASKS);
    assert_eq!(first_column(&page, "compare"), DEMO_TASKS);
    assert_eq!(page.matches("<svg ").count(), 2);
    assert_eq!(page.matches("<h3>run-b/manifest.json</h3>").count(), 1);
    // Every row of the gallery holds the same image twice: run A's boxes, then run B's.
    let figs = figures(&page);
    assert!(figs.len() >= 8, "{}", figs.len());
    for pair in figs.chunks(2) {
        assert_eq!(pair[0].1, pair[1].1);
        assert!(pair[0].3.starts_with("run-a: ") && pair[1].3.starts_with("run-b: "));
    }
    assert_self_contained(&page);
}

// ---- in a real browser ----

/// Headless Chromium: `$ODINW_CHROMIUM`, else `chromium`/`chromium-browser` on PATH. Absent:
/// `None` (skip, saying so), or a failure under `CI=true`.
fn chromium() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("ODINW_CHROMIUM") {
        Some(p) => vec![PathBuf::from(p)],
        None => ["chromium", "chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    for c in candidates {
        if Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    let msg =
        "headless Chromium not found (Debian: apt-get install chromium; or set ODINW_CHROMIUM)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

fn browser(chrome: &Path, profile: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.arg("180").arg(chrome).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--allow-file-access-from-files",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn url(page: &Path, hash: &str) -> String {
    format!(
        "file://{}{hash}",
        std::path::absolute(page).unwrap().display()
    )
}

fn dump_dom(chrome: &Path, page: &Path, hash: &str) -> String {
    let profile = scratch();
    let out = browser(chrome, profile.path())
        .arg("--dump-dom")
        .arg(url(page, hash))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Takes a screenshot of `page`, checks it is not blank and returns its path (kept in
/// `$ODINW_SCREENSHOTS/<name>.png` when set).
fn screenshot(chrome: &Path, page: &Path, name: &str, height: u32) -> PathBuf {
    let profile = scratch();
    let keep = std::env::var_os("ODINW_SCREENSHOTS").map(PathBuf::from);
    let dir = keep
        .clone()
        .unwrap_or_else(|| page.parent().unwrap().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let shot = std::path::absolute(dir.join(format!("{name}.png"))).unwrap();
    let _ = std::fs::remove_file(&shot);
    let out = browser(chrome, profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size=1280,{height}"))
        .arg(url(page, ""))
        .output()
        .unwrap();
    assert!(
        out.status.success() && shot.is_file(),
        "chromium screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h, px) = decode_png(&shot);
    assert_eq!((w, h), (1280, height));
    let mut colours: Vec<[u8; 3]> = px.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let non_white = colours
        .iter()
        .filter(|p| p.iter().any(|v| *v < 0xf0))
        .count();
    colours.sort_unstable();
    colours.dedup();
    let frac = non_white as f64 / (w * h) as f64;
    assert!(
        colours.len() > 500 && frac > 0.03,
        "{name}: the screenshot looks blank ({} colours, {:.1}% non-white)",
        colours.len(),
        frac * 100.0
    );
    eprintln!(
        "screenshot {}: {} colours, {:.1}% non-white",
        shot.display(),
        colours.len(),
        frac * 100.0
    );
    shot
}

fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let img = image::open(path).unwrap().into_rgb8();
    (img.width(), img.height(), img.into_raw())
}

#[test]
fn chromium_loads_the_page_sorts_the_table_and_draws_it() {
    let Some(chrome) = chromium() else { return };
    let dir = scratch();
    let run = dir.path().join("planted");
    let planted = demo_planted_run(&run, 0);
    report(&["report", run.to_str().unwrap()]);
    let page = run.join("report/index.html");

    let dom = dump_dom(&chrome, &page, "");
    assert_eq!(first_column(&dom, "tasks"), DEMO_TASKS);
    check_planted(&dom, &DEMO_TASKS, &planted);
    assert_eq!(image_sizes(&dom).len(), 6);
    // The table's script ran: sorted by AP, descending, then ascending.
    let ap = |t: &str| {
        let s = std::fs::read_to_string(run.join("report/tasks.csv")).unwrap();
        let line = s.lines().find(|l| l.starts_with(&format!("{t},"))).unwrap();
        line.split(',').nth(2).unwrap().parse::<f64>().unwrap()
    };
    let mut by_ap: Vec<&str> = DEMO_TASKS.to_vec();
    by_ap.sort_by(|a, b| ap(b).total_cmp(&ap(a)));
    assert_ne!(ap(DEMO_TASKS[0]), ap(DEMO_TASKS[1]));
    let dom = dump_dom(&chrome, &page, "#sort=-AP");
    assert_eq!(first_column(&dom, "tasks"), by_ap);
    assert!(
        dom.contains("data-dir=\"desc\">AP</th>"),
        "the header shows the order"
    );
    by_ap.reverse();
    assert_eq!(
        first_column(&dump_dom(&chrome, &page, "#sort=AP"), "tasks"),
        by_ap
    );

    screenshot(&chrome, &page, "planted", 2400);
    let (a, b) = (dir.path().join("run-a"), dir.path().join("run-b"));
    demo_planted_run(&a, 0);
    demo_planted_run(&b, 3);
    report(&[
        "report",
        a.to_str().unwrap(),
        "--compare",
        b.to_str().unwrap(),
    ]);
    screenshot(&chrome, &a.join("report/index.html"), "compare", 3200);
}

#[test]
fn chromium_shows_the_demo_runs_page() {
    if support::python_with(&["onnxruntime"]).is_none() {
        return;
    }
    let Some(chrome) = chromium() else { return };
    let dir = scratch();
    let run = dir.path().join("demo");
    let out = odinw()
        .args(["demo", "--out"])
        .arg(&run)
        .env("ODINW_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    support::assert_ok(&out);
    // `odinw demo` writes the page itself.
    let page = run.join("report/index.html");
    let dom = dump_dom(&chrome, &page, "");
    let tasks = [
        "ColorShapes",
        "TexturedShapes",
        "ShapeDescriptions",
        "NovelShapes",
    ];
    assert_eq!(first_column(&dom, "tasks"), tasks);
    let figs = figures(&dom);
    for t in tasks {
        let n = figs.iter().filter(|f| f.0 == t).count();
        assert!((2..=4).contains(&n), "{t}: {n} images");
    }
    assert_eq!(image_sizes(&dom).len(), figs.len());
    screenshot(&chrome, &page, "demo", 3000);
}

#[test]
fn chromium_shows_real_tasks_galleries() {
    let Some((bccd, aquarium)) = support::roboflow_exports() else {
        return;
    };
    let dir = scratch();
    let run = dir.path().join("real");
    // The exports' own test annotations: the images lie beside them.
    let tasks = [
        ("BCCD", bccd.join("test/_annotations.coco.json")),
        ("Aquarium", aquarium.join("test/_annotations.coco.json")),
    ];
    let planted = planted_run(&run, "odinw35", &tasks, 0);
    report(&["report", run.to_str().unwrap()]);
    let page = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    check_planted(&page, &["BCCD", "Aquarium"], &planted);
    // Every image keeps its aspect ratio, downscaled to 480 px when larger (Aquarium's).
    let sizes = image_sizes(&page);
    let figs = figures(&page);
    assert_eq!(sizes.len(), figs.len());
    let mut downscaled = 0;
    for ((task, id, _, _), (w, h)) in figs.iter().zip(&sizes) {
        let ann = &tasks.iter().find(|t| t.0 == task.as_str()).unwrap().1;
        let coco = CocoFile::read(ann).unwrap();
        let img = coco.images.iter().find(|i| i.id == *id).unwrap();
        let size = |k: &str| img.extra[k].as_u64().unwrap() as f64;
        let (ow, oh) = (size("width"), size("height"));
        let scale = (480.0 / ow.max(oh)).min(1.0);
        downscaled += (scale < 1.0) as usize;
        assert_eq!(
            (*w, *h),
            ((ow * scale).round() as u32, (oh * scale).round() as u32),
            "{task} image {id}"
        );
    }
    assert!(downscaled >= 3, "Aquarium's images are larger than 480 px");
    assert_self_contained(&page);
    if let Some(chrome) = chromium() {
        let dom = dump_dom(&chrome, &run.join("report/index.html"), "");
        assert_eq!(first_column(&dom, "tasks"), ["BCCD", "Aquarium"]);
        assert_eq!(image_sizes(&dom).len(), figs.len());
        screenshot(&chrome, &run.join("report/index.html"), "real-tasks", 3000);
    }
}

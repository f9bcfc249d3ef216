//! The per-task AP chart: one horizontal bar per evaluated task (mean AP over seeds), a
//! min–max whisker and a dot per seed for few-shot runs, the suite mean as a dashed line, and
//! missing or failed tasks named in place of a bar. Laid out once as shapes, then written as
//! SVG (by hand, text as `<text>` elements) or PNG (rasterised here at 2×, text in the embedded
//! DejaVu Sans, see [`super::font`]).
use super::font;
use crate::run::aggregate::Aggregate;
use anyhow::{Context, Result};

/// Text size in chart units (SVG pixels).
const FONT_SIZE: f64 = 13.0;
const ROW_H: f64 = 20.0;
const BAR_H: f64 = 12.0;
const PLOT_W: f64 = 520.0;
const TOP: f64 = 72.0;
const PNG_SCALE: u32 = 2;

type Rgb = [u8; 3];
const BLACK: Rgb = [0x22, 0x22, 0x22];
const GRAY: Rgb = [0x88, 0x88, 0x88];
const GRID: Rgb = [0xdd, 0xdd, 0xdd];
const BAR: Rgb = [0x48, 0x78, 0xb0];
const MEAN: Rgb = [0xc0, 0x39, 0x2b];
const WHITE: Rgb = [0xff, 0xff, 0xff];

#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Start,
    Middle,
    End,
}

enum Shape {
    /// A filled rectangle; bars carry their task name.
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        color: Rgb,
        task: Option<String>,
    },
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        color: Rgb,
        width: f64,
        dashed: bool,
    },
    Dot {
        cx: f64,
        cy: f64,
        r: f64,
        color: Rgb,
    },
    /// Text with its baseline at `y`.
    Text {
        x: f64,
        y: f64,
        text: String,
        color: Rgb,
        anchor: Anchor,
    },
}

/// One row of the chart: AP × 100 (mean over seeds), the per-seed APs, or why there is no bar.
pub struct ChartRow {
    pub task: String,
    pub ap: Option<f64>,
    pub seeds: Vec<f64>,
    pub status: String,
}

pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub rows: Vec<ChartRow>,
    pub mean: Option<f64>,
    width: f64,
    height: f64,
    shapes: Vec<Shape>,
}

impl Chart {
    /// The chart of an aggregated run.
    pub fn of(agg: &Aggregate) -> Result<Self> {
        let t = &agg.tasks;
        let names = t.column("task")?.str()?;
        let status = t.column("status")?.str()?;
        let ap = t.column("AP")?.f64()?;
        let mut rows = Vec::new();
        for i in 0..t.height() {
            let task = names.get(i).unwrap_or_default().to_string();
            let st = status.get(i).unwrap_or_default().to_string();
            let seeds = if agg.has_seeds() {
                agg.seed_aps(&task)?
                    .into_iter()
                    .map(|(_, v)| v * 100.0)
                    .collect()
            } else {
                Vec::new()
            };
            rows.push(ChartRow {
                ap: if st == "ok" {
                    ap.get(i).map(|v| v * 100.0)
                } else {
                    None
                },
                task,
                seeds,
                status: st,
            });
        }
        let s = &agg.stats;
        let title = format!("{}: AP per task", agg.run_name);
        let mut subtitle = format!(
            "{} {}, {} split, {}/{} tasks",
            agg.suite,
            agg.track.name(),
            agg.split,
            s.evaluated,
            s.expected
        );
        if let Some(m) = s.mean_ap() {
            subtitle.push_str(&format!(", mean AP {:.1}", m * 100.0));
            if let Some(sd) = s.mean_ap_std_over_seeds {
                subtitle.push_str(&format!(" ± {:.1} over seeds", sd * 100.0));
            }
        }
        Ok(Self::new(
            title,
            subtitle,
            rows,
            s.mean_ap().map(|m| m * 100.0),
        ))
    }

    pub fn new(title: String, subtitle: String, rows: Vec<ChartRow>, mean: Option<f64>) -> Self {
        let mut c = Self {
            title,
            subtitle,
            rows,
            mean,
            width: 0.0,
            height: 0.0,
            shapes: Vec::new(),
        };
        c.lay_out();
        c
    }

    /// Number of bars (evaluated tasks).
    pub fn bars(&self) -> usize {
        self.rows.iter().filter(|r| r.ap.is_some()).count()
    }

    fn lay_out(&mut self) {
        let label_w = self
            .rows
            .iter()
            .map(|r| text_width(&r.task))
            .fold(text_width("task"), f64::max);
        let left = 12.0 + label_w + 12.0;
        let bottom = TOP + self.rows.len() as f64 * ROW_H;
        self.width = (left + PLOT_W + 110.0)
            .max(16.0 + text_width(&self.title).max(text_width(&self.subtitle)));
        self.height = bottom + 40.0;
        let top_value = self
            .rows
            .iter()
            .flat_map(|r| r.ap.into_iter().chain(r.seeds.iter().copied()))
            .fold(0.0f64, f64::max);
        let xmax = ((top_value / 10.0).ceil() * 10.0).clamp(10.0, 100.0);
        let step = if xmax > 40.0 { 10.0 } else { 5.0 };
        let x = |v: f64| left + v.clamp(0.0, xmax) / xmax * PLOT_W;
        let sh = &mut self.shapes;
        sh.push(Shape::Rect {
            x: 0.0,
            y: 0.0,
            w: self.width,
            h: self.height,
            color: WHITE,
            task: None,
        });
        sh.push(text(12.0, 22.0, &self.title, BLACK, Anchor::Start));
        sh.push(text(12.0, 40.0, &self.subtitle, GRAY, Anchor::Start));
        let mut tick = 0.0;
        while tick <= xmax + 1e-9 {
            sh.push(line(x(tick), TOP - 4.0, x(tick), bottom, GRID, 1.0, false));
            sh.push(text(
                x(tick),
                bottom + 18.0,
                &format!("{tick:.0}"),
                BLACK,
                Anchor::Middle,
            ));
            tick += step;
        }
        sh.push(line(left, bottom, left + PLOT_W, bottom, BLACK, 1.0, false));
        sh.push(text(
            left + PLOT_W / 2.0,
            bottom + 34.0,
            "AP (x100)",
            BLACK,
            Anchor::Middle,
        ));
        if let Some(m) = self.mean {
            sh.push(line(x(m), TOP - 8.0, x(m), bottom, MEAN, 1.5, true));
            sh.push(text(
                x(m),
                TOP - 12.0,
                &format!("mean {m:.1}"),
                MEAN,
                Anchor::Middle,
            ));
        }
        for (i, r) in self.rows.iter().enumerate() {
            let y = TOP + i as f64 * ROW_H;
            let mid = y + ROW_H / 2.0;
            sh.push(text(left - 8.0, mid + 4.0, &r.task, BLACK, Anchor::End));
            let Some(ap) = r.ap else {
                let why = match r.status.as_str() {
                    "partial" => format!("partial ({} seeds)", r.seeds.len()),
                    s => s.to_string(),
                };
                sh.push(text(left + 4.0, mid + 4.0, &why, GRAY, Anchor::Start));
                continue;
            };
            sh.push(Shape::Rect {
                x: left,
                y: mid - BAR_H / 2.0,
                w: x(ap) - left,
                h: BAR_H,
                color: BAR,
                task: Some(r.task.clone()),
            });
            let mut right = x(ap);
            if r.seeds.len() >= 2 {
                let lo = r.seeds.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.seeds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                sh.push(line(x(lo), mid, x(hi), mid, BLACK, 1.0, false));
                for v in [lo, hi] {
                    sh.push(line(x(v), mid - 4.0, x(v), mid + 4.0, BLACK, 1.0, false));
                }
                for v in &r.seeds {
                    sh.push(Shape::Dot {
                        cx: x(*v),
                        cy: mid,
                        r: 2.5,
                        color: BLACK,
                    });
                }
                right = right.max(x(hi));
            }
            let label = format!("{ap:.1}");
            let w = text_width(&label) + 4.0;
            sh.push(Shape::Rect {
                x: right + 4.0,
                y: mid - 7.0,
                w,
                h: 14.0,
                color: WHITE,
                task: None,
            });
            sh.push(text(right + 6.0, mid + 4.0, &label, BLACK, Anchor::Start));
        }
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let (w, h) = (self.width, self.height);
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"{}, Verdana, sans-serif\" font-size=\"{FONT_SIZE}\">\n",
            font::FAMILY
        );
        for s in &self.shapes {
            match s {
                Shape::Rect {
                    x,
                    y,
                    w,
                    h,
                    color,
                    task,
                } => {
                    let extra = match task {
                        Some(t) => format!(" class=\"bar\" data-task=\"{}\"", xml_escape(t)),
                        None => String::new(),
                    };
                    out.push_str(&format!(
                        "<rect{extra} x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"/>\n",
                        hex(*color)
                    ));
                }
                Shape::Line {
                    x1,
                    y1,
                    x2,
                    y2,
                    color,
                    width,
                    dashed,
                } => {
                    let dash = if *dashed {
                        " stroke-dasharray=\"4 3\""
                    } else {
                        ""
                    };
                    out.push_str(&format!(
                        "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{}\" stroke-width=\"{width}\"{dash}/>\n",
                        hex(*color)
                    ));
                }
                Shape::Dot { cx, cy, r, color } => out.push_str(&format!(
                    "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r}\" fill=\"{}\"/>\n",
                    hex(*color)
                )),
                Shape::Text {
                    x,
                    y,
                    text,
                    color,
                    anchor,
                } => {
                    let a = match anchor {
                        Anchor::Start => "start",
                        Anchor::Middle => "middle",
                        Anchor::End => "end",
                    };
                    out.push_str(&format!(
                        "<text x=\"{x:.1}\" y=\"{y:.1}\" fill=\"{}\" text-anchor=\"{a}\">{}</text>\n",
                        hex(*color),
                        xml_escape(text)
                    ));
                }
            }
        }
        out.push_str("</svg>\n");
        out
    }

    /// The chart as PNG bytes (RGB, 2× the SVG's size).
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut c = Raster::new(
            (self.width * PNG_SCALE as f64).ceil() as u32,
            (self.height * PNG_SCALE as f64).ceil() as u32,
        );
        for s in &self.shapes {
            c.draw(s);
        }
        c.encode().context("encoding the chart as PNG")
    }
}

/// The width of `s` in chart units.
fn text_width(s: &str) -> f64 {
    font::width(s, FONT_SIZE as f32) as f64
}

fn text(x: f64, y: f64, s: &str, color: Rgb, anchor: Anchor) -> Shape {
    Shape::Text {
        x,
        y,
        text: s.to_string(),
        color,
        anchor,
    }
}

fn line(x1: f64, y1: f64, x2: f64, y2: f64, color: Rgb, width: f64, dashed: bool) -> Shape {
    Shape::Line {
        x1,
        y1,
        x2,
        y2,
        color,
        width,
        dashed,
    }
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An RGB pixel buffer the shapes are drawn into at `PNG_SCALE` pixels per unit.
struct Raster {
    w: u32,
    h: u32,
    px: Vec<u8>,
}

impl Raster {
    fn new(w: u32, h: u32) -> Self {
        Self {
            w,
            h,
            px: vec![0xff; (w * h * 3) as usize],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as u32) < self.w && (y as u32) < self.h {
            let i = ((y as u32 * self.w + x as u32) * 3) as usize;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills the pixels whose centres lie in the rectangle (in units).
    fn fill(&mut self, x: f64, y: f64, w: f64, h: f64, c: Rgb) {
        let s = PNG_SCALE as f64;
        let (x0, x1) = ((x * s).round() as i64, ((x + w) * s).round() as i64);
        let (y0, y1) = ((y * s).round() as i64, ((y + h) * s).round() as i64);
        for py in y0..y1 {
            for px in x0..x1 {
                self.set(px, py, c);
            }
        }
    }

    fn draw(&mut self, shape: &Shape) {
        let s = PNG_SCALE as f64;
        match shape {
            Shape::Rect {
                x, y, w, h, color, ..
            } => self.fill(*x, *y, *w, *h, *color),
            Shape::Line {
                x1,
                y1,
                x2,
                y2,
                color,
                width,
                dashed,
            } => {
                let len = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt();
                let steps = (len * s).ceil().max(1.0) as usize;
                for i in 0..=steps {
                    let t = i as f64 / steps as f64;
                    if *dashed && (t * len) % 7.0 >= 4.0 {
                        continue;
                    }
                    let (x, y) = (x1 + t * (x2 - x1), y1 + t * (y2 - y1));
                    self.fill(x - width / 2.0, y - width / 2.0, *width, *width, *color);
                }
            }
            Shape::Dot { cx, cy, r, color } => {
                let (pcx, pcy, pr) = (cx * s, cy * s, r * s);
                for py in (pcy - pr).floor() as i64..=(pcy + pr).ceil() as i64 {
                    for px in (pcx - pr).floor() as i64..=(pcx + pr).ceil() as i64 {
                        let (dx, dy) = (px as f64 + 0.5 - pcx, py as f64 + 0.5 - pcy);
                        if dx * dx + dy * dy <= pr * pr {
                            self.set(px, py, *color);
                        }
                    }
                }
            }
            Shape::Text {
                x,
                y,
                text,
                color,
                anchor,
            } => {
                let width = text_width(text);
                let left = match anchor {
                    Anchor::Start => *x,
                    Anchor::Middle => x - width / 2.0,
                    Anchor::End => x - width,
                };
                font::Target {
                    px: &mut self.px,
                    w: self.w,
                    h: self.h,
                }
                .text(
                    (left * s) as f32,
                    (y * s) as f32,
                    text,
                    (FONT_SIZE * s) as f32,
                    *color,
                );
            }
        }
    }

    fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.w, self.h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.px)?;
        w.finish()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        let row = |t: &str, ap: Option<f64>, seeds: Vec<f64>, st: &str| ChartRow {
            task: t.into(),
            ap,
            seeds,
            status: st.into(),
        };
        Chart::new(
            "demo & co: AP per task".into(),
            "sub".into(),
            vec![
                row("a<b", Some(40.0), vec![38.0, 42.0, 40.0], "ok"),
                row("B", Some(12.5), vec![], "ok"),
                row("C", None, vec![], "missing"),
            ],
            Some(26.25),
        )
    }

    #[test]
    fn svg_has_one_bar_per_evaluated_task_and_escapes_names() {
        let c = chart();
        let svg = c.svg();
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert_eq!(c.bars(), 2);
        assert!(svg.contains("data-task=\"a&lt;b\""), "{svg}");
        assert!(svg.contains(">missing</text>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("mean 26.2") || svg.contains("mean 26.3"));
        assert!(svg.contains("demo &amp; co"));
    }

    #[test]
    fn png_is_a_decodable_image_with_bars_drawn() {
        let c = chart();
        let bytes = c.png().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.width, (c.width * 2.0).ceil() as u32);
        let bar_pixels = buf.chunks(3).filter(|p| *p == BAR).count();
        // Bars of 40 and 12.5 on a 0..50 axis (a seed reaches 42), 520 units wide, 12 units
        // high, at 2x; whiskers, dots and the mean line cover a few of their pixels.
        let expected = ((520.0 * 40.0 / 50.0 + 520.0 * 12.5 / 50.0) * 12.0 * 4.0) as usize;
        let tolerance = expected / 50;
        assert!(
            bar_pixels.abs_diff(expected) < tolerance,
            "{bar_pixels} vs {expected}"
        );
    }

    fn decoded_png(c: &Chart) -> (u32, u32, Vec<u8>) {
        let bytes = c.png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        (info.width, info.height, buf)
    }

    #[test]
    fn png_draws_non_ascii_task_names_as_themselves() {
        // A longer second name fixes the layout, so only the first label's pixels can differ.
        let mk = |name: &str| {
            let row = |t: &str, ap: f64| ChartRow {
                task: t.into(),
                ap: Some(ap),
                seeds: vec![],
                status: "ok".into(),
            };
            Chart::new(
                "title".into(),
                "sub".into(),
                vec![row(name, 30.0), row("a much longer task name", 20.0)],
                Some(25.0),
            )
        };
        let (w, h, greek) = decoded_png(&mk("Ωmega Дом"));
        for other in ["?mega ?ом", "Omega Дом", "?mega ???"] {
            let (w2, h2, px) = decoded_png(&mk(other));
            assert_eq!((w, h), (w2, h2));
            let differing: Vec<usize> = (0..greek.len() / 3)
                .filter(|i| greek[i * 3..i * 3 + 3] != px[i * 3..i * 3 + 3])
                .collect();
            assert!(!differing.is_empty(), "{other} drew the same pixels");
            // Every difference lies in the first row's label, left of the plot.
            let row_top = (TOP * PNG_SCALE as f64) as usize;
            let row_bottom = ((TOP + ROW_H) * PNG_SCALE as f64) as usize;
            for i in differing {
                let (x, y) = (i % w as usize, i / w as usize);
                assert!(y >= row_top && y < row_bottom, "pixel ({x}, {y}) differs");
            }
        }
        let svg = mk("Ωmega & <Дом>").svg();
        assert!(svg.contains(">Ωmega &amp; &lt;Дом&gt;</text>"), "{svg}");
    }
}

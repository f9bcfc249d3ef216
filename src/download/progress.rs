//! Progress of a download run. On a terminal the CLI draws it ([`Bars`]: a bar per file and
//! one overall bar, `cli/download_bars.rs`); otherwise it is plain lines through the run's
//! [`Reporter`] (a start line, a line every few seconds, a finish line), so logs stay readable.
//! This module draws and prints nothing itself.
use crate::util::reporter::{Reporter, Silent};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a plain (non-terminal) progress line is printed per file.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A terminal display of a download run: an overall bar and a bar per file.
pub trait Bars: Send + Sync {
    /// Sets the overall total (bytes).
    fn set_total(&self, total: u64);
    /// Prints a line above the bars.
    fn println(&self, line: &str);
    /// A bar for one file of `total` bytes (if known), labelled `label`.
    fn file(&self, label: &str, total: Option<u64>) -> Arc<dyn FileBar>;
    /// Clears the bars at the end of the run.
    fn finish(&self);
}

/// One file's bar; it keeps the overall bar in step.
pub trait FileBar: Send + Sync {
    fn set_total(&self, total: u64);
    fn set_position(&self, position: u64);
    fn inc(&self, n: u64);
    fn set_message(&self, msg: &str);
    fn finish(&self);
}

/// Where a download run's progress goes: bars on a terminal, else lines.
#[derive(Clone)]
pub struct Display {
    pub bars: Option<Arc<dyn Bars>>,
    pub lines: Arc<dyn Reporter>,
}

impl Display {
    /// Plain lines through `lines`.
    pub fn lines(lines: Arc<dyn Reporter>) -> Self {
        Self { bars: None, lines }
    }

    /// Nothing shown.
    pub fn silent() -> Self {
        Self::lines(Arc::new(Silent))
    }
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.bars.is_some() {
            "Display(bars)"
        } else {
            "Display(lines)"
        })
    }
}

/// The run's progress display.
#[derive(Clone)]
pub struct Progress {
    display: Display,
}

impl Progress {
    /// `total`: bytes expected overall, if known (or set later with [`Progress::set_total`]).
    pub fn new(display: &Display, total: Option<u64>) -> Self {
        if let (Some(bars), Some(t)) = (&display.bars, total) {
            bars.set_total(t);
        }
        Self {
            display: display.clone(),
        }
    }

    /// Sets the overall total once the sizes are known.
    pub fn set_total(&self, total: u64) {
        if let Some(bars) = &self.display.bars {
            bars.set_total(total);
        }
    }

    /// Prints a message line (above the bars on a terminal).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.display.bars {
            Some(bars) => bars.println(line.as_ref()),
            None => self.display.lines.message(line.as_ref()),
        }
    }

    /// A progress display for one file of `total` bytes (if known).
    pub fn file(&self, label: &str, total: Option<u64>) -> FileProgress {
        FileProgress {
            label: label.to_string(),
            bar: self.display.bars.as_ref().map(|b| b.file(label, total)),
            lines: self.display.lines.clone(),
            plain: Arc::new(Mutex::new(PlainState {
                total,
                position: 0,
                last_print: Instant::now(),
                started: Instant::now(),
                start_position: 0,
            })),
        }
    }

    /// Clears the bars at the end of the run.
    pub fn finish(&self) {
        if let Some(bars) = &self.display.bars {
            bars.finish();
        }
    }
}

struct PlainState {
    total: Option<u64>,
    position: u64,
    last_print: Instant,
    started: Instant,
    start_position: u64,
}

/// Progress of one file.
#[derive(Clone)]
pub struct FileProgress {
    label: String,
    bar: Option<Arc<dyn FileBar>>,
    lines: Arc<dyn Reporter>,
    plain: Arc<Mutex<PlainState>>,
}

impl FileProgress {
    /// Sets the total once the server tells it.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_total(total);
        }
        self.plain.lock().unwrap().total = Some(total);
    }

    /// Jumps to `position` (a resumed download starts part way; a restart goes back to 0).
    pub fn set_position(&self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
        let mut p = self.plain.lock().unwrap();
        p.position = position;
        p.start_position = position;
        p.started = Instant::now();
    }

    /// Adds `n` bytes received.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let mut p = self.plain.lock().unwrap();
        p.position += n;
        if p.last_print.elapsed() >= PLAIN_EVERY {
            p.last_print = Instant::now();
            let rate = (p.position - p.start_position) as f64
                / p.started.elapsed().as_secs_f64().max(1e-3);
            let pct = p
                .total
                .filter(|t| *t > 0)
                .map(|t| format!("{:>3}% ", p.position * 100 / t))
                .unwrap_or_default();
            self.lines.message(&format!(
                "{}: {pct}{} of {} ({}/s)",
                self.label,
                human_bytes(p.position),
                p.total.map(human_bytes).unwrap_or_else(|| "?".into()),
                human_bytes(rate as u64)
            ));
        }
    }

    /// A short status shown next to the bar (e.g. "retry 2 in 1.0 s", "extracting").
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(&msg.into());
        }
    }

    /// Removes the bar (its outcome is printed as a line by the caller).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024 * 1024), "10.0 GiB");
    }
}

//! Progress of a download run: on a terminal, an indicatif bar per file and one overall bar;
//! otherwise plain lines (a start line, a line every few seconds, a finish line), so logs stay
//! readable. Messages go to stderr; the command's summary goes to stdout.
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a plain (non-terminal) progress line is printed per file.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The run's progress display.
#[derive(Clone)]
pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl Progress {
    /// `tty`: draw bars (stderr is a terminal). `total`: bytes expected overall, if known
    /// (or set later with [`Progress::set_total`]).
    pub fn new(tty: bool, total: Option<u64>) -> Self {
        if !tty {
            return Self { bars: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(total.unwrap_or(0)));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>28.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        overall.set_prefix("all");
        Self {
            bars: Some((multi, overall)),
        }
    }

    /// Sets the overall total once the sizes are known.
    pub fn set_total(&self, total: u64) {
        if let Some((_, overall)) = &self.bars {
            overall.set_length(total);
        }
    }

    /// Prints a message line (above the bars on a terminal).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(line.as_ref());
            }
            None => eprintln!("{}", line.as_ref()),
        }
    }

    /// A progress display for one file of `total` bytes (if known).
    pub fn file(&self, label: &str, total: Option<u64>) -> FileProgress {
        let bar = self.bars.as_ref().map(|(multi, overall)| {
            let bar = multi.insert_before(overall, ProgressBar::new(total.unwrap_or(0)));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            (bar, overall.clone())
        });
        FileProgress {
            label: label.to_string(),
            bar,
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
        if let Some((multi, overall)) = &self.bars {
            overall.finish_and_clear();
            let _ = multi.clear();
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
    bar: Option<(ProgressBar, ProgressBar)>,
    plain: Arc<Mutex<PlainState>>,
}

impl FileProgress {
    /// Sets the total once the server tells it.
    pub fn set_total(&self, total: u64) {
        if let Some((bar, overall)) = &self.bar {
            let old = bar.length().unwrap_or(0);
            if old != total {
                bar.set_length(total);
                let all = overall.length().unwrap_or(0);
                overall.set_length((all + total).saturating_sub(old));
            }
        }
        self.plain.lock().unwrap().total = Some(total);
    }

    /// Jumps to `position` (a resumed download starts part way; a restart goes back to 0).
    pub fn set_position(&self, position: u64) {
        if let Some((bar, overall)) = &self.bar {
            let old = bar.position();
            bar.set_position(position);
            if position >= old {
                overall.inc(position - old);
            } else {
                overall.set_position(overall.position().saturating_sub(old - position));
            }
        }
        let mut p = self.plain.lock().unwrap();
        p.position = position;
        p.start_position = position;
        p.started = Instant::now();
    }

    /// Adds `n` bytes received.
    pub fn inc(&self, n: u64) {
        if let Some((bar, overall)) = &self.bar {
            bar.inc(n);
            overall.inc(n);
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
            eprintln!(
                "{}: {pct}{} of {} ({}/s)",
                self.label,
                human_bytes(p.position),
                p.total.map(human_bytes).unwrap_or_else(|| "?".into()),
                human_bytes(rate as u64)
            );
        }
    }

    /// A short status shown next to the bar (e.g. "retry 2 in 1.0 s", "extracting").
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some((bar, _)) = &self.bar {
            bar.set_message(msg.into());
        }
    }

    /// Removes the bar (its outcome is printed as a line by the caller).
    pub fn finish(&self) {
        if let Some((bar, _)) = &self.bar {
            bar.finish_and_clear();
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

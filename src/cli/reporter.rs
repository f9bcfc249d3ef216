//! The terminal side of [`Reporter`]: lines on stderr and, on a terminal, a spinner line with
//! the library's status text (lines are printed above it).
use crate::util::reporter::Reporter;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

pub struct Terminal {
    bar: ProgressBar,
}

impl Terminal {
    /// Lines only (no status line).
    pub fn lines() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    /// Lines, and a spinner with the elapsed time and the status text.
    pub fn spinner() -> Result<Self> {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Ok(Self { bar })
    }

    /// Removes the status line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Reporter for Terminal {
    fn message(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }

    fn status(&self, text: &str) {
        self.bar.set_message(text.to_string());
    }
}

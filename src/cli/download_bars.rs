//! `odinw download` on a terminal: an indicatif bar per file and one overall bar (the library's
//! [`Bars`]); lines are printed above them.
use crate::download::progress::{Bars, FileBar};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;

pub struct Indicatif {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Indicatif {
    pub fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>28.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        overall.set_prefix("all");
        Self { multi, overall }
    }
}

impl Bars for Indicatif {
    fn set_total(&self, total: u64) {
        self.overall.set_length(total);
    }

    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    fn file(&self, label: &str, total: Option<u64>) -> Arc<dyn FileBar> {
        let bar = self
            .multi
            .insert_before(&self.overall, ProgressBar::new(total.unwrap_or(0)));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Arc::new(File {
            bar,
            overall: self.overall.clone(),
        })
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// One file's bar, keeping the overall bar in step.
struct File {
    bar: ProgressBar,
    overall: ProgressBar,
}

impl FileBar for File {
    fn set_total(&self, total: u64) {
        let old = self.bar.length().unwrap_or(0);
        if old != total {
            self.bar.set_length(total);
            let all = self.overall.length().unwrap_or(0);
            self.overall.set_length((all + total).saturating_sub(old));
        }
    }

    fn set_position(&self, position: u64) {
        let old = self.bar.position();
        self.bar.set_position(position);
        if position >= old {
            self.overall.inc(position - old);
        } else {
            self.overall
                .set_position(self.overall.position().saturating_sub(old - position));
        }
    }

    fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.overall.inc(n);
    }

    fn set_message(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

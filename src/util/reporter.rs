//! How library code talks to the user without printing: it hands lines and status text to a
//! [`Reporter`] (uv's model). The command line implements it with stderr lines and a progress
//! line (`cli/reporter.rs`); tests and library callers that want silence use [`Silent`].
use std::sync::Arc;

/// Where the library's messages go.
pub trait Reporter: Send + Sync {
    /// A line for the user (a note, a unit's outcome, an epoch's record).
    fn message(&self, line: &str);
    /// What long work is doing now (a progress line's text); replaced by the next status.
    fn status(&self, _text: &str) {}
}

/// Drops everything.
pub struct Silent;

impl Reporter for Silent {
    fn message(&self, _line: &str) {}
}

/// A cloneable handle on a [`Reporter`], for options structs that are `Clone` and `Debug`.
#[derive(Clone)]
pub struct Progress(Arc<dyn Reporter>);

impl Progress {
    pub fn new(reporter: Arc<dyn Reporter>) -> Self {
        Self(reporter)
    }

    /// A handle that reports nothing.
    pub fn hidden() -> Self {
        Self(Arc::new(Silent))
    }

    /// Sets the status text (see [`Reporter::status`]).
    pub fn set_message(&self, text: impl AsRef<str>) {
        self.0.status(text.as_ref());
    }

    /// Reports a line (see [`Reporter::message`]).
    pub fn println(&self, line: impl AsRef<str>) {
        self.0.message(line.as_ref());
    }

    /// The reporter behind the handle.
    pub fn reporter(&self) -> &dyn Reporter {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

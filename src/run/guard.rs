//! A task fails alone: [`isolate`] runs one unit of a run (a task, or a task and seed) so that
//! an error or a panic inside it, also one on a pipeline worker thread, comes back as that
//! unit's error instead of ending the run. A panic's own message and place are kept (the
//! panic that ends a `std::thread::scope` only says "a scoped thread panicked"), and
//! [`first_panicking`] finds which input of a list makes a step panic, so the error can name
//! the file.
use anyhow::{anyhow, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

/// Panics recorded while some [`isolate`] call is running (at most [`KEPT`]).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// How many [`isolate`] / [`first_panicking`] calls are running.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();
const KEPT: usize = 4;

/// Installs (once) a panic hook that, while an isolated unit runs, records each panic's
/// message, place and thread instead of printing it (printed too with `RUST_BACKTRACE` set).
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.load(Ordering::SeqCst) == 0 {
                return previous(info);
            }
            let msg = payload_text(info.payload());
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let thread = std::thread::current()
                .name()
                .map(|n| format!(" (thread '{n}')"))
                .unwrap_or_default();
            if let Ok(mut kept) = PANICS.lock() {
                if kept.len() < KEPT {
                    kept.push(format!("{msg}{place}{thread}"));
                }
            }
            if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
                previous(info);
            }
        }));
    });
}

fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Marks a section during which panics are recorded; clears what an earlier one recorded.
struct Recording;

impl Recording {
    fn start() -> Self {
        install_hook();
        if ACTIVE.fetch_add(1, Ordering::SeqCst) == 0 {
            if let Ok(mut kept) = PANICS.lock() {
                kept.clear();
            }
        }
        Recording
    }

    /// The first panic recorded (the root cause: later ones are threads that re-raise it).
    fn first(&self) -> Option<String> {
        PANICS.lock().ok().and_then(|k| k.first().cloned())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `unit`; its error, or a panic in it or in a thread it started, is returned as an
/// error. `locate`, called only after a panic, may name the input that caused it (e.g. the
/// image whose decoding panics); its answer is added to the message.
pub fn isolate<T>(
    unit: impl FnOnce() -> Result<T>,
    locate: impl FnOnce() -> Option<String>,
) -> Result<T> {
    let recording = Recording::start();
    match catch_unwind(AssertUnwindSafe(unit)) {
        Ok(result) => result,
        Err(payload) => {
            let cause = recording
                .first()
                .unwrap_or_else(|| payload_text(payload.as_ref()));
            drop(recording);
            let place = locate().map(|p| format!(" {p}")).unwrap_or_default();
            Err(anyhow!(
                "internal error: the pipeline panicked{place}: {cause}; this is a bug in odinw, \
                 please report it with the file"
            ))
        }
    }
}

/// The first of `items` for which `step` panics, with the panic's message (errors are not
/// panics and are passed over). Used after a panic to name the input behind it.
pub fn first_panicking<I, T>(
    items: impl IntoIterator<Item = I>,
    mut step: impl FnMut(&I) -> Result<T>,
) -> Option<(I, String)> {
    let recording = Recording::start();
    for item in items {
        match catch_unwind(AssertUnwindSafe(|| step(&item))) {
            Ok(_) => {}
            Err(payload) => {
                let msg = recording
                    .first()
                    .unwrap_or_else(|| payload_text(payload.as_ref()));
                return Some((item, msg));
            }
        }
    }
    None
}

/// Test-only: the task named by `ODINW_TEST_PANIC_TASK` panics on a worker thread when the run
/// loop reaches it, as a pipeline thread would, so tests can check that a panicking task fails
/// alone. Not for users; unset, it does nothing.
pub fn test_panic_hook(task: &str) {
    if std::env::var("ODINW_TEST_PANIC_TASK").is_ok_and(|t| t == task) {
        std::thread::scope(|s| {
            s.spawn(|| panic!("ODINW_TEST_PANIC_TASK: deliberate panic in task {task}"));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The panic record is process-wide (runs isolate one unit at a time); tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_worker_thread_panic_becomes_an_error_with_its_own_message() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let err = isolate(
            || -> Result<()> {
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let v: Vec<u8> = Vec::new();
                        let i = v.len() + 3;
                        v[i]
                    });
                });
                Ok(())
            },
            || Some("on image a.png".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("index out of bounds"), "{err}");
        assert!(err.contains("guard.rs"), "{err}");
        assert!(err.contains("panicked on image a.png: "), "{err}");
        // Errors pass through unchanged, and the next unit starts clean.
        let err = isolate(|| -> Result<()> { Err(anyhow!("plain")) }, || None).unwrap_err();
        assert_eq!(err.to_string(), "plain");
        assert_eq!(isolate(|| Ok(5), || None).unwrap(), 5);
    }

    #[test]
    fn first_panicking_names_the_item() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let found = first_panicking(["a", "b", "c", "d"], |s| {
            if *s == "a" {
                return Err(anyhow!("an error is not a panic"));
            }
            if *s == "b" || *s == "d" {
                panic!("bad {s}");
            }
            Ok(())
        });
        let (item, msg) = found.unwrap();
        assert_eq!(item, "b");
        assert!(msg.contains("bad b"), "{msg}");
        assert!(first_panicking([1, 2], |_| Ok(())).is_none());
    }
}

//! The bounded, seeded fuzz run of `cargo test --test it fuzz_corpus::`: [`run`] feeds a target
//! its seed inputs and then mutants of them ([`mutate`]), one at a time, and records every input
//! that panics, takes more than a second of CPU time, or makes the process's heap grow beyond a
//! limit (measured by the counting allocator [`Counting`], which also refuses any allocation past
//! a hard cap so that a runaway input cannot take the machine's memory). Failing inputs are
//! saved under `target/tmp/fuzz-failures/` to be replayed with `ODINW_FUZZ_REPLAY=FILE`;
//! `ODINW_FUZZ_EXPORT=DIR` writes each target's seeds to `DIR/<target>/` for `cargo fuzz`.
//! The targets themselves are in [`targets`], shared with the `cargo fuzz` crate in `fuzz/`.
//! The counters are process-wide and the integration tests share one process, so each fuzz
//! test runs in a child process of its own ([`take_turn`]); the counting allocator is the test
//! binary's (`tests/it/main.rs`), idle outside an input.
#![allow(dead_code)]
pub mod mutate;
pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// No input may take more CPU time than this (the process's, all threads: the test runs alone
/// in its process, and CPU time, unlike wall time, does not grow when the machine is busy).
pub const MAX_TIME: Duration = Duration::from_secs(1);
/// An input still running after this long is a hang: it is saved and the process aborts.
const HANG: Duration = Duration::from_secs(30);
/// Allocations past this much heap growth during one input are refused (and recorded).
const HARD_CAP: usize = 2 << 30;

/// Heap bytes in use and their peak since the last reset, counted by [`Counting`].
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The most heap allowed now (`usize::MAX` outside an input).
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static LIMIT_HIT: AtomicBool = AtomicBool::new(false);
/// The input being run, and when it started (ns since [`epoch`]; 0 = none), for the
/// allocator's and the watchdog's last words.
static INPUT_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
static STARTED_NS: AtomicU64 = AtomicU64::new(0);
static DUMP_PATH: OnceLock<CString> = OnceLock::new();
static PANIC_MSG: Mutex<Option<String>> = Mutex::new(None);
/// Targets take turns: the heap counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Gives fuzz test `test` (of module `module`, its `module_path!()`) the process: in the
/// parent test binary it runs the test alone in a child process ([`crate::support::alone`]) and
/// returns `None`; in that child it returns the turn, and the caller runs the fuzz targets.
pub fn take_turn(module: &str, test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    crate::support::alone(module, test, &[])
        .then(|| SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The system allocator, counting bytes in use.
pub struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if !reserve(l.size()) {
            return std::ptr::null_mut();
        }
        let p = System.alloc(l);
        if p.is_null() {
            CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if !reserve(l.size()) {
            return std::ptr::null_mut();
        }
        let p = System.alloc_zeroed(l);
        if p.is_null() {
            CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() && !reserve(new - l.size()) {
            return std::ptr::null_mut();
        }
        let q = System.realloc(p, l, new);
        if q.is_null() {
            if new > l.size() {
                CURRENT.fetch_sub(new - l.size(), Ordering::Relaxed);
            }
        } else if new < l.size() {
            CURRENT.fetch_sub(l.size() - new, Ordering::Relaxed);
        }
        q
    }
}

fn reserve(n: usize) -> bool {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    if now > LIMIT.load(Ordering::Relaxed) {
        CURRENT.fetch_sub(n, Ordering::Relaxed);
        if !LIMIT_HIT.swap(true, Ordering::SeqCst) {
            last_words(b"fuzz_corpus: an input asked for more heap than the hard cap (2 GiB)");
        }
        return false;
    }
    PEAK.fetch_max(now, Ordering::Relaxed);
    true
}

/// Writes `msg` and the current input (to [`DUMP_PATH`]) without allocating: the process may
/// be about to abort.
fn last_words(msg: &[u8]) {
    let write = |fd: i32, b: &[u8]| unsafe {
        libc::write(fd, b.as_ptr().cast(), b.len());
    };
    write(2, msg);
    let (ptr, len) = (
        INPUT_PTR.load(Ordering::SeqCst),
        INPUT_LEN.load(Ordering::SeqCst),
    );
    if let (Some(path), false) = (DUMP_PATH.get(), ptr.is_null()) {
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                0o644 as libc::c_uint,
            )
        };
        if fd >= 0 {
            write(fd, unsafe { std::slice::from_raw_parts(ptr, len) });
            unsafe { libc::close(fd) };
            write(2, b"; the input is saved in ");
            write(2, path.as_bytes());
        }
    }
    write(2, b"\n");
}

/// CPU time this process has used, all threads.
fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Where failing inputs are saved.
pub fn failures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures")
}

/// Once per process: a panic hook that keeps the first message of a panic inside an input
/// quietly (others print as usual), the dump path, and a watchdog thread that aborts on a hang.
fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::fs::create_dir_all(failures_dir()).unwrap();
        let dump = failures_dir().join("last-input-before-abort.bin");
        DUMP_PATH
            .set(CString::new(dump.to_str().unwrap()).unwrap())
            .unwrap();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if STARTED_NS.load(Ordering::SeqCst) == 0 {
                // Not inside an input: the test's own assertion, shown as usual.
                return previous(info);
            }
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            if let Ok(mut slot) = PANIC_MSG.lock() {
                slot.get_or_insert(format!("{msg}{at}"));
            }
        }));
        epoch();
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(100));
            let started = STARTED_NS.load(Ordering::SeqCst);
            if started > 0 && epoch().elapsed().as_nanos() as u64 - started > HANG.as_nanos() as u64
            {
                last_words(b"fuzz_corpus: an input has run for 30 s (a hang)");
                std::process::abort();
            }
        });
    });
}

/// What a target's run found.
pub struct Outcome {
    pub target: &'static str,
    /// Inputs run: the seeds and their mutants.
    pub tried: usize,
    /// Inputs the reader accepted (the rest it refused with an error).
    pub accepted: usize,
    pub panics: usize,
    pub slow: usize,
    pub over_memory: usize,
    /// One line per failing input (the first 20), naming its saved copy.
    pub failures: Vec<String>,
    pub slowest: Duration,
    /// The largest heap growth of one input, bytes.
    pub max_growth: usize,
    pub seconds: f64,
}

impl Outcome {
    pub fn clean(&self) -> bool {
        self.panics + self.slow + self.over_memory == 0
    }

    pub fn line(&self) -> String {
        format!(
            "{}: {} inputs, {} accepted ({} panics, {} over {:?} of CPU, {} over the memory limit); \
             slowest {:.3} s, largest heap growth {:.1} MiB, {:.1} s in all",
            self.target,
            self.tried,
            self.accepted,
            self.panics,
            self.slow,
            MAX_TIME,
            self.over_memory,
            self.slowest.as_secs_f64(),
            self.max_growth as f64 / (1 << 20) as f64,
            self.seconds
        )
    }
}

/// How many mutants per target (`ODINW_FUZZ_ITERS`, default `default`) and the RNG seed
/// (`ODINW_FUZZ_SEED`, default 2026).
pub fn budget(default: usize) -> (usize, u64) {
    let iters = std::env::var("ODINW_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let seed = std::env::var("ODINW_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2026);
    (iters, seed)
}

/// Runs `target` on each of `seeds`, then on `iters` mutants of them made by `mutator`
/// (or, with `ODINW_FUZZ_REPLAY=FILE` naming a saved input of this target, on that alone).
/// An input fails when it panics, runs longer than [`MAX_TIME`], or grows the heap by more
/// than `max_heap` bytes.
pub fn run(
    target: &'static str,
    seeds: &[Vec<u8>],
    mutator: &mut mutate::Mutator,
    iters: usize,
    max_heap: usize,
    mut f: impl FnMut(&[u8]) -> bool,
) -> Outcome {
    setup();
    let t0 = Instant::now();
    let mut out = Outcome {
        target,
        tried: 0,
        accepted: 0,
        panics: 0,
        slow: 0,
        over_memory: 0,
        failures: Vec::new(),
        slowest: Duration::ZERO,
        max_growth: 0,
        seconds: 0.0,
    };
    if let Some(dir) = std::env::var_os("ODINW_FUZZ_EXPORT") {
        // The seeds as a starting corpus for `cargo fuzz` (fuzz/README.md).
        let dir = PathBuf::from(dir).join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
    let replay = std::env::var_os("ODINW_FUZZ_REPLAY").map(PathBuf::from);
    let inputs: Box<dyn Iterator<Item = Vec<u8>> + '_> = match &replay {
        Some(p)
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(target)) =>
        {
            Box::new(std::iter::once(std::fs::read(p).unwrap()))
        }
        Some(_) => Box::new(std::iter::empty()),
        None => Box::new(
            seeds
                .iter()
                .cloned()
                .chain((0..iters).map(|_| mutator.mutant(seeds))),
        ),
    };
    for (i, input) in inputs.enumerate() {
        *PANIC_MSG.lock().unwrap() = None;
        INPUT_PTR.store(input.as_ptr() as *mut u8, Ordering::SeqCst);
        INPUT_LEN.store(input.len(), Ordering::SeqCst);
        let base = CURRENT.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        LIMIT_HIT.store(false, Ordering::SeqCst);
        LIMIT.store(base.saturating_add(HARD_CAP), Ordering::SeqCst);
        let start = cpu_time();
        STARTED_NS.store(epoch().elapsed().as_nanos().max(1) as u64, Ordering::SeqCst);
        let result = catch_unwind(AssertUnwindSafe(|| f(&input)));
        STARTED_NS.store(0, Ordering::SeqCst);
        let took = cpu_time().saturating_sub(start);
        LIMIT.store(usize::MAX, Ordering::SeqCst);
        INPUT_PTR.store(std::ptr::null_mut(), Ordering::SeqCst);
        let growth = PEAK.load(Ordering::SeqCst).saturating_sub(base);
        out.tried += 1;
        out.slowest = out.slowest.max(took);
        out.max_growth = out.max_growth.max(growth);
        let mut why = Vec::new();
        if matches!(result, Ok(true)) {
            out.accepted += 1;
        }
        if result.is_err() {
            out.panics += 1;
            let msg = PANIC_MSG.lock().unwrap().take().unwrap_or_default();
            why.push(format!("panicked: {msg}"));
        }
        if took > MAX_TIME {
            out.slow += 1;
            why.push(format!("took {:.2} s of CPU time", took.as_secs_f64()));
        }
        if growth > max_heap || LIMIT_HIT.load(Ordering::SeqCst) {
            out.over_memory += 1;
            why.push(format!(
                "grew the heap by {} MiB (limit {} MiB)",
                growth >> 20,
                max_heap >> 20
            ));
        }
        if !why.is_empty() && out.failures.len() < 20 {
            let file = failures_dir().join(format!("{target}-{i}.bin"));
            std::fs::write(&file, &input).unwrap();
            out.failures.push(format!(
                "input {i} ({} bytes) {}; saved as {} (replay: ODINW_FUZZ_REPLAY={} cargo test \
                 --test it fuzz_corpus::)",
                input.len(),
                why.join(", "),
                file.display(),
                file.display()
            ));
        }
    }
    out.seconds = t0.elapsed().as_secs_f64();
    out
}

//! Shared harness for every demo: argument parsing, seeded jitter, the start gate,
//! calibrated CPU work, percentiles and the one-line JSON result.
//!
//! The harness must stay invisible to a futex profiler, so nothing here blocks on a
//! futex while a workload runs:
//! - [`StartGate`] is an `AtomicBool`; waiters sleep in `read(2)` on a pipe that the
//!   opener closes (no futex, no CPU). A std `Barrier` showed up as a 16 s "contended
//!   site" in the prototype's trace, and a yield/nap poll loop with 768 waiters starved
//!   the spawning thread (+0.2–0.6 s on an idle 2-core machine, seconds under load).
//! - [`Crew`] starts workers one at a time, counts finished workers in an atomic, and
//!   lets them exit one at a time through a pipe turnstile, waiting (polling `/proc`)
//!   until each OS thread is gone before calling `join`: thread start and exit inside
//!   std and glibc take locks that contend when hundreds of threads start or exit at
//!   once, and `pthread_join` finds every thread already exited.
//! - Results travel back through join handles, never through `std::sync::mpsc`.
//! - [`Cpu`] burns a fixed, calibrated iteration count instead of spinning on the wall
//!   clock, so duplicated work stays visible as CPU time under oversubscription.

use std::collections::BTreeMap;
use std::fmt;
use std::hint::black_box;
use std::io::{self, PipeReader, PipeWriter, Read as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LockResult, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

// ---------------------------------------------------------------------------------------
// Demos, variants and their knobs
// ---------------------------------------------------------------------------------------

/// Which upstream bug to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demo {
    Forwarder,
    Switch,
    Kmutex,
    ContainerStore,
    LayerStore,
}

impl Demo {
    pub const ALL: [Demo; 5] = [
        Demo::Forwarder,
        Demo::Switch,
        Demo::Kmutex,
        Demo::ContainerStore,
        Demo::LayerStore,
    ];

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn spec(self) -> &'static DemoSpec {
        match self {
            Demo::Forwarder => &crate::forwarder::SPEC,
            Demo::Switch => &crate::switch::SPEC,
            Demo::Kmutex => &crate::kmutex::SPEC,
            Demo::ContainerStore => &crate::container_store::SPEC,
            Demo::LayerStore => &crate::layer_store::SPEC,
        }
    }

    fn from_arg(arg: &str) -> Option<Demo> {
        Demo::ALL.into_iter().find(|d| d.name() == arg)
    }
}

/// The upstream code before or after the fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Before,
    After,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Before => "before",
            Variant::After => "after",
        }
    }

    fn from_arg(arg: &str) -> Option<Variant> {
        match arg {
            "before" => Some(Variant::Before),
            "after" => Some(Variant::After),
            _ => None,
        }
    }
}

/// One integer command-line knob (`--name VALUE`). Every knob is a non-negative
/// integer: counts, or durations whose unit is part of the name.
#[derive(Debug)]
pub struct Knob {
    pub name: &'static str,
    pub default: u64,
    /// Smallest accepted value (1 for counts and rates that divide).
    pub min: u64,
    pub help: &'static str,
}

/// Static description of a demo, used for parsing and for `--help`.
#[derive(Debug)]
pub struct DemoSpec {
    pub name: &'static str,
    pub about: &'static str,
    /// Knob that `--threads` is an alias for (the demo's main thread count).
    pub threads_knob: &'static str,
    /// Whether `--duration-ms` applies (time-based demos only).
    pub timed: bool,
    /// Demo-specific knobs, including the one named by `threads_knob` and, for timed
    /// demos, `duration-ms`.
    pub knobs: &'static [Knob],
    /// Arguments the profiler's tests use for a quick run.
    pub short_args: &'static str,
}

/// Knobs every demo accepts.
pub const COMMON_KNOBS: [Knob; 2] = [
    Knob {
        name: "seed",
        default: 1,
        min: 0,
        help: "xorshift seed for jitter",
    },
    Knob {
        name: "linger-ms",
        default: 0,
        min: 0,
        help: "sleep this long after the workload, before printing (lets a profiler symbolize)",
    },
];

/// Resolved knob values (defaults filled in) for one run.
#[derive(Clone, Debug)]
pub struct Params {
    values: BTreeMap<&'static str, u64>,
}

impl Params {
    /// Every declared knob at its default.
    pub fn defaults(spec: &DemoSpec) -> Params {
        let values = spec
            .knobs
            .iter()
            .chain(COMMON_KNOBS.iter())
            .map(|k| (k.name, k.default))
            .collect();
        Params { values }
    }

    /// Value of a declared knob. Panics on an undeclared name: that is a typo in a demo
    /// module, caught by the per-demo unit tests.
    pub fn get(&self, name: &str) -> u64 {
        match self.values.get(name) {
            Some(v) => *v,
            None => panic!("knob '{name}' is not declared in the demo's spec"),
        }
    }

    /// [`Params::get`] as a `usize` count.
    pub fn count(&self, name: &str) -> usize {
        usize::try_from(self.get(name)).unwrap_or(usize::MAX)
    }

    pub fn seed(&self) -> u64 {
        self.get("seed")
    }

    /// Overrides a declared knob (used by tests to shrink a workload).
    #[cfg(test)]
    pub fn set(&mut self, name: &'static str, value: u64) {
        assert!(self.values.contains_key(name), "unknown knob {name}");
        self.values.insert(name, value);
    }

    /// JSON object of every knob, `-` turned into `_` in the keys.
    pub fn to_json(&self, spec: &DemoSpec) -> serde_json::Map<String, serde_json::Value> {
        let mut map: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.replace('-', "_"), (*v).into()))
            .collect();
        map.insert("threads".into(), self.get(spec.threads_knob).into());
        map
    }
}

/// A parsed command line.
#[derive(Debug)]
pub enum Command {
    Help,
    Run {
        demo: Demo,
        variant: Variant,
        params: Params,
    },
}

/// A command-line error; `main` prints it on one line and exits with status 2.
#[derive(Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

/// Parses `demo variant [--knob VALUE | --knob=VALUE]...` (program name excluded).
/// `--help`/`-h` anywhere wins over everything else.
pub fn parse_args(args: &[String]) -> Result<Command, ArgError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    let err = |msg: String| Err(ArgError(msg));
    let Some(demo_arg) = args.first() else {
        let names: Vec<&str> = Demo::ALL.iter().map(|d| d.name()).collect();
        return err(format!(
            "missing demo (expected one of: {})",
            names.join(", ")
        ));
    };
    let Some(demo) = Demo::from_arg(demo_arg) else {
        return err(format!("unknown demo '{demo_arg}'"));
    };
    let Some(variant_arg) = args.get(1) else {
        return err(format!(
            "missing variant for '{demo_arg}' (expected before or after)"
        ));
    };
    let Some(variant) = Variant::from_arg(variant_arg) else {
        return err(format!(
            "unknown variant '{variant_arg}' (expected before or after)"
        ));
    };
    let spec = demo.spec();
    let mut params = Params::defaults(spec);
    let mut seen: Vec<&'static str> = Vec::new();
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return err(format!("unexpected argument '{arg}'"));
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        if name == "duration-ms" && !spec.timed {
            return err(format!(
                "'--duration-ms' does not apply to {} (its workload is count-based)",
                spec.name
            ));
        }
        // Messages name the flag as given; `--threads` resolves to the demo's count.
        let knob_name = if name == "threads" {
            spec.threads_knob
        } else {
            name
        };
        let Some(knob) = spec
            .knobs
            .iter()
            .chain(COMMON_KNOBS.iter())
            .find(|k| k.name == knob_name)
        else {
            return err(format!("unknown option '--{name}' for {}", spec.name));
        };
        let Some(value) = inline_value.or_else(|| rest.next().cloned()) else {
            return err(format!("'--{name}' needs a value"));
        };
        let Ok(value) = value.parse::<u64>() else {
            return err(format!(
                "'--{name}' expects a non-negative integer, got '{value}'"
            ));
        };
        if value < knob.min {
            return err(format!(
                "'--{name}' must be at least {}, got {value}",
                knob.min
            ));
        }
        if seen.contains(&knob.name) {
            return err(format!(
                "'--{name}' given twice (--threads is '--{}')",
                spec.threads_knob
            ));
        }
        seen.push(knob.name);
        params.values.insert(knob.name, value);
    }
    Ok(Command::Run {
        demo,
        variant,
        params,
    })
}

/// The `--help` text: usage, then every demo with its knobs and defaults.
pub fn help_text() -> String {
    use fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "demo-targets: before/after reproductions of lock-contention bugs for lockprof\n\n\
         USAGE:\n  demo-targets <DEMO> <before|after> [--threads N] [--duration-ms D] \
         [--seed S] [--linger-ms L] [demo knobs...]\n\n\
         Prints one JSON line: \
         {{\"demo\",\"variant\",\"params\",\"headline\",\"metrics\",\"wall_s\"}}.\n\
         Knobs take integer values, as '--knob V' or '--knob=V'. Bad arguments exit with 2.\n\n\
         COMMON:"
    );
    let _ = writeln!(
        s,
        "  {:<26} alias for the demo's main thread count (below)",
        "--threads N"
    );
    for k in &COMMON_KNOBS {
        let _ = writeln!(
            s,
            "  {:<26} {} [default {}]",
            format!("--{} N", k.name),
            k.help,
            k.default
        );
    }
    for demo in Demo::ALL {
        let spec = demo.spec();
        let _ = writeln!(s, "\n{}: {}", spec.name, spec.about);
        let _ = writeln!(s, "  --threads = --{}", spec.threads_knob);
        for k in spec.knobs {
            let _ = writeln!(
                s,
                "  {:<26} {} [default {}]",
                format!("--{} N", k.name),
                k.help,
                k.default
            );
        }
        let _ = writeln!(s, "  short run: {}", spec.short_args);
    }
    s
}

// ---------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------

/// Takes the guard out of a lock result even if another thread panicked while holding
/// the lock. A panicking worker already fails the run at join time, so the data behind a
/// poisoned lock is only ever read for counters; recovering keeps the lock call on one
/// short line (`let g = unpoison(self.m.lock()); // LOCK-SITE: ...`) without a panic path.
#[inline]
pub fn unpoison<G>(result: LockResult<G>) -> G {
    result.unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// Seeded jitter
// ---------------------------------------------------------------------------------------

/// xorshift64* generator: tiny, deterministic for a seed, good enough for jitter.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Generator for `stream` (a thread index) under `seed`; streams are decorrelated by
    /// a splitmix64 step so thread 0 and thread 1 do not share a sequence.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // xorshift has an all-zero fixed point.
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (Go's `rand.Intn(n)`); 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            // Multiply-shift keeps the high bits, which are the good ones in xorshift*.
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }

    /// `base` scaled uniformly into `[base/2, 3·base/2)`: mean `base`, some jitter.
    pub fn jitter(&mut self, base: u64) -> u64 {
        base / 2 + self.below(base.max(1))
    }
}

// ---------------------------------------------------------------------------------------
// Start gate and worker crew
// ---------------------------------------------------------------------------------------

/// Start line for workers, released once by the main thread (through [`GateOpener`])
/// after every worker is spawned.
///
/// The `AtomicBool` is the gate; the pipe is only where waiters sleep. Waiters block
/// in `read(2)` on a pipe nobody writes to, and opening the gate closes the write end,
/// which wakes every reader with EOF. That costs no CPU while hundreds of threads wait
/// (768 threads polling with naps starved the thread spawning them) and never touches
/// a futex, so it stays out of a lock profile.
#[derive(Debug)]
pub struct StartGate {
    open: AtomicBool,
    parked_on: PipeReader,
}

/// The main thread's handle on a [`StartGate`]; dropping it also opens the gate.
#[derive(Debug)]
pub struct GateOpener {
    gate: Arc<StartGate>,
    write_end: PipeWriter,
}

impl StartGate {
    pub fn new() -> Result<(Arc<StartGate>, GateOpener), RunError> {
        let (parked_on, write_end) = io::pipe().map_err(RunError::Gate)?;
        let gate = Arc::new(StartGate {
            open: AtomicBool::new(false),
            parked_on,
        });
        let opener = GateOpener {
            gate: Arc::clone(&gate),
            write_end,
        };
        Ok((gate, opener))
    }

    /// Blocks until the gate opens, then lets the thread through.
    pub fn pass(&self) {
        let mut byte = [0_u8; 1];
        while !self.open.load(Ordering::Acquire) {
            match (&self.parked_on).read(&mut byte) {
                // EOF: the opener closed the write end (opened, or dropped on an error).
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Should not happen; degrade to polling rather than spin.
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

impl GateOpener {
    pub fn open(self) {
        self.gate.open.store(true, Ordering::Release);
        drop(self.write_end);
    }
}

/// Run-wide stop flag for time-based demos.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicBool);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Errors that end a run after argument parsing succeeded.
#[derive(Debug)]
pub enum RunError {
    /// A start-gate or exit-turnstile pipe could not be created (out of file descriptors).
    Gate(io::Error),
    /// The OS refused a thread (too many threads or not enough memory for stacks).
    Spawn { name: String, source: io::Error },
    /// A worker panicked; its result is lost.
    Panicked { name: String },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Gate(source) => write!(f, "create a harness pipe: {source}"),
            RunError::Spawn { name, source } => write!(f, "spawn thread '{name}': {source}"),
            RunError::Panicked { name } => write!(f, "thread '{name}' panicked"),
        }
    }
}

impl std::error::Error for RunError {}

/// Named worker threads spawned and joined by the main thread, kept out of a lock
/// profile. Thread start and exit take locks inside std and glibc (std's global
/// stack-overflow thread-info mutex, malloc arena locks, ld.so's TLS-destructor lock);
/// with hundreds of threads starting or exiting at once on two cores, a thread
/// preempted while holding one parks the others for up to a scheduling slice, and the
/// traced forwarder runs showed such sites (as libc's `start_thread`) at 60–170 ms. So:
///
/// 1. [`Crew::spawn`] returns only once the new thread is through std's start-up (its
///    closure first records the kernel thread id): one thread starts at a time, for
///    ~20 µs each.
/// 2. Workers count themselves out in an atomic when their closure ends (even when they
///    panic), and [`Crew::join`] polls that count with short sleeps, so the main thread
///    never parks in `pthread_join` for the run (a bare-libc site holding the whole
///    run's wall time).
/// 3. A finished worker then waits in `read(2)` on the crew's turnstile pipe (no futex,
///    like [`StartGate`]), and `join` lets them out one at a time: it writes one byte,
///    learns which thread took it, and polls until `/proc/self/task/<tid>` is gone. The
///    kernel clears the thread's `CLONE_CHILD_CLEARTID` word before it unhashes the
///    task, so the final `pthread_join` calls return without waiting.
pub struct Crew<T> {
    workers: Vec<(String, JoinHandle<T>)>,
    running: Arc<AtomicUsize>,
    turnstile: Arc<Turnstile>,
    turns: PipeWriter,
}

/// Decrements the running count when a worker's closure ends, panicking or not.
struct CountOut(Arc<AtomicUsize>);

impl Drop for CountOut {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where finished workers wait for their turn to exit (see [`Crew`]).
struct Turnstile {
    /// One byte per turn; EOF (the crew was dropped without `join`) lets everyone out.
    turns: PipeReader,
    /// Workers that will ask for a turn (finished without panicking).
    queued: AtomicUsize,
    /// Kernel thread id of the worker that took the last turn; 0 once `join` saw it.
    exiting: AtomicU32,
}

impl Turnstile {
    fn wait_turn(&self, tid: u32) {
        let mut byte = [0_u8; 1];
        loop {
            match (&self.turns).read(&mut byte) {
                Ok(0) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A byte is this thread's turn. Another error should not happen; announce
                // the exit anyway so `join` does not wait for a turn never taken.
                Ok(_) | Err(_) => {
                    self.exiting.store(tid.max(1), Ordering::Release);
                    return;
                }
            }
        }
    }
}

// SAFETY: `gettid(2)` (glibc ≥ 2.30) takes no arguments, cannot fail and touches no
// memory, so calling it is safe.
unsafe extern "C" {
    safe fn gettid() -> i32;
}

/// The calling thread's kernel thread id.
fn current_tid() -> u32 {
    u32::try_from(gettid()).unwrap_or(0)
}

impl<T: Send + 'static> Crew<T> {
    pub fn new() -> Result<Crew<T>, RunError> {
        let (turns_rx, turns) = io::pipe().map_err(RunError::Gate)?;
        Ok(Crew {
            workers: Vec::new(),
            running: Arc::new(AtomicUsize::new(0)),
            turnstile: Arc::new(Turnstile {
                turns: turns_rx,
                queued: AtomicUsize::new(0),
                exiting: AtomicU32::new(0),
            }),
            turns,
        })
    }

    /// Spawns `f` on a thread called `name` with the given stack size (0 = std default),
    /// and returns once the thread runs.
    pub fn spawn<F>(&mut self, name: String, stack: usize, f: F) -> Result<(), RunError>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let mut builder = thread::Builder::new().name(name.clone());
        if stack > 0 {
            builder = builder.stack_size(stack);
        }
        self.running.fetch_add(1, Ordering::AcqRel);
        let count_out = CountOut(Arc::clone(&self.running));
        let turnstile = Arc::clone(&self.turnstile);
        let started = Arc::new(AtomicBool::new(false));
        let started_flag = Arc::clone(&started);
        let spawned = builder.spawn(move || {
            let tid = current_tid();
            started_flag.store(true, Ordering::Release);
            drop(started_flag);
            let result = f();
            // Queue before counting out: once the count is 0, `queued` is final.
            turnstile.queued.fetch_add(1, Ordering::AcqRel);
            drop(count_out);
            turnstile.wait_turn(tid);
            result
        });
        match spawned {
            Ok(handle) => {
                // One thread in std's start-up at a time: see the type docs.
                while !started.load(Ordering::Acquire) && !handle.is_finished() {
                    thread::yield_now();
                }
                self.workers.push((name, handle));
                Ok(())
            }
            // The closure (and its CountOut) was dropped, so the count is already right.
            Err(source) => Err(RunError::Spawn { name, source }),
        }
    }

    /// Waits for every worker (polling, see the type docs), lets them exit one at a
    /// time and returns their results in spawn order.
    pub fn join(mut self) -> Result<Vec<T>, RunError> {
        while self.running.load(Ordering::Acquire) > 0 {
            thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..self.turnstile.queued.load(Ordering::Acquire) {
            if self.turns.write_all(&[1]).is_err() {
                break;
            }
            let tid = loop {
                match self.turnstile.exiting.swap(0, Ordering::AcqRel) {
                    0 => thread::yield_now(),
                    tid => break tid,
                }
            };
            // Without /proc the path never exists and `join` below may park briefly.
            let task = format!("/proc/self/task/{tid}");
            while std::path::Path::new(&task).exists() {
                thread::yield_now();
            }
        }
        self.workers
            .into_iter()
            .map(|(name, handle)| handle.join().map_err(|_| RunError::Panicked { name }))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Calibrated CPU work
// ---------------------------------------------------------------------------------------

/// CPU burner with a fixed iteration count per millisecond, measured once at start-up
/// on an idle machine. Under oversubscription the same work simply takes longer, which
/// is what makes duplicated work (kmutex's redundant unpacks) cost real CPU time.
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    iters_per_ms: u64,
}

impl Cpu {
    /// Times a fixed probe a few times and keeps the fastest run (the one least
    /// disturbed by preemption). Takes roughly 10–20 ms.
    pub fn calibrate() -> Cpu {
        const PROBE: u64 = 500_000;
        let mut best = Duration::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            black_box(spin(PROBE));
            best = best.min(t.elapsed());
        }
        let ns = best.as_nanos().max(1);
        let iters_per_ms = (u128::from(PROBE) * 1_000_000 / ns).max(1);
        Cpu {
            iters_per_ms: u64::try_from(iters_per_ms).unwrap_or(u64::MAX),
        }
    }

    /// A fixed rate, for tests that must not depend on the machine.
    #[cfg(test)]
    pub fn fixed(iters_per_ms: u64) -> Cpu {
        Cpu { iters_per_ms }
    }

    pub fn iters_per_ms(self) -> u64 {
        self.iters_per_ms
    }

    /// Burns about `ms` milliseconds of CPU (as calibrated).
    pub fn work_ms(self, ms: u64) {
        black_box(spin(self.iters_per_ms.saturating_mul(ms)));
    }

    /// Burns about `ns` nanoseconds of CPU (as calibrated).
    pub fn work_ns(self, ns: u64) {
        let iters = u128::from(self.iters_per_ms) * u128::from(ns) / 1_000_000;
        black_box(spin(u64::try_from(iters).unwrap_or(u64::MAX)));
    }
}

/// A serial dependency chain the optimiser cannot vectorise or fold.
#[inline(never)]
fn spin(iters: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..iters {
        x = (x.rotate_left(7) ^ black_box(i)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    x
}

// ---------------------------------------------------------------------------------------
// Statistics and atomics
// ---------------------------------------------------------------------------------------

/// Nearest-rank percentile (`q` in 0..=100) of `values`, which need not be sorted.
/// Returns 0 for an empty slice so metrics stay plain numbers in the JSON.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Coefficient of variation (population stddev / mean); 0 for empty or zero-mean input.
pub fn cv(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    var.sqrt() / mean
}

/// Relaxed counter shorthand: the counters are read after every worker has been joined.
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Rounds to 3 decimals so the JSON line stays readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// The number a demo is judged by.
#[derive(Debug, Serialize)]
pub struct Headline {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub lower_is_better: bool,
}

/// What a demo returns: headline, secondary metrics and the workload's wall time.
#[derive(Debug)]
pub struct Outcome {
    pub headline: Headline,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    pub wall_s: f64,
}

/// Builds the `metrics` object; the headline is added to it by [`Report::new`].
#[derive(Debug, Default)]
pub struct Metrics(serde_json::Map<String, serde_json::Value>);

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    pub fn put(&mut self, key: &str, value: impl Into<serde_json::Value>) -> &mut Metrics {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// A float rounded to 3 decimals.
    pub fn num(&mut self, key: &str, value: f64) -> &mut Metrics {
        self.put(key, round3(value))
    }

    pub fn into_map(self) -> serde_json::Map<String, serde_json::Value> {
        self.0
    }
}

/// The single JSON line printed on stdout, fields in the documented order.
#[derive(Debug, Serialize)]
pub struct Report {
    pub demo: &'static str,
    pub variant: &'static str,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub headline: Headline,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    pub wall_s: f64,
}

impl Report {
    pub fn new(demo: Demo, variant: Variant, params: &Params, outcome: Outcome) -> Report {
        let mut metrics = outcome.metrics;
        metrics.insert(
            outcome.headline.name.to_owned(),
            round3(outcome.headline.value).into(),
        );
        Report {
            demo: demo.name(),
            variant: variant.name(),
            params: params.to_json(demo.spec()),
            headline: Headline {
                value: round3(outcome.headline.value),
                ..outcome.headline
            },
            metrics,
            wall_s: round3(outcome.wall_s),
        }
    }

    pub fn to_json_line(&self) -> String {
        // Serialising plain maps, strings and finite floats cannot fail; a NaN would
        // become `null` rather than an error.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn run_params(s: &str) -> (Demo, Variant, Params) {
        match parse_args(&argv(s)) {
            Ok(Command::Run {
                demo,
                variant,
                params,
            }) => (demo, variant, params),
            other => panic!("expected a run for '{s}', got {other:?}"),
        }
    }

    #[test]
    fn parse_fills_defaults() {
        let (demo, variant, p) = run_params("forwarder before");
        assert_eq!(demo, Demo::Forwarder);
        assert_eq!(variant, Variant::Before);
        assert_eq!(p.get("builds"), 768);
        assert_eq!(p.get("calls"), 16);
        assert_eq!(p.get("timeout-ms"), 3000);
        assert_eq!(p.seed(), 1);
        assert_eq!(p.get("linger-ms"), 0);
    }

    #[test]
    fn parse_threads_is_an_alias_for_the_main_count() {
        let (_, _, p) = run_params("forwarder after --threads 12 --calls=3 --seed 9");
        assert_eq!(p.get("builds"), 12);
        assert_eq!(p.get("calls"), 3);
        assert_eq!(p.seed(), 9);
        let (_, _, p) = run_params("kmutex before --threads 4");
        assert_eq!(p.get("pulls"), 4);
        let (_, _, p) = run_params("switch after --threads 2 --duration-ms 100");
        assert_eq!(p.get("tx-streams"), 2);
        assert_eq!(p.get("duration-ms"), 100);
        let json = p.to_json(Demo::Switch.spec());
        assert_eq!(json["threads"], 2);
        assert_eq!(json["tx_streams"], 2);
    }

    #[test]
    fn parse_help_wins() {
        assert!(matches!(parse_args(&argv("--help")), Ok(Command::Help)));
        assert!(matches!(parse_args(&argv("bogus -h")), Ok(Command::Help)));
        let help = help_text();
        for demo in Demo::ALL {
            assert!(help.contains(&format!("\n{}: ", demo.name())));
        }
        assert!(help.contains("--reg-delay-us"));
    }

    #[test]
    fn parse_rejects_bad_arguments() {
        let bad = [
            ("", "missing demo"),
            ("nope before", "unknown demo"),
            ("switch", "missing variant"),
            ("switch during", "unknown variant"),
            ("switch before --bogus 1", "unknown option"),
            ("switch before --drain-ns", "needs a value"),
            ("switch before --drain-ns -5", "non-negative integer"),
            ("switch before --drain-ns 1.5", "non-negative integer"),
            ("switch before --drain-ns 0", "at least 1"),
            ("switch before --threads 2 --tx-streams 3", "given twice"),
            ("kmutex after --threads 0", "'--threads' must be at least 1"),
            ("switch before stray", "unexpected argument"),
            ("kmutex before --duration-ms 10", "does not apply"),
            ("forwarder before --linger-ms", "needs a value"),
        ];
        for (args, want) in bad {
            match parse_args(&argv(args)) {
                Err(ArgError(msg)) => {
                    assert!(msg.contains(want), "'{args}': '{msg}' lacks '{want}'");
                    assert!(!msg.contains('\n'), "error must be one line");
                }
                Ok(c) => panic!("'{args}' parsed as {c:?}"),
            }
        }
    }

    #[test]
    fn rng_is_deterministic_per_seed_and_stream() {
        let draw = |seed, stream| {
            let mut rng = Rng::new(seed, stream);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<u64>>()
        };
        assert_eq!(draw(1, 0), draw(1, 0));
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(1, 0), draw(2, 0));
        assert!(
            draw(0, 0).iter().all(|x| *x != 0),
            "seed 0 is not a fixed point"
        );
    }

    #[test]
    fn rng_below_and_jitter_stay_in_range() {
        let mut r = Rng::new(7, 3);
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let v = r.below(10);
            assert!(v < 10);
            seen[v as usize] = true;
            let j = r.jitter(200);
            assert!((100..300).contains(&j));
        }
        assert!(seen.iter().all(|s| *s), "every bucket is hit");
        assert_eq!(r.below(0), 0);
    }

    #[test]
    #[expect(
        clippy::float_cmp,
        reason = "nearest rank returns an input element exactly"
    )]
    fn percentile_uses_nearest_rank() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "0 is returned exactly for these inputs")]
    fn cv_of_equal_values_is_zero() {
        assert_eq!(cv(&[5.0, 5.0, 5.0]), 0.0);
        assert!((cv(&[1.0, 3.0]) - 0.5).abs() < 1e-12);
        assert_eq!(cv(&[]), 0.0);
    }

    #[test]
    fn cpu_work_scales_with_the_iteration_count() {
        let cpu = Cpu::calibrate();
        assert!(cpu.iters_per_ms() > 1000);
        let t = Instant::now();
        Cpu::fixed(1).work_ms(5);
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "5 iterations are instant"
        );
    }

    #[test]
    fn crew_returns_results_in_spawn_order() {
        let (gate, opener) = StartGate::new().expect("a pipe");
        let mut crew = Crew::new().expect("a pipe");
        for i in 0..4_u64 {
            let gate = Arc::clone(&gate);
            crew.spawn(format!("t-{i}"), 64 * 1024, move || {
                gate.pass();
                i * 10
            })
            .expect("spawn a small thread");
        }
        opener.open();
        assert_eq!(crew.join().expect("no panics"), vec![0, 10, 20, 30]);
    }

    #[test]
    fn crew_join_returns_after_the_os_threads_are_gone() {
        let mut crew = Crew::new().expect("a pipe");
        for i in 0..3 {
            crew.spawn(format!("t-{i}"), 64 * 1024, current_tid)
                .expect("spawn a small thread");
        }
        for tid in crew.join().expect("no panics") {
            assert!(tid > 0);
            let task = format!("/proc/self/task/{tid}");
            assert!(
                !std::path::Path::new(&task).exists(),
                "{task} outlived join"
            );
        }
    }

    #[test]
    fn report_serialises_fields_in_order() {
        let (demo, variant, params) = run_params("layer-store after");
        let mut m = Metrics::new();
        m.put("n", 3);
        let report = Report::new(
            demo,
            variant,
            &params,
            Outcome {
                headline: Headline {
                    name: "list_p99_ms",
                    value: 1.234_56,
                    unit: "ms",
                    lower_is_better: true,
                },
                metrics: m.into_map(),
                wall_s: 2.0,
            },
        );
        let line = report.to_json_line();
        assert!(!line.contains('\n'));
        let keys = [
            "\"demo\"",
            "\"variant\"",
            "\"params\"",
            "\"headline\"",
            "\"metrics\"",
            "\"wall_s\"",
        ];
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| line.find(k).expect("key present"))
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["headline"]["value"], 1.235);
        assert_eq!(v["metrics"]["list_p99_ms"], 1.235);
        assert_eq!(v["params"]["threads"], v["params"]["listers"]);
    }

    /// Every `LOCK-SITE:` tag is unique and sits on the line of the lock call, so the
    /// profiler's tests can grep a tag to get the line a stack frame must point at.
    #[test]
    fn lock_site_tags_are_unique_and_on_lock_lines() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("read source");
            for (i, line) in text.lines().enumerate() {
                let Some((code, tag)) = line.split_once("// LOCK-SITE: ") else {
                    continue;
                };
                let tag = tag.trim();
                // Skip doc examples and this test, which mention the marker in prose.
                if code.trim_start().starts_with("//") || tag.is_empty() || tag.contains(' ') {
                    continue;
                }
                let at = format!("{}:{}", path.display(), i + 1);
                assert!(
                    [".lock()", ".read()", ".write()", ".wait"]
                        .iter()
                        .any(|call| code.contains(call)),
                    "{at}: tag {tag} is not on a lock line: {line}"
                );
                assert!(line.len() <= 100, "{at}: keep lock-site lines ≤ 100 chars");
                if let Some(prev) = tags.insert(tag.to_owned(), at.clone()) {
                    panic!("tag {tag} used twice: {prev} and {at}");
                }
            }
        }
        assert!(
            files >= 7,
            "main, common and five demos: scanned {files} files"
        );
        for required in [
            "fwd.before.map_read",
            "fwd.before.cond_wait",
            "fwd.before.map_write",
            "fwd.after.slot_wait",
            "fwd.after.map_lock",
            "sw.before.write_lock",
            "sw.conn_lock.connect",
            "sw.conn_lock.disconnect",
            "sw.after.write_lock",
            "km.before.db_lock",
            "km.commit.db_lock",
            "km.after.key_wait",
            "km.after.map_lock",
            "cs.before.container_lock",
            "cs.slow_op.container_lock",
            "cs.after.snapshot_lock",
            "ls.before.write_lock",
            "ls.after.read_lock",
            "ls.push.read_lock",
        ] {
            assert!(tags.contains_key(required), "missing tag {required}");
        }
    }
}

//! `futex-storm`: the load for lockprof's overhead benchmark (`cargo xtask bench
//! overhead`). `--threads` workers hammer one `std::sync::Mutex` with a tiny critical
//! section for `--duration-ms`, counting acquisitions, so that the process makes futex
//! calls as fast as the machine can switch threads and the profiler's per-event cost
//! shows up in throughput.
//!
//! ```text
//! futex-storm [--threads N] [--duration-ms D] [--start-delay-ms S]
//!             [--yield-every K] [--cs-iters I] [--gap-iters G]
//! ```
//!
//! Prints one JSON line: `{"ops","ops_per_s","threads","duration_s"}`.
//!
//! # Why the holder yields
//!
//! std's futex mutex spins ~100 `pause`s (about 4.5 µs on the 2-vCPU EPYC this was
//! tuned on) before it sleeps, and barging lets the unlocking thread take the lock again
//! at once. With a purely CPU-bound critical section the program is bistable: it either
//! storms (hundreds of thousands of `FUTEX_WAIT`s that mostly return EAGAIN) or settles
//! into two threads trading the lock by spinning while the rest sleep, at ~1k
//! waits/s, and which one you get changes from run to run. A benchmark needs a load that
//! repeats, so every `--yield-every`th critical section ends with `sched_yield`: the
//! holder leaves the CPU holding the lock, the other runnable threads on that core find
//! it taken, and they really block in `FUTEX_WAIT`. Measured here (unprofiled, `perf
//! stat`): 8 threads, yield every 2nd → ~90k `FUTEX_WAIT`/s and ~80k wakes/s, stable
//! across runs; every setting tried (3–128 threads, yielding every 1–4) peaked at
//! ~120k/s, which is this VM's context-switch ceiling (`perf bench sched pipe`: ~9 µs per
//! round trip). `--yield-every 0` gives the pure spin/barging storm.
//!
//! The harness itself stays off the futex: workers start on an `AtomicBool` gate, the
//! main thread sleeps (nanosleep) for the duration and polls an atomic count of finished
//! workers before joining.
#[path = "../flags.rs"]
mod flags;

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

struct Args {
    threads: usize,
    duration_ms: u64,
    start_delay_ms: u64,
    load: Load,
}

/// What each worker does per acquisition.
#[derive(Clone, Copy)]
struct Load {
    /// End every `yield_every`th critical section with `sched_yield` (0: never).
    yield_every: u64,
    /// Work inside the critical section (iterations of a trivial loop).
    cs_iters: u32,
    /// Work between two acquisitions, outside the lock.
    gap_iters: u32,
}

const USAGE: &str = "usage: futex-storm [--threads N (8)] [--duration-ms D (3000)] \
[--start-delay-ms S (0)] [--yield-every K (2)] [--cs-iters I (0)] [--gap-iters G (0)]";

fn parse(argv: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args {
        threads: 8,
        duration_ms: 3000,
        start_delay_ms: 0,
        load: Load {
            yield_every: 2,
            cs_iters: 0,
            gap_iters: 0,
        },
    };
    let Some(pairs) = flags::pairs(argv)? else {
        return Ok(None);
    };
    for (flag, value) in pairs {
        match flag {
            "--threads" => a.threads = flags::int(flag, value)?,
            "--duration-ms" => a.duration_ms = flags::int(flag, value)?,
            "--start-delay-ms" => a.start_delay_ms = flags::int(flag, value)?,
            "--yield-every" => a.load.yield_every = flags::int(flag, value)?,
            "--cs-iters" => a.load.cs_iters = flags::int(flag, value)?,
            "--gap-iters" => a.load.gap_iters = flags::int(flag, value)?,
            _ => return Err(format!("unknown flag '{flag}'")),
        }
    }
    if a.threads == 0 {
        return Err("'--threads' must be at least 1".into());
    }
    Ok(Some(a))
}

static LOCK: Mutex<u64> = Mutex::new(0);
static GO: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);
/// Workers that have returned; the main thread polls it instead of parking in `join`.
static FINISHED: AtomicUsize = AtomicUsize::new(0);

/// A few iterations of work the optimizer cannot remove.
#[inline(never)]
fn spin(iters: u32) {
    for i in 0..iters {
        black_box(i);
    }
}

/// One acquisition of the shared lock; with `yield_cpu`, leave the CPU holding it.
#[inline(never)]
fn critical_section(cs_iters: u32, yield_cpu: bool) {
    let mut guard = LOCK.lock().unwrap_or_else(PoisonError::into_inner); // LOCK-SITE: storm.lock
    *guard += 1;
    spin(cs_iters);
    if yield_cpu {
        thread::yield_now();
    }
}

/// Worker loop: wait for the gate, then acquire until told to stop; returns the count.
#[inline(never)]
fn worker(load: Load) -> u64 {
    while !GO.load(Ordering::Acquire) {
        thread::yield_now();
    }
    let mut ops = 0u64;
    while !STOP.load(Ordering::Relaxed) {
        let yield_cpu = load.yield_every > 0 && ops.is_multiple_of(load.yield_every);
        critical_section(load.cs_iters, yield_cpu);
        spin(load.gap_iters);
        ops += 1;
    }
    FINISHED.fetch_add(1, Ordering::Release);
    ops
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match flags::or_exit("futex-storm", USAGE, parse(&argv)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // Lets a profiler attach with -p before the storm starts.
    if args.start_delay_ms > 0 {
        thread::sleep(Duration::from_millis(args.start_delay_ms));
    }
    let mut handles = Vec::with_capacity(args.threads);
    for i in 0..args.threads {
        let load = args.load;
        let spawned = thread::Builder::new()
            .name(format!("storm-{i}"))
            .spawn(move || worker(load));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                eprintln!("futex-storm: spawn worker {i}: {e}");
                STOP.store(true, Ordering::Relaxed);
                GO.store(true, Ordering::Release);
                return ExitCode::FAILURE;
            }
        }
    }
    let start = Instant::now();
    GO.store(true, Ordering::Release);
    thread::sleep(Duration::from_millis(args.duration_ms));
    STOP.store(true, Ordering::Relaxed);
    while FINISHED.load(Ordering::Acquire) < handles.len() {
        thread::sleep(Duration::from_millis(1));
    }
    // Workers count the few acquisitions made after STOP too, so time them as well.
    let elapsed = start.elapsed().as_secs_f64();
    let mut ops = 0u64;
    for h in handles {
        let Ok(n) = h.join() else {
            eprintln!("futex-storm: a worker panicked");
            return ExitCode::FAILURE;
        };
        ops += n;
    }
    let ops_per_s = if elapsed > 0.0 {
        ops as f64 / elapsed
    } else {
        0.0
    };
    println!(
        "{{\"ops\":{ops},\"ops_per_s\":{ops_per_s:.0},\"threads\":{},\"duration_s\":{elapsed:.3}}}",
        args.threads
    );
    ExitCode::SUCCESS
}

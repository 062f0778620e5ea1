//! A small contended program for lockprof's own tests: `--threads` workers take one
//! hot `std::sync::Mutex` (held `--hold-us` each time) and, less often, a cold one.
//! Every worker measures the time it spends inside `lock()` of the hot mutex, so a
//! test can compare lockprof's number with the program's own.
//!
//! Prints one JSON line: `{"pid","hot_wait_ns","hot_acquisitions","threads"}`, then
//! exits with `--exit-code` (default 0). `--start-delay-ms` sleeps before the
//! workload so a profiler can attach to the running process first.
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use demo_targets::fixture_flags::{parse_flags, value};

struct Args {
    threads: usize,
    iters: u32,
    hold_us: u64,
    start_delay_ms: u64,
    exit_code: i32,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        threads: 4,
        iters: 300,
        hold_us: 300,
        start_delay_ms: 0,
        exit_code: 0,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    parse_flags(&argv, |flag, v| {
        match flag {
            "--threads" => a.threads = value(flag, v)?,
            "--iters" => a.iters = value(flag, v)?,
            "--hold-us" => a.hold_us = value(flag, v)?,
            "--start-delay-ms" => a.start_delay_ms = value(flag, v)?,
            "--exit-code" => a.exit_code = value(flag, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(a)
}

static HOT: Mutex<u64> = Mutex::new(0);
static COLD: Mutex<u64> = Mutex::new(0);
static GO: AtomicBool = AtomicBool::new(false);
/// Workers still running. The main thread polls it instead of blocking in `join`,
/// so the harness adds no futex wait of its own to the profile.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// The hot critical section; returns the time spent acquiring the lock.
#[inline(never)]
fn hot_section(hold: Duration) -> Duration {
    let t0 = Instant::now();
    let mut guard = HOT.lock().expect("no panics"); // LOCK-SITE: fixture.hot
    let waited = t0.elapsed();
    *guard += 1;
    std::thread::sleep(hold);
    waited
}

/// A rarely contended lock, held briefly.
#[inline(never)]
fn cold_section() {
    let mut guard = COLD.lock().expect("no panics"); // LOCK-SITE: fixture.cold
    *guard += 1;
    std::thread::sleep(Duration::from_micros(20));
}

#[inline(never)]
fn worker(iters: u32, hold: Duration) -> Duration {
    while !GO.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let mut waited = Duration::ZERO;
    for i in 0..iters {
        waited += hot_section(hold);
        if i % 8 == 0 {
            cold_section();
        }
    }
    RUNNING.fetch_sub(1, Ordering::AcqRel);
    waited
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lockprof-fixture: {e}");
            std::process::exit(2);
        }
    };
    std::thread::sleep(Duration::from_millis(args.start_delay_ms));
    let hold = Duration::from_micros(args.hold_us);
    RUNNING.store(args.threads, Ordering::Release);
    let handles: Vec<_> = (0..args.threads)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("fixture-{i}"))
                .spawn(move || worker(args.iters, hold))
                .expect("spawn worker thread")
        })
        .collect();
    GO.store(true, Ordering::Release);
    while RUNNING.load(Ordering::Acquire) > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let total: Duration = handles
        .into_iter()
        .map(|h| h.join().expect("worker panicked"))
        .sum();
    println!(
        "{{\"pid\":{},\"hot_wait_ns\":{},\"hot_acquisitions\":{},\"threads\":{}}}",
        std::process::id(),
        total.as_nanos(),
        u64::from(args.iters) * args.threads as u64,
        args.threads
    );
    std::process::exit(args.exit_code);
}

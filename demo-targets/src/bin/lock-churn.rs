//! `lock-churn`: a workload that changes all the time, for lockprof's soak
//! (`cargo xtask bench soak`, `profiler/tests/soak.rs`): threads created and destroyed
//! continuously, thousands of distinct lock addresses contended over time, and child
//! processes forked and exec'd (this same program with `--child`) that contend too.
//! A profiler attached to it for an hour sees new threads, new addresses and new
//! processes every second; its memory must not grow with them.
//!
//! ```text
//! lock-churn [--seconds S (60)] [--threads T (4)] [--locks L (4096)]
//!            [--exec-every-ms E (250)]
//! lock-churn --child            (a short-lived contending child; started by the parent)
//! ```
//!
//! Every generation of `--threads` threads contends on a window of 8 of the `--locks`
//! mutexes for ~20 ms and exits; the window moves on by 8 each generation, so every lock
//! address gets its turn. Threads pause 1 ms every few acquisitions so the workload
//! takes a fraction of one CPU (a soak runs for long on shared machines). Prints one
//! JSON line at the end: `{"generations","threads","children","acquisitions","seconds"}`.
#[path = "../flags.rs"]
mod flags;

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: lock-churn [--seconds S (60)] [--threads T (4)] [--locks L (4096)] \
[--exec-every-ms E (250)]";

/// Locks one generation contends on.
const WINDOW: usize = 8;
/// How long a generation lives.
const GENERATION: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Args {
    seconds: u64,
    threads: usize,
    locks: usize,
    exec_every_ms: u64,
}

fn parse(argv: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args {
        seconds: 60,
        threads: 4,
        locks: 4096,
        exec_every_ms: 250,
    };
    let Some(pairs) = flags::pairs(argv)? else {
        return Ok(None);
    };
    for (flag, value) in pairs {
        match flag {
            "--seconds" => a.seconds = flags::int(flag, value)?,
            "--threads" => a.threads = flags::int(flag, value)?,
            "--locks" => a.locks = flags::int(flag, value)?,
            "--exec-every-ms" => a.exec_every_ms = flags::int(flag, value)?,
            _ => return Err(format!("unknown flag '{flag}'")),
        }
    }
    if a.seconds == 0 || a.seconds > 24 * 3600 {
        return Err(format!(
            "'--seconds' must be between 1 and 86400, got {}",
            a.seconds
        ));
    }
    if a.threads < 2 || a.threads > 256 {
        return Err(format!(
            "'--threads' must be between 2 and 256 (contention needs two), got {}",
            a.threads
        ));
    }
    if a.locks < WINDOW || a.locks > 1 << 20 {
        return Err(format!(
            "'--locks' must be between {WINDOW} and {}, got {}",
            1 << 20,
            a.locks
        ));
    }
    if a.exec_every_ms == 0 {
        return Err("'--exec-every-ms' must be at least 1".into());
    }
    Ok(Some(a))
}

static ACQUISITIONS: AtomicU64 = AtomicU64::new(0);

/// One acquisition: hold the lock across a yield so the others really block.
#[inline(never)]
fn churn_lock(lock: &Mutex<u64>) {
    let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner); // LOCK-SITE: churn.lock
    *g += 1;
    thread::yield_now();
}

/// A short-lived thread: contend on `window` until `until`.
#[inline(never)]
fn churn_thread(window: &[&Mutex<u64>], until: Instant, seed: usize) {
    let mut i = seed;
    while Instant::now() < until {
        churn_lock(window[i % window.len()]);
        i += 1;
        ACQUISITIONS.fetch_add(1, Ordering::Relaxed);
        if i.is_multiple_of(4) {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// `--child`: two threads on one lock for 50 ms, then exit.
fn child() -> ExitCode {
    let lock = Mutex::new(0);
    let window = [&lock];
    let until = Instant::now() + Duration::from_millis(50);
    thread::scope(|s| {
        for t in 0..2 {
            let window = &window;
            s.spawn(move || churn_thread(window, until, t));
        }
    });
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--child") {
        return child();
    }
    let a = match flags::or_exit("lock-churn", USAGE, parse(&argv)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lock-churn: error: cannot find my own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Boxed one by one so that each lock has its own heap address.
    let locks: Vec<Box<Mutex<u64>>> = (0..a.locks).map(|_| Box::new(Mutex::new(0))).collect();
    let windows: Vec<Vec<&Mutex<u64>>> = locks
        .chunks(WINDOW)
        .map(|c| c.iter().map(AsRef::as_ref).collect())
        .collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let exec_every = Duration::from_millis(a.exec_every_ms);
    let mut next_exec = start;
    let mut children: Vec<Child> = Vec::new();
    let (mut generations, mut threads, mut spawned) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        if Instant::now() >= next_exec {
            next_exec += exec_every;
            match Command::new(&exe)
                .arg("--child")
                .stdin(Stdio::null())
                .spawn()
            {
                Ok(c) => {
                    children.push(c);
                    spawned += 1;
                }
                Err(e) => eprintln!("lock-churn: warning: fork/exec a child: {e}"),
            }
            // Reap the ones that are done, so no zombie piles up.
            children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
        }
        let window = &windows[generations as usize % windows.len()];
        let until = Instant::now() + GENERATION;
        thread::scope(|s| {
            for t in 0..a.threads {
                s.spawn(move || churn_thread(window, until, t));
            }
        });
        generations += 1;
        threads += a.threads as u64;
    }
    for mut c in children {
        let _ = c.wait();
    }
    println!(
        "{{\"generations\":{generations},\"threads\":{threads},\"children\":{spawned},\"acquisitions\":{},\"seconds\":{:.3}}}",
        ACQUISITIONS.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bounds_each_knob() {
        let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let d = parse(&a(&[])).unwrap().unwrap();
        assert_eq!((d.seconds, d.threads, d.locks), (60, 4, 4096));
        assert!(
            parse(&a(&["--threads", "1"]))
                .unwrap_err()
                .contains("between 2 and 256")
        );
        assert!(
            parse(&a(&["--locks", "3"]))
                .unwrap_err()
                .contains("'--locks'")
        );
        assert!(parse(&a(&["--seconds", "0"])).is_err());
        assert!(parse(&a(&["--exec-every-ms", "0"])).is_err());
    }
}

//! `futex-pingpong`: two threads hand one futex word back and forth, so that every
//! hand-over is a `FUTEX_WAKE` and (almost) every wait really blocks. The load for the
//! per-futex-call cost row of `cargo xtask bench overhead`: its round-trip time is two
//! context switches plus two waits and two wakes, so what a profiler adds per futex call
//! shows up directly in it.
//!
//! ```text
//! futex-pingpong [--seconds S (2)] [--start-delay-ms D (0)] [--on-stdin 0|1 (0)]
//! ```
//!
//! Prints one JSON line: `{"round_trips","rtt_ns","wait_calls","blocked_waits",
//! "wake_calls","seconds"}`. `blocked_waits` counts waits that slept (returned 0);
//! the others found the word already handed over (`EAGAIN`).
//!
//! `--on-stdin 1`: a run for each line read on stdin, each printing its own line, until
//! stdin closes (no run before the first line): a tracer can attach to the process
//! before it makes a single futex call, and measure it over several runs. A line that
//! holds a number runs that many milliseconds instead of `--seconds`.
#![allow(
    clippy::cast_possible_truncation,
    reason = "syscall results are small integers"
)]

#[path = "../flags.rs"]
mod flags;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const FUTEX_WAIT_PRIVATE: i32 = 128;
const FUTEX_WAKE_PRIVATE: i32 = 129;

const USAGE: &str =
    "usage: futex-pingpong [--seconds S (2)] [--start-delay-ms D (0)] [--on-stdin 0|1 (0)]";

/// Whose turn it is: 0 for the main thread, 1 for the partner.
static TURN: AtomicU32 = AtomicU32::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

/// Futex calls one side made.
#[derive(Default, Clone, Copy)]
struct Calls {
    waits: u64,
    blocked: u64,
    wakes: u64,
    rounds: u64,
}

/// Sleeps until `TURN` is `me` (or stop); counts the calls.
#[inline(never)]
fn wait_turn(me: u32, calls: &mut Calls) {
    loop {
        let now = TURN.load(Ordering::Acquire);
        if now == me || STOP.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: FUTEX_WAIT on a valid, aligned static u32; a timeout bounds the sleep
        // so a missed stop flag cannot hang the program.
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // SAFETY: as above; `ts` outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                TURN.as_ptr(),
                FUTEX_WAIT_PRIVATE,
                now,
                &raw const ts,
            )
        };
        calls.waits += 1;
        if r == 0 {
            calls.blocked += 1;
        }
    }
}

/// Hands the word to `other` and wakes it.
#[inline(never)]
fn hand_over(other: u32, calls: &mut Calls) {
    TURN.store(other, Ordering::Release);
    // SAFETY: FUTEX_WAKE on a valid, aligned static u32.
    unsafe {
        libc::syscall(libc::SYS_futex, TURN.as_ptr(), FUTEX_WAKE_PRIVATE, 1);
    }
    calls.wakes += 1;
}

fn side(me: u32) -> Calls {
    let mut calls = Calls::default();
    while !STOP.load(Ordering::Relaxed) {
        wait_turn(me, &mut calls);
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        hand_over(1 - me, &mut calls);
        calls.rounds += 1;
    }
    // Let the other side out of its wait.
    hand_over(1 - me, &mut calls);
    calls
}

/// `--seconds`, `--start-delay-ms` and `--on-stdin`.
fn parse(argv: &[String]) -> Result<Option<(u64, u64, bool)>, String> {
    let (mut seconds, mut delay_ms, mut on_stdin) = (2u64, 0u64, false);
    let Some(pairs) = flags::pairs(argv)? else {
        return Ok(None);
    };
    for (flag, value) in pairs {
        match flag {
            "--seconds" => seconds = flags::int(flag, value)?,
            "--start-delay-ms" => delay_ms = flags::int(flag, value)?,
            "--on-stdin" => {
                on_stdin = match flags::int::<u8>(flag, value)? {
                    0 => false,
                    1 => true,
                    n => return Err(format!("'--on-stdin' must be 0 or 1, got {n}")),
                }
            }
            _ => return Err(format!("unknown flag '{flag}'")),
        }
    }
    if seconds == 0 || seconds > 3600 {
        return Err(format!(
            "'--seconds' must be between 1 and 3600, got {seconds}"
        ));
    }
    Ok(Some((seconds, delay_ms, on_stdin)))
}

/// How long the run a stdin line asks for lasts: the line's milliseconds, else
/// `default`.
fn line_duration(line: &str, default: Duration) -> Result<Duration, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(default);
    }
    match line.parse::<u64>() {
        Ok(ms @ 1..=3_600_000) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "a stdin line must be empty or milliseconds (1 to 3600000), got '{line}'"
        )),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (seconds, delay_ms, on_stdin) = match flags::or_exit("futex-pingpong", USAGE, parse(&argv))
    {
        Ok(a) => a,
        Err(code) => return code,
    };
    thread::sleep(Duration::from_millis(delay_ms));
    let default = Duration::from_secs(seconds);
    if !on_stdin {
        return run(default);
    }
    for line in std::io::stdin().lines() {
        let duration = match line
            .map_err(|e| e.to_string())
            .and_then(|l| line_duration(&l, default))
        {
            Ok(d) => d,
            Err(e) => {
                eprintln!("futex-pingpong: {e}");
                return ExitCode::from(2);
            }
        };
        if run(duration) != ExitCode::SUCCESS {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// One run of `duration`: both sides hand the word over until then; prints its line.
fn run(duration: Duration) -> ExitCode {
    STOP.store(false, Ordering::Relaxed);
    TURN.store(0, Ordering::Release);
    let partner = match thread::Builder::new().name("pong".into()).spawn(|| side(1)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("futex-pingpong: spawn: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    // The main thread plays too; a timer thread would add its own wakes.
    let stopper = thread::spawn(move || {
        thread::sleep(duration);
        STOP.store(true, Ordering::Relaxed);
    });
    let mine = side(0);
    let elapsed = start.elapsed().as_secs_f64();
    let (Ok(theirs), Ok(())) = (partner.join(), stopper.join()) else {
        eprintln!("futex-pingpong: a thread panicked");
        return ExitCode::FAILURE;
    };
    // A round trip is one hand-over each way.
    let round_trips = mine.rounds.min(theirs.rounds);
    let rtt_ns = if round_trips > 0 {
        elapsed * 1e9 / round_trips as f64
    } else {
        0.0
    };
    println!(
        "{{\"round_trips\":{round_trips},\"rtt_ns\":{rtt_ns:.0},\"wait_calls\":{},\"blocked_waits\":{},\"wake_calls\":{},\"seconds\":{elapsed:.3}}}",
        mine.waits + theirs.waits,
        mine.blocked + theirs.blocked,
        mine.wakes + theirs.wakes,
    );
    // The reader may be waiting for this line before it sends the next.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bounds_seconds() {
        let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(parse(&a(&[])).unwrap(), Some((2, 0, false)));
        assert_eq!(parse(&a(&["--seconds", "5"])).unwrap(), Some((5, 0, false)));
        assert_eq!(parse(&a(&["--on-stdin", "1"])).unwrap(), Some((2, 0, true)));
        assert!(parse(&a(&["--on-stdin", "2"])).is_err());
        assert!(
            parse(&a(&["--seconds", "0"]))
                .unwrap_err()
                .contains("between 1 and 3600")
        );
        assert!(parse(&a(&["--what", "1"])).is_err());
    }

    #[test]
    fn a_stdin_line_may_set_the_runs_milliseconds() {
        let d = Duration::from_secs(2);
        assert_eq!(line_duration("\n", d), Ok(d));
        assert_eq!(line_duration(" 750 ", d), Ok(Duration::from_millis(750)));
        assert!(line_duration("0", d).is_err());
        assert!(line_duration("soon", d).is_err());
    }
}

//! `futex-pingpong`: two threads hand one futex word back and forth, so that every
//! hand-over is a `FUTEX_WAKE` and (almost) every wait really blocks. The load for the
//! per-futex-call cost row of `cargo xtask bench overhead`: its round-trip time is two
//! context switches plus two waits and two wakes, so what a profiler adds per futex call
//! shows up directly in it.
//!
//! ```text
//! futex-pingpong [--seconds S (2)] [--start-delay-ms D (0)]
//! ```
//!
//! Prints one JSON line: `{"round_trips","rtt_ns","wait_calls","blocked_waits",
//! "wake_calls","seconds"}`. `blocked_waits` counts waits that slept (returned 0);
//! the others found the word already handed over (`EAGAIN`).
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

const USAGE: &str = "usage: futex-pingpong [--seconds S (2)] [--start-delay-ms D (0)]";

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

fn parse(argv: &[String]) -> Result<Option<(u64, u64)>, String> {
    let (mut seconds, mut delay_ms) = (2u64, 0u64);
    let Some(pairs) = flags::pairs(argv)? else {
        return Ok(None);
    };
    for (flag, value) in pairs {
        match flag {
            "--seconds" => seconds = flags::int(flag, value)?,
            "--start-delay-ms" => delay_ms = flags::int(flag, value)?,
            _ => return Err(format!("unknown flag '{flag}'")),
        }
    }
    if seconds == 0 || seconds > 3600 {
        return Err(format!(
            "'--seconds' must be between 1 and 3600, got {seconds}"
        ));
    }
    Ok(Some((seconds, delay_ms)))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (seconds, delay_ms) = match flags::or_exit("futex-pingpong", USAGE, parse(&argv)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    thread::sleep(Duration::from_millis(delay_ms));
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
        thread::sleep(Duration::from_secs(seconds));
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
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bounds_seconds() {
        let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(parse(&a(&[])).unwrap(), Some((2, 0)));
        assert_eq!(parse(&a(&["--seconds", "5"])).unwrap(), Some((5, 0)));
        assert!(
            parse(&a(&["--seconds", "0"]))
                .unwrap_err()
                .contains("between 1 and 3600")
        );
        assert!(parse(&a(&["--what", "1"])).is_err());
    }
}

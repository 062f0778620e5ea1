//! `futex-positions`: threads that make futex calls from many call positions in turn.
//!
//! Each of `--threads` threads runs `--rounds` rounds; a round calls `wake_0` …
//! `wake_5` and `wait_0` … `wait_5` in order, each `#[inline(never)]` and issuing one
//! futex call of its own from its own call site: a `FUTEX_WAKE` that wakes nobody, or
//! a `FUTEX_WAIT` whose word does not hold the expected value (`EAGAIN` at once).
//! A thread cycling through more positions than lockprof's per-thread memo holds (two
//! of each kind) finds their stacks in the probe's position slots or its stack cache;
//! every call must still be counted once — a wake at its own function (a wake's stack
//! is walked at its first call from a position), an `EAGAIN` wait once in all (the
//! fast path takes only a stack already known at that position).
//!
//! ```text
//! futex-positions [--threads N] [--rounds R]
//! ```
//!
//! Prints one JSON line: `{"pid","threads","rounds","positions"}` — each of the
//! `positions` wake functions and wait functions ran `threads × rounds` times.
#[path = "../flags.rs"]
mod flags;

use std::process::ExitCode;
use std::sync::atomic::AtomicU32;

const USAGE: &str = "usage: futex-positions [--threads N] [--rounds R]";

/// The futex word: always 0, so a wait expecting 1 returns `EAGAIN`, and nobody ever
/// sleeps on it.
static WORD: AtomicU32 = AtomicU32::new(0);

const FUTEX_WAIT_PRIVATE: i32 = 128;
const FUTEX_WAKE_PRIVATE: i32 = 129;

/// One futex call on [`WORD`]. A macro so that each position function is itself the
/// frame that calls into libc.
macro_rules! futex {
    ($op:expr, $val:expr) => {
        // SAFETY: the futex syscall only reads the static word passed.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                WORD.as_ptr(),
                $op,
                $val,
                std::ptr::null::<libc::timespec>(),
            )
        }
    };
}

macro_rules! positions {
    ($($wake:ident $wait:ident $n:literal),* $(,)?) => {
        $(
            // `black_box` keeps the call from being a tail call (the function's frame
            // stays on the stack under libc's, as a caller's would), and `$n` (how
            // many to wake, the value expected) keeps the bodies apart: identical
            // functions would be merged into one.
            #[inline(never)]
            fn $wake() -> i64 {
                std::hint::black_box(futex!(FUTEX_WAKE_PRIVATE, $n))
            }
            #[inline(never)]
            fn $wait() -> i64 {
                std::hint::black_box(futex!(FUTEX_WAIT_PRIVATE, $n))
            }
        )*
        /// How many position functions of each kind there are.
        const POSITIONS: u32 = [$(stringify!($wake)),*].len() as u32;
        /// One round: every wake, then every wait, each from its own call site.
        /// Returns how many calls did not return what they should (0 woken, `EAGAIN`).
        #[inline(never)]
        fn round() -> u32 {
            let mut bad = 0;
            $(bad += u32::from($wake() != 0);)*
            $(bad += u32::from($wait() != -1);)*
            bad
        }
    };
}

positions!(
    wake_0 wait_0 1,
    wake_1 wait_1 2,
    wake_2 wait_2 3,
    wake_3 wait_3 4,
    wake_4 wait_4 5,
    wake_5 wait_5 6,
);

struct Args {
    threads: u32,
    rounds: u32,
}

fn parse(argv: &[String]) -> Result<Option<Args>, String> {
    let Some(pairs) = flags::pairs(argv)? else {
        return Ok(None);
    };
    let mut a = Args {
        threads: 3,
        rounds: 20_000,
    };
    for (flag, value) in pairs {
        match flag {
            "--threads" => a.threads = flags::int(flag, value)?,
            "--rounds" => a.rounds = flags::int(flag, value)?,
            _ => return Err(format!("unknown flag '{flag}'")),
        }
    }
    if a.threads == 0 || a.threads > 64 {
        return Err("--threads must be 1..=64".to_owned());
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match flags::or_exit("futex-positions", USAGE, parse(&argv)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rounds = args.rounds;
    let workers: Vec<_> = (0..args.threads)
        .map(|_| std::thread::spawn(move || (0..rounds).map(|_| round()).sum::<u32>()))
        .collect();
    let bad: u32 = workers
        .into_iter()
        .map(|w| w.join().expect("worker panicked"))
        .sum();
    if bad != 0 {
        eprintln!("futex-positions: {bad} calls did not return as expected");
        return ExitCode::FAILURE;
    }
    println!(
        "{{\"pid\":{},\"threads\":{},\"rounds\":{},\"positions\":{POSITIONS}}}",
        std::process::id(),
        args.threads,
        args.rounds
    );
    ExitCode::SUCCESS
}

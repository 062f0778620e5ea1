//! A lock held across blocking, for lockprof's "held across blocking" test: thread
//! `holder` takes a `std::sync::Mutex` and, while holding it, retries a write that
//! fails (a non-blocking `send` into a full socket: `EAGAIN`) `--retries` times with
//! a `--backoff-us` sleep after each — the shape of a switch retrying ENOBUFS under
//! its connection lock, or a store sleeping in a try-lock ladder under its db lock.
//! Thread `waiter` wants the same lock meanwhile and blocks until the holder is done.
//!
//! Prints one JSON line: `{"pid","rounds","failed_sends"}`.
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use demo_targets::fixture_flags::{parse_flags, value};

struct Args {
    rounds: u32,
    retries: u32,
    backoff_us: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        rounds: 20,
        retries: 5,
        backoff_us: 2000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    parse_flags(&argv, |flag, v| {
        match flag {
            "--rounds" => a.rounds = value(flag, v)?,
            "--retries" => a.retries = value(flag, v)?,
            "--backoff-us" => a.backoff_us = value(flag, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(a)
}

static CONN: Mutex<u64> = Mutex::new(0);
static HOLDING: AtomicBool = AtomicBool::new(false);
static DONE: AtomicBool = AtomicBool::new(false);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// A datagram socket whose peer never reads, filled until a send would block.
fn full_socket() -> std::io::Result<(UnixDatagram, OwnedFd)> {
    let (tx, rx) = UnixDatagram::pair()?;
    tx.set_nonblocking(true)?;
    while tx.send(&[0u8; 512]).is_ok() {}
    Ok((tx, OwnedFd::from(rx)))
}

/// One round: take the lock and retry the failing write under it.
#[inline(never)]
fn send_retrying(sock: &UnixDatagram, retries: u32, backoff: Duration) {
    let mut sent = CONN.lock().expect("no panics"); // LOCK-SITE: holder.lock
    HOLDING.store(true, Ordering::Release);
    for _ in 0..retries {
        // SAFETY: a valid fd and buffer; MSG_DONTWAIT makes the full socket fail.
        let r = unsafe {
            libc::send(
                sock.as_raw_fd(),
                [0u8; 512].as_ptr().cast(),
                512,
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            FAILED.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(backoff);
    }
    *sent += 1;
    HOLDING.store(false, Ordering::Release);
}

/// Wait until the holder holds the lock, then want it too.
#[inline(never)]
fn waiter() {
    while !DONE.load(Ordering::Acquire) {
        if HOLDING.load(Ordering::Acquire) {
            let guard = CONN.lock().expect("no panics"); // LOCK-SITE: holder.waiter
            drop(guard);
            while HOLDING.load(Ordering::Acquire) && !DONE.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("holder-fixture: {e}");
            std::process::exit(2);
        }
    };
    let (sock, _peer) = match full_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("holder-fixture: cannot set up the socket: {e}");
            std::process::exit(1);
        }
    };
    let waiter = std::thread::Builder::new()
        .name("waiter".into())
        .spawn(waiter)
        .expect("spawn waiter");
    let backoff = Duration::from_micros(args.backoff_us);
    let rounds = args.rounds;
    let retries = args.retries;
    let holder = std::thread::Builder::new()
        .name("holder".into())
        .spawn(move || {
            for _ in 0..rounds {
                send_retrying(&sock, retries, backoff);
                // Let the waiter take the lock before the next round.
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .expect("spawn holder");
    holder.join().expect("holder panicked");
    DONE.store(true, Ordering::Release);
    waiter.join().expect("waiter panicked");
    println!(
        "{{\"pid\":{},\"rounds\":{},\"failed_sends\":{}}}",
        std::process::id(),
        rounds,
        FAILED.load(Ordering::Relaxed)
    );
}

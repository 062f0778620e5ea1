//! Exercises every futex wait and wake operation lockprof must see, once each, with
//! raw syscalls: `FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, `FUTEX_LOCK_PI`, `FUTEX_LOCK_PI2`,
//! `FUTEX_WAIT_REQUEUE_PI`, `futex_wait(2)` and `futex_waitv(2)` on the wait side;
//! `FUTEX_WAKE`, `FUTEX_WAKE_BITSET`, `FUTEX_UNLOCK_PI`, `FUTEX_CMP_REQUEUE_PI`,
//! `FUTEX_CMP_REQUEUE`, `FUTEX_WAKE_OP`, `futex_wake(2)` and `futex_requeue(2)` on the
//! wake side.
//!
//! Each scenario runs a waiter thread that blocks in `wait_<op>` and, once it has
//! slept in the kernel for `HOLD`, wakes it from `wake_<op>` on the main thread. Both are
//! `#[inline(never)]` so lockprof's report names them as the wait and wake sites.
//! Prints one JSON line: `{"pid","scenarios":[{"name","wait_ret","wake_ret"}…]}`.
#![allow(
    clippy::cast_possible_truncation,
    reason = "syscall results are small integers"
)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const SYS_FUTEX_WAITV: libc::c_long = 449;
const SYS_FUTEX_WAKE: libc::c_long = 454;
const SYS_FUTEX_WAIT: libc::c_long = 455;
const SYS_FUTEX_REQUEUE: libc::c_long = 456;

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_WAIT_REQUEUE_PI: i32 = 11;
const FUTEX_CMP_REQUEUE_PI: i32 = 12;
const FUTEX_LOCK_PI2: i32 = 13;
const FUTEX_PRIVATE: i32 = 128;
const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_PRIVATE: u32 = 128;
const BITSET_ANY: u32 = u32::MAX;

/// How long each waiter stays blocked before it is woken.
const HOLD: Duration = Duration::from_millis(30);

#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `futex(2)` on `$word` with the private flag. A macro, not a function, so that each
/// `wait_*`/`wake_*` function is itself the frame that issues the syscall and
/// lockprof names it as the site.
macro_rules! futex {
    ($word:expr, $op:expr, $val:expr, $val2:expr, $uaddr2:expr, $val3:expr) => {
        // SAFETY: the futex syscall only reads/writes the futex words we pass, which
        // are statics and so outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                $word.as_ptr(),
                $op | FUTEX_PRIVATE,
                $val,
                $val2,
                $uaddr2,
                $val3,
            )
        }
    };
}

fn ret(r: i64) -> i64 {
    if r < 0 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        r
    }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

// ---- wait side -----------------------------------------------------------------

#[inline(never)]
fn wait_futex_wait(w: &AtomicU32) -> i64 {
    ret(futex!(
        w,
        FUTEX_WAIT,
        0u32,
        0usize,
        std::ptr::null::<u32>(),
        0u32
    ))
}

#[inline(never)]
fn wait_futex_wait_bitset(w: &AtomicU32) -> i64 {
    ret(futex!(
        w,
        FUTEX_WAIT_BITSET,
        0u32,
        0usize,
        std::ptr::null::<u32>(),
        BITSET_ANY
    ))
}

#[inline(never)]
fn wait_futex_lock_pi(w: &AtomicU32) -> i64 {
    ret(futex!(
        w,
        FUTEX_LOCK_PI,
        0u32,
        0usize,
        std::ptr::null::<u32>(),
        0u32
    ))
}

#[inline(never)]
fn wait_futex_lock_pi2(w: &AtomicU32) -> i64 {
    ret(futex!(
        w,
        FUTEX_LOCK_PI2,
        0u32,
        0usize,
        std::ptr::null::<u32>(),
        0u32
    ))
}

#[inline(never)]
fn wait_futex_wait_requeue_pi(cond: &AtomicU32, pi: &AtomicU32) -> i64 {
    ret(futex!(
        cond,
        FUTEX_WAIT_REQUEUE_PI,
        0u32,
        0usize,
        pi.as_ptr(),
        BITSET_ANY
    ))
}

#[inline(never)]
fn wait_futex2_wait(w: &AtomicU32) -> i64 {
    // SAFETY: futex_wait(uaddr, val, mask, flags, timeout, clockid) on our word.
    ret(unsafe {
        libc::syscall(
            SYS_FUTEX_WAIT,
            w.as_ptr(),
            0u64,
            u64::from(BITSET_ANY),
            FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
            0usize,
            0,
        )
    })
}

#[inline(never)]
fn wait_futex2_waitv(w: &AtomicU32) -> i64 {
    let waiters = [FutexWaitv {
        val: 0,
        uaddr: w.as_ptr() as u64,
        flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
        reserved: 0,
    }];
    // SAFETY: futex_waitv(waiters, nr, flags, timeout, clockid) on our array.
    ret(unsafe { libc::syscall(SYS_FUTEX_WAITV, waiters.as_ptr(), 1u32, 0u32, 0usize, 0) })
}

// ---- wake side -----------------------------------------------------------------

#[inline(never)]
fn wake_futex_wake(w: &AtomicU32) -> i64 {
    w.store(1, Ordering::SeqCst);
    ret(futex!(
        w,
        FUTEX_WAKE,
        1u32,
        0usize,
        std::ptr::null::<u32>(),
        0u32
    ))
}

#[inline(never)]
fn wake_futex_wake_bitset(w: &AtomicU32) -> i64 {
    w.store(1, Ordering::SeqCst);
    ret(futex!(
        w,
        FUTEX_WAKE_BITSET,
        1u32,
        0usize,
        std::ptr::null::<u32>(),
        BITSET_ANY
    ))
}

#[inline(never)]
fn wake_futex_unlock_pi(w: &AtomicU32) -> i64 {
    ret(futex!(
        w,
        FUTEX_UNLOCK_PI,
        0u32,
        0usize,
        std::ptr::null::<u32>(),
        0u32
    ))
}

#[inline(never)]
fn wake_futex_cmp_requeue_pi(cond: &AtomicU32, pi: &AtomicU32) -> i64 {
    // Wake exactly one waiter (required for PI), requeue none; it acquires `pi`.
    ret(futex!(
        cond,
        FUTEX_CMP_REQUEUE_PI,
        1u32,
        0usize,
        pi.as_ptr(),
        0u32
    ))
}

#[inline(never)]
fn wake_futex_cmp_requeue(w: &AtomicU32, other: &AtomicU32) -> i64 {
    ret(futex!(
        w,
        FUTEX_CMP_REQUEUE,
        1u32,
        0usize,
        other.as_ptr(),
        0u32
    ))
}

#[inline(never)]
fn wake_futex_wake_op(w: &AtomicU32, other: &AtomicU32) -> i64 {
    // op 0 = FUTEX_OP(SET, 0, CMP_EQ, 0): store 0 in `other`, wake one on `w`.
    ret(futex!(w, FUTEX_WAKE_OP, 1u32, 0usize, other.as_ptr(), 0u32))
}

#[inline(never)]
fn wake_futex2_wake(w: &AtomicU32) -> i64 {
    w.store(1, Ordering::SeqCst);
    // SAFETY: futex_wake(uaddr, mask, nr, flags) on our word.
    ret(unsafe {
        libc::syscall(
            SYS_FUTEX_WAKE,
            w.as_ptr(),
            u64::from(BITSET_ANY),
            1i32,
            FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
        )
    })
}

#[inline(never)]
fn wake_futex2_requeue(w: &AtomicU32, other: &AtomicU32) -> i64 {
    let waiters = [
        FutexWaitv {
            val: 0,
            uaddr: w.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
            reserved: 0,
        },
        FutexWaitv {
            val: 0,
            uaddr: other.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
            reserved: 0,
        },
    ];
    // SAFETY: futex_requeue(waiters, flags, nr_wake, nr_requeue) on our words.
    ret(unsafe { libc::syscall(SYS_FUTEX_REQUEUE, waiters.as_ptr(), 0u32, 1i32, 0i32) })
}

// ---- scenarios -----------------------------------------------------------------

/// Run `wait` on a named thread, then after `HOLD` run `wake` here; returns both
/// syscall results.
fn scenario(name: &'static str, wait: fn() -> i64, wake: fn() -> i64) -> (String, i64, i64) {
    // The waiter's thread id once it is about to block (0 before).
    static READY: AtomicU32 = AtomicU32::new(0);
    READY.store(0, Ordering::SeqCst);
    let waiter = std::thread::Builder::new()
        .name(format!("wait-{name}"))
        .spawn(move || {
            READY.store(gettid(), Ordering::SeqCst);
            wait()
        })
        .expect("spawn waiter");
    // Start the hold only once the waiter is asleep in the kernel (thread start-up can
    // take milliseconds on a loaded machine, and so can the way into the syscall on an
    // emulated CPU), so every wait lasts at least HOLD — also off the CPU, which is
    // what a profiler timing waits from their switch-out counts.
    let tid = loop {
        match READY.load(Ordering::SeqCst) {
            0 => std::thread::yield_now(),
            tid => break tid,
        }
    };
    wait_until_asleep(tid, &waiter);
    std::thread::sleep(HOLD);
    let wake_ret = wake();
    let wait_ret = waiter.join().expect("waiter panicked");
    (name.to_owned(), wait_ret, wake_ret)
}

/// Wait until thread `tid` of this process sleeps in the kernel (`S` or `D` in its
/// `stat`), has finished (a wait the kernel lacks returns `ENOSYS` at once), or 1 s
/// has passed (the run then reports a wait that did not block).
fn wait_until_asleep(tid: u32, waiter: &std::thread::JoinHandle<i64>) {
    let stat = format!("/proc/self/task/{tid}/stat");
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !waiter.is_finished() && std::time::Instant::now() < deadline {
        let Ok(text) = std::fs::read_to_string(&stat) else {
            return;
        };
        // The state follows the command name, which may itself hold ") ".
        let state = text
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if matches!(state, Some('S' | 'D')) {
            return;
        }
        std::thread::yield_now();
    }
}

macro_rules! word {
    ($name:ident) => {
        static $name: AtomicU32 = AtomicU32::new(0);
    };
}

word!(W_WAIT);
word!(W_BITSET);
word!(W_PI);
word!(W_PI2);
word!(W_RQ_COND);
word!(W_RQ_PI);
word!(W_F2);
word!(W_F2V);
word!(W_CMPRQ);
word!(W_CMPRQ_OTHER);
word!(W_WAKEOP);
word!(W_WAKEOP_OTHER);
word!(W_F2RQ);
word!(W_F2RQ_OTHER);

fn main() {
    // PI futexes hold the owner's tid: the main thread owns them while waiters block.
    W_PI.store(gettid(), Ordering::SeqCst);
    W_PI2.store(gettid(), Ordering::SeqCst);

    let results = [
        scenario(
            "futex_wait",
            || wait_futex_wait(&W_WAIT),
            || wake_futex_wake(&W_WAIT),
        ),
        scenario(
            "futex_wait_bitset",
            || wait_futex_wait_bitset(&W_BITSET),
            || wake_futex_wake_bitset(&W_BITSET),
        ),
        scenario(
            "futex_lock_pi",
            || wait_futex_lock_pi(&W_PI),
            || wake_futex_unlock_pi(&W_PI),
        ),
        scenario(
            "futex_lock_pi2",
            || wait_futex_lock_pi2(&W_PI2),
            || wake_futex_unlock_pi(&W_PI2),
        ),
        scenario(
            "futex_wait_requeue_pi",
            || wait_futex_wait_requeue_pi(&W_RQ_COND, &W_RQ_PI),
            || wake_futex_cmp_requeue_pi(&W_RQ_COND, &W_RQ_PI),
        ),
        scenario(
            "futex2_wait",
            || wait_futex2_wait(&W_F2),
            || wake_futex2_wake(&W_F2),
        ),
        scenario(
            "futex2_waitv",
            || wait_futex2_waitv(&W_F2V),
            || wake_futex_wake(&W_F2V),
        ),
        scenario(
            "futex_cmp_requeue",
            || wait_futex_wait(&W_CMPRQ),
            || wake_futex_cmp_requeue(&W_CMPRQ, &W_CMPRQ_OTHER),
        ),
        scenario(
            "futex_wake_op",
            || wait_futex_wait(&W_WAKEOP),
            || wake_futex_wake_op(&W_WAKEOP, &W_WAKEOP_OTHER),
        ),
        scenario(
            "futex2_requeue",
            || wait_futex2_wait(&W_F2RQ),
            || wake_futex2_requeue(&W_F2RQ, &W_F2RQ_OTHER),
        ),
    ];
    let scenarios: Vec<String> = results
        .iter()
        .map(|(n, w, k)| format!("{{\"name\":\"{n}\",\"wait_ret\":{w},\"wake_ret\":{k}}}"))
        .collect();
    println!(
        "{{\"pid\":{},\"scenarios\":[{}]}}",
        std::process::id(),
        scenarios.join(",")
    );
}

//! Contention on glibc's locks, for lockprof's unwinding tests: Debian's glibc has no
//! frame pointers, so a frame-pointer walk of a thread blocked in one of these calls
//! stops inside libc; only CFI unwinding reaches the tagged lines below and `main`.
//!
//! Phases, one after the other, each with `--threads` workers (default 3) doing
//! `--iters` rounds (default 40): a `pthread_mutex_t`, a `pthread_rwlock_t` taken for
//! reading while a writer holds it and for writing by competing writers, a
//! `pthread_cond_t` wait, a `sem_t` wait, and a Rust `std::sync::Mutex`. Every lock is
//! taken in its own `#[inline(never)]` function on a line tagged `LOCK-SITE:`.
//! Prints `{"pid":…}` and exits 0.
use std::cell::UnsafeCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use demo_targets::fixture_flags::{parse_flags, value};

/// A glibc lock object shared between threads. glibc's own functions synchronize it;
/// Rust only needs a stable address.
struct Shared<T>(UnsafeCell<T>);

// SAFETY: the wrapped objects are only touched through glibc's thread-safe
// pthread/sem functions.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn get(&self) -> *mut T {
        self.0.get()
    }
}

static MUTEX: Shared<libc::pthread_mutex_t> =
    Shared(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));
static RWLOCK: Shared<libc::pthread_rwlock_t> =
    Shared(UnsafeCell::new(libc::PTHREAD_RWLOCK_INITIALIZER));
static COND_MUTEX: Shared<libc::pthread_mutex_t> =
    Shared(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));
static COND: Shared<libc::pthread_cond_t> = Shared(UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER));
static READY: AtomicBool = AtomicBool::new(false);
static STD_MUTEX: Mutex<u64> = Mutex::new(0);

const HOLD: Duration = Duration::from_micros(300);

fn parse() -> Result<(usize, u32), String> {
    let (mut threads, mut iters) = (3usize, 40u32);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    parse_flags(&argv, |flag, v| {
        match flag {
            "--threads" => threads = value(flag, v)?,
            "--iters" => iters = value(flag, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((threads.max(2), iters))
}

#[inline(never)]
fn mutex_section() {
    // SAFETY: a statically initialized mutex, locked and unlocked by this thread.
    unsafe {
        libc::pthread_mutex_lock(MUTEX.get()); // LOCK-SITE: pthread.mutex
        thread::sleep(HOLD);
        libc::pthread_mutex_unlock(MUTEX.get());
    }
}

#[inline(never)]
fn read_section() {
    // SAFETY: a statically initialized rwlock, locked and unlocked by this thread.
    unsafe {
        libc::pthread_rwlock_rdlock(RWLOCK.get()); // LOCK-SITE: pthread.rdlock
        thread::sleep(HOLD);
        libc::pthread_rwlock_unlock(RWLOCK.get());
    }
}

#[inline(never)]
fn write_section() {
    // SAFETY: as in `read_section`.
    unsafe {
        libc::pthread_rwlock_wrlock(RWLOCK.get()); // LOCK-SITE: pthread.wrlock
        thread::sleep(HOLD * 2);
        libc::pthread_rwlock_unlock(RWLOCK.get());
    }
}

/// Wait until the main thread sets `READY` and signals.
#[inline(never)]
fn cond_wait() {
    // SAFETY: statically initialized mutex and condvar, used the documented way.
    unsafe {
        libc::pthread_mutex_lock(COND_MUTEX.get());
        while !READY.load(Ordering::Acquire) {
            libc::pthread_cond_wait(COND.get(), COND_MUTEX.get()); // LOCK-SITE: pthread.cond
        }
        libc::pthread_mutex_unlock(COND_MUTEX.get());
    }
}

fn cond_signal_all() {
    // SAFETY: as in `cond_wait`.
    unsafe {
        libc::pthread_mutex_lock(COND_MUTEX.get());
        READY.store(true, Ordering::Release);
        libc::pthread_cond_broadcast(COND.get());
        libc::pthread_mutex_unlock(COND_MUTEX.get());
    }
}

#[inline(never)]
fn sem_take(sem: &Shared<libc::sem_t>) {
    // SAFETY: an initialized semaphore that outlives the waiting threads.
    unsafe {
        while libc::sem_wait(sem.get()) != 0 {} // LOCK-SITE: pthread.sem
    }
}

#[inline(never)]
fn std_section() {
    let locked = STD_MUTEX.lock(); // LOCK-SITE: pthread.std
    let mut g = locked.unwrap_or_else(std::sync::PoisonError::into_inner);
    *g += 1;
    thread::sleep(HOLD);
}

fn run(threads: usize, work: impl Fn(usize) + Sync) {
    thread::scope(|s| {
        for i in 0..threads {
            let work = &work;
            s.spawn(move || work(i));
        }
    });
}

fn main() {
    let (threads, iters) = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pthread-fixture: {e}");
            std::process::exit(2);
        }
    };
    run(threads, |_| (0..iters).for_each(|_| mutex_section()));
    // Thread 0 writes, the others read: readers block behind the writer and writers
    // behind readers; two writer rounds per reader round keep writers contending too.
    run(threads, |i| {
        for _ in 0..iters {
            if i % 2 == 0 {
                write_section();
            } else {
                read_section();
            }
        }
    });
    for _ in 0..iters.div_ceil(8) {
        READY.store(false, Ordering::Release);
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(cond_wait);
            }
            thread::sleep(Duration::from_millis(2));
            cond_signal_all();
        });
    }
    let sem = Shared(UnsafeCell::new(
        // SAFETY: sem_t is plain data; sem_init below initializes it.
        unsafe { std::mem::zeroed::<libc::sem_t>() },
    ));
    // SAFETY: a process-private semaphore with count 0, destroyed after its users.
    unsafe { libc::sem_init(sem.get(), 0, 0) };
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| (0..iters).for_each(|_| sem_take(&sem)));
        }
        for _ in 0..threads as u32 * iters {
            thread::sleep(Duration::from_micros(200));
            // SAFETY: as above.
            unsafe { libc::sem_post(sem.get()) };
        }
    });
    // SAFETY: no thread uses the semaphore any more.
    unsafe { libc::sem_destroy(sem.get()) };
    run(threads, |_| (0..iters).for_each(|_| std_section()));
    println!("{{\"pid\":{}}}", std::process::id());
}

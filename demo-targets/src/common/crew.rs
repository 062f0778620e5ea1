//! Named worker threads started one at a time and let out one at a time, so thread
//! start and exit inside std and glibc never show up in a lock profile.

use std::fmt;
use std::io::{self, PipeReader, PipeWriter, Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::{GateOpener, StopFlag};

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

    /// A timed demo's run: opens the start gate, lets the crew work for `duration`,
    /// stops it and joins it. Returns the results in spawn order and the wall time from
    /// the opening of the gate to the last join.
    pub fn run_for(
        self,
        opener: GateOpener,
        stop: &StopFlag,
        duration: Duration,
    ) -> Result<(Vec<T>, Duration), RunError> {
        let start = Instant::now();
        opener.open();
        thread::sleep(duration);
        stop.stop();
        let results = self.join()?;
        Ok((results, start.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::StartGate;

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
}

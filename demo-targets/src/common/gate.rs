//! Starting workers together and stopping them, without a futex: the start gate
//! waits in `read(2)` on a pipe, the stop flag is an atomic.

use std::io::{self, PipeReader, PipeWriter, Read as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::common::RunError;

/// Start line for workers, released once by the main thread (through [`GateOpener`])
/// after every worker is spawned.
///
/// The `AtomicBool` is the gate; the pipe is only where waiters sleep. Waiters block
/// in `read(2)` on a pipe nobody writes to, and opening the gate closes the write end,
/// which wakes every reader with EOF. That costs no CPU while hundreds of threads wait
/// (768 threads polling with naps starved the thread spawning them) and never touches
/// a futex, so it stays out of a lock profile.
#[derive(Debug)]
pub struct StartGate {
    open: AtomicBool,
    parked_on: PipeReader,
}

/// The main thread's handle on a [`StartGate`]; dropping it also opens the gate.
#[derive(Debug)]
pub struct GateOpener {
    gate: Arc<StartGate>,
    write_end: PipeWriter,
}

impl StartGate {
    pub fn new() -> Result<(Arc<StartGate>, GateOpener), RunError> {
        let (parked_on, write_end) = io::pipe().map_err(RunError::Gate)?;
        let gate = Arc::new(StartGate {
            open: AtomicBool::new(false),
            parked_on,
        });
        let opener = GateOpener {
            gate: Arc::clone(&gate),
            write_end,
        };
        Ok((gate, opener))
    }

    /// Blocks until the gate opens, then lets the thread through.
    pub fn pass(&self) {
        let mut byte = [0_u8; 1];
        while !self.open.load(Ordering::Acquire) {
            match (&self.parked_on).read(&mut byte) {
                // EOF: the opener closed the write end (opened, or dropped on an error).
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Should not happen; degrade to polling rather than spin.
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

impl GateOpener {
    pub fn open(self) {
        self.gate.open.store(true, Ordering::Release);
        drop(self.write_end);
    }
}

/// Run-wide stop flag for time-based demos.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicBool);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

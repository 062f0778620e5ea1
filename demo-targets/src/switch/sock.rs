//! The switch's simulated sockets and queues. Lock-free on purpose: they must not show
//! up in a futex profile, so every wait lockprof sees comes from the switch's locks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// A VM's datagram socket as a time-based bounded queue: it holds at most `cap`
/// datagrams and the VM drains them at a fixed rate, `batch` at a time. The state is the
/// time at which the backlog would be empty, updated with a CAS.
#[derive(Debug)]
pub struct SimSock {
    cap: u64,
    drain_ns: u64,
    batch: u64,
    epoch: Instant,
    empty_at_ns: AtomicU64,
}

impl SimSock {
    pub fn new(cap: u64, drain_ns: u64, batch: u64) -> SimSock {
        SimSock {
            cap,
            drain_ns: drain_ns.max(1),
            batch: batch.max(1),
            epoch: Instant::now(),
            empty_at_ns: AtomicU64::new(0),
        }
    }

    /// `conn.Write`: `false` is ENOBUFS (buffer full).
    pub fn try_write(&self) -> bool {
        let period = self.drain_ns * self.batch;
        loop {
            let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            // The reader drains only at burst boundaries.
            let drained_to = now - now % period;
            let empty_at = self.empty_at_ns.load(Ordering::Acquire);
            let queued = empty_at.saturating_sub(drained_to).div_ceil(self.drain_ns);
            if queued >= self.cap {
                return false;
            }
            let next = empty_at.max(drained_to) + self.drain_ns;
            if self
                .empty_at_ns
                .compare_exchange_weak(empty_at, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return true;
            }
        }
    }
}

/// The VM→host direction: frames the VM has sent that `rx-vm0` has not read yet.
/// Frames carry no payload here, so a counter is the whole queue.
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) len: AtomicUsize,
    pub(super) cap: usize,
}

impl Inbound {
    pub(super) fn push(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok()
    }

    pub(super) fn pop(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

//! Drain generations: how the shared aggregation maps (`WAITS`, `WAKES`, `EDGES`,
//! `BLAME`) are emptied while the probes keep adding to them, without losing an add.
//!
//! The race this closes: a probe finds its row (a map lookup) and then adds to it (an
//! atomic `lock +=`, a few instructions later). A batch lookup-and-delete on another
//! CPU could copy the row and delete it in between; the add then landed in a freed
//! element (or one already reused for another key) and the event was counted nowhere.
//! Measured before this module (root test
//! `probe.rs::draining_while_the_probe_counts_loses_nothing`, drains with no pause
//! during a 2 s futex ping-pong): 7 of 10 runs lost 3–141 waits or wakes, silently;
//! 9 of 10 lost 1–4 with drains paced 8 ms apart, as these are.
//!
//! Why no add can be lost now: every key of those maps carries the generation the
//! program run read from `DRAIN_GEN` (once per run; all of a run's rows get the same
//! one). A drain ([`Generations::advance`], then `Probes::snapshot`):
//! 1. stores generation `g + 1` in `DRAIN_GEN`;
//! 2. waits for an RCU grace period. Every program lockprof attaches (tracepoints, raw
//!    tracepoints, uprobes; none sleepable) runs inside `rcu_read_lock()` (the
//!    kernel's `trace_call_bpf` and `__bpf_trace_run`), so by RCU's guarantee a run
//!    that did not see the store of step 1 began before the grace period did, and has
//!    ended when it is over; every later run reads `g + 1`. The wait is the kernel's
//!    own: updating an element of an array of maps from userspace calls
//!    `synchronize_rcu()` (`maybe_wait_bpf_programs` in kernel/bpf/syscall.c, since
//!    Linux 4.20: "so that userspace, when we return to it, knows that all
//!    non-sleepable programs that could be running use the new map value"; the
//!    kernel's own selftests trigger a grace period this way). Nothing shorter is
//!    provably enough: a sleep can be outlasted by a vCPU the hypervisor preempts in
//!    the middle of a program run;
//! 3. reads the rows of every generation but `g + 1` and deletes exactly those
//!    (`batch::Batch::take`): nothing adds to them any more, so reading then deleting
//!    them in two calls loses nothing. Rows of `g + 1` wait for the next drain.
//!
//! After the probes are detached (the final drain at Ctrl-C or target exit), a run can
//! no longer start, and once the grace period has passed none is running: the final
//! drain takes every row, whatever its generation.
//!
//! Cost: one grace period of wall time per drain (measured in the README,
//! "Performance"), no CPU; on the hot path, one inlined array read per counted call
//! and 8 more key bytes in `WAITS`, `WAKES` and `BLAME`.
//!
//! Owns: the generation counter, the grace-period trigger (a one-slot array of maps
//! lockprof creates for nothing else) and the rule of which rows a drain may take.
//! Must not: read the aggregation maps (`collect` does).

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::collect::batch;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;

/// The generation the probes count into, and the means to wait until they no longer
/// count into an older one.
pub struct Generations {
    /// The generation `DRAIN_GEN` holds (the map starts zeroed).
    current: u32,
    /// A one-slot array of maps: each update of its slot is a grace period.
    outer: OwnedFd,
    /// The map stored in `outer`'s slot (an empty one-slot array).
    inner: OwnedFd,
}

impl Generations {
    /// Create the grace-period trigger.
    pub fn new() -> std::io::Result<Self> {
        let inner = create_map(BPF_MAP_TYPE_ARRAY, 0, b"lockprof_rcu_in")?;
        let outer = create_map(
            BPF_MAP_TYPE_ARRAY_OF_MAPS,
            fd_u32(inner.as_fd()),
            b"lockprof_rcu",
        )?;
        Ok(Self {
            current: 0,
            outer,
            inner,
        })
    }

    /// Store the next generation in `gen_map` (the probes' `DRAIN_GEN`) and return once
    /// no program run can still add to a row of an older one. Returns the new
    /// generation: the rows of every other one may be drained.
    pub fn advance(&mut self, gen_map: BorrowedFd<'_>) -> std::io::Result<u32> {
        let next = self.current.wrapping_add(1);
        batch::update_elem(gen_map, &0u32, &next)?;
        self.current = next;
        self.grace_period()?;
        Ok(next)
    }

    /// Wait for an RCU grace period: replace the array of maps' only element (by the
    /// same map), which the kernel follows with `synchronize_rcu()`.
    fn grace_period(&self) -> std::io::Result<()> {
        batch::update_elem(self.outer.as_fd(), &0u32, &fd_u32(self.inner.as_fd()))
    }

    /// The trigger's two maps, for the kernel-memory total.
    pub fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.outer.as_fd(), self.inner.as_fd()]
    }
}

/// Whether a drain may take a row of generation `row`: not the one the probes count
/// into now (`current`), unless the probes are detached and nothing counts any more.
pub fn drainable(row: u32, current: u32, detached: bool) -> bool {
    detached || row != current
}

/// A row key of a drained map: its generation.
pub trait Generational {
    fn generation(&self) -> u32;
}

macro_rules! generational {
    ($($t:ty),*) => {$(
        impl Generational for $t {
            fn generation(&self) -> u32 {
                self.generation
            }
        }
    )*};
}
generational!(
    profiler_common::RawWaitKey,
    profiler_common::RawWakeKey,
    profiler_common::RawEdgeKey,
    profiler_common::RawBlameKey
);

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd() as u32
}

/// A one-slot array (`u32` → `u32`): a plain one, or an array of maps whose slot
/// holds maps like `inner_map_fd`.
fn create_map(map_type: u32, inner_map_fd: u32, name: &[u8]) -> std::io::Result<OwnedFd> {
    /// The `BPF_MAP_CREATE` member of `union bpf_attr`, up to the map name (the kernel
    /// takes the fields after it as zero).
    #[repr(C)]
    struct CreateAttr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        inner_map_fd: u32,
        numa_node: u32,
        map_name: [u8; 16],
    }
    let mut attr = CreateAttr {
        map_type,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
        inner_map_fd,
        numa_node: 0,
        map_name: [0; 16],
    };
    let n = name.len().min(15);
    attr.map_name[..n].copy_from_slice(&name[..n]);
    // SAFETY: `attr` is the map-create member of bpf_attr; the kernel only reads it.
    let fd = unsafe { batch::sys_bpf(BPF_MAP_CREATE, &mut attr) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor (opened close-on-exec) that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_takes_old_generations_and_every_row_once_detached() {
        assert!(drainable(4, 5, false));
        assert!(drainable(u32::MAX, 0, false), "across the wrap");
        assert!(!drainable(5, 5, false), "the probes may be adding to it");
        assert!(drainable(5, 5, true));
    }

    #[test]
    fn every_drained_key_names_its_generation() {
        let wait = profiler_common::RawWaitKey {
            generation: 7,
            ..Default::default()
        };
        let blame = profiler_common::RawBlameKey {
            generation: 8,
            ..Default::default()
        };
        assert_eq!((wait.generation(), blame.generation()), (7, 8));
    }
}

//! The wake side: waker sites (unlock / notify / post), the wake → wait edges that
//! credit each waiter site with its wakers, and what the wakers did meanwhile.
//!
//! Owns: `WakerAcc`, `EdgeAcc`, the "held across blocking" view of a holder's
//! activity and wake-to-run latency. Must not: attribute waits.

use std::collections::{BTreeMap, HashMap};

use crate::analyze::sites::{SiteIdentity, mark_lock_impl};
use crate::analyze::syscalls;
use crate::analyze::wrappers::LockFns;
use crate::collect::snapshot::{EdgeRow, HolderActivity, WakeRow, WakeToRun};
use crate::report::{
    Frame, HeldAcross, OffCpuIn, SyscallFailure, WakeLatency, WakerSite, WakerThread,
};

/// One waker of a site: the waits it ended and what it did during them.
#[derive(Default)]
pub(crate) struct EdgeAcc {
    pub(crate) waits: u64,
    pub(crate) wait_ns: u64,
    pub(crate) holder: HolderActivity,
    pub(crate) wake_to_run: WakeToRun,
    /// Of `waits`, those ended by a thread of another process (a shared futex).
    pub(crate) from_other_processes: u64,
}

impl EdgeAcc {
    pub(crate) fn add(&mut self, edge: &EdgeRow) {
        self.waits += edge.waits;
        if edge.cross_process() {
            self.from_other_processes += edge.waits;
        }
        self.wait_ns += edge.wait_ns;
        self.holder.merge(&edge.holder);
        self.wake_to_run.merge(&edge.wake_to_run);
    }
}

/// The report's view of a holder's activity: off-CPU time by syscall name, largest
/// first, and the last failed syscall named.
pub(crate) fn held_across(h: &HolderActivity) -> HeldAcross {
    let mut off_cpu_in: Vec<OffCpuIn> = h
        .off_ns
        .iter()
        .map(|(&nr, &ns)| OffCpuIn {
            syscall: syscalls::off_cpu_reason(nr),
            ns,
        })
        .collect();
    off_cpu_in.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.syscall.cmp(&b.syscall)));
    HeldAcross {
        window_ns: h.window_ns,
        // Off-CPU periods never exceed the windows they were clipped to.
        off_cpu_ns: h.off_cpu_ns().min(h.window_ns),
        off_cpu_in,
        truncated_windows: h.truncated_windows,
        failed_syscalls: h.failed_syscalls,
        last_failure: h.last_failure.map(|(nr, errno)| SyscallFailure {
            syscall: syscalls::syscall_name(nr),
            errno: syscalls::errno_name(errno),
        }),
    }
}

pub(crate) fn wake_latency(w: &WakeToRun) -> WakeLatency {
    WakeLatency {
        count: w.count,
        avg_ns: w.total_ns.checked_div(w.count).unwrap_or(0),
        max_ns: w.max_ns,
    }
}

/// Where a waker site is: function, file, line.
pub(crate) type WakerLocations = HashMap<String, (Option<String>, Option<String>, Option<u32>)>;

pub(crate) struct WakerAcc {
    pub(crate) site: SiteIdentity,
    pub(crate) calls: u64,
    pub(crate) woken: u64,
    pub(crate) woke_none: u64,
    pub(crate) woke_many: u64,
    pub(crate) threads: BTreeMap<(u32, u32), WakerThread>,
    /// Hottest stack so far: (woken, calls, frames).
    pub(crate) stack: (u64, u64, Vec<Frame>),
    pub(crate) caused_waits: u64,
    pub(crate) caused_wait_ns: u64,
    pub(crate) held: HolderActivity,
}

impl WakerAcc {
    pub(crate) fn new(site: SiteIdentity) -> Self {
        Self {
            site,
            calls: 0,
            woken: 0,
            woke_none: 0,
            woke_many: 0,
            threads: BTreeMap::new(),
            stack: (0, 0, Vec::new()),
            caused_waits: 0,
            caused_wait_ns: 0,
            held: HolderActivity::default(),
        }
    }

    pub(crate) fn add(&mut self, row: &WakeRow, frames: &[Frame]) {
        self.calls += row.calls;
        self.woken += row.woken;
        self.woke_none += row.woke_none;
        self.woke_many += row.woke_many;
        let t = self
            .threads
            .entry((row.tgid, row.tid))
            .or_insert_with(|| WakerThread {
                pid: row.tgid,
                tid: row.tid,
                name: row.comm.clone(),
                ..WakerThread::default()
            });
        t.calls += row.calls;
        t.woken += row.woken;
        if (row.woken, row.calls) > (self.stack.0, self.stack.1) || self.stack.2.is_empty() {
            self.stack = (row.woken, row.calls, frames.to_vec());
        }
    }

    pub(crate) fn finish(self, lock_fns: &LockFns) -> WakerSite {
        let mut threads: Vec<WakerThread> = self.threads.into_values().collect();
        threads.sort_by(|a, b| {
            b.calls
                .cmp(&a.calls)
                .then((a.pid, a.tid).cmp(&(b.pid, b.tid)))
        });
        WakerSite {
            id: self.site.id,
            kind: self.site.kind,
            lock_impl: self.site.lock_impl.to_owned(),
            function: self.site.function,
            file: self.site.file,
            line: self.site.line,
            module: self.site.module,
            calls: self.calls,
            woken: self.woken,
            woke_none: self.woke_none,
            woke_many: self.woke_many,
            threads,
            caused_waits: self.caused_waits,
            caused_wait_ns: self.caused_wait_ns,
            held: held_across(&self.held),
            stack: mark_lock_impl(&self.stack.2, lock_fns),
        }
    }
}

//! What the probe aggregated, as owned userspace data.
//!
//! Owns: decoding the kernel's per-CPU rows (`Raw*`) into [`WaitRow`]/[`WakeRow`],
//! summing CPUs, and the [`Snapshot`] handed down the pipeline. Must not: touch aya or
//! the kernel (`collect` reads the maps and calls [`WaitRow::from_raw`]), or attribute
//! and symbolize (`aggregate`, `symbolize`).

use std::collections::BTreeMap;

use profiler_common::{
    COPY_SHARED, Loss, RawEdgeKey, RawEdgeStats, RawUserStack, RawWaitKey, RawWaitStats,
    RawWakeKey, RawWakeStats,
};

use crate::analyze::histogram::Log2Histogram;

/// What the kernel counted since the previous snapshot (its maps are drained), plus
/// the stacks it references that the reader did not know yet. `session::fold` sums
/// them; the report is built from that sum, which has the same shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub waits: Vec<WaitRow>,
    pub wakes: Vec<WakeRow>,
    /// Which wake stack ended which wait stack.
    pub edges: Vec<EdgeRow>,
    /// Which holder's release ended which part of whose waits (holder blame).
    pub blame: Vec<crate::collect::blame::BlameRow>,
    /// Frame-pointer stacks by `(tgid, stack id)`: raw instruction addresses,
    /// innermost first (the stack copies' ids are read apart, see
    /// `Probes::drain_copies`).
    pub stacks: BTreeMap<(u32, i32), Vec<u64>>,
    pub losses: KernelLosses,
    /// Threads blocked in a futex wait at the moment of the snapshot.
    pub unfinished_waits: u64,
}

/// The thread id of folded rows: the exited threads' wakes and edges, and the waits of
/// exited threads that also woke the address they waited on (see `session::fold`);
/// also the process id of folded rows of exited processes.
pub const EXITED: u32 = u32::MAX;
/// The thread id of folded waits of exited threads that never woke their address,
/// kept apart from [`EXITED`] so an address's behaviour is judged as before folding.
pub const EXITED_WAITER: u32 = u32::MAX - 1;

/// The futex address of folded rows of exited processes beyond the addresses kept
/// with their own rows (see `session::fold`): listed as one "other addresses" entry.
pub const FOLDED_ADDRESS: u64 = u64::MAX;

/// The thread or process id a report lists for a row's `tid` or `tgid`: 0 for folded
/// exited threads or processes.
pub fn listed_id(id: u32) -> u32 {
    if id == EXITED || id == EXITED_WAITER {
        0
    } else {
        id
    }
}

/// The registers at a futex syscall and the user stack bytes copied from the page
/// holding `sp` (see `RawUserStack`), ready for `unwind`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserStackCopy {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// User address of `bytes[0]`.
    pub base: u64,
    pub bytes: Vec<u8>,
    /// Any thread of the process may name this copy's id (the probe's per-process
    /// copy cache handed it out), not only the one that took it.
    pub shared: bool,
}

impl UserStackCopy {
    /// Decode `raw` into `self`, reusing its buffer.
    pub fn fill_from(&mut self, raw: &RawUserStack) {
        let len = (raw.len as usize).min(raw.data.len());
        self.ip = raw.ip;
        self.sp = raw.sp;
        self.bp = raw.bp;
        self.base = raw.sp & !4095;
        self.shared = raw.flags & COPY_SHARED != 0;
        self.bytes.clear();
        self.bytes.extend_from_slice(&raw.data[..len]);
    }
}

/// What the waits of one row (or one site) came to: the kernel's `RawWaitStats`
/// counters, decoded. The one list of these counts: kernel rows, drained rows and
/// site accumulators all hold a `WaitCounts` and sum it with [`WaitCounts::merge`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitCounts {
    /// Waits that blocked and returned 0 (woken, or the lock was handed over).
    pub blocked: u64,
    /// Sum of the blocked waits' durations.
    pub total_ns: u64,
    /// Shortest blocked wait; meaningless (0) while `blocked == 0`.
    pub min_ns: u64,
    pub max_ns: u64,
    /// Waits that returned `-EAGAIN`: nothing blocked.
    pub eagain: u64,
    pub timedout: u64,
    pub timedout_ns: u64,
    pub interrupted: u64,
    pub other_err: u64,
    /// Blocked waits right after a wakeup from the same futex (a wasted wakeup).
    pub rewaits: u64,
    /// Blocked waits with no wake call seen on their address.
    pub unpaired: u64,
    pub hist: Log2Histogram,
}

impl WaitCounts {
    /// One kernel slot's counters.
    pub fn from_raw(s: &RawWaitStats) -> Self {
        WaitCounts {
            blocked: s.blocked,
            total_ns: s.total_ns,
            min_ns: s.min_ns,
            max_ns: s.max_ns,
            eagain: s.eagain,
            timedout: s.timedout,
            timedout_ns: s.timedout_ns,
            interrupted: s.interrupted,
            other_err: s.other_err,
            rewaits: s.rewaits,
            unpaired: s.unpaired,
            hist: Log2Histogram::from_buckets(&s.hist),
        }
    }

    /// Add `other`'s counts. A side with no blocked wait has no minimum (a kernel slot
    /// that never saw one holds 0 from zero-initialisation), so minima only count
    /// sides with blocked waits.
    pub fn merge(&mut self, other: &WaitCounts) {
        self.min_ns = match (self.blocked, other.blocked) {
            (0, _) => other.min_ns,
            (_, 0) => self.min_ns,
            _ => self.min_ns.min(other.min_ns),
        };
        self.max_ns = self.max_ns.max(other.max_ns);
        self.blocked += other.blocked;
        self.total_ns += other.total_ns;
        self.eagain += other.eagain;
        self.timedout += other.timedout;
        self.timedout_ns += other.timedout_ns;
        self.interrupted += other.interrupted;
        self.other_err += other.other_err;
        self.rewaits += other.rewaits;
        self.unpaired += other.unpaired;
        self.hist.merge(&other.hist);
    }
}

/// One (thread, futex address, stack, op) wait row, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitRow {
    pub tgid: u32,
    pub tid: u32,
    pub comm: String,
    pub uaddr: u64,
    /// Negative when the kernel could not capture the stack.
    pub stack_id: i32,
    pub op: u32,
    /// Candidate return address of a frameless leaf's caller (see `RawWaitKey`).
    pub leaf_ret: u64,
    pub counts: WaitCounts,
}

impl WaitRow {
    /// Sum one key's per-CPU slots.
    pub fn from_raw(key: &RawWaitKey, per_cpu: &[RawWaitStats]) -> Self {
        let mut row = WaitRow {
            tgid: key.tgid,
            tid: key.tid,
            uaddr: key.uaddr,
            stack_id: key.stack_id,
            op: key.op,
            leaf_ret: key.leaf_ret,
            ..WaitRow::default()
        };
        for s in per_cpu {
            if row.comm.is_empty() {
                row.comm = comm_str(&s.comm);
            }
            row.counts.merge(&WaitCounts::from_raw(s));
        }
        row
    }

    /// Add a later part of the same key's counts (rows drained from the kernel,
    /// then new counts for the same key).
    pub fn merge(&mut self, other: &WaitRow) {
        if self.comm.is_empty() {
            self.comm.clone_from(&other.comm);
        }
        self.counts.merge(&other.counts);
    }
}

/// One (thread, futex address, stack, op) wake row, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WakeRow {
    pub tgid: u32,
    pub tid: u32,
    pub comm: String,
    pub uaddr: u64,
    pub stack_id: i32,
    pub op: u32,
    pub leaf_ret: u64,
    pub calls: u64,
    pub woken: u64,
    pub woke_none: u64,
    pub woke_many: u64,
    pub errors: u64,
}

impl WakeRow {
    pub fn from_raw(key: &RawWakeKey, per_cpu: &[RawWakeStats]) -> Self {
        let mut row = WakeRow {
            tgid: key.tgid,
            tid: key.tid,
            uaddr: key.uaddr,
            stack_id: key.stack_id,
            op: key.op,
            leaf_ret: key.leaf_ret,
            ..WakeRow::default()
        };
        for s in per_cpu {
            row.merge(&WakeRow {
                comm: comm_str(&s.comm),
                calls: s.calls,
                woken: s.woken,
                woke_none: s.woke_none,
                woke_many: s.woke_many,
                errors: s.errors,
                ..WakeRow::default()
            });
        }
        row
    }

    /// As [`WaitRow::merge`].
    pub fn merge(&mut self, other: &WakeRow) {
        if self.comm.is_empty() {
            self.comm.clone_from(&other.comm);
        }
        self.calls += other.calls;
        self.woken += other.woken;
        self.woke_none += other.woke_none;
        self.woke_many += other.woke_many;
        self.errors += other.errors;
    }
}

/// A wake → wait edge, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeRow {
    pub tgid: u32,
    pub waiter_stack_id: i32,
    pub waiter_leaf_ret: u64,
    pub waker_stack_id: i32,
    pub waker_leaf_ret: u64,
    pub waker_tid: u32,
    /// The waker's process when it is not `tgid` (a shared futex); 0 when it is.
    pub waker_tgid: u32,
    pub waits: u64,
    pub wait_ns: u64,
    /// What the waker did while these waits waited (see [`HolderActivity`]).
    pub holder: HolderActivity,
    /// From the wake call until the waiter was on a CPU again.
    pub wake_to_run: WakeToRun,
}

/// The waker ("holder") thread during its waiters' windows — each window runs from
/// the start of a wait to the wake call that ended it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HolderActivity {
    /// Sum of the windows.
    pub window_ns: u64,
    /// Off-CPU time inside the windows, by what the holder was in: a syscall number,
    /// [`profiler_common::OFF_RUNNABLE`] (waiting for a CPU) or
    /// [`profiler_common::OFF_NO_SYSCALL`]; `None` for the kernel's "other" bucket.
    pub off_ns: BTreeMap<Option<u32>, u64>,
    /// Windows that began before the oldest off-CPU period the kernel kept for the
    /// holder: their off-CPU time is a lower bound.
    pub truncated_windows: u64,
    /// Failed syscalls of the holder inside the windows, and the last one
    /// (syscall number, errno).
    pub failed_syscalls: u64,
    pub last_failure: Option<(u32, u32)>,
}

impl HolderActivity {
    pub fn off_cpu_ns(&self) -> u64 {
        self.off_ns.values().sum()
    }

    /// Combine two edges' activity (a site is usually woken through several edges).
    pub fn merge(&mut self, other: &HolderActivity) {
        self.window_ns += other.window_ns;
        for (nr, ns) in &other.off_ns {
            *self.off_ns.entry(*nr).or_default() += ns;
        }
        self.truncated_windows += other.truncated_windows;
        self.failed_syscalls += other.failed_syscalls;
        if other.last_failure.is_some() {
            self.last_failure = other.last_failure;
        }
    }
}

/// Wake-to-run latency over `count` measured waits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WakeToRun {
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
}

impl WakeToRun {
    pub fn merge(&mut self, other: &WakeToRun) {
        self.count += other.count;
        self.total_ns += other.total_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

impl EdgeRow {
    /// As [`WaitRow::merge`].
    pub fn merge(&mut self, other: &EdgeRow) {
        self.waits += other.waits;
        self.wait_ns += other.wait_ns;
        self.holder.merge(&other.holder);
        self.wake_to_run.merge(&other.wake_to_run);
    }

    /// The process whose stack `waker_stack_id` is.
    pub fn waker_pid(&self) -> u32 {
        if self.waker_tgid == 0 {
            self.tgid
        } else {
            self.waker_tgid
        }
    }

    /// Whether the waker was a thread of another process than the waiter.
    pub fn cross_process(&self) -> bool {
        self.waker_pid() != self.tgid
    }

    pub fn from_raw(key: &RawEdgeKey, per_cpu: &[RawEdgeStats]) -> Self {
        let mut row = EdgeRow {
            tgid: key.tgid,
            waiter_stack_id: key.waiter_stack_id,
            waiter_leaf_ret: key.waiter_leaf_ret,
            waker_stack_id: key.waker_stack_id,
            waker_leaf_ret: key.waker_leaf_ret,
            waker_tid: key.waker_tid,
            // 0 for "the waiter's own process" keeps in-process edges as they were.
            waker_tgid: if key.waker_tgid == key.tgid {
                0
            } else {
                key.waker_tgid
            },
            ..EdgeRow::default()
        };
        for s in per_cpu {
            row.waits += s.waits;
            row.wait_ns += s.wait_ns;
            let h = &mut row.holder;
            h.window_ns += s.window_ns;
            for slot in s.off.iter().filter(|slot| slot.ns > 0) {
                *h.off_ns.entry(Some(slot.nr)).or_default() += slot.ns;
            }
            if s.off_other_ns > 0 {
                *h.off_ns.entry(None).or_default() += s.off_other_ns;
            }
            h.truncated_windows += s.truncated;
            h.failed_syscalls += s.fails;
            if s.fails > 0 {
                h.last_failure = Some((s.fail_nr, s.fail_errno));
            }
            row.wake_to_run.merge(&WakeToRun {
                count: s.wake_to_run_n(),
                total_ns: s.wake_to_run_ns,
                max_ns: s.wake_to_run_max_ns,
            });
        }
        row
    }
}

/// The kernel's loss counters, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelLosses {
    pub counts: BTreeMap<String, u64>,
}

impl KernelLosses {
    pub fn get(&self, loss: Loss) -> u64 {
        self.counts.get(loss_name(loss)).copied().unwrap_or(0)
    }

    pub fn set(&mut self, loss: Loss, n: u64) {
        self.counts.insert(loss_name(loss).to_owned(), n);
    }
}

/// Stable name of a loss counter (used as the key in snapshots).
pub fn loss_name(loss: Loss) -> &'static str {
    match loss {
        Loss::StackCollision => "stack_collisions",
        Loss::StackError => "stack_errors",
        Loss::WaitMapFull => "wait_map_full",
        Loss::WakeMapFull => "wake_map_full",
        Loss::InFlightMapFull => "inflight_map_full",
        Loss::TargetMapFull => "target_map_full",
        Loss::UserReadError => "user_read_errors",
        Loss::EdgeMapFull => "edge_map_full",
        Loss::UserStackCopy => "user_stack_copy_errors",
        Loss::LastWakeLost => "last_wake_lost",
        Loss::HolderWindowLost => "holder_windows_lost",
        Loss::SharedFutexUnmapped => "shared_futex_unmapped",
        Loss::BlameMapFull => "blame_map_full",
    }
}

/// A NUL-padded kernel `comm` as text.
fn comm_str(comm: &[u8; 16]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use profiler_common::HIST_BUCKETS;

    /// A raw wait row: `blocked` waits totalling `total`, one `eagain`.
    pub(crate) fn stats(blocked: u64, total: u64, min: u64, max: u64) -> RawWaitStats {
        RawWaitStats {
            blocked,
            total_ns: total,
            min_ns: min,
            max_ns: max,
            eagain: 1,
            timedout: 0,
            timedout_ns: 0,
            interrupted: 0,
            other_err: 0,
            rewaits: 0,
            unpaired: 0,
            hist: [0; HIST_BUCKETS],
            comm: *b"worker-1\0\0\0\0\0\0\0\0",
        }
    }

    #[test]
    fn from_raw_sums_cpus_and_ignores_empty_minima() {
        let key = RawWaitKey {
            tgid: 10,
            tid: 11,
            uaddr: 0x1000,
            stack_id: 3,
            op: 9,
            leaf_ret: 0,
            ..RawWaitKey::default()
        };
        // CPU 1 never blocked: its zero min must not win.
        let mut idle = stats(0, 0, 0, 0);
        idle.comm = [0; 16];
        let row = WaitRow::from_raw(&key, &[idle, stats(2, 300, 100, 200), stats(1, 50, 50, 50)]);
        assert_eq!(row.counts.blocked, 3);
        assert_eq!(row.counts.total_ns, 350);
        assert_eq!(row.counts.min_ns, 50);
        assert_eq!(row.counts.max_ns, 200);
        assert_eq!(row.counts.eagain, 3);
        assert_eq!(row.comm, "worker-1");
    }

    #[test]
    fn from_raw_without_blocks_has_zero_min() {
        let row = WaitRow::from_raw(&RawWaitKey::default(), &[stats(0, 0, 0, 0)]);
        assert_eq!(row.counts.min_ns, 0);
    }

    #[test]
    fn wake_rows_sum_cpus() {
        let s = RawWakeStats {
            calls: 2,
            woken: 3,
            woke_none: 1,
            woke_many: 1,
            errors: 0,
            comm: *b"main\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        let row = WakeRow::from_raw(&RawWakeKey::default(), &[s, s]);
        assert_eq!(
            (row.calls, row.woken, row.woke_none, row.woke_many),
            (4, 6, 2, 2)
        );
        assert_eq!(row.comm, "main");
    }
}

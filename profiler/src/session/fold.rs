//! The session's running totals: every drained [`Snapshot`] summed, rows keyed by
//! canonical stacks, and the rows of exited threads folded together once there are
//! many of them — so what lockprof holds grows with its targets' call paths, lock
//! addresses and live threads, never with the threads that came and went.
//!
//! Owns: [`Totals`] (the summed rows, with an index per row key so a refresh adds
//! only what it drained and never copies what was summed before) and the folding
//! rule for exited threads. Must not: read the kernel or `/proc` (the session hands
//! it the snapshots and says which threads are alive) or symbolize (it is handed the
//! canonical key of each stack).
//!
//! Why folding keeps the report's meaning: totals, waits, wakers, holders, sites,
//! addresses and stacks do not depend on thread ids. What does — the per-thread lists
//! and an address's behaviour (do its waiters also wake it?) — is kept: a thread is
//! listed on its own while at most [`THREAD_DETAIL`] threads are held, and a folded
//! wait row remembers whether its thread also woke that address ([`EXITED`] vs
//! [`EXITED_WAITER`]). Exited processes (a workload that keeps forking) are folded
//! into one, listed as process 0, once more than [`PROCESS_DETAIL`] are held; their
//! lock addresses (each process's own, meaningless once it is gone) keep their own
//! rows for the [`ADDRESS_DETAIL`] addresses waited on longest, the rest are summed
//! under [`FOLDED_ADDRESS`] — so a workload that forks children with locks of their
//! own for hours holds a bounded number of rows.

use std::collections::{HashMap, HashSet};

use crate::analyze::aggregate::StackKey;
use crate::collect::blame::BlameRow;
use crate::collect::snapshot::{
    EXITED, EXITED_WAITER, EdgeRow, FOLDED_ADDRESS, Snapshot, WaitRow, WakeRow,
};

/// Threads held with their own rows before exited ones are folded.
pub(super) const THREAD_DETAIL: usize = 256;
/// Exited processes held with their own rows before they are folded into one.
pub(super) const PROCESS_DETAIL: usize = 64;
/// Lock addresses of folded exited processes kept with their own rows.
pub(super) const ADDRESS_DETAIL: usize = 256;
/// The name folded rows carry.
const EXITED_NAME: &str = "[exited threads]";

type WaitId = (u32, u32, u64, i32, u32, u64);
type EdgeId = (u32, i32, u64, i32, u64, u32, u32);
type BlameId = (u32, i32, u64, u32, i32, u64);

fn wait_id(r: &WaitRow) -> WaitId {
    (r.tgid, r.tid, r.uaddr, r.stack_id, r.op, r.leaf_ret)
}

fn wake_id(r: &WakeRow) -> WaitId {
    (r.tgid, r.tid, r.uaddr, r.stack_id, r.op, r.leaf_ret)
}

fn edge_id(e: &EdgeRow) -> EdgeId {
    (
        e.tgid,
        e.waiter_stack_id,
        e.waiter_leaf_ret,
        e.waker_stack_id,
        e.waker_leaf_ret,
        e.waker_tid,
        e.waker_tgid,
    )
}

fn blame_id(b: &BlameRow) -> BlameId {
    (
        b.tgid,
        b.waiter_stack_id,
        b.waiter_leaf_ret,
        b.holder_tgid,
        b.holder_stack_id,
        b.holder_leaf_ret,
    )
}

/// Rows of one kind, summed by key: the rows in a `Vec` (what the report borrows)
/// and where each key's row is.
struct Indexed<K, R> {
    at: HashMap<K, usize>,
    key: fn(&R) -> K,
    merge: fn(&mut R, &R),
}

impl<K: std::hash::Hash + Eq, R> Indexed<K, R> {
    fn new(key: fn(&R) -> K, merge: fn(&mut R, &R)) -> Self {
        Self {
            at: HashMap::new(),
            key,
            merge,
        }
    }

    fn add(&mut self, rows: &mut Vec<R>, row: R) {
        if let Some(&i) = self.at.get(&(self.key)(&row)) {
            (self.merge)(&mut rows[i], &row);
        } else {
            self.at.insert((self.key)(&row), rows.len());
            rows.push(row);
        }
    }

    /// Re-key every row after their keys changed, merging rows whose keys now meet.
    fn rebuild(&mut self, rows: &mut Vec<R>) {
        self.at.clear();
        for row in std::mem::take(rows) {
            self.add(rows, row);
        }
    }
}

/// What the session has drained so far, summed.
pub(super) struct Totals {
    /// The rows, with canonical stack keys (see `session::stacks`); `stacks` stays
    /// empty, `losses` and `unfinished_waits` are the latest.
    pub(super) snap: Snapshot,
    waits: Indexed<WaitId, WaitRow>,
    wakes: Indexed<WaitId, WakeRow>,
    edges: Indexed<EdgeId, EdgeRow>,
    blame: Indexed<BlameId, BlameRow>,
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            snap: Snapshot::default(),
            waits: Indexed::new(wait_id, WaitRow::merge),
            wakes: Indexed::new(wake_id, WakeRow::merge),
            edges: Indexed::new(edge_id, EdgeRow::merge),
            blame: Indexed::new(blame_id, BlameRow::merge),
        }
    }
}

impl Totals {
    /// Add one drained snapshot. `canonical(key, tid)` gives the canonical key of a
    /// raw stack seen in thread `tid` (0: not known, for an edge's waiter side).
    pub(super) fn add(
        &mut self,
        delta: Snapshot,
        mut canonical: impl FnMut(StackKey, u32) -> StackKey,
    ) {
        for mut r in delta.waits {
            (_, r.stack_id, r.leaf_ret) = canonical((r.tgid, r.stack_id, r.leaf_ret), r.tid);
            self.waits.add(&mut self.snap.waits, r);
        }
        for mut r in delta.wakes {
            (_, r.stack_id, r.leaf_ret) = canonical((r.tgid, r.stack_id, r.leaf_ret), r.tid);
            self.wakes.add(&mut self.snap.wakes, r);
        }
        for mut e in delta.edges {
            (_, e.waiter_stack_id, e.waiter_leaf_ret) =
                canonical((e.tgid, e.waiter_stack_id, e.waiter_leaf_ret), 0);
            (_, e.waker_stack_id, e.waker_leaf_ret) = canonical(
                (e.waker_pid(), e.waker_stack_id, e.waker_leaf_ret),
                e.waker_tid,
            );
            self.edges.add(&mut self.snap.edges, e);
        }
        for mut b in delta.blame {
            (_, b.waiter_stack_id, b.waiter_leaf_ret) =
                canonical((b.tgid, b.waiter_stack_id, b.waiter_leaf_ret), 0);
            if !b.earlier() {
                (_, b.holder_stack_id, b.holder_leaf_ret) =
                    canonical((b.holder_tgid, b.holder_stack_id, b.holder_leaf_ret), 0);
            }
            self.blame.add(&mut self.snap.blame, b);
        }
        self.snap.losses = delta.losses;
        self.snap.unfinished_waits = delta.unfinished_waits;
    }

    /// The processes the rows belong to (folded exited processes left out).
    pub(super) fn tgids(&self) -> HashSet<u32> {
        let waits = self.snap.waits.iter().map(|r| r.tgid);
        let wakes = self.snap.wakes.iter().map(|r| r.tgid);
        let edges = self.snap.edges.iter().map(|e| e.tgid);
        let blame = self.snap.blame.iter().map(|b| b.tgid);
        waits
            .chain(wakes)
            .chain(edges)
            .chain(blame)
            .filter(|&p| p != EXITED)
            .collect()
    }

    /// Threads held with their own rows.
    fn threads(&self) -> HashSet<(u32, u32)> {
        let own = |tid: u32| tid != 0 && tid != EXITED && tid != EXITED_WAITER;
        let waits = self.snap.waits.iter().map(|r| (r.tgid, r.tid));
        let wakes = self.snap.wakes.iter().map(|r| (r.tgid, r.tid));
        let edges = self.snap.edges.iter().map(|e| (e.waker_pid(), e.waker_tid));
        waits
            .chain(wakes)
            .chain(edges)
            .filter(|&(_, tid)| own(tid))
            .collect()
    }

    /// When more than [`THREAD_DETAIL`] threads are held, fold the rows of those no
    /// longer `alive` into one per key; when more than [`PROCESS_DETAIL`] exited
    /// processes are held, fold their rows into one process ([`EXITED`]).
    /// `alive(tgid, 0)`: is the process alive. Returns how many threads and processes
    /// were folded.
    pub(super) fn fold_exited(&mut self, alive: impl Fn(u32, u32) -> bool) -> (usize, usize) {
        let threads = self.threads();
        let exited_processes: HashSet<u32> =
            self.tgids().into_iter().filter(|&p| !alive(p, 0)).collect();
        let fold_processes = exited_processes.len() > PROCESS_DETAIL;
        let fold_threads = threads.len() > THREAD_DETAIL;
        let exited: HashSet<(u32, u32)> = threads
            .into_iter()
            .filter(|&(tgid, tid)| {
                (fold_threads && !alive(tgid, tid))
                    || (fold_processes && exited_processes.contains(&tgid))
            })
            .collect();
        if exited.is_empty() && !fold_processes {
            return (0, 0);
        }
        self.fold_threads(&exited);
        if fold_processes {
            for r in &mut self.snap.waits {
                if exited_processes.contains(&r.tgid) {
                    r.tgid = EXITED;
                }
            }
            for r in &mut self.snap.wakes {
                if exited_processes.contains(&r.tgid) {
                    r.tgid = EXITED;
                }
            }
            // Canonical stack keys name their frames whatever the process; a waker
            // or holder in another process is folded with its own process, or kept.
            let fold = |pid: &mut u32| {
                if exited_processes.contains(pid) {
                    *pid = EXITED;
                }
            };
            for e in &mut self.snap.edges {
                let own = e.waker_tgid == 0;
                fold(&mut e.tgid);
                if !own {
                    fold(&mut e.waker_tgid);
                }
            }
            for b in &mut self.snap.blame {
                fold(&mut b.tgid);
                fold(&mut b.holder_tgid);
            }
            self.fold_exited_addresses();
        }
        self.waits.rebuild(&mut self.snap.waits);
        self.wakes.rebuild(&mut self.snap.wakes);
        self.edges.rebuild(&mut self.snap.edges);
        self.blame.rebuild(&mut self.snap.blame);
        let processes = if fold_processes {
            exited_processes.len()
        } else {
            0
        };
        (exited.len(), processes)
    }

    /// Keep the [`ADDRESS_DETAIL`] addresses of folded processes waited on longest
    /// and sum the others' rows under [`FOLDED_ADDRESS`] (the caller re-keys).
    fn fold_exited_addresses(&mut self) {
        let mut waited: HashMap<u64, u64> = HashMap::new();
        for r in self.snap.waits.iter().filter(|r| r.tgid == EXITED) {
            *waited.entry(r.uaddr).or_default() += r.counts.total_ns;
        }
        for r in self.snap.wakes.iter().filter(|r| r.tgid == EXITED) {
            waited.entry(r.uaddr).or_default();
        }
        waited.remove(&FOLDED_ADDRESS);
        if waited.len() <= ADDRESS_DETAIL {
            return;
        }
        let mut ranked: Vec<(u64, u64)> = waited.into_iter().collect();
        // Longest wait first; the address breaks ties so the choice is stable.
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let kept: HashSet<u64> = ranked[..ADDRESS_DETAIL].iter().map(|a| a.0).collect();
        for r in self.snap.waits.iter_mut().filter(|r| r.tgid == EXITED) {
            if !kept.contains(&r.uaddr) {
                r.uaddr = FOLDED_ADDRESS;
            }
        }
        for r in self.snap.wakes.iter_mut().filter(|r| r.tgid == EXITED) {
            if !kept.contains(&r.uaddr) {
                r.uaddr = FOLDED_ADDRESS;
            }
        }
    }

    /// Give the rows of `exited` threads the folded thread ids (the caller re-keys).
    fn fold_threads(&mut self, exited: &HashSet<(u32, u32)>) {
        // Which exited threads woke the address they waited on, before the wakes lose
        // their thread ids.
        let woke: HashSet<(u32, u32, u64)> = self
            .snap
            .wakes
            .iter()
            .filter(|r| exited.contains(&(r.tgid, r.tid)))
            .map(|r| (r.tgid, r.tid, r.uaddr))
            .collect();
        let rename = |comm: &mut String| {
            comm.clear();
            comm.push_str(EXITED_NAME);
        };
        for r in &mut self.snap.waits {
            if exited.contains(&(r.tgid, r.tid)) {
                r.tid = if woke.contains(&(r.tgid, r.tid, r.uaddr)) {
                    EXITED
                } else {
                    EXITED_WAITER
                };
                rename(&mut r.comm);
            }
        }
        for r in &mut self.snap.wakes {
            if exited.contains(&(r.tgid, r.tid)) {
                r.tid = EXITED;
                rename(&mut r.comm);
            }
        }
        for e in &mut self.snap.edges {
            if exited.contains(&(e.waker_pid(), e.waker_tid)) {
                e.waker_tid = EXITED;
            }
        }
    }

    /// Lend the totals with `extra` rows appended (cumulative rows that are not
    /// drained, e.g. the Go probes'), for the time of `f`; the totals are left as
    /// they were.
    pub(super) fn with_extra<T>(&mut self, extra: Snapshot, f: impl FnOnce(&Snapshot) -> T) -> T {
        let lens = (
            self.snap.waits.len(),
            self.snap.wakes.len(),
            self.snap.edges.len(),
            self.snap.blame.len(),
        );
        let (losses, unfinished) = (self.snap.losses.clone(), self.snap.unfinished_waits);
        self.snap.waits.extend(extra.waits);
        self.snap.wakes.extend(extra.wakes);
        self.snap.edges.extend(extra.edges);
        self.snap.blame.extend(extra.blame);
        for (name, n) in extra.losses.counts {
            *self.snap.losses.counts.entry(name).or_default() += n;
        }
        self.snap.unfinished_waits += extra.unfinished_waits;
        let out = f(&self.snap);
        self.snap.waits.truncate(lens.0);
        self.snap.wakes.truncate(lens.1);
        self.snap.edges.truncate(lens.2);
        self.snap.blame.truncate(lens.3);
        self.snap.losses = losses;
        self.snap.unfinished_waits = unfinished;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::behavior;
    use crate::collect::snapshot::WaitCounts;
    use crate::report::Behavior;

    fn wait(tgid: u32, tid: u32, uaddr: u64, stack_id: i32, ns: u64) -> WaitRow {
        let mut r = WaitRow {
            tgid,
            tid,
            comm: format!("t{tid}"),
            uaddr,
            stack_id,
            counts: WaitCounts {
                blocked: 1,
                total_ns: ns,
                min_ns: ns,
                max_ns: ns,
                ..WaitCounts::default()
            },
            ..WaitRow::default()
        };
        r.counts.hist.counts[profiler_common::hist_bucket(ns)] += 1;
        r
    }

    fn wake(tgid: u32, tid: u32, uaddr: u64, stack_id: i32) -> WakeRow {
        WakeRow {
            tgid,
            tid,
            comm: format!("t{tid}"),
            uaddr,
            stack_id,
            calls: 1,
            woken: 1,
            ..WakeRow::default()
        }
    }

    /// Every raw stack id `n` is the call path `n % 2` (threads repeat two paths).
    fn canon((tgid, id, leaf): StackKey, _tid: u32) -> StackKey {
        (tgid, if id < 0 { id } else { 1000 + id % 2 }, leaf)
    }

    #[test]
    fn drained_snapshots_add_up_per_canonical_key() {
        let mut t = Totals::default();
        for round in 0..3u64 {
            t.add(
                Snapshot {
                    // Two raw stacks of one call path in one thread: one row.
                    waits: vec![wait(1, 7, 0x10, 2, 100 + round), wait(1, 7, 0x10, 4, 50)],
                    wakes: vec![wake(1, 8, 0x10, 3)],
                    unfinished_waits: round,
                    ..Snapshot::default()
                },
                canon,
            );
        }
        assert_eq!(t.snap.waits.len(), 1);
        let w = &t.snap.waits[0];
        assert_eq!(
            (
                w.counts.blocked,
                w.counts.total_ns,
                w.counts.min_ns,
                w.counts.max_ns
            ),
            (6, 453, 50, 102)
        );
        assert_eq!(w.stack_id, 1000);
        assert_eq!(t.snap.wakes[0].calls, 3);
        assert_eq!(t.snap.unfinished_waits, 2, "the latest, not a sum");
    }

    /// A churning lock (every thread waits and wakes) and a churning event (waiters
    /// that never wake it, woken by other threads): `threads` of each, all exited.
    fn churn(threads: u32) -> Totals {
        let mut t = Totals::default();
        let mut delta = Snapshot::default();
        for tid in 1..=threads {
            delta.waits.push(wait(1, tid, 0xa, 1, 10));
            delta.wakes.push(wake(1, tid, 0xa, 2));
            delta.waits.push(wait(1, 10_000 + tid, 0xe, 3, 20));
            delta.wakes.push(wake(1, 20_000 + tid, 0xe, 4));
            delta.edges.push(EdgeRow {
                tgid: 1,
                waiter_stack_id: 1,
                waker_stack_id: 2,
                waker_tid: tid,
                waits: 1,
                wait_ns: 10,
                ..EdgeRow::default()
            });
        }
        t.add(delta, canon);
        t
    }

    #[test]
    fn few_threads_are_never_folded() {
        let mut t = churn(10);
        let before = t.snap.clone();
        assert_eq!(t.fold_exited(|_, _| false), (0, 0));
        assert_eq!(t.snap, before);
    }

    #[test]
    fn exited_threads_fold_into_one_row_per_key_keeping_totals_and_behaviour() {
        let mut t = churn(200);
        let before = t.snap.clone();
        let totals = |s: &Snapshot| {
            (
                s.waits
                    .iter()
                    .map(|r| (r.counts.blocked, r.counts.total_ns))
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
                s.wakes.iter().map(|r| r.calls).sum::<u64>(),
                s.edges.iter().map(|e| e.wait_ns).sum::<u64>(),
            )
        };
        // Thread 1 is still alive: it keeps its rows.
        let folded = t.fold_exited(|_, tid| tid <= 1);
        assert_eq!(folded, (3 * 200 - 1, 0));
        assert_eq!(totals(&t.snap), totals(&before));
        // Per key: the live thread's rows, one folded row for the lock's waiters that
        // woke it, one for the event's waiters, one folded wake per address.
        assert_eq!(t.snap.waits.len(), 3);
        assert_eq!(t.snap.wakes.len(), 3);
        assert_eq!(t.snap.edges.len(), 2);
        let lock = t
            .snap
            .waits
            .iter()
            .find(|r| r.uaddr == 0xa && r.tid == EXITED);
        assert_eq!(
            lock.map(|r| (r.counts.blocked, r.comm.as_str())),
            Some((199, EXITED_NAME))
        );
        let event = t.snap.waits.iter().find(|r| r.uaddr == 0xe);
        assert_eq!(event.map(|r| r.tid), Some(EXITED_WAITER));
        // Behaviour is judged the same before and after.
        let (b0, b1) = (behavior::classify(&before), behavior::classify(&t.snap));
        assert_eq!(b0.of(1, 0xa).behavior, Behavior::Lock);
        assert_eq!(b0.of(1, 0xe).behavior, Behavior::Event);
        assert_eq!(b1.of(1, 0xa), b0.of(1, 0xa));
        assert_eq!(b1.of(1, 0xe), b0.of(1, 0xe));
        // A later thread keeps its own row while few threads are held.
        let n = t.snap.waits.len();
        t.add(
            Snapshot {
                waits: vec![wait(1, 5, 0xa, 1, 10)],
                ..Snapshot::default()
            },
            canon,
        );
        assert_eq!(t.fold_exited(|_, _| false), (0, 0));
        assert_eq!(t.snap.waits.len(), n + 1);
    }

    #[test]
    fn exited_processes_fold_into_one_once_many_are_held() {
        let mut t = Totals::default();
        let n = PROCESS_DETAIL as u32 + 1;
        let mut delta = Snapshot::default();
        for p in 1..=n {
            delta.waits.push(wait(p, p, 0x10, 1, 7));
            delta.wakes.push(wake(p, p, 0x10, 2));
        }
        t.add(delta, canon);
        // Every process alive but the first PROCESS_DETAIL: nothing folds.
        assert_eq!(t.fold_exited(|p, _| p > PROCESS_DETAIL as u32), (0, 0));
        assert_eq!(t.snap.waits.len(), n as usize);
        // All exited: one process, one row per key, the same totals.
        assert_eq!(t.fold_exited(|_, _| false), (n as usize, n as usize));
        assert_eq!(t.snap.waits.len(), 1);
        let w = &t.snap.waits[0];
        assert_eq!(
            (w.tgid, w.tid, w.counts.blocked, w.counts.total_ns),
            (EXITED, EXITED, u64::from(n), 7 * u64::from(n))
        );
        assert_eq!(t.snap.wakes.len(), 1);
        assert!(t.tgids().is_empty(), "folded rows are no process to poll");
    }

    #[test]
    fn addresses_of_exited_processes_are_bounded_and_the_longest_waited_kept() {
        let mut t = Totals::default();
        // Rounds of processes that each wait on addresses of their own (a workload
        // forking children with their own locks): the rows must stay bounded.
        let mut total_ns = 0;
        let mut pid = 1;
        for round in 0..20u64 {
            let mut delta = Snapshot::default();
            for _ in 0..=PROCESS_DETAIL {
                for a in 0..8u64 {
                    let ns = 1 + a + round;
                    total_ns += ns;
                    let addr = 0x1000 + u64::from(pid) * 0x100 + a * 8;
                    delta.waits.push(wait(pid, pid, addr, 1, ns));
                    delta.wakes.push(wake(pid, pid, addr, 2));
                }
                pid += 1;
            }
            t.add(delta, canon);
            t.fold_exited(|_, _| false);
            let addrs: HashSet<u64> = t.snap.waits.iter().map(|r| r.uaddr).collect();
            assert!(
                addrs.len() <= ADDRESS_DETAIL + 1,
                "{} addresses",
                addrs.len()
            );
        }
        let addrs: HashSet<u64> = t.snap.waits.iter().map(|r| r.uaddr).collect();
        assert!(addrs.contains(&FOLDED_ADDRESS));
        assert_eq!(addrs.len(), ADDRESS_DETAIL + 1);
        // Nothing is lost by folding, and the kept addresses are the longest waited.
        let sum: u64 = t.snap.waits.iter().map(|r| r.counts.total_ns).sum();
        assert_eq!(sum, total_ns);
        let longest = t
            .snap
            .waits
            .iter()
            .filter(|r| r.uaddr != FOLDED_ADDRESS && r.counts.total_ns == 8 + 19)
            .count();
        assert_eq!(longest, PROCESS_DETAIL + 1, "the longest waited are kept");
        assert!(t.snap.wakes.iter().all(|r| r.tgid == EXITED));
    }

    #[test]
    fn extra_rows_are_lent_and_taken_back() {
        let mut t = churn(2);
        let before = t.snap.clone();
        let extra = Snapshot {
            waits: vec![wait(9, 0, 0x1, 1, 5)],
            unfinished_waits: 4,
            ..Snapshot::default()
        };
        let seen = t.with_extra(extra, |s| (s.waits.len(), s.unfinished_waits));
        assert_eq!(seen, (before.waits.len() + 1, before.unfinished_waits + 4));
        assert_eq!(t.snap, before);
    }
}

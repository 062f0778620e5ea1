//! Folding the kernel's rows into lock sites, locks and wakers: the pure middle of
//! the pipeline.
//!
//! Owns: grouping wait rows by site (via `attribute`), per-site statistics (counts,
//! times, merged histograms, percentiles), per-thread / per-address / per-stack
//! breakdowns, the address → sites index, the wake side, totals, and every sort
//! order of the report. Must not: read the clock, the kernel or files — the same
//! inputs always give the same `Report`, which is what the tests rely on.

use std::collections::{BTreeMap, HashMap};

use crate::analyze::attribute::{attribute, kind_from_op};
use crate::analyze::behavior::{self, Behaviors};
use crate::analyze::locks::LockAcc;
use crate::analyze::sites::{SiteAcc, site_identity};
use crate::analyze::wakers::{WakerAcc, WakerLocations};
use crate::analyze::wrappers::LockFns;
use crate::collect::snapshot::{Snapshot, listed_id};
use crate::report::{
    Behavior, Frame, KindShare, LockAddress, Losses, Report, SCHEMA_VERSION, Site, Target, Totals,
    WaitKind, WakerShare, WakerSite,
};

pub use crate::analyze::stacks::MAX_STACKS_PER_SITE;
/// Addresses listed per site and sites listed per lock address.
pub(crate) const MAX_ADDRESSES_PER_SITE: usize = 16;
/// Lock addresses listed in the report.
const MAX_LOCKS: usize = 64;

/// Identifies one distinct stack: `(tgid, kernel stack id, leaf return address)`.
/// The leaf return address is part of it because the frame it restores is not in
/// the kernel's stack (see `stack_repair`).
pub type StackKey = (u32, i32, u64);

/// Symbolized stacks by [`StackKey`], innermost first.
pub type SymbolizedStacks = HashMap<StackKey, Vec<Frame>>;

/// Everything besides the snapshot that the report carries.
#[derive(Clone, Debug, Default)]
pub struct ReportContext {
    pub targets: Vec<Target>,
    /// Exited children left out of `targets` (see `Report::exited_children_not_listed`).
    pub exited_children_not_listed: u64,
    pub started_unix_ms: u64,
    pub duration_ns: u64,
    /// Frames the symbolizer could not name.
    pub unsymbolized_frames: u64,
    pub probe_cost: crate::report::ProbeCost,
    /// How each stack was unwound (absent: the kernel's frame-pointer walk).
    pub unwind: HashMap<StackKey, crate::resolve::unwind::UnwindMethod>,
    /// `--lock-fn` patterns: the target's own lock wrappers, skipped like glibc's
    /// frames so the site is their caller (see `wrappers`).
    pub lock_fns: Vec<String>,
}

/// Build the report. Sites are ranked by total blocked wait (descending), ties broken
/// by their id so the order never depends on hash-map iteration.
pub fn build_report(snapshot: &Snapshot, stacks: &SymbolizedStacks, ctx: ReportContext) -> Report {
    let mut sites: BTreeMap<String, SiteAcc> = BTreeMap::new();
    // Which site each waiter stack was attributed to, for the wake → wait edges.
    let mut site_of_stack: HashMap<StackKey, String> = HashMap::new();
    let mut locks: BTreeMap<(u32, u64), LockAcc> = BTreeMap::new();
    let mut totals = Totals {
        unfinished_waits: snapshot.unfinished_waits,
        ..Totals::default()
    };

    let behaviors: Behaviors = behavior::classify(snapshot);
    let mut lock_fns = LockFns::new(&ctx.lock_fns);
    let distinct: std::collections::BTreeSet<StackKey> = row_stacks(snapshot).collect();
    lock_fns.detect(distinct.iter().map(|&key| {
        let frames = frames_of(stacks, key);
        (frames, attribute(frames, WaitKind::Other).site)
    }));
    let attribute = |frames: &[Frame], fallback: WaitKind| {
        let mut a = attribute(frames, fallback);
        a.site = lock_fns.skip(frames, a.site);
        a
    };

    // Many rows share a stack (one per thread and address): each distinct stack and
    // op is attributed once, and a row costs map lookups, not string building — a
    // long recording refreshes this every second over thousands of rows.
    let mut wait_sites: HashMap<(StackKey, WaitKind), (String, WaitKind)> = HashMap::new();
    for row in &snapshot.waits {
        let key = (row.tgid, row.stack_id, row.leaf_ret);
        let (id, kind) = wait_sites
            .entry((key, kind_from_op(row.op)))
            .or_insert_with(|| {
                let frames = frames_of(stacks, key);
                let attr = attribute(frames, kind_from_op(row.op));
                let site = site_identity(frames, &attr);
                let id = site.id.clone();
                sites
                    .entry(id.clone())
                    .or_insert_with(|| SiteAcc::new(site));
                (id, attr.kind)
            });
        let acc = sites.get_mut(id.as_str()).expect("added with its memo");
        let address = behaviors.of(row.tgid, row.uaddr);
        let wasted = if behavior::rewait_is_wasted(*kind, address) {
            row.counts.rewaits
        } else {
            0
        };
        acc.add(row, address.behavior, wasted);
        if site_of_stack.get(&key) != Some(id) {
            site_of_stack.insert(key, id.clone());
        }

        totals.waits += row.counts.blocked;
        totals.wait_ns += row.counts.total_ns;
        totals.eagain += row.counts.eagain;
        totals.timeouts += row.counts.timedout;
        totals.timeout_wait_ns += row.counts.timedout_ns;
        totals.interrupted += row.counts.interrupted;
        totals.other_errors += row.counts.other_err;

        if row.counts.blocked > 0 || row.counts.eagain > 0 {
            let lock = locks.entry((row.tgid, row.uaddr)).or_default();
            lock.wait
                .add(row.counts.blocked, row.counts.total_ns, row.counts.max_ns);
            lock.eagain += row.counts.eagain;
            lock.wasted_wakeups += wasted;
            lock.behavior = address;
            if !lock.sites.contains_key(id.as_str()) {
                lock.sites
                    .insert(id.clone(), crate::report::WaitSummary::default());
            }
            if let Some(share) = lock.sites.get_mut(id.as_str()) {
                share.add(row.counts.blocked, row.counts.total_ns, row.counts.max_ns);
            }
        }
    }

    let mut wakers: BTreeMap<String, WakerAcc> = BTreeMap::new();
    let mut waker_of_stack: HashMap<StackKey, String> = HashMap::new();
    let mut wake_sites: HashMap<(StackKey, WaitKind), String> = HashMap::new();
    for row in &snapshot.wakes {
        let key = (row.tgid, row.stack_id, row.leaf_ret);
        let frames = frames_of(stacks, key);
        let id = wake_sites
            .entry((key, kind_from_op(row.op)))
            .or_insert_with(|| {
                let site = site_identity(frames, &attribute(frames, kind_from_op(row.op)));
                let id = site.id.clone();
                wakers
                    .entry(id.clone())
                    .or_insert_with(|| WakerAcc::new(site));
                id
            });
        let acc = wakers.get_mut(id.as_str()).expect("added with its memo");
        acc.add(row, frames);
        if waker_of_stack.get(&key) != Some(id) {
            waker_of_stack.insert(key, id.clone());
        }
        totals.wake_calls += row.calls;
        totals.threads_woken += row.woken;
        if let Some(lock) = locks.get_mut(&(row.tgid, row.uaddr)) {
            if !lock.wakers.contains_key(id.as_str()) {
                let share = WakerShare {
                    waker: id.clone(),
                    ..WakerShare::default()
                };
                lock.wakers.insert(id.clone(), share);
            }
            let Some(w) = lock.wakers.get_mut(id.as_str()) else {
                continue;
            };
            w.calls += row.calls;
            w.woken += row.woken;
            w.woke_none += row.woke_none;
            w.woke_many += row.woke_many;
        }
    }

    // Wake → wait edges: credit each waiter site with its wakers, and each waker site
    // with the wait it ended.
    // A wake stack's waker site (one with no wake row left gets its own identity).
    let waker_id = |key: StackKey| {
        waker_of_stack.get(&key).cloned().unwrap_or_else(|| {
            let frames = frames_of(stacks, key);
            site_identity(frames, &attribute(frames, WaitKind::Other)).id
        })
    };
    for edge in &snapshot.edges {
        let Some(site_id) =
            site_of_stack.get(&(edge.tgid, edge.waiter_stack_id, edge.waiter_leaf_ret))
        else {
            continue;
        };
        let waker_id = waker_id((edge.waker_pid(), edge.waker_stack_id, edge.waker_leaf_ret));
        if let Some(site) = sites.get_mut(site_id) {
            site.woken_by.entry(waker_id.clone()).or_default().add(edge);
            site.wake_to_run.merge(&edge.wake_to_run);
        }
        if let Some(waker) = wakers.get_mut(&waker_id) {
            waker.caused_waits += edge.waits;
            waker.caused_wait_ns += edge.wait_ns;
            waker.held.merge(&edge.holder);
        }
    }
    // Each site's wait split among the holders whose releases ended it.
    crate::analyze::blame::charge(&mut sites, &snapshot.blame, &site_of_stack, waker_id);
    // Where each waker site is, to name it in the waiters' "woken by" lists.
    let waker_locations: WakerLocations = wakers
        .values()
        .map(|w| {
            (
                w.site.id.clone(),
                (w.site.function.clone(), w.site.file.clone(), w.site.line),
            )
        })
        .collect();

    let mut sites: Vec<Site> = sites
        .into_values()
        .map(|a| a.finish(stacks, &ctx.unwind, &waker_locations, &lock_fns))
        .collect();
    sites.sort_by(|a, b| {
        b.total_wait_ns
            .cmp(&a.total_wait_ns)
            .then_with(|| a.id.cmp(&b.id))
    });
    for s in sites.iter().filter(|s| s.contention) {
        totals.contention_waits += s.waits;
        totals.contention_wait_ns += s.total_wait_ns;
    }
    totals.by_kind = by_kind(&sites);

    let mut wakers: Vec<WakerSite> = wakers.into_values().map(|w| w.finish(&lock_fns)).collect();
    wakers.sort_by(|a, b| {
        b.woken
            .cmp(&a.woken)
            .then(b.calls.cmp(&a.calls))
            .then_with(|| a.id.cmp(&b.id))
    });

    let mut locks: Vec<LockAddress> = locks
        .into_iter()
        .map(|((pid, addr), l)| l.finish(listed_id(pid), addr))
        .collect();
    locks.sort_by(|a, b| {
        b.wait
            .total_wait_ns
            .cmp(&a.wait.total_wait_ns)
            .then_with(|| (a.pid, &a.address).cmp(&(b.pid, &b.address)))
    });
    locks.truncate(MAX_LOCKS);

    let k = &snapshot.losses;
    let losses = Losses {
        stack_collisions: k.get(profiler_common::Loss::StackCollision),
        stack_errors: k.get(profiler_common::Loss::StackError),
        wait_map_full: k.get(profiler_common::Loss::WaitMapFull),
        wake_map_full: k.get(profiler_common::Loss::WakeMapFull),
        inflight_map_full: k.get(profiler_common::Loss::InFlightMapFull),
        target_map_full: k.get(profiler_common::Loss::TargetMapFull),
        user_read_errors: k.get(profiler_common::Loss::UserReadError),
        edge_map_full: k.get(profiler_common::Loss::EdgeMapFull),
        unsymbolized_frames: ctx.unsymbolized_frames,
        user_stack_copy_errors: k.get(profiler_common::Loss::UserStackCopy),
        last_wake_lost: k.get(profiler_common::Loss::LastWakeLost),
        holder_windows_lost: k.get(profiler_common::Loss::HolderWindowLost),
        shared_futex_unmapped: k.get(profiler_common::Loss::SharedFutexUnmapped),
        blame_map_full: k.get(profiler_common::Loss::BlameMapFull),
        truncated_stacks: ctx
            .unwind
            .values()
            .filter(|&&m| m == crate::resolve::unwind::UnwindMethod::DwarfTruncated)
            .count() as u64,
    };

    Report {
        schema_version: SCHEMA_VERSION,
        lockprof_version: env!("CARGO_PKG_VERSION").to_owned(),
        targets: ctx.targets,
        exited_children_not_listed: ctx.exited_children_not_listed,
        started_unix_ms: ctx.started_unix_ms,
        duration_ns: ctx.duration_ns,
        totals,
        losses,
        sites,
        locks,
        wakers,
        probe_cost: ctx.probe_cost,
        timeline: None,
        go_scheduler_idle: None,
    }
}

/// Blocked waits by kind — `other` split by behaviour — by wait time descending.
fn by_kind(sites: &[Site]) -> Vec<KindShare> {
    let mut acc: BTreeMap<(WaitKind, Behavior), (bool, u64, u64)> = BTreeMap::new();
    for s in sites.iter().filter(|s| s.waits > 0) {
        let behavior = if s.kind == WaitKind::Other {
            s.behavior
        } else {
            Behavior::Unknown
        };
        let e = acc.entry((s.kind, behavior)).or_default();
        e.0 |= s.contention;
        e.1 += s.waits;
        e.2 += s.total_wait_ns;
    }
    let mut out: Vec<KindShare> = acc
        .into_iter()
        .map(
            |((kind, behavior), (contention, waits, wait_ns))| KindShare {
                kind,
                behavior,
                contention,
                waits,
                wait_ns,
            },
        )
        .collect();
    out.sort_by(|a, b| {
        b.wait_ns
            .cmp(&a.wait_ns)
            .then((a.kind, a.behavior).cmp(&(b.kind, b.behavior)))
    });
    out
}

/// The stacks of the snapshot's wait and wake rows (with repeats).
pub fn row_stacks(snapshot: &Snapshot) -> impl Iterator<Item = StackKey> + '_ {
    let waits = snapshot
        .waits
        .iter()
        .map(|r| (r.tgid, r.stack_id, r.leaf_ret));
    let wakes = snapshot
        .wakes
        .iter()
        .map(|r| (r.tgid, r.stack_id, r.leaf_ret));
    waits.chain(wakes)
}

pub(crate) fn frames_of(stacks: &SymbolizedStacks, key: StackKey) -> &[Frame] {
    if key.1 < 0 {
        return &[];
    }
    stacks.get(&stack_slot(key)).map_or(&[], Vec::as_slice)
}

/// First id of the canonical stacks: one per distinct symbolized call path, shared by
/// every thread and process that took it (given by `session::stacks`; the kernel's
/// ids are per thread). Below the Go ([`crate::analyze::go::GO_STACK_ID_BASE`]) and
/// DWARF ids, above the kernel's stack map ids.
pub const CANONICAL_STACK_BASE: i32 = 1 << 28;

/// Where a stack's frames and unwind method are kept: a canonical stack under
/// process 0 and no leaf (rows keep their own process), any other under its key.
pub fn stack_slot(key: StackKey) -> StackKey {
    if (CANONICAL_STACK_BASE..crate::analyze::go::GO_STACK_ID_BASE).contains(&key.1) {
        (0, key.1, 0)
    } else {
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::sites::fairness;
    use crate::collect::snapshot::{WaitCounts, WaitRow, WakeRow};
    use crate::report::{ThreadShare, WaitSummary};
    use profiler_common::{Loss, hist_bucket, op};

    fn frame(function: &str, module: &str, line: u32) -> Frame {
        Frame {
            address: "0x10".into(),
            function: Some(function.into()),
            file: Some("src/demo.rs".into()),
            line: Some(line),
            module: Some(module.into()),
            module_offset: Some("0x10".into()),
            inlined: false,
            lock_impl: false,
        }
    }

    const LIBC: &str = "/lib/libc.so.6";
    const APP: &str = "/bin/demo";

    fn stacks() -> SymbolizedStacks {
        let mut s = SymbolizedStacks::new();
        // A mutex wait in `writer` line 40, called from `caller`.
        let writer_wait = |caller: &str, line: u32| {
            vec![
                frame("syscall", LIBC, 0),
                frame(
                    "std::sys::sync::mutex::futex::Mutex::lock_contended",
                    APP,
                    0,
                ),
                frame("demo::Store::writer", APP, 40),
                frame(caller, APP, line),
            ]
        };
        // 1: mutex wait in `writer` line 40
        s.insert((1, 1, 0), writer_wait("demo::pull", 90));
        // 2: same site reached from another caller
        s.insert((1, 2, 0), writer_wait("demo::other", 120));
        // 3: condvar wait in `lookup` line 70
        s.insert(
            (1, 3, 0),
            vec![
                frame("syscall", LIBC, 0),
                frame(
                    "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
                    APP,
                    0,
                ),
                frame("demo::lookup", APP, 70),
            ],
        );
        // 4: wake in `unlock` path of writer
        s.insert(
            (1, 4, 0),
            vec![
                frame("syscall", LIBC, 0),
                frame("std::sys::sync::mutex::futex::Mutex::wake", APP, 0),
                frame("demo::Store::writer", APP, 44),
            ],
        );
        s
    }

    fn row(tid: u32, uaddr: u64, stack_id: i32, waits: &[u64]) -> WaitRow {
        let mut r = WaitRow {
            tgid: 1,
            tid,
            comm: format!("w{tid}"),
            uaddr,
            stack_id,
            op: op::WAIT_BITSET,
            counts: WaitCounts {
                min_ns: waits.iter().copied().min().unwrap_or(0),
                max_ns: waits.iter().copied().max().unwrap_or(0),
                ..WaitCounts::default()
            },
            ..WaitRow::default()
        };
        for &w in waits {
            r.counts.blocked += 1;
            r.counts.total_ns += w;
            r.counts.hist.counts[hist_bucket(w)] += 1;
        }
        r
    }

    fn snapshot() -> Snapshot {
        let mut s = Snapshot {
            waits: vec![
                row(11, 0xa0, 1, &[1_000_000, 3_000_000]),
                row(12, 0xa0, 2, &[5_000_000]),
                row(12, 0xb0, 3, &[50_000_000]),
                row(13, 0xa0, -17, &[10]),
            ],
            wakes: vec![WakeRow {
                tgid: 1,
                tid: 11,
                comm: "w11".into(),
                uaddr: 0xa0,
                stack_id: 4,
                op: op::WAKE_BITSET,
                leaf_ret: 0,
                calls: 3,
                woken: 3,
                woke_none: 0,
                woke_many: 0,
                errors: 0,
            }],
            ..Snapshot::default()
        };
        s.losses.set(Loss::StackCollision, 1);
        s
    }

    #[test]
    fn merges_stacks_into_sites_and_ranks_by_total_wait() {
        let r = build_report(&snapshot(), &stacks(), ReportContext::default());
        let ids: Vec<_> = r.sites.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "condvar|demo|demo::lookup|src/demo.rs:70",
                "mutex|demo|demo::Store::writer|src/demo.rs:40",
                "other|?|[unknown stack]|?",
            ]
        );
        let writer = &r.sites[1];
        assert_eq!((writer.waits, writer.total_wait_ns), (3, 9_000_000));
        assert_eq!(
            (writer.min_wait_ns, writer.max_wait_ns),
            (1_000_000, 5_000_000)
        );
        assert_eq!(writer.avg_wait_ns, 3_000_000);
        assert!(writer.contention && !r.sites[0].contention);
        assert_eq!(writer.stacks.len(), 2, "two callers, two stacks");
        assert_eq!(
            writer.stacks[0].wait.total_wait_ns, 5_000_000,
            "hottest first"
        );
        assert_eq!(
            writer.threads.iter().map(|t| t.tid).collect::<Vec<_>>(),
            [12, 11]
        );
        assert_eq!(writer.addresses[0].address, "0xa0");
        assert!(writer.p50_wait_ns >= 1_000_000 && writer.p99_wait_ns <= 5_000_000);
    }

    #[test]
    fn totals_separate_contention_from_event_waits_and_keep_losses() {
        let r = build_report(&snapshot(), &stacks(), ReportContext::default());
        assert_eq!(r.totals.waits, 5);
        assert_eq!(r.totals.wait_ns, 59_000_010);
        assert_eq!(
            r.totals.contention_wait_ns, 9_000_000,
            "condvar and unknown excluded"
        );
        assert_eq!(r.losses.stack_collisions, 1);
        assert_eq!(r.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn lock_addresses_list_their_sites_and_wakers() {
        let r = build_report(&snapshot(), &stacks(), ReportContext::default());
        let a0 = r.locks.iter().find(|l| l.address == "0xa0").unwrap();
        assert_eq!(a0.wait.waits, 4);
        assert_eq!(
            a0.sites[0].site,
            "mutex|demo|demo::Store::writer|src/demo.rs:40"
        );
        assert_eq!(
            a0.wakers[0].waker,
            "mutex|demo|demo::Store::writer|src/demo.rs:44"
        );
        assert_eq!(r.wakers[0].woken, 3);
        assert_eq!(r.wakers[0].kind, WaitKind::Mutex);
    }

    #[test]
    fn edges_name_the_waker_of_each_site_and_its_cost() {
        let mut s = snapshot();
        s.waits[0].counts.rewaits = 1;
        // The writer's waiters release 0xa0 themselves: it behaves as a lock, so the
        // re-wait is a wasted wakeup.
        let mut unlock = s.wakes[0].clone();
        unlock.tid = 12;
        s.wakes.push(unlock);
        s.waits[2].counts.unpaired = 1;
        s.edges.push(crate::collect::snapshot::EdgeRow {
            tgid: 1,
            waiter_stack_id: 1,
            waiter_leaf_ret: 0,
            waker_stack_id: 4,
            waker_leaf_ret: 0,
            waker_tid: 11,
            waker_tgid: 0,
            waits: 2,
            wait_ns: 4_000_000,
            holder: crate::collect::snapshot::HolderActivity {
                window_ns: 3_000_000,
                off_ns: BTreeMap::from([
                    (Some(230), 2_000_000),
                    (Some(profiler_common::OFF_RUNNABLE), 500_000),
                    (None, 100_000),
                ]),
                truncated_windows: 0,
                failed_syscalls: 3,
                last_failure: Some((46, 105)),
            },
            wake_to_run: crate::collect::snapshot::WakeToRun {
                count: 2,
                total_ns: 60_000,
                max_ns: 50_000,
            },
        });
        let r = build_report(&s, &stacks(), ReportContext::default());
        let writer = r.sites.iter().find(|x| x.line == Some(40)).unwrap();
        assert_eq!(writer.wasted_wakeups, 1);
        assert_eq!(writer.woken_by.len(), 1);
        let edge = &writer.woken_by[0];
        assert_eq!(edge.waker, "mutex|demo|demo::Store::writer|src/demo.rs:44");
        assert_eq!(
            (edge.line, edge.waits, edge.wait_ns),
            (Some(44), 2, 4_000_000)
        );
        // What the holder did: off-CPU time by name, largest first; failures named.
        let held = &edge.held;
        assert_eq!((held.window_ns, held.off_cpu_ns), (3_000_000, 2_600_000));
        let places: Vec<(&str, u64)> = held
            .off_cpu_in
            .iter()
            .map(|o| (o.syscall.as_str(), o.ns))
            .collect();
        assert_eq!(
            places,
            [
                ("clock_nanosleep", 2_000_000),
                ("runnable (waiting for a CPU)", 500_000),
                ("other", 100_000)
            ]
        );
        let failure = held.last_failure.as_ref().unwrap();
        assert_eq!(
            (
                held.failed_syscalls,
                failure.syscall.as_str(),
                failure.errno.as_str()
            ),
            (3, "sendmsg", "ENOBUFS")
        );
        assert_eq!(
            (
                edge.wake_to_run.count,
                edge.wake_to_run.avg_ns,
                edge.wake_to_run.max_ns
            ),
            (2, 30_000, 50_000)
        );
        assert_eq!(writer.wake_to_run, edge.wake_to_run);
        let waker = r.wakers.iter().find(|w| w.line == Some(44)).unwrap();
        assert_eq!(waker.held, edge.held);
        let lookup = r.sites.iter().find(|x| x.line == Some(70)).unwrap();
        assert_eq!(lookup.unpaired_waits, 1);
        assert!(lookup.woken_by.is_empty());
        assert_eq!(r.wakers[0].caused_waits, 2);
        assert_eq!(r.wakers[0].caused_wait_ns, 4_000_000);
    }

    #[test]
    fn a_waker_in_another_process_is_named_from_its_own_stacks() {
        let mut s = snapshot();
        // Process 2 posts the futex process 1's `lookup` waits on (shared memory):
        // its stack id 4 is its own, not process 1's `writer` unlock.
        s.wakes.push(WakeRow {
            tgid: 2,
            tid: 21,
            ..s.wakes[0].clone()
        });
        s.edges.push(crate::collect::snapshot::EdgeRow {
            tgid: 1,
            waiter_stack_id: 3,
            waker_stack_id: 4,
            waker_tid: 21,
            waker_tgid: 2,
            waits: 1,
            wait_ns: 50_000_000,
            ..crate::collect::snapshot::EdgeRow::default()
        });
        let mut st = stacks();
        st.insert(
            (2, 4, 0),
            vec![frame("sem_post", LIBC, 0), frame("demo::post", APP, 99)],
        );
        let r = build_report(&s, &st, ReportContext::default());
        let lookup = r.sites.iter().find(|x| x.line == Some(70)).unwrap();
        let edge = &lookup.woken_by[0];
        assert_eq!(edge.function.as_deref(), Some("demo::post"));
        assert_eq!((edge.waits, edge.from_other_processes), (1, 1));
        let poster = r.wakers.iter().find(|w| w.line == Some(99)).unwrap();
        assert_eq!(poster.caused_wait_ns, 50_000_000);
        assert_eq!(poster.threads[0].pid, 2);
    }

    #[test]
    fn blocked_by_charges_each_holder_its_intervals_largest_first() {
        let mut s = snapshot();
        let blame = |holder_stack_id, intervals, ns| crate::collect::blame::BlameRow {
            tgid: 1,
            waiter_stack_id: 1,
            holder_tgid: 1,
            holder_stack_id,
            intervals,
            ns,
            ..crate::collect::blame::BlameRow::default()
        };
        // The writer's waits (stacks 1 and 2, one site): 5 ms behind the unlock at
        // line 44 in two rows, 1 ms behind stack 3, 0.5 ms unknown.
        s.blame = vec![
            blame(4, 2, 3_000_000),
            blame(3, 1, 1_000_000),
            blame(profiler_common::BLAME_EARLIER, 1, 500_000),
            crate::collect::blame::BlameRow {
                waiter_stack_id: 2,
                ..blame(4, 1, 2_000_000)
            },
        ];
        let r = build_report(&s, &stacks(), ReportContext::default());
        let writer = r.sites.iter().find(|x| x.line == Some(40)).unwrap();
        let got: Vec<(Option<u32>, u64, u64)> = writer
            .blocked_by
            .iter()
            .map(|b| (b.line, b.intervals, b.wait_ns))
            .collect();
        // Stack 3 made no wake call: it is named by its identity only.
        assert_eq!(got, [(Some(44), 3, 5_000_000), (None, 1, 1_000_000)]);
        assert_eq!(
            writer.blocked_by[0].holder,
            "mutex|demo|demo::Store::writer|src/demo.rs:44"
        );
        assert!(writer.blocked_by[1].holder.contains("demo::lookup"));
        assert_eq!(writer.blocked_by_unknown_ns, 500_000);
        let lookup = r.sites.iter().find(|x| x.line == Some(70)).unwrap();
        assert!(lookup.blocked_by.is_empty());
    }

    #[test]
    fn fairness_measures_the_spread_over_threads() {
        let share = |tid, ns| ThreadShare {
            pid: 1,
            tid,
            name: String::new(),
            wait: WaitSummary {
                waits: 1,
                total_wait_ns: ns,
                max_wait_ns: ns,
            },
        };
        let even = fairness(&[share(1, 100), share(2, 100)]);
        assert_eq!(
            (even.threads, even.wait_cv, even.max_min_ratio),
            (2, 0.0, 1.0)
        );
        let skewed = fairness(&[share(1, 100), share(2, 100), share(3, 100), share(4, 570)]);
        assert!((skewed.max_min_ratio - 5.7).abs() < 1e-9);
        assert!(skewed.wait_cv > 0.5, "{}", skewed.wait_cv);
        assert!((fairness(&[share(1, 5)]).max_min_ratio - 1.0).abs() < f64::EPSILON);
        assert_eq!(fairness(&[]).threads, 0);
    }

    #[test]
    fn report_is_deterministic_regardless_of_row_order() {
        let mut s = snapshot();
        let a = build_report(&s, &stacks(), ReportContext::default());
        s.waits.reverse();
        let b = build_report(&s, &stacks(), ReportContext::default());
        assert_eq!(a, b);
    }

    #[test]
    fn empty_snapshot_gives_empty_report() {
        let r = build_report(
            &Snapshot::default(),
            &SymbolizedStacks::new(),
            ReportContext::default(),
        );
        assert!(r.sites.is_empty() && r.locks.is_empty() && r.wakers.is_empty());
        assert_eq!(r.totals, Totals::default());
    }

    #[test]
    fn stacks_mark_lock_frames_and_say_how_they_were_unwound() {
        use crate::resolve::unwind::UnwindMethod;
        let mut unwind = HashMap::new();
        unwind.insert((1, 1, 0), UnwindMethod::Dwarf);
        unwind.insert((1, 2, 0), UnwindMethod::DwarfTruncated);
        let r = build_report(
            &snapshot(),
            &stacks(),
            ReportContext {
                unwind,
                ..ReportContext::default()
            },
        );
        let writer = r
            .sites
            .iter()
            .find(|s| s.function.as_deref() == Some("demo::Store::writer"))
            .unwrap();
        let marks: Vec<bool> = writer.stacks[0]
            .frames
            .iter()
            .map(|f| f.lock_impl)
            .collect();
        assert_eq!(
            marks,
            [true, true, false, false],
            "syscall and lock_contended"
        );
        let mut how: Vec<Option<&str>> =
            writer.stacks.iter().map(|s| s.unwind.as_deref()).collect();
        how.sort_unstable();
        assert_eq!(how, [Some("dwarf"), Some("dwarf-truncated")]);
        assert_eq!(r.losses.truncated_stacks, 1);
        // Stacks without an unwind record came from the frame-pointer walk of an
        // older probe: no claim is made.
        let plain = build_report(&snapshot(), &stacks(), ReportContext::default());
        assert!(
            plain
                .sites
                .iter()
                .flat_map(|s| &s.stacks)
                .all(|s| s.unwind.is_none())
        );
    }

    /// `InnoDB`'s `srw_lock`: `syscall(SYS_futex)` straight from a stripped mariadbd,
    /// no lock library in the stack. Its waiters release it: lock contention.
    #[test]
    fn a_bare_futex_lock_is_contention_by_behavior_and_a_worker_loop_wastes_nothing() {
        let bare = |name: &str| Frame {
            address: "0x99".into(),
            module: Some("/usr/sbin/mariadbd".into()),
            module_offset: Some(name.into()),
            ..Frame::default()
        };
        let mut st = SymbolizedStacks::new();
        st.insert(
            (1, 7, 0),
            vec![frame("syscall", LIBC, 0), bare("0xde2b6c"), bare("0x100")],
        );
        st.insert(
            (1, 8, 0),
            vec![frame("syscall", LIBC, 0), bare("0xde2b90"), bare("0x100")],
        );
        // A condvar worker loop: woken one at a time by a producer, re-waits.
        st.insert((1, 3, 0), stacks()[&(1, 3, 0)].clone());
        let mut srw = row(11, 0xc0, 7, &[4_000_000, 4_000_000]);
        srw.counts.rewaits = 1;
        let mut worker = row(12, 0xd0, 3, &[50_000_000]);
        worker.counts.rewaits = 1;
        let wake = |tid, uaddr, stack_id| WakeRow {
            tgid: 1,
            tid,
            uaddr,
            stack_id,
            calls: 1,
            woken: 1,
            ..WakeRow::default()
        };
        let s = Snapshot {
            waits: vec![srw, row(12, 0xc0, 7, &[2_000_000]), worker],
            wakes: vec![wake(11, 0xc0, 8), wake(12, 0xc0, 8), wake(20, 0xd0, 3)],
            ..Snapshot::default()
        };
        let r = build_report(&s, &st, ReportContext::default());
        let srw = r.sites.iter().find(|x| x.kind == WaitKind::Other).unwrap();
        assert_eq!(srw.behavior, Behavior::Lock);
        assert!(srw.contention);
        assert_eq!(srw.wasted_wakeups, 1, "woken from a lock it did not get");
        let cv = r
            .sites
            .iter()
            .find(|x| x.kind == WaitKind::Condvar)
            .unwrap();
        assert_eq!((cv.behavior, cv.contention), (Behavior::Event, false));
        assert_eq!(
            cv.wasted_wakeups, 0,
            "a worker loop's re-wait is its course"
        );
        assert_eq!(r.totals.contention_wait_ns, 10_000_000);
        let kinds: Vec<(WaitKind, Behavior, u64)> = r
            .totals
            .by_kind
            .iter()
            .map(|k| (k.kind, k.behavior, k.wait_ns))
            .collect();
        assert_eq!(
            kinds,
            [
                (WaitKind::Condvar, Behavior::Unknown, 50_000_000),
                (WaitKind::Other, Behavior::Lock, 10_000_000)
            ]
        );
        let lock = r.locks.iter().find(|l| l.address == "0xc0").unwrap();
        assert_eq!((lock.behavior, lock.wasted_wakeups), (Behavior::Lock, 1));
    }

    /// `PostgreSQL`: every `LWLock` wait is `sem_wait ← PGSemaphoreLock ← LWLockAcquire`;
    /// the sites must be `LWLockAcquire`'s callers, ranked.
    #[test]
    fn sites_are_the_callers_of_a_recognized_or_named_lock_wrapper() {
        const PG: &str = "/usr/lib/postgresql/15/bin/postgres";
        let pg = |caller: &str| {
            vec![
                frame("do_futex_wait", LIBC, 0),
                frame("__new_sem_wait_slow64", LIBC, 0),
                frame("PGSemaphoreLock", PG, 327),
                frame("LWLockAcquire", PG, 1315),
                frame(caller, PG, 10),
                frame("PostgresMain", PG, 4000),
            ]
        };
        let callers = [
            "XLogInsertRecord",
            "ReleaseBuffer",
            "ProcArrayEndTransaction",
        ];
        let mut st = SymbolizedStacks::new();
        let mut waits = Vec::new();
        for (i, c) in callers.iter().enumerate() {
            let id = i as i32 + 1;
            st.insert((1, id, 0), pg(c));
            waits.push(row(10 + id as u32, 0xe0, id, &[(3 - i as u64) * 1_000_000]));
        }
        let s = Snapshot {
            waits,
            ..Snapshot::default()
        };
        let r = build_report(&s, &st, ReportContext::default());
        let names: Vec<_> = r
            .sites
            .iter()
            .filter_map(|x| x.function.as_deref())
            .collect();
        assert_eq!(names, callers, "ranked callers below the wrapper");
        assert_eq!(r.sites[0].kind, WaitKind::Semaphore, "the kind still tells");
        let folded: Vec<bool> = r.sites[0].stacks[0]
            .frames
            .iter()
            .map(|f| f.lock_impl)
            .collect();
        assert_eq!(folded, [true, true, true, true, false, false]);

        // Two callers are not enough to recognize it; --lock-fn names it.
        let two = Snapshot {
            waits: s.waits[..2].to_vec(),
            ..Snapshot::default()
        };
        let r = build_report(&two, &st, ReportContext::default());
        assert_eq!(r.sites[0].function.as_deref(), Some("PGSemaphoreLock"));
        let ctx = ReportContext {
            lock_fns: vec!["PGSemaphore*".into(), "LWLockAcquire".into()],
            ..ReportContext::default()
        };
        let r = build_report(&two, &st, ctx);
        assert_eq!(r.sites[0].function.as_deref(), Some("XLogInsertRecord"));
    }
}

//! Goroutine waits: what a Go stack's runtime frames say, and how the Go probes' rows
//! join the futex pipeline.
//!
//! Owns: recognizing Go runtime and standard-library frames (they are the "lock
//! implementation" of a Go site), the Go wait kinds they imply (`go-mutex`,
//! `go-chan-recv`, …), turning a [`GoSnapshot`] into wait, wake and edge rows of the
//! [`Snapshot`] so Go sites get the same ranking, holders ("woken by"), address table,
//! timeline and exports as futex sites, and folding the Go runtime's idle-thread futex
//! waits into one line. Must not: read the kernel, the clock or files.
//!
//! Why by stack and not by `gopark`'s wait reason: the reason numbering changes
//! between Go versions, the function names do not; the reason is kept in the rows.

use std::collections::BTreeMap;

use profiler_common::Loss;

use crate::collect::go::GoSnapshot;
use crate::collect::snapshot::{EdgeRow, Snapshot, WaitCounts, WaitRow, WakeRow};
use crate::report::{Report, WaitKind, WaitSummary};

/// Go stack ids are offset by this in the [`Snapshot`], so they never meet the futex
/// probes' ids (below `STACK_ID_OVERFLOW + MAX_STACKS2`) or the user-stack copies'
/// (`DWARF_STACK_ID_BASE`).
pub const GO_STACK_ID_BASE: i32 = 1 << 29;

/// The `op` of rows made from goroutine parks: no futex op has it.
pub const GO_PARK_OP: u32 = 0x476f_0000;

/// Is `name` a Go runtime or standard-library function that blocking goes through
/// (never the target's own code)? Go 1.24 moved `sync.Mutex`'s body to
/// `internal/sync` (`sync.(*Mutex).Lock` only calls it).
pub fn is_runtime_function(name: &str) -> bool {
    [
        "runtime.",
        "sync.",
        "internal/sync.",
        "internal/poll.",
        "time.Sleep",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// The kind a Go function tells: `Some(Some(kind))` for a telling one, `Some(None)`
/// for other Go runtime functions (they must not be read as C or Rust names:
/// `sync.runtime_SemacquireMutex` also serves `RWMutex` readers), `None` for names
/// that are not Go's.
pub fn classify(name: &str) -> Option<Option<WaitKind>> {
    if !is_runtime_function(name) {
        return None;
    }
    let kind = match name {
        "sync.(*RWMutex).RLock" | "sync.(*RWMutex).RUnlock" | "sync.(*RWMutex).rUnlockSlow" => {
            WaitKind::GoRwmutexRead
        }
        "sync.(*RWMutex).Lock" | "sync.(*RWMutex).Unlock" => WaitKind::GoRwmutexWrite,
        "sync.(*Mutex).Lock"
        | "sync.(*Mutex).lockSlow"
        | "sync.(*Mutex).Unlock"
        | "sync.(*Mutex).unlockSlow"
        | "internal/sync.(*Mutex).Lock"
        | "internal/sync.(*Mutex).lockSlow"
        | "internal/sync.(*Mutex).Unlock"
        | "internal/sync.(*Mutex).unlockSlow" => WaitKind::GoMutex,
        "sync.(*Cond).Wait" | "sync.(*Cond).Signal" | "sync.(*Cond).Broadcast" => WaitKind::GoCond,
        "sync.(*WaitGroup).Wait" | "sync.(*WaitGroup).Add" | "sync.(*WaitGroup).Done" => {
            WaitKind::GoWaitgroup
        }
        "runtime.selectgo" | "runtime.block" => WaitKind::GoSelect,
        "time.Sleep" | "runtime.timeSleep" => WaitKind::GoSleep,
        "runtime.netpollblock" | "runtime.netpollready" => WaitKind::GoIo,
        "runtime.notesleep"
        | "runtime.notetsleep"
        | "runtime.notetsleepg"
        | "runtime.futexsleep"
        | "runtime.mPark"
        | "runtime.stopm" => WaitKind::GoIdle,
        "runtime.gcBgMarkWorker"
        | "runtime.bgsweep"
        | "runtime.bgscavenge"
        | "runtime.forcegchelper"
        | "runtime.runfinq"
        | "runtime.gcenable" => WaitKind::GoRuntime,
        n if n.starts_with("runtime.chanrecv") => WaitKind::GoChanRecv,
        n if n.starts_with("runtime.chansend") => WaitKind::GoChanSend,
        n if n.starts_with("internal/poll.") => WaitKind::GoIo,
        _ => return Some(None),
    };
    Some(Some(kind))
}

/// Add the Go probes' parks to `snap` as futex-like rows: each park row becomes a
/// wait row (the semaphore address as its "futex address", 0 for non-semaphore
/// waits) and, with its waker's stack, a wake row and a wake → wait edge.
pub fn merge_into(snap: &mut Snapshot, go: &GoSnapshot) {
    let shift = |id: i32| if id >= 0 { id + GO_STACK_ID_BASE } else { id };
    let mut wakes: BTreeMap<(u32, i32, u64), WakeRow> = BTreeMap::new();
    for row in &go.waits {
        let waiter = shift(row.waiter_stack_id);
        let waker = shift(row.waker_stack_id);
        snap.waits.push(WaitRow {
            tgid: row.tgid,
            tid: 0,
            comm: "goroutine".into(),
            uaddr: row.sema_addr,
            stack_id: waiter,
            op: GO_PARK_OP | row.reason,
            leaf_ret: row.waiter_leaf_ret,
            counts: WaitCounts {
                blocked: row.waits,
                total_ns: row.total_ns,
                min_ns: row.min_ns,
                max_ns: row.max_ns,
                hist: row.hist.clone(),
                ..WaitCounts::default()
            },
        });
        let wake = wakes
            .entry((row.tgid, waker, row.sema_addr))
            .or_insert_with(|| WakeRow {
                tgid: row.tgid,
                tid: 0,
                comm: "goroutine".into(),
                uaddr: row.sema_addr,
                stack_id: waker,
                op: GO_PARK_OP,
                ..WakeRow::default()
            });
        // Each `ready` wakes exactly one goroutine.
        wake.calls += row.waits;
        wake.woken += row.waits;
        snap.edges.push(EdgeRow {
            tgid: row.tgid,
            waiter_stack_id: waiter,
            waiter_leaf_ret: row.waiter_leaf_ret,
            waker_stack_id: waker,
            waker_leaf_ret: 0,
            waker_tid: 0,
            waits: row.waits,
            wait_ns: row.total_ns,
            ..EdgeRow::default()
        });
    }
    snap.wakes.extend(wakes.into_values());
    for (&(tgid, id), addrs) in &go.stacks {
        snap.stacks.insert((tgid, shift(id)), addrs.clone());
    }
    for (loss, n) in [
        (Loss::StackError, go.stack_errors),
        (Loss::StackCollision, go.stack_collisions),
        (Loss::WaitMapFull, go.wait_map_full),
    ] {
        let before = snap.losses.get(loss);
        snap.losses.set(loss, before + n);
    }
    snap.unfinished_waits += go.parked_now;
}

/// The Go-specific finishing of a built report: [`fold_scheduler_idle`], and no
/// "woken by" for sleeps and poller waits — their waker is whichever goroutine's
/// thread happened to run the timer or the poller, not a cause.
pub fn finish(report: &mut Report) {
    fold_scheduler_idle(report);
    for s in &mut report.sites {
        if matches!(s.kind, WaitKind::GoSleep | WaitKind::GoIo) {
            s.woken_by.clear();
        }
    }
}

/// Take the `go-idle` sites (futex waits of Go runtime threads with nothing to run)
/// out of the ranking and sum them into [`Report::go_scheduler_idle`], out of the
/// totals' contention (they never were) but kept in `waits`/`wait_ns`.
pub fn fold_scheduler_idle(report: &mut Report) {
    let (idle, sites): (Vec<_>, Vec<_>) = std::mem::take(&mut report.sites)
        .into_iter()
        .partition(|s| s.kind == WaitKind::GoIdle);
    report.sites = sites;
    if idle.is_empty() {
        return;
    }
    let mut sum = WaitSummary::default();
    for s in &idle {
        sum.waits += s.waits;
        sum.total_wait_ns += s.total_wait_ns;
        sum.max_wait_ns = sum.max_wait_ns.max(s.max_wait_ns);
    }
    let gone: std::collections::BTreeSet<&str> = idle.iter().map(|s| s.id.as_str()).collect();
    for lock in &mut report.locks {
        lock.sites.retain(|s| !gone.contains(s.site.as_str()));
    }
    report.locks.retain(|l| !l.sites.is_empty());
    report.go_scheduler_idle = Some(sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::histogram::Log2Histogram;
    use crate::collect::go::GoWaitRow;
    use crate::report::Site;

    #[test]
    fn go_functions_tell_their_kind_and_others_pass_through() {
        assert_eq!(
            classify("sync.(*Mutex).lockSlow"),
            Some(Some(WaitKind::GoMutex))
        );
        // Go 1.24 and later: the mutex lives in internal/sync.
        assert_eq!(
            classify("internal/sync.(*Mutex).lockSlow"),
            Some(Some(WaitKind::GoMutex))
        );
        assert_eq!(classify("internal/sync.runtime_Semrelease"), Some(None));
        assert_eq!(
            classify("sync.(*RWMutex).RLock"),
            Some(Some(WaitKind::GoRwmutexRead))
        );
        assert_eq!(
            classify("runtime.chanrecv1"),
            Some(Some(WaitKind::GoChanRecv))
        );
        assert_eq!(
            classify("runtime.chansend1"),
            Some(Some(WaitKind::GoChanSend))
        );
        assert_eq!(classify("runtime.selectgo"), Some(Some(WaitKind::GoSelect)));
        assert_eq!(classify("time.Sleep"), Some(Some(WaitKind::GoSleep)));
        assert_eq!(classify("runtime.notesleep"), Some(Some(WaitKind::GoIdle)));
        // The semaphore entry point serves mutexes and RWMutex readers alike.
        assert_eq!(classify("sync.runtime_SemacquireMutex"), Some(None));
        assert_eq!(classify("runtime.gopark"), Some(None));
        assert_eq!(classify("main.(*store).writer"), None);
        assert_eq!(classify("std::sync::Mutex::lock"), None);
        assert!(is_runtime_function("internal/poll.(*FD).Read"));
        assert!(!is_runtime_function("main.main"));
    }

    #[test]
    fn merge_makes_wait_wake_and_edge_rows_with_shifted_stack_ids() {
        let go = GoSnapshot {
            waits: vec![GoWaitRow {
                tgid: 9,
                reason: 18,
                waiter_stack_id: 3,
                waker_stack_id: 4,
                waiter_leaf_ret: 0x40_1000,
                sema_addr: 0xc000_0100,
                waits: 5,
                total_ns: 5_000,
                min_ns: 500,
                max_ns: 2_000,
                last_goid: 17,
                hist: Log2Histogram::default(),
            }],
            stacks: [((9, 3), vec![1, 2]), ((9, 4), vec![3])]
                .into_iter()
                .collect(),
            parked_now: 2,
            stack_errors: 1,
            ..GoSnapshot::default()
        };
        let mut snap = Snapshot::default();
        merge_into(&mut snap, &go);
        let base = GO_STACK_ID_BASE;
        assert_eq!(snap.waits.len(), 1);
        let w = &snap.waits[0];
        assert_eq!(
            (
                w.tgid,
                w.stack_id,
                w.uaddr,
                w.counts.blocked,
                w.counts.total_ns
            ),
            (9, base + 3, 0xc000_0100, 5, 5_000)
        );
        assert_eq!(w.leaf_ret, 0x40_1000);
        assert_eq!(snap.wakes.len(), 1);
        assert_eq!((snap.wakes[0].stack_id, snap.wakes[0].woken), (base + 4, 5));
        assert_eq!(snap.edges.len(), 1);
        let e = &snap.edges[0];
        assert_eq!(
            (e.waiter_stack_id, e.waker_stack_id, e.waits, e.wait_ns),
            (base + 3, base + 4, 5, 5_000)
        );
        assert_eq!(snap.stacks.get(&(9, base + 3)), Some(&vec![1, 2]));
        assert_eq!(snap.unfinished_waits, 2);
        assert_eq!(snap.losses.get(Loss::StackError), 1);
    }

    #[test]
    fn idle_sites_fold_into_one_summary() {
        let site = |id: &str, kind, waits, ns| Site {
            id: id.into(),
            kind,
            waits,
            total_wait_ns: ns,
            max_wait_ns: ns,
            ..Site::default()
        };
        let mut report = Report {
            sites: vec![
                site("a", WaitKind::GoMutex, 3, 300),
                site("b", WaitKind::GoIdle, 10, 1_000),
                site("c", WaitKind::GoIdle, 5, 4_000),
            ],
            ..Report::default()
        };
        fold_scheduler_idle(&mut report);
        assert_eq!(report.sites.len(), 1);
        assert_eq!(report.sites[0].id, "a");
        let idle = report.go_scheduler_idle.expect("folded");
        assert_eq!(
            (idle.waits, idle.total_wait_ns, idle.max_wait_ns),
            (15, 5_000, 4_000)
        );

        let mut plain = Report::default();
        fold_scheduler_idle(&mut plain);
        assert_eq!(plain.go_scheduler_idle, None);
    }

    #[test]
    fn sleeps_have_no_waker_but_mutexes_keep_their_holder() {
        let woken = vec![crate::report::WokenBy {
            waker: "w".into(),
            waits: 1,
            ..crate::report::WokenBy::default()
        }];
        let mut report = Report {
            sites: [WaitKind::GoSleep, WaitKind::GoMutex]
                .into_iter()
                .map(|kind| Site {
                    kind,
                    woken_by: woken.clone(),
                    ..Site::default()
                })
                .collect(),
            ..Report::default()
        };
        finish(&mut report);
        assert!(report.sites[0].woken_by.is_empty());
        assert_eq!(report.sites[1].woken_by, woken);
    }
}

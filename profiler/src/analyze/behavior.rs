//! Lock or event, by behaviour: what threads do with each futex address, whatever
//! library built the lock.
//!
//! Owns: the per-address classification ([`Behavior`]) from the kernel's per (thread,
//! address) waits and wakes, the broadcast flag, and the rule for which re-waits are
//! wasted wakeups. Must not: look at stacks — the stack-based kinds (`attribute`)
//! stay the most precise and are combined with this by the callers.
//!
//! Why behaviour: a lock is acquired and released by the same threads, so the threads
//! that wait on its word later wake it themselves (unlock with waiters). An event
//! (condvar, semaphore posted by a producer, a per-thread park word) is woken by
//! threads that never wait on it. `InnoDB`'s `srw_lock` calls `syscall(SYS_futex)`
//! directly, so no frame names it; its behaviour does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::collect::snapshot::Snapshot;
use crate::report::{Behavior, WaitKind};

/// Share of an address's blocked wait, by waiters that also wake it, from which it
/// behaves as a lock. Below it (but above zero) the address is mixed: unknown.
const LOCK_SHARE: f64 = 0.5;

/// What one futex address is, by behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressBehavior {
    pub behavior: Behavior,
    /// Most wake calls that woke anybody woke several threads (`notify_all`, a
    /// writer's unlock waking all readers): a herd.
    pub broadcast: bool,
}

/// The behaviour of every address seen in a snapshot, by `(tgid, uaddr)`.
#[derive(Clone, Debug, Default)]
pub struct Behaviors {
    by_address: HashMap<(u32, u64), AddressBehavior>,
}

impl Behaviors {
    pub fn of(&self, tgid: u32, uaddr: u64) -> AddressBehavior {
        self.by_address
            .get(&(tgid, uaddr))
            .copied()
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Facts {
    /// Waiting thread → its blocked wait (ns, waits); EAGAIN-only waiters count too.
    waiters: BTreeMap<u32, (u64, u64)>,
    wakers: BTreeSet<u32>,
    calls_that_woke: u64,
    woke_many: u64,
}

/// Classify every address of the snapshot.
pub fn classify(snapshot: &Snapshot) -> Behaviors {
    let mut facts: BTreeMap<(u32, u64), Facts> = BTreeMap::new();
    for w in &snapshot.waits {
        if w.counts.blocked == 0 && w.counts.eagain == 0 {
            continue;
        }
        let f = facts.entry((w.tgid, w.uaddr)).or_default();
        let t = f.waiters.entry(w.tid).or_default();
        t.0 += w.counts.total_ns;
        t.1 += w.counts.blocked + w.counts.eagain;
    }
    for k in &snapshot.wakes {
        let f = facts.entry((k.tgid, k.uaddr)).or_default();
        f.wakers.insert(k.tid);
        f.calls_that_woke += k.calls.saturating_sub(k.woke_none);
        f.woke_many += k.woke_many;
    }
    let by_address = facts.into_iter().map(|(key, f)| (key, judge(&f))).collect();
    Behaviors { by_address }
}

fn judge(f: &Facts) -> AddressBehavior {
    let broadcast = f.woke_many > 0 && f.woke_many * 2 > f.calls_that_woke;
    if f.wakers.is_empty() || f.waiters.is_empty() {
        // Nothing seen woke it (a shared futex posted by another process, a thread's
        // exit ending a join), or nobody waited: no behaviour to judge.
        return AddressBehavior {
            behavior: Behavior::Unknown,
            broadcast,
        };
    }
    let (mut all, mut own) = ((0u64, 0u64), (0u64, 0u64));
    for (tid, &(ns, n)) in &f.waiters {
        all = (all.0 + ns, all.1 + n);
        if f.wakers.contains(tid) {
            own = (own.0 + ns, own.1 + n);
        }
    }
    // By wait time, or by count where no wait blocked (EAGAIN only).
    let share = if all.0 > 0 {
        own.0 as f64 / all.0 as f64
    } else {
        own.1 as f64 / all.1.max(1) as f64
    };
    let behavior = if share >= LOCK_SHARE {
        Behavior::Lock
    } else if own.1 == 0 {
        Behavior::Event
    } else {
        Behavior::Unknown
    };
    AddressBehavior {
        behavior,
        broadcast,
    }
}

/// Is a re-wait (a blocked wait right after being woken from the same address, with
/// no wake of it in between) a wasted wakeup? Only where the wakeup promised
/// something: the thread was woken from a lock it then failed to take, or it was one
/// of a herd woken together. A semaphore, condvar worker loop, `RwLock` reader or
/// per-thread park word woken one at a time re-waits as its normal course.
pub fn rewait_is_wasted(kind: WaitKind, address: AddressBehavior) -> bool {
    if address.broadcast {
        return true;
    }
    address.behavior == Behavior::Lock
        && matches!(
            kind,
            WaitKind::Mutex | WaitKind::RwlockWrite | WaitKind::Rwlock | WaitKind::Other
        )
}

/// The behaviour of a site from its addresses' behaviours weighted by wait time: the
/// one with most of the wait, `Unknown` on a tie or with no wait.
pub fn site_behavior(weights: &BTreeMap<Behavior, u64>) -> Behavior {
    let lock = weights.get(&Behavior::Lock).copied().unwrap_or(0);
    let event = weights.get(&Behavior::Event).copied().unwrap_or(0);
    let unknown = weights.get(&Behavior::Unknown).copied().unwrap_or(0);
    if lock > event && lock >= unknown && lock > 0 {
        Behavior::Lock
    } else if event > lock && event >= unknown && event > 0 {
        Behavior::Event
    } else {
        Behavior::Unknown
    }
}

/// Contention (a thread wanted something another thread held) from the stack's kind
/// and the behaviour: names from glibc, std or `parking_lot` decide; a wait no frame names
/// (`other`) is contention when its addresses behave as locks.
pub fn is_contention(kind: WaitKind, behavior: Behavior) -> bool {
    kind.is_contention() || (kind == WaitKind::Other && behavior == Behavior::Lock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::snapshot::{WaitCounts, WaitRow, WakeRow};

    fn wait(tid: u32, uaddr: u64, ns: u64) -> WaitRow {
        WaitRow {
            tgid: 1,
            tid,
            uaddr,
            counts: WaitCounts {
                blocked: 1,
                total_ns: ns,
                ..WaitCounts::default()
            },
            ..WaitRow::default()
        }
    }

    fn wake(tid: u32, uaddr: u64, calls: u64, woke_many: u64) -> WakeRow {
        WakeRow {
            tgid: 1,
            tid,
            uaddr,
            calls,
            woken: calls + woke_many,
            woke_many,
            ..WakeRow::default()
        }
    }

    #[test]
    fn waiters_that_wake_it_make_a_lock_and_outside_wakers_an_event() {
        let s = Snapshot {
            waits: vec![
                // 0xa: srw_lock-style word: the waiters unlock it too.
                wait(11, 0xa, 500),
                wait(12, 0xa, 400),
                // 0xb: a condvar: consumers wait, a producer signals.
                wait(11, 0xb, 9_000),
                wait(12, 0xb, 9_000),
                // 0xc: a per-thread park word, woken by others.
                wait(13, 0xc, 100),
                // 0xd: a shared futex posted by another process: no wake seen.
                wait(14, 0xd, 100),
            ],
            wakes: vec![
                wake(11, 0xa, 3, 0),
                wake(12, 0xa, 2, 0),
                wake(20, 0xb, 10, 0),
                wake(11, 0xc, 1, 0),
            ],
            ..Snapshot::default()
        };
        let b = classify(&s);
        assert_eq!(b.of(1, 0xa).behavior, Behavior::Lock);
        assert_eq!(b.of(1, 0xb).behavior, Behavior::Event);
        assert_eq!(b.of(1, 0xc).behavior, Behavior::Event);
        assert_eq!(b.of(1, 0xd).behavior, Behavior::Unknown);
        assert_eq!(b.of(2, 0xa).behavior, Behavior::Unknown, "other process");
    }

    #[test]
    fn a_mixed_address_is_unknown_and_broadcasts_are_flagged() {
        let s = Snapshot {
            waits: vec![wait(11, 0xa, 100), wait(12, 0xa, 900)],
            wakes: vec![wake(11, 0xa, 1, 0), wake(20, 0xa, 4, 3)],
            ..Snapshot::default()
        };
        let a = classify(&s).of(1, 0xa);
        assert_eq!(a.behavior, Behavior::Unknown, "10% of the wait self-woken");
        assert!(a.broadcast, "3 of 5 calls woke several");
    }

    #[test]
    fn wasted_only_on_locks_or_herds() {
        let lock = AddressBehavior {
            behavior: Behavior::Lock,
            broadcast: false,
        };
        let event = AddressBehavior {
            behavior: Behavior::Event,
            broadcast: false,
        };
        let herd = AddressBehavior {
            behavior: Behavior::Event,
            broadcast: true,
        };
        assert!(rewait_is_wasted(WaitKind::Mutex, lock));
        assert!(rewait_is_wasted(WaitKind::Other, lock), "srw_lock");
        assert!(!rewait_is_wasted(WaitKind::Semaphore, lock));
        assert!(!rewait_is_wasted(WaitKind::RwlockRead, lock));
        assert!(!rewait_is_wasted(WaitKind::Condvar, event), "worker loop");
        assert!(!rewait_is_wasted(WaitKind::Mutex, event), "park word");
        assert!(rewait_is_wasted(WaitKind::Condvar, herd), "notify_all herd");
        assert!(rewait_is_wasted(WaitKind::RwlockRead, herd));
    }

    #[test]
    fn site_behavior_follows_most_of_the_wait_and_contention_combines() {
        let w = BTreeMap::from([(Behavior::Lock, 70), (Behavior::Event, 30)]);
        assert_eq!(site_behavior(&w), Behavior::Lock);
        let w = BTreeMap::from([(Behavior::Lock, 30), (Behavior::Unknown, 70)]);
        assert_eq!(site_behavior(&w), Behavior::Unknown);
        assert_eq!(site_behavior(&BTreeMap::new()), Behavior::Unknown);
        assert!(is_contention(WaitKind::Other, Behavior::Lock));
        assert!(!is_contention(WaitKind::Other, Behavior::Event));
        assert!(
            !is_contention(WaitKind::Condvar, Behavior::Lock),
            "the stack's name wins"
        );
        assert!(is_contention(WaitKind::Mutex, Behavior::Event));
    }
}

//! The header's "where the blocked time goes": blocked time by kind, with `other`
//! split by behaviour, and a plain note when condition variables hold most of it.
//!
//! Owns: those lines and the site kind label. Must not: compute shares the report
//! does not hold beyond percentages of its totals.

use crate::render::units::{fmt_duration_ns, fmt_pct};
use crate::report::{Behavior, KindShare, Site, Totals, WaitKind};

/// Share of the blocked time in condvar waits above which the header says so.
const CONDVAR_NOTE_SHARE: f64 = 0.5;

/// `mutex`, `futex-lock` for a bare futex lock told by behaviour, `condvar*` for an
/// event wait.
pub fn kind_label(site: &Site) -> String {
    let kind = name(site.kind, site.behavior);
    if site.contention {
        kind.to_owned()
    } else {
        format!("{kind}*")
    }
}

fn name(kind: WaitKind, behavior: Behavior) -> &'static str {
    match (kind, behavior) {
        (WaitKind::Other, Behavior::Lock) => "futex-lock",
        _ => kind.as_str(),
    }
}

/// `blocked by kind: futex-lock 23.1s (40%), condvar* 16.0s (53%), …` and, when most
/// of the wait is condvar waits, a note that they may be higher-level locks.
pub fn by_kind_lines(t: &Totals) -> Vec<String> {
    if t.by_kind.is_empty() || t.wait_ns == 0 {
        return Vec::new();
    }
    let parts: Vec<String> = t
        .by_kind
        .iter()
        .map(|k| {
            let star = if k.contention { "" } else { "*" };
            format!(
                "{}{star} {} ({})",
                name(k.kind, k.behavior),
                fmt_duration_ns(k.wait_ns),
                fmt_pct(k.wait_ns, t.wait_ns)
            )
        })
        .collect();
    let mut lines = vec![format!("blocked by kind: {}", parts.join(", "))];
    let condvar_ns: u64 = t
        .by_kind
        .iter()
        .filter(|k: &&KindShare| k.kind == WaitKind::Condvar)
        .map(|k| k.wait_ns)
        .sum();
    if condvar_ns as f64 > CONDVAR_NOTE_SHARE * t.wait_ns as f64 {
        lines.push(format!(
            "note: {} of the blocked time is condition-variable waits: not futex lock \
             contention, but often a higher-level lock built on a condvar (database row \
             locks, queues); see the condvar sites' callers",
            fmt_pct(condvar_ns, t.wait_ns)
        ));
    }
    if t.by_kind
        .iter()
        .any(|k| k.kind == WaitKind::Other && k.behavior == Behavior::Lock)
    {
        lines.push(
            "futex-lock: futex(2) called directly, no lock library named in the stack; \
             its waiters also release it, so it is counted as lock contention"
                .to_owned(),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(kind: WaitKind, behavior: Behavior, contention: bool, ns: u64) -> KindShare {
        KindShare {
            kind,
            behavior,
            contention,
            waits: 1,
            wait_ns: ns,
        }
    }

    #[test]
    fn mostly_condvar_is_said_plainly_and_futex_locks_are_named() {
        let t = Totals {
            wait_ns: 100_000_000,
            by_kind: vec![
                share(WaitKind::Condvar, Behavior::Unknown, false, 65_000_000),
                share(WaitKind::Other, Behavior::Lock, true, 30_000_000),
                share(WaitKind::Mutex, Behavior::Unknown, true, 5_000_000),
            ],
            ..Totals::default()
        };
        let lines = by_kind_lines(&t);
        assert!(
            lines[0].starts_with("blocked by kind: condvar* 65.0ms (65"),
            "{lines:?}"
        );
        assert!(lines[0].contains("futex-lock 30.0ms"), "{lines:?}");
        assert!(lines[0].contains(", mutex 5.00ms"), "{lines:?}");
        assert!(lines[1].starts_with("note: 65"), "{lines:?}");
        assert!(lines[2].starts_with("futex-lock:"), "{lines:?}");
    }

    #[test]
    fn no_note_when_condvars_are_a_minority_and_nothing_for_old_reports() {
        let t = Totals {
            wait_ns: 100,
            by_kind: vec![
                share(WaitKind::Mutex, Behavior::Unknown, true, 60),
                share(WaitKind::Condvar, Behavior::Unknown, false, 40),
            ],
            ..Totals::default()
        };
        assert_eq!(by_kind_lines(&t).len(), 1);
        assert!(by_kind_lines(&Totals::default()).is_empty());
    }

    #[test]
    fn labels_mark_event_waits_and_behavioural_locks() {
        let site = |kind, behavior, contention| Site {
            kind,
            contention,
            behavior,
            ..Site::default()
        };
        assert_eq!(
            kind_label(&site(WaitKind::Other, Behavior::Lock, true)),
            "futex-lock"
        );
        assert_eq!(
            kind_label(&site(WaitKind::Other, Behavior::Event, false)),
            "other*"
        );
        assert_eq!(
            kind_label(&site(WaitKind::Mutex, Behavior::Lock, true)),
            "mutex"
        );
    }
}

//! `--lock-fn` on a saved report: sites re-attributed below user-named wrappers from
//! the call paths the report keeps, without the recording.
//!
//! Owns: splitting a site into the sites its stacks reach past the named wrappers
//! (with the rule of [`LockFns::skip`], the one `record --lock-fn` applies), and what
//! each part can honestly carry. Must not: recognize wrappers (`wrappers`), or invent
//! what the saved stacks do not say.
//!
//! Each listed stack of a site keeps its exact waits, total and longest wait, so a
//! stack whose site frame is a named wrapper moves, with those numbers, to the site of
//! the first frame past the wrappers. What is recorded per site only (the histogram and
//! its quantiles, the shortest wait, the threads, addresses, "woken by", "blocked
//! by", the interval series, fairness) cannot be divided among stacks: a site that lost or gained stacks
//! has them cleared and is marked `from_saved_stacks`, which renderers show as
//! unknown. Counters the stacks do not carry (`EAGAIN`, timeouts, wasted wakeups,
//! unpaired waits) stay with the wrapper's site, as does the wait of the stacks the
//! report did not list (`more_stacks`). Totals, `locks` and `wakers` are left as
//! recorded: nothing moves between kinds, so the totals by kind stay true.

use std::collections::BTreeMap;

use crate::analyze::attribute::attribute;
use crate::analyze::histogram::Log2Histogram;
use crate::analyze::sites::{by_wait, site_identity};
use crate::analyze::wrappers::LockFns;
use crate::report::{Fairness, Frame, Report, Site, StackShare, WaitSummary, WakeLatency};

/// `report` with its sites re-attributed past the functions matching `patterns`
/// (`--lock-fn`); the report unchanged when no listed stack passes through one.
pub fn reattribute(report: &Report, patterns: &[String]) -> Report {
    let fns = LockFns::new(patterns);
    // Sites by id, and whether their stacks changed (split off or merged in).
    let mut sites: BTreeMap<String, (Site, bool)> = BTreeMap::new();
    let mut moved: Vec<(Site, StackShare)> = Vec::new();
    for site in &report.sites {
        let mut kept = site.clone();
        kept.stacks.clear();
        let mut gone: Vec<&WaitSummary> = Vec::new();
        for stack in &site.stacks {
            match relocate(site, stack, &fns) {
                Some((to, frames)) => {
                    gone.push(&stack.wait);
                    moved.push((
                        to,
                        StackShare {
                            frames,
                            ..stack.clone()
                        },
                    ));
                }
                None => kept.stacks.push(stack.clone()),
            }
        }
        let split = !gone.is_empty();
        if split {
            shrink(&mut kept, &gone);
        }
        sites.insert(kept.id.clone(), (kept, split));
    }
    for (to, stack) in moved {
        let (site, changed) = sites.entry(to.id.clone()).or_insert_with(|| (to, true));
        *changed = true;
        site.waits += stack.wait.waits;
        site.total_wait_ns += stack.wait.total_wait_ns;
        site.max_wait_ns = site.max_wait_ns.max(stack.wait.max_wait_ns);
        site.stacks.push(stack);
    }
    let mut out: Vec<Site> = sites
        .into_values()
        .filter_map(|(mut site, changed)| {
            if changed {
                distributions_unknown(&mut site);
            }
            keep(&site).then_some(site)
        })
        .collect();
    out.sort_by(|a, b| {
        b.total_wait_ns
            .cmp(&a.total_wait_ns)
            .then_with(|| a.id.cmp(&b.id))
    });
    Report {
        sites: out,
        ..report.clone()
    }
}

/// Where `stack` of `site` goes when its site frame is a named wrapper: the site past
/// the wrappers, and the frames with the lock implementation marked up to it. `None`
/// when it stays.
fn relocate(site: &Site, stack: &StackShare, fns: &LockFns) -> Option<(Site, Vec<Frame>)> {
    let frames = &stack.frames;
    // The recorded site frame: the first one the recording did not mark as lock
    // implementation (glibc, std, and the wrappers it recognized or was told).
    let at = frames.iter().position(|f| !f.lock_impl)?;
    let past = fns.skip(frames, at);
    if past == at {
        return None;
    }
    let mut attr = attribute(frames, site.kind);
    attr.site = past;
    attr.kind = site.kind;
    let identity = site_identity(frames, &attr);
    if identity.id == site.id {
        return None;
    }
    let frames = frames
        .iter()
        .enumerate()
        .map(|(i, f)| Frame {
            lock_impl: i < past,
            ..f.clone()
        })
        .collect();
    let to = Site {
        id: identity.id,
        function: identity.function,
        file: identity.file,
        line: identity.line,
        module: identity.module,
        // What the wait is stays; every figure comes from the stacks moved in.
        kind: site.kind,
        contention: site.contention,
        behavior: site.behavior,
        lock_impl: site.lock_impl.clone(),
        ..Site::default()
    };
    Some((to, frames))
}

/// The wrapper's site after `gone` stacks left it: their waits taken off; its longest
/// wait is the longest of what is left where that is known, else at most its total.
fn shrink(site: &mut Site, gone: &[&WaitSummary]) {
    for w in gone {
        site.waits = site.waits.saturating_sub(w.waits);
        site.total_wait_ns = site.total_wait_ns.saturating_sub(w.total_wait_ns);
    }
    let listed_ns: u64 = site.stacks.iter().map(|s| s.wait.total_wait_ns).sum();
    let listed_max = site.stacks.iter().map(|s| s.wait.max_wait_ns).max();
    site.max_wait_ns = if listed_ns >= site.total_wait_ns {
        listed_max.unwrap_or(0)
    } else {
        site.max_wait_ns.min(site.total_wait_ns)
    };
}

/// Per-site figures no stack carries, cleared on a site whose stacks changed; the
/// average is recomputed from the exact waits and total.
fn distributions_unknown(site: &mut Site) {
    site.stacks.sort_by(|a, b| by_wait(&a.wait, &b.wait));
    site.avg_wait_ns = site.total_wait_ns.checked_div(site.waits).unwrap_or(0);
    site.min_wait_ns = 0;
    site.p50_wait_ns = 0;
    site.p99_wait_ns = 0;
    site.histogram = Log2Histogram::default();
    site.threads.clear();
    site.addresses.clear();
    site.woken_by.clear();
    site.blocked_by.clear();
    site.blocked_by_unknown_ns = 0;
    site.wake_to_run = WakeLatency::default();
    site.fairness = Fairness::default();
    site.series.clear();
    site.from_saved_stacks = true;
}

/// A site with nothing left (every stack moved, no other counter) is dropped.
fn keep(site: &Site) -> bool {
    site.waits > 0
        || site.eagain > 0
        || site.timeouts > 0
        || site.interrupted > 0
        || site.other_errors > 0
        || site.more_stacks > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Totals, WaitKind};
    use crate::test_support::{func, sample_report, sum};

    /// A PostgreSQL-like stack: the semaphore wait under `ProcSleep`, called through
    /// the heavyweight-lock functions from `caller`.
    fn pg_stack(caller: &str, line: u32, wait: WaitSummary) -> StackShare {
        let lib = |f: &str| Frame {
            function: Some(f.into()),
            module: Some("/usr/lib/x86_64-linux-gnu/libc.so.6".into()),
            lock_impl: true,
            ..Frame::default()
        };
        let pg = |f: &str, l: u32| Frame {
            module: Some("/usr/lib/postgresql/15/bin/postgres".into()),
            ..func("0x1", f, "proc.c", l, false)
        };
        StackShare {
            wait,
            frames: vec![
                lib("do_futex_wait"),
                lib("sem_wait"),
                Frame {
                    lock_impl: true,
                    ..pg("PGSemaphoreLock", 10)
                },
                pg("ProcSleep", 1300),
                pg("WaitOnLock", 1800),
                pg("LockAcquireExtended", 1100),
                pg(caller, line),
                pg("PostgresMain", 4000),
            ],
            unwind: None,
        }
    }

    fn proc_sleep_site(stacks: Vec<StackShare>, tail: &WaitSummary) -> Site {
        let listed: u64 = stacks.iter().map(|s| s.wait.total_wait_ns).sum();
        let waits: u64 = stacks.iter().map(|s| s.wait.waits).sum::<u64>() + tail.waits;
        let total = listed + tail.total_wait_ns;
        Site {
            id: "other|postgres|ProcSleep|proc.c:1300".into(),
            kind: WaitKind::Other,
            contention: true,
            lock_impl: "glibc".into(),
            function: Some("ProcSleep".into()),
            file: Some("proc.c".into()),
            line: Some(1300),
            module: Some("/usr/lib/postgresql/15/bin/postgres".into()),
            waits,
            total_wait_ns: total,
            avg_wait_ns: total / waits,
            max_wait_ns: 90,
            p50_wait_ns: 20,
            p99_wait_ns: 80,
            eagain: 4,
            histogram: Log2Histogram::from_buckets(&[1, 2, 3]),
            more_stacks: u64::from(tail.waits > 0),
            stacks,
            ..Site::default()
        }
    }

    fn report(sites: Vec<Site>) -> Report {
        let waits = sites.iter().map(|s| s.waits).sum();
        let wait_ns = sites.iter().map(|s| s.total_wait_ns).sum();
        Report {
            totals: Totals {
                waits,
                wait_ns,
                ..Totals::default()
            },
            sites,
            ..Report::default()
        }
    }

    fn names(r: &Report) -> Vec<(&str, u64, u64)> {
        r.sites
            .iter()
            .map(|s| {
                (
                    s.function.as_deref().unwrap_or("?"),
                    s.waits,
                    s.total_wait_ns,
                )
            })
            .collect()
    }

    #[test]
    fn a_named_wrapper_ranks_its_callers_with_their_exact_waits() {
        let r = report(vec![proc_sleep_site(
            vec![
                pg_stack("XactLockTableWait", 600, sum(6, 600, 90)),
                pg_stack("LockRelationOid", 100, sum(3, 300, 70)),
                pg_stack("XactLockTableWait", 610, sum(1, 50, 50)),
            ],
            &sum(2, 40, 30),
        )]);
        let fns = [
            "ProcSleep".to_owned(),
            "WaitOnLock".into(),
            "LockAcquire*".into(),
        ];
        let out = reattribute(&r, &fns);
        assert_eq!(
            names(&out),
            [
                ("XactLockTableWait", 6, 600),
                ("LockRelationOid", 3, 300),
                ("XactLockTableWait", 1, 50),
                ("ProcSleep", 2, 40),
            ],
            "ranked by wait; two lines of one caller are two sites, as when recorded; \
             the unlisted tail stays with the wrapper"
        );
        assert_eq!(out.totals, r.totals, "totals unchanged");
        let xact = &out.sites[0];
        assert_eq!(xact.id, "other|postgres|XactLockTableWait|proc.c:600");
        assert_eq!((xact.kind, xact.contention), (WaitKind::Other, true));
        assert_eq!((xact.avg_wait_ns, xact.max_wait_ns), (100, 90));
        assert!(xact.from_saved_stacks, "no histogram to split");
        assert!(xact.histogram.counts.iter().all(|&c| c == 0));
        assert_eq!(xact.p99_wait_ns, 0);
        assert_eq!(xact.eagain, 0, "EAGAIN is per site, not per stack");
        let marked: Vec<bool> = xact.stacks[0].frames.iter().map(|f| f.lock_impl).collect();
        assert_eq!(marked, [true, true, true, true, true, true, false, false]);
        let rest = &out.sites[3];
        assert_eq!((rest.eagain, rest.more_stacks), (4, 1));
        assert!(rest.stacks.is_empty());
        assert!(rest.max_wait_ns <= 40, "no wait longer than what is left");
    }

    #[test]
    fn stacks_moving_onto_an_existing_site_merge_with_it() {
        let direct = Site {
            id: "other|postgres|LockRelationOid|proc.c:100".into(),
            function: Some("LockRelationOid".into()),
            waits: 5,
            total_wait_ns: 500,
            max_wait_ns: 200,
            histogram: Log2Histogram::from_buckets(&[5]),
            stacks: vec![StackShare {
                wait: sum(5, 500, 200),
                ..StackShare::default()
            }],
            ..Site::default()
        };
        let r = report(vec![
            direct,
            proc_sleep_site(
                vec![pg_stack("LockRelationOid", 100, sum(3, 300, 70))],
                &sum(0, 0, 0),
            ),
        ]);
        let out = reattribute(
            &r,
            &["ProcSleep".into(), "WaitOnLock".into(), "LockAcq*".into()],
        );
        assert_eq!(
            names(&out),
            [("LockRelationOid", 8, 800), ("ProcSleep", 0, 0)],
            "the emptied wrapper site stays only for its EAGAIN count"
        );
        assert_eq!(out.sites[0].stacks.len(), 2);
        assert_eq!(out.sites[0].max_wait_ns, 200);
        assert!(out.sites[0].from_saved_stacks);
    }

    #[test]
    fn patterns_that_match_no_site_frame_change_nothing() {
        let r = sample_report();
        assert_eq!(reattribute(&r, &["no_such_fn".into()]), r);
        assert_eq!(reattribute(&r, &[]), r);
        // The wrappers below the site frames are already folded: naming them again
        // moves nothing.
        assert_eq!(reattribute(&r, &["pthread_mutex_lock".into()]), r);
    }
}

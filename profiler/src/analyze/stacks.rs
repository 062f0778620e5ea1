//! One stack per call path: a site's stacks merged by their symbolized frames, across
//! threads, processes and kernel stack ids, and the merged stacks a site keeps.
//!
//! Owns: the identity of a call path and the rule for how many to keep. Must not:
//! decide sites (that is `attribute`) — it only regroups the stacks of one site.
//!
//! Why: the kernel keys stacks by (process, stack id, leaf), and the same call path
//! from 32 threads of one daemon — or from 16 `PostgreSQL` backends with their own
//! address layouts — is 32 keys. Shares, the hottest stack, flame graphs and pprof
//! must describe call paths, not threads.

use std::collections::BTreeMap;

use crate::analyze::aggregate::{StackKey, SymbolizedStacks, frames_of};
use crate::report::{Frame, WaitSummary};

/// Merged stacks listed per site at most (a long tail goes to `more_stacks`).
pub const MAX_STACKS_PER_SITE: usize = 64;
/// Merged stacks always listed when a site has them.
const MIN_STACKS_PER_SITE: usize = 5;
/// Share of a site's wait the listed stacks cover before the tail is cut.
const STACK_COVERAGE: f64 = 0.99;

/// A frame as a call path sees it: the resolved function and line, else the module
/// and offset — never the absolute address, which differs between processes.
fn frame_identity(f: &Frame) -> String {
    match (&f.function, &f.module) {
        (Some(func), _) => format!(
            "{func}@{}:{}{}",
            f.file.as_deref().unwrap_or("?"),
            f.line.unwrap_or(0),
            if f.inlined { "i" } else { "" }
        ),
        (None, Some(module)) => format!(
            "{}+{}",
            module.rsplit('/').next().unwrap_or(module),
            f.module_offset.as_deref().unwrap_or("?")
        ),
        (None, None) => "?".to_owned(),
    }
}

/// The identity of a stack's call path, innermost first. Stacks the kernel lost
/// (negative id) share one empty path.
pub fn call_path(stacks: &SymbolizedStacks, key: StackKey) -> Vec<String> {
    frames_of(stacks, key).iter().map(frame_identity).collect()
}

/// A call path's merged wait and the kernel stack that stands for it (the one with
/// most wait, so its frames and unwind method are shown).
pub struct MergedStack {
    pub wait: WaitSummary,
    pub representative: StackKey,
    best_ns: u64,
}

/// Merge per-key stack waits by call path, sorted by wait descending (ties by the
/// representative key, so the order never depends on hash iteration).
pub fn merge(
    stacks: &SymbolizedStacks,
    per_key: BTreeMap<StackKey, WaitSummary>,
) -> Vec<MergedStack> {
    let mut by_path: BTreeMap<Vec<String>, MergedStack> = BTreeMap::new();
    for (key, wait) in per_key {
        let m = by_path
            .entry(call_path(stacks, key))
            .or_insert_with(|| MergedStack {
                wait: WaitSummary::default(),
                representative: key,
                best_ns: 0,
            });
        if wait.total_wait_ns > m.best_ns || m.wait.waits == 0 {
            m.best_ns = wait.total_wait_ns;
            m.representative = key;
        }
        m.wait.add(wait.waits, wait.total_wait_ns, wait.max_wait_ns);
    }
    let mut out: Vec<MergedStack> = by_path.into_values().collect();
    out.sort_by(|a, b| {
        b.wait
            .total_wait_ns
            .cmp(&a.wait.total_wait_ns)
            .then(b.wait.waits.cmp(&a.wait.waits))
            .then(a.representative.cmp(&b.representative))
    });
    out
}

/// How many of the sorted merged stacks to list: at least a few, then until they
/// cover [`STACK_COVERAGE`] of the site's wait, never more than the cap.
pub fn keep_count(sorted: &[MergedStack]) -> usize {
    let total: u64 = sorted.iter().map(|m| m.wait.total_wait_ns).sum();
    let goal = (total as f64 * STACK_COVERAGE).ceil() as u64;
    let mut covered = 0u64;
    let mut n = 0;
    for m in sorted {
        if n >= MAX_STACKS_PER_SITE || (n >= MIN_STACKS_PER_SITE && covered >= goal) {
            break;
        }
        covered += m.wait.total_wait_ns;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(function: &str, address: &str) -> Frame {
        Frame {
            address: address.into(),
            function: Some(function.into()),
            file: Some("a.c".into()),
            line: Some(3),
            module: Some("/usr/bin/d".into()),
            module_offset: Some("0x10".into()),
            ..Frame::default()
        }
    }

    fn w(ns: u64) -> WaitSummary {
        WaitSummary {
            waits: 1,
            total_wait_ns: ns,
            max_wait_ns: ns,
        }
    }

    #[test]
    fn the_same_path_from_many_threads_and_processes_is_one_stack() {
        let mut st = SymbolizedStacks::new();
        // Two processes (different address layouts), two stack ids, one path.
        st.insert((1, 1, 0), vec![f("lock", "0x1000"), f("work", "0x2000")]);
        st.insert((2, 9, 0), vec![f("lock", "0x5000"), f("work", "0x6000")]);
        st.insert((1, 2, 0), vec![f("lock", "0x1000"), f("other", "0x3000")]);
        let per_key = BTreeMap::from([
            ((1, 1, 0), w(100)),
            ((2, 9, 0), w(300)),
            ((1, 2, 0), w(250)),
        ]);
        let m = merge(&st, per_key);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].wait.waits, m[0].wait.total_wait_ns), (2, 400));
        assert_eq!(m[0].representative, (2, 9, 0), "the heaviest member");
        assert_eq!(m[1].wait.total_wait_ns, 250);
    }

    #[test]
    fn unresolved_frames_merge_by_module_offset_not_address() {
        let bare = |addr: &str| Frame {
            address: addr.into(),
            module: Some("/usr/sbin/mariadbd".into()),
            module_offset: Some("0xde2b6c".into()),
            ..Frame::default()
        };
        let mut st = SymbolizedStacks::new();
        st.insert((1, 1, 0), vec![bare("0x5555")]);
        st.insert((2, 1, 0), vec![bare("0x6666")]);
        assert_eq!(call_path(&st, (1, 1, 0)), call_path(&st, (2, 1, 0)));
        assert_eq!(call_path(&st, (1, -3, 0)), Vec::<String>::new());
    }

    #[test]
    fn keeps_enough_stacks_to_cover_the_wait_and_cuts_the_long_tail() {
        let mk = |ns: &[u64]| -> Vec<MergedStack> {
            ns.iter()
                .enumerate()
                .map(|(i, &n)| MergedStack {
                    wait: w(n),
                    representative: (1, i as i32, 0),
                    best_ns: n,
                })
                .collect()
        };
        // 20 equal stacks: all needed for 99 %.
        assert_eq!(keep_count(&mk(&[10; 20])), 20);
        // One dominant stack and a long tail of tiny ones: the minimum.
        let mut tail = vec![1_000_000];
        tail.extend([1; 100]);
        assert_eq!(keep_count(&mk(&tail)), MIN_STACKS_PER_SITE);
        // A flat tail of 500: capped.
        assert_eq!(keep_count(&mk(&[10; 500])), MAX_STACKS_PER_SITE);
        assert_eq!(keep_count(&[]), 0);
    }
}

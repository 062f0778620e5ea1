//! The rows of `lockprof top`'s site table: a site's numbers over the last interval
//! and cumulatively, computed from two cumulative reports.
//!
//! Owns: [`Row`], [`Stats`] and the arithmetic that turns two cumulative reports into
//! an interval ([`delta`]). Must not: sort, filter or hold any state (that is `app`).

use std::collections::HashMap;

use crate::analyze::histogram::Log2Histogram;
use crate::render::text::short_path;
use crate::report::{Site, WaitKind};
use crate::tui::app::SortKey;

/// One interval's or the cumulative numbers of a site. `None` when not known (a
/// replayed report has no previous report to take the interval's p99 from).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub waits: u64,
    pub wait_ns: u64,
    pub avg_ns: u64,
    pub p99_ns: Option<u64>,
    pub max_ns: Option<u64>,
    pub threads: Option<u64>,
}

impl Stats {
    pub fn value(&self, key: SortKey) -> u64 {
        match key {
            SortKey::Waits => self.waits,
            SortKey::Total => self.wait_ns,
            SortKey::Avg => self.avg_ns,
            SortKey::P99 => self.p99_ns.unwrap_or(0),
            SortKey::Max => self.max_ns.unwrap_or(0),
            SortKey::Threads => self.threads.unwrap_or(0),
        }
    }
}

/// A row of the site table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub kind: WaitKind,
    pub function: String,
    /// `file:line` (shortened), or the module when there is no line information.
    pub location: String,
    pub interval: Stats,
    pub total: Stats,
}

/// `file:line` of a site, shortened; the module's file name without line information.
pub fn location(site: &Site) -> String {
    match (&site.file, site.line, &site.module) {
        (Some(file), Some(line), _) => format!("{}:{line}", short_path(file)),
        (Some(file), None, _) => short_path(file),
        (None, _, Some(module)) => short_path(module),
        (None, _, None) => String::new(),
    }
}

/// A replayed site's last interval, from its series: counts only.
pub fn last_interval_of(site: &Site) -> Stats {
    let last = site.series.last().copied().unwrap_or_default();
    Stats {
        waits: last.waits,
        wait_ns: last.wait_ns,
        avg_ns: last.wait_ns.checked_div(last.waits).unwrap_or(0),
        ..Stats::default()
    }
}

/// The numbers of `now` minus those of `before` (the same site in an earlier
/// cumulative report). p99 comes from the difference of the histograms. The maximum
/// is exact when a new maximum was set since `before`; otherwise it is the upper edge
/// of the highest bucket hit since then, capped at the maximum so far.
pub fn delta(before: Option<&Site>, now: &Site) -> Stats {
    let Some(before) = before else {
        return Stats {
            waits: now.waits,
            wait_ns: now.total_wait_ns,
            avg_ns: now.avg_wait_ns,
            // Re-attributed by `--lock-fn` from saved stacks: p99 and threads unknown.
            p99_ns: (!now.from_saved_stacks).then_some(now.p99_wait_ns),
            max_ns: Some(now.max_wait_ns),
            threads: (!now.from_saved_stacks)
                .then(|| now.threads.iter().filter(|t| t.wait.waits > 0).count() as u64),
        };
    };
    let waits = now.waits.saturating_sub(before.waits);
    let wait_ns = now.total_wait_ns.saturating_sub(before.total_wait_ns);
    let hist = Log2Histogram::from_buckets(
        &now.histogram
            .counts
            .iter()
            .enumerate()
            .map(|(b, &n)| n.saturating_sub(before.histogram.counts.get(b).copied().unwrap_or(0)))
            .collect::<Vec<_>>(),
    );
    let max = if waits == 0 {
        0
    } else if now.max_wait_ns > before.max_wait_ns {
        now.max_wait_ns
    } else {
        hist.counts
            .iter()
            .rposition(|&n| n > 0)
            .map_or(now.max_wait_ns, |b| {
                (1u64 << (b + 1).min(63)).min(now.max_wait_ns)
            })
    };
    let before_threads: HashMap<u32, u64> = before
        .threads
        .iter()
        .map(|t| (t.tid, t.wait.waits))
        .collect();
    let threads = now
        .threads
        .iter()
        .filter(|t| t.wait.waits > before_threads.get(&t.tid).copied().unwrap_or(0))
        .count() as u64;
    Stats {
        waits,
        wait_ns,
        avg_ns: wait_ns.checked_div(waits).unwrap_or(0),
        p99_ns: Some(if waits == 0 {
            0
        } else {
            hist.quantile(0.99, 0, max)
        }),
        max_ns: Some(max),
        threads: Some(threads),
    }
}

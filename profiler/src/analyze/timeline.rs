//! The per-interval time series of a recording, from cumulative reports.
//!
//! Owns: cutting a session into intervals by differencing the cumulative reports
//! taken at each tick (the kernel's maps only ever grow), per site and in total, and
//! writing the result into [`Report::timeline`] and each [`Site::series`]. Must not:
//! read the clock or the kernel — the caller hands it reports whose `duration_ns`
//! says when they were taken, so the same reports always give the same series.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::report::{Interval, IntervalCount, Report, Timeline};

/// Cumulative (waits, wait ns) at the previous tick.
#[derive(Clone, Copy, Debug, Default)]
struct Cumulative {
    waits: u64,
    wait_ns: u64,
}

/// Builds a [`Timeline`] from successive cumulative reports of one session.
#[derive(Clone, Debug)]
pub struct TimelineBuilder {
    interval_ns: u64,
    intervals: Vec<Interval>,
    /// Site id → its count in each interval; a site first seen in interval `k` has
    /// zeros before `k`.
    series: BTreeMap<String, Vec<IntervalCount>>,
    prev_at_ns: u64,
    prev_total: Cumulative,
    prev_contention: Cumulative,
    prev_sites: BTreeMap<String, Cumulative>,
}

impl TimelineBuilder {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval_ns: interval.as_nanos() as u64,
            intervals: Vec::new(),
            series: BTreeMap::new(),
            prev_at_ns: 0,
            prev_total: Cumulative::default(),
            prev_contention: Cumulative::default(),
            prev_sites: BTreeMap::new(),
        }
    }

    /// Close the interval that ends at `report.duration_ns` with the difference
    /// between `report` (cumulative since the start) and the previous one. A report
    /// taken no later than the previous adds nothing. Counters never shrink in one
    /// session; should one (a site whose stacks were re-attributed), its interval
    /// count is zero rather than a wrapped-around huge number.
    pub fn push(&mut self, report: &Report) {
        let at = report.duration_ns;
        if at <= self.prev_at_ns && !self.intervals.is_empty() {
            return;
        }
        let total = Cumulative {
            waits: report.totals.waits,
            wait_ns: report.totals.wait_ns,
        };
        let contention = Cumulative {
            waits: report.totals.contention_waits,
            wait_ns: report.totals.contention_wait_ns,
        };
        let index = self.intervals.len();
        self.intervals.push(Interval {
            start_ns: self.prev_at_ns,
            duration_ns: at.saturating_sub(self.prev_at_ns),
            waits: total.waits.saturating_sub(self.prev_total.waits),
            wait_ns: total.wait_ns.saturating_sub(self.prev_total.wait_ns),
            contention_waits: contention.waits.saturating_sub(self.prev_contention.waits),
            contention_wait_ns: contention
                .wait_ns
                .saturating_sub(self.prev_contention.wait_ns),
        });
        for site in &report.sites {
            let now = Cumulative {
                waits: site.waits,
                wait_ns: site.total_wait_ns,
            };
            let before = self.prev_sites.insert(site.id.clone(), now);
            let before = before.unwrap_or_default();
            let series = self.series.entry(site.id.clone()).or_default();
            series.resize(index, IntervalCount::default());
            series.push(IntervalCount {
                waits: now.waits.saturating_sub(before.waits),
                wait_ns: now.wait_ns.saturating_sub(before.wait_ns),
            });
        }
        self.prev_at_ns = at;
        self.prev_total = total;
        self.prev_contention = contention;
    }

    /// The intervals closed so far.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Write the timeline into `report`: [`Report::timeline`], and every site's
    /// series padded with zeros to the number of intervals (a site first seen late,
    /// or quiet at the end).
    pub fn apply(&self, report: &mut Report) {
        let n = self.intervals.len();
        for site in &mut report.sites {
            let mut series = self.series.get(&site.id).cloned().unwrap_or_default();
            series.resize(n, IntervalCount::default());
            site.series = series;
        }
        report.timeline = Some(Timeline {
            interval_ns: self.interval_ns,
            intervals: self.intervals.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Site, Totals};

    fn site(id: &str, waits: u64, wait_ns: u64) -> Site {
        Site {
            id: id.to_owned(),
            waits,
            total_wait_ns: wait_ns,
            ..Site::default()
        }
    }

    fn report(at_ns: u64, sites: Vec<Site>) -> Report {
        let waits = sites.iter().map(|s| s.waits).sum();
        let wait_ns = sites.iter().map(|s| s.total_wait_ns).sum();
        Report {
            duration_ns: at_ns,
            totals: Totals {
                waits,
                wait_ns,
                contention_waits: waits,
                contention_wait_ns: wait_ns,
                ..Totals::default()
            },
            sites,
            ..Report::default()
        }
    }

    #[test]
    fn intervals_are_differences_of_cumulative_reports() {
        let mut tl = TimelineBuilder::new(Duration::from_secs(1));
        tl.push(&report(1_000, vec![site("a", 2, 20)]));
        tl.push(&report(2_000, vec![site("a", 5, 50), site("b", 1, 7)]));
        tl.push(&report(2_500, vec![site("a", 5, 50), site("b", 4, 10)]));
        let mut last = report(2_500, vec![site("a", 5, 50), site("b", 4, 10)]);
        tl.apply(&mut last);
        let timeline = last.timeline.as_ref().unwrap();
        assert_eq!(timeline.interval_ns, 1_000_000_000);
        let spans: Vec<_> = timeline
            .intervals
            .iter()
            .map(|i| (i.start_ns, i.duration_ns, i.waits, i.wait_ns))
            .collect();
        assert_eq!(
            spans,
            [(0, 1_000, 2, 20), (1_000, 1_000, 4, 37), (2_000, 500, 3, 3)]
        );
        let a: Vec<_> = last.sites[0]
            .series
            .iter()
            .map(|c| (c.waits, c.wait_ns))
            .collect();
        assert_eq!(a, [(2, 20), (3, 30), (0, 0)]);
        // b appeared in the second interval: a zero before it.
        let b: Vec<_> = last.sites[1]
            .series
            .iter()
            .map(|c| (c.waits, c.wait_ns))
            .collect();
        assert_eq!(b, [(0, 0), (1, 7), (3, 3)]);
    }

    #[test]
    fn a_site_quiet_at_the_end_is_padded_and_a_new_one_gets_zeros() {
        let mut tl = TimelineBuilder::new(Duration::from_millis(100));
        tl.push(&report(100, vec![site("a", 1, 1)]));
        tl.push(&report(200, vec![]));
        let mut last = report(200, vec![site("a", 1, 1), site("never-pushed", 9, 9)]);
        tl.apply(&mut last);
        assert_eq!(last.sites[0].series.len(), 2);
        assert_eq!(last.sites[1].series, vec![IntervalCount::default(); 2]);
    }

    #[test]
    fn shrinking_counters_and_stale_reports_add_nothing_bogus() {
        let mut tl = TimelineBuilder::new(Duration::from_secs(1));
        tl.push(&report(1_000, vec![site("a", 5, 50)]));
        // Taken at the same moment: ignored.
        tl.push(&report(1_000, vec![site("a", 9, 90)]));
        tl.push(&report(2_000, vec![site("a", 3, 30)]));
        assert_eq!(tl.intervals().len(), 2);
        assert_eq!((tl.intervals()[1].waits, tl.intervals()[1].wait_ns), (0, 0));
    }

    #[test]
    fn no_push_gives_an_empty_timeline() {
        let mut last = report(0, vec![site("a", 1, 1)]);
        TimelineBuilder::new(Duration::from_secs(1)).apply(&mut last);
        assert!(last.timeline.unwrap().intervals.is_empty());
        assert!(last.sites[0].series.is_empty());
    }
}

//! The one judgement `lockprof diff` and `lockprof check --baseline` share: is a
//! change between two runs an improvement, a regression, or noise?
//!
//! Owns: the rules ([`GateRules`]: the relative threshold, the per-site floor that
//! scales with the run, whether event waits count) and their defaults, and the
//! classification of one before → after pair ([`Gate::classify_site`],
//! [`Gate::classify_total`]). `diff` builds its model with a [`Gate`], and `check`
//! takes its regression breaches from that model, so the verdict line of `diff` and the
//! exit code of `check --baseline` cannot disagree on the same pair of reports.
//!
//! Must not: match sites (that is `identity`), render, or read files.
//!
//! Why these rules (the reasons are in `docs/ci.md`, "One judgement"):
//! - **Lock contention only, by default.** Condvar and other event waits are threads
//!   waiting for work, not for a lock; a worker pool that idles longer after a fix is
//!   not a regression. `include_event_waits` judges them too.
//! - **Per second of recording.** Runs rarely last exactly as long.
//! - **A floor that scales with the run.** A site's growth counts only when it is at
//!   least `min_share` of the run's lock contention per second (the larger of the two
//!   runs) *and* at least `min_wait_per_sec`. A glibc lock at 2 ms/s next to 48 s/s of
//!   contention is noise; the same 2 ms/s in a run with 3 ms/s in total is not.

use serde::Serialize;

use crate::ci::diff::per_sec;
use crate::report::model::{Report, WaitKind};

/// Default relative growth that counts: 400%, i.e. more than ×5 either way. Measured
/// by `cargo xtask bench gate`: identical builds of the demos' buggy variants (threads
/// in a convoy) swung by up to ×3.4 in lock contention per second between runs on a
/// shared 2-core machine, while the bugs themselves change it by ×1000 or more, or add
/// new sites (which the floor judges). Fixed builds never came near it.
pub const DEFAULT_MAX_REGRESSION: f64 = 4.0;
/// Default share of the run's lock contention per second a site must change by (20%):
/// measured by `cargo xtask bench gate`, a buggy build's minor mutex can jump from
/// nothing to 7% of the run between identical runs, and a short fixed run's new
/// incidental site reached 14%; the bugs' own sites are most of their run.
pub const DEFAULT_MIN_SHARE: f64 = 0.20;
/// Default absolute floor, in wait per second of recording (ns/s): 2 ms/s.
pub const DEFAULT_MIN_WAIT_PER_SEC_NS: u64 = 2_000_000;

/// How changes are judged. Set by flags (`--max-regression`, `--min-share`,
/// `--min-wait-per-sec`, `--include-event-waits`) or a budget's `[baseline]` keys.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GateRules {
    /// Relative change that counts as improved or regressed (4.0 = 400%, i.e. ×5).
    pub max_regression: f64,
    /// A site's change counts only above this share of the run's total (0.2 = 20%).
    pub min_share: f64,
    /// …and only above this much wait per second (ns/s), whatever the run.
    pub min_wait_per_sec_ns: u64,
    /// Judge condvar and other event waits as well as lock contention.
    pub include_event_waits: bool,
}

impl Default for GateRules {
    fn default() -> Self {
        Self {
            max_regression: DEFAULT_MAX_REGRESSION,
            min_share: DEFAULT_MIN_SHARE,
            min_wait_per_sec_ns: DEFAULT_MIN_WAIT_PER_SEC_NS,
            include_event_waits: false,
        }
    }
}

/// The rules given on the command line, each overriding the budget's (then the
/// default).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GateOverrides {
    pub max_regression: Option<f64>,
    pub min_share: Option<f64>,
    pub min_wait_per_sec_ns: Option<u64>,
    /// `--include-event-waits` can only switch them on.
    pub include_event_waits: bool,
}

/// Improved, regressed or unchanged (within the threshold or below the floor); or not
/// judged at all (an event wait, when event waits are not judged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Improved,
    Regressed,
    Unchanged,
    NotJudged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Improved => "improved",
            Self::Regressed => "regressed",
            Self::Unchanged => "unchanged",
            Self::NotJudged => "not judged",
        }
    }
}

/// The rules applied to one pair of reports: what is measured (per second or, when a
/// report has no duration, in total) and the per-site floor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate {
    pub rules: GateRules,
    /// Both reports have a recording duration: values are ns per second.
    pub per_second: bool,
    base_duration_ns: u64,
    new_duration_ns: u64,
    /// The judged total of each run (lock contention, or all waits with event waits).
    pub total_before: u64,
    pub total_after: u64,
    /// The smallest per-site change that counts, in the unit of the values.
    pub floor: u64,
}

impl Gate {
    pub fn new(base: &Report, new: &Report, rules: GateRules) -> Self {
        let per_second = base.duration_ns > 0 && new.duration_ns > 0;
        let judged_total = |r: &Report| {
            if rules.include_event_waits {
                r.totals.wait_ns
            } else {
                r.totals.contention_wait_ns
            }
        };
        let mut gate = Self {
            rules,
            per_second,
            base_duration_ns: base.duration_ns,
            new_duration_ns: new.duration_ns,
            total_before: 0,
            total_after: 0,
            floor: 0,
        };
        gate.total_before = gate.before(judged_total(base));
        gate.total_after = gate.after(judged_total(new));
        let share = gate.total_before.max(gate.total_after) as f64 * rules.min_share;
        gate.floor = (share.round() as u64).max(rules.min_wait_per_sec_ns);
        gate
    }

    /// A base-report value (ns) in the gate's unit.
    pub fn before(&self, ns: u64) -> u64 {
        self.scaled(ns, self.base_duration_ns)
    }

    /// A new-report value (ns) in the gate's unit.
    pub fn after(&self, ns: u64) -> u64 {
        self.scaled(ns, self.new_duration_ns)
    }

    fn scaled(&self, ns: u64, duration_ns: u64) -> u64 {
        if self.per_second {
            per_sec(ns, duration_ns).unwrap_or(0)
        } else {
            ns
        }
    }

    /// Does this kind of site count?
    pub fn judges(&self, kind: WaitKind) -> bool {
        self.rules.include_event_waits || kind.is_contention()
    }

    /// A site's change (a new site has `before` 0, a vanished one `after` 0): beyond
    /// the threshold and by at least the floor.
    pub fn classify_site(&self, kind: WaitKind, before: u64, after: u64) -> Status {
        if !self.judges(kind) {
            return Status::NotJudged;
        }
        classify(before, after, self.rules.max_regression, self.floor)
    }

    /// The run's judged total: beyond the threshold and by at least the absolute floor
    /// (a share of itself would only restate the threshold).
    pub fn classify_total(&self) -> Status {
        classify(
            self.total_before,
            self.total_after,
            self.rules.max_regression,
            self.rules.min_wait_per_sec_ns,
        )
    }

    /// What the totals are, in words: `lock contention` or `all waits`.
    pub fn total_name(&self) -> &'static str {
        if self.rules.include_event_waits {
            "all waits"
        } else {
            "lock contention"
        }
    }
}

/// `before → after` grew by more than `threshold` (after > before × (1 + threshold)),
/// or shrank by the same factor (after < before ÷ (1 + threshold)), and changed by at
/// least `floor`. The factor is symmetric so that a threshold above 100% still lets a
/// fix count as an improvement.
pub fn classify(before: u64, after: u64, threshold: f64, floor: u64) -> Status {
    let (b, a) = (before as f64, after as f64);
    let factor = 1.0 + threshold;
    if after > before && after - before >= floor.max(1) && a > b * factor {
        Status::Regressed
    } else if before > after && before - after >= floor.max(1) && a * factor < b {
        Status::Improved
    } else {
        Status::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Totals;

    fn run(duration_s: u64, contention_ns: u64, all_ns: u64) -> Report {
        Report {
            duration_ns: duration_s * 1_000_000_000,
            totals: Totals {
                contention_wait_ns: contention_ns,
                wait_ns: all_ns,
                ..Totals::default()
            },
            ..Report::default()
        }
    }

    #[test]
    fn the_floor_scales_with_the_larger_run() {
        // 48 s/s of contention before: 20% of it is 9.6 s/s.
        let gate = Gate::new(
            &run(1, 48_000_000_000, 48_000_000_000),
            &run(1, 250_000_000, 900_000_000),
            GateRules::default(),
        );
        assert!(gate.per_second);
        assert_eq!(gate.floor, 9_600_000_000);
        assert_eq!(gate.classify_total(), Status::Improved);
        // A new glibc lock at 197 ms/s is below that floor.
        assert_eq!(
            gate.classify_site(WaitKind::Mutex, 0, 197_000_000),
            Status::Unchanged
        );
        // Condvars are not judged unless asked.
        assert_eq!(
            gate.classify_site(WaitKind::Condvar, 0, 30_000_000_000),
            Status::NotJudged
        );
        // In a quiet run, the absolute floor rules.
        let quiet = Gate::new(
            &run(2, 1_000_000, 0),
            &run(2, 1_000_000, 0),
            GateRules::default(),
        );
        assert_eq!(quiet.floor, DEFAULT_MIN_WAIT_PER_SEC_NS);
        assert_eq!(
            quiet.classify_site(WaitKind::Mutex, 0, 1_900_000),
            Status::Unchanged
        );
        assert_eq!(
            quiet.classify_site(WaitKind::Mutex, 0, 2_000_000),
            Status::Regressed
        );
    }

    #[test]
    fn event_waits_count_when_asked() {
        let rules = GateRules {
            include_event_waits: true,
            max_regression: 0.2,
            ..GateRules::default()
        };
        let gate = Gate::new(&run(1, 0, 100_000_000), &run(1, 0, 300_000_000), rules);
        assert_eq!(gate.total_before, 100_000_000);
        assert_eq!(gate.classify_total(), Status::Regressed);
        assert_eq!(gate.floor, 60_000_000);
        assert_eq!(
            gate.classify_site(WaitKind::Condvar, 50_000_000, 200_000_000),
            Status::Regressed
        );
        assert_eq!(gate.total_name(), "all waits");
    }

    #[test]
    fn without_a_duration_totals_are_compared() {
        let mut base = run(1, 10_000_000, 10_000_000);
        base.duration_ns = 0;
        let gate = Gate::new(&base, &run(4, 10_000_000, 10_000_000), GateRules::default());
        assert!(!gate.per_second);
        assert_eq!(
            (gate.total_before, gate.total_after),
            (10_000_000, 10_000_000)
        );
        assert_eq!(gate.classify_total(), Status::Unchanged);
    }

    #[test]
    fn small_or_slight_changes_are_noise() {
        // +150% but only 3 µs/s more.
        assert_eq!(classify(2_000, 5_000, 0.2, 1_000_000), Status::Unchanged);
        assert_eq!(
            classify(10_000_000, 13_000_000, 0.2, 1_000_000),
            Status::Regressed
        );
        assert_eq!(
            classify(10_000_000, 11_500_000, 0.2, 1_000_000),
            Status::Unchanged
        );
        assert_eq!(
            classify(10_000_000, 2_000_000, 0.2, 1_000_000),
            Status::Improved
        );
        assert_eq!(classify(0, 2_000_000, 0.2, 1_000_000), Status::Regressed);
        assert_eq!(classify(0, 0, 0.2, 0), Status::Unchanged);
        assert_eq!(classify(0, 1, 0.0, 0), Status::Regressed);
        // A threshold above 100%: ×3 either way.
        assert_eq!(
            classify(10_000_000, 31_000_000, 2.0, 1_000_000),
            Status::Regressed
        );
        assert_eq!(
            classify(10_000_000, 29_000_000, 2.0, 1_000_000),
            Status::Unchanged
        );
        assert_eq!(
            classify(31_000_000, 10_000_000, 2.0, 1_000_000),
            Status::Improved
        );
        assert_eq!(
            classify(29_000_000, 10_000_000, 2.0, 1_000_000),
            Status::Unchanged
        );
    }
}

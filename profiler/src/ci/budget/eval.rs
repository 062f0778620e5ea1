//! A report held to a budget and, with a baseline, checked for regressions: the list
//! of breaches and notes.
//!
//! Must not: read files, pick an exit code, or judge a regression by its own rules
//! (regressions are the statuses of the shared `gate`, through `diff`).

use serde::Serialize;

use crate::ci::budget::file::Budget;
use crate::ci::budget::{Pattern, fmt_percent};
use crate::ci::diff::{self, GateRules, SiteRef, Status, fmt_change, per_sec};
use crate::render::text::{fmt_duration_ns, fmt_pct};
use crate::report::model::{Report, Site};

/// A baseline report to check regressions against, with the gate rules in force.
#[derive(Clone, Copy, Debug)]
pub struct Baseline<'a> {
    pub report: &'a Report,
    pub name: &'a str,
    pub rules: GateRules,
}

/// One limit exceeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Breach {
    /// `total`, or the site (`mutex Store::writer at src/store.rs:42`).
    pub subject: String,
    /// The site's id (absent for totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    /// Which rule: `total.max_contention_per_sec`, `site[1] 'Store::writer' max_p99`, …
    pub rule: String,
    /// What was measured, against what limit, in words.
    pub message: String,
}

/// The result of checking a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub report: String,
    /// The budget file (absent when only a baseline was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    pub rules: usize,
    pub sites: usize,
    pub breaches: Vec<Breach>,
    /// Things worth knowing that are not breaches (a pattern that matched no site).
    pub notes: Vec<String>,
}

impl Evaluation {
    pub fn passed(&self) -> bool {
        self.breaches.is_empty()
    }
}

fn per_sec_text(ns: u64) -> String {
    format!("{}/s", fmt_duration_ns(ns))
}

fn quoted(p: &Pattern) -> String {
    format!("'{}'", p.0)
}

/// Checks `report` against `budget` (and `baseline`, if any). The names are shown in
/// the result.
pub fn evaluate(
    budget: &Budget,
    report: &Report,
    report_name: &str,
    budget_name: Option<&str>,
    baseline: Option<Baseline<'_>>,
) -> Evaluation {
    let mut breaches = Vec::new();
    let mut notes = Vec::new();
    let duration = report.duration_ns;
    let no_duration = |notes: &mut Vec<String>, rule: &str| {
        notes.push(format!(
            "{rule} not checked: the report has no recording duration"
        ));
    };

    let totals = [
        (
            "max_wait_per_sec",
            budget.total.max_wait_per_sec,
            report.totals.wait_ns,
            "wait",
        ),
        (
            "max_contention_per_sec",
            budget.total.max_contention_per_sec,
            report.totals.contention_wait_ns,
            "lock contention",
        ),
    ];
    for (key, limit, value, what) in totals {
        let Some(limit) = limit else { continue };
        let rule = format!("total.{key}");
        match per_sec(value, duration) {
            None => no_duration(&mut notes, &rule),
            Some(v) if v > limit.0 => breaches.push(Breach {
                subject: "total".to_owned(),
                site_id: None,
                rule,
                message: format!(
                    "{what} per second {} exceeds {}",
                    per_sec_text(v),
                    per_sec_text(limit.0)
                ),
            }),
            Some(_) => {}
        }
    }

    for (i, rule) in budget.sites.iter().enumerate() {
        let label = format!("site[{}] {}", i + 1, quoted(&rule.pattern));
        let matching: Vec<&Site> = report
            .sites
            .iter()
            .filter(|s| rule.kind.is_none_or(|k| k == s.kind) && rule.pattern.matches(s))
            .collect();
        if matching.is_empty() {
            notes.push(format!("{label} matched no site"));
        }
        for site in matching {
            let mut push = |key: &str, message: String| {
                breaches.push(Breach {
                    subject: SiteRef::from(site).label(),
                    site_id: Some(site.id.clone()),
                    rule: format!("{label} {key}"),
                    message,
                });
            };
            let ceilings = [
                ("max_p99", rule.max_p99, site.p99_wait_ns, "p99 wait"),
                ("max_wait", rule.max_wait, site.max_wait_ns, "longest wait"),
                (
                    "max_total_wait",
                    rule.max_total_wait,
                    site.total_wait_ns,
                    "total wait",
                ),
            ];
            for (key, limit, value, what) in ceilings {
                if let Some(limit) = limit
                    && value > limit.0
                {
                    push(
                        key,
                        format!(
                            "{what} {} exceeds {}",
                            fmt_duration_ns(value),
                            fmt_duration_ns(limit.0)
                        ),
                    );
                }
            }
            if let Some(limit) = rule.max_wait_per_sec {
                match per_sec(site.total_wait_ns, duration) {
                    Some(v) if v > limit.0 => push(
                        "max_wait_per_sec",
                        format!(
                            "wait per second {} exceeds {}",
                            per_sec_text(v),
                            per_sec_text(limit.0)
                        ),
                    ),
                    Some(_) => {}
                    None => no_duration(&mut notes, &format!("{label} max_wait_per_sec")),
                }
            }
            if let Some(limit) = rule.max_share {
                let whole = report.totals.wait_ns;
                if whole > 0 && site.total_wait_ns as f64 > limit.0 * whole as f64 {
                    push(
                        "max_share",
                        format!(
                            "share of all wait {} exceeds {}",
                            fmt_pct(site.total_wait_ns, whole),
                            fmt_percent(limit.0)
                        ),
                    );
                }
            }
        }
    }

    for (i, rule) in budget.forbid.iter().enumerate() {
        let label = format!("forbid[{}] {}", i + 1, quoted(&rule.pattern));
        for site in report.sites.iter().filter(|s| {
            rule.kind.is_none_or(|k| k == s.kind)
                && rule.pattern.matches(s)
                && s.total_wait_ns > rule.above.0
        }) {
            let message = if rule.above.0 == 0 {
                format!(
                    "waits {} in total where no wait is allowed",
                    fmt_duration_ns(site.total_wait_ns)
                )
            } else {
                format!(
                    "total wait {} is above the allowed {}",
                    fmt_duration_ns(site.total_wait_ns),
                    fmt_duration_ns(rule.above.0)
                )
            };
            breaches.push(Breach {
                subject: SiteRef::from(site).label(),
                site_id: Some(site.id.clone()),
                rule: format!("{label} above"),
                message,
            });
        }
    }

    if let Some(base) = baseline {
        regressions(report, &base, &mut breaches, &mut notes);
    }

    Evaluation {
        report: report_name.to_owned(),
        budget: budget_name.map(str::to_owned),
        baseline: baseline.map(|b| b.name.to_owned()),
        rules: budget.rule_count(baseline.is_some()),
        sites: report.sites.len(),
        breaches,
        notes,
    }
}

/// The regressions versus the baseline: exactly what `lockprof diff` calls regressed
/// on the same pair with the same rules (the judged total, matched sites, new sites
/// at or above the floor), one breach each.
fn regressions(
    report: &Report,
    base: &Baseline<'_>,
    breaches: &mut Vec<Breach>,
    notes: &mut Vec<String>,
) {
    let d = diff::diff(base.report, base.name, report, "", base.rules);
    let rule = "baseline max_regression".to_owned();
    let limit = fmt_change(1.0 + base.rules.max_regression);
    let unit = if d.gate.per_second { "/s" } else { "" };
    let amount = |ns: u64| format!("{}{unit}", fmt_duration_ns(ns));
    let floor = amount(d.gate.floor_ns);
    if !d.gate.per_second {
        notes.push(format!(
            "{rule} judged on total wait: a report has no recording duration"
        ));
    }
    let growth = |before: u64, after: u64| {
        let change = diff::ratio(before, after)
            .map_or_else(String::new, |r| format!(" ({})", fmt_change(r)));
        format!("{} → {}{change}", amount(before), amount(after))
    };
    if d.verdict.total_status == Status::Regressed {
        let per = if d.gate.per_second { " per second" } else { "" };
        let (before, after) = totals(&d);
        breaches.push(Breach {
            subject: "total".to_owned(),
            site_id: None,
            rule: rule.clone(),
            message: format!(
                "{}{per} grew {}, more than {limit}",
                if base.rules.include_event_waits {
                    "all waits"
                } else {
                    "lock contention"
                },
                growth(before, after)
            ),
        });
    }
    let value = |s: &diff::SiteStats| {
        if d.gate.per_second {
            s.wait_per_sec_ns.unwrap_or(0)
        } else {
            s.total_wait_ns
        }
    };
    for c in d.sites.iter().filter(|c| c.status == Status::Regressed) {
        breaches.push(Breach {
            subject: c.site.label(),
            site_id: Some(c.site.id.clone()),
            rule: rule.clone(),
            message: format!(
                "wait{} grew {}, more than {limit} and by at least the floor {floor}",
                if d.gate.per_second { " per second" } else { "" },
                growth(value(&c.before), value(&c.after))
            ),
        });
    }
    for e in d.new_sites.iter().filter(|e| e.status == Status::Regressed) {
        breaches.push(Breach {
            subject: e.site.label(),
            site_id: Some(e.site.id.clone()),
            rule: rule.clone(),
            message: format!(
                "new site (not in the baseline) waits {}, at or above the floor {floor}",
                amount(value(&e.stats))
            ),
        });
    }
    let unjudged = d
        .sites
        .iter()
        .map(|c| c.status)
        .chain(d.new_sites.iter().map(|e| e.status))
        .filter(|&s| s == Status::NotJudged)
        .count();
    if unjudged > 0 {
        notes.push(format!(
            "{unjudged} event-wait {} (condvar, other) not judged against the baseline; \
             --include-event-waits judges them",
            if unjudged == 1 { "site" } else { "sites" }
        ));
    }
}

/// The judged totals of a diff, in its unit.
fn totals(d: &diff::Diff) -> (u64, u64) {
    let pick = |r: &diff::RunSummary| {
        let ns = if d.gate.rules.include_event_waits {
            r.wait_ns
        } else {
            r.contention_wait_ns
        };
        if d.gate.per_second {
            per_sec(ns, r.duration_ns).unwrap_or(0)
        } else {
            ns
        }
    };
    (pick(&d.base), pick(&d.new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::budget::parse;

    #[test]
    fn an_empty_report_passes_with_notes() {
        let b = parse("[[site]]\nmatch = \"x\"\nmax_p99 = \"1ms\"\n", "b.toml").expect("parses");
        let eval = evaluate(&b, &Report::default(), "r.json", Some("b.toml"), None);
        assert!(eval.passed());
        assert_eq!(eval.notes, ["site[1] 'x' matched no site"]);
    }

    use crate::ci::gate::GateOverrides;
    use crate::report::model::{Totals, WaitKind};

    fn site(kind: WaitKind, function: &str, line: u32, total_wait_ns: u64) -> Site {
        Site {
            id: format!("{}|app|{function}|src/app.rs:{line}", kind.as_str()),
            kind,
            module: Some("app".to_owned()),
            function: Some(function.to_owned()),
            file: Some("src/app.rs".to_owned()),
            line: Some(line),
            waits: 10,
            total_wait_ns,
            ..Site::default()
        }
    }

    /// A one-second report of these sites, with totals as the report computes them.
    fn one_second(sites: Vec<Site>) -> Report {
        let wait_ns = sites.iter().map(|s| s.total_wait_ns).sum();
        let contention_wait_ns = sites
            .iter()
            .filter(|s| s.kind.is_contention())
            .map(|s| s.total_wait_ns)
            .sum();
        Report {
            duration_ns: 1_000_000_000,
            totals: Totals {
                wait_ns,
                contention_wait_ns,
                ..Totals::default()
            },
            sites,
            ..Report::default()
        }
    }

    fn gate_check(base: &Report, new: &Report, rules: GateRules) -> Evaluation {
        let baseline = Baseline {
            report: base,
            name: "before.json",
            rules,
        };
        evaluate(&Budget::default(), new, "after.json", None, Some(baseline))
    }

    /// The keyed-mutex fix: contention 48 s/s → 250 ms/s, three condvar sites
    /// that wait longer after the fix (workers idle) and three small new lock sites
    /// (a glibc thread-stack lock at 197 ms/s, 2 ms/s, 48 ms/s). Neither `diff` nor
    /// `check --baseline` may call that a regression.
    #[test]
    fn the_fixed_keyed_mutex_passes_the_gate() {
        let base = one_second(vec![
            site(WaitKind::Mutex, "app::Store::writer", 200, 48_000_000_000),
            site(WaitKind::Condvar, "app::Pool::idle", 10, 100_000_000),
            site(WaitKind::Condvar, "app::Pool::join", 20, 50_000_000),
            site(WaitKind::Condvar, "app::Queue::pop", 30, 10_000_000),
        ]);
        let new = one_second(vec![
            site(WaitKind::Mutex, "app::Store::writer", 200, 3_000_000),
            site(WaitKind::Condvar, "app::Pool::idle", 10, 9_000_000_000),
            site(WaitKind::Condvar, "app::Pool::join", 20, 4_000_000_000),
            site(WaitKind::Condvar, "app::Queue::pop", 30, 2_000_000_000),
            site(WaitKind::Mutex, "__nptl_stack_list_add", 1, 197_000_000),
            site(WaitKind::Mutex, "app::Log::write", 40, 2_000_000),
            site(WaitKind::Mutex, "app::Stats::add", 50, 48_000_000),
        ]);
        let rules = GateRules::default();
        let d = diff::diff(&base, "before.json", &new, "after.json", rules);
        assert_eq!(d.verdict.status, Status::Improved, "{}", d.verdict.summary);
        assert_eq!(d.verdict.not_judged, 3);
        let eval = gate_check(&base, &new, rules);
        assert!(eval.passed(), "{eval:?}");
        assert!(
            eval.notes.iter().any(|n| n.contains("3 event-wait sites")),
            "{:?}",
            eval.notes
        );

        // Asked to judge event waits (with a 5% share floor), both see the condvars grow.
        let with_events = Budget::default().gate_rules(GateOverrides {
            include_event_waits: true,
            min_share: Some(0.05),
            ..GateOverrides::default()
        });
        let d = diff::diff(&base, "before.json", &new, "after.json", with_events);
        assert_eq!(d.verdict.status, Status::Regressed, "{}", d.verdict.summary);
        let eval = gate_check(&base, &new, with_events);
        // All waits still fell (48.2 s/s → 15.3 s/s), so the floor is 5% of 48.2 s/s:
        // the two condvars that grew by more than 2.41 s/s count, Queue::pop does not.
        let subjects: Vec<&str> = eval.breaches.iter().map(|b| b.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "condvar app::Pool::idle at src/app.rs:10",
                "condvar app::Pool::join at src/app.rs:20"
            ],
            "{eval:?}"
        );
    }

    /// A regression in a run with little contention is caught: the floor is the
    /// absolute one, not a share of a large run.
    #[test]
    fn a_new_convoy_in_a_quiet_run_fails() {
        let base = one_second(vec![site(WaitKind::Mutex, "app::a", 1, 5_000_000)]);
        let new = one_second(vec![
            site(WaitKind::Mutex, "app::a", 1, 5_000_000),
            site(WaitKind::Mutex, "app::b", 9, 40_000_000),
        ]);
        let eval = gate_check(&base, &new, GateRules::default());
        assert!(!eval.passed());
        assert!(
            eval.breaches
                .iter()
                .any(|b| b.message.starts_with("new site")),
            "{eval:?}"
        );
    }

    /// `check --baseline` fails exactly when `diff` says "regressed", on pairs of
    /// synthetic runs with random sizes, kinds, new and vanished sites, and rules.
    #[test]
    fn check_and_diff_agree_on_random_pairs() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let kinds = [
            WaitKind::Mutex,
            WaitKind::RwlockRead,
            WaitKind::Condvar,
            WaitKind::Other,
        ];
        let mut regressed = 0;
        for _ in 0..500 {
            let mut runs = [Vec::new(), Vec::new()];
            for i in 0..next(8) {
                let kind = kinds[usize::try_from(next(4)).expect("small")];
                let function = format!("app::f{i}");
                let size = 10u64.pow(u32::try_from(4 + next(6)).expect("small"));
                for run in &mut runs {
                    // Each site is in both runs, one or neither, with its own size.
                    if next(5) > 0 {
                        run.push(site(
                            kind,
                            &function,
                            u32::try_from(i).expect("small"),
                            size * (1 + next(4)),
                        ));
                    }
                }
            }
            let [base, new] = runs.map(one_second);
            let rules = GateRules {
                max_regression: [0.0, 0.1, 0.2, 1.0][usize::try_from(next(4)).expect("small")],
                include_event_waits: next(2) == 1,
                ..GateRules::default()
            };
            let d = diff::diff(&base, "b", &new, "n", rules);
            let eval = gate_check(&base, &new, rules);
            assert_eq!(
                d.verdict.status == Status::Regressed,
                !eval.passed(),
                "{}\n{eval:?}",
                d.verdict.summary
            );
            regressed += usize::from(!eval.passed());
        }
        // Both outcomes were exercised.
        assert!(
            (50..450).contains(&regressed),
            "{regressed} of 500 regressed"
        );
    }
}

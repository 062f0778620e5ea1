//! What changed between two reports of the same program: `lockprof diff`.
//!
//! Owns: the [`Diff`] model (matched sites with before → after numbers and ratios, new
//! and vanished sites, a verdict) and its renderings — text for a terminal (`text`),
//! markdown for a pull-request comment (`markdown`), JSON for tools. Must not: read
//! files, match sites itself (that is `identity`), judge a change itself (that is
//! `gate`, shared with `check --baseline`), or decide an exit code.

mod markdown;
mod text;

use serde::Serialize;

use crate::ci::gate::Gate;
pub use crate::ci::gate::{GateOverrides, GateRules, Status};
use crate::ci::identity::{MatchKind, match_sites};
use crate::render::text::{fmt_duration_ns, short_function, short_path};
use crate::report::model::{Report, Site, WaitKind};
pub use markdown::to_markdown;
pub use text::to_text;

/// Version of the `--format json` layout (2: statuses of new and vanished sites, the
/// `gate` rules, `not_judged`).
pub const DIFF_VERSION: u32 = 2;

/// Two reports compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub diff_version: u32,
    pub base: RunSummary,
    pub new: RunSummary,
    /// The rules the changes were judged by.
    pub gate: GateSummary,
    /// Sites found in both, by size of the change (largest first).
    pub sites: Vec<SiteChange>,
    /// Sites only in the new report, by wait per second.
    pub new_sites: Vec<SiteEntry>,
    /// Sites only in the base report, by wait per second.
    pub vanished_sites: Vec<SiteEntry>,
    pub verdict: Verdict,
}

/// The rules in force and what they came to for this pair of reports.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GateSummary {
    #[serde(flatten)]
    pub rules: GateRules,
    /// Values are per second of recording (`false`: a report has no duration, so
    /// total waits are compared).
    pub per_second: bool,
    /// The smallest per-site change that counts: the larger of `min_share` of the
    /// run's judged total and `min_wait_per_sec_ns` (ns/s, or ns without a duration).
    pub floor_ns: u64,
}

/// One report's totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The file name as given.
    pub file: String,
    pub duration_ns: u64,
    pub waits: u64,
    pub wait_ns: u64,
    pub contention_waits: u64,
    pub contention_wait_ns: u64,
    /// Lock contention per second of recording, ns/s (`null` without a duration).
    pub contention_wait_per_sec_ns: Option<u64>,
}

/// Which site, as the report names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteRef {
    pub id: String,
    pub kind: WaitKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

impl From<&Site> for SiteRef {
    fn from(site: &Site) -> Self {
        Self {
            id: site.id.clone(),
            kind: site.kind,
            function: site.function.clone(),
            file: site.file.clone(),
            line: site.line,
            module: site.module.clone(),
        }
    }
}

impl SiteRef {
    /// `mutex Store::writer at demo-targets/src/kmutex.rs:199` (or `in libfoo.so`
    /// without a file), control characters replaced: the one way `diff` and `check`
    /// name a site.
    pub fn label(&self) -> String {
        let function = self
            .function
            .as_deref()
            .map_or_else(|| "[unknown function]".to_owned(), short_function);
        let place = match (&self.file, self.line) {
            (Some(file), Some(line)) => format!(" at {}:{line}", short_path(file)),
            (Some(file), None) => format!(" at {}", short_path(file)),
            _ => self
                .module
                .as_deref()
                .map(|m| format!(" in {}", m.rsplit('/').next().unwrap_or(m)))
                .unwrap_or_default(),
        };
        clean(&format!("{} {function}{place}", self.kind.as_str()))
    }
}

/// Control characters from the target's symbols never reach the terminal.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A site's numbers in one report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SiteStats {
    pub waits: u64,
    pub total_wait_ns: u64,
    /// Total wait per second of recording, ns/s (`null` without a duration).
    pub wait_per_sec_ns: Option<u64>,
    pub p99_wait_ns: u64,
    pub max_wait_ns: u64,
}

/// after ÷ before for each number (`null` when before is 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ratios {
    pub waits: Option<f64>,
    pub total_wait: Option<f64>,
    pub wait_per_sec: Option<f64>,
    pub p99_wait: Option<f64>,
    pub max_wait: Option<f64>,
}

/// A site found in both reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteChange {
    /// As named in the new report.
    pub site: SiteRef,
    /// The base report's line, when the site was matched at another line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from_line: Option<u32>,
    pub before: SiteStats,
    pub after: SiteStats,
    pub ratio: Ratios,
    pub status: Status,
}

/// A site found in one report only. Its status is judged against nothing on the
/// other side: a new site at or above the floor is `regressed`, a vanished one
/// `improved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteEntry {
    pub site: SiteRef,
    pub stats: SiteStats,
    pub status: Status,
}

/// The one-line conclusion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// `regressed` when the judged total or any judged site (matched or new)
    /// regressed; else `improved` when the judged total improved; else `unchanged`.
    /// `check --baseline` fails exactly when this is `regressed`.
    pub status: Status,
    /// How the judged total (lock contention, or all waits) changed on its own.
    pub total_status: Status,
    /// after ÷ before of the judged total (`null` when before is 0).
    pub contention_ratio: Option<f64>,
    pub improved: usize,
    pub regressed: usize,
    pub unchanged: usize,
    /// Matched event-wait sites, when event waits are not judged.
    pub not_judged: usize,
    pub new: usize,
    /// New sites at or above the floor (each one fails the gate).
    pub new_regressed: usize,
    pub vanished: usize,
    /// The verdict as one line of text.
    pub summary: String,
}

/// Compares `base` with `new` under `rules`; the names are the file names to show.
pub fn diff(
    base: &Report,
    base_name: &str,
    new: &Report,
    new_name: &str,
    rules: GateRules,
) -> Diff {
    let gate = Gate::new(base, new, rules);
    let matching = match_sites(&base.sites, &new.sites);
    let mut sites: Vec<SiteChange> = matching
        .pairs
        .iter()
        .map(|pair| {
            let (b, n) = (&base.sites[pair.base], &new.sites[pair.new]);
            let before = stats(b, base.duration_ns);
            let after = stats(n, new.duration_ns);
            SiteChange {
                site: SiteRef::from(n),
                moved_from_line: match pair.how {
                    MatchKind::Near { from_line, to_line } if from_line != to_line => {
                        Some(from_line)
                    }
                    _ => None,
                },
                before,
                after,
                ratio: Ratios {
                    waits: ratio(before.waits, after.waits),
                    total_wait: ratio(before.total_wait_ns, after.total_wait_ns),
                    wait_per_sec: before
                        .wait_per_sec_ns
                        .zip(after.wait_per_sec_ns)
                        .and_then(|(b, a)| ratio(b, a)),
                    p99_wait: ratio(before.p99_wait_ns, after.p99_wait_ns),
                    max_wait: ratio(before.max_wait_ns, after.max_wait_ns),
                },
                status: gate.classify_site(
                    n.kind,
                    gate.before(b.total_wait_ns),
                    gate.after(n.total_wait_ns),
                ),
            }
        })
        .collect();
    sites.sort_by(|a, b| {
        let size = |c: &SiteChange| {
            gate.before(c.before.total_wait_ns)
                .abs_diff(gate.after(c.after.total_wait_ns))
        };
        size(b)
            .cmp(&size(a))
            .then_with(|| a.site.id.cmp(&b.site.id))
    });
    let entries = |report: &Report, indices: &[usize], is_new: bool| {
        let mut list: Vec<SiteEntry> = indices
            .iter()
            .map(|&i| {
                let site = &report.sites[i];
                let status = if is_new {
                    gate.classify_site(site.kind, 0, gate.after(site.total_wait_ns))
                } else {
                    gate.classify_site(site.kind, gate.before(site.total_wait_ns), 0)
                };
                SiteEntry {
                    site: SiteRef::from(site),
                    stats: stats(site, report.duration_ns),
                    status,
                }
            })
            .collect();
        list.sort_by(|a, b| {
            b.stats
                .total_wait_ns
                .cmp(&a.stats.total_wait_ns)
                .then_with(|| a.site.id.cmp(&b.site.id))
        });
        list
    };
    let new_sites = entries(new, &matching.only_new, true);
    let vanished_sites = entries(base, &matching.only_base, false);
    let verdict = verdict(&gate, &sites, &new_sites, &vanished_sites);
    Diff {
        diff_version: DIFF_VERSION,
        base: summary(base, base_name),
        new: summary(new, new_name),
        gate: GateSummary {
            rules,
            per_second: gate.per_second,
            floor_ns: gate.floor,
        },
        sites,
        new_sites,
        vanished_sites,
        verdict,
    }
}

/// `value` per second of a recording of `duration_ns`, in ns/s.
pub fn per_sec(value_ns: u64, duration_ns: u64) -> Option<u64> {
    (duration_ns > 0).then(|| {
        let v = u128::from(value_ns) * 1_000_000_000 / u128::from(duration_ns);
        u64::try_from(v).unwrap_or(u64::MAX)
    })
}

fn stats(site: &Site, duration_ns: u64) -> SiteStats {
    SiteStats {
        waits: site.waits,
        total_wait_ns: site.total_wait_ns,
        wait_per_sec_ns: per_sec(site.total_wait_ns, duration_ns),
        p99_wait_ns: site.p99_wait_ns,
        max_wait_ns: site.max_wait_ns,
    }
}

fn summary(report: &Report, name: &str) -> RunSummary {
    let t = &report.totals;
    RunSummary {
        file: name.to_owned(),
        duration_ns: report.duration_ns,
        waits: t.waits,
        wait_ns: t.wait_ns,
        contention_waits: t.contention_waits,
        contention_wait_ns: t.contention_wait_ns,
        contention_wait_per_sec_ns: per_sec(t.contention_wait_ns, report.duration_ns),
    }
}

/// after ÷ before, 4 significant digits; `None` when before is 0.
pub fn ratio(before: u64, after: u64) -> Option<f64> {
    (before > 0).then(|| round_significant(after as f64 / before as f64, 4))
}

fn round_significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

fn verdict(
    gate: &Gate,
    sites: &[SiteChange],
    new_sites: &[SiteEntry],
    vanished: &[SiteEntry],
) -> Verdict {
    let count = |s: Status| sites.iter().filter(|c| c.status == s).count();
    let total_status = gate.classify_total();
    let (improved, regressed, unchanged, not_judged) = (
        count(Status::Improved),
        count(Status::Regressed),
        count(Status::Unchanged),
        count(Status::NotJudged),
    );
    let new_regressed = new_sites
        .iter()
        .filter(|e| e.status == Status::Regressed)
        .count();
    let status = if total_status == Status::Regressed || regressed > 0 || new_regressed > 0 {
        Status::Regressed
    } else if total_status == Status::Improved {
        Status::Improved
    } else {
        Status::Unchanged
    };
    let unit = if gate.per_second { "/s" } else { "" };
    let contention_ratio = ratio(gate.total_before, gate.total_after);
    let change = match contention_ratio {
        Some(r) => format!(" ({}, {})", fmt_ratio(r), fmt_change(r)),
        None => String::new(),
    };
    let not_judged_text = if not_judged > 0 {
        format!(", {not_judged} not judged")
    } else {
        String::new()
    };
    let summary = format!(
        "{}: {} {}{unit} → {}{unit}{change}; sites: {improved} improved, \
         {regressed} regressed, {unchanged} unchanged{not_judged_text}, {} new \
         ({new_regressed} over the floor), {} vanished; floor {}{unit} per site",
        status.as_str(),
        gate.total_name(),
        fmt_duration_ns(gate.total_before),
        fmt_duration_ns(gate.total_after),
        new_sites.len(),
        vanished.len(),
        fmt_duration_ns(gate.floor),
    );
    Verdict {
        status,
        total_status,
        contention_ratio,
        improved,
        regressed,
        unchanged,
        not_judged,
        new: new_sites.len(),
        new_regressed,
        vanished: vanished.len(),
        summary,
    }
}

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// `×0.00216`, `×1.05`, `×12.3`, `×140`: three significant digits.
pub fn fmt_ratio(r: f64) -> String {
    if r == 0.0 {
        return "×0".to_owned();
    }
    if r >= 100.0 {
        return format!("×{r:.0}");
    }
    let decimals = (2 - r.log10().floor() as i32).max(0) as usize;
    format!("×{r:.decimals$}")
}

/// `+12%`, `-99.8%`, `+0.5%`, `0%`.
pub fn fmt_change(r: f64) -> String {
    let pct = (r - 1.0) * 100.0;
    let text = if pct.abs() >= 9.95 {
        format!("{pct:+.0}%")
    } else {
        format!("{pct:+.1}%")
    };
    if text == "+0.0%" || text == "-0.0%" {
        "0%".to_owned()
    } else {
        text
    }
}

/// How many sites each list shows in text and markdown (JSON has them all).
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    pub max_sites: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self { max_sites: 10 }
    }
}

/// The diff as pretty JSON with a trailing newline.
pub fn to_json(diff: &Diff) -> String {
    // Plain structs, strings, integers and finite floats: serializing cannot fail.
    let mut text = serde_json::to_string_pretty(diff).expect("a Diff always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_changes_read_well() {
        assert_eq!(fmt_ratio(0.002_164), "×0.00216");
        assert_eq!(fmt_ratio(1.05), "×1.05");
        assert_eq!(fmt_ratio(12.34), "×12.3");
        assert_eq!(fmt_ratio(140.2), "×140");
        assert_eq!(fmt_ratio(0.0), "×0");
        assert_eq!(fmt_change(0.002), "-100%");
        assert_eq!(fmt_change(0.95), "-5.0%");
        assert_eq!(fmt_change(1.2), "+20%");
        assert_eq!(fmt_change(1.0), "0%");
    }

    #[test]
    fn per_second_needs_a_duration() {
        assert_eq!(per_sec(500_000_000, 2_000_000_000), Some(250_000_000));
        assert_eq!(per_sec(5, 0), None);
        assert_eq!(per_sec(u64::MAX, 1), Some(u64::MAX));
    }

    #[test]
    fn identical_reports_are_unchanged() {
        let report = crate::test_support::sample_report();
        let d = diff(&report, "a", &report, "a", GateRules::default());
        assert_eq!(d.sites.len(), report.sites.len());
        assert!(d.new_sites.is_empty() && d.vanished_sites.is_empty());
        assert_eq!(d.verdict.status, Status::Unchanged);
        // Lock sites unchanged; event waits (condvars) not judged by default.
        for c in &d.sites {
            let want = if c.site.kind.is_contention() {
                Status::Unchanged
            } else {
                Status::NotJudged
            };
            assert_eq!(c.status, want, "{}", c.site.id);
        }
        assert!(d.sites.iter().any(|c| c.status == Status::NotJudged));
    }

    #[test]
    fn empty_reports_diff_cleanly() {
        let empty = Report::default();
        let d = diff(&empty, "a", &empty, "b", GateRules::default());
        let text = to_text(&d, RenderOptions::default());
        assert!(text.contains("judged           lock contention"), "{text}");
        assert!(text.contains("sites in both reports: none"), "{text}");
        assert!(
            text.ends_with("0 new (0 over the floor), 0 vanished; floor 2.00ms per site\n"),
            "{text}"
        );
        assert!(to_markdown(&d, RenderOptions::default()).contains("unchanged"));
    }
}

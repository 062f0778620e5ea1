//! What changed between two reports of the same program: `lockprof diff`.
//!
//! Owns: the [`Diff`] model (matched sites with before → after numbers and ratios, new
//! and vanished sites, a verdict) and its three renderings — text for a terminal,
//! markdown for a pull-request comment, JSON for tools. Must not: read files, match
//! sites itself (that is `compare::identity`), or decide an exit code.
//!
//! Runs rarely last exactly as long, so changes are judged on wait **per second of
//! recording** (total wait ÷ recording duration; falls back to total wait when a report
//! has no duration). A change counts when it is larger than the threshold (default
//! 10%) *and* than [`NOISE_NS_PER_SEC`], so a site going from 2 µs/s to 5 µs/s is
//! "unchanged", not "+150%". The verdict follows the report-wide lock contention
//! (mutex, rwlock and semaphore waits; condvar and other event waits are not
//! contention).

use std::fmt::Write as _;

use serde::Serialize;

use crate::ci::identity::{MatchKind, match_sites};
use crate::render::text::{fmt_count, fmt_duration_ns, short_function, short_path};
use crate::report::model::{Report, Site, WaitKind};

/// Version of the `--format json` layout.
pub const DIFF_VERSION: u32 = 1;

/// Changes smaller than this (in wait per second of recording, or in total wait when a
/// report has no duration) are noise, whatever their ratio.
pub const NOISE_NS_PER_SEC: u64 = 1_000_000;

/// How `diff` judges a change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiffOptions {
    /// Relative change that counts as improved/regressed (0.10 = 10%).
    pub threshold: f64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self { threshold: 0.10 }
    }
}

/// Two reports compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub diff_version: u32,
    pub base: RunSummary,
    pub new: RunSummary,
    /// Sites found in both, by size of the change (largest first).
    pub sites: Vec<SiteChange>,
    /// Sites only in the new report, by wait per second.
    pub new_sites: Vec<SiteEntry>,
    /// Sites only in the base report, by wait per second.
    pub vanished_sites: Vec<SiteEntry>,
    pub verdict: Verdict,
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

/// Improved, regressed or unchanged (within threshold or noise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Improved,
    Regressed,
    Unchanged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Improved => "improved",
            Self::Regressed => "regressed",
            Self::Unchanged => "unchanged",
        }
    }
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

/// A site found in one report only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteEntry {
    pub site: SiteRef,
    pub stats: SiteStats,
}

/// The one-line conclusion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// How lock contention per second changed, report-wide.
    pub status: Status,
    /// after ÷ before of lock contention per second (`null` when before is 0).
    pub contention_ratio: Option<f64>,
    pub improved: usize,
    pub regressed: usize,
    pub unchanged: usize,
    pub new: usize,
    pub vanished: usize,
    /// The verdict as one line of text.
    pub summary: String,
}

/// Compares `base` with `new`; the names are the file names to show.
pub fn diff(
    base: &Report,
    base_name: &str,
    new: &Report,
    new_name: &str,
    opts: DiffOptions,
) -> Diff {
    let matching = match_sites(&base.sites, &new.sites);
    let mut sites: Vec<SiteChange> = matching
        .pairs
        .iter()
        .map(|pair| {
            let (b, n) = (&base.sites[pair.base], &new.sites[pair.new]);
            let before = stats(b, base.duration_ns);
            let after = stats(n, new.duration_ns);
            SiteChange {
                site: site_ref(n),
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
                status: classify(compared(&before, &after), opts.threshold),
            }
        })
        .collect();
    sites.sort_by(|a, b| {
        let size = |c: &SiteChange| {
            let (x, y) = compared(&c.before, &c.after);
            x.abs_diff(y)
        };
        size(b)
            .cmp(&size(a))
            .then_with(|| a.site.id.cmp(&b.site.id))
    });
    let entries = |report: &Report, indices: &[usize]| {
        let mut list: Vec<SiteEntry> = indices
            .iter()
            .map(|&i| SiteEntry {
                site: site_ref(&report.sites[i]),
                stats: stats(&report.sites[i], report.duration_ns),
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
    let new_sites = entries(new, &matching.only_new);
    let vanished_sites = entries(base, &matching.only_base);
    let base_sum = summary(base, base_name);
    let new_sum = summary(new, new_name);
    let verdict = verdict(
        &base_sum,
        &new_sum,
        &sites,
        &new_sites,
        &vanished_sites,
        opts,
    );
    Diff {
        diff_version: DIFF_VERSION,
        base: base_sum,
        new: new_sum,
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

fn site_ref(site: &Site) -> SiteRef {
    SiteRef {
        id: site.id.clone(),
        kind: site.kind,
        function: site.function.clone(),
        file: site.file.clone(),
        line: site.line,
        module: site.module.clone(),
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

/// The pair of values a change is judged on: wait per second when both reports have a
/// duration, total wait otherwise.
fn compared(before: &SiteStats, after: &SiteStats) -> (u64, u64) {
    match (before.wait_per_sec_ns, after.wait_per_sec_ns) {
        (Some(b), Some(a)) => (b, a),
        _ => (before.total_wait_ns, after.total_wait_ns),
    }
}

fn totals_compared(base: &RunSummary, new: &RunSummary) -> (u64, u64) {
    match (
        base.contention_wait_per_sec_ns,
        new.contention_wait_per_sec_ns,
    ) {
        (Some(b), Some(a)) => (b, a),
        _ => (base.contention_wait_ns, new.contention_wait_ns),
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

/// Judges `before → after` against the threshold and [`NOISE_NS_PER_SEC`].
pub fn classify((before, after): (u64, u64), threshold: f64) -> Status {
    let (b, a) = (before as f64, after as f64);
    if after > before && after - before >= NOISE_NS_PER_SEC && a > b * (1.0 + threshold) {
        Status::Regressed
    } else if before > after && before - after >= NOISE_NS_PER_SEC && a < b * (1.0 - threshold) {
        Status::Improved
    } else {
        Status::Unchanged
    }
}

fn verdict(
    base: &RunSummary,
    new: &RunSummary,
    sites: &[SiteChange],
    new_sites: &[SiteEntry],
    vanished: &[SiteEntry],
    opts: DiffOptions,
) -> Verdict {
    let count = |s: Status| sites.iter().filter(|c| c.status == s).count();
    let (before, after) = totals_compared(base, new);
    let status = classify((before, after), opts.threshold);
    let per_second =
        base.contention_wait_per_sec_ns.is_some() && new.contention_wait_per_sec_ns.is_some();
    let unit = if per_second { "/s" } else { "" };
    let contention_ratio = ratio(before, after);
    let change = match contention_ratio {
        Some(r) => format!(" ({}, {})", fmt_ratio(r), fmt_change(r)),
        None => String::new(),
    };
    let (improved, regressed, unchanged) = (
        count(Status::Improved),
        count(Status::Regressed),
        count(Status::Unchanged),
    );
    let summary = format!(
        "{}: lock contention {}{unit} → {}{unit}{change}; sites: {improved} improved, \
         {regressed} regressed, {unchanged} unchanged, {} new, {} vanished",
        status.as_str(),
        fmt_duration_ns(before),
        fmt_duration_ns(after),
        new_sites.len(),
        vanished.len(),
    );
    Verdict {
        status,
        contention_ratio,
        improved,
        regressed,
        unchanged,
        new: new_sites.len(),
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

fn per_sec_text(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |v| format!("{}/s", fmt_duration_ns(v)))
}

fn arrow(before: &str, after: &str) -> String {
    format!("{before} → {after}")
}

/// `mutex Store::writer at demo-targets/src/kmutex.rs:199`.
fn site_label(site: &SiteRef) -> String {
    let function = site
        .function
        .as_deref()
        .map_or_else(|| "[unknown function]".to_owned(), short_function);
    let place = match (&site.file, site.line) {
        (Some(file), Some(line)) => format!(" at {}:{line}", short_path(file)),
        (Some(file), None) => format!(" at {}", short_path(file)),
        _ => site
            .module
            .as_deref()
            .map(|m| format!(" in {}", m.rsplit('/').next().unwrap_or(m)))
            .unwrap_or_default(),
    };
    clean(&format!("{} {function}{place}", site.kind.as_str()))
}

/// Control characters from the target's symbols never reach the terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Columns padded to their widest cell, two spaces apart, trailing spaces trimmed.
fn aligned(rows: &[Vec<String>], indent: &str) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = indent.to_owned();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
            }
            line.trim_end().to_owned()
        })
        .collect()
}

fn change_cell(c: &SiteChange) -> String {
    match c.ratio.wait_per_sec.or(c.ratio.total_wait) {
        Some(r) => fmt_ratio(r),
        None => "-".to_owned(),
    }
}

fn moved(c: &SiteChange) -> String {
    c.moved_from_line
        .map(|l| format!(" (moved from line {l})"))
        .unwrap_or_default()
}

/// The diff for a terminal, ending with the verdict line.
pub fn to_text(diff: &Diff, opts: RenderOptions) -> String {
    let mut out = Vec::new();
    let (b, n) = (&diff.base, &diff.new);
    out.push(format!(
        "lockprof diff: {} → {}",
        clean(&b.file),
        clean(&n.file)
    ));
    out.push(format!(
        "  recording        {}",
        arrow(
            &fmt_duration_ns(b.duration_ns),
            &fmt_duration_ns(n.duration_ns)
        )
    ));
    let ratio_text = diff
        .verdict
        .contention_ratio
        .map(|r| format!(" ({}, {})", fmt_ratio(r), fmt_change(r)))
        .unwrap_or_default();
    out.push(format!(
        "  lock contention  {} per second{ratio_text}; {} total",
        arrow(
            &per_sec_text(b.contention_wait_per_sec_ns),
            &per_sec_text(n.contention_wait_per_sec_ns)
        ),
        arrow(
            &fmt_duration_ns(b.contention_wait_ns),
            &fmt_duration_ns(n.contention_wait_ns)
        ),
    ));
    out.push(format!(
        "  all waits        {} total, {} waits",
        arrow(&fmt_duration_ns(b.wait_ns), &fmt_duration_ns(n.wait_ns)),
        arrow(&fmt_count(b.waits), &fmt_count(n.waits)),
    ));

    out.push(String::new());
    if diff.sites.is_empty() {
        out.push("sites in both reports: none".to_owned());
    } else {
        out.push(format!(
            "sites in both reports: {}, largest change first",
            diff.sites.len()
        ));
        let mut rows = vec![
            [
                "#",
                "STATUS",
                "WAIT/S",
                "CHANGE",
                "TOTAL WAIT",
                "WAITS",
                "P99",
                "MAX",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        let mut labels = Vec::new();
        for (i, c) in diff.sites.iter().take(opts.max_sites).enumerate() {
            let (x, y) = (&c.before, &c.after);
            rows.push(vec![
                (i + 1).to_string(),
                c.status.as_str().to_owned(),
                arrow(
                    &per_sec_text(x.wait_per_sec_ns),
                    &per_sec_text(y.wait_per_sec_ns),
                ),
                change_cell(c),
                arrow(
                    &fmt_duration_ns(x.total_wait_ns),
                    &fmt_duration_ns(y.total_wait_ns),
                ),
                arrow(&fmt_count(x.waits), &fmt_count(y.waits)),
                arrow(
                    &fmt_duration_ns(x.p99_wait_ns),
                    &fmt_duration_ns(y.p99_wait_ns),
                ),
                arrow(
                    &fmt_duration_ns(x.max_wait_ns),
                    &fmt_duration_ns(y.max_wait_ns),
                ),
            ]);
            labels.push(format!("{}{}", site_label(&c.site), moved(c)));
        }
        push_with_labels(&mut out, &rows, &labels);
        more_line(&mut out, diff.sites.len(), opts.max_sites);
    }
    for (title, list) in [
        ("new sites (only in the new report)", &diff.new_sites),
        (
            "vanished sites (only in the base report)",
            &diff.vanished_sites,
        ),
    ] {
        out.push(String::new());
        if list.is_empty() {
            out.push(format!("{title}: none"));
            continue;
        }
        out.push(format!("{title}: {}", list.len()));
        let mut rows = vec![
            ["#", "WAIT/S", "TOTAL WAIT", "WAITS", "P99", "MAX"]
                .map(str::to_owned)
                .to_vec(),
        ];
        let mut labels = Vec::new();
        for (i, e) in list.iter().take(opts.max_sites).enumerate() {
            let s = &e.stats;
            rows.push(vec![
                (i + 1).to_string(),
                per_sec_text(s.wait_per_sec_ns),
                fmt_duration_ns(s.total_wait_ns),
                fmt_count(s.waits),
                fmt_duration_ns(s.p99_wait_ns),
                fmt_duration_ns(s.max_wait_ns),
            ]);
            labels.push(site_label(&e.site));
        }
        push_with_labels(&mut out, &rows, &labels);
        more_line(&mut out, list.len(), opts.max_sites);
    }
    out.push(String::new());
    out.push(format!("verdict: {}", diff.verdict.summary));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The table, each data row followed by its site's label, indented under the numbers.
fn push_with_labels(out: &mut Vec<String>, rows: &[Vec<String>], labels: &[String]) {
    let lines = aligned(rows, "  ");
    let label_indent = " ".repeat(2 + rows.iter().map(|r| r[0].len()).max().unwrap_or(1) + 2);
    let mut lines = lines.into_iter();
    out.extend(lines.next());
    for (line, label) in lines.zip(labels) {
        out.push(line);
        out.push(format!("{label_indent}{label}"));
    }
}

fn more_line(out: &mut Vec<String>, total: usize, shown: usize) {
    if total > shown {
        out.push(format!("  … {} more (--top to show them)", total - shown));
    }
}

/// Markdown cell text: `|` escaped, no line breaks, backticks made quotes.
fn md(s: &str) -> String {
    clean(s).replace('|', "\\|").replace('`', "'")
}

fn md_site(site: &SiteRef, moved_from: Option<u32>) -> String {
    let function = site
        .function
        .as_deref()
        .map_or_else(|| "[unknown function]".to_owned(), short_function);
    let mut cell = format!("`{}` {}", md(&function), site.kind.as_str());
    if let Some(file) = &site.file {
        let place = site.line.map_or_else(
            || short_path(file),
            |line| format!("{}:{line}", short_path(file)),
        );
        let _ = write!(cell, "<br>`{}`", md(&place));
    }
    if let Some(line) = moved_from {
        let _ = write!(cell, " (moved from line {line})");
    }
    cell
}

/// The diff as GitHub-flavoured markdown, for a pull-request comment.
pub fn to_markdown(diff: &Diff, opts: RenderOptions) -> String {
    let (b, n) = (&diff.base, &diff.new);
    let mut out = vec![
        format!("### lockprof diff: {}", diff.verdict.status.as_str()),
        String::new(),
    ];
    let ratio_text = diff
        .verdict
        .contention_ratio
        .map(|r| format!(" ({}, {})", fmt_ratio(r), fmt_change(r)))
        .unwrap_or_default();
    out.push(format!(
        "Lock contention per second of recording: **{}**{ratio_text}. Total {} over a recording of {}.",
        arrow(
            &per_sec_text(b.contention_wait_per_sec_ns),
            &per_sec_text(n.contention_wait_per_sec_ns)
        ),
        arrow(
            &fmt_duration_ns(b.contention_wait_ns),
            &fmt_duration_ns(n.contention_wait_ns)
        ),
        arrow(&fmt_duration_ns(b.duration_ns), &fmt_duration_ns(n.duration_ns)),
    ));
    out.push(String::new());
    out.push(format!("Base `{}`, new `{}`.", md(&b.file), md(&n.file)));
    if !diff.sites.is_empty() {
        out.push(String::new());
        out.push("| Site | Status | Wait/s | Change | Total wait | Waits | p99 | Max |".to_owned());
        out.push("|---|---|--:|--:|--:|--:|--:|--:|".to_owned());
        for c in diff.sites.iter().take(opts.max_sites) {
            let (x, y) = (&c.before, &c.after);
            out.push(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                md_site(&c.site, c.moved_from_line),
                c.status.as_str(),
                arrow(
                    &per_sec_text(x.wait_per_sec_ns),
                    &per_sec_text(y.wait_per_sec_ns)
                ),
                change_cell(c),
                arrow(
                    &fmt_duration_ns(x.total_wait_ns),
                    &fmt_duration_ns(y.total_wait_ns)
                ),
                arrow(&fmt_count(x.waits), &fmt_count(y.waits)),
                arrow(
                    &fmt_duration_ns(x.p99_wait_ns),
                    &fmt_duration_ns(y.p99_wait_ns)
                ),
                arrow(
                    &fmt_duration_ns(x.max_wait_ns),
                    &fmt_duration_ns(y.max_wait_ns)
                ),
            ));
        }
        md_more(&mut out, diff.sites.len(), opts.max_sites);
    }
    for (title, list) in [
        ("New sites", &diff.new_sites),
        ("Vanished sites", &diff.vanished_sites),
    ] {
        if list.is_empty() {
            continue;
        }
        out.push(String::new());
        out.push(format!("**{title}** ({})", list.len()));
        out.push(String::new());
        out.push("| Site | Wait/s | Total wait | Waits | p99 | Max |".to_owned());
        out.push("|---|--:|--:|--:|--:|--:|".to_owned());
        for e in list.iter().take(opts.max_sites) {
            let s = &e.stats;
            out.push(format!(
                "| {} | {} | {} | {} | {} | {} |",
                md_site(&e.site, None),
                per_sec_text(s.wait_per_sec_ns),
                fmt_duration_ns(s.total_wait_ns),
                fmt_count(s.waits),
                fmt_duration_ns(s.p99_wait_ns),
                fmt_duration_ns(s.max_wait_ns),
            ));
        }
        md_more(&mut out, list.len(), opts.max_sites);
    }
    out.push(String::new());
    out.push(format!("**Verdict:** {}", md(&diff.verdict.summary)));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn md_more(out: &mut Vec<String>, total: usize, shown: usize) {
    if total > shown {
        out.push(String::new());
        out.push(format!("… and {} more.", total - shown));
    }
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
    fn small_changes_are_noise() {
        // +150% but only 3 µs/s more: unchanged.
        assert_eq!(classify((2_000, 5_000), 0.1), Status::Unchanged);
        assert_eq!(classify((10_000_000, 12_000_000), 0.1), Status::Regressed);
        assert_eq!(classify((10_000_000, 10_500_000), 0.1), Status::Unchanged);
        assert_eq!(classify((10_000_000, 2_000_000), 0.1), Status::Improved);
        assert_eq!(classify((0, 2_000_000), 0.1), Status::Regressed);
        assert_eq!(classify((0, 0), 0.1), Status::Unchanged);
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
        let d = diff(&report, "a", &report, "a", DiffOptions::default());
        assert_eq!(d.sites.len(), report.sites.len());
        assert!(d.new_sites.is_empty() && d.vanished_sites.is_empty());
        assert_eq!(d.verdict.status, Status::Unchanged);
        assert!(d.sites.iter().all(|c| c.status == Status::Unchanged));
    }

    #[test]
    fn empty_reports_diff_cleanly() {
        let empty = Report::default();
        let d = diff(&empty, "a", &empty, "b", DiffOptions::default());
        let text = to_text(&d, RenderOptions::default());
        assert!(text.contains("sites in both reports: none"), "{text}");
        assert!(text.ends_with("0 new, 0 vanished\n"), "{text}");
        assert!(to_markdown(&d, RenderOptions::default()).contains("unchanged"));
    }
}

//! `lockprof diff` for a terminal: totals, the rules in force, the matched sites
//! (largest change first), new and vanished sites, and the verdict line.
//!
//! Must not: judge anything (the statuses come with the [`Diff`]).

use crate::ci::budget::fmt_percent;
use crate::ci::diff::{Diff, RenderOptions, SiteChange, clean, fmt_change, fmt_ratio, ratio};
use crate::render::text::{fmt_count, fmt_duration_ns};

/// `12.0ms/s`, or `-` without a duration.
pub(super) fn per_sec_text(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |v| format!("{}/s", fmt_duration_ns(v)))
}

pub(super) fn arrow(before: &str, after: &str) -> String {
    format!("{before} → {after}")
}

/// `4.21s → 3.10ms`.
pub(super) fn ns_arrow(before: u64, after: u64) -> String {
    arrow(&fmt_duration_ns(before), &fmt_duration_ns(after))
}

/// A site's p99, or `-` when it has waits but no p99: a site re-attributed by
/// `--lock-fn` from a saved report's stacks, whose histogram was recorded for the
/// wrapper's site as a whole.
pub(super) fn p99_text(s: &super::SiteStats) -> String {
    if s.waits > 0 && s.p99_wait_ns == 0 {
        "-".to_owned()
    } else {
        fmt_duration_ns(s.p99_wait_ns)
    }
}

/// `1.20s/s → 969µs/s`.
pub(super) fn rate_arrow(before: Option<u64>, after: Option<u64>) -> String {
    arrow(&per_sec_text(before), &per_sec_text(after))
}

/// `2400 → 40`.
pub(super) fn count_arrow(before: u64, after: u64) -> String {
    arrow(&fmt_count(before), &fmt_count(after))
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

pub(super) fn change_cell(c: &SiteChange) -> String {
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

/// ` (×0.0695, -93%)`: how lock contention changed (per second when both reports have
/// a duration), whatever is judged.
pub(super) fn contention_change(diff: &Diff) -> String {
    let (b, n) = (&diff.base, &diff.new);
    let pair = match (b.contention_wait_per_sec_ns, n.contention_wait_per_sec_ns) {
        (Some(x), Some(y)) => (x, y),
        _ => (b.contention_wait_ns, n.contention_wait_ns),
    };
    ratio(pair.0, pair.1)
        .map(|r| format!(" ({}, {})", fmt_ratio(r), fmt_change(r)))
        .unwrap_or_default()
}

/// The rules in one sentence: what is judged, the threshold and the floor.
pub(super) fn rules_line(diff: &Diff) -> String {
    let g = &diff.gate;
    let unit = if g.per_second { "/s" } else { "" };
    let what = if g.rules.include_event_waits {
        "all waits (event waits included)"
    } else {
        "lock contention (event waits not judged)"
    };
    format!(
        "{what} {}; a site counts when it changes by more than {} and by at least {}{unit} \
         ({} of the run, at least {}{unit})",
        if g.per_second {
            "per second"
        } else {
            "in total (a report has no duration)"
        },
        fmt_percent(g.rules.max_regression),
        fmt_duration_ns(g.floor_ns),
        fmt_percent(g.rules.min_share),
        fmt_duration_ns(g.rules.min_wait_per_sec_ns),
    )
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
        ns_arrow(b.duration_ns, n.duration_ns)
    ));
    let ratio_text = contention_change(diff);
    out.push(format!(
        "  lock contention  {} per second{ratio_text}; {} total",
        rate_arrow(b.contention_wait_per_sec_ns, n.contention_wait_per_sec_ns),
        ns_arrow(b.contention_wait_ns, n.contention_wait_ns),
    ));
    out.push(format!(
        "  all waits        {} total, {} waits",
        ns_arrow(b.wait_ns, n.wait_ns),
        count_arrow(b.waits, n.waits),
    ));
    out.push(format!("  judged           {}", rules_line(diff)));

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
                rate_arrow(x.wait_per_sec_ns, y.wait_per_sec_ns),
                change_cell(c),
                ns_arrow(x.total_wait_ns, y.total_wait_ns),
                count_arrow(x.waits, y.waits),
                arrow(&p99_text(x), &p99_text(y)),
                ns_arrow(x.max_wait_ns, y.max_wait_ns),
            ]);
            labels.push(format!("{}{}", c.site.label(), moved(c)));
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
            ["#", "STATUS", "WAIT/S", "TOTAL WAIT", "WAITS", "P99", "MAX"]
                .map(str::to_owned)
                .to_vec(),
        ];
        let mut labels = Vec::new();
        for (i, e) in list.iter().take(opts.max_sites).enumerate() {
            let s = &e.stats;
            rows.push(vec![
                (i + 1).to_string(),
                e.status.as_str().to_owned(),
                per_sec_text(s.wait_per_sec_ns),
                fmt_duration_ns(s.total_wait_ns),
                fmt_count(s.waits),
                p99_text(s),
                fmt_duration_ns(s.max_wait_ns),
            ]);
            labels.push(e.site.label());
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

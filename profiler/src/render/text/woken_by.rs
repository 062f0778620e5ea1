//! "blocked by" and "woken by" in a site's detail: the holders whose releases ended
//! the parts of its waits with their share and what each did while holding, then the
//! wake sites that ended its waits, the waits no waker was seen for, wasted wakeups
//! and the wake-to-run latency.

use crate::render::fit::{clean, cut_end};
use crate::render::held::held_lines;
use crate::render::names::{location, short_function};
use crate::render::text::table::{Out, Table};
use crate::render::units::{fmt_count, fmt_duration_ns, fmt_pct, plural};
use crate::report::model::{HeldAcross, Site, WokenBy};

/// `function (file:line)`, or the site id when unnamed.
fn waker_name(
    id: &str,
    function: Option<&String>,
    file: Option<&String>,
    line: Option<u32>,
) -> String {
    let name = match (function, file) {
        (Some(f), Some(file)) => {
            let base = file.rsplit('/').next().unwrap_or(file);
            format!("{} ({})", short_function(f), location(base, line))
        }
        (Some(f), None) => short_function(f),
        _ => id.to_owned(),
    };
    cut_end(&clean(&name), 64)
}

/// One row of "blocked by" or "woken by": who, how many of what, the wait time, and
/// the held-across figures to show under it.
struct ShareRow<'a> {
    name: String,
    count: String,
    ns: u64,
    held: Option<&'a HeldAcross>,
}

/// The rows as aligned lines (shares of `site_ns`), each followed by its held lines.
fn share_lines(rows: &[ShareRow<'_>], site_ns: u64) -> Vec<String> {
    let mut table = Table::shares();
    for r in rows {
        table.row(vec![
            r.name.clone(),
            r.count.clone(),
            fmt_duration_ns(r.ns),
            fmt_pct(r.ns, site_ns),
        ]);
    }
    let mut lines = Vec::new();
    for (line, r) in table.lines(false).into_iter().zip(rows) {
        lines.push(line);
        if let Some(held) = r.held {
            lines.extend(held_lines(held).into_iter().map(|l| format!("  {l}")));
        }
    }
    lines
}

/// "Blocked by": the holders charged with this site's wait, by share, each followed
/// by what it did while holding (its "woken by" entry's held-across figures).
fn blocked_by_block(out: &mut Out, site: &Site) {
    if site.blocked_by.is_empty() {
        return;
    }
    let rows: Vec<ShareRow<'_>> = site
        .blocked_by
        .iter()
        .map(|b| ShareRow {
            name: waker_name(&b.holder, b.function.as_ref(), b.file.as_ref(), b.line),
            count: plural(b.intervals, "interval", "intervals"),
            ns: b.wait_ns,
            held: site
                .woken_by
                .iter()
                .find(|w| w.waker == b.holder)
                .map(|w| &w.held),
        })
        .collect();
    let mut lines = share_lines(&rows, site.total_wait_ns);
    if site.blocked_by_unknown_ns > 0 {
        lines.push(format!(
            "{} ({}) behind holders no longer known (more than 8 releases during a wait)",
            fmt_duration_ns(site.blocked_by_unknown_ns),
            fmt_pct(site.blocked_by_unknown_ns, site.total_wait_ns),
        ));
    }
    out.kv_block("blocked by", lines, 0, "holder", "holders");
}

/// Whether `w`'s held-across figures are already shown under "blocked by".
fn held_shown(site: &Site, w: &WokenBy) -> bool {
    site.blocked_by.iter().any(|b| b.holder == w.waker)
}

/// "Blocked by" (holders), "woken by" (wake sites), and wasted wakeups.
pub(super) fn woken_by_block(out: &mut Out, site: &Site) {
    if site.wasted_wakeups > 0 {
        out.kv(
            "wasted",
            format!(
                "{} of {} waits began right after a wakeup from the same futex ({}): woken for nothing",
                fmt_count(site.wasted_wakeups),
                fmt_count(site.waits),
                fmt_pct(site.wasted_wakeups, site.waits),
            ),
        );
    }
    blocked_by_block(out, site);
    if site.woken_by.is_empty() {
        return;
    }
    let rows: Vec<ShareRow<'_>> = site
        .woken_by
        .iter()
        .map(|w| ShareRow {
            name: waker_name(&w.waker, w.function.as_ref(), w.file.as_ref(), w.line),
            count: plural(w.waits, "wait", "waits"),
            ns: w.wait_ns,
            held: (!held_shown(site, w)).then_some(&w.held),
        })
        .collect();
    let mut lines = share_lines(&rows, site.total_wait_ns);
    if site.unpaired_waits > 0 {
        lines.push(format!(
            "{} with no waker seen (kernel wake or untraced process)",
            plural(site.unpaired_waits, "wait", "waits")
        ));
    }
    out.kv_block("woken by", lines, 0, "waker", "wakers");
    let w = &site.wake_to_run;
    if w.count > 0 {
        out.kv(
            "wake→run",
            format!(
                "avg {}  max {}  over {} (from the wake call until back on a CPU)",
                fmt_duration_ns(w.avg_ns),
                fmt_duration_ns(w.max_ns),
                plural(w.count, "woken wait", "woken waits"),
            ),
        );
    }
}

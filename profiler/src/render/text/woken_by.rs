//! "woken by" in a site's detail: the wake sites that ended its waits, what each
//! waker's thread did while holding, the waits no waker was seen for, wasted wakeups
//! and the wake-to-run latency.

use crate::render::fit::{clean, cut_end};
use crate::render::held::held_lines;
use crate::render::names::{location, short_function};
use crate::render::text::table::{Out, Table};
use crate::render::units::{fmt_count, fmt_duration_ns, fmt_pct, plural};
use crate::report::model::Site;

/// "Blocked by": the wake sites that ended this site's waits, and wasted wakeups.
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
    if site.woken_by.is_empty() {
        return;
    }
    let mut table = Table::shares();
    for w in &site.woken_by {
        let name = match (&w.function, &w.file) {
            (Some(f), Some(file)) => {
                let base = file.rsplit('/').next().unwrap_or(file);
                format!("{} ({})", short_function(f), location(base, w.line))
            }
            (Some(f), None) => short_function(f),
            _ => w.waker.clone(),
        };
        table.row(vec![
            cut_end(&clean(&name), 64),
            plural(w.waits, "wait", "waits"),
            fmt_duration_ns(w.wait_ns),
            fmt_pct(w.wait_ns, site.total_wait_ns),
        ]);
    }
    let mut lines = Vec::new();
    for (line, w) in table.lines(false).into_iter().zip(&site.woken_by) {
        lines.push(line);
        lines.extend(held_lines(&w.held).into_iter().map(|l| format!("  {l}")));
    }
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

//! The ranked table of wait sites: one row per site with its counts and durations,
//! the sites past `--max-sites` summed in one line.

use crate::render::text::TextOptions;
use crate::render::text::place::{Place, place_labels};
use crate::render::text::table::{Align, Out, Table};
use crate::render::units::{fmt_count, fmt_duration_ns, fmt_pct, more};
use crate::report::model::Report;

pub(super) fn sites_table(out: &mut Out, report: &Report, opts: &TextOptions) {
    let shown = report.sites.len().min(opts.max_sites);
    if shown > 0 {
        out.line(format!(
            "wait sites by total wait time ({shown} of {}):",
            report.sites.len()
        ));
    }
    let mut table = Table::new(&[
        ("#", Align::Right),
        ("KIND", Align::Left),
        ("WAITS", Align::Right),
        ("TOTAL", Align::Right),
        ("AVG", Align::Right),
        ("P50", Align::Right),
        ("P99", Align::Right),
        ("MAX", Align::Right),
        ("THREADS", Align::Right),
        ("SITE", Align::Left),
    ]);
    for (rank, site) in report.sites.iter().take(shown).enumerate() {
        // `--lock-fn` on a saved report: what was recorded per site only is unknown.
        let unknown = site.from_saved_stacks;
        let or_unknown = |v: String| if unknown { "-".to_owned() } else { v };
        table.row(vec![
            (rank + 1).to_string(),
            kind_label(site),
            fmt_count(site.waits),
            fmt_duration_ns(site.total_wait_ns),
            fmt_duration_ns(site.avg_wait_ns),
            or_unknown(fmt_duration_ns(site.p50_wait_ns)),
            or_unknown(fmt_duration_ns(site.p99_wait_ns)),
            fmt_duration_ns(site.max_wait_ns),
            or_unknown(fmt_count(site.threads.len() as u64)),
        ]);
    }
    let places: Vec<Place<'_>> = report.sites[..shown].iter().map(Place::of_site).collect();
    let labels = place_labels(&places, table.last_column_budget());
    for (row, label) in table.rows.iter_mut().zip(labels) {
        row.push(label);
    }
    if shown > 0 {
        table.render(out);
    }
    if report.sites.len() > shown {
        let rest = &report.sites[shown..];
        let rest_ns = rest
            .iter()
            .fold(0u64, |acc, s| acc.saturating_add(s.total_wait_ns));
        let share = if report.totals.wait_ns > 0 {
            format!(", {} of wait time", fmt_pct(rest_ns, report.totals.wait_ns))
        } else {
            String::new()
        };
        out.line(format!(
            "{} ({} in total{share})",
            more(rest.len() as u64, "site", "sites"),
            fmt_duration_ns(rest_ns),
        ));
    }
    if report.sites.iter().take(shown).any(|s| !s.contention) {
        out.line("* event wait (condvar/other): waiting for a signal, not lock contention");
    }
}

pub(super) use crate::render::kinds::kind_label;

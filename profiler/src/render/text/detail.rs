//! The detail block of one site: where it is, its waits and durations, the threads
//! and futex addresses that waited, then who woke it (`woken_by`) and its hottest
//! stack (`stack`).

use crate::render::fit::{chars, clean, cut_end, cut_middle, cut_start};
use crate::render::names::location;
use crate::render::text::place::{Place, place_labels};
use crate::render::text::sites::kind_label;
use crate::render::text::stack::stack_block;
use crate::render::text::table::{DETAIL_INDENT, DETAIL_KEY, Out, Table};
use crate::render::text::woken_by::woken_by_block;
use crate::render::text::{TextOptions, WIDTH};
use crate::render::units::{fmt_count, fmt_duration_ns, fmt_pct, plural};
use crate::report::model::{AddressShare, Report, Site, ThreadShare};

/// Futex addresses listed per site.
const MAX_ADDRESSES: usize = 3;

pub(super) fn site_detail(
    out: &mut Out,
    report: &Report,
    rank: usize,
    site: &Site,
    opts: &TextOptions,
) {
    let avail = WIDTH - DETAIL_INDENT.len() - DETAIL_KEY - 1;
    let prefix = format!("#{rank} {}  ", kind_label(site));
    let title = place_labels(
        &[Place::of_site(site)],
        WIDTH.saturating_sub(chars(&prefix)),
    );
    out.line(format!("{prefix}{}", title.concat()));
    let function = site.function.as_deref().map_or_else(
        || "[unknown function]".to_owned(),
        |f| cut_middle(&clean(f), avail),
    );
    out.kv("function", function);
    if let Some(file) = &site.file {
        out.kv("file", cut_start(&location(&clean(file), site.line), avail));
    }
    if let Some(module) = &site.module {
        out.kv("module", cut_start(&clean(module), avail));
    }
    out.kv("lock impl", cut_end(&clean(&site.lock_impl), avail));
    let mut waits = format!(
        "{} blocked, {} total ({} of all wait time)",
        fmt_count(site.waits),
        fmt_duration_ns(site.total_wait_ns),
        fmt_pct(site.total_wait_ns, report.totals.wait_ns),
    );
    let mut extra = Vec::new();
    if site.eagain > 0 {
        extra.push(format!("{} eagain", fmt_count(site.eagain)));
    }
    if site.timeouts > 0 {
        extra.push(format!(
            "{} ({})",
            plural(site.timeouts, "timeout", "timeouts"),
            fmt_duration_ns(site.timeout_wait_ns)
        ));
    }
    if site.interrupted > 0 {
        extra.push(format!("{} interrupted", fmt_count(site.interrupted)));
    }
    if site.other_errors > 0 {
        extra.push(format!("{} failed", fmt_count(site.other_errors)));
    }
    if !extra.is_empty() {
        waits.push_str("; also ");
        waits.push_str(&extra.join(", "));
    }
    out.kv("waits", waits);
    if site.from_saved_stacks {
        // Re-attributed from a saved report's stacks (`--lock-fn`): only the stacks'
        // own figures are known.
        out.kv(
            "durations",
            format!(
                "avg {}  max {}  (re-attributed by --lock-fn from saved stacks: \
                 percentiles, threads and wakers were recorded for the whole wrapper site)",
                fmt_duration_ns(site.avg_wait_ns),
                fmt_duration_ns(site.max_wait_ns),
            ),
        );
    } else {
        out.kv(
            "durations",
            format!(
                "min {}  avg {}  p50 {}  p99 {}  max {}",
                fmt_duration_ns(site.min_wait_ns),
                fmt_duration_ns(site.avg_wait_ns),
                fmt_duration_ns(site.p50_wait_ns),
                fmt_duration_ns(site.p99_wait_ns),
                fmt_duration_ns(site.max_wait_ns),
            ),
        );
    }
    threads_block(out, site, opts.threads);
    if site.fairness.threads >= 2 {
        out.kv(
            "fairness",
            format!(
                "wait spread over {} threads: cv {:.2}, max/min {:.1}x{}",
                site.fairness.threads,
                site.fairness.wait_cv,
                site.fairness.max_min_ratio,
                if site.fairness.wait_cv > 0.5 {
                    "  (uneven: some threads starve)"
                } else {
                    ""
                },
            ),
        );
    }
    woken_by_block(out, site);
    addresses_block(out, site, report.targets.len() != 1);
    if opts.stacks {
        stack_block(out, site, opts.max_frames, opts.expand_lock_frames);
    }
}

fn threads_block(out: &mut Out, site: &Site, max: usize) {
    let rows = site.threads.iter().take(max);
    let rows = rows.map(|t| thread_row(t, site.total_wait_ns));
    shares_block(
        out,
        "threads",
        rows,
        site.threads.len(),
        ("thread", "threads"),
    );
}

fn thread_row(t: &ThreadShare, site_ns: u64) -> Vec<String> {
    let name = if t.name.is_empty() {
        "?".to_owned()
    } else {
        cut_end(&clean(&t.name), 24)
    };
    vec![
        format!("{name} ({})", t.tid),
        plural(t.wait.waits, "wait", "waits"),
        fmt_duration_ns(t.wait.total_wait_ns),
        fmt_pct(t.wait.total_wait_ns, site_ns),
    ]
}

fn addresses_block(out: &mut Out, site: &Site, show_pid: bool) {
    let rows = site.addresses.iter().take(MAX_ADDRESSES);
    let rows = rows.map(|a| address_row(a, site.total_wait_ns, show_pid));
    shares_block(
        out,
        "addresses",
        rows,
        site.addresses.len(),
        ("address", "addresses"),
    );
}

/// A detail key whose value is a table of shares of the site's wait, one row each,
/// then `… N more` for the `total` rows not shown; nothing when there is no row.
fn shares_block(
    out: &mut Out,
    key: &str,
    rows: impl Iterator<Item = Vec<String>>,
    total: usize,
    (one, many): (&str, &str),
) {
    let mut table = Table::shares();
    for row in rows {
        table.row(row);
    }
    if table.rows.is_empty() {
        return;
    }
    let hidden = total.saturating_sub(table.rows.len());
    out.kv_block(key, table.lines(false), hidden, one, many);
}

fn address_row(a: &AddressShare, site_ns: u64, show_pid: bool) -> Vec<String> {
    let address = cut_end(&clean(&a.address), 24);
    vec![
        if show_pid {
            format!("{address} (pid {})", a.pid)
        } else {
            address
        },
        plural(a.wait.waits, "wait", "waits"),
        fmt_duration_ns(a.wait.total_wait_ns),
        fmt_pct(a.wait.total_wait_ns, site_ns),
    ]
}

//! The terminal view of a [`Report`]: what `lockprof report` and the end of
//! `lockprof record` print.
//!
//! Owns: the plain-text layout (header, ranked site table, per-site detail with the
//! hottest stack, wakers), name/path shortening for display, and the human units
//! [`fmt_duration_ns`] and [`fmt_count`] that other views reuse. Must not: do I/O,
//! compute statistics (every number shown is read from the `Report`), or emit colour or
//! any terminal control: text from the target (thread names, symbols) is printed with
//! control characters replaced, so a hostile `comm` cannot drive the terminal.
//!
//! Lines stay within [`WIDTH`] columns (counted in `char`s) except where a value is
//! wider than any sensible column; long names are shortened for the tables and cut
//! with `…`, and the JSON report keeps them in full.

use std::borrow::Cow;

use crate::report::model::{
    AddressShare, Frame, HeldAcross, Losses, Report, Site, StackShare, Target, TargetOrigin,
    ThreadShare, WakerSite,
};

/// Width the layout aims for, in columns.
pub const WIDTH: usize = 120;

/// Never squeeze the SITE column below this, even if the numbers are wide.
const MIN_SITE_WIDTH: usize = 32;

/// Wakers listed in the wakers section.
const MAX_WAKERS: usize = 5;

/// Futex addresses listed per site.
const MAX_ADDRESSES: usize = 3;

/// Non-child targets named in the header before "and N more".
const MAX_HEADER_TARGETS: usize = 3;

/// Indentation of the detail blocks' key/value lines.
const DETAIL_INDENT: &str = "    ";

/// Width of the keys in the detail blocks (`function`, `threads`, …).
const DETAIL_KEY: usize = 10;

/// What [`render`] shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextOptions {
    /// Sites in the table and detail blocks (the rest are counted).
    pub max_sites: usize,
    /// Print the hottest stack of each site.
    pub stacks: bool,
    /// Frames of that stack before `… N more frames`.
    pub max_frames: usize,
    /// Threads listed per site.
    pub threads: usize,
    /// Show every lock-implementation frame (`Frame::lock_impl`) instead of folding
    /// each run of them into one line.
    pub expand_lock_frames: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        Self {
            max_sites: 15,
            stacks: true,
            max_frames: 12,
            threads: 4,
            expand_lock_frames: false,
        }
    }
}

/// Renders `report` as plain text, ending with a newline.
pub fn render(report: &Report, opts: &TextOptions) -> String {
    let mut out = Out::default();
    header(&mut out, report);
    out.blank();
    if report.sites.is_empty() {
        out.line("no futex waits were recorded for the target(s)");
    } else {
        sites_table(&mut out, report, opts);
        for (rank, site) in report.sites.iter().take(opts.max_sites).enumerate() {
            out.blank();
            site_detail(&mut out, report, rank + 1, site, opts);
        }
    }
    if !report.wakers.is_empty() {
        out.blank();
        wakers_table(&mut out, &report.wakers);
    }
    out.text
}

// ---------------------------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------------------------

/// A duration in ns for humans, three significant digits: `850ns`, `12.3µs`, `4.56ms`,
/// `1.23s`, then `2m03s` and `1h02m`. Rounds to nearest; a value that rounds up to the
/// next unit is shown in it (`999.6µs` → `1.00ms`).
pub fn fmt_duration_ns(ns: u64) -> String {
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    for (scale, unit) in [(1_000, "µs"), (1_000_000, "ms")] {
        if let Some(s) = three_digits(ns, scale, unit) {
            return s;
        }
    }
    // Seconds, while they round to less than a minute.
    let hundredths = div_round(ns, 10_000_000);
    if hundredths < 1_000 {
        return format!("{}.{:02}s", hundredths / 100, hundredths % 100);
    }
    let tenths = div_round(ns, 100_000_000);
    if tenths < 600 {
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    let secs = div_round(ns, 1_000_000_000);
    if secs < 3_600 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    let mins = div_round(ns, 60_000_000_000);
    format!("{}h{:02}m", mins / 60, mins % 60)
}

/// A count for humans: exact up to 10,000, then `12.3k`, `283k`, `1.2M`, `45.6M`,
/// `283M`, `1.2G`.
pub fn fmt_count(n: u64) -> String {
    if n <= 10_000 {
        return n.to_string();
    }
    for (scale, unit) in [(1_000, "k"), (1_000_000, "M"), (1_000_000_000, "G")] {
        let tenths = div_round(n, scale / 10);
        if tenths < 1_000 {
            return format!("{}.{}{unit}", tenths / 10, tenths % 10);
        }
        let units = div_round(n, scale);
        if units < 1_000 {
            return format!("{units}{unit}");
        }
    }
    format!("{}G", div_round(n, 1_000_000_000))
}

/// `ns / scale` in three significant digits of `unit`, or `None` if it rounds to 1000
/// or more of it.
fn three_digits(ns: u64, scale: u64, unit: &str) -> Option<String> {
    let hundredths = div_round(ns, scale / 100);
    if hundredths < 1_000 {
        return Some(format!(
            "{}.{:02}{unit}",
            hundredths / 100,
            hundredths % 100
        ));
    }
    let tenths = div_round(ns, scale / 10);
    if tenths < 1_000 {
        return Some(format!("{}.{}{unit}", tenths / 10, tenths % 10));
    }
    let units = div_round(ns, scale);
    (units < 1_000).then(|| format!("{units}{unit}"))
}

/// `n / d` rounded half up, without overflow.
fn div_round(n: u64, d: u64) -> u64 {
    ((u128::from(n) + u128::from(d) / 2) / u128::from(d)) as u64
}

/// `part` as a share of `whole`: `64%`, `4.5%`, `<0.1%`; `-` when `whole` is 0.
pub fn fmt_pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let pct = part as f64 * 100.0 / whole as f64;
    if part == 0 {
        "0%".to_owned()
    } else if pct < 0.1 {
        "<0.1%".to_owned()
    } else if pct < 9.95 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.0}%")
    }
}

/// `1 wait` / `3 waits`, with the count in human units.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", fmt_count(n), if n == 1 { one } else { many })
}

/// `… 1 more thread` / `… 3 more threads`.
fn more(n: u64, one: &str, many: &str) -> String {
    format!(
        "… {} more {}",
        fmt_count(n),
        if n == 1 { one } else { many }
    )
}

// ---------------------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------------------

/// What the probe cost: BPF time, kernel memory, how futex calls were hooked. Only
/// for live recordings (older reports lack the memory figure).
fn cost_line(out: &mut Out, cost: &crate::report::ProbeCost) {
    if cost.kernel_memory_bytes == 0 {
        return;
    }
    let per_run = cost.bpf_run_ns.checked_div(cost.bpf_runs).unwrap_or(0);
    out.line(format!(
        "probe cost: {} of BPF time in {} runs ({per_run} ns each), {:.1} MiB of kernel memory, futex calls hooked through {}",
        fmt_duration_ns(cost.bpf_run_ns),
        fmt_count(cost.bpf_runs),
        cost.kernel_memory_bytes as f64 / 1_048_576.0,
        cost.attach_method,
    ));
}

fn header(out: &mut Out, report: &Report) {
    out.line(format!("lockprof: {}", targets_summary(&report.targets)));
    let t = &report.totals;
    let contention = if t.waits > 0 {
        format!(
            "; lock contention {}, {} ({} of wait time)",
            plural(t.contention_waits, "wait", "waits"),
            fmt_duration_ns(t.contention_wait_ns),
            fmt_pct(t.contention_wait_ns, t.wait_ns),
        )
    } else {
        String::new()
    };
    out.line(format!(
        "recorded {}: {}, {} waiting{contention}",
        fmt_duration_ns(report.duration_ns),
        plural(t.waits, "blocked wait", "blocked waits"),
        fmt_duration_ns(t.wait_ns),
    ));
    out.line(format!(
        "also: {} eagain (futex word changed, no block), {} ({} waiting), {} by a signal",
        fmt_count(t.eagain),
        plural(t.timeouts, "timeout", "timeouts"),
        fmt_duration_ns(t.timeout_wait_ns),
        plural(t.interrupted, "wait interrupted", "waits interrupted"),
    ));
    if t.other_errors > 0 {
        out.line(format!(
            "errors: {} failed (EFAULT/EINVAL…), not counted as blocks",
            plural(t.other_errors, "wait", "waits"),
        ));
    }
    if t.wake_calls > 0 {
        out.line(format!(
            "wakes: {} woke {}",
            plural(t.wake_calls, "call", "calls"),
            plural(t.threads_woken, "thread", "threads"),
        ));
    }
    if t.unfinished_waits > 0 {
        out.line(format!(
            "unfinished: {} still blocked when the recording stopped (not counted above)",
            plural(t.unfinished_waits, "wait", "waits"),
        ));
    }
    cost_line(out, &report.probe_cost);
    let losses = loss_lines(&report.losses);
    if losses.is_empty() {
        out.line("losses: none");
    } else {
        out.line("losses:");
        for loss in losses {
            out.line(format!("  {loss}"));
        }
    }
}

/// `pid 4242 (server) launched, exited with code 0; + 2 child processes`.
fn targets_summary(targets: &[Target]) -> String {
    let named: Vec<&Target> = targets
        .iter()
        .filter(|t| t.origin != TargetOrigin::Child)
        .collect();
    let children = targets.len() - named.len();
    let mut parts: Vec<String> = named
        .iter()
        .take(MAX_HEADER_TARGETS)
        .map(|t| describe_target(t))
        .collect();
    if named.len() > MAX_HEADER_TARGETS {
        parts.push(format!(
            "and {} more",
            plural(
                (named.len() - MAX_HEADER_TARGETS) as u64,
                "process",
                "processes"
            )
        ));
    }
    if children > 0 {
        parts.push(format!(
            "+ {}",
            plural(children as u64, "child process", "child processes")
        ));
    }
    if parts.is_empty() {
        "no target processes".to_owned()
    } else {
        parts.join("; ")
    }
}

fn describe_target(t: &Target) -> String {
    let how = match t.origin {
        TargetOrigin::Attach => "attached",
        TargetOrigin::Launch => "launched",
        TargetOrigin::Child => "child",
    };
    let state = match (t.exited, t.exit_code) {
        (true, Some(code)) => format!(", exited with code {code}"),
        (true, None) => ", exited".to_owned(),
        (false, _) => String::new(),
    };
    let comm = if t.comm.is_empty() {
        String::new()
    } else {
        format!(" ({})", cut_end(&clean(&t.comm), 40))
    };
    // Where it lives, for a containerized process: the pid its own tools show, and
    // its cgroup.
    let ns_pid = t
        .ns_pid
        .map(|p| format!(" [ns pid {p}]"))
        .unwrap_or_default();
    let cgroup = t
        .cgroup
        .as_deref()
        .map(|c| format!(" in cgroup {}", cut_start(&clean(c), 60)))
        .unwrap_or_default();
    format!("pid {}{ns_pid}{comm} {how}{cgroup}{state}", t.pid)
}

/// One line per non-zero loss counter, saying what it cost.
fn loss_lines(l: &Losses) -> Vec<String> {
    let all: [(u64, &str, &str, &str); 10] = [
        (
            l.stack_collisions,
            "stack collision",
            "stack collisions",
            "(time kept under '[unknown stack]', stack lost)",
        ),
        (
            l.stack_errors,
            "stack capture error",
            "stack capture errors",
            "(stack not captured)",
        ),
        (
            l.wait_map_full,
            "wait",
            "waits",
            "not aggregated: kernel wait map full (wait totals undercount)",
        ),
        (
            l.wake_map_full,
            "wake",
            "wakes",
            "not aggregated: kernel wake map full (wake totals undercount)",
        ),
        (
            l.inflight_map_full,
            "wait",
            "waits",
            "not timed: in-flight map full (start not recorded)",
        ),
        (
            l.target_map_full,
            "child process",
            "child processes",
            "not followed: target map full",
        ),
        (
            l.user_read_errors,
            "syscall argument",
            "syscall arguments",
            "unreadable from user memory",
        ),
        (
            l.unsymbolized_frames,
            "unsymbolized frame",
            "unsymbolized frames",
            "(shown as module+offset or address)",
        ),
        (
            l.user_stack_copy_errors,
            "user-stack copy",
            "user-stack copies",
            "not taken (frame-pointer stack used instead)",
        ),
        (
            l.truncated_stacks,
            "stack",
            "stacks",
            "truncated: CFI unwinding stopped before the thread's root",
        ),
    ];
    all.iter()
        .filter(|(n, ..)| *n > 0)
        .map(|&(n, one, many, meaning)| format!("{} {meaning}", plural(n, one, many)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Site table
// ---------------------------------------------------------------------------------------

fn sites_table(out: &mut Out, report: &Report, opts: &TextOptions) {
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
        table.row(vec![
            (rank + 1).to_string(),
            kind_label(site),
            fmt_count(site.waits),
            fmt_duration_ns(site.total_wait_ns),
            fmt_duration_ns(site.avg_wait_ns),
            fmt_duration_ns(site.p50_wait_ns),
            fmt_duration_ns(site.p99_wait_ns),
            fmt_duration_ns(site.max_wait_ns),
            fmt_count(site.threads.len() as u64),
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

/// `mutex`, or `condvar*` for an event wait.
fn kind_label(site: &Site) -> String {
    let kind = site.kind.as_str();
    if site.contention {
        kind.to_owned()
    } else {
        format!("{kind}*")
    }
}

/// Where a site or waker is, as labels are made from it.
#[derive(Clone, Copy)]
struct Place<'a> {
    function: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    module: Option<&'a str>,
}

impl<'a> Place<'a> {
    fn of_site(s: &'a Site) -> Self {
        Self {
            function: s.function.as_deref(),
            file: s.file.as_deref(),
            line: s.line,
            module: s.module.as_deref(),
        }
    }

    fn of_waker(w: &'a WakerSite) -> Self {
        Self {
            function: w.function.as_deref(),
            file: w.file.as_deref(),
            line: w.line,
            module: w.module.as_deref(),
        }
    }

    /// `function (file:line)` keeping `segments` of the function's path and
    /// `components` of the file's (the module's file name when there is no file).
    fn label(self, segments: usize, components: usize) -> String {
        let func = match self.function {
            Some(f) => function_tail(&clean(f), segments),
            None => "[unknown function]".to_owned(),
        };
        match (self.file, self.module) {
            (Some(file), _) => format!(
                "{func} ({})",
                location(&tail_components(&clean(file), components), self.line)
            ),
            (None, Some(module)) => format!("{func} ({})", basename(&clean(module))),
            (None, None) => func,
        }
    }
}

/// `function (file:line)` labels for a column `width` wide. All rows use the same
/// detail: the function's last three path segments and the file's last three
/// components, with fewer file components, then fewer function segments, while
/// some row does not fit. A row too long even then is cut: the function from the left
/// (its tail is the most specific part), or the whole label at the end.
fn place_labels(places: &[Place<'_>], width: usize) -> Vec<String> {
    const LEVELS: [(usize, usize); 4] = [(3, 3), (3, 2), (3, 1), (2, 1)];
    let (min_segments, min_components) = LEVELS[LEVELS.len() - 1];
    // Rows that cannot fit at any level do not hold the others back.
    let fitting: Vec<Place<'_>> = places
        .iter()
        .copied()
        .filter(|p| chars(&p.label(min_segments, min_components)) <= width)
        .collect();
    let (segments, components) = LEVELS
        .into_iter()
        .find(|&(s, c)| fitting.iter().all(|p| chars(&p.label(s, c)) <= width))
        .unwrap_or((min_segments, min_components));
    places
        .iter()
        .map(|p| {
            let label = p.label(segments, components);
            if chars(&label) <= width {
                return label;
            }
            let func = p.function.map_or_else(
                || "[unknown function]".to_owned(),
                |f| function_tail(&clean(f), segments),
            );
            // " (file:line)", kept whole if the function can keep a useful length.
            let place = label.strip_prefix(func.as_str()).unwrap_or_default();
            let room = width.saturating_sub(chars(place));
            if !place.is_empty() && room >= 16 {
                format!("{}{place}", cut_start(&func, room))
            } else {
                cut_end(&label, width)
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Site detail
// ---------------------------------------------------------------------------------------

fn site_detail(out: &mut Out, report: &Report, rank: usize, site: &Site, opts: &TextOptions) {
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

/// "Blocked by": the wake sites that ended this site's waits, and wasted wakeups.
fn woken_by_block(out: &mut Out, site: &Site) {
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
    let mut table = Table::new(&[
        ("", Align::Left),
        ("", Align::Right),
        ("", Align::Right),
        ("", Align::Right),
    ]);
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

/// What a waker did while its waiters waited: `holder: 2.49s held, off CPU 97% of
/// it (clock_nanosleep 96%, runnable 1%)` and, if any, `holder: 1,204 syscalls
/// failed, last sendmsg → ENOBUFS`. Empty when there is too little to say (under
/// 1 ms held and no failures).
pub fn held_lines(h: &HeldAcross) -> Vec<String> {
    let mut lines = Vec::new();
    if h.window_ns >= 1_000_000 {
        // A truncated window lost off-CPU periods: the share is a lower bound.
        let at_least = h.truncated_windows > 0 && h.off_cpu_ns * 100 < h.window_ns * 99;
        let mut line = format!(
            "holder: {} held, off CPU {}{} of it",
            fmt_duration_ns(h.window_ns),
            if at_least { "≥ " } else { "" },
            fmt_pct(h.off_cpu_ns, h.window_ns),
        );
        let places: Vec<String> = h
            .off_cpu_in
            .iter()
            .filter(|o| o.ns * 100 >= h.window_ns)
            .take(3)
            .map(|o| {
                let name = o.syscall.split(" (").next().unwrap_or(&o.syscall);
                format!("{name} {}", fmt_pct(o.ns, h.window_ns))
            })
            .collect();
        if !places.is_empty() {
            line = format!("{line} ({})", places.join(", "));
        }
        lines.push(line);
    }
    if h.failed_syscalls > 0 {
        let mut line = format!(
            "holder: {} failed",
            plural(h.failed_syscalls, "syscall", "syscalls")
        );
        if let Some(f) = &h.last_failure {
            line = format!("{line}, last {} → {}", f.syscall, f.errno);
        }
        lines.push(line);
    }
    lines
}

fn threads_block(out: &mut Out, site: &Site, max: usize) {
    if site.threads.is_empty() || max == 0 {
        return;
    }
    let mut table = Table::new(&[
        ("", Align::Left),
        ("", Align::Right),
        ("", Align::Right),
        ("", Align::Right),
    ]);
    for t in site.threads.iter().take(max) {
        table.row(thread_row(t, site.total_wait_ns));
    }
    let lines = table.lines(false);
    let hidden = site.threads.len().saturating_sub(max);
    out.kv_block("threads", lines, hidden, "thread", "threads");
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
    if site.addresses.is_empty() {
        return;
    }
    let mut table = Table::new(&[
        ("", Align::Left),
        ("", Align::Right),
        ("", Align::Right),
        ("", Align::Right),
    ]);
    for a in site.addresses.iter().take(MAX_ADDRESSES) {
        table.row(address_row(a, site.total_wait_ns, show_pid));
    }
    let lines = table.lines(false);
    let hidden = site.addresses.len().saturating_sub(MAX_ADDRESSES);
    out.kv_block("addresses", lines, hidden, "address", "addresses");
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

fn stack_block(out: &mut Out, site: &Site, max_frames: usize, expand_lock_frames: bool) {
    let Some(stack) = site.stacks.first() else {
        out.kv("stack", "none recorded");
        return;
    };
    let distinct = (site.stacks.len() as u64).saturating_add(site.more_stacks);
    let of = if distinct > 1 {
        format!(", 1 of {} distinct stacks", fmt_count(distinct))
    } else {
        String::new()
    };
    out.kv(
        "stack",
        format!(
            "hottest: {} of this site's wait time ({}{of}), innermost first",
            fmt_pct(stack.wait.total_wait_ns, site.total_wait_ns),
            plural(stack.wait.waits, "wait", "waits"),
        ),
    );
    if let Some(how) = &stack.unwind
        && how != "dwarf"
    {
        out.kv("unwound", unwind_note(how));
    }
    for line in frame_lines(stack, max_frames, expand_lock_frames) {
        out.line(format!("{DETAIL_INDENT}  {line}"));
    }
}

/// What a stack's unwinding method means for the reader (complete DWARF stacks need
/// no note).
fn unwind_note(how: &str) -> String {
    match how {
        "fp" => "by frame pointers (no stack copy): frames of code without them may be missing"
            .to_owned(),
        "dwarf-truncated" => "by DWARF CFI, truncated: the outermost frames are missing".to_owned(),
        other => clean(other).into_owned(),
    }
}

/// `function  file:line  [inlined]`, the function column aligned. Unless
/// `expand_lock_frames`, each run of lock-implementation frames is one line: the
/// outermost of them (the lock call, e.g. `pthread_mutex_lock`) and how many it stands
/// for.
fn frame_lines(stack: &StackShare, max_frames: usize, expand_lock_frames: bool) -> Vec<String> {
    // Budget: indent (6) + function + 2 + location + marker (11).
    const FUNC_MAX: usize = 64;
    const LOC_MAX: usize = WIDTH - 6 - FUNC_MAX - 2 - 11;
    // (frame shown, frames it stands for)
    let mut rows: Vec<(&Frame, usize)> = Vec::new();
    let mut i = 0;
    while i < stack.frames.len() {
        let f = &stack.frames[i];
        let run = if expand_lock_frames || !f.lock_impl {
            1
        } else {
            stack.frames[i..].iter().take_while(|f| f.lock_impl).count()
        };
        rows.push((&stack.frames[i + run - 1], run));
        i += run;
    }
    let shown: Vec<(String, String, String)> = rows
        .iter()
        .take(max_frames)
        .map(|&(f, run)| {
            let (func, loc) = frame_text(f);
            let marker = if run > 1 {
                format!("  [lock impl, {run} frames]")
            } else if f.inlined {
                "  [inlined]".to_owned()
            } else {
                String::new()
            };
            (cut_start(&func, FUNC_MAX), cut_start(&loc, LOC_MAX), marker)
        })
        .collect();
    let width = shown.iter().map(|(f, ..)| chars(f)).max().unwrap_or(0);
    let mut lines: Vec<String> = shown
        .into_iter()
        .map(|(func, loc, marker)| {
            format!("{func:<width$}  {loc}{marker}")
                .trim_end()
                .to_owned()
        })
        .collect();
    let hidden: usize = rows.iter().skip(max_frames).map(|&(_, run)| run).sum();
    if hidden > 0 {
        lines.push(more(hidden as u64, "frame", "frames"));
    }
    lines
}

/// The function (or `module+0xoffset`, or the address) and the location of a frame.
fn frame_text(f: &Frame) -> (String, String) {
    let module = f.module.as_deref().map(clean);
    if let Some(func) = &f.function {
        let loc = match (&f.file, &module) {
            (Some(file), _) => location(&short_path(&clean(file)), f.line),
            (None, Some(module)) => basename(module).to_owned(),
            (None, None) => String::new(),
        };
        (short_function(&clean(func)), loc)
    } else {
        let unresolved = match (&module, &f.module_offset) {
            (Some(module), Some(offset)) => format!("{}+{}", basename(module), clean(offset)),
            (Some(module), None) => format!("{} in {}", clean(&f.address), basename(module)),
            (None, _) => clean(&f.address).into_owned(),
        };
        (unresolved, String::new())
    }
}

// ---------------------------------------------------------------------------------------
// Wakers
// ---------------------------------------------------------------------------------------

fn wakers_table(out: &mut Out, wakers: &[WakerSite]) {
    let shown = wakers.len().min(MAX_WAKERS);
    out.line(format!(
        "wakers by threads woken ({shown} of {}; WAIT ENDED = the wait time of the waits they ended):",
        wakers.len()
    ));
    let mut table = Table::new(&[
        ("#", Align::Right),
        ("KIND", Align::Left),
        ("CALLS", Align::Right),
        ("WOKEN", Align::Right),
        ("WOKE-NONE", Align::Right),
        ("BROADCASTS", Align::Right),
        ("WAIT ENDED", Align::Right),
        ("SITE", Align::Left),
    ]);
    for (rank, w) in wakers.iter().take(shown).enumerate() {
        table.row(vec![
            (rank + 1).to_string(),
            w.kind.as_str().to_owned(),
            fmt_count(w.calls),
            fmt_count(w.woken),
            fmt_count(w.woke_none),
            fmt_count(w.woke_many),
            fmt_duration_ns(w.caused_wait_ns),
        ]);
    }
    let places: Vec<Place<'_>> = wakers[..shown].iter().map(Place::of_waker).collect();
    let labels = place_labels(&places, table.last_column_budget());
    let named: Vec<(&WakerSite, String)> = wakers[..shown].iter().zip(labels.clone()).collect();
    for (row, label) in table.rows.iter_mut().zip(labels) {
        row.push(label);
    }
    table.render(out);
    held_across_findings(out, &named);
}

/// Off-CPU time of a holder spent blocked, i.e. not merely waiting for a CPU.
fn blocked_ns(h: &HeldAcross) -> u64 {
    let runnable: u64 = h
        .off_cpu_in
        .iter()
        .filter(|o| o.syscall.starts_with("runnable"))
        .map(|o| o.ns)
        .sum();
    h.off_cpu_ns.saturating_sub(runnable)
}

/// Wakers whose threads were blocked (off CPU, not just preempted) for most of the
/// time their waiters waited:
/// locks held across blocking (a sleep, I/O, another lock), the usual root cause of
/// a convoy.
fn held_across_findings(out: &mut Out, wakers: &[(&WakerSite, String)]) {
    let blocking: Vec<String> = wakers
        .iter()
        .filter(|(w, _)| w.held.window_ns > 0 && blocked_ns(&w.held) * 2 > w.held.window_ns)
        .flat_map(|(w, label)| {
            let mut lines = vec![format!("  {}", label.trim())];
            lines.extend(held_lines(&w.held).into_iter().map(|l| format!("    {l}")));
            lines
        })
        .collect();
    if blocking.is_empty() {
        return;
    }
    out.blank();
    out.line("held across blocking (waker blocked for most of its waiters' wait):");
    for line in blocking {
        out.line(line);
    }
}

// ---------------------------------------------------------------------------------------
// Names and paths
// ---------------------------------------------------------------------------------------

/// A function name for a table: generic arguments and the `::h0123…` hash removed,
/// `<T as Trait>::f` reduced to `T::f`, and only the last three path segments kept
/// (`demo::forwarder::Before::lookup` → `forwarder::Before::lookup`). C and other
/// names without `::` are returned unchanged.
pub fn short_function(name: &str) -> String {
    function_tail(name, 3)
}

/// [`short_function`] keeping the last `keep` path segments.
fn function_tail(name: &str, keep: usize) -> String {
    let segments = split_path(name);
    let last = segments.len().saturating_sub(1);
    let mut kept: Vec<String> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        if i == last && i > 0 && is_legacy_hash(seg) {
            continue;
        }
        if let Some(inner) = seg.strip_prefix('<') {
            if i > 0 {
                // Turbofish arguments (`f::<T>`).
                continue;
            }
            let inner = inner.strip_suffix('>').unwrap_or(inner);
            kept.push(self_type(inner));
            continue;
        }
        let seg = strip_generics(seg);
        if !seg.is_empty() {
            kept.push(seg);
        }
    }
    let start = kept.len().saturating_sub(keep);
    let short = kept[start..].join("::");
    if short.is_empty() {
        name.to_owned()
    } else {
        short
    }
}

/// `Type` from the inside of `<Type as Trait>` / `<impl Trait for Type>` / `<&mut Type>`,
/// reduced to its last path segment without generics.
fn self_type(inner: &str) -> String {
    let ty = top_level_find(inner, " as ").map_or(inner, |at| &inner[..at]);
    let ty = ty.strip_prefix("impl ").map_or(ty, |rest| {
        top_level_find(rest, " for ").map_or(rest, |at| &rest[at + " for ".len()..])
    });
    let ty = ty
        .trim_start_matches('&')
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ")
        .trim();
    let segs = split_path(ty);
    let last = segs
        .iter()
        .rev()
        .map(|s| strip_generics(s))
        .find(|s| !s.is_empty());
    last.unwrap_or_else(|| ty.to_owned())
}

/// Splits `a::b<c::d>::e` at the top-level `::` only.
fn split_path(name: &str) -> Vec<&str> {
    let bytes = name.as_bytes();
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                parts.push(&name[start..i]);
                i += 2;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&name[start..]);
    parts
}

/// Byte offset of the first `needle` outside any `<…>`, `(…)` or `[…]`.
fn top_level_find(s: &str, needle: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' => depth = depth.saturating_sub(1),
            _ if depth == 0 && bytes[i..].starts_with(needle.as_bytes()) => return Some(i),
            _ => {}
        }
    }
    None
}

/// `Mutex<T>` → `Mutex` (all `<…>` groups removed; `->` is not a bracket).
fn strip_generics(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    let mut depth = 0usize;
    let mut prev = '\0';
    for c in seg.chars() {
        match c {
            '<' => depth += 1,
            '>' if prev != '-' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
        prev = c;
    }
    out
}

/// The `h0123456789abcdef` hash rustc's legacy mangling appends.
pub(crate) fn is_legacy_hash(seg: &str) -> bool {
    seg.len() == 17 && seg.starts_with('h') && seg[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The last three components of a path, for display:
/// `/rustc/…/library/std/src/sync/mutex.rs` → `src/sync/mutex.rs`.
pub fn short_path(path: &str) -> String {
    tail_components(path, 3)
}

/// The last `n` components of a path (the path itself if it has no more).
fn tail_components(path: &str, n: usize) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() <= n {
        return path.to_owned();
    }
    parts[parts.len() - n..].join("/")
}

fn basename(path: &str) -> &str {
    path.rsplit('/').find(|p| !p.is_empty()).unwrap_or(path)
}

fn location(file: &str, line: Option<u32>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

/// Text from the target with control characters (escape sequences, newlines)
/// replaced by `?`.
fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// At most `max` chars, cut at the end with `…`.
fn cut_end(s: &str, max: usize) -> String {
    if chars(s) <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` chars, cut at the start with `…` (keeps the tail).
fn cut_start(s: &str, max: usize) -> String {
    let n = chars(s);
    if n <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1);
    let mut out = String::from("…");
    out.extend(s.chars().skip(n - keep));
    out
}

/// At most `max` chars, cut in the middle with `…` (keeps the crate and the method).
fn cut_middle(s: &str, max: usize) -> String {
    let n = chars(s);
    if n <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1);
    let head = keep / 2;
    let tail = keep - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

// ---------------------------------------------------------------------------------------
// Layout helpers
// ---------------------------------------------------------------------------------------

/// The text being built, one line at a time.
#[derive(Default)]
struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref().trim_end());
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    /// `    key       value`.
    fn kv(&mut self, key: &str, value: impl AsRef<str>) {
        self.line(format!(
            "{DETAIL_INDENT}{key:<DETAIL_KEY$} {}",
            value.as_ref()
        ));
    }

    /// A key whose value is several aligned lines, plus `… N more` if some were left out.
    fn kv_block(&mut self, key: &str, lines: Vec<String>, more_n: usize, one: &str, many: &str) {
        let pad = " ".repeat(DETAIL_KEY);
        for (i, line) in lines.into_iter().enumerate() {
            self.kv(if i == 0 { key } else { &pad }, line);
        }
        if more_n > 0 {
            self.kv(&pad, more(more_n as u64, one, many));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Aligned columns, two spaces apart; the last column is never padded.
struct Table {
    headers: Vec<&'static str>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            headers: columns.iter().map(|c| c.0).collect(),
            align: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn widths(&self, with_headers: bool) -> Vec<usize> {
        (0..self.headers.len())
            .map(|c| {
                let cells = self.rows.iter().filter_map(|r| r.get(c)).map(|s| chars(s));
                let head = if with_headers {
                    chars(self.headers[c])
                } else {
                    0
                };
                cells.fold(head, usize::max)
            })
            .collect()
    }

    /// Columns left for the last column, given the widths of the others (call before
    /// the last cells are added).
    fn last_column_budget(&self) -> usize {
        let widths = self.widths(true);
        let used: usize = widths[..widths.len() - 1].iter().map(|w| w + 2).sum();
        WIDTH.saturating_sub(used).max(MIN_SITE_WIDTH)
    }

    fn lines(&self, with_headers: bool) -> Vec<String> {
        let widths = self.widths(with_headers);
        let last = widths.len() - 1;
        let fmt_row = |cells: &[&str]| {
            let mut line = String::new();
            for (c, cell) in cells.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[c].saturating_sub(chars(cell)));
                match self.align[c] {
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        if c != last {
                            line.push_str(&pad);
                        }
                    }
                }
            }
            line.trim_end().to_owned()
        };
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        if with_headers {
            lines.push(fmt_row(&self.headers));
        }
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            lines.push(fmt_row(&cells));
        }
        lines
    }

    fn render(&self, out: &mut Out) {
        for line in self.lines(true) {
            out.line(line);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analyze::histogram::Log2Histogram;
    use crate::report::model::{
        Fairness, LockAddress, OffCpuIn, ProbeCost, SCHEMA_VERSION, SiteShare, SyscallFailure,
        Totals, WaitKind, WaitSummary, WakeLatency, WakerShare, WakerThread, WokenBy,
    };

    // -- test data ----------------------------------------------------------------------

    const EXE: &str = "/work/main/target/release/demo-targets";
    const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    const RUSTC: &str = "/rustc/17067e9ac6d7e98f18d4d5a6e8e2a0b8c9e7f3a1/library";
    const FWD: &str = "demo-targets/src/forwarder.rs";

    fn sum(waits: u64, total_wait_ns: u64, max_wait_ns: u64) -> WaitSummary {
        WaitSummary {
            waits,
            total_wait_ns,
            max_wait_ns,
        }
    }

    fn func(address: &str, function: &str, file: &str, line: u32, inlined: bool) -> Frame {
        Frame {
            address: address.to_owned(),
            function: Some(function.to_owned()),
            file: Some(file.to_owned()),
            line: Some(line),
            module: Some(EXE.to_owned()),
            module_offset: None,
            inlined,
            lock_impl: false,
        }
    }

    fn libc(address: &str, function: Option<&str>, offset: &str) -> Frame {
        Frame {
            address: address.to_owned(),
            function: function.map(str::to_owned),
            file: None,
            line: None,
            module: Some(LIBC.to_owned()),
            module_offset: Some(offset.to_owned()),
            inlined: false,
            lock_impl: false,
        }
    }

    /// The frames below a site frame on a `std::thread` worker of the forwarder demo.
    fn thread_base(first: &str) -> Vec<Frame> {
        vec![
            func(
                first,
                "demo_targets::forwarder::build_client",
                FWD,
                421,
                false,
            ),
            func(
                "0x55d4c2a0b8e1",
                "demo_targets::forwarder::run_with::{{closure}}",
                FWD,
                372,
                false,
            ),
            func(
                "0x55d4c2a0b8e1",
                "std::sys::backtrace::__rust_begin_short_backtrace",
                &format!("{RUSTC}/std/src/sys/backtrace.rs"),
                152,
                true,
            ),
            func(
                "0x55d4c2a0c204",
                "std::thread::Builder::spawn_unchecked_::{{closure}}::{{closure}}",
                &format!("{RUSTC}/std/src/thread/mod.rs"),
                559,
                false,
            ),
            func(
                "0x55d4c2a0c204",
                "<core::panic::unwind_safe::AssertUnwindSafe<F> as \
                 core::ops::function::FnOnce<()>>::call_once",
                &format!("{RUSTC}/core/src/panic/unwind_safe.rs"),
                272,
                true,
            ),
            func(
                "0x55d4c2a0c204",
                "std::panicking::try::do_call",
                &format!("{RUSTC}/std/src/panicking.rs"),
                589,
                true,
            ),
            func(
                "0x55d4c2a0c3a9",
                "std::thread::Builder::spawn_unchecked_::{{closure}}",
                &format!("{RUSTC}/std/src/thread/mod.rs"),
                557,
                false,
            ),
            func(
                "0x55d4c2a0d0f5",
                "core::ops::function::FnOnce::call_once{{vtable.shim}}",
                &format!("{RUSTC}/core/src/ops/function.rs"),
                250,
                false,
            ),
            func(
                "0x55d4c2a31a6b",
                "std::sys::pal::unix::thread::Thread::new::thread_start",
                &format!("{RUSTC}/std/src/sys/pal/unix/thread.rs"),
                105,
                false,
            ),
            libc("0x7f3a5c894ac3", None, "0x94ac3"),
            Frame {
                address: "0x7f3a5c926a04".to_owned(),
                ..Frame::default()
            },
        ]
    }

    fn site_contains() -> Site {
        let mut frames = vec![
            libc("0x7f3a5c91b25d", Some("syscall"), "0x11b25d"),
            func(
                "0x55d4c2a3c1f7",
                "std::sys::pal::unix::futex::futex_wait",
                &format!("{RUSTC}/std/src/sys/pal/unix/futex.rs"),
                72,
                true,
            ),
            func(
                "0x55d4c2a3c1f7",
                "std::sys::sync::rwlock::futex::RwLock::read_contended",
                &format!("{RUSTC}/std/src/sys/sync/rwlock/futex.rs"),
                172,
                false,
            ),
            func(
                "0x55d4c2a09a62",
                "std::sync::poison::rwlock::RwLock<T>::read",
                &format!("{RUSTC}/std/src/sync/poison/rwlock.rs"),
                273,
                true,
            ),
            func(
                "0x55d4c2a09a62",
                "demo_targets::forwarder::Before::contains",
                FWD,
                179,
                false,
            ),
            func(
                "0x55d4c2a09c3d",
                "<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::lookup",
                FWD,
                220,
                false,
            ),
        ];
        frames.extend(thread_base("0x55d4c2a0b77c"));
        Site {
            id: format!(
                "rwlock-read|demo-targets|demo_targets::forwarder::Before::contains|{FWD}:179"
            ),
            kind: WaitKind::RwlockRead,
            contention: true,
            lock_impl: "rust-std".to_owned(),
            function: Some("demo_targets::forwarder::Before::contains".to_owned()),
            file: Some(FWD.to_owned()),
            line: Some(179),
            module: Some(EXE.to_owned()),
            waits: 18_432,
            total_wait_ns: 4_823_117_842,
            avg_wait_ns: 261_670,
            min_wait_ns: 2_140,
            max_wait_ns: 41_872_650,
            p50_wait_ns: 97_125,
            p99_wait_ns: 7_555_302,
            eagain: 57,
            timeouts: 0,
            timeout_wait_ns: 0,
            interrupted: 0,
            other_errors: 0,
            wasted_wakeups: 15_104,
            unpaired_waits: 57,
            woken_by: vec![
                WokenBy {
                    waker: format!("rwlock|demo-targets|demo_targets::forwarder::Before::watcher_broadcast|{FWD}:169"),
                    function: Some("demo_targets::forwarder::Before::watcher_broadcast".to_owned()),
                    file: Some(FWD.to_owned()),
                    line: Some(169),
                    waits: 11_020,
                    wait_ns: 2_900_114_000,
                    held: HeldAcross {
                        window_ns: 1_450_000_000,
                        off_cpu_ns: 1_310_000_000,
                        off_cpu_in: vec![
                            OffCpuIn { syscall: "sendmsg".to_owned(), ns: 1_200_000_000 },
                            OffCpuIn { syscall: "runnable (waiting for a CPU)".to_owned(), ns: 110_000_000 },
                        ],
                        truncated_windows: 0,
                        failed_syscalls: 1_204,
                        last_failure: Some(SyscallFailure { syscall: "sendmsg".to_owned(), errno: "ENOBUFS".to_owned() }),
                    },
                    wake_to_run: WakeLatency::default(),
                },
                WokenBy {
                    waker: format!("rwlock-write|demo-targets|<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::register|{FWD}:218"),
                    function: Some("<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::register".to_owned()),
                    file: Some(FWD.to_owned()),
                    line: Some(218),
                    waits: 7_355,
                    wait_ns: 1_900_000_000,
                    held: HeldAcross::default(),
                    wake_to_run: WakeLatency::default(),
                },
            ],
            wake_to_run: WakeLatency {
                count: 18_375,
                avg_ns: 41_000,
                max_ns: 3_200_000,
            },
            fairness: Fairness {
                threads: 6,
                wait_cv: 0.28,
                max_min_ratio: 2.22,
            },
            histogram: hist(&[
                (11, 310),
                (12, 902),
                (13, 1_544),
                (14, 2_310),
                (15, 2_702),
                (16, 3_004),
                (17, 3_126),
                (18, 2_117),
                (19, 1_211),
                (20, 603),
                (21, 298),
                (22, 151),
                (23, 102),
                (24, 41),
                (25, 11),
            ]),
            threads: vec![
                thread(4247, "build-3", sum(3_511, 1_102_331_087, 41_872_650)),
                thread(4245, "build-1", sum(3_406, 1_010_224_301, 38_113_002)),
                thread(4244, "build-0", sum(3_160, 802_610_554, 22_400_117)),
                thread(4249, "build-5", sum(3_021, 771_902_337, 19_801_440)),
                thread(4246, "build-2", sum(2_901, 640_118_803, 17_320_008)),
                thread(4248, "build-4", sum(2_433, 495_930_760, 12_004_871)),
            ],
            addresses: vec![AddressShare {
                pid: 4242,
                address: "0x55d4c3b41e10".to_owned(),
                wait: sum(18_432, 4_823_117_842, 41_872_650),
            }],
            stacks: vec![
                StackShare {
                    wait: sum(13_120, 3_422_871_004, 41_872_650),
                    frames,
                    unwind: None,
                },
                StackShare {
                    wait: sum(5_000, 1_380_000_000, 33_500_120),
                    frames: vec![func(
                        "0x55d4c2a09a62",
                        "demo_targets::forwarder::Before::contains",
                        FWD,
                        179,
                        false,
                    )],
                    unwind: None,
                },
            ],
            more_stacks: 1,
            series: Vec::new(),
        }
    }

    fn site_cond_wait() -> Site {
        let mut frames = vec![
            libc("0x7f3a5c91b25d", Some("syscall"), "0x11b25d"),
            func(
                "0x55d4c2a3b9d0",
                "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
                &format!("{RUSTC}/std/src/sys/sync/condvar/futex.rs"),
                61,
                false,
            ),
            func(
                "0x55d4c2a0a41e",
                "std::sync::poison::condvar::Condvar::wait_timeout_while",
                &format!("{RUSTC}/std/src/sync/poison/condvar.rs"),
                401,
                true,
            ),
            func(
                "0x55d4c2a0a41e",
                "demo_targets::forwarder::Before::wait_for_change",
                FWD,
                189,
                false,
            ),
            func(
                "0x55d4c2a09cb8",
                "<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::lookup",
                FWD,
                227,
                false,
            ),
        ];
        frames.extend(thread_base("0x55d4c2a0b77c"));
        Site {
            id: format!(
                "condvar|demo-targets|demo_targets::forwarder::Before::wait_for_change|{FWD}:189"
            ),
            kind: WaitKind::Condvar,
            contention: false,
            lock_impl: "rust-std".to_owned(),
            function: Some("demo_targets::forwarder::Before::wait_for_change".to_owned()),
            file: Some(FWD.to_owned()),
            line: Some(189),
            module: Some(EXE.to_owned()),
            waits: 2_944,
            total_wait_ns: 2_710_440_118,
            avg_wait_ns: 920_665,
            min_wait_ns: 3_410,
            max_wait_ns: 1_288_004_211,
            p50_wait_ns: 251_221,
            p99_wait_ns: 11_744_051,
            eagain: 1_203,
            timeouts: 4,
            timeout_wait_ns: 12_000_512_000,
            interrupted: 0,
            other_errors: 0,
            wasted_wakeups: 0,
            unpaired_waits: 0,
            woken_by: Vec::new(),
            wake_to_run: WakeLatency::default(),
            fairness: Fairness::default(),
            histogram: hist(&[
                (11, 12),
                (12, 40),
                (13, 88),
                (14, 130),
                (15, 240),
                (16, 401),
                (17, 612),
                (18, 701),
                (19, 402),
                (20, 170),
                (21, 80),
                (22, 31),
                (23, 20),
                (24, 9),
                (25, 4),
                (27, 2),
                (28, 1),
                (30, 1),
            ]),
            threads: vec![
                thread(4245, "build-1", sum(530, 611_004_312, 1_288_004_211)),
                thread(4247, "build-3", sum(511, 502_776_121, 402_113_877)),
                thread(4244, "build-0", sum(488, 470_231_904, 388_120_450)),
                thread(4246, "build-2", sum(480, 421_880_315, 201_400_003)),
                thread(4249, "build-5", sum(472, 380_117_406, 190_033_181)),
                thread(4248, "build-4", sum(463, 324_430_060, 170_552_019)),
            ],
            addresses: vec![AddressShare {
                pid: 4242,
                address: "0x55d4c3b41e40".to_owned(),
                wait: sum(2_944, 2_710_440_118, 1_288_004_211),
            }],
            stacks: vec![StackShare {
                wait: sum(2_944, 2_710_440_118, 1_288_004_211),
                frames,
                unwind: None,
            }],
            more_stacks: 0,
            series: Vec::new(),
        }
    }

    fn site_epoch_lock() -> Site {
        let mut frames = vec![
            libc("0x7f3a5c91b25d", Some("syscall"), "0x11b25d"),
            func(
                "0x55d4c2a3b512",
                "std::sys::sync::mutex::futex::Mutex::lock_contended",
                &format!("{RUSTC}/std/src/sys/sync/mutex/futex.rs"),
                62,
                false,
            ),
            func(
                "0x55d4c2a0a018",
                "std::sync::poison::mutex::Mutex<T>::lock",
                &format!("{RUSTC}/std/src/sync/poison/mutex.rs"),
                425,
                true,
            ),
            func(
                "0x55d4c2a0a018",
                "demo_targets::forwarder::Before::broadcast_locked",
                FWD,
                157,
                false,
            ),
            func(
                "0x55d4c2a0a120",
                "demo_targets::forwarder::Before::watcher_broadcast",
                FWD,
                168,
                false,
            ),
        ];
        frames.extend(thread_base("0x55d4c2a0b7c2"));
        Site {
            id: format!(
                "mutex|demo-targets|demo_targets::forwarder::Before::broadcast_locked|{FWD}:157"
            ),
            kind: WaitKind::Mutex,
            contention: true,
            lock_impl: "rust-std".to_owned(),
            function: Some("demo_targets::forwarder::Before::broadcast_locked".to_owned()),
            file: Some(FWD.to_owned()),
            line: Some(157),
            module: Some(EXE.to_owned()),
            waits: 611,
            total_wait_ns: 38_201_774,
            avg_wait_ns: 62_523,
            min_wait_ns: 1_730,
            max_wait_ns: 1_204_331,
            p50_wait_ns: 42_533,
            p99_wait_ns: 873_813,
            eagain: 2,
            timeouts: 0,
            timeout_wait_ns: 0,
            interrupted: 0,
            other_errors: 0,
            wasted_wakeups: 0,
            unpaired_waits: 0,
            woken_by: Vec::new(),
            wake_to_run: WakeLatency::default(),
            fairness: Fairness::default(),
            histogram: hist(&[
                (10, 3),
                (11, 21),
                (12, 40),
                (13, 77),
                (14, 120),
                (15, 151),
                (16, 102),
                (17, 60),
                (18, 25),
                (19, 9),
                (20, 3),
            ]),
            threads: vec![
                thread(4251, "registrar-1", sum(140, 10_402_118, 1_204_331)),
                thread(4250, "registrar-0", sum(133, 9_880_402, 990_120)),
                thread(4247, "build-3", sum(61, 3_504_881, 402_117)),
                thread(4245, "build-1", sum(57, 3_112_004, 388_004)),
                thread(4244, "build-0", sum(55, 2_998_115, 301_227)),
                thread(4249, "build-5", sum(58, 2_874_090, 288_190)),
                thread(4246, "build-2", sum(54, 2_770_031, 280_110)),
                thread(4248, "build-4", sum(53, 2_660_133, 277_003)),
            ],
            addresses: vec![AddressShare {
                pid: 4242,
                address: "0x55d4c3b41e38".to_owned(),
                wait: sum(611, 38_201_774, 1_204_331),
            }],
            stacks: vec![
                StackShare {
                    wait: sum(402, 29_004_112, 1_204_331),
                    frames,
                    unwind: None,
                },
                StackShare {
                    wait: sum(209, 9_197_662, 702_118),
                    frames: vec![func(
                        "0x55d4c2a0a018",
                        "demo_targets::forwarder::Before::broadcast_locked",
                        FWD,
                        157,
                        false,
                    )],
                    unwind: None,
                },
            ],
            more_stacks: 0,
            series: Vec::new(),
        }
    }

    fn thread(tid: u32, name: &str, wait: WaitSummary) -> ThreadShare {
        ThreadShare {
            pid: 4242,
            tid,
            name: name.to_owned(),
            wait,
        }
    }

    fn hist(buckets: &[(usize, u64)]) -> Log2Histogram {
        let mut h = Log2Histogram::default();
        for &(b, n) in buckets {
            h.counts[b] = n;
        }
        h
    }

    fn waker(
        kind: WaitKind,
        function: &str,
        line: u32,
        calls: u64,
        woken: u64,
        woke_none: u64,
        woke_many: u64,
    ) -> WakerSite {
        WakerSite {
            id: format!("{}|demo-targets|{function}|{FWD}:{line}", kind.as_str()),
            kind,
            lock_impl: "rust-std".to_owned(),
            function: Some(function.to_owned()),
            file: Some(FWD.to_owned()),
            line: Some(line),
            module: Some(EXE.to_owned()),
            calls,
            woken,
            woke_none,
            woke_many,
            threads: vec![
                WakerThread {
                    pid: 4242,
                    tid: 4247,
                    name: "build-3".to_owned(),
                    calls: calls / 4,
                    woken: woken / 4,
                },
                WakerThread {
                    pid: 4242,
                    tid: 4250,
                    name: "registrar-0".to_owned(),
                    calls: calls / 8,
                    woken: woken / 8,
                },
            ],
            caused_waits: woken / 2,
            caused_wait_ns: woken * 10_000,
            held: HeldAcross::default(),
            stack: vec![func("0x55d4c2a0a04c", function, FWD, line, false)],
        }
    }

    /// A realistic report: the `forwarder` demo, before the fix. Also stored as
    /// `tests/fixtures/report-sample.json`.
    pub(crate) fn sample_report() -> Report {
        let sites = vec![site_contains(), site_cond_wait(), site_epoch_lock()];
        let wakers = vec![
            waker(
                WaitKind::Condvar,
                "demo_targets::forwarder::Before::broadcast_locked",
                159,
                2_410,
                183_224,
                12,
                2_301,
            ),
            waker(
                WaitKind::Rwlock,
                "demo_targets::forwarder::Before::watcher_broadcast",
                169,
                1_152,
                21_880,
                40,
                1_020,
            ),
            waker(
                WaitKind::Mutex,
                "demo_targets::forwarder::Before::broadcast_locked",
                161,
                2_410,
                640,
                1_770,
                0,
            ),
        ];
        let locks = vec![
            LockAddress {
                pid: 4242,
                address: "0x55d4c3b41e10".to_owned(),
                wait: sum(18_432, 4_823_117_842, 41_872_650),
                eagain: 57,
                wasted_wakeups: 15_104,
                sites: vec![SiteShare {
                    site: sites[0].id.clone(),
                    wait: sum(18_432, 4_823_117_842, 41_872_650),
                }],
                wakers: vec![WakerShare {
                    waker: wakers[1].id.clone(),
                    calls: 1_152,
                    woken: 21_880,
                    woke_none: 40,
                    woke_many: 1_020,
                }],
            },
            LockAddress {
                pid: 4242,
                address: "0x55d4c3b41e40".to_owned(),
                wait: sum(2_944, 2_710_440_118, 1_288_004_211),
                eagain: 1_203,
                wasted_wakeups: 0,
                sites: vec![SiteShare {
                    site: sites[1].id.clone(),
                    wait: sum(2_944, 2_710_440_118, 1_288_004_211),
                }],
                wakers: vec![WakerShare {
                    waker: wakers[0].id.clone(),
                    calls: 2_410,
                    woken: 183_224,
                    woke_none: 12,
                    woke_many: 2_301,
                }],
            },
            LockAddress {
                pid: 4242,
                address: "0x55d4c3b41e38".to_owned(),
                wait: sum(611, 38_201_774, 1_204_331),
                eagain: 2,
                wasted_wakeups: 0,
                sites: vec![SiteShare {
                    site: sites[2].id.clone(),
                    wait: sum(611, 38_201_774, 1_204_331),
                }],
                wakers: vec![WakerShare {
                    waker: wakers[2].id.clone(),
                    calls: 2_410,
                    woken: 640,
                    woke_none: 1_770,
                    woke_many: 0,
                }],
            },
        ];
        Report {
            schema_version: SCHEMA_VERSION,
            lockprof_version: "0.1.0".to_owned(),
            targets: vec![Target {
                pid: 4242,
                comm: "demo-targets".to_owned(),
                cmdline: "demo-targets forwarder before --builds 6 --calls 400".to_owned(),
                origin: TargetOrigin::Launch,
                exited: true,
                exit_code: Some(0),
                ..Target::default()
            }],
            started_unix_ms: 1_767_225_600_000,
            duration_ns: 3_118_402_557,
            totals: Totals {
                waits: 21_987,
                wait_ns: 7_571_759_734,
                contention_waits: 19_043,
                contention_wait_ns: 4_861_319_616,
                eagain: 1_262,
                timeouts: 4,
                timeout_wait_ns: 12_000_512_000,
                interrupted: 0,
                other_errors: 0,
                wake_calls: 5_972,
                threads_woken: 205_744,
                unfinished_waits: 2,
            },
            losses: Losses {
                stack_collisions: 3,
                unsymbolized_frames: 2,
                ..Losses::default()
            },
            sites,
            locks,
            wakers,
            probe_cost: ProbeCost {
                bpf_run_ns: 41_200_000,
                bpf_runs: 1_530_000,
                ..ProbeCost::default()
            },
            timeline: None,
        }
    }

    /// A report whose only site has absurdly long names everywhere.
    fn long_names_report() -> Report {
        let long_fn = "<alloc::sync::Arc<tokio::sync::rwlock::RwLock<std::collections::hash::map::\
            HashMap<my_service::routing::table::RouteKey, alloc::vec::Vec<my_service::routing::\
            table::Upstream>>>> as my_service::routing::resolver::ResolveUpstream<my_service::\
            config::ServiceConfiguration>>::resolve_upstream_with_retries_and_fallback::\
            {{closure}}::h9f3a61c0d2b4e587";
        let long_file = "/home/builder/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/\
            my-service-routing-extremely-long-crate-name-0.42.0/src/routing/resolver/\
            upstream_resolution_with_retries.rs";
        let site = Site {
            id: format!("rwlock-write|my-service|{long_fn}|{long_file}:1204"),
            kind: WaitKind::RwlockWrite,
            contention: true,
            lock_impl: "parking_lot".to_owned(),
            function: Some(long_fn.to_owned()),
            file: Some(long_file.to_owned()),
            line: Some(1_204),
            module: Some("/usr/local/bin/my-service".to_owned()),
            waits: 123_456_789,
            total_wait_ns: 7_384_000_000_000,
            avg_wait_ns: 59_811,
            min_wait_ns: 12,
            max_wait_ns: 4_000_000_000_000,
            p50_wait_ns: 999_999,
            p99_wait_ns: 59_999_999_999,
            threads: vec![thread(
                4_194_304,
                "a-thread-name-\u{1b}[31m-with-escapes",
                sum(123_456_789, 7_384_000_000_000, 4_000_000_000_000),
            )],
            addresses: (0..5)
                .map(|i| AddressShare {
                    pid: 77,
                    address: format!("0x7ffd5e3a{i:04x}"),
                    wait: sum(1, 1, 1),
                })
                .collect(),
            stacks: vec![StackShare {
                wait: sum(123_456_789, 7_384_000_000_000, 4_000_000_000_000),
                frames: vec![
                    Frame {
                        address: "0x7f0000001234".to_owned(),
                        function: Some(long_fn.to_owned()),
                        file: Some(long_file.to_owned()),
                        line: Some(1_204),
                        module: None,
                        module_offset: None,
                        inlined: true,
                        lock_impl: false,
                    },
                    Frame {
                        address: "0x7f0000005678".to_owned(),
                        module: Some(
                            "/opt/vendor/lib/libsome-very-long-vendor-library-name.so.3.2.1"
                                .to_owned(),
                        ),
                        module_offset: Some("0x5678".to_owned()),
                        ..Frame::default()
                    },
                ],
                unwind: None,
            }],
            ..Site::default()
        };
        Report {
            schema_version: SCHEMA_VERSION,
            lockprof_version: "0.1.0".to_owned(),
            targets: vec![
                Target {
                    pid: 77,
                    comm: "my-service".to_owned(),
                    origin: TargetOrigin::Attach,
                    ..Target::default()
                },
                Target {
                    pid: 78,
                    comm: "my-service".to_owned(),
                    origin: TargetOrigin::Attach,
                    exited: true,
                    ..Target::default()
                },
                Target {
                    pid: 79,
                    comm: "helper".to_owned(),
                    origin: TargetOrigin::Child,
                    ..Target::default()
                },
            ],
            duration_ns: 7_500_000_000_000,
            totals: Totals {
                waits: 123_456_789,
                wait_ns: 7_384_000_000_000,
                contention_waits: 123_456_789,
                contention_wait_ns: 7_384_000_000_000,
                ..Totals::default()
            },
            losses: Losses {
                stack_errors: 1,
                wait_map_full: 20_000,
                wake_map_full: 3,
                inflight_map_full: 4,
                target_map_full: 5,
                user_read_errors: 6,
                ..Losses::default()
            },
            sites: vec![site],
            ..Report::default()
        }
    }

    // -- snapshots ----------------------------------------------------------------------

    #[test]
    fn empty_report_says_nothing_was_recorded() {
        let report = Report {
            schema_version: SCHEMA_VERSION,
            lockprof_version: "0.1.0".to_owned(),
            targets: vec![Target {
                pid: 4242,
                comm: "server".to_owned(),
                cmdline: "server --port 8080".to_owned(),
                origin: TargetOrigin::Attach,
                exited: false,
                exit_code: None,
                ..Target::default()
            }],
            duration_ns: 10_000_000_000,
            ..Report::default()
        };
        insta::assert_snapshot!(render(&report, &TextOptions::default()), @r"
        lockprof: pid 4242 (server) attached
        recorded 10.0s: 0 blocked waits, 0ns waiting
        also: 0 eagain (futex word changed, no block), 0 timeouts (0ns waiting), 0 waits interrupted by a signal
        losses: none

        no futex waits were recorded for the target(s)
        ");
    }

    fn held(off: &[(&str, u64)], window_ns: u64, failed: u64) -> HeldAcross {
        HeldAcross {
            window_ns,
            off_cpu_ns: off.iter().map(|(_, ns)| ns).sum(),
            off_cpu_in: off
                .iter()
                .map(|(syscall, ns)| OffCpuIn {
                    syscall: (*syscall).to_owned(),
                    ns: *ns,
                })
                .collect(),
            truncated_windows: 0,
            failed_syscalls: failed,
            last_failure: (failed > 0).then(|| SyscallFailure {
                syscall: "sendmsg".to_owned(),
                errno: "ENOBUFS".to_owned(),
            }),
        }
    }

    #[test]
    fn holder_lines_name_where_the_holder_was_and_what_failed() {
        let h = held(
            &[
                ("clock_nanosleep", 900),
                ("runnable (waiting for a CPU)", 50),
            ],
            1_000_000_000,
            0,
        );
        assert_eq!(
            held_lines(&h),
            ["holder: 1.00s held, off CPU <0.1% of it"],
            "shares under 1% are not listed"
        );
        let h = held(
            &[
                ("clock_nanosleep", 900_000_000),
                ("runnable (waiting for a CPU)", 50_000_000),
            ],
            1_000_000_000,
            1_204,
        );
        assert_eq!(
            held_lines(&h),
            [
                "holder: 1.00s held, off CPU 95% of it (clock_nanosleep 90%, runnable 5.0%)",
                "holder: 1204 syscalls failed, last sendmsg → ENOBUFS",
            ]
        );
        assert!(
            held_lines(&held(&[], 999_999, 0)).is_empty(),
            "under 1 ms: nothing to say"
        );
    }

    #[test]
    fn held_across_blocking_lists_blocked_holders_not_preempted_ones() {
        let mut report = sample_report();
        report.wakers[0].held = held(&[("clock_nanosleep", 800_000_000)], 1_000_000_000, 0);
        report.wakers[1].held = held(
            &[("runnable (waiting for a CPU)", 900_000_000)],
            1_000_000_000,
            0,
        );
        let text = render(&report, &TextOptions::default());
        let section = text
            .split("held across blocking")
            .nth(1)
            .expect("a held-across-blocking section");
        assert!(section.contains("broadcast_locked"), "{section}");
        assert!(section.contains("clock_nanosleep 80%"), "{section}");
        assert!(!section.contains("watcher_broadcast"), "{section}");
    }

    #[test]
    fn sample_report_renders_sites_stacks_and_wakers() {
        insta::assert_snapshot!(render(&sample_report(), &TextOptions::default()), @r"
        lockprof: pid 4242 (demo-targets) launched, exited with code 0
        recorded 3.12s: 22.0k blocked waits, 7.57s waiting; lock contention 19.0k waits, 4.86s (64% of wait time)
        also: 1262 eagain (futex word changed, no block), 4 timeouts (12.0s waiting), 0 waits interrupted by a signal
        wakes: 5972 calls woke 206k threads
        unfinished: 2 waits still blocked when the recording stopped (not counted above)
        losses:
          3 stack collisions (time kept under '[unknown stack]', stack lost)
          2 unsymbolized frames (shown as module+offset or address)

        wait sites by total wait time (3 of 3):
        #  KIND         WAITS   TOTAL     AVG     P50     P99     MAX  THREADS  SITE
        1  rwlock-read  18.4k   4.82s   262µs  97.1µs  7.56ms  41.9ms        6  Before::contains (forwarder.rs:179)
        2  condvar*      2944   2.71s   921µs   251µs  11.7ms   1.29s        6  Before::wait_for_change (forwarder.rs:189)
        3  mutex          611  38.2ms  62.5µs  42.5µs   874µs  1.20ms        8  Before::broadcast_locked (forwarder.rs:157)
        * event wait (condvar/other): waiting for a signal, not lock contention

        #1 rwlock-read  forwarder::Before::contains (demo-targets/src/forwarder.rs:179)
            function   demo_targets::forwarder::Before::contains
            file       demo-targets/src/forwarder.rs:179
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      18.4k blocked, 4.82s total (64% of all wait time); also 57 eagain
            durations  min 2.14µs  avg 262µs  p50 97.1µs  p99 7.56ms  max 41.9ms
            threads    build-3 (4247)  3511 waits  1.10s  23%
                       build-1 (4245)  3406 waits  1.01s  21%
                       build-0 (4244)  3160 waits  803ms  17%
                       build-5 (4249)  3021 waits  772ms  16%
                       … 2 more threads
            fairness   wait spread over 6 threads: cv 0.28, max/min 2.2x
            wasted     15.1k of 18.4k waits began right after a wakeup from the same futex (82%): woken for nothing
            woken by   forwarder::Before::watcher_broadcast (forwarder.rs:169)  11.0k waits  2.90s  60%
                         holder: 1.45s held, off CPU 90% of it (sendmsg 83%, runnable 7.6%)
                         holder: 1204 syscalls failed, last sendmsg → ENOBUFS
                       Before::register (forwarder.rs:218)                       7355 waits  1.90s  39%
                       57 waits with no waker seen (kernel wake or untraced process)
            wake→run   avg 41.0µs  max 3.20ms  over 18.4k woken waits (from the wake call until back on a CPU)
            addresses  0x55d4c3b41e10  18.4k waits  4.82s  100%
            stack      hottest: 71% of this site's wait time (13.1k waits, 1 of 3 distinct stacks), innermost first
              syscall                                       libc.so.6
              unix::futex::futex_wait                       pal/unix/futex.rs:72  [inlined]
              futex::RwLock::read_contended                 sync/rwlock/futex.rs:172
              rwlock::RwLock::read                          sync/poison/rwlock.rs:273  [inlined]
              forwarder::Before::contains                   demo-targets/src/forwarder.rs:179
              Before::lookup                                demo-targets/src/forwarder.rs:220
              demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
              forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
              sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
              spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
              AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
              panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
              … 5 more frames

        #2 condvar*  forwarder::Before::wait_for_change (demo-targets/src/forwarder.rs:189)
            function   demo_targets::forwarder::Before::wait_for_change
            file       demo-targets/src/forwarder.rs:189
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      2944 blocked, 2.71s total (36% of all wait time); also 1203 eagain, 4 timeouts (12.0s)
            durations  min 3.41µs  avg 921µs  p50 251µs  p99 11.7ms  max 1.29s
            threads    build-1 (4245)  530 waits  611ms  23%
                       build-3 (4247)  511 waits  503ms  19%
                       build-0 (4244)  488 waits  470ms  17%
                       build-2 (4246)  480 waits  422ms  16%
                       … 2 more threads
            addresses  0x55d4c3b41e40  2944 waits  2.71s  100%
            stack      hottest: 100% of this site's wait time (2944 waits), innermost first
              syscall                                       libc.so.6
              futex::Condvar::wait_optional_timeout         sync/condvar/futex.rs:61
              condvar::Condvar::wait_timeout_while          sync/poison/condvar.rs:401  [inlined]
              forwarder::Before::wait_for_change            demo-targets/src/forwarder.rs:189
              Before::lookup                                demo-targets/src/forwarder.rs:227
              demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
              forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
              sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
              spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
              AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
              panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
              Builder::spawn_unchecked_::{{closure}}        src/thread/mod.rs:557
              … 4 more frames

        #3 mutex  forwarder::Before::broadcast_locked (demo-targets/src/forwarder.rs:157)
            function   demo_targets::forwarder::Before::broadcast_locked
            file       demo-targets/src/forwarder.rs:157
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      611 blocked, 38.2ms total (0.5% of all wait time); also 2 eagain
            durations  min 1.73µs  avg 62.5µs  p50 42.5µs  p99 874µs  max 1.20ms
            threads    registrar-1 (4251)  140 waits  10.4ms   27%
                       registrar-0 (4250)  133 waits  9.88ms   26%
                       build-3 (4247)       61 waits  3.50ms  9.2%
                       build-1 (4245)       57 waits  3.11ms  8.1%
                       … 4 more threads
            addresses  0x55d4c3b41e38  611 waits  38.2ms  100%
            stack      hottest: 76% of this site's wait time (402 waits, 1 of 2 distinct stacks), innermost first
              syscall                                       libc.so.6
              futex::Mutex::lock_contended                  sync/mutex/futex.rs:62
              mutex::Mutex::lock                            sync/poison/mutex.rs:425  [inlined]
              forwarder::Before::broadcast_locked           demo-targets/src/forwarder.rs:157
              forwarder::Before::watcher_broadcast          demo-targets/src/forwarder.rs:168
              demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
              forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
              sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
              spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
              AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
              panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
              Builder::spawn_unchecked_::{{closure}}        src/thread/mod.rs:557
              … 4 more frames

        wakers by threads woken (3 of 3; WAIT ENDED = the wait time of the waits they ended):
        #  KIND     CALLS  WOKEN  WOKE-NONE  BROADCASTS  WAIT ENDED  SITE
        1  condvar   2410   183k         12        2301       1.83s  forwarder::Before::broadcast_locked (src/forwarder.rs:159)
        2  rwlock    1152  21.9k         40        1020       219ms  forwarder::Before::watcher_broadcast (src/forwarder.rs:169)
        3  mutex     2410    640       1770           0      6.40ms  forwarder::Before::broadcast_locked (src/forwarder.rs:161)
        ");
    }

    #[test]
    fn options_limit_sites_threads_and_frames() {
        let opts = TextOptions {
            max_sites: 1,
            stacks: true,
            max_frames: 3,
            threads: 1,
            expand_lock_frames: false,
        };
        insta::assert_snapshot!(render(&sample_report(), &opts), @r"
        lockprof: pid 4242 (demo-targets) launched, exited with code 0
        recorded 3.12s: 22.0k blocked waits, 7.57s waiting; lock contention 19.0k waits, 4.86s (64% of wait time)
        also: 1262 eagain (futex word changed, no block), 4 timeouts (12.0s waiting), 0 waits interrupted by a signal
        wakes: 5972 calls woke 206k threads
        unfinished: 2 waits still blocked when the recording stopped (not counted above)
        losses:
          3 stack collisions (time kept under '[unknown stack]', stack lost)
          2 unsymbolized frames (shown as module+offset or address)

        wait sites by total wait time (1 of 3):
        #  KIND         WAITS  TOTAL    AVG     P50     P99     MAX  THREADS  SITE
        1  rwlock-read  18.4k  4.82s  262µs  97.1µs  7.56ms  41.9ms        6  forwarder::Before::contains (src/forwarder.rs:179)
        … 2 more sites (2.75s in total, 36% of wait time)

        #1 rwlock-read  forwarder::Before::contains (demo-targets/src/forwarder.rs:179)
            function   demo_targets::forwarder::Before::contains
            file       demo-targets/src/forwarder.rs:179
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      18.4k blocked, 4.82s total (64% of all wait time); also 57 eagain
            durations  min 2.14µs  avg 262µs  p50 97.1µs  p99 7.56ms  max 41.9ms
            threads    build-3 (4247)  3511 waits  1.10s  23%
                       … 5 more threads
            fairness   wait spread over 6 threads: cv 0.28, max/min 2.2x
            wasted     15.1k of 18.4k waits began right after a wakeup from the same futex (82%): woken for nothing
            woken by   forwarder::Before::watcher_broadcast (forwarder.rs:169)  11.0k waits  2.90s  60%
                         holder: 1.45s held, off CPU 90% of it (sendmsg 83%, runnable 7.6%)
                         holder: 1204 syscalls failed, last sendmsg → ENOBUFS
                       Before::register (forwarder.rs:218)                       7355 waits  1.90s  39%
                       57 waits with no waker seen (kernel wake or untraced process)
            wake→run   avg 41.0µs  max 3.20ms  over 18.4k woken waits (from the wake call until back on a CPU)
            addresses  0x55d4c3b41e10  18.4k waits  4.82s  100%
            stack      hottest: 71% of this site's wait time (13.1k waits, 1 of 3 distinct stacks), innermost first
              syscall                        libc.so.6
              unix::futex::futex_wait        pal/unix/futex.rs:72  [inlined]
              futex::RwLock::read_contended  sync/rwlock/futex.rs:172
              … 14 more frames

        wakers by threads woken (3 of 3; WAIT ENDED = the wait time of the waits they ended):
        #  KIND     CALLS  WOKEN  WOKE-NONE  BROADCASTS  WAIT ENDED  SITE
        1  condvar   2410   183k         12        2301       1.83s  forwarder::Before::broadcast_locked (src/forwarder.rs:159)
        2  rwlock    1152  21.9k         40        1020       219ms  forwarder::Before::watcher_broadcast (src/forwarder.rs:169)
        3  mutex     2410    640       1770           0      6.40ms  forwarder::Before::broadcast_locked (src/forwarder.rs:161)
        ");
    }

    #[test]
    fn whole_stack_shows_inlined_and_unresolved_frames() {
        let site = site_contains();
        insta::assert_snapshot!(frame_lines(&site.stacks[0], 100, false).join("\n"), @r"
        syscall                                       libc.so.6
        unix::futex::futex_wait                       pal/unix/futex.rs:72  [inlined]
        futex::RwLock::read_contended                 sync/rwlock/futex.rs:172
        rwlock::RwLock::read                          sync/poison/rwlock.rs:273  [inlined]
        forwarder::Before::contains                   demo-targets/src/forwarder.rs:179
        Before::lookup                                demo-targets/src/forwarder.rs:220
        demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
        forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
        sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
        spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
        AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
        panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
        Builder::spawn_unchecked_::{{closure}}        src/thread/mod.rs:557
        function::FnOnce::call_once{{vtable.shim}}    src/ops/function.rs:250
        Thread::new::thread_start                     pal/unix/thread.rs:105
        libc.so.6+0x94ac3
        0x7f3a5c926a04
        ");
    }

    #[test]
    fn no_stacks_option_omits_stacks() {
        let opts = TextOptions {
            stacks: false,
            ..TextOptions::default()
        };
        let text = render(&sample_report(), &opts);
        assert!(!text.contains("hottest"), "{text}");
        assert!(!text.contains("read_contended"), "{text}");
    }

    #[test]
    fn long_names_are_shortened_and_keep_alignment() {
        let text = render(&long_names_report(), &TextOptions::default());
        insta::assert_snapshot!(text, @r"
        lockprof: pid 77 (my-service) attached; pid 78 (my-service) attached, exited; + 1 child process
        recorded 2h05m: 123M blocked waits, 2h03m waiting; lock contention 123M waits, 2h03m (100% of wait time)
        also: 0 eagain (futex word changed, no block), 0 timeouts (0ns waiting), 0 waits interrupted by a signal
        losses:
          1 stack capture error (stack not captured)
          20.0k waits not aggregated: kernel wait map full (wait totals undercount)
          3 wakes not aggregated: kernel wake map full (wake totals undercount)
          4 waits not timed: in-flight map full (start not recorded)
          5 child processes not followed: target map full
          6 syscall arguments unreadable from user memory

        wait sites by total wait time (1 of 1):
        #  KIND          WAITS  TOTAL     AVG     P50    P99    MAX  THREADS  SITE
        1  rwlock-write   123M  2h03m  59.8µs  1.00ms  1m00s  1h07m        1  Arc::resolve_upstream_with_retries_and_fallback::…

        #1 rwlock-write  Arc::resolve_upstream_with_retries_and_fallback::{{closure}} (upstream_resolution_with_retries.rs:1204)
            function   <alloc::sync::Arc<tokio::sync::rwlock::RwLock<std::c…retries_and_fallback::{{closure}}::h9f3a61c0d2b4e587
            file       …e-routing-extremely-long-crate-name-0.42.0/src/routing/resolver/upstream_resolution_with_retries.rs:1204
            module     /usr/local/bin/my-service
            lock impl  parking_lot
            waits      123M blocked, 2h03m total (100% of all wait time)
            durations  min 12ns  avg 59.8µs  p50 1.00ms  p99 1m00s  max 1h07m
            threads    a-thread-name-?[31m-wit… (4194304)  123M waits  2h03m  100%
            addresses  0x7ffd5e3a0000 (pid 77)  1 wait  1ns  <0.1%
                       0x7ffd5e3a0001 (pid 77)  1 wait  1ns  <0.1%
                       0x7ffd5e3a0002 (pid 77)  1 wait  1ns  <0.1%
                       … 2 more addresses
            stack      hottest: 100% of this site's wait time (123M waits), innermost first
              Arc::resolve_upstream_with_retries_and_fallback::{{closure}}  …ream_resolution_with_retries.rs:1204  [inlined]
              libsome-very-long-vendor-library-name.so.3.2.1+0x5678
        ");
    }

    #[test]
    fn lines_fit_the_width() {
        for report in [sample_report(), long_names_report()] {
            let text = render(&report, &TextOptions::default());
            for line in text.lines() {
                assert!(chars(line) <= WIDTH, "{} chars: {line}", chars(line));
                assert!(
                    !line.chars().any(char::is_control),
                    "control char: {line:?}"
                );
            }
        }
    }

    #[test]
    fn inconsistent_reports_do_not_panic() {
        let mut report = sample_report();
        report.totals = Totals::default();
        report.sites[0].total_wait_ns = 0;
        report.sites[0].threads[0].wait.total_wait_ns = u64::MAX;
        report.sites[1].stacks[0].frames.clear();
        report.sites[2].stacks.clear();
        report.sites[2].threads.clear();
        report.sites.push(Site::default());
        report.wakers.push(WakerSite::default());
        report.targets.clear();
        let text = render(&report, &TextOptions::default());
        assert!(text.contains("lockprof: no target processes"), "{text}");
        let zero = TextOptions {
            max_sites: 0,
            stacks: true,
            max_frames: 0,
            threads: 0,
            expand_lock_frames: false,
        };
        let text = render(&report, &zero);
        assert!(text.contains("… 4 more sites"), "{text}");
    }

    /// Other tests use the sample as a fixture: its numbers must add up the way
    /// `aggregate` makes them.
    #[test]
    fn sample_report_is_self_consistent() {
        let r = sample_report();
        let (mut waits, mut wait_ns) = (0, 0);
        for site in &r.sites {
            waits += site.waits;
            wait_ns += site.total_wait_ns;
            assert_eq!(site.histogram.total(), site.waits, "{}", site.id);
            assert_eq!(site.avg_wait_ns, site.total_wait_ns / site.waits);
            let (min, max) = (site.min_wait_ns, site.max_wait_ns);
            assert_eq!(site.p50_wait_ns, site.histogram.quantile(0.50, min, max));
            assert_eq!(site.p99_wait_ns, site.histogram.quantile(0.99, min, max));
            assert_eq!(site.contention, site.kind.is_contention());
            let threads: u64 = site.threads.iter().map(|t| t.wait.total_wait_ns).sum();
            assert_eq!(threads, site.total_wait_ns, "{}", site.id);
            let stacks: u64 = site.stacks.iter().map(|s| s.wait.waits).sum();
            assert!(stacks <= site.waits);
        }
        assert_eq!((waits, wait_ns), (r.totals.waits, r.totals.wait_ns));
        let woken: u64 = r.wakers.iter().map(|w| w.woken).sum();
        assert_eq!(woken, r.totals.threads_woken);
    }

    /// The sample report is shared with other tests as a fixture file; keep it in sync.
    /// Regenerate with `LOCKPROF_UPDATE_FIXTURES=1 cargo test`.
    #[test]
    fn sample_fixture_is_up_to_date() {
        let json = crate::report::json::to_string(&sample_report());
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/report-sample.json"
        );
        if std::env::var_os("LOCKPROF_UPDATE_FIXTURES").is_some() {
            std::fs::write(path, &json).expect("write fixture");
        }
        let stored = include_str!("../../tests/fixtures/report-sample.json");
        assert!(
            stored == json,
            "tests/fixtures/report-sample.json is stale: rerun with LOCKPROF_UPDATE_FIXTURES=1"
        );
    }

    // -- units --------------------------------------------------------------------------

    #[test]
    fn durations_at_unit_boundaries() {
        let cases = [
            (0, "0ns"),
            (850, "850ns"),
            (999, "999ns"),
            (1_000, "1.00µs"),
            (1_004, "1.00µs"),
            (1_005, "1.01µs"),
            (9_994, "9.99µs"),
            (9_995, "10.0µs"),
            (12_345, "12.3µs"),
            (99_949, "99.9µs"),
            (99_950, "100µs"),
            (999_499, "999µs"),
            (999_500, "1.00ms"),
            (4_560_000, "4.56ms"),
            (999_499_999, "999ms"),
            (999_500_000, "1.00s"),
            (1_234_000_000, "1.23s"),
            (9_995_000_000, "10.0s"),
            (59_949_999_999, "59.9s"),
            (59_950_000_000, "1m00s"),
            (123_000_000_000, "2m03s"),
            (3_599_499_999_999, "59m59s"),
            (3_599_500_000_000, "1h00m"),
            (3_720_000_000_000, "1h02m"),
            (u64::MAX, "5124095h35m"),
        ];
        for (ns, want) in cases {
            assert_eq!(fmt_duration_ns(ns), want, "{ns} ns");
        }
    }

    #[test]
    fn counts_at_suffix_boundaries() {
        let cases = [
            (0, "0"),
            (9_999, "9999"),
            (10_000, "10000"),
            (10_001, "10.0k"),
            (12_345, "12.3k"),
            (99_949, "99.9k"),
            (99_950, "100k"),
            (283_456, "283k"),
            (999_499, "999k"),
            (999_500, "1.0M"),
            (1_234_567, "1.2M"),
            (45_600_000, "45.6M"),
            (999_500_000, "1.0G"),
            (u64::MAX, "18446744074G"),
        ];
        for (n, want) in cases {
            assert_eq!(fmt_count(n), want, "{n}");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(fmt_pct(1, 0), "-");
        assert_eq!(fmt_pct(0, 10), "0%");
        assert_eq!(fmt_pct(1, 10_000), "<0.1%");
        assert_eq!(fmt_pct(45, 1_000), "4.5%");
        assert_eq!(fmt_pct(640, 1_000), "64%");
        assert_eq!(fmt_pct(10, 10), "100%");
        assert_eq!(fmt_pct(u64::MAX, 1), "1844674407370955161600%");
    }

    #[test]
    fn function_names_are_shortened() {
        let cases = [
            (
                "demo_targets::forwarder::Before::lookup",
                "forwarder::Before::lookup",
            ),
            (
                "<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::lookup",
                "Before::lookup",
            ),
            (
                "std::sync::poison::mutex::Mutex<T>::lock",
                "mutex::Mutex::lock",
            ),
            (
                "std::sync::mutex::Mutex<T>::lock::h0123456789abcdef",
                "mutex::Mutex::lock",
            ),
            (
                "core::iter::Iterator::collect::<Vec<u8>>",
                "iter::Iterator::collect",
            ),
            (
                "<alloc::boxed::Box<dyn core::ops::Fn(u8) -> u8> as core::ops::Fn<A>>::call",
                "Box::call",
            ),
            ("<&mut W as core::fmt::Write>::write_str", "W::write_str"),
            (
                "demo::main::{{closure}}::{{closure}}",
                "main::{{closure}}::{{closure}}",
            ),
            ("pthread_mutex_lock", "pthread_mutex_lock"),
            ("", ""),
            ("<<<", "<<"),
            (">>::", ">>::"),
            ("::", "::"),
        ];
        for (name, want) in cases {
            assert_eq!(short_function(name), want, "{name}");
        }
    }

    #[test]
    fn paths_keep_three_components() {
        assert_eq!(short_path("src/main.rs"), "src/main.rs");
        assert_eq!(
            short_path("/rustc/abc/library/std/src/sync/mutex.rs"),
            "src/sync/mutex.rs"
        );
        assert_eq!(short_path("a/b/c"), "a/b/c");
        assert_eq!(short_path(""), "");
    }

    #[test]
    fn cutting_counts_chars_not_bytes() {
        assert_eq!(cut_end("µµµµµ", 3), "µµ…");
        assert_eq!(cut_start("µµµµµ", 3), "…µµ");
        assert_eq!(cut_middle("abcdefgh", 5), "ab…gh");
        assert_eq!(cut_end("abc", 0), "…");
        assert_eq!(clean("a\u{1b}[31mb\n"), "a?[31mb?");
    }

    #[test]
    fn header_shows_namespaced_pid_and_cgroup() {
        let t = Target {
            pid: 4242,
            comm: "server".to_owned(),
            origin: TargetOrigin::Attach,
            ns_pid: Some(1),
            cgroup: Some("/lockprof-test".to_owned()),
            ..Target::default()
        };
        assert_eq!(
            targets_summary(&[t]),
            "pid 4242 [ns pid 1] (server) attached in cgroup /lockprof-test"
        );
        let plain = Target {
            pid: 7,
            comm: "app".to_owned(),
            exited: true,
            ..Target::default()
        };
        assert_eq!(targets_summary(&[plain]), "pid 7 (app) attached, exited");
    }

    #[test]
    fn lock_frames_fold_into_one_line_unless_expanded() {
        let mut lock = vec![
            libc("0x7f0000001000", Some("futex_wait"), "0x1000"),
            libc("0x7f0000001000", Some("__GI___lll_lock_wait"), "0x1000"),
            libc("0x7f0000002000", Some("___pthread_mutex_lock"), "0x2000"),
        ];
        for f in &mut lock {
            f.lock_impl = true;
        }
        let mut frames = lock;
        frames.push(func("0x5500", "app::worker", "src/app.rs", 12, false));
        frames.push(func("0x5600", "app::main", "src/app.rs", 40, false));
        let stack = StackShare {
            frames,
            unwind: Some("dwarf".to_owned()),
            ..StackShare::default()
        };
        insta::assert_snapshot!(frame_lines(&stack, 2, false).join("\n"), @r"
        ___pthread_mutex_lock  libc.so.6  [lock impl, 3 frames]
        app::worker            src/app.rs:12
        … 1 more frame
        ");
        let expanded = frame_lines(&stack, 100, true).join("\n");
        assert!(expanded.contains("__GI___lll_lock_wait"), "{expanded}");
        assert!(!expanded.contains("[lock impl"), "{expanded}");
        assert_eq!(
            unwind_note("dwarf-truncated"),
            "by DWARF CFI, truncated: the outermost frames are missing"
        );
    }
}

//! Drawing `lockprof top`: `impl Widget for &App`.
//!
//! Owns: the layout (header, sparklines, site table or site detail, footer) and
//! every string on screen. Must not: change the app's state, do I/O or read the
//! clock — rendering the same `App` into the same area always gives the same buffer,
//! which is what the snapshot tests rely on.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Sparkline, Table, Widget, Wrap};

use crate::render::text::{
    fmt_count, fmt_duration_ns, fmt_pct, held_lines, short_function, short_path,
};
use crate::report::{BlockedBy, Frame, Site, WokenBy};
use crate::tui::app::{App, Scope, Screen, SortKey, Source, Stats};
use crate::tui::columns::{KIND_WIDTH, NUM_WIDTH, SITE_MIN, SPACING, numeric_columns};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let [header, sparks, body, footer] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Length(2),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        Paragraph::new(header_lines(self)).render(header, buf);
        render_sparklines(self, sparks, buf);
        match self.screen {
            Screen::Table => render_table(self, body, buf),
            Screen::Detail => render_detail(self, body, buf),
        }
        Paragraph::new(footer_line(self))
            .style(Style::new().reversed())
            .render(footer, buf);
    }
}

fn per_sec(ns_per_sec: f64) -> String {
    format!("{}/s", fmt_duration_ns(ns_per_sec.round() as u64))
}

fn header_lines(app: &App) -> Vec<Line<'static>> {
    let r = &app.report;
    let targets: Vec<String> = r
        .targets
        .iter()
        .map(|t| {
            let comm = if t.comm.is_empty() { "?" } else { &t.comm };
            let threads = app
                .live
                .threads
                .get(&t.pid)
                .map_or_else(String::new, |n| format!(", {n} threads"));
            let state = if t.exited { "exited" } else { "alive" };
            format!("{comm} ({}{threads}, {state})", t.pid)
        })
        .collect();
    let mode = match (app.source, app.paused, app.live.finished) {
        (Source::Replay, ..) => "  [replay]",
        (_, true, _) => "  [PAUSED]",
        (_, _, true) => "  [target exited: final data]",
        _ => "",
    };
    let first = Line::from(vec![
        Span::styled("lockprof top ", Style::new().bold()),
        Span::raw(if targets.is_empty() {
            "no target".to_owned()
        } else {
            targets.join(", ")
        }),
        Span::raw(format!("  elapsed {}", fmt_duration_ns(r.duration_ns))),
        Span::styled(mode, Style::new().bold()),
    ]);
    let rates = &app.rates;
    let last = if rates.interval_ns == 0 {
        "last interval: -".to_owned()
    } else {
        format!(
            "last {}: {} waits/s, {} waiting",
            fmt_duration_ns(rates.interval_ns),
            fmt_count(rates.waits_per_sec.round() as u64),
            per_sec(rates.wait_ns_per_sec)
        )
    };
    let second = Line::from(format!(
        "{last}  |  total {} waits, {} waiting ({} lock contention)",
        fmt_count(r.totals.waits),
        fmt_duration_ns(r.totals.wait_ns),
        fmt_pct(r.totals.contention_wait_ns, r.totals.wait_ns),
    ));
    let losses = r.losses.kernel_total();
    // BPF time is only known with the kernel's run-time statistics on (`--probe-time`).
    let bpf = if r.probe_cost.run_time_measured() {
        per_sec(rates.bpf_ns_per_sec)
    } else {
        "not measured (--probe-time)".to_owned()
    };
    let cost = match rates.user_ns_per_sec {
        _ if !rates.cost_known => "lockprof cost: measuring…".to_owned(),
        Some(user) => format!(
            "lockprof cost: BPF {bpf}, userspace CPU {}{}",
            per_sec(user),
            app.live.report_ns.map_or_else(String::new, |ns| format!(
                " (last refresh took {})",
                fmt_duration_ns(ns)
            ))
        ),
        None => format!("lockprof cost: BPF {bpf} (average)"),
    };
    // The probe's maps are memory the kernel keeps for us while attached: always
    // worth seeing next to the CPU cost (0 in reports written before it was measured).
    let cost = match r.probe_cost.kernel_memory_bytes {
        0 => cost,
        bytes => format!(
            "{cost}, kernel memory {:.1} MiB",
            bytes as f64 / 1_048_576.0
        ),
    };
    let third = Line::from(vec![
        Span::raw(format!(
            "losses {}{}  |  ",
            fmt_count(losses),
            if r.losses.unsymbolized_frames > 0 {
                format!(
                    " (+{} unsymbolized frames)",
                    fmt_count(r.losses.unsymbolized_frames)
                )
            } else {
                String::new()
            }
        )),
        Span::raw(cost),
    ]);
    vec![first, second, third]
}

fn render_sparklines(app: &App, area: Rect, buf: &mut Buffer) {
    let label_width = 14u16.min(area.width);
    for (i, (label, data)) in [
        ("all wait/int", app.total_series()),
        ("site wait/int", app.selected_series()),
    ]
    .into_iter()
    .enumerate()
    {
        let y = area.y + i as u16;
        if y >= area.bottom() {
            break;
        }
        let line = Rect::new(area.x, y, area.width, 1);
        let [name, spark] =
            Layout::horizontal([Constraint::Length(label_width), Constraint::Min(0)]).areas(line);
        Paragraph::new(label).dim().render(name, buf);
        // Only the newest intervals that fit.
        let shown = &data[data.len().saturating_sub(usize::from(spark.width))..];
        Sparkline::default().data(shown).render(spark, buf);
    }
}

fn opt_ns(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), fmt_duration_ns)
}

fn stat_cell(s: &Stats, key: SortKey) -> String {
    match key {
        SortKey::Waits => fmt_count(s.waits),
        SortKey::Total => fmt_duration_ns(s.wait_ns),
        SortKey::Avg => fmt_duration_ns(s.avg_ns),
        SortKey::P99 => opt_ns(s.p99_ns),
        SortKey::Max => opt_ns(s.max_ns),
        SortKey::Threads => s.threads.map_or_else(|| "-".to_owned(), |t| t.to_string()),
    }
}

fn site_cell(row: &crate::tui::app::Row) -> String {
    format!("{} ({})", short_function(&row.function), row.location)
}

fn render_table(app: &App, area: Rect, buf: &mut Buffer) {
    let arrow = if app.ascending { '▲' } else { '▼' };
    // The site column is the answer: it gets its room first, the numbers fit around it.
    let site_wanted = app
        .visible
        .iter()
        .map(|&i| site_cell(&app.rows[i]).chars().count())
        .max()
        .unwrap_or(0);
    let columns = numeric_columns(
        area.width,
        u16::try_from(site_wanted).unwrap_or(u16::MAX),
        app.scope,
        app.sort,
    );
    let mut header = vec![Cell::from("KIND")];
    header.extend(columns.iter().map(|&(scope, k)| {
        let label = if k == SortKey::Threads {
            "thr"
        } else {
            k.label()
        };
        let name = match scope {
            Scope::Interval => format!("{label}/i"),
            Scope::Cumulative => label.to_owned(),
        };
        if k == app.sort && scope == app.scope {
            Cell::from(format!("{name}{arrow}")).bold()
        } else {
            Cell::from(name)
        }
    }));
    header.push(Cell::from("SITE"));
    let rows: Vec<TableRow> = app
        .visible
        .iter()
        .map(|&i| {
            let row = &app.rows[i];
            let mut cells = vec![Cell::from(row.kind.as_str())];
            cells.extend(columns.iter().map(|&(scope, k)| {
                let stats = match scope {
                    Scope::Interval => &row.interval,
                    Scope::Cumulative => &row.total,
                };
                Cell::from(stat_cell(stats, k))
            }));
            cells.push(Cell::from(site_cell(row)));
            TableRow::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(KIND_WIDTH)];
    widths.extend(columns.iter().map(|_| Constraint::Length(NUM_WIDTH)));
    widths.push(Constraint::Min(SITE_MIN));
    let title = if app.visible.is_empty() {
        if app.rows.is_empty() {
            " no blocked waits yet ".to_owned()
        } else {
            format!(" no site matches '{}' ", app.filter)
        }
    } else {
        let matching = if app.filter.is_empty() {
            String::new()
        } else {
            format!(" matching '{}'", app.filter)
        };
        format!(
            " sites {} of {}{matching} ",
            app.visible.len(),
            app.rows.len()
        )
    };
    let [title_area, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    Paragraph::new(title).bold().render(title_area, buf);
    let mut state = ratatui::widgets::TableState::default()
        .with_selected((!app.visible.is_empty()).then_some(app.selected));
    ratatui::widgets::StatefulWidget::render(
        Table::new(rows, widths)
            .header(TableRow::new(header).style(Style::new().add_modifier(Modifier::UNDERLINED)))
            .column_spacing(SPACING)
            .row_highlight_style(Style::new().reversed()),
        table_area,
        buf,
        &mut state,
    );
}

fn frame_line(f: &Frame) -> String {
    let func = f
        .function
        .as_deref()
        .map_or_else(|| f.address.clone(), short_function);
    let place = match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("{}:{line}", short_path(file)),
        (Some(file), None) => short_path(file),
        _ => f.module.as_deref().map(short_path).unwrap_or_default(),
    };
    let inl = if f.inlined { "  [inlined]" } else { "" };
    format!("    {func:<48} {place}{inl}")
}

/// One "blocked by" or "woken by" entry: the holder or waker (`id` when unnamed),
/// where it is, how many `noun`, and its share of the site's wait.
fn share_line(
    id: &str,
    (function, file, line): (Option<&str>, Option<&str>, Option<u32>),
    (count, noun): (u64, &str),
    ns: u64,
    site_wait_ns: u64,
) -> String {
    let place = match (file, line) {
        (Some(file), Some(line)) => format!(" ({}:{line})", short_path(file)),
        _ => String::new(),
    };
    format!(
        "  {}{place}  {} {noun}  {}  {}",
        function.map_or_else(|| id.to_owned(), short_function),
        fmt_count(count),
        fmt_duration_ns(ns),
        fmt_pct(ns, site_wait_ns)
    )
}

fn woken_by_line(w: &WokenBy, site_wait_ns: u64) -> String {
    let at = (w.function.as_deref(), w.file.as_deref(), w.line);
    share_line(&w.waker, at, (w.waits, "waits"), w.wait_ns, site_wait_ns)
}

fn blocked_by_line(b: &BlockedBy, site_wait_ns: u64) -> String {
    let at = (b.function.as_deref(), b.file.as_deref(), b.line);
    share_line(
        &b.holder,
        at,
        (b.intervals, "intervals"),
        b.wait_ns,
        site_wait_ns,
    )
}

/// The detail of one site, as lines (scrolled by the app).
pub fn detail_lines(site: &Site, threads_expanded: bool) -> Vec<Line<'static>> {
    let bold = |s: String| Line::from(Span::styled(s, Style::new().bold()));
    let mut out = Vec::new();
    let place = match (&site.file, site.line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        _ => site.module.clone().unwrap_or_default(),
    };
    out.push(bold(format!(
        "{}  {}  {place}",
        site.kind.as_str(),
        site.function.as_deref().unwrap_or("[unknown]")
    )));
    // `--lock-fn` on a saved report: what was recorded for the wrapper's site only.
    let known = |ns: u64| {
        if site.from_saved_stacks {
            "-".to_owned()
        } else {
            fmt_duration_ns(ns)
        }
    };
    out.push(Line::from(format!(
        "lock impl {}  waits {} blocked, {} total  min {}  avg {}  p50 {}  p99 {}  max {}",
        site.lock_impl,
        fmt_count(site.waits),
        fmt_duration_ns(site.total_wait_ns),
        known(site.min_wait_ns),
        fmt_duration_ns(site.avg_wait_ns),
        known(site.p50_wait_ns),
        known(site.p99_wait_ns),
        fmt_duration_ns(site.max_wait_ns),
    )));
    out.push(Line::from(format!(
        "wasted wakeups {} of {}  |  fairness over {} threads: cv {:.2}, max/min {:.1}x  |  eagain {}  timeouts {}  interrupted {}",
        fmt_count(site.wasted_wakeups),
        fmt_count(site.waits),
        site.fairness.threads,
        site.fairness.wait_cv,
        site.fairness.max_min_ratio,
        site.eagain,
        site.timeouts,
        site.interrupted,
    )));

    // Why: who held the lock while these threads waited, and what it was doing.
    let held = |id: &str| {
        site.woken_by
            .iter()
            .find(|w| w.waker == id)
            .map(|w| held_lines(&w.held))
            .unwrap_or_default()
            .into_iter()
            .map(|l| Line::from(format!("      {l}")))
    };
    if site.blocked_by.is_empty() {
        out.push(bold(
            "blocked by: the holders that woke these waits, and what they did meanwhile".to_owned(),
        ));
        if site.woken_by.is_empty() {
            out.push(Line::from("  (no waker recorded)"));
        }
        for w in &site.woken_by {
            out.push(Line::from(woken_by_line(w, site.total_wait_ns)));
            // What that waker (the holder) did meanwhile: held across blocking.
            out.extend(held(&w.waker));
        }
    } else {
        out.push(bold(
            "blocked by: the holders whose releases ended these waits' parts, and what they did meanwhile"
                .to_owned(),
        ));
        for b in &site.blocked_by {
            out.push(Line::from(blocked_by_line(b, site.total_wait_ns)));
            out.extend(held(&b.holder));
        }
        if site.blocked_by_unknown_ns > 0 {
            out.push(Line::from(format!(
                "  {}  {}  behind holders no longer known",
                fmt_duration_ns(site.blocked_by_unknown_ns),
                fmt_pct(site.blocked_by_unknown_ns, site.total_wait_ns)
            )));
        }
        out.push(bold("woken by".to_owned()));
        for w in &site.woken_by {
            out.push(Line::from(woken_by_line(w, site.total_wait_ns)));
        }
    }
    let w = &site.wake_to_run;
    if w.count > 0 {
        out.push(Line::from(format!(
            "  wake→run avg {}  max {}  over {} woken waits",
            fmt_duration_ns(w.avg_ns),
            fmt_duration_ns(w.max_ns),
            fmt_count(w.count)
        )));
    }

    let more = if site.more_stacks > 0 {
        format!(", {} more not kept", site.more_stacks)
    } else {
        String::new()
    };
    out.push(bold(format!(
        "waiter stacks ({}{more}), innermost first",
        site.stacks.len()
    )));
    for (i, s) in site.stacks.iter().enumerate() {
        out.push(Line::from(format!(
            "  #{} {} of this site's wait, {} waits",
            i + 1,
            fmt_pct(s.wait.total_wait_ns, site.total_wait_ns),
            fmt_count(s.wait.waits)
        )));
        out.extend(s.frames.iter().map(|f| Line::from(frame_line(f))));
    }
    out.push(bold("histogram of wait times".to_owned()));
    let peak = site.histogram.counts.iter().copied().max().unwrap_or(0);
    for (b, &n) in site.histogram.counts.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let lo = if b == 0 { 0 } else { 1u64 << b.min(62) };
        let bar = "█".repeat(((n * 40).div_ceil(peak.max(1))) as usize);
        out.push(Line::from(format!(
            "  ≥{:>8}  {:>7}  {bar}",
            fmt_duration_ns(lo),
            fmt_count(n)
        )));
    }

    out.push(bold(format!("lock addresses ({})", site.addresses.len())));
    for a in &site.addresses {
        out.push(Line::from(format!(
            "  {}  pid {}  {} waits  {}  {}",
            a.address,
            a.pid,
            fmt_count(a.wait.waits),
            fmt_duration_ns(a.wait.total_wait_ns),
            fmt_pct(a.wait.total_wait_ns, site.total_wait_ns),
        )));
    }

    if threads_expanded {
        out.push(bold(format!(
            "threads ({})  t: collapse",
            site.threads.len()
        )));
        for t in &site.threads {
            out.push(Line::from(format!(
                "  {} ({})  {} waits  {}  {}  max {}",
                t.name,
                t.tid,
                fmt_count(t.wait.waits),
                fmt_duration_ns(t.wait.total_wait_ns),
                fmt_pct(t.wait.total_wait_ns, site.total_wait_ns),
                fmt_duration_ns(t.wait.max_wait_ns),
            )));
        }
    } else {
        out.push(bold(format!("threads ({})  t: expand", site.threads.len())));
    }
    out
}

fn render_detail(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(site) = app.selected_site() else {
        Paragraph::new("no site selected").render(area, buf);
        return;
    };
    Paragraph::new(detail_lines(site, app.threads_expanded))
        .wrap(Wrap { trim: false })
        .scroll((app.detail_scroll, 0))
        .render(area, buf);
}

fn footer_line(app: &App) -> Line<'static> {
    if app.editing_filter {
        return Line::from(format!(
            "filter: {}▏  (Enter: keep, Esc: clear)",
            app.filter
        ));
    }
    let keys = match app.screen {
        Screen::Detail => "Esc back  ↑↓ PgUp/PgDn scroll  t threads".to_owned(),
        Screen::Table => format!(
            "↑↓ PgUp/PgDn Home/End move  Enter detail  / filter  sort {} (i: interval/total)",
            SortKey::ALL
                .iter()
                .map(|k| format!("{}:{}", k.key(), k.label()))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    let live = match app.source {
        Source::Live => "  p pause  r reset",
        Source::Replay => "",
    };
    // Status and filter first: they are what the user just did (e.g. where a save
    // went), and the key list is the part that may be cut on a narrow terminal.
    let status = app
        .status
        .as_ref()
        .map_or_else(String::new, |s| format!("{s}  |  "));
    let filter = if app.filter.is_empty() {
        String::new()
    } else {
        format!("[filter '{}']  ", app.filter)
    };
    Line::from(format!("{status}{filter}{keys}{live}  s save  q quit"))
}

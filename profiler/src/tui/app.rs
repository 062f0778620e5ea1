//! The state of `lockprof top` and its transitions.
//!
//! Owns: what the screen shows — the latest cumulative report, the per-site rows
//! derived from it (last interval and cumulative, since the start or the last reset),
//! sorting, filtering, selection, the detail pane, pause and status messages — and the
//! pure transitions [`App::handle_key`] and [`App::on_report`]. Must not: touch the
//! terminal, the kernel, files or the clock: side effects (saving, quitting) are
//! returned as an [`Action`] for `run` to perform, so every transition is unit-tested.

use std::collections::{BTreeMap, HashMap};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::report::{Report, Site};
pub use crate::tui::rows::{Row, Stats};
use crate::tui::rows::{delta, last_interval_of, location};

/// Where the reports come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A live session, one report per interval.
    Live,
    /// A saved report (`--replay FILE`).
    Replay,
}

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Table,
    Detail,
}

/// A column to sort the table by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Waits,
    Total,
    Avg,
    P99,
    Max,
    Threads,
}

impl SortKey {
    /// The key that selects this column, as shown in the footer.
    pub fn key(self) -> char {
        match self {
            Self::Waits => 'w',
            Self::Total => 't',
            Self::Avg => 'a',
            Self::P99 => '9',
            Self::Max => 'm',
            Self::Threads => 'h',
        }
    }

    pub const ALL: [SortKey; 6] = [
        Self::Waits,
        Self::Total,
        Self::Avg,
        Self::P99,
        Self::Max,
        Self::Threads,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Waits => "waits",
            Self::Total => "total",
            Self::Avg => "avg",
            Self::P99 => "p99",
            Self::Max => "max",
            Self::Threads => "threads",
        }
    }
}

/// Sort on the last interval's numbers or on the cumulative ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Interval,
    Cumulative,
}

/// What the event loop must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Write the latest report as JSON (then call [`App::set_status`]).
    Save,
    Quit,
}

/// What a live session knows besides the report: measured by `run`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveInfo {
    /// Threads per live target pid (from `/proc`); exited targets are absent.
    pub threads: BTreeMap<u32, usize>,
    /// lockprof's own user + system CPU time so far, ns.
    pub self_cpu_ns: u64,
    /// The session stopped because every target exited; the data is final.
    pub finished: bool,
    /// How long reading the kernel's maps and building this report took, ns.
    pub report_ns: Option<u64>,
}

/// The numbers of the header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    /// Length of the last interval, ns.
    pub interval_ns: u64,
    pub waits_per_sec: f64,
    /// Wait time per second of the last interval (ns/s).
    pub wait_ns_per_sec: f64,
    /// BPF program run time per second (ns/s), over the last interval (whole report
    /// when replayed).
    pub bpf_ns_per_sec: f64,
    /// lockprof's own CPU per second (ns/s); `None` when replayed.
    pub user_ns_per_sec: Option<f64>,
    /// The costs were measured over long enough to mean something.
    pub cost_known: bool,
}

/// Shortest span the cost rates are shown for.
const MIN_RATE_SPAN_NS: u64 = 100_000_000;

/// Everything `lockprof top` shows.
#[derive(Clone, Debug)]
pub struct App {
    pub source: Source,
    pub screen: Screen,
    /// The report on screen (cumulative since the session started).
    pub report: Report,
    /// The newest report, also while paused: what `s` saves.
    latest: Option<(Report, LiveInfo)>,
    pub live: LiveInfo,
    prev: Option<(Report, LiveInfo)>,
    /// Cumulative numbers at the last reset, by site id; `None`: never reset.
    baseline: Option<HashMap<String, Site>>,
    /// Timeline intervals before the last reset (hidden from the sparklines).
    pub series_offset: usize,
    pub rows: Vec<Row>,
    /// Indices into `rows` that pass the filter, in display order.
    pub visible: Vec<usize>,
    pub sort: SortKey,
    pub scope: Scope,
    pub ascending: bool,
    pub filter: String,
    pub editing_filter: bool,
    /// Position in `visible`.
    pub selected: usize,
    selected_id: Option<String>,
    /// Rows moved by PgUp/PgDn (set by `run` from the terminal height).
    pub page: usize,
    /// First line shown in the detail pane.
    pub detail_scroll: u16,
    pub paused: bool,
    pub rates: Rates,
    /// One-line message in the footer (e.g. where a report was saved).
    pub status: Option<String>,
    /// The detail pane lists the site's threads (they start collapsed: the answer to
    /// "why" is the holders and stacks above them).
    pub threads_expanded: bool,
    /// The session's end was seen (and the table switched to cumulative once).
    finished_seen: bool,
}

impl App {
    pub fn new(source: Source) -> Self {
        Self {
            source,
            screen: Screen::Table,
            report: Report::default(),
            latest: None,
            live: LiveInfo::default(),
            prev: None,
            baseline: None,
            series_offset: 0,
            rows: Vec::new(),
            visible: Vec::new(),
            sort: SortKey::Total,
            scope: Scope::Interval,
            ascending: false,
            filter: String::new(),
            editing_filter: false,
            selected: 0,
            selected_id: None,
            page: 10,
            detail_scroll: 0,
            paused: false,
            rates: Rates::default(),
            status: None,
            threads_expanded: false,
            finished_seen: false,
        }
    }

    /// A saved report, browsed in the same UI: the "last interval" is the report's
    /// last timeline interval, and the table is sorted by the cumulative columns.
    pub fn replay(report: Report) -> Self {
        let mut app = Self::new(Source::Replay);
        // A saved report's own interval columns are counts only (and absent without
        // a timeline): rank by the whole recording.
        app.scope = Scope::Cumulative;
        app.on_report(report, LiveInfo::default());
        app
    }

    /// The newest report (what `s` saves), also while paused.
    pub fn latest_report(&self) -> &Report {
        self.latest.as_ref().map_or(&self.report, |(r, _)| r)
    }

    /// The selected site of the report on screen.
    pub fn selected_site(&self) -> Option<&Site> {
        let row = &self.rows[*self.visible.get(self.selected)?];
        self.report.sites.iter().find(|s| s.id == row.id)
    }

    pub fn set_status(&mut self, status: impl Into<String>) {
        self.status = Some(status.into());
    }

    /// A new cumulative report. While paused it is kept for saving, and shown on
    /// resume; the last interval is then everything since the report shown before.
    pub fn on_report(&mut self, report: Report, live: LiveInfo) {
        if self.paused {
            self.latest = Some((report, live));
            return;
        }
        self.latest = None;
        // Once every target has exited, the last interval is all zeros: rank by what
        // happened over the whole session instead (the user can switch back with i).
        if live.finished && !self.finished_seen {
            self.finished_seen = true;
            if self.scope == Scope::Interval {
                self.scope = Scope::Cumulative;
                self.set_status("target exited: sorted by cumulative totals (i: interval)");
            }
        }
        let old = std::mem::replace(&mut self.report, report);
        let old_live = std::mem::replace(&mut self.live, live);
        // The first report of a session has nothing before it.
        if self.source == Source::Live && (old.duration_ns > 0 || !old.sites.is_empty()) {
            self.prev = Some((old, old_live));
        }
        self.recompute();
    }

    /// Apply one key. Returns what the event loop must do.
    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c' | 'q'))
        {
            return Action::Quit;
        }
        if self.editing_filter {
            self.edit_filter(key.code);
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('s') => return Action::Save,
            KeyCode::Char('p') if self.source == Source::Live => self.toggle_pause(),
            KeyCode::Char('r') if self.source == Source::Live => self.reset(),
            _ if self.screen == Screen::Detail => self.detail_key(key.code),
            _ => self.table_key(key.code),
        }
        Action::None
    }

    fn table_key(&mut self, code: KeyCode) {
        let last = self.visible.len().saturating_sub(1);
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.select(self.selected.saturating_sub(1)),
            KeyCode::Down | KeyCode::Char('j') => self.select(self.selected + 1),
            KeyCode::PageUp => self.select(self.selected.saturating_sub(self.page.max(1))),
            KeyCode::PageDown => self.select(self.selected + self.page.max(1)),
            KeyCode::Home | KeyCode::Char('g') => self.select(0),
            KeyCode::End | KeyCode::Char('G') => self.select(last),
            KeyCode::Enter if !self.visible.is_empty() => {
                self.screen = Screen::Detail;
                self.detail_scroll = 0;
                self.threads_expanded = false;
            }
            KeyCode::Char('/') => {
                self.editing_filter = true;
            }
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.apply_view();
            }
            KeyCode::Char('i') => {
                self.scope = match self.scope {
                    Scope::Interval => Scope::Cumulative,
                    Scope::Cumulative => Scope::Interval,
                };
                self.apply_view();
            }
            KeyCode::Char(c) => {
                if let Some(key) = SortKey::ALL.into_iter().find(|k| k.key() == c) {
                    // The same key again flips the order.
                    if key == self.sort {
                        self.ascending = !self.ascending;
                    } else {
                        self.sort = key;
                        self.ascending = false;
                    }
                    self.apply_view();
                }
            }
            _ => {}
        }
    }

    fn detail_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => self.screen = Screen::Table,
            KeyCode::Up | KeyCode::Char('k') => {
                self.detail_scroll = self.detail_scroll.saturating_sub(1);
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.detail_scroll = self.detail_scroll.saturating_add(1);
            }
            KeyCode::PageUp => {
                self.detail_scroll = self.detail_scroll.saturating_sub(self.page as u16);
            }
            KeyCode::PageDown => {
                self.detail_scroll = self.detail_scroll.saturating_add(self.page as u16);
            }
            KeyCode::Home => self.detail_scroll = 0,
            KeyCode::Char('t') => self.threads_expanded = !self.threads_expanded,
            _ => {}
        }
    }

    fn edit_filter(&mut self, code: KeyCode) {
        match code {
            KeyCode::Enter => self.editing_filter = false,
            KeyCode::Esc => {
                self.editing_filter = false;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => return,
        }
        self.apply_view();
    }

    fn toggle_pause(&mut self) {
        self.paused = !self.paused;
        if !self.paused
            && let Some((report, live)) = self.latest.take()
        {
            self.on_report(report, live);
        }
    }

    /// Count from now: the cumulative columns and the sparklines start over. The
    /// session itself (and a saved report) keeps everything since the start.
    fn reset(&mut self) {
        let report = self.latest.as_ref().map_or(&self.report, |(r, _)| r);
        self.baseline = Some(
            report
                .sites
                .iter()
                .map(|s| (s.id.clone(), s.clone()))
                .collect(),
        );
        self.series_offset = report.timeline.as_ref().map_or(0, |t| t.intervals.len());
        self.set_status("counters reset");
        self.recompute();
    }

    fn select(&mut self, index: usize) {
        self.selected = index.min(self.visible.len().saturating_sub(1));
        self.selected_id = self
            .visible
            .get(self.selected)
            .map(|&i| self.rows[i].id.clone());
        self.detail_scroll = 0;
    }

    /// Rebuild the rows and the header numbers from the report on screen.
    fn recompute(&mut self) {
        let prev_sites: HashMap<&str, &Site> = self
            .prev
            .iter()
            .flat_map(|(r, _)| &r.sites)
            .map(|s| (s.id.as_str(), s))
            .collect();
        self.rows = self
            .report
            .sites
            .iter()
            .map(|site| {
                // A live session's first interval is everything so far.
                let interval = match self.source {
                    Source::Replay => last_interval_of(site),
                    Source::Live => delta(prev_sites.get(site.id.as_str()).copied(), site),
                };
                let base = self.baseline.as_ref().and_then(|b| b.get(&site.id));
                let total = match (&self.baseline, base) {
                    (None, _) => delta(None, site),
                    (Some(_), base) => delta(base, site),
                };
                Row {
                    id: site.id.clone(),
                    kind: site.kind,
                    function: site.function.clone().unwrap_or_else(|| "[unknown]".into()),
                    location: location(site),
                    interval,
                    total,
                }
            })
            .collect();
        self.rates = self.rates();
        self.apply_view();
    }

    fn rates(&self) -> Rates {
        let per_sec = |v: u64, ns: u64| {
            if ns == 0 {
                0.0
            } else {
                v as f64 * 1e9 / ns as f64
            }
        };
        let last = self
            .report
            .timeline
            .as_ref()
            .and_then(|t| t.intervals.last())
            .cloned()
            .unwrap_or_default();
        let (bpf, user, span) = match &self.prev {
            Some((prev, prev_live)) if self.source == Source::Live => {
                let span = self.report.duration_ns.saturating_sub(prev.duration_ns);
                (
                    per_sec(
                        self.report
                            .probe_cost
                            .bpf_run_ns
                            .saturating_sub(prev.probe_cost.bpf_run_ns),
                        span,
                    ),
                    Some(per_sec(
                        self.live.self_cpu_ns.saturating_sub(prev_live.self_cpu_ns),
                        span,
                    )),
                    span,
                )
            }
            _ => {
                // A saved report carries lockprof's own CPU over the recording (0 in
                // reports older than the field: then it is not shown).
                let own = match self.source {
                    Source::Live => Some(self.live.self_cpu_ns),
                    Source::Replay => {
                        Some(self.report.probe_cost.lockprof_cpu_ns).filter(|&ns| ns > 0)
                    }
                };
                (
                    per_sec(self.report.probe_cost.bpf_run_ns, self.report.duration_ns),
                    own.map(|ns| per_sec(ns, self.report.duration_ns)),
                    self.report.duration_ns,
                )
            }
        };
        Rates {
            interval_ns: last.duration_ns,
            waits_per_sec: per_sec(last.waits, last.duration_ns),
            wait_ns_per_sec: per_sec(last.wait_ns, last.duration_ns),
            bpf_ns_per_sec: bpf,
            user_ns_per_sec: user,
            // A rate over the first few milliseconds (the screen drawn right after
            // attaching) is noise: the programs' warm-up, not a per-second cost.
            cost_known: span >= MIN_RATE_SPAN_NS,
        }
    }

    /// Filter and sort the rows, keeping the selected site selected.
    fn apply_view(&mut self) {
        let needle = self.filter.to_lowercase();
        let mut visible: Vec<usize> = (0..self.rows.len())
            .filter(|&i| {
                let r = &self.rows[i];
                needle.is_empty()
                    || [
                        r.function.as_str(),
                        r.location.as_str(),
                        r.kind.as_str(),
                        &r.id,
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
            })
            .collect();
        let (key, scope, asc) = (self.sort, self.scope, self.ascending);
        visible.sort_by(|&a, &b| {
            let stats = |i: usize| match scope {
                Scope::Interval => &self.rows[i].interval,
                Scope::Cumulative => &self.rows[i].total,
            };
            let (va, vb) = (stats(a).value(key), stats(b).value(key));
            let primary = if asc { va.cmp(&vb) } else { vb.cmp(&va) };
            // Ties: by cumulative wait, then id, so the order never flickers.
            primary
                .then_with(|| self.rows[b].total.wait_ns.cmp(&self.rows[a].total.wait_ns))
                .then_with(|| self.rows[a].id.cmp(&self.rows[b].id))
        });
        self.visible = visible;
        let keep = self
            .selected_id
            .as_ref()
            .and_then(|id| self.visible.iter().position(|&i| &self.rows[i].id == id));
        match keep {
            Some(pos) => self.selected = pos,
            None => self.select(self.selected),
        }
        if self.visible.is_empty() && self.screen == Screen::Detail {
            self.screen = Screen::Table;
        }
    }

    /// Wait time per interval of the whole target, since the last reset.
    pub fn total_series(&self) -> Vec<u64> {
        self.report
            .timeline
            .as_ref()
            .map(|t| {
                t.intervals
                    .iter()
                    .skip(self.series_offset)
                    .map(|i| i.wait_ns)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait time per interval of the selected site, since the last reset.
    pub fn selected_series(&self) -> Vec<u64> {
        self.selected_site()
            .map(|s| {
                s.series
                    .iter()
                    .skip(self.series_offset)
                    .map(|c| c.wait_ns)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::histogram::Log2Histogram;
    use crate::report::{IntervalCount, ThreadShare, WaitKind, WaitSummary};
    use profiler_common::hist_bucket;

    pub(crate) fn site(id: &str, func: &str, waits: u64, wait_ns: u64, tids: &[u32]) -> Site {
        let mut histogram = Log2Histogram::default();
        if waits > 0 {
            histogram.counts[hist_bucket(wait_ns / waits)] = waits;
        }
        Site {
            id: id.to_owned(),
            kind: WaitKind::Mutex,
            function: Some(func.to_owned()),
            file: Some("src/lib.rs".to_owned()),
            line: Some(42),
            waits,
            total_wait_ns: wait_ns,
            avg_wait_ns: wait_ns.checked_div(waits).unwrap_or(0),
            max_wait_ns: wait_ns.checked_div(waits).unwrap_or(0),
            p99_wait_ns: wait_ns.checked_div(waits).unwrap_or(0),
            histogram,
            threads: tids
                .iter()
                .map(|&tid| ThreadShare {
                    pid: 1,
                    tid,
                    name: format!("w{tid}"),
                    wait: WaitSummary {
                        waits: waits / tids.len() as u64,
                        total_wait_ns: wait_ns / tids.len() as u64,
                        max_wait_ns: 0,
                    },
                })
                .collect(),
            series: vec![IntervalCount { waits, wait_ns }],
            ..Site::default()
        }
    }

    fn report(at_ns: u64, sites: Vec<Site>) -> Report {
        Report {
            duration_ns: at_ns,
            sites,
            ..Report::default()
        }
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::from(KeyCode::Char(c))
    }

    fn code(c: KeyCode) -> KeyEvent {
        KeyEvent::from(c)
    }

    fn live(reports: Vec<Report>) -> App {
        let mut app = App::new(Source::Live);
        for r in reports {
            app.on_report(r, LiveInfo::default());
        }
        app
    }

    fn functions(app: &App) -> Vec<&str> {
        app.visible
            .iter()
            .map(|&i| app.rows[i].function.as_str())
            .collect()
    }

    #[test]
    fn empty_state_has_no_rows_and_ignores_navigation() {
        let mut app = App::new(Source::Live);
        for k in [
            code(KeyCode::Down),
            code(KeyCode::End),
            code(KeyCode::Enter),
        ] {
            assert_eq!(app.handle_key(k), Action::None);
        }
        assert!(app.rows.is_empty());
        assert_eq!(app.screen, Screen::Table);
        assert!(app.selected_site().is_none());
    }

    #[test]
    fn interval_columns_are_the_difference_of_two_reports() {
        let app = live(vec![
            report(1_000_000_000, vec![site("a", "f", 10, 10_000, &[1, 2])]),
            report(2_000_000_000, vec![site("a", "f", 30, 50_000, &[1, 2])]),
        ]);
        let row = &app.rows[0];
        assert_eq!((row.interval.waits, row.interval.wait_ns), (20, 40_000));
        assert_eq!(row.interval.avg_ns, 2_000);
        assert_eq!((row.total.waits, row.total.wait_ns), (30, 50_000));
        assert_eq!(row.interval.threads, Some(2));
    }

    #[test]
    fn interval_max_is_exact_when_a_new_maximum_was_set() {
        let before = site("a", "f", 10, 10_000, &[1]);
        let mut now = site("a", "f", 11, 10_000 + 5_000_000, &[1]);
        now.max_wait_ns = 5_000_000;
        now.histogram.counts[hist_bucket(5_000_000)] += 1;
        assert_eq!(delta(Some(&before), &now).max_ns, Some(5_000_000));
        // No new maximum: the bound of the highest bucket hit, capped at the max.
        let mut later = now.clone();
        later.waits += 1;
        later.histogram.counts[hist_bucket(1_000)] += 1;
        let d = delta(Some(&now), &later);
        assert_eq!(d.waits, 1);
        // 1 µs falls in [512, 1024) ns.
        assert_eq!(d.max_ns, Some(1_024));
    }

    #[test]
    fn sort_keys_switch_column_and_repeat_flips_order() {
        let mut app = live(vec![report(
            1,
            vec![
                site("a", "few_long", 2, 2_000_000, &[1]),
                site("b", "many_short", 100, 100_000, &[1, 2, 3]),
            ],
        )]);
        assert_eq!(functions(&app), ["few_long", "many_short"]);
        app.handle_key(key('w'));
        assert_eq!(functions(&app), ["many_short", "few_long"]);
        app.handle_key(key('w'));
        assert_eq!(functions(&app), ["few_long", "many_short"]);
        app.handle_key(key('h'));
        assert_eq!(functions(&app), ["many_short", "few_long"]);
        assert_eq!(app.sort, SortKey::Threads);
        app.handle_key(key('i'));
        assert_eq!(app.scope, Scope::Cumulative);
    }

    #[test]
    fn filter_edits_narrow_the_rows_and_esc_clears() {
        let mut app = live(vec![report(
            1,
            vec![
                site("a", "Store::writer", 2, 20, &[1]),
                site("b", "Cache::get", 1, 10, &[1]),
            ],
        )]);
        for k in [key('/'), key('c'), key('a'), key('C')] {
            app.handle_key(k);
        }
        assert!(app.editing_filter);
        assert_eq!(functions(&app), ["Cache::get"]);
        // While editing, letters are text, not commands.
        assert_eq!(app.handle_key(key('q')), Action::None);
        app.handle_key(code(KeyCode::Backspace));
        app.handle_key(code(KeyCode::Enter));
        assert!(!app.editing_filter);
        assert_eq!(app.filter, "caC");
        app.handle_key(code(KeyCode::Esc));
        assert_eq!(functions(&app).len(), 2);
    }

    #[test]
    fn selection_follows_the_site_across_updates_and_clamps() {
        let mut app = live(vec![report(
            1,
            vec![
                site("a", "first", 9, 90, &[1]),
                site("b", "second", 1, 10, &[1]),
            ],
        )]);
        app.handle_key(code(KeyCode::Down));
        assert_eq!(app.selected_site().unwrap().id, "b");
        // b becomes the hottest: still selected, now at the top.
        app.on_report(
            report(
                2,
                vec![
                    site("a", "first", 9, 90, &[1]),
                    site("b", "second", 50, 5_000, &[1]),
                ],
            ),
            LiveInfo::default(),
        );
        assert_eq!(app.selected, 0);
        assert_eq!(app.selected_site().unwrap().id, "b");
        app.handle_key(code(KeyCode::PageDown));
        assert_eq!(app.selected, 1);
        app.handle_key(code(KeyCode::Home));
        assert_eq!(app.selected, 0);
        app.handle_key(code(KeyCode::End));
        assert_eq!(app.selected, 1);
    }

    #[test]
    fn enter_opens_the_detail_and_esc_goes_back() {
        let mut app = live(vec![report(1, vec![site("a", "f", 1, 1, &[1])])]);
        app.handle_key(code(KeyCode::Enter));
        assert_eq!(app.screen, Screen::Detail);
        app.handle_key(code(KeyCode::Down));
        assert_eq!(app.detail_scroll, 1);
        app.handle_key(code(KeyCode::Esc));
        assert_eq!(app.screen, Screen::Table);
    }

    #[test]
    fn pause_freezes_the_screen_but_save_gets_the_newest() {
        let mut app = live(vec![report(1, vec![site("a", "f", 1, 1, &[1])])]);
        app.handle_key(key('p'));
        app.on_report(
            report(2, vec![site("a", "f", 5, 5, &[1])]),
            LiveInfo::default(),
        );
        assert_eq!(app.rows[0].total.waits, 1);
        assert_eq!(app.latest_report().duration_ns, 2);
        assert_eq!(app.handle_key(key('s')), Action::Save);
        app.handle_key(key('p'));
        assert_eq!(app.rows[0].total.waits, 5);
    }

    #[test]
    fn reset_restarts_the_cumulative_columns() {
        let mut app = live(vec![report(1, vec![site("a", "f", 10, 100, &[1])])]);
        app.handle_key(key('r'));
        assert_eq!(app.rows[0].total.waits, 0);
        app.on_report(
            report(2, vec![site("a", "f", 12, 160, &[1])]),
            LiveInfo::default(),
        );
        assert_eq!(
            (app.rows[0].total.waits, app.rows[0].total.wait_ns),
            (2, 60)
        );
        assert_eq!(app.status.as_deref(), Some("counters reset"));
    }

    #[test]
    fn after_the_target_exits_the_table_ranks_by_cumulative_totals() {
        let mut app = live(vec![
            report(
                1_000_000_000,
                vec![
                    site("a", "big", 100, 900_000_000, &[1]),
                    site("b", "late", 1, 1_000_000, &[2]),
                ],
            ),
            report(
                2_000_000_000,
                vec![
                    site("a", "big", 100, 900_000_000, &[1]),
                    site("b", "late", 5, 5_000_000, &[2]),
                ],
            ),
        ]);
        // While running: the last interval ranks 'late' (it waited in it) first.
        assert_eq!(app.scope, Scope::Interval);
        assert_eq!(functions(&app), ["late", "big"]);
        let mut end = app.report.clone();
        end.duration_ns = 3_000_000_000;
        app.on_report(
            end.clone(),
            LiveInfo {
                finished: true,
                ..LiveInfo::default()
            },
        );
        assert_eq!(app.scope, Scope::Cumulative);
        assert_eq!(functions(&app), ["big", "late"]);
        assert!(
            app.status
                .as_deref()
                .is_some_and(|s| s.contains("cumulative"))
        );
        // The user's choice afterwards sticks.
        app.handle_key(key('i'));
        app.on_report(
            end,
            LiveInfo {
                finished: true,
                ..LiveInfo::default()
            },
        );
        assert_eq!(app.scope, Scope::Interval);
    }

    #[test]
    fn threads_start_collapsed_and_t_expands_them() {
        let mut app = live(vec![report(
            1_000_000_000,
            vec![site("a", "f", 3, 3_000, &[1, 2])],
        )]);
        app.handle_key(code(KeyCode::Enter));
        assert!(!app.threads_expanded);
        app.handle_key(key('t'));
        assert!(app.threads_expanded);
        app.handle_key(code(KeyCode::Esc));
        app.handle_key(code(KeyCode::Enter));
        assert!(!app.threads_expanded, "a new detail starts collapsed");
    }

    #[test]
    fn quit_keys_and_replay_ignores_live_only_keys() {
        let mut app = App::replay(report(1, vec![site("a", "f", 3, 30, &[1])]));
        assert_eq!(app.handle_key(key('p')), Action::None);
        assert!(!app.paused);
        // Replay: the last interval comes from the site's series.
        assert_eq!(app.rows[0].interval.waits, 3);
        assert_eq!(app.rows[0].interval.p99_ns, None);
        assert_eq!(app.handle_key(key('q')), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.handle_key(ctrl_c), Action::Quit);
    }

    #[test]
    fn header_rates_come_from_the_last_interval_and_the_cost_delta() {
        let mut first = report(1_000_000_000, vec![]);
        first.probe_cost.bpf_run_ns = 10_000_000;
        let mut second = report(2_000_000_000, vec![]);
        second.probe_cost.bpf_run_ns = 30_000_000;
        second.timeline = Some(crate::report::Timeline {
            interval_ns: 1_000_000_000,
            intervals: vec![crate::report::Interval {
                start_ns: 1_000_000_000,
                duration_ns: 500_000_000,
                waits: 50,
                wait_ns: 250_000_000,
                ..crate::report::Interval::default()
            }],
        });
        let mut app = App::new(Source::Live);
        app.on_report(
            first,
            LiveInfo {
                self_cpu_ns: 1_000_000,
                ..LiveInfo::default()
            },
        );
        app.on_report(
            second,
            LiveInfo {
                self_cpu_ns: 6_000_000,
                ..LiveInfo::default()
            },
        );
        assert!((app.rates.waits_per_sec - 100.0).abs() < 1e-9);
        assert!((app.rates.wait_ns_per_sec - 500_000_000.0).abs() < 1e-3);
        assert!((app.rates.bpf_ns_per_sec - 20_000_000.0).abs() < 1e-3);
        assert_eq!(app.rates.user_ns_per_sec, Some(5_000_000.0));
        assert!(app.rates.cost_known);
        // Right after attaching, there is no rate to show yet.
        let mut early = App::new(Source::Live);
        early.on_report(report(5_000_000, vec![]), LiveInfo::default());
        assert!(!early.rates.cost_known);
    }
}

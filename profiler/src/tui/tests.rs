//! Whole-screen snapshots of `lockprof top`, rendered with ratatui's `TestBackend`
//! from the recorded report fixture (`profiler/tests/fixtures/report-sample.json`).

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

use crate::analyze::timeline::TimelineBuilder;
use crate::report::{Report, Site, json};
use crate::tui::app::{App, LiveInfo, Source};

fn fixture() -> Report {
    json::from_str(
        include_str!("../../tests/fixtures/report-sample.json"),
        "report-sample.json",
    )
    .expect("the fixture is a report")
}

/// The fixture as a live session would have shown it after three intervals: each
/// cumulative report a third, two thirds, then all of the fixture's waits.
fn live_app(report: &Report) -> App {
    let mut timeline = TimelineBuilder::new(Duration::from_secs(1));
    let mut app = App::new(Source::Live);
    for step in 1..=3u64 {
        let mut r = report.clone();
        r.duration_ns = step * 1_000_000_000;
        r.probe_cost.bpf_run_ns = step * 2_000_000;
        for s in &mut r.sites {
            s.waits = s.waits * step / 3;
            s.total_wait_ns = s.total_wait_ns * step / 3;
            for c in &mut s.histogram.counts {
                *c = *c * step / 3;
            }
            for t in &mut s.threads {
                t.wait.waits = t.wait.waits * step / 3;
            }
        }
        r.totals.waits = r.totals.waits * step / 3;
        r.totals.wait_ns = r.totals.wait_ns * step / 3;
        timeline.push(&r);
        timeline.apply(&mut r);
        app.on_report(
            r,
            LiveInfo {
                threads: r_threads(report),
                self_cpu_ns: step * 5_000_000,
                finished: false,
                report_ns: Some(1_500_000),
            },
        );
    }
    app
}

fn r_threads(report: &Report) -> std::collections::BTreeMap<u32, usize> {
    report.targets.iter().map(|t| (t.pid, 7)).collect()
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| f.render_widget(app, f.area()))
        .expect("draw");
    terminal.backend().to_string()
}

fn press(app: &mut App, keys: &[KeyCode]) {
    for &k in keys {
        app.handle_key(KeyEvent::from(k));
    }
}

#[test]
fn empty_state() {
    insta::assert_snapshot!(screen(&App::new(Source::Live), 100, 16));
}

#[test]
fn live_table_from_the_fixture() {
    let app = live_app(&fixture());
    insta::assert_snapshot!(screen(&app, 160, 24));
}

#[test]
fn many_sites_scroll_with_the_selection() {
    let base = fixture();
    let mut report = base.clone();
    report.sites = (0..40u64)
        .map(|i| Site {
            id: format!("mutex|m|f{i}|src/many.rs:{i}"),
            function: Some(format!("many::Sites::f{i:02}")),
            file: Some("src/many.rs".to_owned()),
            line: Some(i as u32 + 1),
            waits: 100 + i,
            total_wait_ns: (i + 1) * 1_000_000,
            series: Vec::new(),
            ..base.sites[0].clone()
        })
        .collect();
    let mut app = live_app(&report);
    press(
        &mut app,
        &[KeyCode::PageDown, KeyCode::PageDown, KeyCode::Down],
    );
    insta::assert_snapshot!(screen(&app, 160, 20));
}

#[test]
fn long_names_are_cut_not_wrapped() {
    let mut report = fixture();
    let long = "very_long_crate_name::deeply::nested::module::path::with::generic::Type::method_with_a_really_long_name";
    report.sites[0].function = Some(long.to_owned());
    report.sites[0].file = Some(format!("/{}/src/file.rs", "directory".repeat(12)));
    report.targets[0].comm = "a-very-long-comm".to_owned();
    let app = live_app(&report);
    insta::assert_snapshot!(screen(&app, 120, 14));
}

#[test]
fn detail_of_the_hottest_site() {
    let mut app = live_app(&fixture());
    press(&mut app, &[KeyCode::Enter]);
    insta::assert_snapshot!(screen(&app, 140, 40));
}

#[test]
fn filter_and_replay_of_a_saved_report() {
    let mut app = App::replay(fixture());
    press(
        &mut app,
        &[
            KeyCode::Char('/'),
            KeyCode::Char('w'),
            KeyCode::Char('a'),
            KeyCode::Char('i'),
            KeyCode::Char('t'),
            KeyCode::Enter,
        ],
    );
    insta::assert_snapshot!(screen(&app, 160, 16));
}

#[test]
fn tiny_terminals_do_not_panic() {
    let app = live_app(&fixture());
    let mut detail = app.clone();
    press(&mut detail, &[KeyCode::Enter]);
    for (w, h) in [(0, 0), (1, 1), (10, 3), (20, 5), (40, 8), (200, 2)] {
        for a in [&app, &detail] {
            let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
            a.render(buf.area, &mut buf);
        }
    }
    insta::assert_snapshot!(screen(&app, 40, 8));
}

/// The site column gets its room first at every width; the numbers that do not fit
/// are dropped, the sorted set (interval here) kept.
#[test]
fn table_at_80_columns() {
    insta::assert_snapshot!(screen(&live_app(&fixture()), 80, 16));
}

#[test]
fn table_at_120_columns() {
    insta::assert_snapshot!(screen(&live_app(&fixture()), 120, 16));
}

#[test]
fn table_at_200_columns() {
    insta::assert_snapshot!(screen(&live_app(&fixture()), 200, 16));
}

/// `i` switches the shown (and sorted) set to the cumulative one on a narrow screen.
#[test]
fn table_at_120_columns_cumulative() {
    let mut app = live_app(&fixture());
    press(&mut app, &[KeyCode::Char('i')]);
    insta::assert_snapshot!(screen(&app, 120, 16));
}

/// After the target exits, the last interval is empty: the table ranks by the
/// cumulative totals and says so.
#[test]
fn table_after_the_target_exited() {
    let report = fixture();
    let mut app = live_app(&report);
    let mut end = app.report.clone();
    end.duration_ns += 1_000_000_000;
    app.on_report(
        end,
        LiveInfo {
            threads: r_threads(&report),
            finished: true,
            ..LiveInfo::default()
        },
    );
    insta::assert_snapshot!(screen(&app, 120, 16));
}

/// The detail answers "why" first (the holders that woke the waits and what they did),
/// then stacks; threads come last, collapsed until `t`.
#[test]
fn detail_at_120_columns_with_threads_expanded() {
    let mut app = live_app(&fixture());
    press(&mut app, &[KeyCode::Enter, KeyCode::Char('t')]);
    insta::assert_snapshot!(screen(&app, 120, 60));
}

#[test]
fn header_shows_the_kernel_memory_the_probe_holds() {
    let mut report = fixture();
    report.probe_cost.kernel_memory_bytes = 74 * 1_048_576;
    let app = App::replay(report);
    let text = screen(&app, 200, 20);
    assert!(
        text.contains("kernel memory 74.0 MiB"),
        "header should carry the maps' kernel memory:\n{text}"
    );
    // Reports without the figure (older files) say nothing about it.
    assert!(!screen(&App::replay(fixture()), 200, 20).contains("kernel memory"));
}

#[test]
fn header_says_when_the_probes_bpf_time_was_not_measured() {
    let mut report = fixture();
    assert!(report.probe_cost.run_time_measured());
    assert!(!screen(&App::replay(report.clone()), 200, 20).contains("not measured"));
    report.probe_cost.bpf_run_ns = 0;
    report.probe_cost.bpf_runs = 0;
    let text = screen(&App::replay(report), 200, 20);
    assert!(
        text.contains("lockprof cost: BPF not measured (--probe-time)"),
        "the header must not show a BPF time of zero as measured:\n{text}"
    );
}

#[test]
fn a_replayed_report_shows_lockprofs_own_cpu_when_it_carries_it() {
    let mut report = fixture();
    // Older reports lack the figure: only the BPF average is shown.
    assert!(!screen(&App::replay(report.clone()), 200, 20).contains("userspace CPU"));
    report.probe_cost.lockprof_cpu_ns = report.duration_ns / 200;
    let text = screen(&App::replay(report), 200, 20);
    assert!(
        text.contains("userspace CPU 5.00ms/s"),
        "the header should carry lockprof's own CPU per second:\n{text}"
    );
}

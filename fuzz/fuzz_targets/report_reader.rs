//! Fuzz target: the report reader, and everything that consumes what it accepts.
//!
//! A report file is user input (`lockprof report|diff|check|flamegraph FILE`, `top
//! --replay FILE`): reading arbitrary bytes must give a report or a `ReportFileError`,
//! never a panic, and every report it accepts must render as text, load into the live
//! view and draw at several sizes, diff, check against a budget, fold, draw as an SVG
//! flame graph and export to pprof without panicking either. Seeds:
//! `fuzz/seeds/report_reader/` (the fixture reports).
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::ci::budget;
use profiler::ci::diff::{self, RenderOptions};
use profiler::export::{flamegraph, folded, pprof};
use profiler::render::text::{self, TextOptions};
use profiler::report::json;
use profiler::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

/// One rule of every kind, with patterns that match common names.
const BUDGET: &str = r#"
[total]
max_wait_per_sec = "1ms"
max_contention_per_sec = "1ms"
[[site]]
match = "*"
max_p99 = "1us"
max_wait = "1us"
max_total_wait = "1us"
max_wait_per_sec = "1us"
max_share = "1%"
[[forbid]]
match = "a"
[baseline]
max_regression = "0%"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(report) = json::from_str(text, "fuzz.json") else {
        return;
    };
    // lockprof reads back what it writes of any report it accepted.
    json::from_str(&json::to_string(&report), "again.json").expect("reads its own output");

    for opts in [
        TextOptions::default(),
        TextOptions {
            max_sites: 1,
            stacks: false,
            expand_lock_frames: true,
            ..TextOptions::default()
        },
    ] {
        let _ = text::render(&report, &opts);
    }

    // `top --replay`: load, draw at a narrow and a wide size, open a site's detail.
    let mut app = App::replay(report.clone());
    for (w, h) in [(80, 24), (200, 50), (10, 3)] {
        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
        (&app).render(buf.area, &mut buf);
    }
    for code in [KeyCode::Down, KeyCode::Enter, KeyCode::Char('t')] {
        app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
        let mut buf = Buffer::empty(Rect::new(0, 0, 120, 40));
        (&app).render(buf.area, &mut buf);
    }

    let d = diff::diff(&report, "a", &report, "b", diff::GateRules::default());
    let _ = diff::to_text(&d, RenderOptions::default());
    let _ = diff::to_markdown(&d, RenderOptions::default());
    let _ = diff::to_json(&d);

    let budget = budget::parse(BUDGET, "fuzz.toml").expect("the fuzz budget parses");
    let baseline = budget::Baseline {
        report: &report,
        name: "base",
        rules: budget.gate_rules(diff::GateOverrides::default()),
    };
    let eval = budget::evaluate(&budget, &report, "r", Some("b"), Some(baseline));
    let _ = budget::render(&eval);

    let waits = folded::waits(&report);
    let _ = waits.to_text();
    let _ = folded::wakers(&report).to_text();
    let mut svg = Vec::new();
    flamegraph::write_svg(&waits, flamegraph::Weight::WaitNs, Some("fuzz"), &mut svg)
        .expect("an SVG into memory cannot fail");
    let bytes = pprof::to_gzip(&pprof::waits(&report));
    let back = pprof::from_bytes(&bytes).expect("our own pprof decodes");
    let _ = pprof::to_text(&back);
    let _ = pprof::wakers(&report);
});

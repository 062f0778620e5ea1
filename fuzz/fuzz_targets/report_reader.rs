//! Fuzz target: the report reader, and everything that consumes what it accepts.
//!
//! A report file is user input (`lockprof report|diff|check|flamegraph FILE`): reading
//! arbitrary bytes must give a report or a `ReportFileError`, never a panic, and every
//! report it accepts must diff, check against a budget, fold and export to pprof
//! without panicking either. Seeds: `fuzz/seeds/report_reader/` (the fixture reports).
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::ci::budget;
use profiler::ci::diff::{self, RenderOptions};
use profiler::export::{folded, pprof};
use profiler::report::json;

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

    let _ = folded::waits(&report).to_text();
    let _ = folded::wakers(&report).to_text();
    let bytes = pprof::to_gzip(&pprof::waits(&report));
    let back = pprof::from_bytes(&bytes).expect("our own pprof decodes");
    let _ = pprof::to_text(&back);
    let _ = pprof::wakers(&report);
});

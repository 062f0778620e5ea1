//! Fuzz target: the budget-file parser (`lockprof check --budget FILE`,
//! `record --check FILE`) and the duration and percentage grammar it shares with the
//! command line.
//!
//! Arbitrary text must give a budget or a one-line `BudgetError`, never a panic; every
//! budget it accepts must evaluate against a real report (with itself as baseline)
//! and render. Seeds: `fuzz/seeds/budget_parser/` (the budget files of the docs and
//! tests).
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::ci::budget;
use profiler::ci::diff;
use profiler::report::json;
use profiler::units;

/// A real report with sites, waits and a timeline.
const REPORT: &str = include_str!("../../profiler/tests/fixtures/report-sample.json");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The value grammar on its own: an answer or a one-line error.
    for parsed in [
        units::parse_duration_ns(text).err(),
        units::parse_percent(text).err(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!parsed.contains('\n'), "multi-line error: {parsed}");
    }
    let budget = match budget::parse(text, "fuzz.toml") {
        Ok(b) => b,
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "multi-line error: {message}");
            return;
        }
    };
    let report = json::from_str(REPORT, "sample.json").expect("the sample report reads");
    // The budget's [baseline] keys become the gate's rules, as `check --baseline` uses them.
    let baseline = budget::Baseline {
        report: &report,
        name: "base",
        rules: budget.gate_rules(diff::GateOverrides::default()),
    };
    let eval = budget::evaluate(&budget, &report, "r", Some("b"), Some(baseline));
    let _ = budget::render(&eval);
    let _ = budget::to_json(&eval);
});

//! Budgets: the limits `lockprof check` and `lockprof record --check` hold a report to.
//!
//! Owns: the budget file (TOML, every key documented in `docs/ci.md`, "Budget file"),
//! reading it with one-line errors that name the file, line and key, evaluating a
//! report — and, with a baseline, its regressions — against it, and the list of
//! breaches, one line each. Must not: read report files or pick exit codes (`cli`
//! does both), match sites across runs itself (`identity` does), or judge a
//! regression itself (`gate` does, through `diff`).
//!
//! ```toml
//! [total]
//! max_contention_per_sec = "20ms"   # lock contention per second of recording
//!
//! [[site]]
//! match = "Store::writer"           # substring, or glob with * and ?
//! max_p99 = "5ms"
//! max_share = "30%"
//!
//! [[forbid]]
//! match = "*::Cache::*"
//! above = "10ms"                    # total wait
//!
//! [baseline]
//! max_regression = "20%"            # with --baseline FILE
//! ```
//!
//! Split by concern: `file` (the TOML file, its value grammar and errors), `pattern`
//! (which sites a `match` names), `eval` (a report against a budget and a baseline),
//! `render` (the result as text and JSON).

mod eval;
mod file;
mod pattern;
mod render;

pub use eval::{Baseline, Breach, Evaluation, evaluate};
pub use file::{
    BaselineRules, Budget, BudgetError, Duration, ForbidRule, Percent, SiteRule, TotalRules,
    fmt_percent, load, parse, parse_duration_ns, parse_percent,
};
pub use pattern::Pattern;
pub use render::{render, to_json};

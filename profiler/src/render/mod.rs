//! Rendering a report for people: the text report, its tables, and the one home of
//! the formatting helpers (units, counts, names) every other output uses.
//!
//! Owns: turning a `Report` into text (`text`), saying what a holder did (`held`), blocked time by kind (`kinds`),
//! and — re-exported from the `profiler-fmt` crate, which xtask shares — the human
//! units (`units`), name and path shortening (`names`) and column fitting (`fit`).
//! Must not: compute anything the report does not hold (analysis is `analyze`'s), read
//! files or touch the terminal.

pub use profiler_fmt::{fit, names, units};

pub mod held;
pub mod kinds;
pub mod text;

//! Rendering a report for people: the text report, its tables, and the one home of
//! the formatting helpers (units, counts, names) every other output uses.
//!
//! Owns: turning a `Report` into text. Must not: compute anything the report does not
//! hold (analysis is `analyze`'s), read files or touch the terminal.

pub mod kinds;
pub mod text;

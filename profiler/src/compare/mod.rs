//! Comparing two reports: which site of one is which site of the other (`identity`),
//! and what changed between them (`diff`).
//!
//! Owns: cross-run matching and the diff model with its text, markdown and JSON
//! renderings. Must not: read files (callers go through `report::json::read`) or
//! decide pass/fail — budgets and exit codes are `budget`'s.

pub mod diff;
pub mod identity;

//! CI on saved reports: which site of one run is which site of another (`identity`),
//! the one judgement of a change shared by `diff` and `check --baseline` (`gate`), what
//! changed between two runs (`diff`), and whether a run is within its budget
//! (`budget`).
//!
//! Owns: cross-run matching, the gate rules, the diff model with its text, markdown
//! and JSON renderings, budget files and their verdicts. Must not: read report files
//! (callers go through `report::json::read`), touch the kernel, or render a single
//! report (that is `render`'s).

pub mod budget;
pub mod diff;
pub mod gate;
pub mod identity;

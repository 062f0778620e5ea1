//! lockprof: a lock-contention profiler for Linux.
//!
//! The pipeline runs one way, one folder per stage (see ARCHITECTURE.md):
//! `collect` (eBPF probes, the only module touching aya; yields a
//! [`collect::snapshot::Snapshot`]) → `resolve` (stack repair, unwinding, symbolization)
//! → `analyze` (lock site and kind of each wait, the pure fold into a
//! [`report::Report`]) → `report` (the model and its JSON) → `render` (text for
//! people). `session` drives a live recording (targets, memory maps, the `Session`);
//! `cli` is the command line, `tui` the live view.
//!
//! On saved reports: `ci` matches sites across runs, diffs two reports and checks
//! budgets; `export` writes folded stacks, flame graphs and pprof.

pub mod analyze;
pub mod ci;
pub mod cli;
pub mod collect;
pub mod exit;
pub mod export;
pub mod render;
pub mod report;
pub mod resolve;
pub mod session;
pub mod tui;
pub mod units;

#[cfg(test)]
pub(crate) mod test_support;

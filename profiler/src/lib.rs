//! lockprof: a lock-contention profiler for Linux.
//!
//! The pipeline runs one way:
//! `collect` (eBPF probes, the only module touching aya) → [`snapshot::Snapshot`] →
//! `unwind` (copied user stacks → return addresses, from the modules' CFI) →
//! `symbolize` (raw stacks → frames, from maps captured by `procmaps`) → `attribute`
//! (frame → lock site and kind) → `aggregate` (pure fold into a [`report::Report`]) →
//! `report::text` / `report::json`. `record` sequences a live session; `process` owns
//! the targets (attach, launch, signals); `cli` is the command line.
//!
//! For CI, on saved reports: `compare` matches sites across runs and diffs two
//! reports, `budget` checks a report against a budget file, `export` writes folded
//! stacks, flame graphs and pprof.

pub mod aggregate;
pub mod attribute;
pub mod budget;
pub mod cli;
pub mod collect;
pub mod compare;
pub mod export;
pub mod histogram;
pub mod process;
pub mod procmaps;
pub mod record;
pub mod report;
pub mod snapshot;
pub mod stack_repair;
pub mod symbolize;
pub mod syscalls;
pub mod timeline;
pub mod tui;
pub mod unwind;

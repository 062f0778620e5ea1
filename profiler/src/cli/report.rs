//! `lockprof report`: render a saved report again.
//!
//! Owns: reading the file (bad input when unreadable), `--lock-fn` on it, and printing
//! it. Must not:
//! format (`render`, `report::json`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::{LockFnArgs, RenderArgs};
use super::output::{print_report, read_report};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lockprof report run.json\n  \
lockprof report run.json --format json --top 5\n  \
lockprof report pg.json --lock-fn ProcSleep --lock-fn WaitOnLock --lock-fn 'LockAcquire*'\n\n\
--lock-fn re-attributes sites past a wrapper from the stacks the report keeps: each caller \
gets its exact waits and total; per-site histograms, threads and wakers cannot be divided \
and are shown as '-' (record with --lock-fn for them).")]
pub struct ReportArgs {
    /// A report written by `lockprof record -o`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub lock_fns: LockFnArgs,
}

/// Prints the report; returns the exit code.
pub fn run(args: &ReportArgs) -> Result<i32> {
    let report = args.lock_fns.apply(read_report(&args.file)?, &args.file);
    print_report(&report, &args.render)?;
    Ok(0)
}

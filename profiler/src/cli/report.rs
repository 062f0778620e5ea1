//! `lockprof report`: render a saved report again.
//!
//! Owns: reading the file (bad input when unreadable) and printing it. Must not:
//! format (`render`, `report::json`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::RenderArgs;
use super::output::{print_report, read_report};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockprof report run.json\n  lockprof report run.json --format json --top 5"
)]
pub struct ReportArgs {
    /// A report written by `lockprof record -o`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub render: RenderArgs,
}

/// Prints the report; returns the exit code.
pub fn run(args: &ReportArgs) -> Result<i32> {
    let report = read_report(&args.file)?;
    print_report(&report, &args.render)?;
    Ok(0)
}

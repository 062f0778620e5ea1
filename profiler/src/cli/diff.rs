//! `lockprof diff`: what changed between two saved reports.
//!
//! Owns: the options and printing the diff. Must not: match sites or judge changes
//! (`ci::diff`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::args::LockFnArgs;
use super::gate::GateArgs;
use super::output::{read_report, write_stdout};
use crate::ci::budget::{self, Budget};
use crate::ci::diff::{self as diffing, RenderOptions};
use crate::exit::input_error;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lockprof diff base.json new.json\n  \
lockprof diff base.json new.json --format markdown > comment.md\n  \
lockprof diff base.json new.json --lock-fn LWLockAcquire   compare the wrapper's callers\n\n\
Sites are matched by kind, module, function and file:line, never by address; a site that \
moved up to 10 lines in the same function is still matched (shown as 'moved from line N'). \
Changes are judged on wait per second of recording; see docs/ci.md.")]
pub struct DiffArgs {
    /// The earlier report (e.g. from the main branch).
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The later report (e.g. from the pull request).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Output format on stdout (markdown is for a pull-request comment).
    #[arg(short, long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Sites listed per section in text and markdown (JSON lists all).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Read the judging rules from this budget file's [baseline] keys (as `check`).
    #[arg(long, value_name = "FILE")]
    pub budget: Option<PathBuf>,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Applied to both reports before they are compared.
    #[command(flatten)]
    pub lock_fns: LockFnArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
}

/// Prints the diff; returns the exit code.
pub fn run(args: &DiffArgs) -> Result<i32> {
    let rules = match &args.budget {
        Some(path) => budget::load(path)
            .map_err(input_error)?
            .gate_rules(args.gate.overrides()),
        None => Budget::default().gate_rules(args.gate.overrides()),
    };
    let base = args.lock_fns.apply(read_report(&args.base)?, &args.base);
    let new = args.lock_fns.apply(read_report(&args.new)?, &args.new);
    let diff = diffing::diff(
        &base,
        &args.base.display().to_string(),
        &new,
        &args.new.display().to_string(),
        rules,
    );
    let render = RenderOptions {
        max_sites: args.top,
    };
    let out = match args.format {
        DiffFormat::Text => diffing::to_text(&diff, render),
        DiffFormat::Markdown => diffing::to_markdown(&diff, render),
        DiffFormat::Json => diffing::to_json(&diff),
    };
    write_stdout(out.as_bytes(), "the diff")?;
    Ok(0)
}

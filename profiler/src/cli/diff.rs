//! `lockprof diff`: what changed between two saved reports.
//!
//! Owns: the options and printing the diff. Must not: match sites or judge changes
//! (`ci::diff`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::args::parse_percent;
use super::output::{read_report, write_stdout};
use crate::ci::diff::{self as diffing, DiffOptions, RenderOptions};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lockprof diff base.json new.json\n  \
lockprof diff base.json new.json --format markdown > comment.md\n\n\
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
    /// Smallest change in wait per second that counts as improved or regressed.
    #[arg(long, default_value = "10%", value_parser = parse_percent, value_name = "PCT")]
    pub threshold: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
}

/// Prints the diff; returns the exit code.
pub fn run(args: &DiffArgs) -> Result<i32> {
    let base = read_report(&args.base)?;
    let new = read_report(&args.new)?;
    let diff = diffing::diff(
        &base,
        &args.base.display().to_string(),
        &new,
        &args.new.display().to_string(),
        DiffOptions {
            threshold: args.threshold,
        },
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

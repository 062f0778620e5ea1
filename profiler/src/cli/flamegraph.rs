//! `lockprof flamegraph`: a saved report's stacks as an SVG flame graph, folded
//! stacks or a pprof profile.
//!
//! Owns: the options and where the bytes go. Must not: fold or draw (`export`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};

use super::args::LockFnArgs;
use super::output::{read_report, write_stdout};
use crate::exit::input_error;
use crate::export::coverage::{Coverage, FULL_PATH_GOAL};
use crate::export::{flamegraph, folded, pprof};
use crate::render::units::fmt_pct;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lockprof flamegraph run.json -o waits.svg\n  \
lockprof flamegraph run.json --wakers -o wakers.svg\n  \
lockprof flamegraph run.json --format folded > waits.folded\n  \
lockprof flamegraph run.json --format pprof -o waits.pb.gz && go tool pprof -top waits.pb.gz\n\n\
Waiting stacks are weighted by wait time; the report keeps each site's hottest call paths \
(enough to cover 99% of its wait, 5 to 64), and the rest of a site's wait is drawn under \
'[other stacks]'. When less than 95% of the wait has a full call path, a note on stderr \
says how much is under '[other stacks]' or truncated.")]
pub struct FlamegraphArgs {
    /// A report written by `lockprof record -o`.
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,
    /// Write here instead of stdout ('-' is stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// svg (inferno), folded (`frame;frame count` lines for other flame-graph tools) or
    /// pprof (gzipped profile.proto like Go's mutex profile).
    #[arg(short, long, value_enum, default_value_t = ExportFormat::Svg)]
    pub format: ExportFormat,
    /// Waking stacks (unlock/notify/post), weighted by threads woken, instead of the
    /// waiting stacks weighted by wait time.
    #[arg(long)]
    pub wakers: bool,
    /// Title of the SVG.
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    #[command(flatten)]
    pub lock_fns: LockFnArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Svg,
    Folded,
    Pprof,
}

/// Writes the export; returns the exit code.
pub fn run(args: &FlamegraphArgs) -> Result<i32> {
    let to_stdout = args.output.as_deref().is_none_or(|p| p == Path::new("-"));
    if to_stdout && args.format == ExportFormat::Pprof && std::io::stdout().is_terminal() {
        return Err(input_error(anyhow!(
            "a pprof profile is binary: give -o FILE (e.g. -o waits.pb.gz)"
        )));
    }
    let report = args
        .lock_fns
        .apply(read_report(&args.report)?, &args.report);
    if !args.wakers {
        note_coverage(&Coverage::of(&report));
    }
    let bytes = match args.format {
        ExportFormat::Pprof if args.wakers => pprof::to_gzip(&pprof::wakers(&report)),
        ExportFormat::Pprof => pprof::to_gzip(&pprof::waits(&report)),
        ExportFormat::Folded | ExportFormat::Svg => {
            let (stacks, weight) = if args.wakers {
                (folded::wakers(&report), flamegraph::Weight::Woken)
            } else {
                (folded::waits(&report), flamegraph::Weight::WaitNs)
            };
            if args.format == ExportFormat::Folded {
                stacks.to_text().into_bytes()
            } else {
                let mut svg = Vec::new();
                flamegraph::write_svg(&stacks, weight, args.title.as_deref(), &mut svg)
                    .context("draw the flame graph")?;
                svg
            }
        }
    };
    match &args.output {
        // A path that cannot be written is the user's to fix: bad input.
        Some(path) if !to_stdout => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write '{}'", path.display()))
            .map_err(input_error)?,
        _ => write_stdout(&bytes, "the output")?,
    }
    Ok(0)
}

/// Says on stderr when the flame graph cannot show a full call path for most of the
/// wait, so that a wide `[other stacks]` bar or stunted towers are not taken for the
/// program's shape.
fn note_coverage(c: &Coverage) {
    if c.full_share() >= FULL_PATH_GOAL {
        return;
    }
    eprintln!(
        "lockprof: note: {} of the wait has a full call path: {} is drawn under \
         '[other stacks]' (call paths the report did not keep), {} with truncated stacks",
        fmt_pct(c.full_ns, c.total_ns()),
        fmt_pct(c.other_ns, c.total_ns()),
        fmt_pct(c.truncated_ns, c.total_ns()),
    );
}

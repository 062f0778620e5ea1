//! `lockprof check`: a saved report against a budget and/or a baseline.
//!
//! Owns: the options, which inputs are required, and the exit code of the verdict.
//! Must not: judge (`ci::budget`).

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use clap::Args;

use super::args::{Format, LockFnArgs};
use super::gate::GateArgs;
use super::output::{read_report, write_stdout};
use crate::ci::budget::{self, Baseline, Budget, Evaluation};
use crate::exit::{self, input_error};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lockprof check run.json --budget lockprof.toml\n  \
lockprof check run.json --baseline base.json\n\n\
Each breach is printed on one line: the site, what was measured, the limit and the rule. \
Exit 0 within budget, 1 over budget or regressed, 2 when a file cannot be read or parsed. \
The budget format is documented in docs/ci.md.")]
pub struct CheckArgs {
    /// A report written by `lockprof record -o`.
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,
    /// The budget file (TOML, see docs/ci.md).
    #[arg(long, value_name = "FILE")]
    pub budget: Option<PathBuf>,
    /// A report to check regressions against: fails exactly when `lockprof diff
    /// BASE REPORT` says "regressed" with the same rules.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Output format on stdout [default: text].
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,
    /// Applied to the report (and the baseline) before checking.
    #[command(flatten)]
    pub lock_fns: LockFnArgs,
}

/// Checks; returns 0 within budget, 1 over it.
pub fn run(args: &CheckArgs) -> Result<i32> {
    if args.baseline.is_none() && args.gate.given() {
        return Err(input_error(anyhow!(
            "--max-regression, --min-share, --min-wait-per-sec and --include-event-waits \
             judge a change: give --baseline FILE"
        )));
    }
    let (budget, budget_name) = match &args.budget {
        Some(path) => (
            budget::load(path).map_err(input_error)?,
            Some(path.display().to_string()),
        ),
        None if args.baseline.is_some() => (Budget::default(), None),
        None => {
            return Err(input_error(anyhow!(
                "nothing to check against: give --budget FILE and/or --baseline FILE \
                 (see 'lockprof check --help')"
            )));
        }
    };
    let report = args
        .lock_fns
        .apply(read_report(&args.report)?, &args.report);
    let base = match args.baseline.as_deref() {
        Some(path) => Some(args.lock_fns.apply(read_report(path)?, path)),
        None => None,
    };
    let base_name = args
        .baseline
        .as_deref()
        .map(Path::display)
        .map(|d| d.to_string());
    let baseline = match (&base, &base_name) {
        (Some(report), Some(name)) => Some(Baseline {
            report,
            name,
            rules: budget.gate_rules(args.gate.overrides()),
        }),
        _ => None,
    };
    let eval: Evaluation = budget::evaluate(
        &budget,
        &report,
        &args.report.display().to_string(),
        budget_name.as_deref(),
        baseline,
    );
    let out = match args.format.unwrap_or(Format::Text) {
        Format::Text => budget::render(&eval),
        Format::Json => budget::to_json(&eval),
    };
    write_stdout(out.as_bytes(), "the check result")?;
    Ok(i32::from(if eval.passed() {
        exit::OK
    } else {
        exit::OVER_BUDGET
    }))
}

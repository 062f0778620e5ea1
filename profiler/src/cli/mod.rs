//! The command line: one file per subcommand, the option groups they share
//! (`args`), and where their results go (`output`).
//!
//! Owns: clap definitions, `--help` text with examples, validating every argument
//! before anything starts, and dispatching to `record`, report rendering, `diff`,
//! `check`, `flamegraph` and `top`. Must not: contain profiling, matching, budget or
//! format logic. Exit codes are listed in [`crate::exit`].

pub mod args;
pub mod check;
pub mod diff;
pub mod flamegraph;
pub mod gate;
pub mod output;
pub mod record;
pub mod report;
pub mod top;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use crate::exit::code_for as error_exit_code;

#[derive(Debug, Parser)]
#[command(
    name = "lockprof",
    version,
    about = "Lock-contention profiler for Linux: finds where threads block on user-space locks",
    long_about = "lockprof traces every futex wait and wake of the target processes with eBPF, \
attributes the waits to lock sites (the line of your code that blocked, the kind of lock, \
the threads involved) and ranks them by total wait time.",
    after_help = "Examples:\n  \
sudo lockprof record -p 4242 --duration 10s        attach to a running process\n  \
sudo lockprof record -o run.json -- ./server --flag launch a command under the profiler\n  \
sudo lockprof record --name server -d 10s          every process named 'server' (or --cgroup PATH)\n  \
lockprof report run.json                           render a saved report (no root needed)\n  \
lockprof diff base.json new.json                   what changed between two runs\n  \
lockprof check run.json --budget lockprof.toml     fail (exit 1) when over budget\n  \
lockprof flamegraph run.json -o waits.svg          flame graph of the waiting stacks\n  \
sudo lockprof top -p 4242                          live view, like top (--replay run.json: no root)\n\n\
Durations are a number and a unit: 500us, 10ms, 1.5s, 2m, 1h (ns, us, ms, s, m, h).\n\
Exit codes: 0 ok; 1 over budget or regression; 2 usage error or bad input; 3 lockprof \
failed while running; 4 the report went to a fallback file (its path is printed); \
record -- CMD: the command's code when it failed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record lock contention of running processes (-p) or of a command (-- CMD).
    Record(record::RecordArgs),
    /// Render a saved JSON report.
    Report(report::ReportArgs),
    /// Compare two saved reports: sites before → after, new and vanished, a verdict.
    Diff(diff::DiffArgs),
    /// Check a saved report against a budget: exit 0 within, 1 over, 2 on bad input.
    Check(check::CheckArgs),
    /// Flame graph (SVG), folded stacks or pprof profile of a saved report's stacks.
    Flamegraph(flamegraph::FlamegraphArgs),
    /// Live view of lock contention, like top: sites, rates, sparklines, detail.
    Top(top::TopArgs),
}

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Record(args) => record::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Flamegraph(args) => flamegraph::run(&args),
        Command::Top(args) => top::run(args),
    }
}

/// `lockprof ARGS…` parsed, for the subcommands' tests.
#[cfg(test)]
pub(crate) fn parse_for_test(args: &[&str]) -> Result<Command, clap::Error> {
    Cli::try_parse_from(std::iter::once("lockprof").chain(args.iter().copied())).map(|c| c.command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_text_snapshot() {
        // What users read first; a change here should be a deliberate one.
        let mut cmd = Cli::command().term_width(100);
        insta::assert_snapshot!("lockprof_help", cmd.render_long_help().to_string());
        for sub in ["record", "top", "check", "flamegraph"] {
            let help = cmd
                .find_subcommand_mut(sub)
                .expect("subcommand")
                .render_long_help()
                .to_string();
            insta::assert_snapshot!(format!("lockprof_{sub}_help"), help);
        }
    }

    #[test]
    fn help_has_examples() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("sudo lockprof record -p 4242 --duration 10s"));
        assert!(help.contains("Exit codes: 0 ok; 1 over budget"));
        let mut cmd = Cli::command();
        let record = cmd
            .find_subcommand_mut("record")
            .expect("record")
            .render_long_help()
            .to_string();
        assert!(record.contains("-- ./server --flag"));
        assert!(record.contains("--duration"));
    }
}

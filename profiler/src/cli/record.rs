//! `lockprof record`: validate everything, record, save the report without loss,
//! print it, check it against a budget.
//!
//! Owns: the order "check inputs → record → save → print → finish the command →
//! judge the budget" and the exit code that comes out of it (see [`crate::exit`]).
//! Must not: profile (`session::record`) or judge budgets (`ci::budget`).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;

use super::args::{ProbeArgs, RenderArgs, TargetArgs, record_options};
use super::output::{self, ReportOutput, Saved};
use crate::ci::budget;
use crate::exit::{self, input_error};
use crate::report;
use crate::session::record;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
sudo lockprof record -p 4242 --duration 10s\n  \
sudo lockprof record -p 4242 -p 4243 -o run.json\n  \
sudo lockprof record -o run.json -- ./server --flag\n  \
sudo lockprof record --name server --duration 10s         every process named 'server'\n  \
sudo lockprof record --cgroup system.slice/app.service    a service, or a container's cgroup\n  \
sudo lockprof record -p 4242 --debug-dir ./debug          split debug files of a stripped build\n  \
sudo lockprof record -q -o run.json --check lockprof.toml -- ./bench\n\n\
Recording stops at --duration, at Ctrl-C, SIGTERM or SIGHUP, or when the targets exit (with \
--cgroup: when the cgroup is removed); the report is written in every case. A second Ctrl-C \
while stacks are symbolized stops symbolizing and writes what is there (the rest as \
module+offset). Every option is checked before anything starts: a bad value, an unwritable \
-o or a budget that does not parse costs no recording.\n\n\
Output: without -o the report goes to stdout. With -o it is written there (atomically; if that \
fails at the end, to a fallback file whose path is printed, exit 4) and goes to stdout only \
with --print or --format, or in attach mode without -q. -q prints nothing but errors and \
budget breaches.\n\n\
Launch mode: the command runs as the user who ran sudo (SUDO_UID, SUDO_GID and that user's \
groups), or as --user; lockprof exits with the command's exit code. With --check, the budget \
is judged only when the command exited 0 (exit --check-exit-code, default 1, on a breach). \
Processes in containers (other mount and PID namespaces) are attached by their host pid and \
symbolized through /proc/PID/root.")]
pub struct RecordArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// Write the report as JSON to FILE (see docs/report-schema.md). Its directory
    /// must be writable before recording starts.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "json",
        value_name = "FILE"
    )]
    pub output: Option<PathBuf>,
    /// With -o: print the report on stdout too, as --format says.
    #[arg(long, requires = "output")]
    pub print: bool,
    #[command(flatten)]
    pub render: RenderArgs,
    /// Then check the report against this budget file (see `lockprof check`); it is
    /// read before recording starts.
    #[arg(long = "check", value_name = "BUDGET")]
    pub check: Option<PathBuf>,
    /// The exit code of a budget breach (1 to 255), to tell it from a launched
    /// command's own codes.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "check",
          value_parser = clap::value_parser!(u8).range(1..))]
    pub check_exit_code: u8,
    /// Print nothing on stderr but errors (and budget breaches); with -o, nothing on
    /// stdout either unless --print.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Records; returns the exit code.
pub fn run(args: &RecordArgs) -> Result<i32> {
    if args.targets.is_empty() {
        return Err(input_error(anyhow!(
            "nothing to record: give -p PID, --name COMM, --cgroup PATH or a command after '--' \
             (see 'lockprof record --help')"
        )));
    }
    // Everything the end of the run needs is checked now: a typo in the budget or an
    // unwritable -o must not cost a whole recording.
    let budget = match &args.check {
        Some(path) => Some((budget::load(path).map_err(input_error)?, path)),
        None => None,
    };
    let out = args
        .output
        .as_deref()
        .map(ReportOutput::check)
        .transpose()?;
    let opts = record_options(&args.targets, &args.probes, !args.quiet)?;
    let launch = !opts.command.is_empty();

    let mut recording = record::record(&opts)?;
    // Save before printing: a closed stdout must not lose the recording.
    let mut saved_elsewhere = false;
    let mut lost = None;
    if let Some(out) = &out {
        match out.save(&recording.report) {
            Ok(Saved::AsAsked) if !args.quiet => {
                eprintln!("lockprof: report written to {}", out.path().display());
            }
            Ok(Saved::AsAsked) => {}
            Ok(Saved::Fallback { path, error }) => {
                eprintln!(
                    "lockprof: error: {error}; the report was saved to '{}' instead",
                    path.display()
                );
                saved_elsewhere = true;
            }
            Err(e) => lost = Some(e),
        }
    }
    if let Some(e) = &lost {
        // Last resort: the JSON on stdout is better than nothing.
        eprintln!("lockprof: error: {e:#}; the report follows on stdout as JSON");
        output::write_stdout(
            report::json::to_string(&recording.report).as_bytes(),
            "the report",
        )?;
    } else {
        let asked = args.print || args.render.format.is_some();
        // In attach mode stdout is ours alone; a launched command writes to it too.
        if out.is_none() || asked || (!launch && !args.quiet) {
            output::print_report(&recording.report, &args.render)?;
        }
    }
    let command_code = recording.finish(!args.quiet).unwrap_or(0);
    let breach = match budget {
        Some((budget, budget_path)) if command_code == 0 => {
            let name = args
                .output
                .as_ref()
                .map_or_else(|| "the recording".to_owned(), |p| p.display().to_string());
            let eval = budget::evaluate(
                &budget,
                &recording.report,
                &name,
                Some(&budget_path.display().to_string()),
                None,
            );
            // stdout carries the report; the verdict goes to stderr.
            if !eval.passed() || !args.quiet {
                eprint!("{}", budget::render(&eval));
            }
            !eval.passed()
        }
        Some(_) => {
            if !args.quiet {
                eprintln!(
                    "lockprof: budget not checked: the command exited with code {command_code}"
                );
            }
            false
        }
        None => false,
    };
    Ok(if lost.is_some() {
        i32::from(exit::FAILED)
    } else if saved_elsewhere {
        i32::from(exit::SAVED_ELSEWHERE)
    } else if command_code != 0 {
        command_code
    } else if breach {
        i32::from(args.check_exit_code)
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::time::Duration;

    use super::super::{Command, parse_for_test};
    use super::*;

    fn parse(args: &[&str]) -> Result<RecordArgs, clap::Error> {
        match parse_for_test(args)? {
            Command::Record(a) => Ok(a),
            other => panic!("not record: {other:?}"),
        }
    }

    #[test]
    fn record_takes_pids_or_a_command_not_both() {
        let args = parse(&["record", "-p", "1", "-p", "2", "--duration", "1s"]).unwrap();
        assert_eq!(args.targets.pids, [1, 2]);
        assert_eq!(args.probes.duration, Some(Duration::from_secs(1)));
        let args = parse(&["record", "-o", "r.json", "--", "./server", "--flag"]).unwrap();
        assert_eq!(
            args.targets.command,
            [OsString::from("./server"), OsString::from("--flag")]
        );
        assert!(parse(&["record", "-p", "1", "--", "ls"]).is_err());
    }

    #[test]
    fn record_takes_names_cgroups_and_debug_dirs_with_pids() {
        let args = parse(&[
            "record",
            "-p",
            "1",
            "--name",
            "server",
            "--cgroup",
            "app.slice",
            "--debug-dir",
            "/opt/debug",
        ])
        .unwrap();
        assert_eq!(args.targets.names, ["server"]);
        assert_eq!(args.targets.cgroups, ["app.slice"]);
        assert_eq!(args.probes.debug_dirs, [PathBuf::from("/opt/debug")]);
        // They pick running processes: not with a command to launch.
        assert!(parse(&["record", "--name", "x", "--", "ls"]).is_err());
        assert!(parse(&["record", "--cgroup", "x", "--", "ls"]).is_err());
        assert!(parse(&["record", "--debug-dir", "d", "--", "ls"]).is_ok());
    }

    #[test]
    fn output_is_o_output_or_json() {
        for flag in ["-o", "--output", "--json"] {
            let args = parse(&["record", "-p", "1", flag, "r.json"]).unwrap();
            assert_eq!(args.output, Some(PathBuf::from("r.json")), "{flag}");
        }
        // --print only makes sense with a file that takes the report's place.
        assert!(parse(&["record", "-p", "1", "--print"]).is_err());
    }

    #[test]
    fn durations_are_bounded_and_never_zero() {
        let err = parse(&["record", "-p", "1", "-d", "99999999999999999999h"]).unwrap_err();
        assert!(err.to_string().contains("is too large"), "{err}");
        let err = parse(&["record", "-p", "1", "--interval", "0.0000000001s"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("interval '0.0000000001s' is too short: the shortest is 10ms"),
            "{err}"
        );
        let err = parse(&["record", "-p", "1", "-d", "10"]).unwrap_err();
        assert!(err.to_string().contains("needs a unit"), "{err}");
        let err = parse(&["record", "-p", "1", "-d", "9000h"]).unwrap_err();
        assert!(err.to_string().contains("the longest is 8760h"), "{err}");
    }

    #[test]
    fn user_and_check_exit_code_need_what_they_modify() {
        let args = parse(&["record", "-p", "1", "--user", "root"]).unwrap();
        let err = args.targets.run_as().unwrap_err();
        assert_eq!(
            err.to_string(),
            "--user applies to a launched command: give it after '--'"
        );
        assert!(parse(&["record", "--user", "root", "--", "id"]).is_ok());
        assert!(parse(&["record", "-p", "1", "--check-exit-code", "3"]).is_err());
        assert!(
            parse(&[
                "record",
                "-p",
                "1",
                "--check",
                "b.toml",
                "--check-exit-code",
                "0"
            ])
            .is_err()
        );
        let args = parse(&[
            "record",
            "-p",
            "1",
            "--check",
            "b.toml",
            "--check-exit-code",
            "9",
        ])
        .unwrap();
        assert_eq!(args.check_exit_code, 9);
    }
}

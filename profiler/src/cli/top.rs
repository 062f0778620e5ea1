//! `lockprof top`: the live view, or a saved report browsed in it.
//!
//! Owns: the options (the same target and probe options as `record`, through the
//! shared groups) and checking them before the terminal is taken. Must not: draw
//! or drive the session (`tui`).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;

use super::args::{LockFnArgs, ProbeArgs, TargetArgs, record_options};
use super::output::{ReportOutput, read_report};
use crate::exit::input_error;
use crate::tui;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
sudo lockprof top -p 4242\n  \
sudo lockprof top -p 4242 -p 4243 --interval 500ms -o snapshot.json\n  \
sudo lockprof top --name server --no-holders\n  \
sudo lockprof top -- ./server --flag\n  \
lockprof top --replay run.json                 browse a saved report (no root needed)\n  \
lockprof top --replay pg.json --lock-fn ProcSleep   its sites re-attributed past a wrapper\n\n\
Keys: arrows/PgUp/PgDn/Home/End move, Enter opens the site's detail (Esc back), / filters, \
w t a 9 m h sort by waits, total, avg, p99, max, threads (again: reverse), i switches the \
sort between the last interval and the cumulative columns, p pauses, r resets the counters, \
s saves the report as JSON (-o), q or Ctrl-C quits. When the terminal hangs up (ssh \
dropped, pane killed) or a stop signal comes (SIGTERM, SIGHUP), top saves the report to -o \
and exits. A launched command's output goes to --command-output; quitting sends it SIGTERM. With -d the view stops recording after that \
long and keeps the final report on screen.")]
pub struct TopArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// Where 's' saves the report (JSON, the same schema as `record -o`), and where
    /// it is saved when the terminal hangs up or a stop signal ends `top`.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "lockprof-top.json"
    )]
    pub output: PathBuf,
    /// Browse a saved report in the same UI instead of recording.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "pids", "names", "cgroups"])]
    pub replay: Option<PathBuf>,
    /// Where a launched command's stdout and stderr go (appended).
    #[arg(long, value_name = "FILE", default_value = "/dev/null")]
    pub command_output: PathBuf,
}

/// Runs the live view until the user quits; returns the exit code.
pub fn run(args: TopArgs) -> Result<i32> {
    if let Some(path) = &args.replay {
        // --lock-fn re-attributes the saved report as `lockprof report` does.
        let lock_fns = LockFnArgs {
            lock_fns: args.probes.lock_fns.clone(),
        };
        let report = lock_fns.apply(read_report(path)?, path);
        return tui::run::replay(report, &args.output);
    }
    if args.targets.is_empty() {
        return Err(input_error(anyhow!(
            "nothing to watch: give -p PID, --name COMM, --cgroup PATH, a command after '--', \
             or --replay FILE (see 'lockprof top --help')"
        )));
    }
    // 's' must not fail after an hour of watching because of a typo in -o.
    ReportOutput::check(&args.output)?;
    let record = record_options(&args.targets, &args.probes, false)?;
    tui::run::live(&tui::run::TopOptions {
        record,
        save_to: args.output,
        command_output: args.command_output,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Command, parse_for_test};
    use super::*;

    fn parse(args: &[&str]) -> Result<TopArgs, clap::Error> {
        match parse_for_test(args)? {
            Command::Top(a) => Ok(a),
            other => panic!("not top: {other:?}"),
        }
    }

    #[test]
    fn top_takes_every_target_and_probe_option_record_takes() {
        let args = parse(&[
            "top",
            "-p",
            "1",
            "--name",
            "srv",
            "--cgroup",
            "app.slice",
            "--debug-dir",
            "d",
            "--unwind",
            "fp",
            "--no-holders",
            "-d",
            "5s",
            "--interval",
            "500ms",
            "-o",
            "x.json",
        ])
        .unwrap();
        let opts = record_options(&args.targets, &args.probes, false).unwrap();
        assert_eq!(opts.pids, [1]);
        assert_eq!(opts.names, ["srv"]);
        assert_eq!(opts.cgroups, ["app.slice"]);
        assert_eq!(opts.debug_dirs, [PathBuf::from("d")]);
        assert!(opts.frame_pointers_only);
        assert!(!opts.holders);
        assert_eq!(opts.duration, Some(Duration::from_secs(5)));
        assert_eq!(opts.interval, Some(Duration::from_millis(500)));
        assert_eq!(args.output, PathBuf::from("x.json"));
    }

    #[test]
    fn top_interval_cannot_spin() {
        let err = parse(&["top", "-p", "1", "--interval", "0.0000000001s"]).unwrap_err();
        assert!(err.to_string().contains("is too short"), "{err}");
    }

    #[test]
    fn replay_excludes_live_targets() {
        assert!(parse(&["top", "--replay", "r.json", "-p", "1"]).is_err());
        assert!(parse(&["top", "--replay", "r.json", "--name", "x"]).is_err());
        assert!(parse(&["top", "--replay", "r.json", "--", "ls"]).is_err());
        assert!(parse(&["top", "--replay", "r.json"]).is_ok());
    }
}

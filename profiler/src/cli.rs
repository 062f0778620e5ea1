//! The command line: argument definitions and what each subcommand does with them.
//!
//! Owns: clap definitions, `--help` text with examples, parsing durations, and
//! dispatching to `record` / report rendering. Must not: contain profiling logic.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::record::{self, RecordOptions};
use crate::report::{self, Report, text::TextOptions};

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
lockprof report run.json                           render a saved report (no root needed)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record lock contention of running processes (-p) or of a command (-- CMD).
    #[command(after_help = "Examples:\n  \
sudo lockprof record -p 4242 --duration 10s\n  \
sudo lockprof record -p 4242 -p 4243 -o run.json\n  \
sudo lockprof record -o run.json -- ./server --flag\n\n\
Recording stops at --duration, at Ctrl-C/SIGTERM, or when the targets exit; the report is \
written in every case. In launch mode lockprof exits with the command's exit code.")]
    Record(RecordArgs),
    /// Render a saved JSON report.
    #[command(
        after_help = "Examples:\n  lockprof report run.json\n  lockprof report run.json --format json --top 5"
    )]
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Attach to this process (all its threads, including ones created later). Repeatable.
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID",
        conflicts_with = "command"
    )]
    pub pids: Vec<u32>,
    /// Stop after this long, e.g. 500ms, 10s, 2m (default: until Ctrl-C or the targets exit).
    #[arg(short, long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Also write the report as JSON to FILE (see docs/report-schema.md).
    #[arg(short = 'o', long = "json", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub render: RenderArgs,
    /// Print nothing on stderr but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// The command to launch (after `--`); it starts only once the probes are attached.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report written by `lockprof record -o`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub render: RenderArgs,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Number of sites detailed in the text report.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,
    /// Leave out the hottest stack of each site in the text report.
    #[arg(long)]
    pub no_stacks: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Record(args) => run_record(&args),
        Command::Report(args) => {
            let report = report::json::read(&args.file)?;
            print_report(&report, &args.render)?;
            Ok(0)
        }
    }
}

fn run_record(args: &RecordArgs) -> Result<i32> {
    if args.pids.is_empty() && args.command.is_empty() {
        bail!(
            "nothing to record: give -p PID or a command after '--' (see 'lockprof record --help')"
        );
    }
    let opts = RecordOptions {
        pids: args.pids.clone(),
        command: args.command.clone(),
        duration: args.duration,
        verbose: !args.quiet,
    };
    let mut recording = record::record(&opts)?;
    // Save before printing: a closed stdout must not lose the recording.
    if let Some(path) = &args.output {
        report::json::write(&recording.report, path)?;
        if !args.quiet {
            eprintln!("lockprof: report written to {}", path.display());
        }
    }
    print_report(&recording.report, &args.render)?;
    Ok(recording.finish(!args.quiet).unwrap_or(0))
}

fn print_report(report: &Report, render: &RenderArgs) -> Result<()> {
    let out = match render.format {
        Format::Text => report::text::render(
            report,
            &TextOptions {
                max_sites: render.top,
                stacks: !render.no_stacks,
                ..TextOptions::default()
            },
        ),
        Format::Json => report::json::to_string(report),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .context("write the report to stdout")?;
    stdout.flush().context("write the report to stdout")
}

/// `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}' (examples: 500ms, 10s, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit '{other}' in '{s}' (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration '{s}' must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
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
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_mins(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
        assert!(parse_duration("10 parsecs").unwrap_err().contains("unit"));
        assert!(
            parse_duration("fast")
                .unwrap_err()
                .contains("invalid duration 'fast'")
        );
    }

    #[test]
    fn record_takes_pids_or_a_command_not_both() {
        let cli = Cli::try_parse_from([
            "lockprof",
            "record",
            "-p",
            "1",
            "-p",
            "2",
            "--duration",
            "1s",
        ])
        .unwrap();
        let Command::Record(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.pids, [1, 2]);
        let cli = Cli::try_parse_from([
            "lockprof", "record", "-o", "r.json", "--", "./server", "--flag",
        ])
        .unwrap();
        let Command::Record(args) = cli.command else {
            panic!()
        };
        assert_eq!(
            args.command,
            [OsString::from("./server"), OsString::from("--flag")]
        );
        assert!(Cli::try_parse_from(["lockprof", "record", "-p", "1", "--", "ls"]).is_err());
    }

    #[test]
    fn help_text_snapshot() {
        // What users read first; a change here should be a deliberate one.
        let mut cmd = Cli::command().term_width(100);
        insta::assert_snapshot!("lockprof_help", cmd.render_long_help().to_string());
        let record = cmd.find_subcommand_mut("record").expect("record subcommand");
        insta::assert_snapshot!("lockprof_record_help", record.render_long_help().to_string());
    }

    #[test]
    fn help_has_examples() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("sudo lockprof record -p 4242 --duration 10s"));
        let mut cmd = Cli::command();
        let record = cmd
            .find_subcommand_mut("record")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(record.contains("-- ./server --flag"));
        assert!(record.contains("--duration"));
    }
}

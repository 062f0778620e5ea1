//! The command line: argument definitions and what each subcommand does with them.
//!
//! Owns: clap definitions, `--help` text with examples, parsing durations, and
//! dispatching to `record`, report rendering, `compare` (diff), `budget` (check),
//! `export` (flamegraph) and `tui` (top). Must not: contain profiling, matching, budget or format logic.
//!
//! Exit codes: 0 success; 1 an error, or a budget breach (`check`, `record --check`);
//! 2 a usage error, and for `check` and `record --check` also an unreadable or invalid
//! input file ([`InputError`]).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ci::budget::{self, Baseline, Budget, Evaluation};
use crate::ci::diff::{self as diffing, DiffOptions, RenderOptions};
use crate::export::{flamegraph, folded, pprof};
use crate::render::text::{self, TextOptions};
use crate::report::{self, Report};
use crate::session::record::{self, RecordOptions};
use crate::tui;

/// A bad input (file or flag combination) that `check` and `record --check` report
/// with exit status 2, like clap's usage errors, so CI can tell "over budget" (1)
/// from "the check could not run" (2).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct InputError(anyhow::Error);

fn input_error(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(InputError(e.into()))
}

/// The exit status for an error returned by [`run`].
pub fn error_exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<InputError>().is_some() {
        2
    } else {
        1
    }
}

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
sudo lockprof top -p 4242                          live view, like top (--replay run.json: no root)"
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
sudo lockprof record -o run.json -- ./server --flag\n  \
sudo lockprof record --name server --duration 10s         every process named 'server'\n  \
sudo lockprof record --cgroup system.slice/app.service    a service, or a container's cgroup\n  \
sudo lockprof record -p 4242 --debug-dir ./debug          split debug files of a stripped build\n\n\
Recording stops at --duration, at Ctrl-C/SIGTERM, or when the targets exit (with --cgroup: \
when the cgroup is removed); the report is written in every case. In launch mode lockprof \
exits with the command's exit code. Processes in containers (other mount and PID namespaces) \
are attached by their host pid and symbolized through /proc/PID/root.")]
    Record(RecordArgs),
    /// Render a saved JSON report.
    #[command(
        after_help = "Examples:\n  lockprof report run.json\n  lockprof report run.json --format json --top 5"
    )]
    Report(ReportArgs),
    /// Compare two saved reports: sites before → after, new and vanished, a verdict.
    #[command(after_help = "Examples:\n  \
lockprof diff base.json new.json\n  \
lockprof diff base.json new.json --format markdown > comment.md\n\n\
Sites are matched by kind, module, function and file:line, never by address; a site that \
moved up to 10 lines in the same function is still matched (shown as 'moved from line N'). \
Changes are judged on wait per second of recording; see docs/ci.md.")]
    Diff(DiffArgs),
    /// Check a saved report against a budget: exit 0 within, 1 over, 2 on bad input.
    #[command(after_help = "Examples:\n  \
lockprof check run.json --budget lockprof.toml\n  \
lockprof check run.json --baseline base.json --max-regression 20%\n\n\
Each breach is printed on one line: the site, what was measured, the limit and the rule. \
The budget format is documented in docs/ci.md.")]
    Check(CheckArgs),
    /// Flame graph (SVG), folded stacks or pprof profile of a saved report's stacks.
    #[command(after_help = "Examples:\n  \
lockprof flamegraph run.json -o waits.svg\n  \
lockprof flamegraph run.json --wakers -o wakers.svg\n  \
lockprof flamegraph run.json --format folded > waits.folded\n  \
lockprof flamegraph run.json --format pprof -o waits.pb.gz && go tool pprof -top waits.pb.gz\n\n\
Waiting stacks are weighted by wait time; the report keeps the 5 hottest stacks of each \
site, and the rest of a site's wait is drawn under '[other stacks]'.")]
    Flamegraph(FlamegraphArgs),
    /// Live view of lock contention, like top: sites, rates, sparklines, detail.
    #[command(after_help = "Examples:\n  \
sudo lockprof top -p 4242\n  \
sudo lockprof top -p 4242 -p 4243 --interval 500ms -o snapshot.json\n  \
sudo lockprof top -- ./server --flag\n  \
lockprof top --replay run.json                 browse a saved report (no root needed)\n\n\
Keys: arrows/PgUp/PgDn/Home/End move, Enter opens the site's detail (Esc back), / filters, \
w t a 9 m h sort by waits, total, avg, p99, max, threads (again: reverse), i switches the \
sort between the last interval and the cumulative columns, p pauses, r resets the counters, \
s saves the report as JSON (-o), q or Ctrl-C quits. A launched command's output goes to \
--command-output; quitting sends it SIGTERM.")]
    Top(TopArgs),
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
    /// Then check the report against this budget file (see `lockprof check`); exit 1
    /// on a breach, even when the launched command exited 0.
    #[arg(long = "check", value_name = "BUDGET")]
    pub check: Option<PathBuf>,
    /// Print nothing on stderr but errors (and budget breaches).
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not trace context switches: no "held across blocking" or wake-to-run
    /// latency, and no probe run on every context switch of the machine.
    #[arg(long)]
    pub no_holders: bool,
    /// Also count the holders' failed syscalls inside their waiters' windows. Hooks
    /// every syscall exit of the machine (a raw tracepoint), so it is off by default.
    #[arg(long)]
    pub syscall_errors: bool,
    /// How user stacks are unwound: `dwarf` copies each new call position's stack and
    /// unwinds it with the binaries' CFI (full stacks through glibc and Rust std);
    /// `fp` only walks frame pointers (cheaper, truncated in code built without them).
    #[arg(long, value_enum, default_value_t = Unwind::Dwarf, value_name = "HOW")]
    pub unwind: Unwind,
    /// Length of one interval of the report's timeline (wait per interval, per site).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "1s")]
    pub interval: Duration,
    /// The command to launch (after `--`); it starts only once the probes are attached.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
    /// Attach to every process whose name (comm, or executable file name) is COMM.
    /// Repeatable; combines with -p and --cgroup.
    #[arg(long = "name", value_name = "COMM", conflicts_with = "command")]
    pub names: Vec<String>,
    /// Attach to every process in this cgroup (its directory, or a path relative to the
    /// cgroup v2 mount, e.g. system.slice/app.service), and to processes that join it
    /// while recording. Repeatable.
    #[arg(long = "cgroup", value_name = "PATH", conflicts_with = "command")]
    pub cgroups: Vec<String>,
    /// Also look for split debug files (found by build id or debug link) in DIR, before
    /// /usr/lib/debug. Repeatable.
    #[arg(long = "debug-dir", value_name = "DIR")]
    pub debug_dirs: Vec<PathBuf>,
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
    /// Show every lock-implementation frame (glibc, Rust std, parking lot) in the
    /// text report's stacks instead of folding them into one line.
    #[arg(long)]
    pub expand_lock_frames: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Unwind {
    Dwarf,
    Fp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
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

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A report written by `lockprof record -o`.
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,
    /// The budget file (TOML, see docs/ci.md).
    #[arg(long, value_name = "FILE")]
    pub budget: Option<PathBuf>,
    /// A report to check regressions against (with the budget's [baseline] limits or
    /// --max-regression).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Largest allowed growth of lock contention and of each site's wait per second
    /// versus --baseline, e.g. 20% (overrides the budget's).
    #[arg(long, value_parser = parse_percent, value_name = "PCT", requires = "baseline")]
    pub max_regression: Option<f64>,
    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct FlamegraphArgs {
    /// A report written by `lockprof record -o`.
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,
    /// Write here instead of stdout.
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
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Watch this process (all its threads). Repeatable.
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID",
        conflicts_with_all = ["command", "replay"]
    )]
    pub pids: Vec<u32>,
    /// Refresh (and time-series) interval, e.g. 500ms, 1s, 2s.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "1s")]
    pub interval: Duration,
    /// Where 's' saves the report (JSON, the same schema as `record -o`).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "lockprof-top.json"
    )]
    pub output: PathBuf,
    /// Browse a saved report in the same UI instead of recording.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    pub replay: Option<PathBuf>,
    /// Where a launched command's stdout and stderr go (appended).
    #[arg(long, value_name = "FILE", default_value = "/dev/null")]
    pub command_output: PathBuf,
    /// The command to launch (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Svg,
    Folded,
    Pprof,
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
        Command::Diff(args) => run_diff(&args),
        Command::Check(args) => run_check(&args),
        Command::Flamegraph(args) => run_flamegraph(&args),
        Command::Top(args) => run_top(args),
    }
}

fn run_top(args: TopArgs) -> Result<i32> {
    if let Some(path) = &args.replay {
        return tui::run::replay(path, &args.output);
    }
    if args.pids.is_empty() && args.command.is_empty() {
        bail!(
            "nothing to watch: give -p PID, a command after '--', or --replay FILE (see 'lockprof top --help')"
        );
    }
    tui::run::live(&tui::run::TopOptions {
        pids: args.pids,
        command: args.command,
        interval: args.interval,
        save_to: args.output,
        command_output: args.command_output,
    })
}

fn run_record(args: &RecordArgs) -> Result<i32> {
    if args.pids.is_empty()
        && args.command.is_empty()
        && args.names.is_empty()
        && args.cgroups.is_empty()
    {
        bail!(
            "nothing to record: give -p PID, --name COMM, --cgroup PATH or a command after '--' \
             (see 'lockprof record --help')"
        );
    }
    // Read the budget first: a typo in it must not cost a whole benchmark run.
    let budget = match &args.check {
        Some(path) => Some((budget::load(path).map_err(input_error)?, path)),
        None => None,
    };
    let opts = RecordOptions {
        pids: args.pids.clone(),
        command: args.command.clone(),
        duration: args.duration,
        verbose: !args.quiet,
        holders: !args.no_holders,
        names: args.names.clone(),
        cgroups: args.cgroups.clone(),
        debug_dirs: args.debug_dirs.clone(),
        frame_pointers_only: args.unwind == Unwind::Fp,
        interval: Some(args.interval),
        syscall_errors: args.syscall_errors,
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
    let code = recording.finish(!args.quiet).unwrap_or(0);
    let Some((budget, budget_path)) = budget else {
        return Ok(code);
    };
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
    // A breach fails the run even when the command succeeded; a failing command's own
    // exit code is kept.
    Ok(if eval.passed() || code != 0 { code } else { 1 })
}

fn run_diff(args: &DiffArgs) -> Result<i32> {
    let base = report::json::read(&args.base)?;
    let new = report::json::read(&args.new)?;
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

fn run_check(args: &CheckArgs) -> Result<i32> {
    let (budget, budget_name) = match &args.budget {
        Some(path) => (
            budget::load(path).map_err(input_error)?,
            Some(path.display().to_string()),
        ),
        None if args.baseline.is_some() && args.max_regression.is_none() => {
            return Err(input_error(anyhow::anyhow!(
                "--baseline without --budget needs a limit: add --max-regression PCT (e.g. 20%)"
            )));
        }
        None if args.baseline.is_some() => (Budget::default(), None),
        None => {
            return Err(input_error(anyhow::anyhow!(
                "nothing to check against: give --budget FILE and/or --baseline FILE \
                 (see 'lockprof check --help')"
            )));
        }
    };
    let report = report::json::read(&args.report).map_err(input_error)?;
    let base = match &args.baseline {
        Some(path) => Some(report::json::read(path).map_err(input_error)?),
        None => None,
    };
    let base_name = args
        .baseline
        .as_deref()
        .map(Path::display)
        .map(|d| d.to_string());
    let baseline = match (&base, &base_name) {
        (Some(report), Some(name)) => {
            let (max_regression, floor) = budget
                .regression_limits(args.max_regression, budget_name.as_deref().unwrap_or("-"))
                .map_err(input_error)?;
            Some(Baseline {
                report,
                name,
                max_regression,
                min_wait_per_sec_ns: floor,
            })
        }
        _ => None,
    };
    let eval: Evaluation = budget::evaluate(
        &budget,
        &report,
        &args.report.display().to_string(),
        budget_name.as_deref(),
        baseline,
    );
    let out = match args.format {
        Format::Text => budget::render(&eval),
        Format::Json => budget::to_json(&eval),
    };
    write_stdout(out.as_bytes(), "the check result")?;
    Ok(i32::from(!eval.passed()))
}

fn run_flamegraph(args: &FlamegraphArgs) -> Result<i32> {
    let report = report::json::read(&args.report)?;
    let to_stdout = args.output.as_deref().is_none_or(|p| p == Path::new("-"));
    if to_stdout && args.format == ExportFormat::Pprof && std::io::stdout().is_terminal() {
        bail!("a pprof profile is binary: give -o FILE (e.g. -o waits.pb.gz)");
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
        Some(path) if !to_stdout => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write '{}'", path.display()))?,
        _ => write_stdout(&bytes, "the output")?,
    }
    Ok(0)
}

fn write_stdout(bytes: &[u8], what: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .with_context(|| format!("write {what} to stdout"))
}

/// `20%` → 0.2.
fn parse_percent(s: &str) -> Result<f64, String> {
    budget::parse_percent(s)
}

fn print_report(report: &Report, render: &RenderArgs) -> Result<()> {
    let out = match render.format {
        Format::Text => text::render(
            report,
            &TextOptions {
                max_sites: render.top,
                stacks: !render.no_stacks,
                expand_lock_frames: render.expand_lock_frames,
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
    fn record_takes_names_cgroups_and_debug_dirs_with_pids() {
        let cli = Cli::try_parse_from([
            "lockprof",
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
        let Command::Record(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.pids, [1]);
        assert_eq!(args.names, ["server"]);
        assert_eq!(args.cgroups, ["app.slice"]);
        assert_eq!(args.debug_dirs, [PathBuf::from("/opt/debug")]);
        // They pick running processes: not with a command to launch.
        assert!(Cli::try_parse_from(["lockprof", "record", "--name", "x", "--", "ls"]).is_err());
        assert!(Cli::try_parse_from(["lockprof", "record", "--cgroup", "x", "--", "ls"]).is_err());
        // --debug-dir works with a launched command too.
        assert!(
            Cli::try_parse_from(["lockprof", "record", "--debug-dir", "d", "--", "ls"]).is_ok()
        );
    }

    #[test]
    fn help_text_snapshot() {
        // What users read first; a change here should be a deliberate one.
        let mut cmd = Cli::command().term_width(100);
        insta::assert_snapshot!("lockprof_help", cmd.render_long_help().to_string());
        let record = cmd
            .find_subcommand_mut("record")
            .expect("record subcommand");
        insta::assert_snapshot!(
            "lockprof_record_help",
            record.render_long_help().to_string()
        );
        let top = cmd.find_subcommand_mut("top").expect("top subcommand");
        insta::assert_snapshot!("lockprof_top_help", top.render_long_help().to_string());
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

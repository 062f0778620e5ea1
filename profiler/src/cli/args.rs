//! Option groups shared by several subcommands, and the value parsers that bound them.
//!
//! Owns: what to trace ([`TargetArgs`]: `-p`, `--name`, `--cgroup`, `-- CMD`, `--user`),
//! how to trace it ([`ProbeArgs`]: `-d`, `--interval`, `--unwind`, `--no-holders`,
//! `--debug-dir`), how a report is shown ([`RenderArgs`]), `--lock-fn` on saved
//! reports ([`LockFnArgs`]), and the ranges durations
//! must fall in. `record` and `top` flatten the same groups, so they take the same
//! options with the same meaning. Must not: run anything.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};

use crate::analyze::reattribute::reattribute;
use crate::collect::AttachMethod;
use crate::exit::input_error;
use crate::report::Report;
use crate::session::user::{self, Credentials, SudoEnv};

use crate::session::record::RecordOptions;
use crate::units;

/// The shortest `--duration`: shorter runs cannot attach meaningfully.
pub const MIN_DURATION: Duration = Duration::from_millis(1);
/// The longest `--duration` (a year); longer is a typo, and would overflow timers.
pub const MAX_DURATION: Duration = Duration::from_hours(24 * 365);
/// The shortest `--interval`: each interval reads every kernel map, and the recording
/// loop ticks every 10 ms, so a shorter interval would only spin.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest `--interval`.
pub const MAX_INTERVAL: Duration = Duration::from_hours(24);

/// `--duration` within [`MIN_DURATION`]..=[`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    units::bounded(s, "duration", MIN_DURATION, MAX_DURATION)
}

/// `--interval` within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    units::bounded(s, "interval", MIN_INTERVAL, MAX_INTERVAL)
}

/// `20%` → 0.2.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    units::parse_percent(s)
}

/// What to trace: running processes, or a command to launch.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Attach to this process (all its threads, including ones created later). Repeatable.
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID",
        conflicts_with = "command"
    )]
    pub pids: Vec<u32>,
    /// Attach to every process whose name (comm, or executable file name) is COMM.
    /// Repeatable; combines with -p and --cgroup.
    #[arg(long = "name", value_name = "COMM", conflicts_with = "command")]
    pub names: Vec<String>,
    /// Attach to every process in this cgroup (its directory, or a path relative to the
    /// cgroup v2 mount, e.g. system.slice/app.service), and to processes that join it
    /// while recording. Repeatable.
    #[arg(long = "cgroup", value_name = "PATH", conflicts_with = "command")]
    pub cgroups: Vec<String>,
    /// Run the launched command as this user (a name, a uid, or root). Default: under
    /// sudo, the user who ran sudo, with that user's gid and groups; otherwise
    /// lockprof's own user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The command to launch (after `--`); it starts only once the probes are attached.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl TargetArgs {
    /// Who a launched command runs as (`--user`, or the sudo default); `None`
    /// keeps lockprof's own identity. `--user` without a command is bad input.
    pub fn run_as(&self) -> Result<Option<Credentials>> {
        if self.command.is_empty() {
            if self.user.is_some() {
                return Err(input_error(anyhow!(
                    "--user applies to a launched command: give it after '--'"
                )));
            }
            return Ok(None);
        }
        user::resolve(self.user.as_deref(), &SudoEnv::from_env()).map_err(input_error)
    }

    /// Nothing to trace was given.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
            && self.names.is_empty()
            && self.cgroups.is_empty()
            && self.command.is_empty()
    }
}

/// How to trace: duration, timeline interval, probes and symbolization.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Stop after this long, e.g. 500ms, 10s, 2m (default: until Ctrl-C or the targets
    /// exit). 1ms to 8760h.
    #[arg(short, long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Length of one interval of the report's timeline (and of a refresh in `top`).
    /// 10ms to 24h.
    #[arg(long, value_parser = parse_interval, value_name = "DURATION", default_value = "1s")]
    pub interval: Duration,
    /// Do not trace context switches: no "held across blocking" or wake-to-run
    /// latency, and no probe run on every context switch of the machine.
    #[arg(long)]
    pub no_holders: bool,
    /// Also count the holders' failed syscalls inside their waiters' windows. Hooks
    /// every syscall exit of the machine (a raw tracepoint), so it is off by default.
    #[arg(long)]
    pub syscall_errors: bool,
    /// How futex calls are hooked: `auto` takes `fentry` (BPF trampolines on the futex
    /// syscalls' kernel functions: nothing for any other syscall) where the kernel
    /// allows it, else `syscall-tracepoints` (while they are enabled, every syscall of
    /// the machine takes the kernel's syscall-tracing path), else `raw-syscalls` (no
    /// tracefs: a short program on every syscall). Naming one makes a refusal an error.
    #[arg(long, value_enum, default_value_t = AttachChoice::Auto, value_name = "METHOD")]
    pub attach_method: AttachChoice,
    /// Report the probes' own CPU time (`probe_cost`, the cost line, `top`) by turning
    /// on the kernel's BPF run-time statistics while recording. They are machine-wide:
    /// every BPF program on the host, not only lockprof's, then reads the clock twice
    /// per run (≈ 50 ns on a VM), so this is off by default. When something else holds
    /// them on (`sysctl kernel.bpf_stats_enabled=1`, another tool) the time is
    /// reported without it.
    #[arg(long)]
    pub probe_time: bool,
    /// How user stacks are unwound: `dwarf` copies each new call position's stack and
    /// unwinds it with the binaries' CFI (full stacks through glibc and Rust std);
    /// `fp` only walks frame pointers (cheaper, truncated in code built without them).
    #[arg(long, value_enum, default_value_t = Unwind::Dwarf, value_name = "HOW")]
    pub unwind: Unwind,
    /// Also look for split debug files (found by build id or debug link) in DIR, before
    /// /usr/lib/debug. Repeatable.
    #[arg(long = "debug-dir", value_name = "DIR")]
    pub debug_dirs: Vec<PathBuf>,
    /// A function of the target that wraps a lock (e.g. `LWLockAcquire`, or `mylock_*`):
    /// skipped like glibc's frames, so sites are its callers. Matches the full name,
    /// its last '::' segment, or a '*' glob (an unnamed frame as its `module+offset`).
    /// Repeatable. Lock-like functions that wait
    /// from 3+ callers are recognized without it.
    #[arg(long = "lock-fn", value_name = "PATTERN", value_parser = parse_lock_fn)]
    pub lock_fns: Vec<String>,
    /// Do not fetch debug files of stripped modules from the debuginfod servers in
    /// `DEBUGINFOD_URLS` (by default they are fetched by build id and cached like
    /// elfutils' client does).
    #[arg(long)]
    pub no_debuginfod: bool,
}

/// The session options for these targets and probes, with the launch user resolved
/// (bad input when `--user` is wrong).
pub fn record_options(
    targets: &TargetArgs,
    probes: &ProbeArgs,
    verbose: bool,
) -> Result<RecordOptions> {
    Ok(RecordOptions {
        pids: targets.pids.clone(),
        command: targets.command.clone(),
        duration: probes.duration,
        verbose,
        holders: !probes.no_holders,
        names: targets.names.clone(),
        cgroups: targets.cgroups.clone(),
        debug_dirs: probes.debug_dirs.clone(),
        frame_pointers_only: probes.unwind == Unwind::Fp,
        interval: Some(probes.interval),
        syscall_errors: probes.syscall_errors,
        attach_method: probes.attach_method.method(),
        probe_time: probes.probe_time,
        run_as: targets.run_as()?,
        lock_fns: probes.lock_fns.clone(),
        no_debuginfod: probes.no_debuginfod,
    })
}

/// `--lock-fn` on a saved report (`report`, `diff`, `check`, `flamegraph`).
#[derive(Debug, Default, Args)]
pub struct LockFnArgs {
    /// A function of the target that wraps a lock (e.g. `ProcSleep`, or `mylock_*`):
    /// the saved report's sites whose site frame it is are re-attributed to its
    /// callers, from the call paths the report keeps, as `record --lock-fn` would
    /// have. Matches the full name, its last '::' segment, or a '*' glob (an unnamed
    /// frame as shown: `postgres+0x45d95c`). Repeatable.
    #[arg(long = "lock-fn", value_name = "PATTERN", value_parser = parse_lock_fn)]
    pub lock_fns: Vec<String>,
}

impl LockFnArgs {
    /// `report` re-attributed past the named wrappers (unchanged without any); says on
    /// stderr when the patterns match no site of `name`, which is most likely a typo.
    pub fn apply(&self, report: Report, name: &std::path::Path) -> Report {
        if self.lock_fns.is_empty() {
            return report;
        }
        let out = reattribute(&report, &self.lock_fns);
        if out == report {
            eprintln!(
                "lockprof: note: --lock-fn '{}' is no site frame of '{}': nothing re-attributed",
                self.lock_fns.join("', '"),
                name.display()
            );
        }
        out
    }
}

/// A `--lock-fn` pattern: anything but empty (which would name no function).
fn parse_lock_fn(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("an empty pattern names no function".to_owned());
    }
    Ok(s.to_owned())
}

/// How a report is shown on stdout.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Output format on stdout [default: text].
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,
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

/// `--attach-method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttachChoice {
    Auto,
    Fentry,
    SyscallTracepoints,
    RawSyscalls,
}

impl AttachChoice {
    /// The method asked for; `None` for the best the kernel accepts.
    pub fn method(self) -> Option<AttachMethod> {
        match self {
            AttachChoice::Auto => None,
            AttachChoice::Fentry => Some(AttachMethod::Fentry),
            AttachChoice::SyscallTracepoints => Some(AttachMethod::SyscallTracepoints),
            AttachChoice::RawSyscalls => Some(AttachMethod::RawSyscalls),
        }
    }
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

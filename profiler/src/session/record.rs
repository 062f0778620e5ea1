//! One recording session, start to finish.
//!
//! Owns: the order of operations — check, load probes, attach or launch, poll until a
//! stop condition (duration, Ctrl-C/SIGTERM, target exit), detach, read the kernel's
//! aggregates, symbolize while the maps we captured are fresh, and build the report.
//! [`Session`] is the live API (`start`, `poll`, `report_now`, `stop`) shared by
//! `record` (a loop until a stop condition) and `top` (a terminal UI); it caches
//! symbolized stacks and keeps the per-interval timeline.
//! Also which processes are targets: `-p`, `--name` and `--cgroup` at the start, and
//! processes that join a `--cgroup` while recording. Must not: format output (the
//! caller renders the returned report) or know aya (`collect` does).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use profiler_common::Loss;

use crate::analyze::aggregate::{ReportContext, build_report};
use crate::analyze::timeline::TimelineBuilder;
use crate::collect::snapshot::Snapshot;
use crate::collect::{AttachMethod, LoadOptions, Probes};
use crate::exit::input_error;
use crate::report::{Report, Target, TargetOrigin};
use crate::resolve::unwind::UnwindMethod;
use crate::session::fold::Totals;
use crate::session::go::GoTracer;
use crate::session::process::{self, Launched, signals};
use crate::session::procmaps::MapsHistory;
use crate::session::refresh::{process_cpu, refresh_summary, release_free_memory, thread_cpu};
use crate::session::shared::SharedFutexes;
use crate::session::stacks::StackCache;
use crate::session::targets::{Polled, Targets, describe, join_cgroups, target};
use crate::session::threads::Threads;
use crate::session::user::Credentials;

/// What to record.
#[derive(Clone, Debug, Default)]
pub struct RecordOptions {
    /// Running processes to attach to.
    pub pids: Vec<u32>,
    /// A command to launch (argv), when not attaching.
    pub command: Vec<OsString>,
    /// Stop after this long (otherwise at Ctrl-C/SIGTERM or when the targets exit).
    pub duration: Option<Duration>,
    /// Print progress on stderr.
    pub verbose: bool,
    /// Length of one timeline interval (default [`DEFAULT_INTERVAL`]).
    pub interval: Option<Duration>,
    /// Trace context switches for "held across blocking" and wake-to-run latency.
    pub holders: bool,
    /// Attach to every process whose comm or executable name is one of these.
    pub names: Vec<String>,
    /// cgroup v2 directories (absolute, or relative to /sys/fs/cgroup): attach to
    /// their processes, including ones that join while recording.
    pub cgroups: Vec<String>,
    /// Split debug directories searched before /usr/lib/debug.
    pub debug_dirs: Vec<PathBuf>,
    /// Frame-pointer stacks only: no user-stack copies, no DWARF unwinding
    /// (`--unwind fp`).
    pub frame_pointers_only: bool,
    /// Count the holders' failed syscalls (`--syscall-errors`): hooks every
    /// syscall exit of the machine, so off by default.
    pub syscall_errors: bool,
    /// Turn the kernel's BPF run-time statistics on to report the probes' CPU time
    /// (`--probe-time`): machine-wide, so off by default.
    pub probe_time: bool,
    /// How to hook futex calls (`--attach-method`); `None`: the best the kernel
    /// accepts.
    pub attach_method: Option<AttachMethod>,
    /// Who a launched command runs as (`None`: as lockprof).
    pub run_as: Option<Credentials>,
    /// `--lock-fn` patterns: the target's own lock wrappers.
    pub lock_fns: Vec<String>,
    /// Do not fetch debug files from `DEBUGINFOD_URLS` (`--no-debuginfod`).
    pub no_debuginfod: bool,
}

/// Why the recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    Signal(i32),
    TargetsExited,
}

/// The outcome of a session. Write the report out first, then call
/// [`Recording::finish`], which may wait for a launched command still running.
pub struct Recording {
    pub report: Report,
    launched: Option<Launched>,
    pub stopped: StopReason,
}

impl Recording {
    /// In launch mode, let the command end the way the user asked and return its exit
    /// code; `None` in attach mode.
    pub fn finish(&mut self, verbose: bool) -> Option<i32> {
        let stopped = self.stopped;
        self.launched
            .as_mut()
            .map(|child| finish_child(child, stopped, verbose))
    }
}

/// How often a young target is polled (see [`YOUNG`]). Settled targets are polled
/// every [`MAPS_EVERY`] only: each wake-up of lockprof takes a CPU from the target
/// for a moment (measured on memcached under load: lockprof's own CPU was 10–12 ms
/// per second with a poll every 10 ms that read each target's `/proc` stat and the
/// `TARGETS` hash).
const TICK: Duration = Duration::from_millis(10);
/// How often a settled target is checked (alive? its virtual size moved, so its
/// memory map must be read again for a dlopen or an exec?).
const MAPS_EVERY: Duration = Duration::from_millis(100);
/// A new target is checked every tick for this long: the dynamic loader maps its
/// libraries just after exec, and a short-lived process may exit before the next
/// slow poll, leaving its libraries unsymbolized.
pub(super) const YOUNG: Duration = Duration::from_secs(1);

/// Record until a stop condition, then build the report: a loop over a [`Session`]
/// that closes one timeline interval every `opts.interval`.
pub fn record(opts: &RecordOptions) -> Result<Recording> {
    let mut session = Session::start(opts)?;
    if opts.verbose {
        eprintln!(
            "lockprof: recording {}; Ctrl-C to stop",
            describe(&session.targets, &session.cgroups, opts.duration)
        );
    }
    let interval = opts.interval.unwrap_or(DEFAULT_INTERVAL);
    let mut next_tick = interval;
    let stopped = loop {
        if let Some(sig) = signals::received() {
            break StopReason::Signal(sig);
        }
        if opts.duration.is_some_and(|d| session.elapsed() >= d) {
            break StopReason::Duration;
        }
        if session.poll()? {
            break StopReason::TargetsExited;
        }
        if session.elapsed() >= next_tick {
            // A failed interval read only costs that interval's detail: the final
            // report reads the maps again, so the recording is not lost.
            if let Err(e) = session.close_interval()
                && opts.verbose
            {
                eprintln!("lockprof: warning: interval skipped: {e:#}");
            }
            while next_tick <= session.elapsed() {
                next_tick += interval;
            }
        }
        let until_refresh = next_tick.saturating_sub(session.elapsed());
        let until_end = opts
            .duration
            .map_or(Duration::MAX, |d| d.saturating_sub(session.elapsed()));
        std::thread::sleep(session.next_poll_in().min(until_refresh).min(until_end));
    };
    session.stop(stopped, opts.verbose)
}

/// The start-up kernel feature check ([`features::check`]), before anything is
/// loaded: a missing feature is a one-line error naming the option that avoids it;
/// degradations are told on stderr.
fn check_kernel(opts: &RecordOptions) -> Result<()> {
    use crate::collect::features;
    let needs = features::Needs {
        holders: opts.holders,
        // Unless told otherwise, the probe hooks futex calls with fentry or on the
        // per-syscall tracepoints when tracefs is (or can be) mounted, else on raw
        // sys_enter/sys_exit (collect::attach).
        futex_tracepoints: opts.attach_method.is_none(),
        tracefs_for: opts
            .attach_method
            .filter(|&m| m != AttachMethod::RawSyscalls),
        probe_time: opts.probe_time,
    };
    let notes = features::check(
        &features::KernelInfo::read(),
        needs,
        features::skip_versions_from_env(),
    )?;
    if opts.verbose {
        for note in notes {
            eprintln!("lockprof: note: {note}");
        }
    }
    Ok(())
}

/// The default length of a timeline interval (`--interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// A live recording: probes attached to the targets, read on demand.
///
/// [`Session::start`] checks the targets, loads and attaches the probes and launches
/// the command; the caller then calls [`Session::poll`] every few milliseconds (to
/// follow children and capture memory maps while processes live), [`Session::report_now`]
/// whenever it wants the cumulative report so far (each call closes one interval of
/// the timeline), and [`Session::stop`] at the end. `record` and `top` both drive one.
pub struct Session {
    probes: Probes,
    targets: Targets,
    launched: Option<Launched>,
    maps: MapsHistory,
    last_full_poll: Instant,
    started: Instant,
    started_unix_ms: u64,
    /// lockprof's CPU time when the recording started (probes loaded and attached).
    cpu_at_start: Duration,
    stacks: StackCache,
    /// Everything drained so far, summed by canonical stack.
    totals: Totals,
    timeline: TimelineBuilder,
    /// `--cgroup` directories, polled for processes that join.
    cgroups: Vec<PathBuf>,
    /// Goroutine waits of Go targets.
    go: GoTracer,
    /// Shared memory of the targets, registered for cross-process pairing.
    shared: SharedFutexes,
    /// How long each `report_now` took (wall), its kernel-map reading part (wall),
    /// and the CPU time it used (on a loaded machine, wall time is mostly waiting).
    refreshes: Vec<(Duration, Duration, Duration)>,
    /// `--lock-fn` patterns, for the report's attribution.
    lock_fns: Vec<String>,
    /// Targets seen exited before the previous drain: their memory maps are dropped
    /// at this one, once their last rows are drained and their stacks resolved.
    exited_before: Vec<u32>,
    /// Targets seen exited since the last drain.
    exited_since_drain: Vec<u32>,
}

impl Session {
    /// Check the targets and privileges, install the signal handlers, load and attach
    /// the probes, then attach to `opts.pids`, `--name` and `--cgroup` processes, or
    /// launch `opts.command`.
    pub fn start(opts: &RecordOptions) -> Result<Self> {
        // Bad targets and missing privileges are bad input (exit 2), found before
        // anything is loaded; what fails after this point is lockprof's failure.
        for &pid in &opts.pids {
            process::check_pid(pid).map_err(input_error)?;
        }
        let cgroups: Vec<PathBuf> = opts
            .cgroups
            .iter()
            .map(|c| process::cgroup_dir(&process::cgroup2_root(), c))
            .collect::<Result<_>>()
            .map_err(input_error)?;
        let mut named: Vec<u32> = Vec::new();
        for name in &opts.names {
            let pids = process::pids_named(name);
            if pids.is_empty() {
                return Err(input_error(anyhow!(
                    "no process named '{name}' (compared with each process's comm and executable name)"
                )));
            }
            named.extend(pids);
        }
        process::check_privileges().map_err(input_error)?;
        check_kernel(opts)?;
        signals::install();

        let mut probes = Probes::load(LoadOptions {
            holders: opts.holders,
            copy_user_stacks: !opts.frame_pointers_only,
            syscall_errors: opts.syscall_errors,
            attach_method: opts.attach_method,
            run_time_stats: opts.probe_time,
        })?;
        if opts.verbose {
            for (method, why) in probes.refused_methods() {
                eprintln!(
                    "lockprof: {} refused ({why}): trying the next method",
                    method.name()
                );
            }
            let method = probes.attach_method();
            eprintln!(
                "lockprof: futex calls hooked through {} ({})",
                method.name(),
                method.cost()
            );
        }
        let mut go = GoTracer::default();
        let mut targets = Targets::default();
        let mut launched: Option<Launched> = None;
        if opts.command.is_empty() {
            for &pid in opts.pids.iter().chain(&named) {
                if !targets.contains(pid) {
                    // Processes it forks from now on are followed too (a server that
                    // forks a worker per connection, like PostgreSQL's postmaster).
                    probes.add_target(pid, true)?;
                    targets.insert(target(pid, TargetOrigin::Attach, false));
                }
            }
            join_cgroups(&mut probes, &cgroups, &mut targets)?;
        } else {
            let mut child = process::launch(&opts.command, opts.run_as.as_ref())?;
            probes.add_target(child.pid, true)?;
            go.prepare_launch(child.pid, &opts.command[0])?;
            // A program that cannot be run is the user's input, not our failure.
            child.start().map_err(input_error)?;
            targets.insert(target(child.pid, TargetOrigin::Launch, false));
            launched = Some(child);
        }
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut session = Self {
            probes,
            targets,
            launched,
            maps: MapsHistory::default(),
            last_full_poll: Instant::now(),
            started: Instant::now(),
            started_unix_ms,
            cpu_at_start: process_cpu(),
            stacks: StackCache::new(&opts.debug_dirs, !opts.no_debuginfod, opts.verbose),
            totals: Totals::default(),
            timeline: TimelineBuilder::new(opts.interval.unwrap_or(DEFAULT_INTERVAL)),
            cgroups,
            go,
            shared: SharedFutexes::default(),
            refreshes: Vec::new(),
            lock_fns: opts.lock_fns.clone(),
            exited_before: Vec::new(),
            exited_since_drain: Vec::new(),
        };
        let pids: Vec<u32> = session.targets.live().collect();
        session.go.inspect(pids.iter())?;
        session.poll_targets(true);
        Ok(session)
    }

    /// Time since the probes were attached.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The targets so far (children appear as the kernel follows them).
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.targets.listed()
    }

    /// How long the caller may wait before the next [`Session::poll`]: [`TICK`]
    /// while a target is young (its libraries are being mapped; a launched command
    /// is young too), else until the next full poll. Stop conditions (a signal, the
    /// targets' exit) are thus seen within [`MAPS_EVERY`] at worst.
    pub fn next_poll_in(&self) -> Duration {
        if self.targets.any_young() {
            return TICK;
        }
        MAPS_EVERY
            .saturating_sub(self.last_full_poll.elapsed())
            .max(TICK)
    }

    /// One tick: follow new children, attach to processes that joined a `--cgroup`
    /// and capture memory maps (every tick for young processes, every 100 ms
    /// otherwise, when exits are noticed too). Returns `true` once every target is gone (and every `--cgroup`
    /// removed); an error only if a joining process could not be attached.
    pub fn poll(&mut self) -> Result<bool> {
        let full = self.last_full_poll.elapsed() >= MAPS_EVERY;
        if full {
            self.last_full_poll = Instant::now();
            join_cgroups(&mut self.probes, &self.cgroups, &mut self.targets)?;
        }
        self.poll_targets(full);
        Ok(match self.launched.as_mut() {
            Some(child) => child.try_wait().is_some(),
            // Attached targets' exits are noticed by the full polls (`/proc`, every
            // MAPS_EVERY): a tick between them costs no syscall for them. A cgroup
            // may get new processes until it is removed.
            None => self.targets.all_exited() && self.cgroups.iter().all(|d| !d.exists()),
        })
    }

    /// Threads of each live target, from `/proc/PID/task` (exited targets are left out).
    pub fn thread_counts(&self) -> BTreeMap<u32, usize> {
        self.targets
            .live()
            .filter_map(|pid| {
                std::fs::read_dir(format!("/proc/{pid}/task"))
                    .ok()
                    .map(|dir| (pid, dir.count()))
            })
            .collect()
    }

    /// The cumulative report so far, read from the kernel's maps while the probes stay
    /// attached. Closes one interval of the timeline (the time since the previous
    /// call) and carries the timeline so far. Stacks are symbolized once per session.
    pub fn report_now(&mut self) -> Result<Report> {
        let mut report = self.refresh()?;
        self.timeline.apply(&mut report);
        Ok(report)
    }

    /// Close one interval of the timeline, as [`Session::report_now`] does, without
    /// handing out the report (`record` only needs the timeline until it stops).
    pub fn close_interval(&mut self) -> Result<()> {
        self.refresh().map(drop)
    }

    /// Drain the probes, build the cumulative report and close one interval of the
    /// timeline with it (the report's own timeline is left for the caller).
    fn refresh(&mut self) -> Result<Report> {
        let t0 = Instant::now();
        let cpu0 = thread_cpu();
        let duration_ns = self.started.elapsed().as_nanos() as u64;
        let (go, _, read) = self.drain()?;
        let report = self.build(go, duration_ns);
        self.timeline.push(&report);
        release_free_memory();
        self.refreshes
            .push((t0.elapsed(), read, thread_cpu().saturating_sub(cpu0)));
        Ok(report)
    }

    /// Detach the probes, read their final aggregates and build the report (closing
    /// the last interval of the timeline).
    pub fn stop(mut self, stopped: StopReason, verbose: bool) -> Result<Recording> {
        self.probes.detach();
        self.go.detach();
        let duration_ns = self.started.elapsed().as_nanos() as u64;
        self.poll_targets(true);
        if verbose {
            // Before the last drain, which unwinds and symbolizes what is new: a
            // second Ctrl-C from here on cuts that short.
            eprintln!(
                "lockprof: stopped ({}) after {:.1}s; symbolizing the stacks not resolved yet…",
                match stopped {
                    StopReason::Duration => "duration reached".to_owned(),
                    StopReason::Signal(s) => format!("signal {s}"),
                    StopReason::TargetsExited => "target exited".to_owned(),
                },
                duration_ns as f64 / 1e9,
            );
        }
        let (go, resolved, _) = self.drain()?;
        let mut report = self.build(go, duration_ns);
        if verbose {
            eprintln!(
                "lockprof: probe maps use {:.1} MiB of kernel memory{}",
                report.probe_cost.kernel_memory_bytes as f64 / 1_048_576.0,
                refresh_summary(&mut self.refreshes)
            );
        }
        if verbose && self.stacks.symbolization_cut_short() {
            eprintln!(
                "lockprof: symbolization stopped early (signal again): {} frames left as module+offset",
                report.losses.unsymbolized_frames
            );
        } else if verbose {
            eprintln!("lockprof: {resolved} new stacks resolved at the end");
        }
        if verbose && self.stacks.copies_unwound > 0 {
            let truncated = self
                .stacks
                .methods
                .values()
                .filter(|&&m| m == UnwindMethod::DwarfTruncated)
                .count();
            eprintln!(
                "lockprof: {} stack copies unwound by CFI ({truncated} call paths truncated); the deepest used {:.1} KiB of its copy; {} frame-pointer stacks deleted from the kernel once read",
                self.stacks.copies_unwound,
                self.stacks.deepest_stack as f64 / 1024.0,
                self.stacks.fp_stacks_deleted
            );
        }
        self.timeline.push(&report);
        self.timeline.apply(&mut report);
        Ok(Recording {
            report,
            launched: self.launched.take(),
            stopped,
        })
    }

    /// Drain the probes into the totals: read what the kernel counted since the last
    /// call, resolve the stacks not seen before, sum the rows by canonical stack, fold
    /// exited threads and forget their raw stacks. Returns the Go probes' rows (their
    /// maps are cumulative, so they join the totals only for one report) and how many
    /// raw stacks were resolved, and how long reading the kernel's maps took (wall).
    fn drain(&mut self) -> Result<(Snapshot, usize, Duration)> {
        let t0 = Instant::now();
        let stacks = &self.stacks;
        let delta = self
            .probes
            .snapshot(|k| stacks.knows(k))
            .context("read the probes' aggregates")?;
        // The stack copies are unwound against the layout their process has now: read
        // it just before, so a copy taken just after an exec is neither unwound against
        // the old image nor forgotten with it at the next poll (a row naming it may
        // come a drain later: the drain takes the rows of the previous generation).
        self.poll_targets(true);
        self.last_full_poll = Instant::now();
        let (stacks, maps) = (&mut self.stacks, &self.maps);
        self.probes
            .drain_copies(|copy, tgid, id, fp_id, fp| {
                stacks.take_copy(copy, (tgid, id), (fp_id, fp), maps);
            })
            .context("read the probes' stack copies")?;
        let mut go = Snapshot::default();
        self.go.merge_into(&mut go)?;
        let read = t0.elapsed();
        let resolved =
            self.stacks.resolve(&delta, &self.maps) + self.stacks.resolve(&go, &self.maps);
        let spent = self.stacks.spent_ids(delta.losses.get(Loss::UserStackCopy));
        self.probes
            .delete_stacks(&spent)
            .context("delete spent stacks")?;
        let stacks = &mut self.stacks;
        self.totals
            .add(delta, |key, tid| stacks.canonical(key, tid));
        for r in &mut go.waits {
            (_, r.stack_id, r.leaf_ret) = stacks.canonical((r.tgid, r.stack_id, r.leaf_ret), 0);
        }
        for r in &mut go.wakes {
            (_, r.stack_id, r.leaf_ret) = stacks.canonical((r.tgid, r.stack_id, r.leaf_ret), 0);
        }
        for e in &mut go.edges {
            (_, e.waiter_stack_id, e.waiter_leaf_ret) =
                stacks.canonical((e.tgid, e.waiter_stack_id, e.waiter_leaf_ret), 0);
            (_, e.waker_stack_id, e.waker_leaf_ret) =
                stacks.canonical((e.tgid, e.waker_stack_id, e.waker_leaf_ret), 0);
        }
        go.stacks.clear();
        let alive = Threads::of(
            self.stacks
                .owner_tgids()
                .into_iter()
                .chain(self.totals.tgids()),
        );
        self.totals.fold_exited(|tgid, tid| alive.has(tgid, tid));
        self.stacks.prune(|tgid, tid| alive.has(tgid, tid));
        for pid in std::mem::take(&mut self.exited_before) {
            self.maps.forget(pid);
        }
        self.exited_before = std::mem::take(&mut self.exited_since_drain);
        Ok((go, resolved, read))
    }

    /// The report of the totals (with the Go probes' rows `go`).
    fn build(&mut self, go: Snapshot, duration_ns: u64) -> Report {
        let (run_time, runs) = self.probes.run_stats();
        let (go_time, go_runs) = self.go.run_stats();
        let (run_time, runs) = (run_time + go_time, runs + go_runs);
        let exit_code = self.launched.as_mut().and_then(Launched::try_wait);
        let ctx = ReportContext {
            targets: self.targets.for_report(exit_code),
            exited_children_not_listed: self.targets.not_listed(),
            started_unix_ms: self.started_unix_ms,
            duration_ns,
            unsymbolized_frames: 0,
            probe_cost: crate::report::ProbeCost {
                bpf_run_ns: run_time.as_nanos() as u64,
                bpf_runs: runs,
                attach_method: self.probes.attach_method().name().to_owned(),
                kernel_memory_bytes: self.probes.kernel_memory_bytes(),
                lockprof_cpu_ns: process_cpu().saturating_sub(self.cpu_at_start).as_nanos() as u64,
            },
            unwind: self.stacks.methods.clone(),
            lock_fns: self.lock_fns.clone(),
        };
        let stacks = &self.stacks;
        let mut report = self.totals.with_extra(go, |snapshot| {
            build_report(
                snapshot,
                &stacks.frames,
                ReportContext {
                    unsymbolized_frames: stacks.unsymbolized(snapshot),
                    ..ctx
                },
            )
        });
        crate::analyze::go::finish(&mut report);
        report
    }

    fn poll_targets(&mut self, full: bool) {
        let Polled {
            relaid,
            resized,
            exited,
        } = self.targets.poll(&mut self.probes, &mut self.maps, full);
        for &pid in &exited {
            self.shared.forget(&mut self.probes, pid);
        }
        self.exited_since_drain.extend(exited);
        let remapped: BTreeSet<u32> = relaid.union(&resized).copied().collect();
        self.shared
            .poll(&mut self.probes, self.targets.live(), &remapped);
        // After an exec the same stack id can stand for other code: symbolize anew.
        // Not when a layout only grew (the loader, dlopen): the stacks resolved so
        // far, and the copies waiting for their rows, keep their meaning — dropping
        // those would leave the rows that name them without frames.
        let replaced: BTreeSet<u32> = relaid
            .iter()
            .copied()
            .filter(|&pid| self.maps.replaced(pid))
            .collect();
        self.stacks.forget(&replaced);
        // A new target (or one that exec'd) may be a Go program: attach to it now.
        if !relaid.is_empty()
            && let Err(e) = self.go.inspect(relaid.iter())
        {
            eprintln!("lockprof: warning: {e:#}");
        }
    }
}

/// After the report is written: make sure a launched command ends the way the user
/// asked, and return its exit code. A duration stop lets it run to completion; a
/// signal is passed on if the command did not get it from the terminal.
fn finish_child(child: &mut Launched, stopped: StopReason, verbose: bool) -> i32 {
    if let Some(code) = child.try_wait() {
        return code;
    }
    match stopped {
        StopReason::Signal(sig) => {
            // Ctrl-C reaches the whole foreground process group; give the command a
            // moment to exit on its own before forwarding (SIGTERM is only ours).
            let grace = Instant::now();
            while sig == libc::SIGINT && grace.elapsed() < Duration::from_secs(1) {
                if let Some(code) = child.try_wait() {
                    return code;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child.signal(sig);
        }
        StopReason::Duration if verbose => {
            eprintln!(
                "lockprof: recording done; waiting for pid {} to exit",
                child.pid
            );
        }
        _ => {}
    }
    child.wait_blocking()
}

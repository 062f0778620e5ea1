//! One recording session, start to finish.
//!
//! Owns: the order of operations — check, load probes, attach or launch, poll until a
//! stop condition (duration, Ctrl-C/SIGTERM, target exit), detach, read the kernel's
//! aggregates, symbolize while the maps we captured are fresh, and build the report.
//! [`Session`] is the live API (`start`, `poll`, `report_now`, `stop`) shared by
//! `record` (a loop until a stop condition) and `top` (a terminal UI); it caches
//! symbolized stacks and keeps the per-interval timeline.
//! Must not: format output (the caller renders the returned report) or know aya
//! (`collect` does).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::aggregate::{ReportContext, StackKey, SymbolizedStacks, build_report};
use crate::collect::Probes;
use crate::process::{self, Launched, signals};
use crate::procmaps::MapsHistory;
use crate::report::{Report, Target, TargetOrigin};
use crate::snapshot::Snapshot;
use crate::stack_repair;
use crate::symbolize::{BlazeSymbolizer, StackSymbolizer};
use crate::timeline::TimelineBuilder;

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

/// How often stop conditions are checked.
const TICK: Duration = Duration::from_millis(10);
/// How often a settled target's memory map is re-read (for dlopen/exec).
const MAPS_EVERY: Duration = Duration::from_millis(100);
/// A new target is re-read every tick for this long: the dynamic loader maps its
/// libraries just after exec, and a short-lived process may exit before the next
/// slow poll, leaving its libraries unsymbolized.
const YOUNG: Duration = Duration::from_secs(1);

/// Record until a stop condition, then build the report: a loop over a [`Session`]
/// that closes one timeline interval every `opts.interval`.
pub fn record(opts: &RecordOptions) -> Result<Recording> {
    let mut session = Session::start(opts)?;
    if opts.verbose {
        eprintln!(
            "lockprof: recording {}; Ctrl-C to stop",
            describe(&session.targets, opts.duration)
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
        if session.poll() {
            break StopReason::TargetsExited;
        }
        if session.elapsed() >= next_tick {
            // A failed interval read only costs that interval's detail: the final
            // report reads the maps again, so the recording is not lost.
            if let Err(e) = session.report_now()
                && opts.verbose
            {
                eprintln!("lockprof: warning: interval skipped: {e:#}");
            }
            while next_tick <= session.elapsed() {
                next_tick += interval;
            }
        }
        std::thread::sleep(TICK);
    };
    session.stop(stopped, opts.verbose)
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
    targets: BTreeMap<u32, Target>,
    launched: Option<Launched>,
    maps: MapsHistory,
    first_seen: BTreeMap<u32, Instant>,
    last_full_poll: Instant,
    started: Instant,
    started_unix_ms: u64,
    stacks: StackCache,
    timeline: TimelineBuilder,
}

impl Session {
    /// Check the targets and privileges, install the signal handlers, load and attach
    /// the probes, then attach to `opts.pids` or launch `opts.command`.
    pub fn start(opts: &RecordOptions) -> Result<Self> {
        for &pid in &opts.pids {
            process::check_pid(pid)?;
        }
        process::check_privileges()?;
        signals::install();

        let mut probes = Probes::load()?;
        let mut targets: BTreeMap<u32, Target> = BTreeMap::new();
        let mut launched: Option<Launched> = None;
        if opts.command.is_empty() {
            for &pid in &opts.pids {
                probes.add_target(pid, false)?;
                targets.insert(pid, target(pid, TargetOrigin::Attach));
            }
        } else {
            let mut child = process::launch(&opts.command)?;
            probes.add_target(child.pid, true)?;
            child.start()?;
            targets.insert(child.pid, target(child.pid, TargetOrigin::Launch));
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
            first_seen: BTreeMap::new(),
            last_full_poll: Instant::now(),
            started: Instant::now(),
            started_unix_ms,
            stacks: StackCache::default(),
            timeline: TimelineBuilder::new(opts.interval.unwrap_or(DEFAULT_INTERVAL)),
        };
        session.poll_targets(true);
        Ok(session)
    }

    /// Time since the probes were attached.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The targets so far (children appear as the kernel follows them).
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.targets.values()
    }

    /// One tick: follow new children and capture memory maps (every tick for young
    /// processes, every 100 ms otherwise). Returns `true` once every target is gone.
    pub fn poll(&mut self) -> bool {
        let all_gone = match self.launched.as_mut() {
            Some(child) => child.try_wait().is_some(),
            None => self.targets.keys().all(|&pid| !process::is_alive(pid)),
        };
        let full = self.last_full_poll.elapsed() >= MAPS_EVERY;
        if full {
            self.last_full_poll = Instant::now();
        }
        self.poll_targets(full);
        all_gone
    }

    /// Threads of each live target, from `/proc/PID/task` (exited targets are left out).
    pub fn thread_counts(&self) -> BTreeMap<u32, usize> {
        self.targets
            .keys()
            .filter_map(|&pid| {
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
        let duration_ns = self.started.elapsed().as_nanos() as u64;
        let snapshot = self
            .probes
            .snapshot()
            .context("read the probes' aggregates")?;
        let mut report = self.build(&snapshot, duration_ns);
        self.timeline.push(&report);
        self.timeline.apply(&mut report);
        Ok(report)
    }

    /// Detach the probes, read their final aggregates and build the report (closing
    /// the last interval of the timeline).
    pub fn stop(mut self, stopped: StopReason, verbose: bool) -> Result<Recording> {
        self.probes.detach();
        let duration_ns = self.started.elapsed().as_nanos() as u64;
        let snapshot = self
            .probes
            .snapshot()
            .context("read the probes' aggregates")?;
        self.poll_targets(true);
        if verbose {
            eprintln!(
                "lockprof: stopped ({}) after {:.1}s; symbolizing {} stacks…",
                match stopped {
                    StopReason::Duration => "duration reached".to_owned(),
                    StopReason::Signal(s) => format!("signal {s}"),
                    StopReason::TargetsExited => "target exited".to_owned(),
                },
                duration_ns as f64 / 1e9,
                snapshot.stacks.len()
            );
        }
        let mut report = self.build(&snapshot, duration_ns);
        self.timeline.push(&report);
        self.timeline.apply(&mut report);
        Ok(Recording {
            report,
            launched: self.launched.take(),
            stopped,
        })
    }

    fn build(&mut self, snapshot: &Snapshot, duration_ns: u64) -> Report {
        let (run_time, runs) = self.probes.run_stats();
        let exit_code = self.launched.as_mut().and_then(Launched::try_wait);
        let mut targets: Vec<Target> = self.targets.values().cloned().collect();
        for t in &mut targets {
            t.exited = !process::is_alive(t.pid);
            if t.origin == TargetOrigin::Launch {
                t.exit_code = exit_code;
            }
        }
        let unsymbolized = self.stacks.symbolize(snapshot, &self.maps);
        build_report(
            snapshot,
            &self.stacks.frames,
            ReportContext {
                targets,
                started_unix_ms: self.started_unix_ms,
                duration_ns,
                unsymbolized_frames: unsymbolized,
                probe_cost: crate::report::ProbeCost {
                    bpf_run_ns: run_time.as_nanos() as u64,
                    bpf_runs: runs,
                },
            },
        )
    }

    fn poll_targets(&mut self, full: bool) {
        poll_targets(
            &self.probes,
            &mut self.targets,
            &mut self.maps,
            &mut self.first_seen,
            full,
        );
    }
}

/// Discover followed children and capture targets' memory maps: every target when
/// `full`, otherwise only the ones seen for less than [`YOUNG`].
fn poll_targets(
    probes: &Probes,
    targets: &mut BTreeMap<u32, Target>,
    maps: &mut MapsHistory,
    first_seen: &mut BTreeMap<u32, Instant>,
    full: bool,
) {
    if let Ok(traced) = probes.targets() {
        for pid in traced {
            targets
                .entry(pid)
                .or_insert_with(|| target(pid, TargetOrigin::Child));
        }
    }
    for (pid, t) in targets.iter_mut() {
        let young = first_seen
            .entry(*pid)
            .or_insert_with(Instant::now)
            .elapsed()
            < YOUNG;
        if !(full || young) {
            continue;
        }
        if maps.refresh(*pid) || t.comm.is_empty() {
            // New layout after exec: the name may have changed too.
            let comm = process::comm(*pid);
            if !comm.is_empty() {
                t.comm = comm;
                t.cmdline = process::cmdline(*pid);
            }
        }
    }
}

fn target(pid: u32, origin: TargetOrigin) -> Target {
    Target {
        pid,
        comm: process::comm(pid),
        cmdline: process::cmdline(pid),
        origin,
        exited: false,
        exit_code: None,
    }
}

fn describe(targets: &BTreeMap<u32, Target>, duration: Option<Duration>) -> String {
    let names: Vec<String> = targets
        .values()
        .map(|t| {
            format!(
                "pid {} ({})",
                t.pid,
                if t.comm.is_empty() { "?" } else { &t.comm }
            )
        })
        .collect();
    match duration {
        Some(d) => format!("{} for {:.1}s", names.join(", "), d.as_secs_f64()),
        None => names.join(", "),
    }
}

/// Symbolized stacks of one session. A stack key is stable while the probes' maps
/// live (stack ids are never reused without `BPF_F_REUSE_STACKID`), so each stack is
/// symbolized once, when it first appears, and kept for every later report.
#[derive(Default)]
struct StackCache {
    frames: SymbolizedStacks,
    symbolizer: Option<StackSymbolizer<BlazeSymbolizer>>,
}

impl StackCache {
    /// Symbolize the stacks the snapshot references that are not cached yet, from the
    /// maps captured while the processes were alive, with the skipped leaf caller
    /// restored. Returns the unsymbolized frames among all referenced stacks.
    fn symbolize(&mut self, snapshot: &Snapshot, maps: &MapsHistory) -> u64 {
        let keys: BTreeSet<StackKey> = snapshot
            .waits
            .iter()
            .map(|r| (r.tgid, r.stack_id, r.leaf_ret))
            .chain(
                snapshot
                    .wakes
                    .iter()
                    .map(|r| (r.tgid, r.stack_id, r.leaf_ret)),
            )
            .chain(
                snapshot
                    .edges
                    .iter()
                    .map(|e| (e.tgid, e.waker_stack_id, e.waker_leaf_ret)),
            )
            .filter(|k| snapshot.stacks.contains_key(&(k.0, k.1)))
            .collect();
        let raw: Vec<(StackKey, Vec<u64>)> = keys
            .iter()
            .filter(|k| !self.frames.contains_key(k))
            .map(|&key @ (pid, id, leaf)| {
                let kernel = &snapshot.stacks[&(pid, id)];
                let stack = stack_repair::splice_leaf(kernel, leaf, |addr| {
                    maps.bytes_before(pid, addr, 7)
                        .is_some_and(|b| stack_repair::follows_call(&b))
                });
                (key, stack)
            })
            .collect();
        if !raw.is_empty() {
            let inputs: Vec<(u32, &[u64])> = raw
                .iter()
                .map(|((pid, _, _), s)| (*pid, s.as_slice()))
                .collect();
            let symbolizer = self
                .symbolizer
                .get_or_insert_with(|| StackSymbolizer::new(BlazeSymbolizer::default()));
            let frames = symbolizer.symbolize_stacks(maps, &inputs);
            self.frames
                .extend(raw.into_iter().map(|(k, _)| k).zip(frames));
        }
        // Unresolved frames are the ones left without a function name.
        keys.iter()
            .filter_map(|k| self.frames.get(k))
            .flatten()
            .filter(|f| f.function.is_none())
            .count() as u64
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

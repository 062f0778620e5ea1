//! One recording session, start to finish.
//!
//! Owns: the order of operations — check, load probes, attach or launch, poll until a
//! stop condition (duration, Ctrl-C/SIGTERM, target exit), detach, read the kernel's
//! aggregates, symbolize while the maps we captured are fresh, and build the report.
//! Also which processes are targets: `-p`, `--name` and `--cgroup` at the start, and
//! processes that join a `--cgroup` while recording. Must not: format output (the
//! caller renders the returned report) or know aya (`collect` does).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::aggregate::{ReportContext, StackKey, SymbolizedStacks, build_report};
use crate::collect::Probes;
use crate::process::{self, Launched, signals};
use crate::procmaps::MapsHistory;
use crate::report::{Report, Target, TargetOrigin};
use crate::snapshot::Snapshot;
use crate::stack_repair;
use crate::symbolize::{BlazeSymbolizer, StackSymbolizer};
use crate::unwind::{StackUnwinder, UnwindMethod, Unwound};

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

/// Record until a stop condition, then build the report.
pub fn record(opts: &RecordOptions) -> Result<Recording> {
    for &pid in &opts.pids {
        process::check_pid(pid)?;
    }
    let cgroups: Vec<PathBuf> = opts
        .cgroups
        .iter()
        .map(|c| process::cgroup_dir(&process::cgroup2_root(), c))
        .collect::<Result<_>>()?;
    let mut named: Vec<u32> = Vec::new();
    for name in &opts.names {
        let pids = process::pids_named(name);
        if pids.is_empty() {
            bail!(
                "no process named '{name}' (compared with each process's comm and executable name)"
            );
        }
        named.extend(pids);
    }
    process::check_privileges()?;
    signals::install();

    let mut probes = Probes::load(opts.holders, !opts.frame_pointers_only)?;
    let mut targets: BTreeMap<u32, Target> = BTreeMap::new();
    let mut launched: Option<Launched> = None;
    if opts.command.is_empty() {
        for &pid in opts.pids.iter().chain(&named) {
            if let std::collections::btree_map::Entry::Vacant(slot) = targets.entry(pid) {
                probes.add_target(pid, false)?;
                slot.insert(target(pid, TargetOrigin::Attach, false));
            }
        }
        join_cgroups(&mut probes, &cgroups, &mut targets)?;
    } else {
        let mut child = process::launch(&opts.command)?;
        probes.add_target(child.pid, true)?;
        child.start()?;
        targets.insert(child.pid, target(child.pid, TargetOrigin::Launch, false));
        launched = Some(child);
    }
    let started = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut maps = MapsHistory::default();
    let mut first_seen: BTreeMap<u32, Instant> = BTreeMap::new();
    let mut last_full_poll = Instant::now();
    poll_targets(&probes, &mut targets, &mut maps, &mut first_seen, true);
    if opts.verbose {
        eprintln!(
            "lockprof: recording {}; Ctrl-C to stop",
            describe(&targets, &cgroups, opts.duration)
        );
    }

    let stopped = loop {
        if let Some(sig) = signals::received() {
            break StopReason::Signal(sig);
        }
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break StopReason::Duration;
        }
        let all_gone = match launched.as_mut() {
            Some(child) => child.try_wait().is_some(),
            // A cgroup may get new processes until it is removed.
            None => {
                targets.keys().all(|&pid| !process::is_alive(pid))
                    && cgroups.iter().all(|d| !d.exists())
            }
        };
        if all_gone {
            break StopReason::TargetsExited;
        }
        let full = last_full_poll.elapsed() >= MAPS_EVERY;
        if full {
            last_full_poll = Instant::now();
            join_cgroups(&mut probes, &cgroups, &mut targets)?;
        }
        poll_targets(&probes, &mut targets, &mut maps, &mut first_seen, full);
        std::thread::sleep(TICK);
    };
    probes.detach();
    let duration_ns = started.elapsed().as_nanos() as u64;
    let (run_time, runs) = probes.run_stats();

    let snapshot = probes.snapshot().context("read the probes' aggregates")?;
    poll_targets(&probes, &mut targets, &mut maps, &mut first_seen, true);
    drop(probes);

    let exit_code = launched.as_mut().and_then(Launched::try_wait);
    for t in targets.values_mut() {
        t.exited = !process::is_alive(t.pid);
        if t.origin == TargetOrigin::Launch {
            t.exit_code = exit_code;
        }
    }
    if opts.verbose {
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
    // The user's debug directories, then the containers' own, then the host's.
    let debug_dirs = [opts.debug_dirs.clone(), maps.container_debug_dirs()].concat();
    let Symbolized {
        stacks,
        unresolved: unsymbolized,
        unwind,
        deepest_stack,
    } = symbolize_unwound(&snapshot, &maps, &debug_dirs);
    if opts.verbose && !snapshot.user_stacks.is_empty() {
        let truncated = unwind
            .values()
            .filter(|&&m| m == UnwindMethod::DwarfTruncated)
            .count();
        eprintln!(
            "lockprof: {} stack copies unwound by CFI ({truncated} truncated); the deepest used {:.1} KiB of its copy",
            snapshot.user_stacks.len(),
            deepest_stack as f64 / 1024.0
        );
    }
    let report = build_report(
        &snapshot,
        &stacks,
        ReportContext {
            targets: targets.into_values().collect(),
            started_unix_ms,
            duration_ns,
            unsymbolized_frames: unsymbolized,
            probe_cost: crate::report::ProbeCost {
                bpf_run_ns: run_time.as_nanos() as u64,
                bpf_runs: runs,
            },
            unwind,
        },
    );

    Ok(Recording {
        report,
        launched,
        stopped,
    })
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
                .or_insert_with(|| target(pid, TargetOrigin::Child, false));
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
        let new_layout = maps.refresh(*pid);
        if new_layout && !young {
            // An exec (or dlopen): watch closely again while the loader maps the new
            // image's libraries, as for a new process.
            first_seen.insert(*pid, Instant::now());
        }
        if new_layout || t.comm.is_empty() {
            // New layout after exec: the name may have changed too.
            let comm = process::comm(*pid);
            if !comm.is_empty() {
                t.comm = comm;
                t.cmdline = process::cmdline(*pid);
            }
        }
    }
}

/// Attach to the processes in `cgroups` that are not targets yet (all of them at the
/// start, then the ones that joined since the last call).
fn join_cgroups(
    probes: &mut Probes,
    cgroups: &[PathBuf],
    targets: &mut BTreeMap<u32, Target>,
) -> Result<()> {
    for dir in cgroups {
        for pid in process::cgroup_procs(dir) {
            // Gone again already, or a thread id listed by a threaded cgroup.
            if targets.contains_key(&pid) || process::check_pid(pid).is_err() {
                continue;
            }
            // Its children are followed in the kernel: one that forks, execs and
            // exits between two polls of cgroup.procs is still traced.
            probes.add_target(pid, true)?;
            targets.insert(pid, target(pid, TargetOrigin::Attach, true));
        }
    }
    Ok(())
}

/// A new target, read from `/proc` now; `in_cgroup` when it was found through
/// `--cgroup` (its cgroup is then always recorded).
fn target(pid: u32, origin: TargetOrigin, in_cgroup: bool) -> Target {
    let ns_pid = process::ns_pid(pid);
    Target {
        pid,
        comm: process::comm(pid),
        cmdline: process::cmdline(pid),
        origin,
        exited: false,
        exit_code: None,
        ns_pid,
        // A container's cgroup says which one it is; the root cgroup says nothing.
        cgroup: if in_cgroup || ns_pid.is_some() {
            process::cgroup_of(pid).filter(|c| in_cgroup || c != "/")
        } else {
            None
        },
    }
}

fn describe(
    targets: &BTreeMap<u32, Target>,
    cgroups: &[PathBuf],
    duration: Option<Duration>,
) -> String {
    let mut names: Vec<String> = targets
        .values()
        .map(|t| {
            format!(
                "pid {} ({})",
                t.pid,
                if t.comm.is_empty() { "?" } else { &t.comm }
            )
        })
        .collect();
    // A cgroup may be empty at the start: say what is watched.
    names.extend(
        cgroups
            .iter()
            .map(|c| format!("processes joining cgroup {}", c.display())),
    );
    match duration {
        Some(d) => format!("{} for {:.1}s", names.join(", "), d.as_secs_f64()),
        None => names.join(", "),
    }
}

/// Symbolize every distinct stack the snapshot's rows reference, from the maps
/// captured while the processes were alive, with the skipped leaf caller restored.
pub fn symbolize(snapshot: &Snapshot, maps: &MapsHistory) -> (SymbolizedStacks, u64) {
    let s = symbolize_unwound(snapshot, maps, &[]);
    (s.stacks, s.unresolved)
}

/// Symbolized stacks and how they were obtained.
pub struct Symbolized {
    pub stacks: SymbolizedStacks,
    /// Frames the symbolizer could not name.
    pub unresolved: u64,
    /// How each stack was unwound.
    pub unwind: HashMap<StackKey, UnwindMethod>,
    /// The most stack any CFI unwinding read above its stack pointer, in bytes: how
    /// much of the probe's copy real stacks need.
    pub deepest_stack: u64,
}

/// As [`symbolize`], and how each stack was unwound, looking for split debug files in
/// `debug_dirs` before the default directories. A stack with a user-stack copy is
/// unwound from the modules' CFI (`unwind`); the kernel's frame-pointer walk is kept
/// instead when the CFI unwind stopped early and the walk went further.
pub fn symbolize_unwound(
    snapshot: &Snapshot,
    maps: &MapsHistory,
    debug_dirs: &[PathBuf],
) -> Symbolized {
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
    let mut unwinder = StackUnwinder::default();
    let mut unwound: HashMap<(u32, i32), Unwound> = HashMap::new();
    let mut methods = HashMap::new();
    let raw: Vec<(StackKey, Vec<u64>)> = keys
        .into_iter()
        .map(|key @ (pid, id, leaf)| {
            let kernel = &snapshot.stacks[&(pid, id)];
            let fp = stack_repair::splice_leaf(kernel, leaf, |addr| {
                maps.bytes_before(pid, addr, 7)
                    .is_some_and(|b| stack_repair::follows_call(&b))
            });
            let dwarf = snapshot.user_stacks.get(&(pid, id)).map(|copy| {
                unwound.entry((pid, id)).or_insert_with(|| {
                    let layout = maps.layout_for(pid, copy.ip).unwrap_or(&[]);
                    unwinder.unwind_reading(copy, layout, |m| maps.readable(m))
                })
            });
            let (method, stack) = match dwarf {
                Some(u) if u.complete || u.addrs.len() >= fp.len() => (u.method(), u.addrs.clone()),
                _ => (UnwindMethod::FramePointer, fp),
            };
            methods.insert(key, method);
            (key, stack)
        })
        .collect();
    let inputs: Vec<(u32, &[u64])> = raw
        .iter()
        .map(|((pid, _, _), s)| (*pid, s.as_slice()))
        .collect();
    let mut symbolizer = StackSymbolizer::new(BlazeSymbolizer::with_debug_dirs(debug_dirs));
    let frames = symbolizer.symbolize_stacks(maps, &inputs);
    let stacks = raw.into_iter().map(|(k, _)| k).zip(frames).collect();
    Symbolized {
        stacks,
        unresolved: symbolizer.unresolved,
        unwind: methods,
        deepest_stack: unwound.values().map(|u| u.stack_used).max().unwrap_or(0),
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

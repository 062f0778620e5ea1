//! Which processes a live session traces: children the kernel followed, processes
//! that join a `--cgroup`, and the memory maps captured while they live.
//!
//! Owns: polling targets and describing them for the report. Must not: load or attach
//! probes (it asks `collect::Probes` for the traced set), or symbolize.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::collect::Probes;
use crate::report::{Target, TargetOrigin};
use crate::session::process;
use crate::session::procmaps::MapsHistory;
use crate::session::record::YOUNG;

/// Discover followed children and capture targets' memory maps: every target when
/// `full`, otherwise only the ones seen for less than [`YOUNG`]. Returns the targets
/// whose layout changed after they were first seen (an exec, or a dlopen).
pub(super) fn poll_targets(
    probes: &mut Probes,
    targets: &mut BTreeMap<u32, Target>,
    maps: &mut MapsHistory,
    first_seen: &mut BTreeMap<u32, Instant>,
    full: bool,
) -> BTreeSet<u32> {
    let mut relaid = BTreeSet::new();
    if let Ok(traced) = probes.targets() {
        for pid in traced {
            targets
                .entry(pid)
                .or_insert_with(|| target(pid, TargetOrigin::Child, false));
            // An exited process leaves the kernel's target set (its pid may be
            // reused, and the set must not fill with the dead); it stays a target of
            // the report.
            if full && !process::is_alive(pid) {
                probes.remove_target(pid);
            }
        }
    }
    for (pid, t) in targets.iter_mut() {
        // An exited target's maps are kept; polling it again would cost a failed
        // open per poll for every process that ever came and went.
        if t.exited {
            continue;
        }
        if full && !process::is_alive(*pid) {
            t.exited = true;
            continue;
        }
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
        if new_layout {
            relaid.insert(*pid);
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
    relaid
}

/// Attach to the processes in `cgroups` that are not targets yet (all of them at the
/// start, then the ones that joined since the last call).
pub(super) fn join_cgroups(
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
pub(super) fn target(pid: u32, origin: TargetOrigin, in_cgroup: bool) -> Target {
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

pub(super) fn describe(
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

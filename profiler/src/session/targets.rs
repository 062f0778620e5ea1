//! Which processes a live session traces: children the kernel followed, processes
//! that join a `--cgroup`, and the memory maps captured while they live.
//!
//! Owns: polling targets and describing them for the report. Must not: load or attach
//! probes (it asks `collect::Probes` for the traced set), or symbolize.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::collect::Probes;
use crate::report::{Target, TargetOrigin};
use crate::session::process;
use crate::session::procmaps::MapsHistory;
use crate::session::record::YOUNG;

/// Exited children listed in the report with their own entry; older ones are only
/// counted (their rows are folded into process 0 as well, see `session::fold`).
pub(super) const EXITED_CHILDREN_LISTED: usize = 64;

/// What one [`Targets::poll`] found.
pub(super) struct Polled {
    /// Targets whose executable layout changed after they were first seen (an exec,
    /// or a dlopen).
    pub relaid: BTreeSet<u32>,
    /// Targets whose virtual size moved since the previous poll that checked them (or
    /// seen for the first time): any mapping may have come or gone, shared memory
    /// included.
    pub resized: BTreeSet<u32>,
    /// Targets seen exited now.
    pub exited: Vec<u32>,
}

/// The session's targets: every process listed in the report, which of them are
/// still alive (the only ones polled, so a workload that forks for hours costs each
/// tick what its live processes cost), and how many exited children are no longer
/// listed.
#[derive(Default)]
pub(super) struct Targets {
    listed: BTreeMap<u32, Target>,
    live: BTreeSet<u32>,
    /// When each live target was first seen (or exec'd): young ones are polled often.
    first_seen: HashMap<u32, Instant>,
    /// Exited children still listed, oldest first.
    exited_children: VecDeque<u32>,
    /// Exited children dropped from `listed`.
    not_listed: u64,
    /// The kernel's followed-children count when `TARGETS` was last read.
    followed_seen: Option<u64>,
    /// Each live target's virtual size when its memory map was last read.
    vsize_at_maps: HashMap<u32, u64>,
}

impl Targets {
    /// Add a target (a no-op for a pid already listed).
    pub(super) fn insert(&mut self, t: Target) {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.listed.entry(t.pid) {
            self.live.insert(t.pid);
            slot.insert(t);
        }
    }

    pub(super) fn contains(&self, pid: u32) -> bool {
        self.listed.contains_key(&pid)
    }

    /// Every listed target, alive or exited.
    pub(super) fn listed(&self) -> impl Iterator<Item = &Target> {
        self.listed.values()
    }

    /// The targets not seen exited yet.
    pub(super) fn live(&self) -> impl Iterator<Item = u32> + '_ {
        self.live.iter().copied()
    }

    /// Exited children no longer listed.
    pub(super) fn not_listed(&self) -> u64 {
        self.not_listed
    }

    /// Whether a live target was first seen (or exec'd) less than [`YOUNG`] ago, or
    /// has not been polled yet.
    pub(super) fn any_young(&self) -> bool {
        self.live
            .iter()
            .any(|pid| self.first_seen.get(pid).is_none_or(|t| t.elapsed() < YOUNG))
    }

    /// Whether every target has been seen exited (full polls check the live ones).
    pub(super) fn all_exited(&self) -> bool {
        self.live.is_empty()
    }

    /// Record that `pid` exited: it leaves the polled set; a child stays listed
    /// until [`EXITED_CHILDREN_LISTED`] newer exited children are.
    fn exited(&mut self, pid: u32) {
        self.live.remove(&pid);
        self.first_seen.remove(&pid);
        self.vsize_at_maps.remove(&pid);
        let Some(t) = self.listed.get_mut(&pid) else {
            return;
        };
        t.exited = true;
        if t.origin != TargetOrigin::Child {
            return;
        }
        self.exited_children.push_back(pid);
        if self.exited_children.len() > EXITED_CHILDREN_LISTED
            && let Some(old) = self.exited_children.pop_front()
        {
            self.listed.remove(&old);
            self.not_listed += 1;
        }
    }

    /// Discover followed children, notice exits and capture live targets' memory maps
    /// when their virtual size moved: every live target when `full`, and every tick
    /// the ones seen for less than [`YOUNG`].
    pub(super) fn poll(
        &mut self,
        probes: &mut Probes,
        maps: &mut MapsHistory,
        full: bool,
    ) -> Polled {
        let mut relaid = BTreeSet::new();
        let mut resized = BTreeSet::new();
        let mut exited = Vec::new();
        // `TARGETS` is read (a syscall walking the whole hash) only when the kernel
        // followed a child since the last read. The count is read first: a child
        // counted after it moves it again, and one counted before is in the set.
        let followed = probes.followed();
        if self.followed_seen != Some(followed)
            && let Ok(traced) = probes.targets()
        {
            self.followed_seen = Some(followed);
            for pid in traced {
                if !self.live.contains(&pid) && !self.listed.contains_key(&pid) {
                    self.insert(target(pid, TargetOrigin::Child, false));
                }
            }
        }
        let live: Vec<u32> = self.live.iter().copied().collect();
        for pid in live {
            let young = self
                .first_seen
                .entry(pid)
                .or_insert_with(Instant::now)
                .elapsed()
                < YOUNG;
            if !(full || young) {
                continue;
            }
            let Some(stat) = process::stat(pid).filter(|s| s.alive) else {
                exited.push(pid);
                continue;
            };
            // The map is read again only when the virtual size moved, young or not:
            // reading `/proc/PID/maps` of every process of a multi-process daemon ten
            // times a second (settled) or a hundred (its new backends' first second)
            // was most of lockprof's own CPU on PostgreSQL. A forked child that does
            // not exec keeps its parent's layout; the loader's mappings after an exec
            // each move the size.
            let moved = self.vsize_at_maps.get(&pid) != Some(&stat.vsize);
            if moved {
                resized.insert(pid);
            }
            let named = self.listed.get(&pid).is_some_and(|t| !t.comm.is_empty());
            if named && !moved {
                continue;
            }
            let new_layout = maps.refresh(pid);
            self.vsize_at_maps.insert(pid, stat.vsize);
            if new_layout && !young {
                // An exec (or dlopen): watch closely again while the loader maps the
                // new image's libraries, as for a new process.
                self.first_seen.insert(pid, Instant::now());
            }
            if new_layout {
                relaid.insert(pid);
            }
            let Some(t) = self.listed.get_mut(&pid) else {
                continue;
            };
            if new_layout || t.comm.is_empty() {
                // New layout after exec: the name may have changed too.
                let comm = process::comm(pid);
                if !comm.is_empty() {
                    t.comm = comm;
                    t.cmdline = process::cmdline(pid);
                }
            }
        }
        for &pid in &exited {
            // It leaves the kernel's target set too: its pid may be reused, and the
            // set must not fill with the dead.
            probes.remove_target(pid);
            self.exited(pid);
        }
        Polled {
            relaid,
            resized,
            exited,
        }
    }

    /// The listed targets as the report shows them now: exit states checked, the
    /// launched command's exit code set.
    pub(super) fn for_report(&self, exit_code: Option<i32>) -> Vec<Target> {
        let mut targets: Vec<Target> = self.listed.values().cloned().collect();
        for t in &mut targets {
            t.exited = t.exited || !process::is_alive(t.pid);
            if t.origin == TargetOrigin::Launch {
                t.exit_code = exit_code;
            }
        }
        targets
    }
}

/// Attach to the processes in `cgroups` that are not targets yet (all of them at the
/// start, then the ones that joined since the last call).
pub(super) fn join_cgroups(
    probes: &mut Probes,
    cgroups: &[PathBuf],
    targets: &mut Targets,
) -> Result<()> {
    for dir in cgroups {
        for pid in process::cgroup_procs(dir) {
            // Gone again already, or a thread id listed by a threaded cgroup.
            if targets.contains(pid) || process::check_pid(pid).is_err() {
                continue;
            }
            // Its children are followed in the kernel: one that forks, execs and
            // exits between two polls of cgroup.procs is still traced.
            probes.add_target(pid, true)?;
            targets.insert(target(pid, TargetOrigin::Attach, true));
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
    targets: &Targets,
    cgroups: &[PathBuf],
    duration: Option<Duration>,
) -> String {
    let mut names: Vec<String> = targets
        .listed()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn child(pid: u32) -> Target {
        Target {
            pid,
            comm: format!("c{pid}"),
            origin: TargetOrigin::Child,
            ..Target::default()
        }
    }

    #[test]
    fn only_the_last_exited_children_stay_listed_and_the_rest_are_counted() {
        let mut t = Targets::default();
        t.insert(Target {
            pid: 1,
            origin: TargetOrigin::Attach,
            ..Target::default()
        });
        let n = EXITED_CHILDREN_LISTED as u32 + 10;
        for pid in 2..2 + n {
            t.insert(child(pid));
        }
        for pid in 2..2 + n {
            t.exited(pid);
        }
        // The attached process exits too: it is listed whatever happens.
        t.exited(1);
        let listed: Vec<u32> = t.listed().map(|t| t.pid).collect();
        assert_eq!(listed.len(), 1 + EXITED_CHILDREN_LISTED);
        assert_eq!(listed[0], 1);
        assert_eq!(listed[1], 12, "the 10 oldest children are dropped");
        assert!(t.listed().all(|t| t.exited));
        assert_eq!(t.not_listed(), 10);
        assert_eq!(t.live().count(), 0);
        assert!(t.all_exited());
    }

    #[test]
    fn a_target_is_young_until_polled_and_for_a_second_after() {
        let mut t = Targets::default();
        assert!(!t.any_young(), "no target");
        t.insert(child(7));
        assert!(t.any_young(), "not polled yet");
        t.first_seen.insert(7, Instant::now());
        assert!(t.any_young());
        t.first_seen
            .insert(7, Instant::now().checked_sub(YOUNG).expect("uptime"));
        assert!(!t.any_young(), "settled");
        t.exited(7);
        t.insert(child(8));
        t.first_seen
            .insert(8, Instant::now().checked_sub(YOUNG * 2).expect("uptime"));
        assert!(!t.any_young(), "the exited one is not polled");
    }

    #[test]
    fn a_live_child_is_polled_and_listed_whatever_exited_before_it() {
        let mut t = Targets::default();
        for pid in 2..200 {
            t.insert(child(pid));
            t.exited(pid);
        }
        t.insert(child(500));
        assert_eq!(t.live().collect::<Vec<_>>(), [500]);
        assert!(t.contains(500));
        assert!(!t.listed().any(|t| t.pid == 2));
    }
}

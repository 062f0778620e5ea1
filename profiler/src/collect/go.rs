//! Loading and attaching the Go runtime probes, and reading what they aggregated.
//!
//! Owns: the Go eBPF object (a separate object, loaded on the first Go target), the
//! uprobes on `runtime.gopark`, `runtime.semacquire1` and `runtime.ready` of each Go
//! target — attached by file offset from the executable's own function table, so a
//! stripped daemon works — and turning the Go maps into a [`GoSnapshot`]. Must not:
//! symbolize or classify waits (`analyze::go` does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aya::Ebpf;
use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, StackTraceMap};
use aya::programs::UProbe;
use aya::programs::uprobe::{UProbeLinkId, UProbeScope};
use profiler_common::go::{
    GoLoss, MAP_GO_LOSSES, MAP_GO_PARKED, MAP_GO_PROCS, MAP_GO_STACKS, MAP_GO_WAITS,
    PROG_GO_GOPARK, PROG_GO_READY, PROG_GO_SEMACQUIRE, RawGoKey, RawGoPark, RawGoProc,
    RawGoWaitKey, RawGoWaitStats,
};
use serde::{Deserialize, Serialize};

use crate::analyze::histogram::Log2Histogram;
use crate::collect::{CollectError, map_err, map_mut, map_ref};
use crate::resolve::gopclntab::GoTables;

/// The Go probes, built by `profiler/build.rs` from `profiler-ebpf/src/go_main.rs`.
pub(super) static GO_PROBES_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lockprof-go-probes"));

/// Each program and the runtime function it is attached to.
const ATTACH: [(&str, &str); 3] = [
    (PROG_GO_SEMACQUIRE, "runtime.semacquire1"),
    (PROG_GO_GOPARK, "runtime.gopark"),
    (PROG_GO_READY, "runtime.ready"),
];

/// A Go executable, as far as attaching needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoTarget {
    /// The toolchain version from its build info (`go1.19.8`).
    pub version: String,
    /// File offsets of the functions in [`ATTACH`], in that order.
    pub offsets: [u64; 3],
    /// Offset of `goid` in the runtime's `g` struct for this version.
    pub goid_offset: u32,
}

/// Read `exe` and decide whether it is a Go executable the probes support: `Ok(None)`
/// for any other file, an error naming what is missing for a Go one we cannot probe.
pub fn inspect(exe: &Path) -> Result<Option<GoTarget>, String> {
    let Some(file) = crate::resolve::mapped::MappedFile::open(exe) else {
        return Ok(None);
    };
    let data = file.bytes();
    let Some(version) = crate::resolve::gopclntab::go_version(data) else {
        return Ok(None);
    };
    let tables = GoTables::parse(data, &exe.display().to_string()).map_err(|e| e.to_string())?;
    let mut offsets = [0; 3];
    for (slot, (_, function)) in offsets.iter_mut().zip(ATTACH) {
        *slot = tables
            .function_entry(function)
            .and_then(|v| tables.vaddr_to_offset(v))
            .ok_or_else(|| format!("'{}' ({version}) has no function {function}", exe.display()))?;
    }
    let goid_offset = goid_offset(&version).ok_or_else(|| {
        format!(
            "'{}': unsupported Go version {version} (1.18 or later)",
            exe.display()
        )
    })?;
    Ok(Some(GoTarget {
        version,
        offsets,
        goid_offset,
    }))
}

/// `runtime.g.goid`'s offset: after stack (16), stackguard0/1, _panic, _defer, m,
/// sched (a 56-byte gobuf), syscallsp, syscallpc, stktopsp, param, atomicstatus and
/// stackLock: 152. Go 1.23 added `syscallbp` after `syscallpc`: 160.
fn goid_offset(version: &str) -> Option<u32> {
    let minor: u32 = version
        .strip_prefix("go1.")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    match minor {
        18..=22 => Some(152),
        23.. => Some(160),
        _ => None,
    }
}

/// The Go probes, loaded and attached to some Go processes.
pub struct GoProbes {
    ebpf: Ebpf,
    /// Traced Go processes and their executables.
    pub targets: BTreeMap<u32, GoTarget>,
    /// `(pid, file offset)` of each uprobe attached.
    attached: BTreeSet<(u32, u64)>,
    links: Vec<(&'static str, UProbeLinkId)>,
}

impl GoProbes {
    /// Load the Go eBPF object (nothing is attached yet).
    pub fn load() -> Result<Self, CollectError> {
        if GO_PROBES_OBJECT.is_empty() {
            return Err(CollectError::NoProbes);
        }
        let mut ebpf = super::loader_for(GO_PROBES_OBJECT)
            .load(GO_PROBES_OBJECT)
            .map_err(|e| CollectError::Load(format!("Go probes: {e:#}")))?;
        for (name, _) in ATTACH {
            let prog: &mut UProbe = ebpf
                .program_mut(name)
                .ok_or_else(|| CollectError::Load(format!("program '{name}' missing")))?
                .try_into()
                .map_err(|e| CollectError::Load(format!("{e}")))?;
            prog.load()
                .map_err(|e| CollectError::Load(format!("program '{name}': {e}")))?;
        }
        Ok(Self {
            ebpf,
            targets: BTreeMap::new(),
            attached: BTreeSet::new(),
            links: Vec::new(),
        })
    }

    /// Trace the goroutines of Go process `pid`, whose executable (`exe`, e.g.
    /// `/proc/PID/exe`) is `target`.
    pub fn attach(&mut self, pid: u32, exe: &Path, target: GoTarget) -> Result<(), CollectError> {
        let exe = exe.to_path_buf();
        let mut procs: HashMap<&mut MapData, u32, RawGoProc> =
            map_mut(&mut self.ebpf, MAP_GO_PROCS)?;
        let proc_ = RawGoProc {
            goid_offset: target.goid_offset,
            pad: 0,
        };
        procs
            .insert(pid, proc_, 0)
            .map_err(|e| map_err(MAP_GO_PROCS, &e))?;
        // The kernel filters a pid-scoped uprobe by address space: every thread of
        // the process fires it, no other process does.
        let scope = std::num::NonZeroU32::new(pid)
            .map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        for ((name, function), offset) in ATTACH.into_iter().zip(target.offsets) {
            if !self.attached.insert((pid, offset)) {
                continue;
            }
            let prog: &mut UProbe = self
                .ebpf
                .program_mut(name)
                .ok_or_else(|| CollectError::Load(format!("program '{name}' missing")))?
                .try_into()
                .map_err(|e| CollectError::Load(format!("{e}")))?;
            let link = prog.attach(offset, &exe, scope).map_err(|e| {
                CollectError::Load(format!(
                    "cannot attach a uprobe to {function} in pid {pid}: {}",
                    super::error_chain(&e)
                ))
            })?;
            self.links.push((name, link));
        }
        self.targets.insert(pid, target);
        Ok(())
    }

    /// Time the kernel spent running the Go programs, and how many runs (zero unless
    /// the futex probes turned the kernel's BPF statistics on).
    pub fn run_stats(&self) -> (std::time::Duration, u64) {
        ATTACH
            .iter()
            .filter_map(|(name, _)| self.ebpf.program(name).and_then(|p| p.info().ok()))
            .fold((std::time::Duration::ZERO, 0), |(t, n), info| {
                (t + info.run_time(), n + info.run_count())
            })
    }

    /// Stop tracing goroutines: detach every uprobe. The maps stay readable.
    pub fn detach(&mut self) {
        for (name, link) in self.links.drain(..) {
            if let Some(Ok(prog)) = self.ebpf.program_mut(name).map(<&mut UProbe>::try_from) {
                // Detaching can only fail if the link is already gone, which is the goal.
                let _ = prog.detach(link);
            }
        }
    }

    /// Read the aggregated parks, their stacks and the loss counters.
    pub fn snapshot(&self) -> Result<GoSnapshot, CollectError> {
        let waits: PerCpuHashMap<&MapData, RawGoWaitKey, RawGoWaitStats> =
            map_ref(&self.ebpf, MAP_GO_WAITS)?;
        let mut snap = GoSnapshot::default();
        for item in &waits {
            let (key, per_cpu) = item.map_err(|e| map_err(MAP_GO_WAITS, &e))?;
            snap.waits.push(GoWaitRow::from_raw(&key, &per_cpu));
        }
        snap.waits.sort_by_key(|r| {
            (
                r.tgid,
                r.reason,
                r.waiter_stack_id,
                r.waker_stack_id,
                r.waiter_leaf_ret,
                r.sema_addr,
            )
        });
        let stacks: StackTraceMap<&MapData> = map_ref(&self.ebpf, MAP_GO_STACKS)?;
        let wanted: BTreeSet<(u32, i32)> = snap
            .waits
            .iter()
            .flat_map(|r| [(r.tgid, r.waiter_stack_id), (r.tgid, r.waker_stack_id)])
            .filter(|&(_, id)| id >= 0)
            .collect();
        for (tgid, id) in wanted {
            if let Ok(trace) = stacks.get(&(id as u32), 0) {
                snap.stacks
                    .insert((tgid, id), trace.frames().iter().map(|f| f.ip).collect());
            }
        }
        let losses: PerCpuArray<&MapData, u64> = map_ref(&self.ebpf, MAP_GO_LOSSES)?;
        for loss in GoLoss::ALL {
            let per_cpu = losses
                .get(&(loss as u32), 0)
                .map_err(|e| map_err(MAP_GO_LOSSES, &e))?;
            let n: u64 = per_cpu.iter().sum();
            match loss {
                GoLoss::WaitMapFull => snap.wait_map_full = n,
                GoLoss::StackError => snap.stack_errors = n,
                GoLoss::StackCollision => snap.stack_collisions = n,
            }
        }
        let parked: aya::maps::HashMap<&MapData, RawGoKey, RawGoPark> =
            map_ref(&self.ebpf, MAP_GO_PARKED)?;
        snap.parked_now = parked.keys().flatten().count() as u64;
        Ok(snap)
    }
}

/// What the Go probes aggregated, as owned data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoSnapshot {
    pub waits: Vec<GoWaitRow>,
    /// Stacks by `(tgid, stack id)`: raw addresses, innermost first.
    pub stacks: BTreeMap<(u32, i32), Vec<u64>>,
    pub wait_map_full: u64,
    pub stack_errors: u64,
    pub stack_collisions: u64,
    /// Goroutines parked when the snapshot was taken (their wait has no end yet).
    pub parked_now: u64,
}

/// One (process, reason, waiter stack, waker stack, semaphore) row, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoWaitRow {
    pub tgid: u32,
    pub reason: u32,
    pub waiter_stack_id: i32,
    pub waker_stack_id: i32,
    pub waiter_leaf_ret: u64,
    pub sema_addr: u64,
    pub waits: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub last_goid: u64,
    pub hist: Log2Histogram,
}

impl GoWaitRow {
    pub fn from_raw(key: &RawGoWaitKey, per_cpu: &[RawGoWaitStats]) -> Self {
        let mut row = GoWaitRow {
            tgid: key.tgid,
            reason: key.reason,
            waiter_stack_id: key.waiter_stack_id,
            waker_stack_id: key.waker_stack_id,
            waiter_leaf_ret: key.waiter_leaf_ret,
            sema_addr: key.sema_addr,
            ..GoWaitRow::default()
        };
        let mut min = u64::MAX;
        for s in per_cpu {
            if s.waits > 0 {
                min = min.min(s.min_ns);
                row.last_goid = s.last_goid;
            }
            row.waits += s.waits;
            row.total_ns += s.total_ns;
            row.max_ns = row.max_ns.max(s.max_ns);
            row.hist.add_buckets(&s.hist);
        }
        row.min_ns = if row.waits > 0 { min } else { 0 };
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goid_offset_follows_the_g_struct_per_version() {
        assert_eq!(goid_offset("go1.19.8"), Some(152));
        assert_eq!(goid_offset("go1.22.1"), Some(152));
        assert_eq!(goid_offset("go1.23.0"), Some(160));
        assert_eq!(goid_offset("go1.25rc1"), Some(160));
        assert_eq!(goid_offset("go1.17.2"), None);
        assert_eq!(goid_offset("devel"), None);
    }

    #[test]
    fn rows_sum_cpus_and_ignore_empty_slots_for_the_minimum() {
        let key = RawGoWaitKey {
            tgid: 7,
            reason: 18,
            waiter_stack_id: 1,
            waker_stack_id: 2,
            waiter_leaf_ret: 0,
            sema_addr: 0x1000,
        };
        let zero = RawGoWaitStats {
            waits: 0,
            total_ns: 0,
            min_ns: 0,
            max_ns: 0,
            last_goid: 0,
            hist: [0; profiler_common::HIST_BUCKETS],
        };
        let mut a = zero;
        a.waits = 2;
        a.total_ns = 300;
        a.min_ns = 100;
        a.max_ns = 200;
        a.last_goid = 42;
        let row = GoWaitRow::from_raw(&key, &[zero, a, zero]);
        assert_eq!(
            (row.waits, row.total_ns, row.min_ns, row.max_ns),
            (2, 300, 100, 200)
        );
        assert_eq!(row.last_goid, 42);
        assert_eq!(row.sema_addr, 0x1000);
    }
}

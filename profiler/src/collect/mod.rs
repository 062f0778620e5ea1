//! Loading the probes, choosing targets and reading the kernel's aggregates.
//!
//! Owns: everything that talks to the kernel through aya — the embedded eBPF object,
//! attaching the raw syscall and scheduler tracepoints, the target set, and turning the BPF maps
//! into a [`Snapshot`]. This is the ONLY module that imports aya. Must not: attribute,
//! symbolize or format (those stages get the `Snapshot`).

pub mod go;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::time::Duration;

use aya::Ebpf;
use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, StackTraceMap};
use aya::programs::RawTracePoint;
use aya::programs::raw_trace_point::RawTracePointLinkId;
use profiler_common::{
    DWARF_STACK_ID_BASE, GLOBAL_COPY_USER_STACKS, MAP_USER_STACKS, RawUserStack,
};
use profiler_common::{
    Loss, MAP_EDGES, MAP_INFLIGHT, MAP_LOSSES, MAP_STACKS, MAP_STACKS2, MAP_TARGETS, MAP_WAITS,
    MAP_WAKES, PROG_SCHED_SWITCH, PROG_SYS_ENTER, PROG_SYS_EXIT, RawEdgeKey, RawEdgeStats,
    RawInFlight, RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats, STACK_ID_OVERFLOW,
    target_flags,
};
use thiserror::Error;

use crate::collect::snapshot::{EdgeRow, Snapshot, UserStackCopy, WaitRow, WakeRow};

/// The probes, built by `profiler/build.rs` from `profiler-ebpf`.
static PROBES_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lockprof-probes"));

/// Why the probes could not be loaded or attached. Each message says what to do.
#[derive(Debug, Error)]
pub enum CollectError {
    /// lockprof was built with `AYA_BUILD_SKIP=1`: it carries no probes.
    #[error(
        "this lockprof was built without its eBPF probes (AYA_BUILD_SKIP); rebuild with `cargo xtask build`"
    )]
    NoProbes,
    /// The kernel refused to load the programs or create the maps.
    #[error("cannot load lockprof's eBPF probes: {0}")]
    Load(String),
    /// A raw tracepoint could not be attached.
    #[error(
        "cannot attach to the kernel's raw tracepoint '{tracepoint}': {reason} (needs a kernel with raw tracepoints, 4.17+)"
    )]
    Attach {
        tracepoint: &'static str,
        reason: String,
    },
    /// Reading or writing a BPF map failed.
    #[error("BPF map '{map}': {reason}")]
    Map { map: &'static str, reason: String },
}

/// The programs, each attached to the raw tracepoint of the same name.
const PROGRAMS: [&str; 3] = [PROG_SYS_ENTER, PROG_SYS_EXIT, PROG_SCHED_SWITCH];

/// Loaded and attached probes. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    links: Vec<(&'static str, RawTracePointLinkId)>,
    /// Keeps the kernel's BPF run-time accounting on while we live (`None` if the
    /// kernel refused; then run times read as zero).
    _stats: Option<OwnedFd>,
}

impl Probes {
    /// Load the eBPF object and attach the programs: the context-switch one only with
    /// `holders`; `copy_user_stacks: false` keeps the kernel's frame-pointer stacks
    /// only (no stack copies, no DWARF unwinding). Nothing is traced until
    /// [`Probes::add_target`] is called.
    pub fn load(holders: bool, copy_user_stacks: bool) -> Result<Self, CollectError> {
        if PROBES_OBJECT.is_empty() {
            return Err(CollectError::NoProbes);
        }
        raise_memlock_limit();
        let copy = u32::from(copy_user_stacks);
        let mut ebpf = aya::EbpfLoader::new()
            .btf(aya::Btf::from_sys_fs().ok().as_ref())
            .override_global(GLOBAL_COPY_USER_STACKS, &copy, true)
            .load(PROBES_OBJECT)
            .map_err(|e| CollectError::Load(format!("{e:#}")))?;
        let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).ok();
        let mut links = Vec::new();
        for name in PROGRAMS {
            if name == PROG_SCHED_SWITCH && !holders {
                continue;
            }
            let prog: &mut RawTracePoint = ebpf
                .program_mut(name)
                .ok_or_else(|| {
                    CollectError::Load(format!("program '{name}' missing from the object"))
                })?
                .try_into()
                .map_err(|e| CollectError::Load(format!("{e}")))?;
            prog.load().map_err(|e| {
                CollectError::Load(format!("program '{name}': {}", error_chain(&e)))
            })?;
            let link = prog.attach(name).map_err(|e| CollectError::Attach {
                tracepoint: name,
                reason: error_chain(&e),
            })?;
            links.push((name, link));
        }
        Ok(Self {
            ebpf,
            links,
            _stats: stats,
        })
    }

    /// Trace process `tgid` (all its threads, present and future); with
    /// `follow_children`, also every process it forks from now on.
    pub fn add_target(&mut self, tgid: u32, follow_children: bool) -> Result<(), CollectError> {
        let mut flags = target_flags::TRACED;
        if follow_children {
            flags |= target_flags::FOLLOW_CHILDREN;
        }
        let mut targets: HashMap<&mut MapData, u32, u32> = map_mut(&mut self.ebpf, MAP_TARGETS)?;
        targets
            .insert(tgid, flags, 0)
            .map_err(|e| map_err(MAP_TARGETS, &e))
    }

    /// The traced tgids, including children followed by the kernel.
    pub fn targets(&self) -> Result<BTreeSet<u32>, CollectError> {
        let targets: HashMap<&MapData, u32, u32> = map_ref(&self.ebpf, MAP_TARGETS)?;
        Ok(targets.keys().filter_map(Result::ok).collect())
    }

    /// Stop tracing: detach the programs. The maps stay readable.
    pub fn detach(&mut self) {
        for (name, link) in self.links.drain(..) {
            if let Some(Ok(prog)) = self
                .ebpf
                .program_mut(name)
                .map(<&mut RawTracePoint>::try_from)
            {
                // Detaching can only fail if the link is already gone, which is the goal.
                let _ = prog.detach(link);
            }
        }
    }

    /// Total time the kernel spent running our programs, and how many runs.
    pub fn run_stats(&self) -> (Duration, u64) {
        let mut total = Duration::ZERO;
        let mut runs = 0;
        for name in PROGRAMS {
            if let Some(info) = self.ebpf.program(name).and_then(|p| p.info().ok()) {
                total += info.run_time();
                runs += info.run_count();
            }
        }
        (total, runs)
    }

    /// Read the aggregates, the stacks they reference and the loss counters.
    pub fn snapshot(&self) -> Result<Snapshot, CollectError> {
        let waits: PerCpuHashMap<&MapData, RawWaitKey, RawWaitStats> =
            map_ref(&self.ebpf, MAP_WAITS)?;
        let wakes: PerCpuHashMap<&MapData, RawWakeKey, RawWakeStats> =
            map_ref(&self.ebpf, MAP_WAKES)?;
        let mut snap = Snapshot::default();
        // Keys can vanish between get_next_key and lookup only if we deleted them (we
        // never do), so iteration errors are real failures.
        for item in &waits {
            let (key, per_cpu) = item.map_err(|e| map_err(MAP_WAITS, &e))?;
            snap.waits.push(WaitRow::from_raw(&key, &per_cpu));
        }
        for item in &wakes {
            let (key, per_cpu) = item.map_err(|e| map_err(MAP_WAKES, &e))?;
            snap.wakes.push(WakeRow::from_raw(&key, &per_cpu));
        }
        let edges: PerCpuHashMap<&MapData, RawEdgeKey, RawEdgeStats> =
            map_ref(&self.ebpf, MAP_EDGES)?;
        for item in &edges {
            let (key, per_cpu) = item.map_err(|e| map_err(MAP_EDGES, &e))?;
            snap.edges.push(EdgeRow::from_raw(&key, &per_cpu));
        }
        // Sorted so that downstream stages see a deterministic order.
        snap.waits
            .sort_by_key(|r| (r.tgid, r.tid, r.uaddr, r.stack_id, r.op, r.leaf_ret));
        snap.wakes
            .sort_by_key(|r| (r.tgid, r.tid, r.uaddr, r.stack_id, r.op, r.leaf_ret));
        snap.edges.sort_by_key(|e| {
            (
                e.tgid,
                e.waiter_stack_id,
                e.waiter_leaf_ret,
                e.waker_stack_id,
                e.waker_leaf_ret,
                e.waker_tid,
            )
        });

        let wanted: BTreeSet<(u32, i32)> = snap
            .waits
            .iter()
            .map(|r| (r.tgid, r.stack_id))
            .chain(snap.wakes.iter().map(|r| (r.tgid, r.stack_id)))
            .chain(snap.edges.iter().map(|e| (e.tgid, e.waker_stack_id)))
            .filter(|&(_, id)| id >= 0)
            .collect();
        let (stacks, user_stacks) = self.read_stacks(&wanted)?;
        snap.stacks = stacks;
        snap.user_stacks = user_stacks;

        let losses: PerCpuArray<&MapData, u64> = map_ref(&self.ebpf, MAP_LOSSES)?;
        for loss in Loss::ALL {
            let per_cpu = losses
                .get(&(loss as u32), 0)
                .map_err(|e| map_err(MAP_LOSSES, &e))?;
            snap.losses.set(loss, per_cpu.iter().sum());
        }
        let inflight: HashMap<&MapData, u32, RawInFlight> = map_ref(&self.ebpf, MAP_INFLIGHT)?;
        snap.unfinished_waits = inflight.keys().flatten().count() as u64;
        Ok(snap)
    }

    /// The frame-pointer stacks by id and, for ids of user-stack copies, the copy
    /// (its frame-pointer stack is stored under the copy's id, as the fallback).
    #[allow(
        clippy::type_complexity,
        reason = "two plain maps by (tgid, stack id); a named type would only hide them"
    )]
    fn read_stacks(
        &self,
        wanted: &BTreeSet<(u32, i32)>,
    ) -> Result<
        (
            BTreeMap<(u32, i32), Vec<u64>>,
            BTreeMap<(u32, i32), UserStackCopy>,
        ),
        CollectError,
    > {
        let stacks: StackTraceMap<&MapData> = map_ref(&self.ebpf, MAP_STACKS)?;
        let overflow: StackTraceMap<&MapData> = map_ref(&self.ebpf, MAP_STACKS2)?;
        let copies: HashMap<&MapData, i32, RawUserStack> = map_ref(&self.ebpf, MAP_USER_STACKS)?;
        let mut out = BTreeMap::new();
        let mut user = BTreeMap::new();
        for &(tgid, wanted_id) in wanted {
            let mut id = wanted_id;
            if id >= DWARF_STACK_ID_BASE {
                let Ok(copy) = copies.get(&id, 0) else {
                    continue;
                };
                user.insert((tgid, id), UserStackCopy::from_raw(&copy));
                if copy.fp_stack_id < 0 {
                    out.insert((tgid, id), Vec::new());
                    continue;
                }
                id = copy.fp_stack_id;
            }
            let trace = if id >= STACK_ID_OVERFLOW {
                overflow.get(&((id - STACK_ID_OVERFLOW) as u32), 0)
            } else {
                stacks.get(&(id as u32), 0)
            };
            // A missing id means the slot was reused; the row then has no stack (it
            // cannot happen without BPF_F_REUSE_STACKID, but must not abort a report).
            if let Ok(trace) = trace {
                out.insert(
                    (tgid, wanted_id),
                    trace.frames().iter().map(|f| f.ip).collect(),
                );
            } else if wanted_id != id {
                out.insert((tgid, wanted_id), Vec::new());
            }
        }
        Ok((out, user))
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.detach();
    }
}

fn map_ref<'a, T>(ebpf: &'a Ebpf, name: &'static str) -> Result<T, CollectError>
where
    T: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.map(name).ok_or(CollectError::Map {
        map: name,
        reason: "missing from the object".into(),
    })?;
    T::try_from(map).map_err(|e| map_err(name, &e))
}

fn map_mut<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<T, CollectError>
where
    T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.map_mut(name).ok_or(CollectError::Map {
        map: name,
        reason: "missing from the object".into(),
    })?;
    T::try_from(map).map_err(|e| map_err(name, &e))
}

fn map_err(map: &'static str, e: &dyn std::error::Error) -> CollectError {
    CollectError::Map {
        map,
        reason: error_chain(e),
    }
}

/// `a: b: c` from an error and its sources (aya nests the useful part).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Kernels before 5.11 charge BPF maps to `RLIMIT_MEMLOCK`; lift it so large maps load.
fn raise_memlock_limit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and has no other effect on memory.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const rlim) };
}

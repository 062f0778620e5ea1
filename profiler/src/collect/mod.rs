//! Loading the probes, choosing targets and reading the kernel's aggregates.
//!
//! Owns: everything that talks to the kernel through aya — the embedded eBPF object,
//! choosing and attaching the hooks ([`attach`]), the target set, and turning the BPF
//! maps into a [`Snapshot`]: batch reads ([`batch`]), draining the shared maps (each
//! snapshot holds the counts since the previous one; `session` keeps the totals),
//! reading each stack and stack copy the caller does not know yet, and the maps'
//! kernel memory ([`memory`]). This is the ONLY module that imports aya. Must not:
//! attribute, symbolize, format or keep what it read (those stages get the
//! `Snapshot`, and `session::fold` owns the totals).

pub mod attach;
mod batch;
pub mod blame;
pub mod features;
pub mod go;
pub mod memory;
mod shared;
mod sizes;
pub mod snapshot;
mod target_bits;

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use aya::Ebpf;
use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, StackTraceMap};
use profiler_common::{
    CALL_EXITED, CALL_WAIT, DWARF_STACK_ID_BASE, GLOBAL_COPY_USER_STACKS, GLOBAL_RAW_SYSCALLS,
    Loss, MAP_EDGES, MAP_LOSSES, MAP_STACKS, MAP_STACKS2, MAP_TARGET_BITS, MAP_TARGETS, MAP_TASKS,
    MAP_USER_STACKS, MAP_WAITS, MAP_WAKES, RawEdgeKey, RawEdgeStats, RawTask, RawUserStack,
    RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats, STACK_ID_OVERFLOW, target_flags,
};
use thiserror::Error;

pub use crate::collect::attach::AttachMethod;
use crate::collect::attach::Link;
use crate::collect::blame::BlameRow;
use crate::collect::snapshot::{EdgeRow, Snapshot, UserStackCopy, WaitRow, WakeRow};
use profiler_common::{MAP_BLAME, RawBlameKey, RawBlameStats};

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
    /// A tracepoint could not be attached.
    #[error("cannot attach to the kernel's tracepoint '{tracepoint}': {reason}")]
    Attach { tracepoint: String, reason: String },
    /// Reading or writing a BPF map failed.
    #[error("BPF map '{map}': {reason}")]
    Map { map: &'static str, reason: String },
}

/// What to load.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Trace context switches (holders' off-CPU time, wake-to-run latency).
    pub holders: bool,
    /// Copy user stacks for DWARF unwinding (else frame-pointer stacks only).
    pub copy_user_stacks: bool,
    /// Count traced threads' failed syscalls: attaches the raw `sys_exit` hook, a
    /// program run on every syscall exit of the machine.
    pub syscall_errors: bool,
}

/// Loaded and attached probes. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    links: Vec<Link>,
    method: AttachMethod,
    programs: Vec<&'static str>,
    /// The kernel's target filter, memory-mapped (one bit per traced tgid).
    target_bits: target_bits::TargetBits,
    /// Keeps the kernel's BPF run-time accounting on while we live (`None` if the
    /// kernel refused; then run times read as zero).
    _stats: Option<OwnedFd>,
    /// Threads whose `TASKS` rows were marked exited at the last drain, sorted.
    exited_tasks: Vec<u32>,
}

impl Probes {
    /// Choose the attach method, load the eBPF object and attach the programs.
    /// Nothing is traced until [`Probes::add_target`] is called.
    pub fn load(opts: LoadOptions) -> Result<Self, CollectError> {
        if PROBES_OBJECT.is_empty() {
            return Err(CollectError::NoProbes);
        }
        raise_memlock_limit();
        let method = AttachMethod::choose();
        let copy = u32::from(opts.copy_user_stacks);
        let raw = method.raw_syscall_bits(opts.syscall_errors);
        // `EbpfLoader::new` reads the kernel's BTF itself; passing another parsed copy
        // would hold two (~9 MiB each) at once.
        let sizes = sizes::overrides();
        let mut loader = aya::EbpfLoader::new();
        for (name, n) in &sizes {
            loader.map_max_entries(name, *n);
        }
        let mut ebpf = loader
            .override_global(GLOBAL_COPY_USER_STACKS, &copy, true)
            .override_global(GLOBAL_RAW_SYSCALLS, &raw, true)
            .load(PROBES_OBJECT)
            .map_err(|e| CollectError::Load(format!("{e:#}")))?;
        let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).ok();
        let programs = attach::programs(method, opts.holders, opts.syscall_errors);
        let target_bits = {
            let map = ebpf
                .map(MAP_TARGET_BITS)
                .and_then(map_data)
                .ok_or(CollectError::Map {
                    map: MAP_TARGET_BITS,
                    reason: "missing from the object".into(),
                })?;
            target_bits::TargetBits::map(map.fd().as_fd())?
        };
        let links = attach::attach_all(&mut ebpf, &programs)?;
        Ok(Self {
            ebpf,
            links,
            method,
            programs,
            target_bits,
            _stats: stats,
            exited_tasks: Vec::new(),
        })
    }

    /// How futex calls are hooked in this session.
    pub fn attach_method(&self) -> AttachMethod {
        self.method
    }

    /// Trace process `tgid` (all its threads, present and future); with
    /// `follow_children`, also every process it forks from now on.
    pub fn add_target(&mut self, tgid: u32, follow_children: bool) -> Result<(), CollectError> {
        let mut flags = target_flags::TRACED;
        if follow_children {
            flags |= target_flags::FOLLOW_CHILDREN;
        }
        let mut targets: BpfHashMap<&mut MapData, u32, u32> = map_mut(&mut self.ebpf, MAP_TARGETS)?;
        targets
            .insert(tgid, flags, 0)
            .map_err(|e| map_err(MAP_TARGETS, &e))?;
        self.target_bits.set(tgid);
        Ok(())
    }

    /// Stop tracing a process that exited (so its pid, once reused, is not traced,
    /// and the target map never fills with the dead).
    pub fn remove_target(&mut self, tgid: u32) {
        self.target_bits.clear(tgid);
        if let Ok(mut targets) =
            map_mut::<BpfHashMap<&mut MapData, u32, u32>>(&mut self.ebpf, MAP_TARGETS)
        {
            let _ = targets.remove(&tgid);
        }
    }

    /// The traced tgids, including children followed by the kernel.
    pub fn targets(&self) -> Result<BTreeSet<u32>, CollectError> {
        let rows: Vec<(u32, u32)> =
            batch::read_all(self.fd(MAP_TARGETS)?, false).map_err(|e| map_err(MAP_TARGETS, &e))?;
        Ok(rows.into_iter().map(|(k, _)| k).collect())
    }

    /// Stop tracing: detach the programs. The maps stay readable.
    pub fn detach(&mut self) {
        attach::detach_all(&mut self.ebpf, &mut self.links);
    }

    /// Total time the kernel spent running our programs, and how many runs.
    pub fn run_stats(&self) -> (Duration, u64) {
        let mut total = Duration::ZERO;
        let mut runs = 0;
        for &name in &self.programs {
            if let Some(info) = self.ebpf.program(name).and_then(|p| p.info().ok()) {
                total += info.run_time();
                runs += info.run_count();
            }
        }
        (total, runs)
    }

    /// Kernel memory of all the loaded maps now, as the kernel accounts it.
    pub fn kernel_memory_bytes(&self) -> u64 {
        self.ebpf
            .maps()
            .filter_map(|(_, m)| map_data(m))
            .filter_map(|d| memory::map_memlock(d.fd().as_fd()))
            .sum()
    }

    /// Drain the aggregates: every row counted since the previous snapshot is read
    /// and deleted from the kernel in one batch per map, so the maps never fill
    /// however long the recording and userspace only ever sees each count once (the
    /// caller sums the snapshots). Also reads the stacks those rows reference that
    /// `known` says the caller has not resolved yet (each stack copy is deleted from
    /// the kernel once read), the loss counters (cumulative) and the threads blocked
    /// right now.
    pub fn snapshot(
        &mut self,
        known: impl Fn((u32, i32)) -> bool,
    ) -> Result<Snapshot, CollectError> {
        let mut snap = Snapshot {
            waits: self.drain::<RawWaitKey, RawWaitStats, _>(MAP_WAITS, |k, v| {
                WaitRow::from_raw(k, std::slice::from_ref(v))
            })?,
            wakes: self.drain::<RawWakeKey, RawWakeStats, _>(MAP_WAKES, |k, v| {
                WakeRow::from_raw(k, std::slice::from_ref(v))
            })?,
            edges: self.drain::<RawEdgeKey, RawEdgeStats, _>(MAP_EDGES, |k, v| {
                EdgeRow::from_raw(k, std::slice::from_ref(v))
            })?,
            blame: self.drain::<RawBlameKey, RawBlameStats, _>(MAP_BLAME, BlameRow::from_raw)?,
            ..Snapshot::default()
        };
        let wanted: BTreeSet<(u32, i32)> = snap
            .waits
            .iter()
            .map(|r| (r.tgid, r.stack_id))
            .chain(snap.wakes.iter().map(|r| (r.tgid, r.stack_id)))
            .chain(snap.edges.iter().map(|e| (e.waker_pid(), e.waker_stack_id)))
            .chain(snap.blame.iter().filter_map(BlameRow::holder_stack))
            .filter(|&(_, id)| id >= 0)
            .filter(|&k| !known(k))
            .collect();
        self.read_stacks(&wanted, &mut snap)?;

        let losses: PerCpuArray<&MapData, u64> = map_ref(&self.ebpf, MAP_LOSSES)?;
        for loss in Loss::ALL {
            let per_cpu = losses
                .get(&(loss as u32), 0)
                .map_err(|e| map_err(MAP_LOSSES, &e))?;
            snap.losses.set(loss, per_cpu.iter().sum());
        }
        let tasks: Vec<(u32, RawTask)> =
            batch::read_all(self.fd(MAP_TASKS)?, false).map_err(|e| map_err(MAP_TASKS, &e))?;
        snap.unfinished_waits = tasks
            .iter()
            .filter(|(_, t)| t.call & CALL_WAIT != 0 && t.call != CALL_EXITED)
            .count() as u64;
        self.reap_exited_tasks(&tasks);
        Ok(snap)
    }

    /// Delete the rows of threads that exited before the previous drain (the probe
    /// marks them at exit, see `CALL_EXITED`): a waiter they woke has returned by
    /// now, and `TASKS` must not fill with the dead.
    fn reap_exited_tasks(&mut self, tasks: &[(u32, RawTask)]) {
        let mut exited: Vec<u32> = tasks
            .iter()
            .filter(|(_, t)| t.call == CALL_EXITED)
            .map(|&(tid, _)| tid)
            .collect();
        exited.sort_unstable();
        let previous = std::mem::take(&mut self.exited_tasks);
        if let Ok(mut rows) =
            map_mut::<BpfHashMap<&mut MapData, u32, RawTask>>(&mut self.ebpf, MAP_TASKS)
        {
            for tid in previous
                .iter()
                .filter(|tid| exited.binary_search(tid).is_ok())
            {
                let _ = rows.remove(tid);
            }
        }
        self.exited_tasks = exited
            .into_iter()
            .filter(|tid| previous.binary_search(tid).is_err())
            .collect();
    }

    /// Every row of a shared aggregation map, read and deleted in batches.
    // An update racing with its row's deletion (the few instructions between the
    // probe's lookup and its add) is the only way an event can be missed here.
    fn drain<K: aya::Pod, V: aya::Pod, R>(
        &self,
        name: &'static str,
        decode: impl Fn(&K, &V) -> R,
    ) -> Result<Vec<R>, CollectError> {
        let rows: Vec<(K, V)> =
            batch::read_all(self.fd(name)?, true).map_err(|e| map_err(name, &e))?;
        Ok(rows.iter().map(|(k, v)| decode(k, v)).collect())
    }

    /// Read the stacks in `wanted` into `snap`: frame-pointer stacks from the kernel's
    /// stack maps, and for DWARF ids the user-stack copy (deleted from the kernel once
    /// read) with its frame-pointer fallback.
    fn read_stacks(
        &mut self,
        wanted: &BTreeSet<(u32, i32)>,
        snap: &mut Snapshot,
    ) -> Result<(), CollectError> {
        if wanted.is_empty() {
            return Ok(());
        }
        let mut fp_ids = Vec::new();
        {
            let mut copies: BpfHashMap<&mut MapData, i32, RawUserStack> =
                map_mut(&mut self.ebpf, MAP_USER_STACKS)?;
            for &(tgid, id) in wanted {
                if id < DWARF_STACK_ID_BASE {
                    fp_ids.push((tgid, id, id));
                    continue;
                }
                let Ok(copy) = copies.get(&id, 0) else {
                    continue;
                };
                let _ = copies.remove(&id);
                snap.user_stacks
                    .insert((tgid, id), UserStackCopy::from_raw(&copy));
                if copy.fp_stack_id < 0 {
                    snap.stacks.insert((tgid, id), Vec::new());
                } else {
                    fp_ids.push((tgid, id, copy.fp_stack_id));
                }
            }
        }
        let stacks: StackTraceMap<&MapData> = map_ref(&self.ebpf, MAP_STACKS)?;
        let overflow: StackTraceMap<&MapData> = map_ref(&self.ebpf, MAP_STACKS2)?;
        for (tgid, wanted_id, id) in fp_ids {
            let trace = if id >= STACK_ID_OVERFLOW {
                overflow.get(&((id - STACK_ID_OVERFLOW) as u32), 0)
            } else {
                stacks.get(&(id as u32), 0)
            };
            // A missing id means the slot was reused; the row then has no stack (it
            // cannot happen without BPF_F_REUSE_STACKID, but must not abort a report).
            if let Ok(trace) = trace {
                snap.stacks.insert(
                    (tgid, wanted_id),
                    trace.frames().iter().map(|f| f.ip).collect(),
                );
            } else if wanted_id != id {
                snap.stacks.insert((tgid, wanted_id), Vec::new());
            }
        }
        Ok(())
    }

    fn fd(&self, name: &'static str) -> Result<BorrowedFd<'_>, CollectError> {
        self.ebpf
            .map(name)
            .and_then(map_data)
            .map(|d| d.fd().as_fd())
            .ok_or(CollectError::Map {
                map: name,
                reason: "missing from the object".into(),
            })
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The data behind a map, for its fd.
fn map_data(map: &Map) -> Option<&MapData> {
    match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::StackTraceMap(d) => Some(d),
        _ => None,
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

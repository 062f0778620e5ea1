//! Loading the probes, choosing targets and reading the kernel's aggregates.
//!
//! Owns: everything that talks to the kernel through aya — the embedded eBPF object,
//! choosing and attaching the hooks ([`attach`]), the target set, and turning the BPF
//! maps into a [`Snapshot`]: batch reads ([`batch`]), draining the shared maps (each
//! snapshot holds the counts since the previous one; `session` keeps the totals;
//! [`generation`] says why a drain never loses a count the probes are adding),
//! reading each frame-pointer stack the caller does not know yet, draining the stack
//! copies (handed to the caller one at a time, never held) and deleting the stacks
//! the caller says are spent, and the maps' kernel memory ([`memory`]). This is the ONLY module that imports aya. Must not:
//! attribute, symbolize, format or keep what it read (those stages get the
//! `Snapshot`, and `session::fold` owns the totals).

pub mod attach;
mod batch;
pub mod blame;
pub mod features;
mod generation;
pub mod go;
mod kernel_btf;
pub mod memory;
mod mmap;
mod shared;
mod sizes;
pub mod snapshot;
mod tallies;
mod target_bits;
mod task_rows;

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use aya::Ebpf;
use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData, PerCpuArray, StackTraceMap};
use profiler_common::{
    CALL_EXITED, CALL_WAIT, DWARF_STACK_ID_BASE, GLOBAL_COPY_USER_STACKS, GLOBAL_RAW_SYSCALLS,
    GLOBAL_TASK_PID_OFFSET, GLOBAL_TASK_SLOTS, GLOBAL_TASK_TGID_OFFSET,
    GLOBAL_WAIT_START_AT_SWITCH, Loss, MAP_DRAIN_GEN, MAP_EDGES, MAP_LOSSES, MAP_STACKS,
    MAP_STACKS2, MAP_TALLIES, MAP_TARGET_BITS, MAP_TARGETS, MAP_TASK_CLAIMS, MAP_TASK_SPILL,
    MAP_TASKS, MAP_USER_STACKS, MAP_WAITS, MAP_WAKES, RawEdgeKey, RawEdgeStats, RawTask,
    RawUserStack, RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats, STACK_ID_OVERFLOW,
    target_flags,
};
use thiserror::Error;

pub use crate::collect::attach::AttachMethod;
/// Where a task's ids are in the running kernel's `struct task_struct` (what the
/// context-switch probe is loaded with; the floor test loads its own with it).
pub use crate::collect::kernel_btf::{TaskIdOffsets, task_id_offsets};

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

/// An aya loader for `object`. `EbpfLoader::new` parses the kernel's BTF (~9 MiB of
/// heap held, twice that while parsing), which only CO-RE relocations use; our probes
/// have none (`has_core_relocations`, checked by a test on the built objects), so it
/// is dropped before loading rather than held through it and the maps' creation.
pub(crate) fn loader_for(object: &[u8]) -> aya::EbpfLoader<'static> {
    let mut loader = aya::EbpfLoader::new();
    if !has_core_relocations(object) {
        loader.btf(None);
    }
    loader
}

/// Whether an eBPF object has CO-RE relocations (the `core_relo` part of its
/// `.BTF.ext` section), which need the kernel's BTF at load time. A section that
/// cannot be read counts as having them.
fn has_core_relocations(object: &[u8]) -> bool {
    use object::{Object as _, ObjectSection as _};
    let Ok(file) = object::File::parse(object) else {
        return true;
    };
    let Some(ext) = file.section_by_name(".BTF.ext") else {
        return false;
    };
    let Ok(data) = ext.data() else {
        return true;
    };
    let word = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // struct btf_ext_header: magic u16, version u8, flags u8, hdr_len u32, then
    // func_info/line_info offsets and lengths; core_relo_off/len when hdr_len ≥ 32.
    match word(4) {
        Some(hdr_len) if hdr_len >= 32 => word(28).is_none_or(|len| len > 0),
        Some(_) => false,
        None => true,
    }
}

/// Aggregation rows read per syscall.
const ROWS_PER_BATCH: usize = 1024;

/// Stack copies read per syscall: 32 × 16 KiB buffers (the kernel allocates as much
/// again for each batch).
const COPIES_PER_BATCH: usize = 32;

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
    /// How to hook futex calls (`--attach-method`); `None`: the best the kernel
    /// accepts (see [`AttachMethod::candidates`]).
    pub attach_method: Option<AttachMethod>,
    /// Turn the kernel's BPF run-time statistics on while loaded (for `run_stats`).
    /// Machine-wide: every BPF program of the host then reads the clock twice per
    /// run, so only on request. Without it `run_stats` still counts whatever runs the
    /// kernel measured because someone else turned them on.
    pub run_time_stats: bool,
}

/// Loaded and attached probes. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    links: Vec<Link>,
    method: AttachMethod,
    /// Methods tried before `method` and why the kernel refused each.
    refused: Vec<(AttachMethod, String)>,
    programs: Vec<&'static str>,
    /// The kernel's target filter, memory-mapped (one bit per traced tgid).
    target_bits: target_bits::TargetBits,
    /// The traced threads' rows, memory-mapped.
    task_rows: task_rows::TaskRows,
    /// The fast paths' counts, memory-mapped.
    tallies: tallies::Tallies,
    /// Buffers for draining the 16 KiB stack copies, reused at every refresh.
    copies: batch::Batch<i32, RawUserStack>,
    /// Keeps the kernel's BPF run-time accounting on while we live (`None` if the
    /// kernel refused; then run times read as zero).
    _stats: Option<OwnedFd>,
    /// Threads whose `TASK_SPILL` rows were marked exited at the last drain, sorted.
    exited_spilled: Vec<u32>,
    /// The drain generation, and the grace period that makes a generation safe to
    /// drain.
    generations: generation::Generations,
    /// The programs are detached: the next drain takes every generation.
    detached: bool,
}

impl Probes {
    /// Choose the attach method, load the eBPF object and attach the programs.
    /// Nothing is traced until [`Probes::add_target`] is called.
    pub fn load(opts: LoadOptions) -> Result<Self, CollectError> {
        if PROBES_OBJECT.is_empty() {
            return Err(CollectError::NoProbes);
        }
        raise_memlock_limit();
        let candidates = AttachMethod::candidates(opts.attach_method);
        let copy = u32::from(opts.copy_user_stacks);
        // The same for every candidate (see `raw_syscall_bits`).
        let raw = candidates[0].raw_syscall_bits(opts.syscall_errors);
        let sizes = sizes::overrides();
        let mut loader = loader_for(PROBES_OBJECT);
        for (name, n) in &sizes {
            loader.map_max_entries(name, *n);
        }
        // Where `sched_switch` finds the incoming task's process (holders only).
        let ids = if opts.holders {
            kernel_btf::task_id_offsets().map_err(|e| CollectError::Load(e.to_string()))?
        } else {
            kernel_btf::TaskIdOffsets::default()
        };
        // A shrunk `TASKS` must stay a power of two: the probe masks thread ids.
        let task_slots = sizes::task_slots(&sizes);
        // With `sched_switch` attached, a blocked wait is timed from its switch-out,
        // and no wait reads the clock at entry.
        let wait_start_at_switch = u32::from(opts.holders);
        loader.map_max_entries(MAP_TASKS, task_slots);
        let mut ebpf = loader
            .override_global(GLOBAL_COPY_USER_STACKS, &copy, true)
            .override_global(GLOBAL_TASK_SLOTS, &task_slots, true)
            .override_global(GLOBAL_TASK_TGID_OFFSET, &ids.tgid, true)
            .override_global(GLOBAL_TASK_PID_OFFSET, &ids.pid, true)
            .override_global(GLOBAL_RAW_SYSCALLS, &raw, true)
            .override_global(GLOBAL_WAIT_START_AT_SWITCH, &wait_start_at_switch, true)
            .load(PROBES_OBJECT)
            .map_err(|e| CollectError::Load(format!("{e:#}")))?;
        let stats = opts
            .run_time_stats
            .then(|| aya::sys::enable_stats(aya::sys::Stats::RunTime).ok())
            .flatten();
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
        let task_rows = task_rows::TaskRows::map(map_fd(&ebpf, MAP_TASK_CLAIMS)?, task_slots)?;
        let tallies = tallies::Tallies::map(map_fd(&ebpf, MAP_TALLIES)?)?;
        let generations = generation::Generations::new().map_err(|e| map_err(MAP_DRAIN_GEN, &e))?;
        // Futex hooks first: a method the kernel refuses leaves nothing attached.
        let mut btf = attach::KernelBtf::default();
        let hooks = attach::attach_futex(&mut ebpf, &candidates, &mut btf)?;
        let method = hooks.method;
        let mut links = hooks.links;
        let others = attach::other_programs(method, opts.holders, opts.syscall_errors);
        let attached = attach::attach_all(&mut ebpf, &others, &mut btf);
        drop(btf);
        match attached {
            Ok(more) => links.extend(more),
            Err(e) => {
                attach::detach_all(&mut ebpf, &mut links);
                return Err(e);
            }
        }
        let mut programs = attach::futex_programs(method);
        programs.extend(others);
        Ok(Self {
            ebpf,
            links,
            method,
            refused: hooks.refused,
            programs,
            target_bits,
            task_rows,
            tallies,
            copies: batch::Batch::with_rows(COPIES_PER_BATCH),
            _stats: stats,
            exited_spilled: Vec::new(),
            generations,
            detached: false,
        })
    }

    /// How futex calls are hooked in this session.
    pub fn attach_method(&self) -> AttachMethod {
        self.method
    }

    /// The better methods tried first and why the kernel refused each (auto only).
    pub fn refused_methods(&self) -> &[(AttachMethod, String)] {
        &self.refused
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

    /// How many children the kernel has followed so far: when it has not moved since
    /// the last [`Probes::targets`], that set has no new member (the kernel counts a
    /// child after adding it). No syscall.
    pub fn followed(&self) -> u64 {
        self.target_bits.followed()
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
        self.detached = true;
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
            .map(|d| d.fd().as_fd())
            .chain(self.generations.fds())
            .filter_map(memory::map_memlock)
            .sum()
    }

    /// Drain the aggregates: every row counted since the previous snapshot is read
    /// and deleted from the kernel a batch at a time, so the maps never fill however
    /// long the recording and userspace only ever sees each count once (the caller
    /// sums the snapshots). The rows taken are those of the generations the probes no
    /// longer count into (see [`generation`]; all of them once detached): what is
    /// counted while this runs goes to the next snapshot, never lost. Takes at
    /// least one RCU grace period of wall time. Also reads the frame-pointer stacks
    /// those rows reference that `known` says the caller has not resolved yet (the
    /// copies' ids are read by [`Probes::drain_copies`]), the loss counters
    /// (cumulative) and the threads blocked right now.
    pub fn snapshot(
        &mut self,
        known: impl Fn((u32, i32)) -> bool,
    ) -> Result<Snapshot, CollectError> {
        let gen_map = map_fd(&self.ebpf, MAP_DRAIN_GEN)?;
        let current = self
            .generations
            .advance(gen_map)
            .map_err(|e| map_err(MAP_DRAIN_GEN, &e))?;
        let detached = self.detached;
        let old = |g| generation::drainable(g, current, detached);
        let mut snap = Snapshot {
            waits: self.drain::<RawWaitKey, RawWaitStats, _>(MAP_WAITS, old, |k, v| {
                WaitRow::from_raw(k, std::slice::from_ref(v))
            })?,
            wakes: self.drain::<RawWakeKey, RawWakeStats, _>(MAP_WAKES, old, |k, v| {
                WakeRow::from_raw(k, std::slice::from_ref(v))
            })?,
            blame: self.drain::<RawBlameKey, RawBlameStats, _>(
                MAP_BLAME,
                old,
                BlameRow::from_raw,
            )?,
            ..Snapshot::default()
        };
        // An edge row also holds the blame charged to its waker itself.
        for (edge, blame) in self.drain::<RawEdgeKey, RawEdgeStats, _>(MAP_EDGES, old, |k, v| {
            (
                EdgeRow::from_raw(k, std::slice::from_ref(v)),
                BlameRow::from_edge(k, v),
            )
        })? {
            snap.edges.push(edge);
            snap.blame.extend(blame);
        }
        // Any time is right for the tallies: each count is taken out atomically.
        self.tallies.take(&mut snap.waits, &mut snap.wakes);
        let wanted: BTreeSet<(u32, i32)> = snap
            .waits
            .iter()
            .map(|r| (r.tgid, r.stack_id))
            .chain(snap.wakes.iter().map(|r| (r.tgid, r.stack_id)))
            .chain(snap.edges.iter().map(|e| (e.waker_pid(), e.waker_stack_id)))
            .chain(snap.blame.iter().filter_map(BlameRow::holder_stack))
            .filter(|&(_, id)| (0..DWARF_STACK_ID_BASE).contains(&id))
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
        let spilled: Vec<(u32, RawTask)> = batch::read_all(self.fd(MAP_TASK_SPILL)?, false)
            .map_err(|e| map_err(MAP_TASK_SPILL, &e))?;
        let rows: Array<&MapData, RawTask> = map_ref(&self.ebpf, MAP_TASKS)?;
        let calls = self
            .task_rows
            .calls(&mut |slot| rows.get(&slot, 0).ok().map(|t| (t.owner, t.call)));
        snap.unfinished_waits = calls
            .iter()
            .chain(spilled.iter().map(|(_, t)| &t.call))
            .filter(|&&call| call & CALL_WAIT != 0 && call != CALL_EXITED)
            .count() as u64;
        self.reap_exited_spilled(&spilled);
        Ok(snap)
    }

    /// Delete the spilled rows of threads that exited before the previous drain (the
    /// probe marks them at exit, see `CALL_EXITED`): a waiter they woke has returned
    /// by now, and `TASK_SPILL` must not fill with the dead. (Rows in `TASKS` slots
    /// are taken over by the probe; see `task_rows`.)
    fn reap_exited_spilled(&mut self, tasks: &[(u32, RawTask)]) {
        let mut exited: Vec<u32> = tasks
            .iter()
            .filter(|(_, t)| t.call == CALL_EXITED)
            .map(|&(tid, _)| tid)
            .collect();
        exited.sort_unstable();
        let previous = std::mem::take(&mut self.exited_spilled);
        if let Ok(mut rows) =
            map_mut::<BpfHashMap<&mut MapData, u32, RawTask>>(&mut self.ebpf, MAP_TASK_SPILL)
        {
            for tid in previous
                .iter()
                .filter(|tid| exited.binary_search(tid).is_ok())
            {
                let _ = rows.remove(tid);
            }
        }
        self.exited_spilled = exited
            .into_iter()
            .filter(|tid| previous.binary_search(tid).is_err())
            .collect();
    }

    /// The rows of a shared aggregation map whose generation `old` accepts, read and
    /// deleted a batch at a time (no probe adds to them any more: see [`generation`]).
    fn drain<K: aya::Pod + generation::Generational, V: aya::Pod, R>(
        &self,
        name: &'static str,
        old: impl Fn(u32) -> bool,
        decode: impl Fn(&K, &V) -> R,
    ) -> Result<Vec<R>, CollectError> {
        // Decoded as read: the raw rows never pile up (a full edge map is 16k rows).
        let mut rows = Vec::new();
        batch::Batch::with_rows(ROWS_PER_BATCH)
            .take(
                self.fd(name)?,
                |k: &K| old(k.generation()),
                |k, v| rows.push(decode(k, v)),
            )
            .map_err(|e| map_err(name, &e))?;
        Ok(rows)
    }

    /// Read the frame-pointer stacks in `wanted` into `snap` (ids below
    /// `DWARF_STACK_ID_BASE`; the copies' ids come from [`Probes::drain_copies`]).
    fn read_stacks(
        &self,
        wanted: &BTreeSet<(u32, i32)>,
        snap: &mut Snapshot,
    ) -> Result<(), CollectError> {
        if wanted.is_empty() {
            return Ok(());
        }
        let stacks = FpStacks::open(&self.ebpf)?;
        for &(tgid, id) in wanted {
            // A missing id: the kernel never bound it, or it was deleted after its
            // last reader (see `delete_stacks`); the row then has no stack.
            if let Some(ips) = stacks.get(id) {
                snap.stacks.insert((tgid, id), ips);
            }
        }
        Ok(())
    }

    /// Drain the user-stack copies: every copy in the kernel is read and deleted, a
    /// batch at a time, and handed to `f` with its frame-pointer walk (read from the
    /// stack maps; empty when the walk failed or its id is gone). Nothing is kept
    /// here: the copies' buffers are reused, so however many copies come in, this
    /// holds one batch of them. Call after [`Probes::snapshot`]: a copy is taken
    /// before the row naming it is counted, so every copy a drained row names is
    /// read by the next call.
    pub fn drain_copies(
        &mut self,
        mut f: impl FnMut(&UserStackCopy, u32, i32, i32, &[u64]),
    ) -> Result<(), CollectError> {
        let fd = map_fd(&self.ebpf, MAP_USER_STACKS)?;
        let stacks = FpStacks::open(&self.ebpf)?;
        let mut walks: HashMap<i32, Vec<u64>> = HashMap::new();
        let mut copy = UserStackCopy::default();
        self.copies
            .each(fd, true, |&id, raw: &RawUserStack| {
                copy.fill_from(raw);
                let fp = if raw.fp_stack_id < 0 {
                    &[][..]
                } else {
                    walks
                        .entry(raw.fp_stack_id)
                        .or_insert_with(|| stacks.get(raw.fp_stack_id).unwrap_or_default())
                        .as_slice()
                };
                f(&copy, raw.tgid, id, raw.fp_stack_id, fp);
            })
            .map_err(|e| map_err(MAP_USER_STACKS, &e))
    }

    /// Delete frame-pointer stacks nothing will name again (see
    /// `session::stacks`), so the stack maps never fill with the stacks of processes
    /// long gone and new stacks stop colliding.
    pub fn delete_stacks(&self, ids: &[i32]) -> Result<(), CollectError> {
        let (overflow, first): (Vec<i32>, Vec<i32>) =
            ids.iter().partition(|&&id| id >= STACK_ID_OVERFLOW);
        let first: Vec<u32> = first
            .iter()
            .filter(|&&id| id >= 0)
            .map(|&id| id as u32)
            .collect();
        let overflow: Vec<u32> = overflow
            .iter()
            .map(|&id| (id - STACK_ID_OVERFLOW) as u32)
            .collect();
        batch::delete_each(self.fd(MAP_STACKS)?, &first);
        batch::delete_each(self.fd(MAP_STACKS2)?, &overflow);
        Ok(())
    }

    fn fd(&self, name: &'static str) -> Result<BorrowedFd<'_>, CollectError> {
        map_fd(&self.ebpf, name)
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The two frame-pointer stack maps, read by stack id (`STACKS`, or `STACKS2` for
/// ids from `STACK_ID_OVERFLOW` on).
struct FpStacks<'a> {
    first: StackTraceMap<&'a MapData>,
    overflow: StackTraceMap<&'a MapData>,
}

impl<'a> FpStacks<'a> {
    fn open(ebpf: &'a Ebpf) -> Result<Self, CollectError> {
        Ok(Self {
            first: map_ref(ebpf, MAP_STACKS)?,
            overflow: map_ref(ebpf, MAP_STACKS2)?,
        })
    }

    /// The instruction addresses of stack `id`, innermost first.
    fn get(&self, id: i32) -> Option<Vec<u64>> {
        let trace = if id >= STACK_ID_OVERFLOW {
            self.overflow.get(&((id - STACK_ID_OVERFLOW) as u32), 0)
        } else {
            self.first.get(&(id as u32), 0)
        };
        trace
            .ok()
            .map(|t| t.frames().iter().map(|f| f.ip).collect())
    }
}

fn map_fd<'a>(ebpf: &'a Ebpf, name: &'static str) -> Result<BorrowedFd<'a>, CollectError> {
    ebpf.map(name)
        .and_then(map_data)
        .map(|d| d.fd().as_fd())
        .ok_or(CollectError::Map {
            map: name,
            reason: "missing from the object".into(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probes_need_no_kernel_btf() {
        for (name, object) in [
            ("probes", PROBES_OBJECT),
            ("Go probes", go::GO_PROBES_OBJECT),
        ] {
            if object.is_empty() {
                eprintln!("skipping {name} - built without probes (AYA_BUILD_SKIP)");
                continue;
            }
            assert!(
                !has_core_relocations(object),
                "the {name} have CO-RE relocations: load them with the kernel's BTF"
            );
        }
        assert!(has_core_relocations(b"not an ELF file"));
    }
}

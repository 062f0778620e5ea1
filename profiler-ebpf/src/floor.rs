//! The cost floor of timing a futex wait on this kernel: four pairs of minimal
//! programs on `syscalls:sys_{enter,exit}_futex`, each the least a profiler that times
//! waits can do, differing only in where the thread's start time lives.
//!
//! Owns nothing of lockprof's probe: this object is never loaded by `lockprof`; the
//! root test `probe.rs::floor_of_timing_a_futex_wait` loads it, attaches one pair at a
//! time to `futex-pingpong` and prices each from the kernel's run-time statistics.
//! Must not: grow into a second probe — each pair stays the minimum of its kind.
//!
//! - `floor_none_*`: the target filter only (two programs that do nothing);
//! - `floor_array_*`: + a clock read at each end and the start time in an array slot
//!   indexed by thread id (an inlined lookup: the cheapest per-thread slot there is,
//!   though not a correct one — two threads can share a slot);
//! - `floor_task_*`: the same with the slot in task-local storage
//!   (`BPF_MAP_TYPE_TASK_STORAGE`, a BTF-defined map: aya-ebpf 0.2.1 has no wrapper
//!   for it, [`TaskStorage`] is one);
//! - `floor_hash_*`: the same with the slot in a hash keyed by thread id (what
//!   lockprof's `TASKS` row and bpftrace's `@start[tid]` are).
//!
//! Every timed wait is counted with its time in a per-CPU slot (no atomics), so the
//! test can check that each pair timed the ping-pong's waits.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_ANY, BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE, bpf_map_type},
    btf_maps::{Array, HashMap, PerCpuArray},
    helpers::generated::bpf_task_storage_get,
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_ktime_get_ns},
    macros::{btf_map, tracepoint},
    programs::TracePointContext,
};

/// Slots of `floor_array_*` (a power of two).
const ARRAY_SLOTS: usize = 1 << 16;

/// `BPF_MAP_TYPE_TASK_STORAGE` as a BTF map definition: the layout libbpf and aya
/// read from the `.maps` section (each field's array length carries one setting).
#[repr(C)]
pub struct TaskStorage<T> {
    r#type: *const [i32; bpf_map_type::BPF_MAP_TYPE_TASK_STORAGE as usize],
    key: *const i32,
    value: *const T,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; BPF_F_NO_PREALLOC as usize],
}

// SAFETY: the fields are placeholders the loader reads from BTF; never dereferenced.
unsafe impl<T> Sync for TaskStorage<T> {}

impl<T> TaskStorage<T> {
    const fn new() -> Self {
        Self {
            r#type: core::ptr::null(),
            key: core::ptr::null(),
            value: core::ptr::null(),
            max_entries: core::ptr::null(),
            map_flags: core::ptr::null(),
        }
    }

    /// The current task's value, created zeroed when `create`.
    #[inline(always)]
    fn current(&self, create: bool) -> Option<*mut T> {
        let flags = if create {
            u64::from(BPF_LOCAL_STORAGE_GET_F_CREATE)
        } else {
            0
        };
        // SAFETY: the map pointer is this static (the loader relocates it); the task
        // is the current one, a trusted BTF pointer.
        let p = unsafe {
            bpf_task_storage_get(
                core::ptr::from_ref(self).cast_mut().cast(),
                bpf_get_current_task_btf().cast(),
                core::ptr::null_mut(),
                flags,
            )
        };
        (!p.is_null()).then_some(p.cast::<T>())
    }
}

/// The traced process (written by the test before the target starts its calls).
#[btf_map]
static FLOOR_TGID: Array<u32, 1> = Array::new();

/// Per CPU: `[waits timed, their total ns]`.
#[btf_map]
static FLOOR_TIMED: PerCpuArray<[u64; 2], 1> = PerCpuArray::new();

#[btf_map]
static FLOOR_SLOTS: Array<u64, ARRAY_SLOTS> = Array::new();

#[btf_map]
static FLOOR_TASK: TaskStorage<u64> = TaskStorage::new();

#[btf_map]
static FLOOR_HASH: HashMap<u32, u64, 65536> = HashMap::new();

// `syscalls:sys_{enter,exit}_futex` record offsets: `op` (arg 1) and `ret`.
const TP_OP: usize = 24;
const TP_RET: usize = 16;

/// The current thread's id when its process is the target.
#[inline(always)]
fn traced() -> Option<u32> {
    let ids = bpf_get_current_pid_tgid();
    let tgid = FLOOR_TGID.get(0).copied()?;
    ((ids >> 32) as u32 == tgid).then_some(ids as u32)
}

/// A futex wait enters (`FUTEX_WAIT` or `FUTEX_WAIT_BITSET`, private or not).
#[inline(always)]
fn is_wait(ctx: &TracePointContext) -> bool {
    // SAFETY: a field of the tracepoint record, loaded directly.
    let op = unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(TP_OP).cast::<u64>()) };
    matches!(op & 127, 0 | 9)
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// A wait that blocked (returned 0) ends: count it.
#[inline(always)]
fn timed(ctx: &TracePointContext, start: u64) {
    if start == 0 {
        return;
    }
    // SAFETY: a field of the tracepoint record.
    let ret = unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(TP_RET).cast::<i64>()) };
    if ret != 0 {
        return;
    }
    let waited = now() - start;
    if let Some(t) = FLOOR_TIMED.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; no concurrent writer.
        unsafe {
            (*t)[0] += 1;
            (*t)[1] += waited;
        }
    }
}

#[tracepoint]
pub fn floor_none_enter(_ctx: TracePointContext) -> u32 {
    let _ = traced();
    0
}

#[tracepoint]
pub fn floor_none_exit(_ctx: TracePointContext) -> u32 {
    let _ = traced();
    0
}

#[tracepoint]
pub fn floor_array_enter(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && is_wait(&ctx)
        && let Some(slot) = FLOOR_SLOTS.get_ptr_mut(tid & (ARRAY_SLOTS as u32 - 1))
    {
        // SAFETY: a live array slot.
        unsafe { *slot = now() };
    }
    0
}

#[tracepoint]
pub fn floor_array_exit(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && let Some(slot) = FLOOR_SLOTS.get_ptr_mut(tid & (ARRAY_SLOTS as u32 - 1))
    {
        // SAFETY: a live array slot.
        let start = unsafe { core::ptr::replace(slot, 0) };
        timed(&ctx, start);
    }
    0
}

#[tracepoint]
pub fn floor_task_enter(ctx: TracePointContext) -> u32 {
    if traced().is_some()
        && is_wait(&ctx)
        && let Some(slot) = FLOOR_TASK.current(true)
    {
        // SAFETY: the current task's storage.
        unsafe { *slot = now() };
    }
    0
}

#[tracepoint]
pub fn floor_task_exit(ctx: TracePointContext) -> u32 {
    if traced().is_some()
        && let Some(slot) = FLOOR_TASK.current(false)
    {
        // SAFETY: the current task's storage.
        let start = unsafe { core::ptr::replace(slot, 0) };
        timed(&ctx, start);
    }
    0
}

#[tracepoint]
pub fn floor_hash_enter(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && is_wait(&ctx)
    {
        let _ = FLOOR_HASH.insert(tid, now(), u64::from(BPF_ANY));
    }
    0
}

#[tracepoint]
pub fn floor_hash_exit(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && let Some(slot) = FLOOR_HASH.get_ptr_mut(tid)
    {
        // SAFETY: a live map value (only this thread writes its row).
        let start = unsafe { core::ptr::replace(slot, 0) };
        timed(&ctx, start);
    }
    0
}

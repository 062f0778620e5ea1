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
//!   lockprof's `TASKS` row and bpftrace's `@start[tid]` are);
//! - `floor_site_*`: `floor_array_*` + one user read per call, of the first frame
//!   record at `rbp` when it looks like a frame pointer: the least a profiler can read
//!   to tell apart two call paths reaching the same `futex` instruction (lockprof's
//!   call-position key reads two records);
//! - `floor_wakers_*`: `floor_site_*` + the clock at each wake, kept per futex (an
//!   array slot by address) for a blocked wait to find its waker: the least a
//!   profiler needs to say who ended a wait;
//! - `floor_holders_*` + `floor_switch` on `sched_switch`: holder tracking's least —
//!   the off-CPU periods of the traced threads (a clock read per switch of one, kept
//!   in its array slot) — with the waits timed by those periods instead of two clock
//!   reads (as lockprof does), one frame record per call and the clock at each wake
//!   kept per futex. lockprof does all of this, correctly (a row per thread, never a
//!   shared slot), plus rows per call path, pairing and blame.
//!
//! Every timed wait is counted with its time in a per-CPU slot (no atomics), and the
//! frame records read and waits paired in another, so the test can check that each
//! pair did its work on the ping-pong's calls.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_ANY, BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE, bpf_map_type},
    btf_maps::{Array, HashMap, PerCpuArray},
    helpers::generated::bpf_task_storage_get,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_ktime_get_ns, bpf_probe_read_user,
    },
    macros::{btf_map, btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};

use crate::regs::{TaskRegs, task_pid, task_tgid};

/// Slots of `floor_array_*` (a power of two).
const ARRAY_SLOTS: usize = 1 << 16;

/// Per-futex slots of `floor_wakers_*` (a power of two).
const WAKE_SLOTS: usize = 1 << 12;

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

/// `floor_site_*` and `floor_wakers_*`: per thread id, `[wait start, futex address]`.
#[btf_map]
static FLOOR_WAITS: Array<[u64; 2], ARRAY_SLOTS> = Array::new();

/// `floor_wakers_*`: per futex (by address), its last wake's `[time, thread id]`.
#[btf_map]
static FLOOR_WAKES: Array<[u64; 2], WAKE_SLOTS> = Array::new();

/// Per CPU: `[frame records read, blocked waits whose waker was found]`.
#[btf_map]
static FLOOR_SEEN: PerCpuArray<[u64; 2], 1> = PerCpuArray::new();

/// `floor_holders_*` and `floor_switch`: per thread id, `[the futex address of its
/// wait in progress (0: none), that wait's first switch-out, its last switch-out, its
/// last switch-in]`.
#[btf_map]
static FLOOR_THREADS: Array<[u64; 4], ARRAY_SLOTS> = Array::new();

/// Per CPU: `[off-CPU periods of traced threads ended, their total ns]`.
#[btf_map]
static FLOOR_OFF_CPU: PerCpuArray<[u64; 2], 1> = PerCpuArray::new();

// `syscalls:sys_{enter,exit}_futex` record offsets: `uaddr` (arg 0), `op` (arg 1) and
// `ret`.
const TP_UADDR: usize = 16;
const TP_OP: usize = 24;
const TP_RET: usize = 16;

/// The current thread's id when its process is the target.
#[inline(always)]
fn traced() -> Option<u32> {
    let ids = bpf_get_current_pid_tgid();
    let tgid = FLOOR_TGID.get(0).copied()?;
    ((ids >> 32) as u32 == tgid).then_some(ids as u32)
}

/// One field of the tracepoint record.
#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: 8-byte aligned fields of the syscalls tracepoint record, loaded directly.
    unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
}

/// A futex wait enters (`FUTEX_WAIT` or `FUTEX_WAIT_BITSET`, private or not).
#[inline(always)]
fn is_wait(ctx: &TracePointContext) -> bool {
    matches!(field::<u64>(ctx, TP_OP) & 127, 0 | 9)
}

/// A futex wake enters (`FUTEX_WAKE` or `FUTEX_WAKE_BITSET`, private or not).
#[inline(always)]
fn is_wake(ctx: &TracePointContext) -> bool {
    matches!(field::<u64>(ctx, TP_OP) & 127, 1 | 10)
}

/// Add `n` to this CPU's pair of counters in `map` (one lookup).
#[inline(always)]
fn count(map: &PerCpuArray<[u64; 2], 1>, n: [u64; 2]) {
    if let Some(c) = map.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; no concurrent writer.
        unsafe {
            (*c)[0] += n[0];
            (*c)[1] += n[1];
        }
    }
}

/// The return address in the current call's first frame record, one user read (see
/// `UserPos::frame_pointer`), counted when read.
#[inline(always)]
fn read_caller() {
    if let Some(bp) = TaskRegs::current().position().frame_pointer()
        // SAFETY: bpf_probe_read_user validates the user pointer.
        && let Ok(frame) = unsafe { bpf_probe_read_user(bp as *const [u64; 2]) }
    {
        count(&FLOOR_SEEN, [u64::from(frame[1] != 0), 0]);
    }
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
    if field::<i64>(ctx, TP_RET) != 0 {
        return;
    }
    count(&FLOOR_TIMED, [1, now() - start]);
}

/// The per-thread slot of `floor_site_*`, `floor_wakers_*` and `floor_holders_*`.
#[inline(always)]
fn wait_slot(tid: u32) -> Option<*mut [u64; 2]> {
    FLOOR_WAITS.get_ptr_mut(tid & (ARRAY_SLOTS as u32 - 1))
}

/// The slot of futex `uaddr` in `FLOOR_WAKES`.
#[inline(always)]
fn wake_slot(uaddr: u64) -> Option<*mut [u64; 2]> {
    FLOOR_WAKES.get_ptr_mut((uaddr >> 2) as u32 & (WAKE_SLOTS as u32 - 1))
}

/// Thread `tid` enters a wake of futex `uaddr`: its time and id in the futex's slot.
#[inline(always)]
fn note_wake(uaddr: u64, tid: u32) {
    if let Some(slot) = wake_slot(uaddr) {
        // SAFETY: a live array slot (a racing wake of another CPU may tear it: the
        // pairing then misses, as any floor may).
        unsafe { *slot = [now(), u64::from(tid)] };
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

#[tracepoint]
pub fn floor_site_enter(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && is_wait(&ctx)
        && let Some(slot) = wait_slot(tid)
    {
        // SAFETY: a live array slot.
        unsafe { (*slot)[0] = now() };
    }
    0
}

#[tracepoint]
pub fn floor_site_exit(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && let Some(slot) = wait_slot(tid)
    {
        read_caller();
        // SAFETY: a live array slot.
        let start = unsafe { core::ptr::replace(&raw mut (*slot)[0], 0) };
        timed(&ctx, start);
    }
    0
}

#[tracepoint]
pub fn floor_wakers_enter(ctx: TracePointContext) -> u32 {
    let Some(tid) = traced() else {
        return 0;
    };
    let uaddr = field::<u64>(&ctx, TP_UADDR);
    if is_wait(&ctx) {
        if let Some(slot) = wait_slot(tid) {
            // SAFETY: a live array slot.
            unsafe { *slot = [now(), uaddr] };
        }
    } else if is_wake(&ctx) {
        note_wake(uaddr, tid);
    }
    0
}

#[tracepoint]
pub fn floor_wakers_exit(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && let Some(slot) = wait_slot(tid)
    {
        read_caller();
        // SAFETY: a live array slot.
        let [start, uaddr] = unsafe { core::ptr::replace(slot, [0, 0]) };
        if start != 0 && field::<i64>(&ctx, TP_RET) == 0 {
            timed(&ctx, start);
            if let Some(wake) = wake_slot(uaddr) {
                // SAFETY: a live array slot, copied out.
                let [at, waker] = unsafe { *wake };
                count(
                    &FLOOR_SEEN,
                    [0, u64::from(at >= start && waker != u64::from(tid))],
                );
            }
        }
    }
    0
}

/// Thread `tid`'s slot in `FLOOR_THREADS`.
#[inline(always)]
fn thread_slot(tid: u32) -> Option<*mut [u64; 4]> {
    FLOOR_THREADS.get_ptr_mut(tid & (ARRAY_SLOTS as u32 - 1))
}

/// A context switch of the machine: a traced thread leaving the CPU starts an
/// off-CPU period, one taking it ends its period.
#[btf_tracepoint(function = "sched_switch")]
pub fn floor_switch(ctx: BtfTracePointContext) -> i32 {
    let Some(target) = FLOOR_TGID.get(0).copied() else {
        return 0;
    };
    // TP_PROTO(bool preempt, prev, next, unsigned int prev_state)
    let prev: *const u8 = ctx.arg(1);
    let next: *const u8 = ctx.arg(2);
    let leaving = task_tgid(prev) == target;
    let taking = task_tgid(next) == target;
    if !leaving && !taking {
        return 0;
    }
    let now = now();
    if leaving && let Some(slot) = thread_slot(task_pid(prev)) {
        // SAFETY: a live array slot.
        unsafe {
            (*slot)[2] = now;
            // A wait leaving the CPU for the first time: its time counts from here.
            if (*slot)[0] != 0 && (*slot)[1] == 0 {
                (*slot)[1] = now;
            }
        }
    }
    if taking && let Some(slot) = thread_slot(task_pid(next)) {
        // SAFETY: a live array slot.
        let left = unsafe { (*slot)[2] };
        if left != 0 {
            count(&FLOOR_OFF_CPU, [1, now - left]);
        }
        // SAFETY: as above.
        unsafe { (*slot)[3] = now };
    }
    0
}

#[tracepoint]
pub fn floor_holders_enter(ctx: TracePointContext) -> u32 {
    let Some(tid) = traced() else {
        return 0;
    };
    let uaddr = field::<u64>(&ctx, TP_UADDR);
    if is_wait(&ctx) {
        if let Some(slot) = thread_slot(tid) {
            // SAFETY: a live array slot. No clock: a blocked wait is timed from its
            // first switch-out to its last switch-in.
            unsafe {
                (*slot)[0] = uaddr;
                (*slot)[1] = 0;
            }
        }
    } else if is_wake(&ctx) {
        note_wake(uaddr, tid);
    }
    0
}

#[tracepoint]
pub fn floor_holders_exit(ctx: TracePointContext) -> u32 {
    if let Some(tid) = traced()
        && let Some(slot) = thread_slot(tid)
    {
        read_caller();
        // SAFETY: a live array slot, copied out, and its wait (if any) ended.
        let [uaddr, from, _, back] = unsafe {
            let row = *slot;
            (*slot)[0] = 0;
            row
        };
        if uaddr != 0 && field::<i64>(&ctx, TP_RET) == 0 {
            let waited = if from != 0 && back > from {
                back - from
            } else {
                0
            };
            count(&FLOOR_TIMED, [1, waited]);
            if let Some(wake) = wake_slot(uaddr) {
                // SAFETY: a live array slot, copied out.
                let [at, waker] = unsafe { *wake };
                count(
                    &FLOOR_SEEN,
                    [0, u64::from(at >= from && waker != u64::from(tid))],
                );
            }
        }
    }
    0
}

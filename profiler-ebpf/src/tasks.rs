//! The traced threads' rows (`RawTask`): one slot per thread id in `TASKS`, an array
//! (see `MAP_TASKS`), so the row read at every futex entry and exit and every
//! switch-out of a traced thread costs no hashing — the verifier inlines an array
//! lookup; a hash lookup cost ≈ 50–60 ns more here (the floor test's array and hash
//! pairs). A thread whose slot another live thread holds (possible only where
//! `pid_max` exceeds the slots) gets a row in `TASK_SPILL`, a hash.
//!
//! Owns these maps and the claiming of slots. Must not: free a row at thread exit (a
//! waiter the thread woke may still read it; the slot is taken over later).

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_NOEXIST},
    macros::map,
    maps::{Array, HashMap},
};
use profiler_common::{
    CALL_EXITED, Loss, MAX_TASK_SPILL, MAX_TASKS, RawTask, TASK_CLAIM_WORDS, task_slot,
};

use crate::maps::count_loss;

const EEXIST: i64 = 17;

/// `MAP_TASKS`' slots as loaded (see `GLOBAL_TASK_SLOTS`), set by userspace at load
/// time. In `.rodata` (frozen): the verifier knows it as a constant.
#[unsafe(no_mangle)]
static TASK_SLOTS: u32 = MAX_TASKS;

/// Thread `tid`'s slot.
#[inline(always)]
fn slot_of(tid: u32) -> u32 {
    // SAFETY: a read-only global the loader set; volatile so the compiler does not
    // fold in the initializer.
    task_slot(tid, unsafe {
        core::ptr::read_volatile(&raw const TASK_SLOTS)
    })
}

/// One row per thread id (modulo `MAX_TASKS`), claimed by `RawTask::owner`.
#[map]
static TASKS: Array<RawTask> = Array::with_max_entries(MAX_TASKS, 0);

/// The rows of threads whose slot another live thread holds.
#[map]
static TASK_SPILL: HashMap<u32, RawTask> = HashMap::with_max_entries(MAX_TASK_SPILL, 0);

/// One bit per slot ever claimed: userspace reads only those rows.
#[map]
static TASK_CLAIMS: Array<u64> = Array::with_max_entries(TASK_CLAIM_WORDS, BPF_F_MMAPABLE);

/// A never-written row to reset a claimed slot from (too large for the BPF stack).
#[map]
static ZERO_TASK: Array<RawTask> = Array::with_max_entries(1, 0);

/// The row of thread `tid`, if it has one — an exited thread's too, until the slot is
/// taken over.
#[inline(always)]
pub fn task(tid: u32) -> Option<*mut RawTask> {
    let slot = TASKS.get_ptr_mut(slot_of(tid))?;
    // SAFETY: a live array slot.
    if unsafe { (*slot).owner } == u64::from(tid) {
        return Some(slot);
    }
    TASK_SPILL.get_ptr_mut(&tid)
}

/// The current thread `tid`'s row, claimed or created on first use; `None` (counted)
/// when its slot is taken and `TASK_SPILL` is full.
#[inline(always)]
pub fn task_row(tid: u32) -> Option<*mut RawTask> {
    let slot = TASKS.get_ptr_mut(slot_of(tid))?;
    // SAFETY: a live array slot.
    let (owner, call) = unsafe { ((*slot).owner, (*slot).call) };
    // A row of this id marked exited belongs to an earlier thread with the same id:
    // the current thread is alive.
    if owner == u64::from(tid) && call != CALL_EXITED {
        return Some(slot);
    }
    claim(tid, slot, owner, call)
}

/// Give thread `tid` a row: its spill row if it has one, else its slot if free or
/// left by an exited thread, else a new spill row.
#[inline(always)]
fn claim(tid: u32, slot: *mut RawTask, owner: u64, call: u32) -> Option<*mut RawTask> {
    if let Some(p) = TASK_SPILL.get_ptr_mut(&tid) {
        return Some(p);
    }
    let zero = ZERO_TASK.get_ptr(0)?;
    if (owner == 0 || owner == u64::from(tid) || call == CALL_EXITED) && take_over(slot, owner, tid)
    {
        // SAFETY: this thread owns the slot now (only it writes the rest of the row);
        // everything after `owner` (the first 8 bytes) is reset from the zero row. A
        // waiter reading the previous owner's row meanwhile checks `owner` first.
        unsafe {
            core::ptr::copy_nonoverlapping(
                zero.cast::<u8>().add(8),
                slot.cast::<u8>().add(8),
                core::mem::size_of::<RawTask>() - 8,
            );
        }
        note_claimed(slot_of(tid));
        return Some(slot);
    }
    // SAFETY: `zero` points at a live array slot the helper only reads.
    if let Err(e) = TASK_SPILL.insert(&tid, unsafe { &*zero }, u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        count_loss(Loss::InFlightMapFull);
        return None;
    }
    let p = TASK_SPILL.get_ptr_mut(&tid)?;
    // SAFETY: a live map value only this thread writes.
    unsafe { (*p).owner = u64::from(tid) };
    Some(p)
}

/// Replace `owner` by `tid` in the slot, unless another CPU changed it first.
#[inline(always)]
fn take_over(slot: *mut RawTask, owner: u64, tid: u32) -> bool {
    // SAFETY: an aligned u64 field of a live array slot; BPF_ATOMIC | BPF_CMPXCHG
    // (5.12+).
    unsafe {
        core::intrinsics::atomic_cxchg::<
            u64,
            { core::intrinsics::AtomicOrdering::SeqCst },
            { core::intrinsics::AtomicOrdering::SeqCst },
        >(&raw mut (*slot).owner, owner, u64::from(tid))
        .1
    }
}

/// Mark slot `i` claimed for userspace (atomically: other CPUs set bits of the same
/// word).
#[inline(always)]
fn note_claimed(i: u32) {
    if let Some(w) = TASK_CLAIMS.get_ptr_mut(i >> 6) {
        // SAFETY: a live array slot; BPF_ATOMIC | BPF_OR on an aligned u64.
        unsafe {
            core::intrinsics::atomic_or::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                w,
                1u64 << (i & 63),
            );
        }
    }
}

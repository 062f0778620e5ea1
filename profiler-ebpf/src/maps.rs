//! Every map of the probes, and the small helpers that create or bump their rows.
//!
//! Sizes live in `profiler-common` (userspace computes the memory they take from the
//! same constants). Rows any thread may update (`EDGES`, `BLAME`) take [`add`] (an
//! atomic `lock +=`), so one row serves all CPUs; rows whose key names the thread
//! (`WAITS`, `WAKES`) take [`bump`], a plain add.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::bpf_get_current_comm,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, StackTrace},
};
use profiler_common::{
    LOSS_KINDS, Loss, MAX_EDGES, MAX_SHARED_SITES, MAX_STACK_CACHE, MAX_STACKS, MAX_STACKS2,
    MAX_TARGETS, MAX_USER_STACKS, MAX_WAIT_KEYS, MAX_WAKE_KEYS, POSITION_SLOTS, RawAddrKey,
    RawEdgeKey, RawEdgeStats, RawPositionSlot, RawSharedSiteKey, RawStackCacheKey,
    RawStackCacheValue, RawUserStack, RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats,
    TARGET_BITS_ENTRIES, TARGET_BITS_FOLLOWED,
};

#[map]
pub static WAITS: HashMap<RawWaitKey, RawWaitStats> = HashMap::with_max_entries(MAX_WAIT_KEYS, 0);

#[map]
pub static WAKES: HashMap<RawWakeKey, RawWakeStats> = HashMap::with_max_entries(MAX_WAKE_KEYS, 0);

#[map]
pub static EDGES: HashMap<RawEdgeKey, RawEdgeStats> = HashMap::with_max_entries(MAX_EDGES, 0);

/// The drain generation (see `MAP_DRAIN_GEN`): written by userspace only.
#[map]
static DRAIN_GEN: Array<u32> = Array::with_max_entries(1, 0);

#[map]
pub static STACKS: StackTrace = StackTrace::with_max_entries(MAX_STACKS, 0);

#[map]
pub static STACKS2: StackTrace = StackTrace::with_max_entries(MAX_STACKS2, 0);

/// Stack ids by call position (see `RawStackCacheKey`): repeats skip the stack walk.
#[map]
pub static STACK_CACHE: LruHashMap<RawStackCacheKey, RawStackCacheValue> =
    LruHashMap::with_max_entries(MAX_STACK_CACHE, 0);

/// Stack ids by call position, direct-mapped (see `RawPositionSlot`): found without
/// hashing before `STACK_CACHE`, which it copies.
#[map]
pub static POSITIONS: Array<RawPositionSlot> = Array::with_max_entries(POSITION_SLOTS, 0);

/// Stack-copy ids by call position within a process (see `RawSharedSiteKey`): a
/// thread new at a position reuses the copy another thread took there.
#[map]
pub static SHARED_SITES: LruHashMap<RawSharedSiteKey, i32> =
    LruHashMap::with_max_entries(MAX_SHARED_SITES, 0);

/// The traced processes (`tgid → target_flags`).
#[map]
pub static TARGETS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// One bit per traced tgid (see `MAP_TARGET_BITS`): the filter on every hot path.
#[map]
pub static TARGET_BITS: Array<u64> = Array::with_max_entries(TARGET_BITS_ENTRIES, BPF_F_MMAPABLE);

#[map]
pub static LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOSS_KINDS, 0);

/// Per CPU: when a traced task last took that CPU — for a traced task running there,
/// the time it got it. This is how a thread's switch-in is known without a map
/// lookup for the incoming task at every switch.
#[map]
pub static LAST_SWITCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Registers and user-stack copies for DWARF unwinding (see `RawUserStack`). Entries
/// are 16 KiB, so they are allocated on insert rather than preallocated; userspace
/// deletes each one after reading it.
#[map]
pub static USER_STACKS: HashMap<i32, RawUserStack> =
    HashMap::with_max_entries(MAX_USER_STACKS, BPF_F_NO_PREALLOC);

/// Where a `RawUserStack` is assembled before it is inserted: far too large for the
/// 512-byte BPF stack.
#[map]
pub static USER_STACK_SCRATCH: PerCpuArray<RawUserStack> = PerCpuArray::with_max_entries(1, 0);

/// Copies taken so far: the next copy's id is `DWARF_STACK_ID_BASE + this`.
#[map]
pub static USER_STACK_SEQ: Array<u64> = Array::with_max_entries(1, 0);

// Never-written slots: a zeroed value to insert new rows from. The values are too
// large to build on the 512-byte BPF stack.
#[map]
static ZERO_WAIT: Array<RawWaitStats> = Array::with_max_entries(1, 0);
#[map]
static ZERO_WAKE: Array<RawWakeStats> = Array::with_max_entries(1, 0);
#[map]
static ZERO_EDGE: Array<RawEdgeStats> = Array::with_max_entries(1, 0);

const EEXIST: i64 = 17;

/// The drain generation to put in the keys of the rows this program run counts into
/// `WAITS`, `WAKES`, `EDGES` and `BLAME`. Read once per run and used for all its
/// rows: userspace drains a generation only after every run that could have read it
/// has ended, so no add can land in a row being read and deleted.
#[inline(always)]
pub fn drain_gen() -> u32 {
    DRAIN_GEN.get(0).copied().unwrap_or(0)
}

/// Atomically add `v` to a counter in a shared map value.
#[inline(always)]
pub fn add(counter: *mut u64, v: u64) {
    // SAFETY: callers pass a field of a live map value; BPF's `lock +=` needs 8-byte
    // alignment, which every u64 field of our `#[repr(C)]` values has.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            counter, v,
        );
    }
}

/// Add `v` to a counter of a row only one thread ever writes (`WAITS` and `WAKES`:
/// their keys name the thread): a plain add, no bus lock — a thread's program runs
/// never overlap, and userspace reads a row only once no run can add to it (see
/// [`drain_gen`]).
#[inline(always)]
pub fn bump(counter: *mut u64, v: u64) {
    // SAFETY: callers pass a field of a live map value.
    unsafe { *counter += v };
}

/// Raise `*slot` to `v` if larger. Not atomic: a concurrent update can at worst keep
/// the other CPU's (smaller) maximum for this one event.
#[inline(always)]
pub fn raise(slot: *mut u64, v: u64) {
    // SAFETY: as in `add`.
    unsafe {
        if v > *slot {
            *slot = v;
        }
    }
}

/// Whether `tgid` is traced: one bit of `TARGET_BITS` (an inlined array access, no
/// helper call), so untraced threads — most of the machine — pay a few instructions.
#[inline(always)]
pub fn is_target(tgid: u32) -> bool {
    TARGET_BITS
        .get(tgid >> 6)
        .is_some_and(|w| w & (1u64 << (tgid & 63)) != 0)
}

/// Mark `tgid` traced in `TARGET_BITS` (atomically: userspace and other CPUs set
/// bits of the same word concurrently).
#[inline(always)]
pub fn set_target_bit(tgid: u32) {
    if let Some(w) = TARGET_BITS.get_ptr_mut(tgid >> 6) {
        // SAFETY: a live array slot; BPF_ATOMIC | BPF_OR (5.12+) on an aligned u64.
        unsafe {
            core::intrinsics::atomic_or::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                w,
                1u64 << (tgid & 63),
            );
        }
    }
}

/// Count one more process the kernel started tracing (after its `TARGETS` row and
/// bit are in place): userspace reads `TARGETS` again only when this count moves.
#[inline(always)]
pub fn note_followed() {
    if let Some(n) = TARGET_BITS.get_ptr_mut(TARGET_BITS_FOLLOWED) {
        add(n, 1);
    }
}

#[inline(always)]
pub fn count_loss(loss: Loss) {
    if let Some(p) = LOSSES.get_ptr_mut(loss as u32) {
        // SAFETY: this CPU's slot of a per-CPU array; no concurrent writer.
        unsafe { *p += 1 };
    }
}

/// The shared stats row for `key`, created zeroed (thread name set) on first use.
#[inline(always)]
pub fn wait_row(key: &RawWaitKey) -> Option<*mut RawWaitStats> {
    named_row(&WAITS, &ZERO_WAIT, key, Loss::WaitMapFull)
}

/// As [`wait_row`], for `WAKES`.
#[inline(always)]
pub fn wake_row(key: &RawWakeKey) -> Option<*mut RawWakeStats> {
    named_row(&WAKES, &ZERO_WAKE, key, Loss::WakeMapFull)
}

/// A row value with a thread name, set when the row is created.
pub trait Named {
    fn comm_mut(&mut self) -> &mut [u8; 16];
}

impl Named for RawWaitStats {
    fn comm_mut(&mut self) -> &mut [u8; 16] {
        &mut self.comm
    }
}

impl Named for RawWakeStats {
    fn comm_mut(&mut self) -> &mut [u8; 16] {
        &mut self.comm
    }
}

/// `map[key]`, created from `zero` with the thread's name on first use; `None`
/// (counted as `full`) when the map is full.
#[inline(always)]
fn named_row<K, V: Named>(
    map: &HashMap<K, V>,
    zero: &Array<V>,
    key: &K,
    full: Loss,
) -> Option<*mut V> {
    if let Some(p) = map.get_ptr_mut(key) {
        return Some(p);
    }
    let zero = zero.get_ptr(0)?;
    // SAFETY: `zero` points at a live array slot the helper only reads.
    match map.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST)) {
        Ok(()) => {
            let p = map.get_ptr_mut(key)?;
            if let Ok(comm) = bpf_get_current_comm() {
                // SAFETY: `p` is the row just created.
                unsafe { *(*p).comm_mut() = comm };
            }
            Some(p)
        }
        Err(e) if i64::from(e) == -EEXIST => map.get_ptr_mut(key),
        Err(_) => {
            count_loss(full);
            None
        }
    }
}

/// As [`wait_row`], for `EDGES` (no thread name).
#[inline(always)]
pub fn edge_row(key: &RawEdgeKey) -> Option<*mut RawEdgeStats> {
    if let Some(p) = EDGES.get_ptr_mut(key) {
        return Some(p);
    }
    let zero = ZERO_EDGE.get_ptr(0)?;
    // SAFETY: `zero` points at a live array slot the helper only reads.
    if let Err(e) = EDGES.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        count_loss(Loss::EdgeMapFull);
        return None;
    }
    EDGES.get_ptr_mut(key)
}

#[inline(always)]
pub fn addr_key(tgid: u32, uaddr: u64) -> RawAddrKey {
    RawAddrKey {
        tgid,
        pad: 0,
        uaddr,
    }
}

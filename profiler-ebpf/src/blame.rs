//! Holder blame: a finished blocked wait's window `[started, end]` is cut by the
//! wakes on the same futex inside it (the ring, oldest first); each interval is
//! charged in `BLAME` to the wake that ended it — for a lock, the holder that released
//! it then. The chain of waiters released one after another behind a slow holder
//! thus charges the slow holder, not just the last waiter in line that woke this
//! one. Consecutive intervals of the same holder stack are charged at once, so a
//! wait costs one `BLAME` update per distinct holder (at most `WAKE_RING`).

use aya_ebpf::{bindings::BPF_NOEXIST, macros::map, maps::HashMap};
use profiler_common::{
    BLAME_EARLIER, Loss, MAX_BLAME, RawBlameKey, RawBlameStats, RawWaitKey, RawWakeRing, WAKE_RING,
};

use crate::maps::{add, count_loss};

const EEXIST: i64 = 17;

#[map]
static BLAME: HashMap<RawBlameKey, RawBlameStats> = HashMap::with_max_entries(MAX_BLAME, 0);

/// Charge the window `[started, end]` of `waiter`'s wait among the wakes of `ring`.
#[inline(always)]
pub fn charge(ring: *const RawWakeRing, waiter: &RawWaitKey, started: u64, end: u64) {
    let mut key = RawBlameKey {
        tgid: waiter.tgid,
        waiter_stack_id: waiter.stack_id,
        waiter_leaf_ret: waiter.leaf_ret,
        holder_tgid: 0,
        holder_stack_id: BLAME_EARLIER,
        holder_leaf_ret: 0,
        generation: waiter.generation,
        pad: 0,
    };
    // SAFETY: a live map value, read in place.
    let next = unsafe { (*ring).next };
    let mut from = started;
    let mut pending_ns = 0u64;
    let mut pending = false;
    for j in 0..WAKE_RING {
        // Oldest first: slot `next` is the oldest, `next - 1` the newest.
        // SAFETY: a slot of a live map value, copied out.
        let wake = unsafe { (*ring).slots[(next as usize + j) & (WAKE_RING - 1)] };
        if wake.ts_ns == 0 || wake.ts_ns < from || wake.ts_ns > end {
            continue;
        }
        if !pending && j == 0 && next > WAKE_RING as u64 {
            // The oldest wake kept is inside the window and older ones were
            // overwritten: who held the lock before it is unknown.
            flush(&key, wake.ts_ns - from);
            from = wake.ts_ns;
            continue;
        }
        let same = pending
            && wake.tgid == key.holder_tgid
            && wake.stack_id == key.holder_stack_id
            && wake.leaf_ret == key.holder_leaf_ret;
        if pending && !same {
            flush(&key, pending_ns);
            pending_ns = 0;
        }
        key.holder_tgid = wake.tgid;
        key.holder_stack_id = wake.stack_id;
        key.holder_leaf_ret = wake.leaf_ret;
        pending_ns += wake.ts_ns - from;
        pending = true;
        from = wake.ts_ns;
    }
    if pending {
        flush(&key, pending_ns);
    }
}

/// `key`'s row, created on first use; `None` when the map is full.
#[inline(always)]
fn blame_row(key: &RawBlameKey) -> Option<*mut RawBlameStats> {
    if let Some(row) = BLAME.get_ptr_mut(key) {
        return Some(row);
    }
    if let Err(e) = BLAME.insert(key, &RawBlameStats::default(), u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        return None;
    }
    BLAME.get_ptr_mut(key)
}

/// Add one interval of `ns` to `key`'s row.
#[inline(always)]
fn flush(key: &RawBlameKey, ns: u64) {
    let Some(row) = blame_row(key) else {
        count_loss(Loss::BlameMapFull);
        return;
    };
    // SAFETY: fields of a live map value.
    unsafe {
        add(&raw mut (*row).intervals, 1);
        add(&raw mut (*row).ns, ns);
    }
}

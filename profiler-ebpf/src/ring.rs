//! The ring of the last wakes of each futex (`LAST_WAKE`, see `RawWakeRing`): a wake
//! is pushed at its entry, before the kernel makes any waiter runnable; a waiter
//! pairs with the newest one, and `blame` splits its window among the ones inside it.
//!
//! Slots and `next` are plain loads and stores (the probes build for the generic BPF
//! CPU, which has no fetch-and-add): two wakes of one futex at the same instant on
//! two CPUs may take the same slot (one of them is then not remembered), and a waiter
//! reading meanwhile may see a slot half written (one wake's time with another's
//! stack) — rare, and each only mislabels one interval. For a lock, wakes are
//! serialized by the lock itself.

use aya_ebpf::{bindings::BPF_NOEXIST, macros::map, maps::Array};
use profiler_common::{Loss, RawAddrKey, RawLastWake, RawWakeRing, WAKE_RING};

use crate::maps::{LAST_WAKE, count_loss};

const EEXIST: i64 = 17;

/// A never-written ring to insert new rows from (too large for the BPF stack).
#[map]
static ZERO_RING: Array<RawWakeRing> = Array::with_max_entries(1, 0);

/// The ring of the futex `key`, created empty on first use; `None` when it could not
/// be created (the LRU map evicts, so only under extreme pressure).
#[inline(always)]
fn ring_row(key: &RawAddrKey) -> Option<*mut RawWakeRing> {
    if let Some(ring) = LAST_WAKE.get_ptr_mut(key) {
        return Some(ring);
    }
    let zero = ZERO_RING.get_ptr(0)?;
    // SAFETY: `zero` points at a live array slot the helper only reads.
    if let Err(e) = LAST_WAKE.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        return None;
    }
    LAST_WAKE.get_ptr_mut(key)
}

/// Remember `wake` as the newest wake on the futex `key`; returns the ring position
/// it went to (for [`forget`]).
#[inline(always)]
pub fn push(key: &RawAddrKey, wake: &RawLastWake) -> u32 {
    let Some(ring) = ring_row(key) else {
        count_loss(Loss::LastWakeLost);
        return 0;
    };
    // SAFETY: `ring` is a live map value.
    unsafe {
        let i = (*ring).next;
        (*ring).slots[i as usize & (WAKE_RING - 1)] = *wake;
        (*ring).next = i + 1;
        i as u32
    }
}

/// The newest wake on the futex of `ring` that woke somebody. Wakes that woke nobody
/// were blanked by [`forget`]; skipping them keeps such a wake, made between a
/// waiter's wake-up and its exit, from hiding the wake that really ended the wait.
#[inline(always)]
pub fn newest(ring: *const RawWakeRing) -> Option<RawLastWake> {
    // SAFETY: a live map value.
    let next = unsafe { (*ring).next };
    for back in 1..=WAKE_RING {
        // SAFETY: a slot of a live map value, copied out.
        let wake =
            unsafe { (*ring).slots[next.wrapping_sub(back as u64) as usize & (WAKE_RING - 1)] };
        if wake.ts_ns != 0 {
            return Some(wake);
        }
    }
    None
}

/// A wake by `tid` entered at `ts_ns`, pushed at ring position `pos`, woke nobody: it
/// must not be taken for the waker of a wait that ends later, nor blamed — empty its
/// slot unless it was overwritten meanwhile. Entries never move, so that one slot is
/// the only place it can be (one cache line read, not the whole ring's).
#[inline(always)]
pub fn forget(key: &RawAddrKey, pos: u32, tid: u32, ts_ns: u64) {
    let Some(ring) = LAST_WAKE.get_ptr_mut(key) else {
        return;
    };
    // SAFETY: a slot of a live map value.
    unsafe {
        let slot = &raw mut (*ring).slots[pos as usize & (WAKE_RING - 1)];
        if (*slot).tid == tid && (*slot).ts_ns == ts_ns {
            (*slot).ts_ns = 0;
        }
    }
}

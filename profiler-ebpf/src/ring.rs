//! Where a waiter finds the wakes of its futex: its slot of `WAKE_RINGS`, an array
//! direct-mapped by the futex's key (see `RawWakeRing`; found by arithmetic, never by
//! hashing a map). A wake announces itself there at entry — before the kernel can
//! make a waiter runnable, so a waiter that returns before its waker does still finds
//! it — and at exit, once the number woken is known, is pushed on the slot's ring of
//! the last wakes that woke somebody, or withdrawn. A waiter pairs with the newest of
//! them, and `blame` splits its window among the ones inside it.
//!
//! A wake whose futex is not the slot's takes the slot over (two futexes whose keys
//! share a slot take it from each other): the other futex's remembered wakes are
//! dropped, and the slot records when (`taken_ns`), so that a waiter of the new futex
//! never charges the part of its wait before then to anyone. A waiter only takes a
//! slot that holds its own futex; a wake whose slot was taken while it was in flight
//! is not pushed (`Loss::LastWakeLost`).
//!
//! Slots and `next` are plain loads and stores (the probes build for the generic BPF
//! CPU, which has no fetch-and-add): two wakes of one futex at the same instant on
//! two CPUs may take the same slot (one of them is then not remembered), and a waiter
//! reading meanwhile may see a slot half written (one wake's time with another's
//! stack) — rare, and each only mislabels one interval. For a lock, wakes are
//! serialized by the lock itself.

use aya_ebpf::{bindings::BPF_F_MMAPABLE, macros::map, maps::Array};
use profiler_common::{
    Loss, RawAddrKey, RawLastWake, RawWakeRing, WAKE_RING, WAKE_RING_SLOTS, wake_ring_slot,
};

use crate::maps::count_loss;

/// The wakes of each futex, in its futex's slot (see `wake_ring_slot`). Memory-mappable
/// only for the alignment that buys: its values start on a page, so the cache lines
/// of `RawWakeRing` are the machine's (nothing maps it).
#[map]
static WAKE_RINGS: Array<RawWakeRing> = Array::with_max_entries(WAKE_RING_SLOTS, BPF_F_MMAPABLE);

/// A wake on the futex `key` entered (at `wake.ts_ns`): make it findable until it
/// returns, taking the slot over if it holds another futex. Returns the slot (for
/// [`push`] and [`withdraw`]).
#[inline(always)]
pub fn announce(key: &RawAddrKey, wake: &RawLastWake) -> u32 {
    let slot = wake_ring_slot(key);
    if let Some(r) = WAKE_RINGS.get_ptr_mut(slot) {
        // SAFETY: a live array slot; plain stores (a waiter reading meanwhile may
        // see half of it, and checks the key and time it relies on).
        unsafe {
            if (*r).key != *key {
                take_over(r, key, wake.ts_ns);
            }
            (*r).flying = *wake;
        }
    }
    slot
}

/// Make the slot `r` the futex `key`'s, at `now`.
///
/// # Safety
/// `r` is a live `WAKE_RINGS` slot.
#[inline(always)]
unsafe fn take_over(r: *mut RawWakeRing, key: &RawAddrKey, now: u64) {
    // SAFETY: per the contract.
    unsafe {
        // Not a loss in itself (the other futex's wakes are usually old news, as an
        // LRU map's evictions are): what it costs shows where it matters, as a
        // waiter of the other futex left unpaired, or a wait's part before `now`
        // charged to no known holder.
        // A slot never used (all zero) drops nothing; one that held another futex
        // may have dropped this one's wakes earlier. The ring's old wakes are all
        // older than `now`: waiters skip them.
        if (*r).key != RawAddrKey::default() {
            (*r).taken_ns = now;
        }
        (*r).key = *key;
        (*r).next = 0;
        (*r).flying.ts_ns = 0;
    }
}

/// The wake announced in `slot` for the futex `key` woke somebody: remember it as
/// the futex's newest (unless another futex took the slot while it was in flight).
#[inline(always)]
pub fn push(slot: u32, key: &RawAddrKey, wake: &RawLastWake) {
    let Some(r) = WAKE_RINGS.get_ptr_mut(slot) else {
        return;
    };
    // SAFETY: a live array slot.
    unsafe {
        if (*r).key != *key {
            count_loss(Loss::LastWakeLost);
            return;
        }
        let i = (*r).next;
        (*r).slots[i as usize & (WAKE_RING - 1)] = *wake;
        (*r).next = i + 1;
    }
}

/// The wake by `tid` entered at `ts_ns` and announced in `slot` woke nobody: it must
/// not be taken for the waker of a wait that ends later — withdraw it unless a newer
/// wake replaced it meanwhile.
#[inline(always)]
pub fn withdraw(slot: u32, tid: u32, ts_ns: u64) {
    if let Some(r) = WAKE_RINGS.get_ptr_mut(slot) {
        // SAFETY: a live array slot.
        unsafe {
            if (*r).flying.tid == tid && (*r).flying.ts_ns == ts_ns {
                (*r).flying.ts_ns = 0;
            }
        }
    }
}

/// The slot of the futex `key`, if it holds that futex's wakes.
#[inline(always)]
pub fn of(key: &RawAddrKey) -> Option<*const RawWakeRing> {
    let r = WAKE_RINGS.get_ptr(wake_ring_slot(key))?;
    // SAFETY: a live array slot.
    (unsafe { (*r).key } == *key).then_some(r)
}

/// The newest wake that woke somebody in `ring`, if any was pushed. (Wakes that woke
/// nobody are never pushed, so one made between a waiter's wake-up and its exit
/// cannot hide the wake that really ended the wait.)
#[inline(always)]
pub fn newest(ring: *const RawWakeRing) -> Option<RawLastWake> {
    // SAFETY: a live array slot.
    let next = unsafe { (*ring).next };
    if next == 0 {
        return None;
    }
    // SAFETY: a slot of a live array value, copied out.
    Some(unsafe { (*ring).slots[(next - 1) as usize & (WAKE_RING - 1)] })
}

/// The wake announced in `ring` and not withdrawn: still in flight, or returned
/// having woken somebody (then also pushed).
#[inline(always)]
pub fn in_flight(ring: *const RawWakeRing) -> Option<RawLastWake> {
    // SAFETY: a live array slot, copied out.
    let wake = unsafe { (*ring).flying };
    (wake.ts_ns != 0).then_some(wake)
}

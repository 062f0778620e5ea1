//! Where a waiter finds the wakes of its futex: the ring of the last wakes that woke
//! somebody (`WAKE_RINGS`, see `RawWakeRing` and `RawFutexRing`), pushed at their exit and stamped with
//! their entry time, and the wake in flight (`IN_FLIGHT`, see `RawWakeInFlight`),
//! announced at entry — before the kernel can make a waiter runnable, so a waiter that
//! returns before its waker does still finds it. A waiter pairs with the newest of
//! them, and `blame` splits its window among the ones inside it.
//!
//! Slots and `next` are plain loads and stores (the probes build for the generic BPF
//! CPU, which has no fetch-and-add): two wakes of one futex at the same instant on
//! two CPUs may take the same slot (one of them is then not remembered), and two
//! wakes on two CPUs — of one futex, or of two futexes sharing an in-flight slot —
//! may interleave their stores into one record. Every record carries a tag binding
//! it to its futex and its fields (`wake_tag`), written with it and checked by every
//! reader: a torn record, or one of the other futex, is skipped (its waiter is then
//! unpaired, or an interval charged to the next wake), never taken for a wake of the
//! reader's futex (root test `probe.rs::futexes_sharing_a_wake_slot_never_pair_or_blame_across`).

use aya_ebpf::{macros::map, maps::Array};
use profiler_common::{
    Loss, MAX_LAST_WAKES, RawAddrKey, RawFutexRing, RawLastWake, RawWakeInFlight, RawWakeRing,
    WAKE_RING, WAKE_RING_WAYS, WAKES_IN_FLIGHT, in_flight_slot, ring_set, wake_tag,
};

use crate::maps::count_loss;

/// The wake in flight on each futex, in its futex's slot (see `in_flight_slot`).
#[map]
static IN_FLIGHT: Array<RawWakeInFlight> = Array::with_max_entries(WAKES_IN_FLIGHT, 0);

/// The futexes' rings, in sets of `WAKE_RING_WAYS` slots (see `RawFutexRing`).
#[map]
static WAKE_RINGS: Array<RawFutexRing> = Array::with_max_entries(MAX_LAST_WAKES, 0);

/// The ring of the futex `key`, if its set holds one.
#[inline(always)]
pub fn find(key: &RawAddrKey) -> Option<*const RawWakeRing> {
    let first = ring_set(key) * WAKE_RING_WAYS;
    for way in 0..WAKE_RING_WAYS {
        let slot = WAKE_RINGS.get_ptr(first + way)?;
        // SAFETY: a live array slot; another CPU taking it over for another futex
        // meanwhile can only make the key match neither (records are checked by tag).
        if unsafe { (*slot).key } == *key {
            // SAFETY: as above.
            return Some(unsafe { &raw const (*slot).ring });
        }
    }
    None
}

/// The ring of the futex `key`: its set's slot holding it, else the slot whose newest
/// wake is the oldest (an empty slot first), taken over.
#[inline(always)]
fn ring_row(key: &RawAddrKey) -> Option<*mut RawWakeRing> {
    let first = ring_set(key) * WAKE_RING_WAYS;
    let mut victim: Option<*mut RawFutexRing> = None;
    let mut oldest = u64::MAX;
    for way in 0..WAKE_RING_WAYS {
        let slot = WAKE_RINGS.get_ptr_mut(first + way)?;
        // SAFETY: a live array slot, read in place (see `find`).
        unsafe {
            if (*slot).key == *key {
                return Some(&raw mut (*slot).ring);
            }
            let next = (*slot).ring.next;
            let newest = if next == 0 {
                0
            } else {
                (*slot).ring.slots[(next - 1) as usize & (WAKE_RING - 1)].ts_ns
            };
            if newest < oldest {
                oldest = newest;
                victim = Some(slot);
            }
        }
    }
    let slot = victim?;
    // SAFETY: a live array slot. The previous futex's records stay: tagged with it,
    // no reader of this key takes them.
    unsafe {
        (*slot).key = *key;
        Some(&raw mut (*slot).ring)
    }
}

/// Remember `wake` as the newest wake on the futex `key`.
#[inline(always)]
pub fn push(key: &RawAddrKey, wake: &RawLastWake) {
    let Some(ring) = ring_row(key) else {
        count_loss(Loss::LastWakeLost);
        return;
    };
    // SAFETY: `ring` is a live map value.
    unsafe {
        let i = (*ring).next;
        (*ring).slots[i as usize & (WAKE_RING - 1)] = tagged(key, wake);
        (*ring).next = i + 1;
    }
}

/// `wake` with its tag for the futex `key`.
#[inline(always)]
fn tagged(key: &RawAddrKey, wake: &RawLastWake) -> RawLastWake {
    RawLastWake {
        tag: wake_tag(key, wake),
        ..*wake
    }
}

/// Whether `wake`, read where the futex `key`'s wakes are kept, is whole and that
/// futex's.
#[inline(always)]
pub fn is_of(key: &RawAddrKey, wake: &RawLastWake) -> bool {
    wake.ts_ns != 0 && wake.tag == wake_tag(key, wake)
}

/// The newest wake on the futex `key` of `ring`, if any was pushed and it is whole.
/// (Wakes that woke nobody are never pushed, so one made between a waiter's wake-up
/// and its exit cannot hide the wake that really ended the wait.)
#[inline(always)]
pub fn newest(ring: *const RawWakeRing, key: &RawAddrKey) -> Option<RawLastWake> {
    // SAFETY: a live map value.
    let next = unsafe { (*ring).next };
    if next == 0 {
        return None;
    }
    // SAFETY: a slot of a live map value, copied out.
    let wake = unsafe { (*ring).slots[(next - 1) as usize & (WAKE_RING - 1)] };
    is_of(key, &wake).then_some(wake)
}

/// A wake on the futex `key` entered: make it findable until it returns. Returns the
/// slot it went to (for [`withdraw`]).
#[inline(always)]
pub fn announce(key: &RawAddrKey, wake: &RawLastWake) -> u32 {
    let slot = in_flight_slot(key);
    if let Some(s) = IN_FLIGHT.get_ptr_mut(slot) {
        // SAFETY: a live array slot; plain stores (a waiter reading meanwhile may see
        // half of it, like a ring slot — and checks the key and time it relies on).
        unsafe {
            (*s).key = *key;
            (*s).wake = tagged(key, wake);
        }
    }
    slot
}

/// The wake by `tid` entered at `ts_ns` and announced in `slot` woke nobody: it must
/// not be taken for the waker of a wait that ends later — empty the slot unless a
/// newer wake took it meanwhile.
#[inline(always)]
pub fn withdraw(slot: u32, tid: u32, ts_ns: u64) {
    if let Some(s) = IN_FLIGHT.get_ptr_mut(slot) {
        // SAFETY: a live array slot.
        unsafe {
            if (*s).wake.tid == tid && (*s).wake.ts_ns == ts_ns {
                (*s).wake.ts_ns = 0;
            }
        }
    }
}

/// The wake on the futex `key` announced and not withdrawn, if its slot holds one:
/// still in flight, or returned having woken somebody (then also in the ring).
#[inline(always)]
pub fn in_flight(key: &RawAddrKey) -> Option<RawLastWake> {
    let s = IN_FLIGHT.get(in_flight_slot(key))?;
    // A copy: the checks and the caller see one version of the record.
    let wake = s.wake;
    (s.key == *key && is_of(key, &wake)).then_some(wake)
}

//! Holder blame: each blocked wait's window split among the threads whose releases
//! (wake calls) on the same futex ended its successive parts. The probe keeps a small
//! ring of the last wakes of every futex ([`RawWakeRing`]); when a wait ends, the
//! wakes inside its window cut it into intervals, each charged to the wake that ended
//! it — the holder that released the lock then — in [`MAP_BLAME`] (the waker's own
//! share on its edge row, `RawEdgeStats::blame_ns`).

use crate::rows::{RawAddrKey, RawLastWake};

/// Wakes remembered per futex ([`RawWakeRing::slots`]); a power of two.
pub const WAKE_RING: usize = 8;

/// Slots of the wake-ring array ([`RawWakeRing`], kernel-internal, found by
/// [`wake_ring_slot`]); a power of two.
pub const WAKE_RING_SLOTS: u32 = 16_384;

/// The slot of the futex `key` in the wake-ring array: a multiplicative hash of its
/// words, so futexes a few words apart (an array of locks) and the same address in
/// two processes take different slots.
#[inline]
#[must_use]
pub fn wake_ring_slot(key: &RawAddrKey) -> u32 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let h = (key.uaddr ^ (u64::from(key.tgid) << 32 | u64::from(key.pad)).rotate_left(17))
        .wrapping_mul(GOLDEN);
    (h >> (64 - WAKE_RING_SLOTS.trailing_zeros())) as u32
}

/// Hash map `RawBlameKey → RawBlameStats` (shared, atomic adds): wait time of a
/// waiter stack charged to a holder's release stack. Drained like `EDGES`.
pub const MAP_BLAME: &str = "BLAME";
/// Capacity of [`MAP_BLAME`].
pub const MAX_BLAME: u32 = 16_384;

/// [`RawBlameKey::holder_stack_id`] of the part of a wait before the oldest wake the
/// ring still held (more than [`WAKE_RING`] wakes happened during the wait): its
/// holders are unknown.
pub const BLAME_EARLIER: i32 = -4096;

/// What a waiter finds of the wakes on its futex (a slot of the kernel's wake-ring
/// array, direct-mapped by [`wake_ring_slot`]: found by arithmetic, never by hashing
/// a map).
///
/// - `flying`: the wake in flight, announced at its entry — before the kernel can
///   make a waiter runnable, so a waiter that returns before its waker does (on
///   another CPU) still finds it — and withdrawn at its exit if it woke nobody (most
///   wakes of a busy daemon: this line is all they touch).
/// - `slots`: the last [`WAKE_RING`] wakes that woke somebody, in the order they
///   returned: `slots[(next - 1) % WAKE_RING]` is the newest, the one a waiter pairs
///   with unless the wake in flight is newer.
///
/// Two futexes whose keys share a slot take it from each other: a wake whose key is
/// not the slot's empties it for its own futex, and a waiter takes only a slot
/// holding its key. The holders of a wait's part before `taken_ns` are then unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawWakeRing {
    /// The futex the slot holds the wakes of; all zero for a slot never used.
    pub key: RawAddrKey,
    /// When a wake took the slot from another futex whose wakes it held (0: never):
    /// this futex's earlier wakes may have been dropped by that futex before.
    pub taken_ns: u64,
    /// The first cache line is only written when the slot changes futex: every CPU
    /// keeps a copy of it while they all write the next one.
    pub pad0: [u64; 5],
    /// The wake in flight; `ts_ns == 0` when none.
    pub flying: RawLastWake,
    pub pad1: [u64; 3],
    /// Wakes written so far; the next one goes to `slots[next % WAKE_RING]`.
    pub next: u64,
    /// A slot with `ts_ns == 0` is empty.
    pub slots: [RawLastWake; WAKE_RING],
    /// To a whole number of cache lines.
    pub pad2: [u64; 7],
}

/// Who is blamed for whose wait: the waiter's stack and the stack of the release
/// that ended an interval of its wait.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawBlameKey {
    pub tgid: u32,
    pub waiter_stack_id: i32,
    pub waiter_leaf_ret: u64,
    pub holder_tgid: u32,
    /// The releasing wake's stack, or [`BLAME_EARLIER`].
    pub holder_stack_id: i32,
    pub holder_leaf_ret: u64,
    /// As [`RawWaitKey::generation`](crate::rows::RawWaitKey::generation) (the waiter's).
    pub generation: u32,
    pub pad: u32,
}

/// Wait time charged to one holder (value of [`MAP_BLAME`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawBlameStats {
    /// Intervals charged (consecutive intervals of the same holder count once).
    pub intervals: u64,
    /// Their total length.
    pub ns: u64,
}

const _: () = assert!(WAKE_RING.is_power_of_two());
const _: () = assert!(core::mem::size_of::<RawWakeRing>() == 64 + 64 + 8 + 40 * WAKE_RING + 56);
const _: () = assert!(core::mem::size_of::<RawWakeRing>().is_multiple_of(64));
// The key's line, read by every wake, apart from the wake in flight's, written by
// every wake (see `RawWakeRing::pad0`).
const _: () = assert!(core::mem::offset_of!(RawWakeRing, flying) == 64);
const _: () = assert!(core::mem::offset_of!(RawWakeRing, next) == 128);
const _: () = assert!(core::mem::size_of::<RawBlameKey>() == 40);
const _: () = assert!(core::mem::size_of::<RawBlameStats>() == 16);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], Copy, integers only with explicit padding: every bit
    // pattern is a valid value.
    unsafe impl aya::Pod for super::RawBlameKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RawBlameStats {}
}
const _: () = assert!(WAKE_RING_SLOTS.is_power_of_two());

#[cfg(test)]
mod tests {
    extern crate std;

    use std::collections::BTreeSet;

    use super::{RawAddrKey, WAKE_RING_SLOTS, wake_ring_slot};

    fn key(tgid: u32, pad: u32, uaddr: u64) -> RawAddrKey {
        RawAddrKey { tgid, pad, uaddr }
    }

    #[test]
    fn neighbouring_futexes_take_different_slots() {
        // An array of 64 four-byte futexes, and one of 64 locks a cache line apart.
        for stride in [4, 64] {
            let slots: BTreeSet<u32> = (0..64)
                .map(|i| wake_ring_slot(&key(1234, 0, 0x7f00_0000_1000 + i * stride)))
                .collect();
            assert_eq!(slots.len(), 64, "stride {stride}");
        }
    }

    #[test]
    fn the_same_address_in_two_processes_or_objects_takes_different_slots() {
        let a = wake_ring_slot(&key(1234, 0, 0x5555_0000_0040));
        assert_ne!(a, wake_ring_slot(&key(1235, 0, 0x5555_0000_0040)));
        assert_ne!(a, wake_ring_slot(&key(1234, 1, 0x5555_0000_0040)));
    }

    #[test]
    fn slots_stay_inside_the_array() {
        for i in 0..10_000u64 {
            let k = key(i as u32, (i >> 3) as u32, i.wrapping_mul(0x1_0000_0001));
            assert!(wake_ring_slot(&k) < WAKE_RING_SLOTS);
        }
    }
}

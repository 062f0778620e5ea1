//! Holder blame: each blocked wait's window split among the threads whose releases
//! (wake calls) on the same futex ended its successive parts. The probe keeps a small
//! ring of the last wakes of every futex ([`RawWakeRing`]); when a wait ends, the
//! wakes inside its window cut it into intervals, each charged to the wake that ended
//! it — the holder that released the lock then — in [`MAP_BLAME`].

use crate::maps::MAX_LAST_WAKES;
use crate::rows::{RawAddrKey, RawLastWake};

/// Wakes remembered per futex ([`RawWakeRing::slots`]); a power of two.
pub const WAKE_RING: usize = 8;

/// Slots of the wakes-in-flight array ([`RawWakeInFlight`], kernel-internal): a power
/// of two.
pub const WAKES_IN_FLIGHT: u32 = 4096;

/// A wake call between its entry and its exit (kernel-internal), in the slot of its
/// futex ([`in_flight_slot`]). A wake enters its futex's ring ([`RawWakeRing`]) only
/// at its exit, once it is known to have woken somebody — most wakes of a busy daemon
/// wake nobody, and this slot (an array slot, found without hashing in the kernel)
/// is cheaper than the ring's map — but the waiter it woke can reach its own exit
/// first, on another CPU: it then finds its waker here. A wake that woke nobody
/// empties its slot at exit; a direct-mapped slot shared by two futexes keeps the
/// newer wake, and a waiter takes it only if the key is its own.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawWakeInFlight {
    pub key: RawAddrKey,
    /// Tagged with `key` ([`RawLastWake::tag`]): a waiter takes it only if the tag is
    /// that of its own futex and the record — two wakes of futexes sharing the slot,
    /// writing it at once on two CPUs, can leave one's key with the other's record.
    pub wake: RawLastWake,
}

/// Ways of each set of the wake-ring array ([`RawFutexRing`]): a futex's ring is in
/// one of the `WAKE_RING_WAYS` slots of its set ([`ring_set`]). A power of two.
pub const WAKE_RING_WAYS: u32 = 4;

/// Sets of the wake-ring array: its [`MAX_LAST_WAKES`] slots in
/// [`WAKE_RING_WAYS`]-slot sets.
pub const WAKE_RING_SETS: u32 = MAX_LAST_WAKES / WAKE_RING_WAYS;

/// One slot of the wake-ring array (kernel-internal): the futex whose ring it holds
/// and the ring. Found by comparing the keys of its set's slots — no hashing of the
/// key in the kernel, where a hash map's lookup cost a wake and a blocked wait
/// ≈ 20 ns each. A futex new to a full set takes the slot whose newest wake is the
/// oldest (the previous futex's records stay, and no reader takes them: they are
/// tagged with their own futex); 4 ways per set keep the rings of a daemon's
/// thousand busy futexes from evicting each other (five of them in one set of 4,096
/// is a chance of about 3 %).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawFutexRing {
    pub key: RawAddrKey,
    pub ring: RawWakeRing,
}

/// A multiplicative hash of the futex `key`'s words, whose top `bits` bits are used:
/// futexes a few words apart (an array of locks) and the same address in two
/// processes differ there.
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
fn key_hash(key: &RawAddrKey, bits: u32) -> u32 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let h = (key.uaddr ^ (u64::from(key.tgid) << 32 | u64::from(key.pad)).rotate_left(17))
        .wrapping_mul(GOLDEN);
    (h >> (64 - bits)) as u32
}

/// The slot of the futex `key` in the wakes-in-flight array.
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
#[must_use]
pub fn in_flight_slot(key: &RawAddrKey) -> u32 {
    key_hash(key, WAKES_IN_FLIGHT.trailing_zeros())
}

/// The set of the futex `key` in the wake-ring array: its ring is in one of the slots
/// `ring_set(key) * WAKE_RING_WAYS ..` of the next [`WAKE_RING_WAYS`].
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
#[must_use]
pub fn ring_set(key: &RawAddrKey) -> u32 {
    key_hash(key, WAKE_RING_SETS.trailing_zeros())
}

/// The tag of the wake record `w` on the futex `key` (see [`RawLastWake::tag`]): a
/// multiplicative hash of the key and every field of the record, three multiplies
/// long (it runs at every push and at every check; it need only tell records apart,
/// not resist anyone).
#[inline]
#[must_use]
pub fn wake_tag(key: &RawAddrKey, wake: &RawLastWake) -> u64 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let when = key.uaddr ^ wake.ts_ns.rotate_left(32);
    let whence = (u64::from(key.tgid) << 32 | u64::from(key.pad)) ^ wake.leaf_ret;
    let who = (u64::from(wake.tid) << 32 | u64::from(wake.stack_id.cast_unsigned()))
        ^ (u64::from(wake.fails) << 32 | u64::from(wake.fail_nr)).rotate_left(16)
        ^ (u64::from(wake.fail_errno) << 32 | u64::from(wake.tgid)).rotate_left(40);
    let hash = (when.wrapping_mul(GOLDEN).rotate_left(23) ^ whence).wrapping_mul(GOLDEN);
    // Never 0: an empty (all-zero) record never passes.
    ((hash.rotate_left(23) ^ who).wrapping_mul(GOLDEN)) | 1
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

/// The last [`WAKE_RING`] wake calls on one futex that woke somebody, in the order
/// they returned (kept in the futex's [`RawFutexRing`]): `slots[(next - 1) %
/// WAKE_RING]` is the newest, the one a waiter pairs with unless a wake in flight is
/// newer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawWakeRing {
    /// Wakes written so far; the next one goes to `slots[next % WAKE_RING]`.
    pub next: u64,
    /// A slot with `ts_ns == 0` is empty.
    pub slots: [RawLastWake; WAKE_RING],
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
const _: () = assert!(core::mem::size_of::<RawWakeRing>() == 8 + 48 * WAKE_RING);
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
const _: () = assert!(WAKES_IN_FLIGHT.is_power_of_two());
const _: () = assert!(WAKE_RING_WAYS.is_power_of_two() && WAKE_RING_SETS.is_power_of_two());
const _: () = assert!(core::mem::size_of::<RawFutexRing>() == 16 + 8 + 48 * WAKE_RING);
const _: () = assert!(core::mem::size_of::<RawWakeInFlight>() == 64);

#[cfg(test)]
mod tests {
    extern crate std;

    use std::collections::BTreeSet;

    use std::collections::BTreeMap;

    use super::{
        RawAddrKey, WAKE_RING_SETS, WAKE_RING_WAYS, WAKES_IN_FLIGHT, in_flight_slot, ring_set,
    };

    fn key(tgid: u32, pad: u32, uaddr: u64) -> RawAddrKey {
        RawAddrKey { tgid, pad, uaddr }
    }

    #[test]
    fn neighbouring_futexes_take_different_slots() {
        // An array of 64 four-byte futexes, and one of 64 locks a cache line apart.
        for stride in [4, 64] {
            let slots: BTreeSet<u32> = (0..64)
                .map(|i| in_flight_slot(&key(1234, 0, 0x7f00_0000_1000 + i * stride)))
                .collect();
            assert_eq!(slots.len(), 64, "stride {stride}");
            let sets: BTreeSet<u32> = (0..64)
                .map(|i| ring_set(&key(1234, 0, 0x7f00_0000_1000 + i * stride)))
                .collect();
            assert_eq!(sets.len(), 64, "stride {stride}");
        }
    }

    #[test]
    fn a_daemons_thousands_of_futexes_never_overfill_a_ring_set() {
        // Four processes, each with 1,000 locks: an array of 16-byte locks and one of
        // 200-byte objects with a lock inside. No set may need more ways than it has
        // (a fifth futex would evict one of the four rings).
        let mut per_set: BTreeMap<u32, u32> = BTreeMap::new();
        for tgid in 1000..1004 {
            for i in 0..500 {
                for uaddr in [0x5555_0000_0000 + i * 16, 0x7f3a_1000_0008 + i * 200] {
                    let s = ring_set(&key(tgid, 0, uaddr));
                    assert!(s < WAKE_RING_SETS);
                    *per_set.entry(s).or_default() += 1;
                }
            }
        }
        let fullest = per_set.values().max().copied().unwrap_or(0);
        assert!(fullest <= WAKE_RING_WAYS, "a set of {fullest} futexes");
    }

    #[test]
    fn the_same_address_in_two_processes_or_objects_takes_different_slots() {
        let a = in_flight_slot(&key(1234, 0, 0x5555_0000_0040));
        assert_ne!(a, in_flight_slot(&key(1235, 0, 0x5555_0000_0040)));
        assert_ne!(a, in_flight_slot(&key(1234, 1, 0x5555_0000_0040)));
    }

    #[test]
    fn a_wake_record_is_bound_to_its_futex_and_to_every_field() {
        use super::{RawLastWake, wake_tag};
        let w = RawLastWake {
            ts_ns: 1_000,
            leaf_ret: 0x5555_0000_1234,
            tid: 7,
            stack_id: 3,
            fails: 1,
            fail_nr: 2,
            fail_errno: 4,
            tgid: 5,
            tag: 0,
        };
        let k = key(5, 0, 0x7f00_0000_1000);
        let tag = wake_tag(&k, &w);
        assert_eq!(tag, wake_tag(&k, &w));
        // Another futex, another process or object, or any field of another record
        // (a torn write) changes it.
        assert_ne!(tag, wake_tag(&key(5, 0, 0x7f00_0000_1004), &w));
        assert_ne!(tag, wake_tag(&key(6, 0, 0x7f00_0000_1000), &w));
        assert_ne!(tag, wake_tag(&key(5, 1, 0x7f00_0000_1000), &w));
        let changed = [
            RawLastWake { ts_ns: 1_001, ..w },
            RawLastWake { leaf_ret: 0, ..w },
            RawLastWake { tid: 8, ..w },
            RawLastWake { stack_id: 4, ..w },
            RawLastWake { fails: 2, ..w },
            RawLastWake { fail_nr: 3, ..w },
            RawLastWake { fail_errno: 5, ..w },
            RawLastWake { tgid: 6, ..w },
        ];
        for c in changed {
            assert_ne!(tag, wake_tag(&k, &c), "{c:?}");
        }
        // An empty record never passes.
        assert_ne!(wake_tag(&k, &RawLastWake::default()), 0);
    }

    #[test]
    fn slots_stay_inside_the_array() {
        for i in 0..10_000u64 {
            let k = key(i as u32, (i >> 3) as u32, i.wrapping_mul(0x1_0000_0001));
            assert!(in_flight_slot(&k) < WAKES_IN_FLIGHT);
        }
    }
}

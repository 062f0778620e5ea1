//! Holder blame: each blocked wait's window split among the threads whose releases
//! (wake calls) on the same futex ended its successive parts. The probe keeps a small
//! ring of the last wakes of every futex ([`RawWakeRing`]); when a wait ends, the
//! wakes inside its window cut it into intervals, each charged to the wake that ended
//! it — the holder that released the lock then — in [`MAP_BLAME`].

use crate::rows::RawLastWake;

/// Wakes remembered per futex ([`RawWakeRing::slots`]); a power of two.
pub const WAKE_RING: usize = 8;

/// Hash map `RawBlameKey → RawBlameStats` (shared, atomic adds): wait time of a
/// waiter stack charged to a holder's release stack. Drained like `EDGES`.
pub const MAP_BLAME: &str = "BLAME";
/// Capacity of [`MAP_BLAME`].
pub const MAX_BLAME: u32 = 16_384;

/// [`RawBlameKey::holder_stack_id`] of the part of a wait before the oldest wake the
/// ring still held (more than [`WAKE_RING`] wakes happened during the wait): its
/// holders are unknown.
pub const BLAME_EARLIER: i32 = -4096;

/// The last [`WAKE_RING`] wake calls on one futex (value of the last-wake map):
/// `slots[(next - 1) % WAKE_RING]` is the newest, the one a waiter pairs with.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawWakeRing {
    /// Wakes written so far; the next one goes to `slots[next % WAKE_RING]`.
    pub next: u64,
    /// A slot with `ts_ns == 0` is empty (or its wake woke nobody).
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
const _: () = assert!(core::mem::size_of::<RawWakeRing>() == 8 + 40 * WAKE_RING);
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

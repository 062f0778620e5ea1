//! Tallies: the counts of the two fast paths — waits that returned `EAGAIN` and
//! wakes that woke nobody, most of a busy daemon's futex calls (memcached: 85 %) —
//! kept in a direct-mapped array ([`MAP_TALLIES`]) instead of their hash rows.
//!
//! Why: finding a row in a shared hash map cost more than the rest of these calls
//! (a build without the lookup ran the exit program in 167–248 ns instead of 316–430
//! on memcached): the bucket, the element and the counter are three cache lines a
//! busy process evicts. A tally slot is one cache line, found by arithmetic.
//!
//! The protocol, the same on both sides. A slot's [`RawTally::word`] holds a claim
//! epoch and a count; its key fields belong to the epoch in
//! [`RawTally::key_epoch`], written after them.
//! - Count (probe): read `key_epoch`, then the key, then `word`; if the word's
//!   epoch is `key_epoch` and the key is the call's, compare-and-swap the word to
//!   count + 1. Any other outcome counts the call in its hash row, as before.
//! - Claim (probe): a slot whose count is 0 (never used, or taken out by userspace
//!   since) and whose key is another: compare-and-swap the word to epoch + 1, count
//!   0, then write the key, then `key_epoch`. The claiming call itself is counted in
//!   its hash row, which creates the row with the thread's name. A slot holding
//!   counts is never claimed, so nothing is ever moved out of a slot by the probe:
//!   a key that finds its slot taken uses its hash row until userspace empties the
//!   slot.
//! - Take (userspace, `profiler::collect::tallies`): read `key_epoch`, the key, then
//!   `word`; if the epochs agree and the count is not 0, compare-and-swap the word to
//!   the same epoch with count 0, and the count belongs to the key read.
//!
//! A compare-and-swap succeeds only if nothing changed the word since it was read,
//! and a claim changes the word before it touches the key: a key read between the
//! two reads is the epoch's own (x86-64 keeps loads in order and stores in order; the
//! probes read with volatile loads, which the compiler keeps in order). The epoch has
//! 24 bits: a reader is fooled only if 2^24 claims of one slot happen between two of
//! its loads.
//!
//! Owns: the slot layout, the word's encoding and the slot of a key. Must not: hold
//! the protocol's memory accesses (the probe's are volatile loads and BPF atomics,
//! userspace's are Rust atomics on the mapping).

/// Array of [`RawTally`] (`BPF_F_MMAPABLE`, [`TALLY_SLOTS`] slots): the fast paths'
/// counts, taken out by userspace through the mapping at every drain.
pub const MAP_TALLIES: &str = "TALLIES";

/// Slots of [`MAP_TALLIES`]; a power of two. 1 MiB: memcached's four workers used
/// about 400 (thread, futex, position) keys of each kind in 6 s.
pub const TALLY_SLOTS: u32 = 16_384;

/// [`RawTally::kind`] of a slot counting waits that returned `EAGAIN`.
pub const TALLY_EAGAIN: u32 = 1;
/// [`RawTally::kind`] of a slot counting wakes that woke nobody.
pub const TALLY_WOKE_NONE: u32 = 2;
/// [`RawTally::kind`] of a slot counting wakes that woke exactly one waiter (a lock's
/// release: every wake of a handed-off lock) — not a fast path, but counted the same
/// way, which spares the wake its hash row.
pub const TALLY_WOKE_ONE: u32 = 3;

/// Bits of the count in [`RawTally::word`]; the epoch has the rest.
const COUNT_BITS: u32 = 40;
/// The largest count a slot holds: the probe counts elsewhere rather than carry
/// into the epoch (2^40 calls: 12 days at a million a second without a drain).
pub const TALLY_COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
/// Mask of the epoch as [`RawTally::key_epoch`] stores it.
pub const TALLY_EPOCH_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;

/// One slot (64 bytes, one cache line: the array is memory-mappable, so its values
/// start page-aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawTally {
    /// Claim epoch (high 24 bits) and count (low 40 bits): the only field both
    /// sides change after a claim, always by compare-and-swap.
    pub word: u64,
    /// The epoch whose key `key` holds, written after it.
    pub key_epoch: u64,
    pub key: RawTallyKey,
    pub pad: u64,
}

/// What a tally counts: a fast-path call's hash-row key without the drain
/// generation, and its kind.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawTallyKey {
    pub tgid: u32,
    pub tid: u32,
    pub uaddr: u64,
    /// As in `RawWaitKey`.
    pub leaf_ret: u64,
    pub stack_id: i32,
    pub op: u32,
    /// [`TALLY_EAGAIN`], [`TALLY_WOKE_NONE`], [`TALLY_WOKE_ONE`], or 0 for a slot
    /// never claimed.
    pub kind: u32,
    pub pad: u32,
}

/// The word of a slot with claim epoch `epoch` (taken modulo 2^24) holding `count`.
#[must_use]
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
pub const fn tally_word(epoch: u64, count: u64) -> u64 {
    (epoch << COUNT_BITS) | (count & TALLY_COUNT_MAX)
}

/// The claim epoch of a slot's word.
#[must_use]
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
pub const fn tally_epoch(word: u64) -> u64 {
    word >> COUNT_BITS
}

/// The count of a slot's word.
#[must_use]
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
pub const fn tally_count(word: u64) -> u64 {
    word & TALLY_COUNT_MAX
}

/// The slot of a key: thread, futex and stack mixed by a multiplicative hash, so
/// the threads of a pool on one futex, and one thread's neighbouring futexes (a
/// striped lock array's are a few dozen bytes apart), spread over the array.
#[must_use]
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
pub fn tally_slot(key: &RawTallyKey) -> u32 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let who = (u64::from(key.tid) << 32) | u64::from(key.stack_id as u32 ^ (key.kind << 30));
    let h = (key.uaddr.rotate_left(32) ^ who).wrapping_mul(GOLDEN);
    // Fold the high half down once more: uaddr's and the id's low bits then both
    // reach the top bits the slot is taken from.
    let h = (h ^ (h >> 29)).wrapping_mul(GOLDEN);
    (h >> (64 - TALLY_SLOTS.trailing_zeros())) as u32
}

const _: () = assert!(core::mem::size_of::<RawTally>() == 64);
const _: () = assert!(core::mem::size_of::<RawTallyKey>() == 40);
const _: () = assert!(TALLY_SLOTS.is_power_of_two());

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn the_word_keeps_epoch_and_count_apart() {
        let w = tally_word(7, 41);
        assert_eq!((tally_epoch(w), tally_count(w)), (7, 41));
        assert_eq!(tally_count(w + 1), 42);
        assert_eq!(tally_epoch(w + 1), 7);
        // The epoch wraps within its 24 bits; the count never reaches it.
        let last = tally_word(TALLY_EPOCH_MASK, TALLY_COUNT_MAX);
        assert_eq!(tally_epoch(last), TALLY_EPOCH_MASK);
        assert_eq!(tally_epoch(tally_word(TALLY_EPOCH_MASK + 1, 0)), 0);
        assert_eq!(tally_count(tally_word(3, TALLY_COUNT_MAX + 5)), 4);
    }

    /// Slots taken by `keys`, and how many keys share a slot with an earlier one.
    fn collisions(keys: &[(u32, u64, i32, u32)]) -> usize {
        let slots: BTreeSet<u32> = keys
            .iter()
            .map(|&(tid, uaddr, stack_id, kind)| {
                tally_slot(&RawTallyKey {
                    tid,
                    uaddr,
                    stack_id,
                    kind,
                    ..RawTallyKey::default()
                })
            })
            .collect();
        assert!(slots.iter().all(|&s| s < TALLY_SLOTS));
        keys.len() - slots.len()
    }

    #[test]
    fn a_pool_on_one_futex_takes_distinct_slots() {
        let keys: Vec<_> = (0..64)
            .flat_map(|t| {
                [
                    (30_000 + t, 0x5555_0000_1040, 7, TALLY_EAGAIN),
                    (30_000 + t, 0x5555_0000_1040, 9, TALLY_WOKE_NONE),
                ]
            })
            .collect();
        assert_eq!(collisions(&keys), 0);
    }

    #[test]
    fn neighbouring_futexes_spread_like_random_keys() {
        // memcached-like: 8 workers, each on 128 item locks 64 bytes apart, from
        // 4 stacks: 4,096 keys. Random slots would give ≈ 480 collisions
        // (n − m·(1 − e^(−n/m))); a hash that dropped the address's low bits or the
        // thread would give thousands.
        let keys: Vec<_> = (0..8)
            .flat_map(|t| {
                (0..128u64).flat_map(move |lock| {
                    (0..4).map(move |s| (4_000 + t, 0x7f00_1234_0000 + lock * 64, s, TALLY_EAGAIN))
                })
            })
            .collect();
        let c = collisions(&keys);
        assert!(c < 600, "{c} collisions among {} keys", keys.len());
    }
}

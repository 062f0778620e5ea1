//! The fast paths' counts in `TALLIES`, a direct-mapped array (see
//! `profiler_common::tally` for why and for the protocol userspace shares): a wait
//! that returned `EAGAIN` or a wake that woke nobody adds one to its key's slot with
//! one compare-and-swap on one cache line, instead of finding its hash row.
//!
//! Owns: the map and the probe's side of the protocol. Must not: count anywhere
//! else — a call its slot cannot take is the caller's to count in its hash row.

use aya_ebpf::{bindings::BPF_F_MMAPABLE, macros::map, maps::Array};
use profiler_common::{
    RawTally, RawTallyKey, TALLY_COUNT_MAX, TALLY_EPOCH_MASK, TALLY_SLOTS, tally_count,
    tally_epoch, tally_slot, tally_word,
};

#[map]
static TALLIES: Array<RawTally> = Array::with_max_entries(TALLY_SLOTS, BPF_F_MMAPABLE);

/// Count one call of `key` in its slot: `true` if counted there. `false` when the
/// slot holds another key's counts or is being claimed — or was just claimed for
/// `key` by this call, whose hash row then names the thread: the caller counts the
/// call in its hash row.
#[inline(always)]
pub fn count(key: &RawTallyKey) -> bool {
    let Some(slot) = TALLIES.get_ptr_mut(tally_slot(key)) else {
        return false;
    };
    // SAFETY: fields of a live array slot that other CPUs and userspace change
    // concurrently: read with volatile loads in protocol order (key epoch, key,
    // word), changed only by compare-and-swap on the word or, after a claim that
    // won it, by its claimer.
    unsafe {
        let key_epoch = core::ptr::read_volatile(&raw const (*slot).key_epoch);
        let same = core::ptr::read_volatile(&raw const (*slot).key.kind) == key.kind
            && core::ptr::read_volatile(&raw const (*slot).key.tid) == key.tid
            && core::ptr::read_volatile(&raw const (*slot).key.uaddr) == key.uaddr
            && core::ptr::read_volatile(&raw const (*slot).key.stack_id) == key.stack_id
            && core::ptr::read_volatile(&raw const (*slot).key.leaf_ret) == key.leaf_ret
            && core::ptr::read_volatile(&raw const (*slot).key.op) == key.op
            && core::ptr::read_volatile(&raw const (*slot).key.tgid) == key.tgid;
        let word = core::ptr::read_volatile(&raw const (*slot).word);
        if tally_epoch(word) != key_epoch {
            // Another CPU is writing its key.
            return false;
        }
        if same {
            return tally_count(word) < TALLY_COUNT_MAX && swap(slot, word, word + 1);
        }
        if tally_count(word) == 0 {
            claim(slot, word, key);
        }
        false
    }
}

/// Make the empty slot (whose word read `word`) `key`'s, unless another CPU or
/// userspace changed it first.
///
/// # Safety
/// `slot` is a live `TALLIES` slot.
#[inline(always)]
unsafe fn claim(slot: *mut RawTally, word: u64, key: &RawTallyKey) {
    let epoch = (tally_epoch(word) + 1) & TALLY_EPOCH_MASK;
    // SAFETY: per the contract. Winning the swap makes this CPU the only writer of
    // the key until it stores the new epoch: every reader sees the word's epoch
    // ahead of `key_epoch` meanwhile and leaves the slot alone.
    unsafe {
        if !swap(slot, word, tally_word(epoch, 0)) {
            return;
        }
        core::ptr::write_volatile(&raw mut (*slot).key.tgid, key.tgid);
        core::ptr::write_volatile(&raw mut (*slot).key.tid, key.tid);
        core::ptr::write_volatile(&raw mut (*slot).key.uaddr, key.uaddr);
        core::ptr::write_volatile(&raw mut (*slot).key.leaf_ret, key.leaf_ret);
        core::ptr::write_volatile(&raw mut (*slot).key.stack_id, key.stack_id);
        core::ptr::write_volatile(&raw mut (*slot).key.op, key.op);
        core::ptr::write_volatile(&raw mut (*slot).key.kind, key.kind);
        core::ptr::write_volatile(&raw mut (*slot).key_epoch, epoch);
    }
}

/// Replace the slot's word `old` by `new`, unless it changed: BPF's 64-bit
/// compare-and-swap (5.12+), a full barrier.
///
/// # Safety
/// `slot` is a live `TALLIES` slot.
#[inline(always)]
unsafe fn swap(slot: *mut RawTally, old: u64, new: u64) -> bool {
    // SAFETY: an aligned u64 of a live array slot.
    unsafe {
        core::intrinsics::atomic_cxchg::<
            u64,
            { core::intrinsics::AtomicOrdering::SeqCst },
            { core::intrinsics::AtomicOrdering::SeqCst },
        >(&raw mut (*slot).word, old, new)
        .1
    }
}

//! The fast paths' tallies as userspace sees them: `TALLIES` memory-mapped, each
//! slot's count taken out with a compare-and-swap while the probes keep adding to it
//! (the protocol is in `profiler_common::tally`), so a drain needs no syscall, no
//! generation and no grace period for them, and never takes a count twice.
//!
//! Owns: the mapping and userspace's side of the protocol. Must not: merge the rows
//! it yields with the hash rows of the same keys (the session does, by key).

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use profiler_common::{
    MAP_TALLIES, RawTally, RawTallyKey, TALLY_EAGAIN, TALLY_SLOTS, TALLY_WOKE_NONE, TALLY_WOKE_ONE,
    tally_count, tally_epoch, tally_word,
};

use super::CollectError;
use super::mmap::MappedArray;
use super::snapshot::{WaitCounts, WaitRow, WakeRow};

/// `TALLIES`, mapped read-write.
pub struct Tallies {
    slots: MappedArray,
}

const BYTES: usize = TALLY_SLOTS as usize * size_of::<RawTally>();

/// How often a slot is tried again when the probes changed its word between the two
/// reads: each retry means a call was just counted there, so a few are plenty; a slot
/// still busy keeps its count for the next drain.
const TRIES: usize = 4;

impl Tallies {
    /// Map the loaded `TALLIES` array (created `BPF_F_MMAPABLE`).
    pub fn map(fd: BorrowedFd<'_>) -> Result<Self, CollectError> {
        Ok(Self {
            slots: MappedArray::map(fd, BYTES, MAP_TALLIES)?,
        })
    }

    /// Take every slot's count out, as wait and wake rows (no thread name: the hash
    /// row the claiming call created carries it).
    pub fn take(&self, waits: &mut Vec<WaitRow>, wakes: &mut Vec<WakeRow>) {
        let base = self.slots.as_ptr::<RawTally>();
        for i in 0..TALLY_SLOTS as usize {
            // SAFETY: `i` < TALLY_SLOTS: inside the mapping, which lives as long as
            // `self`.
            if let Some((key, n)) = unsafe { take_slot(base.add(i)) } {
                push_row(&key, n, waits, wakes);
            }
        }
    }
}

/// Take slot's count: its key and the count, or `None` when it holds none (or is
/// being claimed, or stayed busy for [`TRIES`] tries).
///
/// # Safety
/// `slot` points at a slot the probes share (mapped, aligned, live).
unsafe fn take_slot(slot: *mut RawTally) -> Option<(RawTallyKey, u64)> {
    // SAFETY: per the contract; `word` and `key_epoch` are aligned u64s only
    // changed atomically by the probes (or stored once by a claimer), and
    // `AtomicU64` has u64's layout.
    let (word, key_epoch) = unsafe {
        (
            AtomicU64::from_ptr(&raw mut (*slot).word),
            AtomicU64::from_ptr(&raw mut (*slot).key_epoch),
        )
    };
    for _ in 0..TRIES {
        // Protocol order: key epoch, key, word (see `profiler_common::tally`).
        let epoch = key_epoch.load(Ordering::Acquire);
        // SAFETY: per the contract; a torn copy is rejected below.
        let key = unsafe { std::ptr::read_volatile(&raw const (*slot).key) };
        let w = word.load(Ordering::Acquire);
        if tally_count(w) == 0 || tally_epoch(w) != epoch {
            return None;
        }
        if word
            .compare_exchange(w, tally_word(epoch, 0), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Some((key, tally_count(w)));
        }
    }
    None
}

/// The row a slot's count adds to.
fn push_row(key: &RawTallyKey, n: u64, waits: &mut Vec<WaitRow>, wakes: &mut Vec<WakeRow>) {
    match key.kind {
        TALLY_EAGAIN => waits.push(WaitRow {
            tgid: key.tgid,
            tid: key.tid,
            comm: String::new(),
            uaddr: key.uaddr,
            stack_id: key.stack_id,
            op: key.op,
            leaf_ret: key.leaf_ret,
            counts: WaitCounts {
                eagain: n,
                ..WaitCounts::default()
            },
        }),
        TALLY_WOKE_NONE => wakes.push(wake_row(key, n, n, 0)),
        // Each of them woke one waiter.
        TALLY_WOKE_ONE => wakes.push(wake_row(key, n, 0, n)),
        // A count is only ever added under a claimed key.
        _ => {}
    }
}

/// The wake row of `calls` wakes of `key` that woke nobody `woke_none` times and
/// woke `woken` waiters in all.
fn wake_row(key: &RawTallyKey, calls: u64, woke_none: u64, woken: u64) -> WakeRow {
    WakeRow {
        tgid: key.tgid,
        tid: key.tid,
        comm: String::new(),
        uaddr: key.uaddr,
        stack_id: key.stack_id,
        op: key.op,
        leaf_ret: key.leaf_ret,
        calls,
        woke_none,
        woken,
        ..WakeRow::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(kind: u32, epoch: u64, count: u64) -> RawTally {
        RawTally {
            word: tally_word(epoch, count),
            key_epoch: epoch,
            key: RawTallyKey {
                tgid: 10,
                tid: 11,
                uaddr: 0x1000,
                leaf_ret: 0x2000,
                stack_id: 3,
                op: 9,
                kind,
                pad: 0,
            },
            pad: 0,
        }
    }

    #[test]
    fn a_count_is_taken_once_and_the_epoch_kept() {
        let mut s = slot(TALLY_EAGAIN, 5, 42);
        // SAFETY: a local slot.
        let (key, n) = unsafe { take_slot(&raw mut s) }.unwrap();
        assert_eq!((key.tid, key.uaddr, n), (11, 0x1000, 42));
        assert_eq!(s.word, tally_word(5, 0), "count emptied, epoch kept");
        // SAFETY: as above.
        assert_eq!(unsafe { take_slot(&raw mut s) }, None);
    }

    #[test]
    fn a_slot_being_claimed_is_left_alone() {
        // A claimer won the word (epoch 6) and has not stored the key's epoch yet.
        let mut s = slot(TALLY_EAGAIN, 5, 0);
        s.word = tally_word(6, 0);
        // SAFETY: a local slot.
        assert_eq!(unsafe { take_slot(&raw mut s) }, None);
        assert_eq!(s.word, tally_word(6, 0));
    }

    #[test]
    fn rows_carry_each_kind_s_counts() {
        let (mut waits, mut wakes) = (Vec::new(), Vec::new());
        push_row(&slot(TALLY_EAGAIN, 1, 7).key, 7, &mut waits, &mut wakes);
        push_row(&slot(TALLY_WOKE_NONE, 1, 4).key, 4, &mut waits, &mut wakes);
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].counts.eagain, 7);
        assert_eq!(
            (waits[0].tid, waits[0].stack_id, waits[0].leaf_ret),
            (11, 3, 0x2000)
        );
        push_row(&slot(TALLY_WOKE_ONE, 1, 3).key, 3, &mut waits, &mut wakes);
        assert_eq!(wakes.len(), 2);
        assert_eq!(
            (wakes[0].calls, wakes[0].woke_none, wakes[0].woken),
            (4, 4, 0)
        );
        // Each of them woke one waiter.
        assert_eq!(
            (
                wakes[1].calls,
                wakes[1].woke_none,
                wakes[1].woken,
                wakes[1].woke_many
            ),
            (3, 0, 3, 0)
        );
    }
}

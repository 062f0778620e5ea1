//! The traced threads' rows as userspace sees them: `TASKS` (one slot per thread id,
//! see `MAP_TASKS`) read only at the slots `TASK_CLAIMS` marks claimed — a 20 MiB
//! array is neither copied nor mapped (a mapping of it would count in lockprof's
//! resident memory: the kernel maps every page of it at `mmap`) — plus the small
//! `TASK_SPILL` hash.
//!
//! Owns: the claim bitmap's mapping, the scan, and releasing the claim bits of slots
//! whose thread exited (the probe takes such a slot over when it needs it; the bit
//! only keeps the scan short). Must not: write a row — only the probe does.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use profiler_common::{CALL_EXITED, MAP_TASK_CLAIMS, MAX_TASKS, TASK_CLAIM_WORDS};

use super::CollectError;
use super::mmap::MappedArray;

/// `TASK_CLAIMS`, mapped, and what the previous scan saw.
pub struct TaskRows {
    claims: MappedArray,
    /// `TASKS`' slots as loaded (see `GLOBAL_TASK_SLOTS`).
    slots: u32,
    /// Slots whose thread had exited at the previous scan, sorted.
    exited: Vec<u32>,
}

/// A row's `owner` and `call`, read from `TASKS` by slot (`None`: unreadable).
pub type ReadRow<'a> = dyn FnMut(u32) -> Option<(u64, u32)> + 'a;

impl TaskRows {
    /// Map the loaded `TASK_CLAIMS` (created `BPF_F_MMAPABLE`); `TASKS` has `slots`.
    pub fn map(claims: BorrowedFd<'_>, slots: u32) -> Result<Self, CollectError> {
        debug_assert!(slots.is_power_of_two() && slots <= MAX_TASKS);
        Ok(Self {
            claims: MappedArray::map(claims, TASK_CLAIM_WORDS as usize * 8, MAP_TASK_CLAIMS)?,
            slots,
            exited: Vec::new(),
        })
    }

    /// The `call` of every claimed row whose thread has not exited, each row read
    /// with `read`. A slot whose thread had already exited at the previous scan leaves
    /// the scan: a waiter it woke has returned by now.
    pub fn calls(&mut self, read: &mut ReadRow<'_>) -> Vec<u32> {
        let mut calls = Vec::new();
        let mut exited = Vec::new();
        for w in 0..self.slots.div_ceil(64) {
            let mut bits = self.claim_word(w).load(Ordering::SeqCst);
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros();
                bits &= bits - 1;
                let Some((owner, call)) = read(slot) else {
                    continue;
                };
                if call != CALL_EXITED {
                    calls.push(call);
                } else if self.exited.binary_search(&slot).is_ok() {
                    self.release(slot, owner, read);
                } else {
                    exited.push(slot);
                }
            }
        }
        self.exited = exited;
        calls
    }

    /// Clear `slot`'s claim bit, unless a new thread took the slot over meanwhile
    /// (the probe sets the bit after taking it: set it back then).
    fn release(&self, slot: u32, owner: u64, read: &mut ReadRow<'_>) {
        let bit = 1u64 << (slot % 64);
        let word = self.claim_word(slot / 64);
        word.fetch_and(!bit, Ordering::SeqCst);
        if read(slot) != Some((owner, CALL_EXITED)) {
            word.fetch_or(bit, Ordering::SeqCst);
        }
    }

    fn claim_word(&self, w: u32) -> &AtomicU64 {
        debug_assert!(w < TASK_CLAIM_WORDS);
        // SAFETY: `w` < TASK_CLAIM_WORDS, inside the mapping; AtomicU64 has the layout
        // of the u64 the probe sets bits of.
        unsafe { &*self.claims.as_ptr::<AtomicU64>().add(w as usize) }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::fd::{AsFd as _, FromRawFd as _, OwnedFd};

    use profiler_common::{CALL_WAIT, CALL_WAKE, task_slot};

    use super::*;

    /// Shared memory standing in for the BPF array: the mappings behave alike.
    fn memfd(len: usize) -> OwnedFd {
        // SAFETY: plain syscalls on a fresh fd we own.
        unsafe {
            let fd = libc::memfd_create(c"task-rows-test".as_ptr(), 0);
            assert!(fd >= 0, "memfd_create");
            assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
            OwnedFd::from_raw_fd(fd)
        }
    }

    /// The probe's side: rows by slot, and the claim bits.
    struct Fixture {
        rows: TaskRows,
        table: BTreeMap<u32, (u64, u32)>,
        _claims: OwnedFd,
    }

    impl Fixture {
        fn new() -> Self {
            let claims = memfd(TASK_CLAIM_WORDS as usize * 8);
            let rows = TaskRows::map(claims.as_fd(), MAX_TASKS).expect("map");
            Self {
                rows,
                table: BTreeMap::new(),
                _claims: claims,
            }
        }

        /// What the probe does: write a row and mark its slot claimed.
        fn claim(&mut self, tid: u32, call: u32) {
            self.write(tid, call);
            let slot = task_slot(tid, MAX_TASKS);
            self.rows
                .claim_word(slot / 64)
                .fetch_or(1 << (slot % 64), Ordering::SeqCst);
        }

        fn write(&mut self, tid: u32, call: u32) {
            self.table
                .insert(task_slot(tid, MAX_TASKS), (u64::from(tid), call));
        }

        fn scan(&mut self) -> Vec<u32> {
            let table = self.table.clone();
            let mut calls = self.rows.calls(&mut |slot| table.get(&slot).copied());
            calls.sort_unstable();
            calls
        }

        fn claimed(&self, tid: u32) -> bool {
            let slot = task_slot(tid, MAX_TASKS);
            self.rows.claim_word(slot / 64).load(Ordering::SeqCst) & (1 << (slot % 64)) != 0
        }
    }

    #[test]
    fn only_claimed_rows_are_read_and_exited_ones_are_not_counted() {
        let mut f = Fixture::new();
        f.claim(100, CALL_WAIT);
        f.claim(101, CALL_WAKE);
        f.claim(30_000, 0);
        f.claim(102, CALL_EXITED);
        // A row the probe wrote without claiming its slot is not read.
        f.write(7, CALL_WAIT);
        assert_eq!(f.scan(), vec![0, CALL_WAIT, CALL_WAKE]);
    }

    #[test]
    fn an_exited_threads_slot_leaves_the_scan_at_the_second_scan() {
        let mut f = Fixture::new();
        f.claim(200, CALL_EXITED);
        f.scan();
        assert!(
            f.claimed(200),
            "kept one scan: a waiter it woke may still read it"
        );
        f.scan();
        assert!(!f.claimed(200), "released at the second");
    }

    #[test]
    fn a_slot_taken_over_between_scans_stays_claimed() {
        let mut f = Fixture::new();
        f.claim(300, CALL_EXITED);
        f.scan();
        // Another thread with the same slot takes it over (the probe's compare-and-
        // swap), as happens where pid_max exceeds the slots.
        let other = 300 + MAX_TASKS;
        f.claim(other, CALL_WAIT);
        assert_eq!(f.scan(), vec![CALL_WAIT]);
        assert!(f.claimed(other));
    }
}

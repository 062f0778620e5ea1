//! The probes' target filter as userspace sees it: `TARGET_BITS` (one bit per
//! traced tgid) memory-mapped, so setting and clearing a bit is an atomic operation
//! on the shared page — it cannot undo a bit the kernel sets at the same moment for a
//! followed child (a read-modify-write through `bpf(2)` could). The word after the
//! bits counts the children the kernel followed: read through the same mapping, it
//! tells the session when `TARGETS` has new rows without a syscall.
//!
//! Owns: the mapping and its bit arithmetic. Must not: decide what is traced (the
//! session does, through [`Probes::add_target`](super::Probes::add_target)).

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use profiler_common::{
    MAP_TARGET_BITS, TARGET_BITS_ENTRIES, TARGET_BITS_FOLLOWED, TARGET_BITS_WORDS,
};

use super::CollectError;
use super::mmap::MappedArray;

/// `TARGET_BITS`, mapped read-write (only accessed through atomics).
pub struct TargetBits {
    words: MappedArray,
}

const BYTES: usize = TARGET_BITS_ENTRIES as usize * 8;

impl TargetBits {
    /// Map the loaded `TARGET_BITS` array (created `BPF_F_MMAPABLE`).
    pub fn map(fd: BorrowedFd<'_>) -> Result<Self, CollectError> {
        Ok(Self {
            words: MappedArray::map(fd, BYTES, MAP_TARGET_BITS)?,
        })
    }

    /// Mark `tgid` traced.
    pub fn set(&self, tgid: u32) {
        if let Some((w, bit)) = self.slot(tgid) {
            w.fetch_or(bit, Ordering::SeqCst);
        }
    }

    /// Mark `tgid` untraced.
    pub fn clear(&self, tgid: u32) {
        if let Some((w, bit)) = self.slot(tgid) {
            w.fetch_and(!bit, Ordering::SeqCst);
        }
    }

    /// How many children the kernel has followed so far (see
    /// `profiler_common::TARGET_BITS_FOLLOWED`).
    pub fn followed(&self) -> u64 {
        // SAFETY: the word after the bits, inside the mapping (BYTES covers it).
        unsafe { &*self.word(TARGET_BITS_FOLLOWED as usize) }.load(Ordering::SeqCst)
    }

    fn slot(&self, tgid: u32) -> Option<(&AtomicU64, u64)> {
        let (word, bit) = position(tgid)?;
        // SAFETY: `word` < TARGET_BITS_WORDS, inside the mapping; AtomicU64 has the
        // layout of the u64 the kernel reads.
        Some((unsafe { &*self.word(word) }, bit))
    }

    /// Word `i` of the mapping (`i` ≤ `TARGET_BITS_FOLLOWED`).
    fn word(&self, i: usize) -> *const AtomicU64 {
        self.words.as_ptr::<AtomicU64>().wrapping_add(i)
    }
}

/// Word index and bit mask of `tgid`, `None` beyond the largest possible pid.
fn position(tgid: u32) -> Option<(usize, u64)> {
    let word = (tgid / 64) as usize;
    (word < TARGET_BITS_WORDS as usize).then_some((word, 1u64 << (tgid % 64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_splits_tgid_into_word_and_bit() {
        assert_eq!(position(0), Some((0, 1)));
        assert_eq!(position(63), Some((0, 1 << 63)));
        assert_eq!(position(64), Some((1, 1)));
        assert_eq!(position(4_194_303), Some((65_535, 1 << 63)));
        assert_eq!(position(4_194_304), None);
    }
}

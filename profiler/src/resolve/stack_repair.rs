//! Putting back the frame a frame-pointer walk skips, and checking a walk against
//! the stack copy taken with it.
//!
//! Owns: deciding whether the word at the user stack pointer (captured by the probe
//! at the syscall) is a real return address, and splicing it into the raw stack;
//! [`walk_matches_copy`]. Must not: symbolize or attribute.
//!
//! Why: glibc's `syscall()` is a frameless leaf — it executes `syscall` without
//! pushing anything — so the frame-pointer chain starts at its *caller's* saved frame
//! and the caller itself (Rust std's `futex_wait`/`lock_contended`, or user code that
//! calls `syscall(SYS_futex, …)` directly) never appears. At that moment `[rsp]` is
//! exactly the return address into the caller. For syscalls made from functions that
//! did set up a frame, `[rsp]` is some saved value instead, so we only believe it when
//! the bytes before it encode a call instruction.

use crate::collect::snapshot::UserStackCopy;

/// The raw stack with the leaf caller's return address inserted after the first
/// frame, when `is_return_address(leaf_ret)` holds and the walk did not already have
/// it.
pub fn splice_leaf(
    raw: &[u64],
    leaf_ret: u64,
    mut is_return_address: impl FnMut(u64) -> bool,
) -> Vec<u64> {
    let mut out = raw.to_vec();
    if leaf_ret == 0
        || raw.is_empty()
        || raw.get(1) == Some(&leaf_ret)
        || !is_return_address(leaf_ret)
    {
        return out;
    }
    out.insert(1, leaf_ret);
    out
}

/// Whether `walk` (a frame-pointer stack read from the kernel's stack map by the id
/// a stack copy names) is the walk taken with `copy`: it starts at the copy's
/// instruction pointer and every frame record inside the copied bytes holds the
/// return address the walk has there. A stack id userspace deleted may be bound to
/// another stack by the time a copy naming it is read; this tells the two apart.
pub fn walk_matches_copy(walk: &[u64], copy: &UserStackCopy) -> bool {
    if walk.first() != Some(&copy.ip) {
        return false;
    }
    let word = |addr: u64| -> Option<u64> {
        let at = usize::try_from(addr.checked_sub(copy.base)?).ok()?;
        let bytes = copy.bytes.get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    };
    // The kernel's walk: the return address at [bp + 8], then the caller's bp at [bp].
    let mut bp = copy.bp;
    for &ret in &walk[1..] {
        let (Some(next), Some(at_ret)) = (word(bp), bp.checked_add(8).and_then(word)) else {
            // The record lies outside the copy: nothing more to compare.
            return true;
        };
        if at_ret != ret {
            return false;
        }
        bp = next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy at 0x7000 whose frame records are bp 0x7010 → [0x7040, ret 0xa1] and
    /// 0x7040 → [0x9000 (outside the copy), ret 0xa2].
    fn copy_with_frames() -> UserStackCopy {
        let mut bytes = vec![0u8; 0x100];
        let mut put = |at: usize, v: u64| bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put(0x10, 0x7040);
        put(0x18, 0xa1);
        put(0x40, 0x9000);
        put(0x48, 0xa2);
        UserStackCopy {
            ip: 0xa0,
            sp: 0x7008,
            bp: 0x7010,
            base: 0x7000,
            bytes,
            shared: false,
        }
    }

    #[test]
    fn a_walk_matches_the_copy_it_was_taken_with_and_not_another_stack() {
        let copy = copy_with_frames();
        assert!(walk_matches_copy(&[0xa0, 0xa1, 0xa2], &copy));
        assert!(
            walk_matches_copy(&[0xa0, 0xa1, 0xa2, 0xa3, 0xa4], &copy),
            "frames beyond the copy cannot be checked"
        );
        assert!(
            !walk_matches_copy(&[0xb0, 0xa1, 0xa2], &copy),
            "another leaf"
        );
        assert!(
            !walk_matches_copy(&[0xa0, 0xa1, 0xb2], &copy),
            "another caller"
        );
        assert!(!walk_matches_copy(&[], &copy));
    }

    #[test]
    fn splices_only_validated_new_frames() {
        let raw = [0x10, 0x30, 0x40];
        assert_eq!(splice_leaf(&raw, 0x20, |_| true), [0x10, 0x20, 0x30, 0x40]);
        assert_eq!(splice_leaf(&raw, 0x20, |_| false), raw, "not after a call");
        assert_eq!(
            splice_leaf(&raw, 0x30, |_| true),
            raw,
            "already the next frame"
        );
        assert_eq!(splice_leaf(&raw, 0, |_| true), raw, "unreadable");
        assert!(splice_leaf(&[], 0x20, |_| true).is_empty());
    }
}

//! Putting back the frame a frame-pointer walk skips.
//!
//! Owns: deciding whether the word at the user stack pointer (captured by the probe
//! at the syscall) is a real return address, and splicing it into the raw stack.
//! Must not: symbolize or attribute.
//!
//! Why: glibc's `syscall()` is a frameless leaf — it executes `syscall` without
//! pushing anything — so the frame-pointer chain starts at its *caller's* saved frame
//! and the caller itself (Rust std's `futex_wait`/`lock_contended`, or user code that
//! calls `syscall(SYS_futex, …)` directly) never appears. At that moment `[rsp]` is
//! exactly the return address into the caller. For syscalls made from functions that
//! did set up a frame, `[rsp]` is some saved value instead, so we only believe it when
//! the bytes before it encode a call instruction.

/// Is `addr` a return address, i.e. do the bytes just before it (`before`, ending at
/// `addr`) end with an x86-64 `call`?
pub fn follows_call(before: &[u8]) -> bool {
    let n = before.len();
    let at = |back: usize| n.checked_sub(back).map(|i| before[i]);
    // call rel32: e8 xx xx xx xx
    if at(5) == Some(0xe8) {
        return true;
    }
    // call [rip+disp32] (Rust's default no-PLT calls into libc): ff 15 xx xx xx xx
    if at(6) == Some(0xff) && at(5) == Some(0x15) {
        return true;
    }
    // call [reg+disp32]: ff 90..97 disp32
    if at(6) == Some(0xff) && at(5).is_some_and(|m| (0x90..=0x97).contains(&m)) {
        return true;
    }
    // call [reg+disp8]: ff 50..57 disp8, and with REX.B: 41 ff 50..57 disp8
    if at(3) == Some(0xff) && at(2).is_some_and(|m| (0x50..=0x57).contains(&m)) {
        return true;
    }
    // call reg: ff d0..d7, and with REX.B: 41 ff d0..d7
    at(2) == Some(0xff) && at(1).is_some_and(|m| (0xd0..=0xd7).contains(&m))
}

/// The raw stack with the leaf caller's return address inserted after the first
/// frame, when `is_return_address(leaf_ret)` holds and the walk did not already have
/// it.
pub fn splice_leaf(
    raw: &[u64],
    leaf_ret: u64,
    is_return_address: impl Fn(u64) -> bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_common_call_encodings() {
        assert!(follows_call(&[0x90, 0xe8, 1, 2, 3, 4]), "call rel32");
        assert!(follows_call(&[0xff, 0x15, 1, 2, 3, 4]), "call [rip+disp32]");
        assert!(follows_call(&[0xff, 0xd0]), "call rax");
        assert!(follows_call(&[0x41, 0xff, 0xd3]), "call r11");
        assert!(follows_call(&[0xff, 0x50, 0x08]), "call [rax+8]");
        assert!(follows_call(&[0xff, 0x93, 1, 2, 3, 4]), "call [rbx+disp32]");
    }

    #[test]
    fn rejects_non_calls() {
        assert!(
            !follows_call(&[0x48, 0x89, 0xe5, 0x5d, 0xc3, 0x90]),
            "mov/pop/ret/nop"
        );
        assert!(!follows_call(&[]));
        assert!(!follows_call(&[0, 0, 0, 0, 0, 0]));
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

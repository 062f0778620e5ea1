//! Machine code both sides read: whether an address is a return address.
//!
//! The probe checks the return addresses of a frame chain before it shares a stack
//! copy between threads (`profiler-ebpf` `stacks`); userspace checks the word at the
//! stack pointer before it puts it back as a frame (`resolve::stack_repair`).

/// Is `addr` a return address, i.e. do the bytes just before it (`before`, ending at
/// `addr`) end with an x86-64 `call`?
#[allow(
    clippy::inline_always,
    reason = "the probe calls it on an 8-byte array: inlined, every index is a constant the verifier need not bound"
)]
#[inline(always)]
#[must_use]
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
}

//! Futex syscall numbers and operations as the probe decodes them.

/// Syscall numbers on `x86_64` that the probe decodes.
pub mod nr {
    /// `futex(2)`.
    pub const FUTEX: u64 = 202;
    /// `futex_waitv(2)` (5.16+).
    pub const FUTEX_WAITV: u64 = 449;
    /// `futex_wake(2)` (6.7+).
    pub const FUTEX_WAKE: u64 = 454;
    /// `futex_wait(2)` (6.7+).
    pub const FUTEX_WAIT: u64 = 455;
    /// `futex_requeue(2)` (6.7+).
    pub const FUTEX_REQUEUE: u64 = 456;
    /// `clone(2)`.
    pub const CLONE: u64 = 56;
    /// `fork(2)`.
    pub const FORK: u64 = 57;
    /// `vfork(2)`.
    pub const VFORK: u64 = 58;
    /// `clone3(2)`.
    pub const CLONE3: u64 = 435;
}

/// Futex operations as the probe reports them: `futex(2)` commands keep their kernel
/// number (`op & FUTEX_CMD_MASK`); the futex2 syscalls get numbers from 100 up.
pub mod op {
    pub const WAIT: u32 = 0;
    pub const WAKE: u32 = 1;
    pub const REQUEUE: u32 = 3;
    pub const CMP_REQUEUE: u32 = 4;
    pub const WAKE_OP: u32 = 5;
    pub const LOCK_PI: u32 = 6;
    pub const UNLOCK_PI: u32 = 7;
    pub const WAIT_BITSET: u32 = 9;
    pub const WAKE_BITSET: u32 = 10;
    pub const WAIT_REQUEUE_PI: u32 = 11;
    pub const CMP_REQUEUE_PI: u32 = 12;
    pub const LOCK_PI2: u32 = 13;
    /// `futex_wait(2)`.
    pub const FUTEX2_WAIT: u32 = 100;
    /// `futex_waitv(2)`; the address is the first waiter's.
    pub const FUTEX2_WAITV: u32 = 101;
    /// `futex_wake(2)`.
    pub const FUTEX2_WAKE: u32 = 102;
    /// `futex_requeue(2)`; the address is the first waiter's.
    pub const FUTEX2_REQUEUE: u32 = 103;

    /// `futex(2)`'s command mask: drops `FUTEX_PRIVATE_FLAG` and `FUTEX_CLOCK_REALTIME`.
    pub const FUTEX_CMD_MASK: u32 = !(128 | 256);

    /// Does this op block the caller until woken (or timeout)?
    #[must_use]
    pub const fn is_wait(op: u32) -> bool {
        matches!(
            op,
            WAIT | LOCK_PI | WAIT_BITSET | WAIT_REQUEUE_PI | LOCK_PI2 | FUTEX2_WAIT | FUTEX2_WAITV
        )
    }

    /// Does this op wake (or hand over to) other threads?
    #[must_use]
    pub const fn is_wake(op: u32) -> bool {
        matches!(
            op,
            WAKE | REQUEUE
                | CMP_REQUEUE
                | WAKE_OP
                | UNLOCK_PI
                | WAKE_BITSET
                | CMP_REQUEUE_PI
                | FUTEX2_WAKE
                | FUTEX2_REQUEUE
        )
    }
}

#[cfg(test)]
mod tests {
    use super::op;

    #[test]
    fn wait_and_wake_ops_are_disjoint() {
        for o in 0..128 {
            assert!(!(op::is_wait(o) && op::is_wake(o)), "op {o} is both");
        }
        assert!(op::is_wait(op::WAIT_BITSET));
        assert!(op::is_wake(op::WAKE_BITSET));
        assert!(!op::is_wait(8), "TRYLOCK_PI never blocks");
    }
}

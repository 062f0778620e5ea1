//! The loss counters: every way the probe can fail to record something, counted.

/// Indices of [`MAP_LOSSES`](crate::maps::MAP_LOSSES). Each counts one way a wait or wake went unrecorded or
/// lost detail; the report prints them all.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// `bpf_get_stackid` found a different stack in the hash bucket (`-EEXIST`): the
    /// wait is kept, its stack is not.
    StackCollision = 0,
    /// `bpf_get_stackid` failed otherwise (fault walking the user stack, full map).
    StackError = 1,
    /// [`MAP_WAITS`](crate::maps::MAP_WAITS) was full: a wait was not aggregated.
    WaitMapFull = 2,
    /// [`MAP_WAKES`](crate::maps::MAP_WAKES) was full: a wake was not aggregated.
    WakeMapFull = 3,
    /// [`MAP_TASKS`](crate::maps::MAP_TASKS) was full: a thread's futex call could not be timed or paired.
    InFlightMapFull = 4,
    /// [`MAP_TARGETS`](crate::maps::MAP_TARGETS) was full: a child of a followed process was not traced.
    TargetMapFull = 5,
    /// Reading a syscall argument from user memory failed (e.g. a `futex_waitv` array).
    UserReadError = 6,
    /// [`MAP_EDGES`](crate::maps::MAP_EDGES) was full: a wake → wait pairing was not recorded (the wait was).
    EdgeMapFull = 7,
    /// A user-stack copy for DWARF unwinding could not be stored ([`MAP_USER_STACKS`](crate::maps::MAP_USER_STACKS)
    /// full) or its first page could not be read: that stack falls back to the
    /// frame-pointer walk.
    UserStackCopy = 8,
    /// The last-wake record of a wake could not be stored: a waiter it woke is
    /// counted as unpaired.
    LastWakeLost = 9,
    /// A wait was paired with a waker whose thread state was gone (the waker exited,
    /// or its row could not be created): the holder's window is left out, never
    /// assumed on CPU.
    HolderWindowLost = 10,
    /// A shared futex call (no `FUTEX_PRIVATE_FLAG`) of a process whose shared
    /// mappings were not registered yet, or were too many to register: it was paired
    /// within its process only, so a wake from another process was missed.
    SharedFutexUnmapped = 11,
    /// [`MAP_BLAME`](crate::blame::MAP_BLAME) was full: part of a wait was not
    /// charged to the holder that released it (the wait itself was recorded).
    BlameMapFull = 12,
}

/// Number of [`Loss`] counters.
pub const LOSS_KINDS: u32 = 13;

impl Loss {
    /// All loss kinds, in index order.
    pub const ALL: [Loss; LOSS_KINDS as usize] = [
        Loss::StackCollision,
        Loss::StackError,
        Loss::WaitMapFull,
        Loss::WakeMapFull,
        Loss::InFlightMapFull,
        Loss::TargetMapFull,
        Loss::UserReadError,
        Loss::EdgeMapFull,
        Loss::UserStackCopy,
        Loss::LastWakeLost,
        Loss::HolderWindowLost,
        Loss::SharedFutexUnmapped,
        Loss::BlameMapFull,
    ];
}

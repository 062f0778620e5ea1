//! Kernel ↔ userspace layouts shared by `profiler-ebpf` and `profiler`.
//!
//! Owns: the `#[repr(C)]` keys and values of the BPF maps, their names, the futex op
//! numbering and the loss counters. Must not: contain logic beyond tiny pure helpers
//! both sides need (bucketing), or anything that needs `std`.
//!
//! Every type is `Copy`, made of fixed-width integers with explicit padding, and
//! pinned in size by a `const` assertion: the kernel writes these bytes and userspace
//! reads them back, so a silent layout drift would corrupt every number.
#![no_std]

pub mod go;

/// Hash map `RawWaitKey → RawWaitStats` (per-CPU): the in-kernel wait aggregation.
pub const MAP_WAITS: &str = "WAITS";
/// Hash map `RawWakeKey → RawWakeStats` (per-CPU): the in-kernel wake aggregation.
pub const MAP_WAKES: &str = "WAKES";
/// Stack-trace map of user stacks, keyed by the ids stored in the keys above.
pub const MAP_STACKS: &str = "STACKS";
/// Overflow stack map, of a different size: the kernel buckets stacks by a seedless
/// hash masked to the map size, so a stack that collides in [`MAP_STACKS`] lands in
/// another bucket here. Its ids are reported as `id + STACK_ID_OVERFLOW`.
pub const MAP_STACKS2: &str = "STACKS2";
/// Added to ids from [`MAP_STACKS2`] so the two id spaces never overlap.
pub const STACK_ID_OVERFLOW: i32 = 1 << 24;
/// Hash map `tgid → TargetFlags`: the processes to trace.
pub const MAP_TARGETS: &str = "TARGETS";
/// Hash map `tid → RawInFlight`: waits that have entered the kernel and not returned.
pub const MAP_INFLIGHT: &str = "INFLIGHT";
/// Per-CPU array of `u64`, indexed by [`Loss`]: everything the probe could not record.
pub const MAP_LOSSES: &str = "LOSSES";
/// Hash map `RawEdgeKey → RawEdgeStats` (per-CPU): which wake stack woke which wait
/// stack, and the wait time it ended.
pub const MAP_EDGES: &str = "EDGES";

/// Hash map `stack id → RawUserStack`: registers and a copy of the user stack, taken
/// once per new call position, for DWARF (`.eh_frame`) unwinding in userspace. Its
/// ids start at [`DWARF_STACK_ID_BASE`] and are used in place of the frame-pointer
/// stack id in the wait/wake/edge keys, so call paths a frame-pointer walk cannot tell
/// apart (everything blocked inside glibc looks alike) stay apart.
pub const MAP_USER_STACKS: &str = "USER_STACKS";
/// First id of a [`MAP_USER_STACKS`] entry; ids are `BASE | cpu << 20 | n`.
pub const DWARF_STACK_ID_BASE: i32 = 1 << 30;
/// Pages of user stack copied per capture, starting at the page holding the stack
/// pointer: at least `(USER_STACK_PAGES - 1) * 4 KiB` above the stack pointer.
pub const USER_STACK_PAGES: usize = 4;
/// Bytes of [`RawUserStack::data`].
pub const USER_STACK_BYTES: usize = USER_STACK_PAGES * 4096;
/// Global `u32` in the probes: 1 (default) copies user stacks for DWARF unwinding, 0
/// keeps frame-pointer stacks only.
pub const GLOBAL_COPY_USER_STACKS: &str = "COPY_USER_STACKS";
/// Capacity of [`MAP_USER_STACKS`] (allocated on demand, not preallocated).
pub const MAX_USER_STACKS: u32 = 4_096;

/// Program attached to the `sys_enter` raw tracepoint.
pub const PROG_SYS_ENTER: &str = "sys_enter";
/// Program attached to the `sys_exit` raw tracepoint.
pub const PROG_SYS_EXIT: &str = "sys_exit";
/// Program attached to the `sched_switch` raw tracepoint: when traced threads go off
/// and come back on a CPU, so a waker's "held across blocking" can be measured.
pub const PROG_SCHED_SWITCH: &str = "sched_switch";

/// Capacity of [`MAP_WAITS`]. One entry per (tgid, tid, futex address, stack, op).
pub const MAX_WAIT_KEYS: u32 = 32_768;
/// Capacity of [`MAP_WAKES`].
pub const MAX_WAKE_KEYS: u32 = 16_384;
/// Capacity of [`MAP_STACKS`]; the kernel rounds the bucket count to a power of two,
/// and a larger table makes hash collisions between distinct stacks rarer.
pub const MAX_STACKS: u32 = 32_768;
/// Capacity of [`MAP_STACKS2`] (a different power of two than [`MAX_STACKS`]).
pub const MAX_STACKS2: u32 = 8_192;
/// Capacity of the per-thread stack cache (kernel-internal LRU).
pub const MAX_STACK_CACHE: u32 = 65_536;
/// Capacity of [`MAP_TARGETS`].
pub const MAX_TARGETS: u32 = 4_096;
/// Capacity of [`MAP_INFLIGHT`]: one entry per thread currently inside a futex wait.
pub const MAX_INFLIGHT: u32 = 65_536;
/// Capacity of [`MAP_EDGES`].
pub const MAX_EDGES: u32 = 16_384;
/// Capacity of the last-waker-per-address LRU map (kernel-internal).
pub const MAX_LAST_WAKES: u32 = 16_384;
/// Capacity of the last-woken-address-per-thread LRU map (kernel-internal).
pub const MAX_LAST_WOKEN: u32 = 65_536;
/// Capacity of the per-thread off-CPU state LRU map (kernel-internal).
pub const MAX_THREADS: u32 = 32_768;
/// Off-CPU periods remembered per thread ([`RawThreadState::spans`]); a power of two.
pub const OFF_SPANS: usize = 16;
/// Syscalls kept per edge for "where the waker was off CPU" ([`RawEdgeStats::off`]).
pub const OFF_SLOTS: usize = 3;
/// [`RawOffSpan::nr`] of a thread switched out while runnable (preempted or
/// yielding): it was waiting for a CPU, not blocked.
pub const OFF_RUNNABLE: u32 = u32::MAX;
/// [`RawOffSpan::nr`] of a thread that blocked outside a syscall (e.g. a page fault).
pub const OFF_NO_SYSCALL: u32 = u32::MAX - 1;

/// `RawInFlight::flags` bit: the thread was woken from this same futex by its previous
/// wait and has not released it since — if this wait blocks, that wakeup was wasted.
pub const INFLIGHT_REWAIT: u32 = 1;

/// Number of log2 buckets in a wait-time histogram. Bucket `b` counts waits of
/// `[2^b, 2^(b+1))` ns (bucket 0 also takes 0 ns); the last bucket is open-ended
/// (2^39 ns ≈ 9 minutes).
pub const HIST_BUCKETS: usize = 40;

/// Log2 bucket of a duration in ns, clamped to the last bucket.
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
#[must_use]
pub fn hist_bucket(ns: u64) -> usize {
    // Branch-light integer log2: the verifier accepts it (no loops) and it costs a
    // handful of instructions on the hot path.
    let mut v = ns;
    let mut r = 0usize;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    if r >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        r
    }
}

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

/// Bit flags stored as the value of [`MAP_TARGETS`].
pub mod target_flags {
    /// The tgid is traced.
    pub const TRACED: u32 = 1;
    /// Processes this tgid forks are traced too (launch mode follows descendants).
    pub const FOLLOW_CHILDREN: u32 = 2;
}

/// Indices of [`MAP_LOSSES`]. Each counts one way a wait or wake went unrecorded or
/// lost detail; the report prints them all.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// `bpf_get_stackid` found a different stack in the hash bucket (`-EEXIST`): the
    /// wait is kept, its stack is not.
    StackCollision = 0,
    /// `bpf_get_stackid` failed otherwise (fault walking the user stack, full map).
    StackError = 1,
    /// [`MAP_WAITS`] was full: a wait was not aggregated.
    WaitMapFull = 2,
    /// [`MAP_WAKES`] was full: a wake was not aggregated.
    WakeMapFull = 3,
    /// [`MAP_INFLIGHT`] was full: a wait's start was not recorded.
    InFlightMapFull = 4,
    /// [`MAP_TARGETS`] was full: a child of a followed process was not traced.
    TargetMapFull = 5,
    /// Reading a syscall argument from user memory failed (e.g. a `futex_waitv` array).
    UserReadError = 6,
    /// [`MAP_EDGES`] was full: a wake → wait pairing was not recorded (the wait was).
    EdgeMapFull = 7,
    /// A user-stack copy for DWARF unwinding could not be stored ([`MAP_USER_STACKS`]
    /// full) or its first page could not be read: that stack falls back to the
    /// frame-pointer walk.
    UserStackCopy = 8,
}

/// Number of [`Loss`] counters.
pub const LOSS_KINDS: u32 = 9;

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
    ];
}

/// A thread inside a futex wait: written at syscall entry, consumed at exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawInFlight {
    pub start_ns: u64,
    pub uaddr: u64,
    pub op: u32,
    /// `INFLIGHT_*` bits.
    pub flags: u32,
}

/// Aggregation key of a wait: one row per thread, futex address, user stack and op.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawWaitKey {
    pub tgid: u32,
    pub tid: u32,
    pub uaddr: u64,
    /// Id in [`MAP_STACKS`], or negative when the stack was lost (see [`Loss`]).
    pub stack_id: i32,
    pub op: u32,
    /// The word at the user stack pointer when the syscall was made. When the
    /// syscall came from a frameless leaf such as glibc's `syscall()`, it is the
    /// return address into the function that called the leaf — the frame a
    /// frame-pointer walk skips. Userspace keeps it only if it follows a call
    /// instruction. 0 when unreadable.
    pub leaf_ret: u64,
}

/// Wait statistics for one [`RawWaitKey`] on one CPU (userspace sums the CPUs).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawWaitStats {
    /// Waits that blocked and returned 0 (woken, or the lock was handed over).
    pub blocked: u64,
    /// Sum of the blocked waits' durations.
    pub total_ns: u64,
    /// Shortest blocked wait; 0 in a slot with no blocked wait yet (`blocked == 0`), set
    /// by the first one.
    pub min_ns: u64,
    /// Longest blocked wait.
    pub max_ns: u64,
    /// Waits that returned `-EAGAIN`: the futex word had changed, nothing blocked.
    pub eagain: u64,
    /// Waits that returned `-ETIMEDOUT`.
    pub timedout: u64,
    /// Time spent in waits that timed out.
    pub timedout_ns: u64,
    /// Waits interrupted by a signal (`-EINTR`, `-ERESTARTSYS` and friends).
    pub interrupted: u64,
    /// Waits that failed any other way.
    pub other_err: u64,
    /// Blocked waits that began right after a wakeup from the same futex, with no
    /// release of it by this thread in between: the previous wakeup was wasted (the
    /// thundering herd, or a lock barged by another thread).
    pub rewaits: u64,
    /// Blocked waits for which no wake call on the same address was seen (woken by
    /// the kernel, e.g. thread exit for a join, or by a process not traced).
    pub unpaired: u64,
    /// Log2 histogram of blocked wait durations (see [`hist_bucket`]).
    pub hist: [u64; HIST_BUCKETS],
    /// `comm` of the thread when the row was created (thread name).
    pub comm: [u8; 16],
}

/// Aggregation key of a wake call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawWakeKey {
    pub tgid: u32,
    pub tid: u32,
    pub uaddr: u64,
    pub stack_id: i32,
    pub op: u32,
    /// As [`RawWaitKey::leaf_ret`].
    pub leaf_ret: u64,
}

/// Wake statistics for one [`RawWakeKey`] on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawWakeStats {
    /// Wake calls made.
    pub calls: u64,
    /// Threads woken (or requeued), summed over calls.
    pub woken: u64,
    /// Calls that woke nobody.
    pub woke_none: u64,
    /// Calls that woke more than one thread (broadcasts).
    pub woke_many: u64,
    /// Calls that failed.
    pub errors: u64,
    pub comm: [u8; 16],
}

/// Aggregation key of a wake → wait edge: the waiter's stack and the stack of the
/// wake call that ended its wait (the last wake on the same futex address).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawEdgeKey {
    pub tgid: u32,
    pub waiter_stack_id: i32,
    pub waker_stack_id: i32,
    pub waker_tid: u32,
    pub waiter_leaf_ret: u64,
    pub waker_leaf_ret: u64,
}

/// Per-CPU statistics of one edge.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawEdgeStats {
    pub waits: u64,
    pub wait_ns: u64,
    /// Sum of the waits' windows: from their start (or from when the waker itself
    /// got the lock, if later) to the wake call — the span in which the waker held
    /// what the waiter wanted.
    pub window_ns: u64,
    /// How much of those windows the waker spent off CPU, per syscall it was in
    /// (the top [`OFF_SLOTS`]; the rest in `off_other_ns`).
    pub off: [RawOffSlot; OFF_SLOTS],
    pub off_other_ns: u64,
    /// Windows older than the waker's ring of [`OFF_SPANS`] off-CPU periods (it went
    /// off CPU more often than that during the wait): their off-CPU time is a lower
    /// bound.
    pub truncated: u64,
    /// Failed syscalls of the waker during the windows, and the last one seen.
    pub fails: u64,
    pub fail_nr: u32,
    pub fail_errno: u32,
    /// Wake-to-run latency: from the wake call until the waiter was back on CPU,
    /// over `wake_to_run_n` measured waits.
    pub wake_to_run_n: u64,
    pub wake_to_run_ns: u64,
    pub wake_to_run_max_ns: u64,
}

/// The last wake call on a futex address (kernel-internal map value).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawLastWake {
    /// When the wake syscall was entered (the waiter becomes runnable inside it).
    pub ts_ns: u64,
    pub leaf_ret: u64,
    pub tid: u32,
    pub stack_id: i32,
    /// The waker's [`RawThreadState::fails`] at the wake, and its last failure.
    pub fails: u32,
    pub fail_nr: u32,
    pub fail_errno: u32,
    pub pad: u32,
}

/// One period a traced thread spent off CPU: `[start_ns, end_ns)`, what it was in
/// (a syscall number, [`OFF_RUNNABLE`] or [`OFF_NO_SYSCALL`]) and its failed-syscall
/// count when it went off.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawOffSpan {
    pub start_ns: u64,
    pub end_ns: u64,
    pub nr: u32,
    pub fails: u32,
}

/// What a traced thread has been doing lately, kept by the kernel so that when it
/// wakes a waiter, the waiter's window can be matched against it (kernel-internal).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawThreadState {
    /// Start of the current off-CPU period, 0 while on CPU (closed lazily: the
    /// switch-in time is known the next time the thread runs a probe).
    pub off_start_ns: u64,
    pub off_nr: u32,
    pub off_fails: u32,
    /// Failed non-futex syscalls since tracing began, and the last one.
    pub fails: u32,
    pub last_fail_nr: u32,
    pub last_fail_errno: u32,
    /// Ring index of the next span to write.
    pub next_span: u32,
    /// The futex address this thread last returned from a blocked wait on, and
    /// when: for a lock, when it acquired it. A waiter's window is clipped to start
    /// there when this thread turns out to be its waker — before it, this thread was
    /// itself queued for the lock, not holding it.
    pub acquired_uaddr: u64,
    pub acquired_ns: u64,
    pub spans: [RawOffSpan; OFF_SPANS],
}

/// Off-CPU time of a waker in one syscall (slot of [`RawEdgeStats::off`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawOffSlot {
    /// Syscall number, [`OFF_RUNNABLE`] or [`OFF_NO_SYSCALL`]; meaningless while
    /// `ns == 0` (free slot).
    pub nr: u32,
    pub pad: u32,
    pub ns: u64,
}

/// Key of the stack cache: where a thread is when it makes a futex call. Two calls
/// with the same instruction pointer, stack and frame pointer and the same first two
/// return addresses come from the same call path, so the kernel's full stack walk is
/// done once and its id reused (kernel-internal).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawStackCacheKey {
    pub tid: u32,
    pub pad: u32,
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    pub ret1: u64,
    pub ret2: u64,
}

/// Key of the last-wake map: a futex address within a process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawAddrKey {
    pub tgid: u32,
    pub pad: u32,
    pub uaddr: u64,
}

/// The user registers at a futex syscall and a copy of the user stack, for unwinding
/// in userspace with the modules' CFI. The copy starts at the page holding `sp`
/// (`base = sp & !4095`) and holds `len` bytes (whole pages, up to the first page that
/// could not be read).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawUserStack {
    pub tgid: u32,
    /// The frame-pointer stack id of the same capture, or a negative errno: the
    /// fallback when this copy cannot be unwound.
    pub fp_stack_id: i32,
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// Bytes of `data` that were read, counted from `sp & !4095`.
    pub len: u32,
    pub pad: u32,
    pub data: [u8; USER_STACK_BYTES],
}

const _: () = assert!(core::mem::size_of::<RawUserStack>() == 40 + USER_STACK_BYTES);
const _: () = assert!(core::mem::size_of::<RawInFlight>() == 24);
const _: () = assert!(core::mem::size_of::<RawEdgeKey>() == 32);
const _: () = assert!(core::mem::size_of::<RawEdgeStats>() == 10 * 8 + OFF_SLOTS * 16);
const _: () = assert!(core::mem::size_of::<RawLastWake>() == 40);
const _: () = assert!(core::mem::size_of::<RawOffSpan>() == 24);
const _: () = assert!(core::mem::size_of::<RawThreadState>() == 48 + OFF_SPANS * 24);
const _: () = assert!(core::mem::size_of::<RawAddrKey>() == 16);
const _: () = assert!(core::mem::size_of::<RawStackCacheKey>() == 48);
const _: () = assert!(core::mem::size_of::<RawWaitKey>() == 32);
const _: () = assert!(core::mem::size_of::<RawWaitStats>() == 11 * 8 + HIST_BUCKETS * 8 + 16);
const _: () = assert!(core::mem::size_of::<RawWakeKey>() == 32);
const _: () = assert!(core::mem::size_of::<RawWakeStats>() == 5 * 8 + 16);

#[cfg(feature = "user")]
mod pod {
    use super::{
        RawEdgeKey, RawEdgeStats, RawInFlight, RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats,
    };

    // SAFETY: all five are #[repr(C)], Copy, made only of integers and integer
    // arrays, with explicit padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for RawInFlight {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawWaitKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawWaitStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawWakeKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawWakeStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawEdgeKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawEdgeStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RawUserStack {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hist_bucket_is_floor_log2_clamped() {
        assert_eq!(hist_bucket(0), 0);
        assert_eq!(hist_bucket(1), 0);
        assert_eq!(hist_bucket(2), 1);
        assert_eq!(hist_bucket(3), 1);
        assert_eq!(hist_bucket(1024), 10);
        assert_eq!(hist_bucket(1_000_000), 19);
        assert_eq!(hist_bucket((1 << 39) - 1), 38);
        assert_eq!(hist_bucket(1 << 39), 39);
        assert_eq!(hist_bucket(u64::MAX), HIST_BUCKETS - 1);
    }

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

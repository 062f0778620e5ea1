//! The maps' and programs' names, their sizes, and the constants stored in map
//! values: what both sides must agree on by name or number.

/// Hash map `RawWaitKey → RawWaitStats` (shared by all CPUs, updated with atomic
/// adds): the in-kernel wait aggregation. Userspace drains it when it fills up.
pub const MAP_WAITS: &str = "WAITS";
/// Hash map `RawWakeKey → RawWakeStats` (shared, atomic adds): the wake aggregation.
pub const MAP_WAKES: &str = "WAKES";
/// Array map of one `u32`: the drain generation. The probes read it once per
/// program run and put it in every row key they count into the drained maps
/// ([`MAP_WAITS`], [`MAP_WAKES`], [`MAP_EDGES`], `BLAME`); userspace advances it,
/// waits until every program run that may have read the old value has ended (an RCU
/// grace period), and only then reads and deletes the old generation's rows, which
/// nothing adds to any more (see `profiler::collect::generation`).
pub const MAP_DRAIN_GEN: &str = "DRAIN_GEN";
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
/// Array of `u64` words, one bit per tgid (`word = tgid / 64`, `bit = tgid % 64`), set
/// for every tgid in [`MAP_TARGETS`]: the target filter every context switch and
/// untraced futex call pays. An array lookup is inlined by the verifier (no helper
/// call, no hashing), so an untraced thread pays a few instructions. Memory-mapped
/// (`BPF_F_MMAPABLE`) so userspace sets and clears bits with atomic operations that
/// cannot race the kernel's own (a followed child's bit). After the bits, one more
/// word ([`TARGET_BITS_FOLLOWED`]) counts the processes the kernel started tracing.
pub const MAP_TARGET_BITS: &str = "TARGET_BITS";
/// Words of bits in [`MAP_TARGET_BITS`]: enough for every pid up to Linux's
/// `PID_MAX_LIMIT` (4 Mi on 64-bit), i.e. 512 KiB.
pub const TARGET_BITS_WORDS: u32 = (1 << 22) / 64;
/// Index of the word after the bits in [`MAP_TARGET_BITS`]: how many children the
/// kernel has followed (added to [`MAP_TARGETS`]) so far, bumped after each insert.
/// Userspace reads it through the mapping at every tick and reads `TARGETS` (a
/// syscall that walks the whole hash) only when it moved.
pub const TARGET_BITS_FOLLOWED: u32 = TARGET_BITS_WORDS;
/// Entries of [`MAP_TARGET_BITS`]: the bits and the followed-children count.
pub const TARGET_BITS_ENTRIES: u32 = TARGET_BITS_WORDS + 1;
/// Array of `RawTask`, one slot per thread id modulo
/// [`MAX_TASKS`] ([`task_slot`]): per traced thread, the futex call in progress and
/// what the holder tracking knows. A slot is found without hashing (the verifier
/// inlines an array lookup: the thread's row is read at every futex entry and exit
/// and every switch-out of a traced thread) and claimed by its thread at its first
/// futex call or switch-out (`RawTask::owner`, compare-and-swap); a thread whose slot
/// another live thread holds (only where `pid_max` exceeds [`MAX_TASKS`]) gets a row
/// in [`MAP_TASK_SPILL`] instead. A thread's row is marked at its exit, not freed: a
/// waiter it woke may still read it; the next thread to need the slot takes it over.
pub const MAP_TASKS: &str = "TASKS";
/// Hash map `tid → RawTask`: the rows of threads whose [`MAP_TASKS`] slot another live
/// thread holds; deleted by userspace after the thread exited.
pub const MAP_TASK_SPILL: &str = "TASK_SPILL";
/// Array of `u64` (`BPF_F_MMAPABLE`): one bit per [`MAP_TASKS`] slot ever claimed,
/// set by the probe when it claims one, so userspace reads only those rows.
pub const MAP_TASK_CLAIMS: &str = "TASK_CLAIMS";
/// Per-CPU array of `u64`, indexed by [`Loss`](crate::loss::Loss): everything the probe could not record.
pub const MAP_LOSSES: &str = "LOSSES";
/// Hash map `RawEdgeKey → RawEdgeStats` (shared, atomic adds): which wake stack woke
/// which wait stack, and the wait time it ended.
pub const MAP_EDGES: &str = "EDGES";

/// Hash map `stack id → RawUserStack`: registers and a copy of the user stack, taken
/// once per new call position, for DWARF (`.eh_frame`) unwinding in userspace. Its
/// ids start at [`DWARF_STACK_ID_BASE`] and are used in place of the frame-pointer
/// stack id in the wait/wake/edge keys, so call paths a frame-pointer walk cannot tell
/// apart (everything blocked inside glibc looks alike) stay apart.
pub const MAP_USER_STACKS: &str = "USER_STACKS";
/// First id of a [`MAP_USER_STACKS`] entry; ids are `BASE + n` for the n-th copy of
/// the session (a shared counter), so an id is never reused: once `n` would reach
/// [`DWARF_STACK_IDS`], copies stop (counted as [`Loss::UserStackCopy`](crate::loss::Loss::UserStackCopy)).
pub const DWARF_STACK_ID_BASE: i32 = 1 << 30;
/// [`RawUserStack::flags`](crate::rows::RawUserStack::flags) bit: the copy is in the
/// per-process copy cache, so every thread of its process may name its id (not only
/// the thread that took it) for as long as the process lives.
pub const COPY_SHARED: u32 = 1;
/// How many user-stack copy ids a session can hand out (`i32::MAX - BASE`).
pub const DWARF_STACK_IDS: u64 = (1 << 30) - 1;
/// Array map of one `u64`: the number of user-stack copy ids handed out so far.
pub const MAP_USER_STACK_SEQ: &str = "USER_STACK_SEQ";
/// Pages of user stack copied per capture, starting at the page holding the stack
/// pointer: at least `(USER_STACK_PAGES - 1) * 4 KiB` above the stack pointer.
pub const USER_STACK_PAGES: usize = 4;
/// Bytes of [`RawUserStack::data`](crate::rows::RawUserStack::data).
pub const USER_STACK_BYTES: usize = USER_STACK_PAGES * 4096;
/// Global `u32` in the probes: 1 (default) copies user stacks for DWARF unwinding, 0
/// keeps frame-pointer stacks only.
pub const GLOBAL_COPY_USER_STACKS: &str = "COPY_USER_STACKS";
/// Capacity of [`MAP_USER_STACKS`] (allocated on demand, not preallocated). Userspace
/// reads each copy once and deletes it, so this bounds the copies taken between two
/// reads, not over the session.
pub const MAX_USER_STACKS: u32 = 2_048;

/// Program attached to every `syscalls:sys_enter_<futex call>` tracepoint.
pub const PROG_FUTEX_ENTER: &str = "futex_enter";
/// Program attached to every `syscalls:sys_exit_<futex call>` tracepoint.
pub const PROG_FUTEX_EXIT: &str = "futex_exit";
/// The futex system calls, as named by their `syscalls:sys_{enter,exit}_*`
/// tracepoints. Only these run the futex programs: other syscalls cost nothing.
pub const FUTEX_SYSCALLS: [&str; 5] = [
    "futex",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futex_requeue",
];
/// The futex system calls' kernel functions (x86-64) and the fentry and fexit
/// programs hooked on each, in [`FUTEX_SYSCALLS`]' order: where the kernel lets BPF
/// trampolines attach, the futex calls are hooked there instead of on the
/// tracepoints (no syscall-tracing slow path for anyone).
pub const FUTEX_FENTRY: [FentryHook; 5] = [
    FentryHook::new("__x64_sys_futex", "fentry_futex", "fexit_futex"),
    FentryHook::new(
        "__x64_sys_futex_wait",
        "fentry_futex_wait",
        "fexit_futex_wait",
    ),
    FentryHook::new(
        "__x64_sys_futex_waitv",
        "fentry_futex_waitv",
        "fexit_futex_waitv",
    ),
    FentryHook::new(
        "__x64_sys_futex_wake",
        "fentry_futex_wake",
        "fexit_futex_wake",
    ),
    FentryHook::new(
        "__x64_sys_futex_requeue",
        "fentry_futex_requeue",
        "fexit_futex_requeue",
    ),
];

/// One futex syscall's fentry/fexit programs (see [`FUTEX_FENTRY`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FentryHook {
    /// The kernel function hooked, e.g. `__x64_sys_futex`.
    pub function: &'static str,
    /// The program run when it is entered.
    pub enter: &'static str,
    /// The program run when it returns.
    pub exit: &'static str,
}

impl FentryHook {
    const fn new(function: &'static str, enter: &'static str, exit: &'static str) -> Self {
        Self {
            function,
            enter,
            exit,
        }
    }
}
/// Program attached to the `task:task_newtask` tracepoint: follows forked children.
pub const PROG_TASK_NEWTASK: &str = "task_newtask";
/// Program attached to the `sched_process_exit` raw tracepoint: drops an exiting
/// thread's state.
pub const PROG_TASK_EXIT: &str = "sched_process_exit";
/// Program attached to the `sys_enter` raw tracepoint (every syscall of every
/// process): the fallback when tracefs cannot be mounted.
pub const PROG_SYS_ENTER: &str = "sys_enter";
/// Program attached to the `sys_exit` raw tracepoint: the fallback's futex exits and
/// child following, and the failed-syscall counting of `--syscall-errors`.
pub const PROG_SYS_EXIT: &str = "sys_exit";
/// Global `u32` of [`raw_syscalls`] bits: what the raw syscall programs do.
pub const GLOBAL_RAW_SYSCALLS: &str = "RAW_SYSCALLS";

/// Global `u32` in the probes: the byte offset of `tgid` in the kernel's `struct
/// task_struct` (from its BTF), for `sched_switch` to read the process of the tasks
/// leaving and taking the CPU.
pub const GLOBAL_TASK_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
/// Global `u32` in the probes: the byte offset of `pid` (the thread id) in the
/// kernel's `struct task_struct`, for `sched_switch` to read the leaving thread's id
/// without a helper call.
pub const GLOBAL_TASK_PID_OFFSET: &str = "TASK_PID_OFFSET";
/// Global `u32` in the probes: the slots of [`MAP_TASKS`] as loaded — [`MAX_TASKS`],
/// or fewer (a power of two) when a root test shrinks the map to make threads share
/// slots.
pub const GLOBAL_TASK_SLOTS: &str = "TASK_SLOTS";
/// Global `u32` in the probes: 1 when holder tracking is on, so that a blocked wait is
/// timed from the context switch that took its thread off the CPU (stamped by
/// `sched_switch`, which reads the clock anyway) rather than from its entry, which
/// then reads no clock; 0 (default): timed from its entry.
pub const GLOBAL_WAIT_START_AT_SWITCH: &str = "WAIT_START_AT_SWITCH";
/// Bits of [`GLOBAL_RAW_SYSCALLS`].
pub mod raw_syscalls {
    /// The raw programs decode futex calls and follow clones (no tracefs).
    pub const FUTEX: u32 = 1;
    /// `sys_exit` counts traced threads' failed non-futex syscalls.
    pub const FAILURES: u32 = 2;
}
/// Program attached to the `sched_switch` BTF tracepoint (`tp_btf`): when traced
/// threads go off and come back on a CPU, so a waker's "held across blocking" can be
/// measured.
pub const PROG_SCHED_SWITCH: &str = "sched_switch";

/// Capacity of [`MAP_WAITS`]. One entry per (tgid, tid, futex address, stack, op).
pub const MAX_WAIT_KEYS: u32 = 32_768;
/// Capacity of [`MAP_WAKES`].
pub const MAX_WAKE_KEYS: u32 = 16_384;
/// Capacity of [`MAP_STACKS`]; the kernel rounds the bucket count to a power of two,
/// and a larger table makes hash collisions between distinct stacks rarer. Each
/// bucket holds 127 frames (≈ 1 KiB), so this is the largest map.
pub const MAX_STACKS: u32 = 16_384;
/// Capacity of [`MAP_STACKS2`] (a different power of two than [`MAX_STACKS`]).
pub const MAX_STACKS2: u32 = 8_192;
/// Capacity of the per-thread stack cache (kernel-internal LRU).
pub const MAX_STACK_CACHE: u32 = 65_536;
/// Capacity of the per-process stack-copy cache (kernel-internal LRU, see
/// `RawSharedSiteKey`).
pub const MAX_SHARED_SITES: u32 = 16_384;
/// Capacity of [`MAP_TARGETS`].
pub const MAX_TARGETS: u32 = 4_096;
/// Slots of [`MAP_TASKS`] (a power of two): every thread id below it has its own slot,
/// so where `pid_max` is at most this (the kernel's default, 32,768) no two threads
/// ever share one.
pub const MAX_TASKS: u32 = 32_768;
/// Capacity of [`MAP_TASK_SPILL`].
pub const MAX_TASK_SPILL: u32 = 2_048;
/// Words of [`MAP_TASK_CLAIMS`].
pub const TASK_CLAIM_WORDS: u32 = MAX_TASKS / 64;

/// The [`MAP_TASKS`] slot of thread `tid` when the map has `slots` (a power of two).
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
#[must_use]
pub const fn task_slot(tid: u32, slots: u32) -> u32 {
    tid & (slots - 1)
}
/// Capacity of [`MAP_EDGES`].
pub const MAX_EDGES: u32 = 16_384;
/// Slots of the wake-ring array (kernel-internal, see
/// [`RawFutexRing`](crate::blame::RawFutexRing)): the futexes whose last wakes are
/// kept.
pub const MAX_LAST_WAKES: u32 = 16_384;
/// Off-CPU periods remembered per thread ([`RawThreadState::spans`](crate::rows::RawThreadState::spans)); a power of two.
pub const OFF_SPANS: usize = 16;
/// Syscalls kept per edge for "where the waker was off CPU" ([`RawEdgeStats::off`](crate::rows::RawEdgeStats::off)).
pub const OFF_SLOTS: usize = 3;
/// [`RawOffSpan::nr`](crate::rows::RawOffSpan::nr) of a thread switched out while runnable (preempted or
/// yielding): it was waiting for a CPU, not blocked.
pub const OFF_RUNNABLE: u32 = u32::MAX;
/// [`RawOffSpan::nr`](crate::rows::RawOffSpan::nr) of a thread that blocked outside a syscall (e.g. a page fault).
pub const OFF_NO_SYSCALL: u32 = u32::MAX - 1;

/// [`RawTask::call`](crate::rows::RawTask::call): no futex call in progress.
pub const CALL_NONE: u32 = 0;
/// [`RawTask::call`](crate::rows::RawTask::call): a wait is in progress.
pub const CALL_WAIT: u32 = 1;
/// [`RawTask::call`](crate::rows::RawTask::call): a wake is in progress.
pub const CALL_WAKE: u32 = 2;
/// [`RawTask::call`](crate::rows::RawTask::call) bit: the thread was woken from this same futex by its previous
/// wait and has not released it since — if this wait blocks, that wakeup was wasted.
pub const CALL_REWAIT: u32 = 4;
/// [`RawTask::call`](crate::rows::RawTask::call): the thread exited. Its row is kept
/// (not deleted at exit) until userspace has drained the maps twice since, so a
/// waiter it woke just before exiting still finds what it did in the window (its
/// off-CPU time, its syscalls); userspace deletes it then.
pub const CALL_EXITED: u32 = 8;
/// Stack id of rows counted on a fast path without a stack walk (a wait that
/// returned `EAGAIN` at a call position the per-thread stack cache did not know).
pub const STACK_NOT_WALKED: i32 = -2;

/// Bit flags stored as the value of [`MAP_TARGETS`].
pub mod target_flags {
    /// The tgid is traced.
    pub const TRACED: u32 = 1;
    /// Processes this tgid forks are traced too (launch mode follows descendants).
    pub const FOLLOW_CHILDREN: u32 = 2;
}

const _: () = assert!(MAX_TASKS.is_power_of_two());

//! The `#[repr(C)]` keys and values of the maps, each pinned in size.

use crate::hist::HIST_BUCKETS;
use crate::maps::{OFF_SLOTS, OFF_SPANS, USER_STACK_BYTES};

/// One traced thread (kernel-internal, [`MAP_TASKS`](crate::maps::MAP_TASKS)): the futex call it is in,
/// written at syscall entry and consumed at exit, and its holder state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawTask {
    /// The thread whose row this is (0: a slot never claimed). 64 bits so the probe
    /// can compare-and-swap it: the BPF CPU version it builds for has no 32-bit
    /// atomics.
    pub owner: u64,
    /// When the call in progress entered the kernel — for a wait with
    /// [`GLOBAL_WAIT_START_AT_SWITCH`](crate::maps::GLOBAL_WAIT_START_AT_SWITCH), a
    /// bound below that read without the clock: its thread's last switch-in or its
    /// previous call's start, the later (0 if unknown). A waker entered after it.
    pub start_ns: u64,
    pub uaddr: u64,
    pub op: u32,
    /// `CALL_*`: what is in progress, plus [`CALL_REWAIT`](crate::maps::CALL_REWAIT).
    pub call: u32,
    /// For a wake in progress: its stack, found at entry.
    pub wake_stack_id: i32,
    /// For a wake in progress: the wakes-in-flight slot its entry was announced in
    /// (see [`RawWakeInFlight`](crate::blame::RawWakeInFlight)), so its exit finds it
    /// without computing the futex's key again.
    pub wake_slot: u32,
    pub wake_leaf_ret: u64,
    /// The futex address the thread was last woken from, until it releases it.
    pub woken_uaddr: u64,
    /// For a wait in progress: what its time is counted from — its entry, or with
    /// [`GLOBAL_WAIT_START_AT_SWITCH`](crate::maps::GLOBAL_WAIT_START_AT_SWITCH) its
    /// first switch-out (0 until then: a wait that never left the CPU waited no time).
    pub wait_from_ns: u64,
    /// The call positions of the thread's last waits and last wakes: a thread that
    /// calls again from where it called lately (a lock loop, a ping-pong, a worker
    /// alternating between two locks) finds its stack here, without the stack cache's
    /// hash lookup.
    pub wait_site: RawSiteMemo,
    pub wake_site: RawSiteMemo,
    pub holder: RawThreadState,
}

/// How many call positions of each kind (waits, wakes) a thread remembers. A daemon's
/// worker often alternates between two locks (memcached's item lock and a stats or
/// LRU lock): with one position remembered, every call missed and paid the stack
/// cache's hash lookup. A power of two.
pub const SITE_MEMO_WAYS: usize = 2;

/// The thread's last [`SITE_MEMO_WAYS`] call positions of one kind and their stacks,
/// kept in its own row (kernel-internal); a new position replaces the oldest.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawSiteMemo {
    pub ways: [RawSiteMemoWay; SITE_MEMO_WAYS],
    /// Positions remembered so far: the next one goes to `ways[next % SITE_MEMO_WAYS]`.
    pub next: u32,
    pub pad: u32,
}

/// One remembered call position: its [`RawStackCacheKey::digest`] (0: empty) and
/// stack ([`RawStackCacheValue`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawSiteMemoWay {
    pub digest: u64,
    pub leaf_ret: u64,
    pub stack_id: i32,
    pub pad: u32,
}

/// Aggregation key of a wait: one row per thread, futex address, user stack and op.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawWaitKey {
    pub tgid: u32,
    pub tid: u32,
    pub uaddr: u64,
    /// Id in [`MAP_STACKS`](crate::maps::MAP_STACKS), or negative when the stack was lost (see [`Loss`](crate::loss::Loss)).
    pub stack_id: i32,
    pub op: u32,
    /// The word at the user stack pointer when the syscall was made. When the
    /// syscall came from a frameless leaf such as glibc's `syscall()`, it is the
    /// return address into the function that called the leaf — the frame a
    /// frame-pointer walk skips. Userspace keeps it only if it follows a call
    /// instruction. 0 when unreadable.
    pub leaf_ret: u64,
    /// The drain generation ([`MAP_DRAIN_GEN`](crate::maps::MAP_DRAIN_GEN)) the
    /// probe read when it counted this row: userspace drains only the generations no
    /// program writes any more.
    pub generation: u32,
    pub pad: u32,
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
    /// Log2 histogram of blocked wait durations (see [`hist_bucket`](crate::hist::hist_bucket)).
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
    /// As [`RawWaitKey::generation`].
    pub generation: u32,
    pub pad: u32,
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
    /// The waker's process: another one than `tgid` when they share the futex
    /// (see [`crate::shared`]).
    pub waker_tgid: u32,
    /// As [`RawWaitKey::generation`] (the waiter's row's generation).
    pub generation: u32,
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
    /// over the waits it was measured for ([`RawEdgeStats::wake_to_run_n`]). The
    /// probe counts the waits it could not measure (no switch-in of the waiter after
    /// the wake stamped on its CPU: holder tracking off, or a waiter that never
    /// left it), the rare case, so that every other wait saves a bus-locked add.
    pub wake_to_run_missed: u64,
    pub wake_to_run_ns: u64,
    pub wake_to_run_max_ns: u64,
    /// The waits' holder blame charged to this waker itself: the last interval of
    /// each window (ended by this wake, and the intervals just before it ended by the
    /// same holder stack) — counted here rather than in `BLAME`, whose row it would
    /// be (the edge's key names the same waiter and holder stacks), to save the
    /// blocked wait a hash lookup. Userspace adds it to the blame rows. One interval
    /// per wait but the `unblamed` ones (see [`RawEdgeStats::blame_intervals`]),
    /// counted instead for the same reason as `wake_to_run_missed`.
    pub unblamed: u64,
    pub blame_ns: u64,
}

impl RawEdgeStats {
    /// The waits whose wake-to-run latency was measured.
    pub fn wake_to_run_n(&self) -> u64 {
        self.waits.saturating_sub(self.wake_to_run_missed)
    }

    /// The blame intervals charged to this waker: one per wait but the unblamed.
    pub fn blame_intervals(&self) -> u64 {
        self.waits.saturating_sub(self.unblamed)
    }
}

/// A wake call on a futex, as its waiters find it (kernel-internal: in its futex's
/// ring, or its wake-in-flight slot).
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
    /// The waker's process.
    pub tgid: u32,
    /// [`wake_tag`](crate::blame::wake_tag) of the record and its futex, written with
    /// it: a record two CPUs wrote at once (torn), or written for another futex
    /// sharing its in-flight slot, fails the reader's check.
    pub tag: u64,
}

/// One period a traced thread spent off CPU: `[start_ns, end_ns)`, what it was in
/// (a syscall number, [`OFF_RUNNABLE`](crate::maps::OFF_RUNNABLE) or [`OFF_NO_SYSCALL`](crate::maps::OFF_NO_SYSCALL)) and its failed-syscall
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
/// wakes a waiter, the waiter's window can be matched against it (part of [`RawTask`]).
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
    /// Syscall number, [`OFF_RUNNABLE`](crate::maps::OFF_RUNNABLE) or [`OFF_NO_SYSCALL`](crate::maps::OFF_NO_SYSCALL); meaningless while
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

impl RawStackCacheKey {
    /// A 64-bit digest of the call position (every field but the thread), never 0:
    /// what a thread's [`RawSiteMemo`] remembers instead of the 40 bytes of the
    /// position, so two positions fit where one did. Each word is folded in by a
    /// bijection of the running value, so positions that differ in one word never
    /// share a digest; others do with a chance of about 2^-64.
    #[allow(
        clippy::inline_always,
        reason = "runs in the eBPF hot path, where a call costs more than the body"
    )]
    #[inline(always)]
    #[must_use]
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0x243f_6a88_85a3_08d3;
        for w in [self.ip, self.sp, self.bp, self.ret1, self.ret2] {
            h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 29;
        }
        if h == 0 { 1 } else { h }
    }
}

/// Key of the per-process copy cache: a call position that any thread of `tgid` can
/// take, so a thread new at it reuses the stack copy another thread took there
/// (kernel-internal). The frame-pointer walk (`fp_stack_id`, the id of its whole
/// chain of return addresses), the instruction pointer, how far the first frame
/// record lies above the stack pointer and the word at the stack pointer together
/// name the call path; only positions with a frame chain use it (without one,
/// nothing but the thread's own stack pointer tells call paths apart).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawSharedSiteKey {
    pub tgid: u32,
    pub fp_stack_id: i32,
    pub ip: u64,
    /// `bp - sp`: the frames below the first frame record (code without frame
    /// pointers, e.g. glibc's lock functions) take this much stack.
    pub frame_offset: u64,
    pub leaf_ret: u64,
}

/// Value of the stack cache: the call position's stack id and the word at its stack
/// pointer (see [`RawWaitKey::leaf_ret`]), so a cache hit reads no user memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawStackCacheValue {
    pub stack_id: i32,
    pub pad: u32,
    pub leaf_ret: u64,
}

/// A slot of the call-position array (kernel-internal, see [`position_slot`]): a
/// thread's call position (its [`RawStackCacheKey::digest`]) and stack, found without
/// hashing. Between a thread's memo of its last positions and the stack cache (an LRU
/// hash): a daemon's worker locks and unlocks from many stack depths — memcached's
/// from about ten per kind — which the memo cannot hold and whose hash lookup cost
/// more than the rest of the wake.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawPositionSlot {
    /// 0: empty.
    pub digest: u64,
    pub leaf_ret: u64,
    pub stack_id: i32,
    pub tid: u32,
}

/// Slots of the call-position array ([`RawPositionSlot`]); a power of two.
pub const POSITION_SLOTS: u32 = 16_384;

/// The slot of thread `tid`'s call position `digest` in the call-position array: the
/// digest (already mixed) with the thread's id folded in by a multiplicative hash,
/// so the threads of a pool at the same position take different slots.
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
#[must_use]
pub fn position_slot(tid: u32, digest: u64) -> u32 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let h = (digest ^ u64::from(tid)).wrapping_mul(GOLDEN);
    (h >> (64 - POSITION_SLOTS.trailing_zeros())) as u32
}

/// Key of a futex's wakes (its ring and its in-flight slot): a futex address within a
/// process, or for a shared futex in a registered shared mapping, an offset in a
/// mapped object (see [`SHARED_KEY_TGID`](crate::shared::SHARED_KEY_TGID)).
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
    /// [`COPY_SHARED`](crate::maps::COPY_SHARED) or 0.
    pub flags: u32,
    pub data: [u8; USER_STACK_BYTES],
}

const _: () = assert!(core::mem::size_of::<RawUserStack>() == 40 + USER_STACK_BYTES);
const _: () = assert!(core::mem::size_of::<RawSiteMemo>() == 56);
const _: () = assert!(SITE_MEMO_WAYS.is_power_of_two());
const _: () = assert!(core::mem::size_of::<RawSharedSiteKey>() == 32);
const _: () = assert!(core::mem::size_of::<RawTask>() == 64 + 2 * 56 + 48 + OFF_SPANS * 24);
const _: () = assert!(core::mem::size_of::<RawEdgeKey>() == 40);
const _: () = assert!(core::mem::size_of::<RawEdgeStats>() == 12 * 8 + OFF_SLOTS * 16);
const _: () = assert!(core::mem::size_of::<RawLastWake>() == 48);
const _: () = assert!(core::mem::size_of::<RawOffSpan>() == 24);
const _: () = assert!(core::mem::size_of::<RawThreadState>() == 48 + OFF_SPANS * 24);
const _: () = assert!(core::mem::size_of::<RawAddrKey>() == 16);
const _: () = assert!(core::mem::size_of::<RawStackCacheKey>() == 48);
const _: () = assert!(core::mem::size_of::<RawStackCacheValue>() == 16);
const _: () = assert!(core::mem::size_of::<RawPositionSlot>() == 24);
const _: () = assert!(POSITION_SLOTS.is_power_of_two());
const _: () = assert!(core::mem::size_of::<RawWaitKey>() == 40);
const _: () = assert!(core::mem::size_of::<RawWaitStats>() == 11 * 8 + HIST_BUCKETS * 8 + 16);
const _: () = assert!(core::mem::size_of::<RawWakeKey>() == 40);
const _: () = assert!(core::mem::size_of::<RawWakeStats>() == 5 * 8 + 16);

#[cfg(feature = "user")]
mod pod {
    use super::{
        RawEdgeKey, RawEdgeStats, RawTask, RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats,
    };

    // SAFETY: all of these are #[repr(C)], Copy, made only of integers and integer
    // arrays, with explicit padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for RawTask {}
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
    extern crate std;

    use super::{POSITION_SLOTS, RawStackCacheKey, position_slot};

    fn key(ip: u64, sp: u64, bp: u64, ret1: u64, ret2: u64) -> RawStackCacheKey {
        RawStackCacheKey {
            tid: 7,
            pad: 0,
            ip,
            sp,
            bp,
            ret1,
            ret2,
        }
    }

    #[test]
    fn digest_ignores_the_thread_and_is_never_zero() {
        let a = key(0x7f00_0000_1234, 0x7ffd_0000_1000, 0, 0, 0);
        let b = RawStackCacheKey { tid: 8, ..a };
        assert_eq!(a.digest(), b.digest());
        assert_ne!(key(0, 0, 0, 0, 0).digest(), 0);
    }

    #[test]
    fn positions_one_word_apart_never_share_a_digest() {
        // Neighbouring positions of real call paths: the same code deeper in the
        // stack, another caller, another frame record.
        let base: [u64; 5] = [
            0x5555_5555_9eb0,
            0x7f28_9f7f_e9c0,
            0x7f28_9f7f_ea10,
            0x5555_5555_3061,
            0,
        ];
        let mut seen = std::collections::HashSet::new();
        for word in 0..5 {
            for delta in 1..2000u64 {
                let mut w = base;
                w[word] = w[word].wrapping_add(delta * 8);
                assert!(seen.insert(key(w[0], w[1], w[2], w[3], w[4]).digest()));
            }
        }
        assert!(seen.insert(key(base[0], base[1], base[2], base[3], base[4]).digest()));
    }

    #[test]
    fn a_pool_at_one_position_takes_different_slots() {
        let digest = key(0x7f1d_3aaa_4193, 0x7f1d_38a1_8c28, 0, 0, 0).digest();
        let slots: std::collections::BTreeSet<u32> = (29_082..29_082 + 64)
            .map(|tid| position_slot(tid, digest))
            .collect();
        assert_eq!(slots.len(), 64);
    }

    #[test]
    fn one_threads_positions_take_different_slots_inside_the_array() {
        // memcached's worker: two instruction pointers, stack depths 16 bytes apart.
        let slots: std::collections::BTreeSet<u32> = (0..2u64)
            .flat_map(|i| {
                (0..64u64).map(move |d| {
                    key(
                        0x7f1d_3aaa_412b + i * 0x68,
                        0x7f1d_38a1_8000 + d * 16,
                        0,
                        0,
                        0,
                    )
                    .digest()
                })
            })
            .map(|digest| position_slot(29_085, digest))
            .collect();
        assert_eq!(slots.len(), 128);
        assert!(slots.iter().all(|&s| s < POSITION_SLOTS));
    }
}

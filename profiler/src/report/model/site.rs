//! A lock site and what the report says about it: frames, stacks, wakers, holders.

use serde::{Deserialize, Serialize};

use crate::analyze::histogram::Log2Histogram;

use super::{Behavior, IntervalCount, WaitKind};

/// One symbolized stack frame. Inlined frames are separate entries (`inlined: true`)
/// placed before the frame they were inlined into, innermost first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Absolute address in the process (`0x…`).
    pub address: String,
    /// Demangled function name; `None` when it could not be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Path of the binary or library the address falls in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// File offset of the address within `module` (`0x…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_offset: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
    /// The frame belongs to the lock implementation (glibc pthread, Rust std's
    /// sync, `parking_lot`, libstdc++): the text view folds these into one line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lock_impl: bool,
}

/// Wait statistics shared by sites, threads, addresses and stacks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitSummary {
    pub waits: u64,
    pub total_wait_ns: u64,
    pub max_wait_ns: u64,
}

/// A place in the target's own code where threads blocked on a futex.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// Stable identity: `kind|module|function|file:line` (no addresses), used to match
    /// the site across runs.
    pub id: String,
    pub kind: WaitKind,
    /// `true` for lock contention (mutex/rwlock/semaphore, or an `other` site whose
    /// addresses behave as locks), `false` for event waits.
    pub contention: bool,
    /// What the site's futex addresses are by behaviour, weighted by wait time (see
    /// [`Behavior`]). Absent when unknown.
    #[serde(default, skip_serializing_if = "Behavior::is_unknown")]
    pub behavior: Behavior,
    /// The lock implementation recognized in the stack (`rust-std`, `glibc`,
    /// `parking_lot`, …), or `unknown` when none was.
    pub lock_impl: String,
    /// The site frame: innermost frame in the target's own code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Blocked waits (returned after being woken).
    pub waits: u64,
    pub total_wait_ns: u64,
    pub avg_wait_ns: u64,
    pub min_wait_ns: u64,
    pub max_wait_ns: u64,
    /// Percentiles estimated from the log2 histogram (linear within a bucket).
    pub p50_wait_ns: u64,
    pub p99_wait_ns: u64,
    pub eagain: u64,
    pub timeouts: u64,
    pub timeout_wait_ns: u64,
    pub interrupted: u64,
    /// Waits that failed with any other error.
    #[serde(default)]
    pub other_errors: u64,
    /// Blocked waits that a thread began right after being woken from the same futex
    /// without having released it in between, counted only where that wakeup promised
    /// something: on an address that behaves as a lock (mutex, rwlock writer, lock by
    /// behaviour), or one woken by broadcasts (a thundering herd). Semaphores,
    /// condvar worker loops, `RwLock` readers and park words woken one at a time re-wait
    /// as their normal course and are not counted.
    #[serde(default)]
    pub wasted_wakeups: u64,
    /// Blocked waits for which no wake call on the same address was seen: woken by
    /// the kernel (a thread's exit ends a join) or by an untraced process.
    #[serde(default)]
    pub unpaired_waits: u64,
    /// The wake sites that ended this site's waits ("blocked by"), by wait ended,
    /// descending. A wait is paired with the last wake on its futex address.
    #[serde(default)]
    pub woken_by: Vec<WokenBy>,
    /// "Blocked by": the holders whose releases ended the parts of this site's waits
    /// (each interval between consecutive releases on the futex during a wait goes to
    /// the release that ended it), by wait time charged, descending (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<BlockedBy>,
    /// Wait time whose holders are unknown: more releases came during those waits
    /// than the kernel remembers per futex (8).
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub blocked_by_unknown_ns: u64,
    /// Wake-to-run latency of this site's woken waits (all wakers).
    #[serde(default, skip_serializing_if = "WakeLatency::is_empty")]
    pub wake_to_run: WakeLatency,
    /// How evenly the wait was spread over the threads that waited here.
    #[serde(default)]
    pub fairness: Fairness,
    /// Blocked-wait durations, log2 buckets: `histogram[b]` counts waits in
    /// `[2^b, 2^(b+1))` ns.
    pub histogram: Log2Histogram,
    /// Per-thread breakdown, by total wait descending.
    pub threads: Vec<ThreadShare>,
    /// Futex addresses waited on here, by total wait descending.
    pub addresses: Vec<AddressShare>,
    /// Distinct call paths that reached this site — stacks merged by their
    /// symbolized frames across threads, processes and kernel stack ids — by total
    /// wait descending (the first is the hottest). As many as cover 99 % of the
    /// site's wait (at least 5, at most `MAX_STACKS_PER_SITE`).
    pub stacks: Vec<StackShare>,
    /// Stacks beyond those listed.
    #[serde(default)]
    pub more_stacks: u64,
    /// Blocked waits and wait time of this site in each interval of
    /// [`Report::timeline`] (same length and order); empty without a timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<IntervalCount>,
    /// Re-attributed by `--lock-fn` from a saved report's stacks (`lockprof report
    /// --lock-fn`, `diff`, `check`, `flamegraph`, `top --replay`): only the waits,
    /// total, average and longest wait are known; the histogram, percentiles, threads,
    /// addresses, wakers and holders ("blocked by") were recorded for the wrapper's site as a whole and are
    /// left empty. Never set in a recorded report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_saved_stacks: bool,
}

/// A holder blamed for part of a site's wait: the release (wake) site that ended
/// those intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedBy {
    /// `WakerSite::id` of the release.
    pub holder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Intervals charged (consecutive ones of the same holder in one wait count once).
    pub intervals: u64,
    /// The wait time charged to this holder.
    pub wait_ns: u64,
}

/// One "woken by" edge: a wake site and the waits of this site it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WokenBy {
    /// `WakerSite::id` of the waker.
    pub waker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Waits of this site that this waker ended, and their total wait.
    pub waits: u64,
    pub wait_ns: u64,
    /// Of `waits`, those ended by a thread of another process than the waiter's
    /// (through a futex in shared memory, e.g. `PostgreSQL`'s semaphores).
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub from_other_processes: u64,
    /// What the waker thread did while these waits waited.
    #[serde(default, skip_serializing_if = "HeldAcross::is_empty")]
    pub held: HeldAcross,
    /// How long the woken threads took to get a CPU after the wake.
    #[serde(default, skip_serializing_if = "WakeLatency::is_empty")]
    pub wake_to_run: WakeLatency,
}

/// "Held across blocking": what the thread that ended some waits (their waker — for
/// a lock, the holder that released it) did during those waits' windows, each window
/// running from the start of a wait to the wake call that ended it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAcross {
    /// Sum of the windows.
    pub window_ns: u64,
    /// The part of `window_ns` the waker spent off CPU (blocked or waiting for a
    /// CPU). A holder off CPU for most of its waiters' windows holds the lock across
    /// blocking.
    pub off_cpu_ns: u64,
    /// Where it was while off CPU, by time descending: a syscall name,
    /// `runnable (waiting for a CPU)`, `no syscall (…)` or `other`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub off_cpu_in: Vec<OffCpuIn>,
    /// Windows longer than the off-CPU history the kernel keeps per thread (8
    /// periods): `off_cpu_ns` is then a lower bound.
    #[serde(default)]
    pub truncated_windows: u64,
    /// Syscalls of the waker that failed inside the windows (e.g. a write retried on
    /// ENOBUFS under the lock), and the last of them.
    #[serde(default)]
    pub failed_syscalls: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<SyscallFailure>,
}

impl HeldAcross {
    pub fn is_empty(&self) -> bool {
        self.window_ns == 0 && self.failed_syscalls == 0
    }
}

/// Off-CPU time of a waker in one syscall (or state).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffCpuIn {
    pub syscall: String,
    pub ns: u64,
}

/// A failed syscall: its name and the symbolic errno.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallFailure {
    pub syscall: String,
    pub errno: String,
}

/// Wake-to-run latency: from the wake call until the woken thread was on a CPU again,
/// over `count` waits where the switch-in was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeLatency {
    pub count: u64,
    pub avg_ns: u64,
    pub max_ns: u64,
}

impl WakeLatency {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Per-site fairness over the threads that waited there (by total wait per thread).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// Threads with at least one blocked wait here.
    pub threads: u64,
    /// Coefficient of variation (stddev / mean) of the per-thread total wait: 0 is
    /// perfectly even; above ~0.5 some threads wait much more than others.
    pub wait_cv: f64,
    /// Largest per-thread total wait divided by the smallest (1.0 = even).
    pub max_min_ratio: f64,
}

/// Per-thread share of a site's waits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadShare {
    pub pid: u32,
    pub tid: u32,
    /// Thread name (`comm`) when it first waited here.
    pub name: String,
    #[serde(flatten)]
    pub wait: WaitSummary,
}

/// A futex address a site waited on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressShare {
    pub pid: u32,
    pub address: String,
    #[serde(flatten)]
    pub wait: WaitSummary,
}

/// One distinct stack of a site.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackShare {
    #[serde(flatten)]
    pub wait: WaitSummary,
    /// Innermost first.
    pub frames: Vec<Frame>,
    /// How the stack was unwound: `fp` (the kernel's frame-pointer walk), `dwarf`
    /// (CFI unwinding of a copy of the user stack, complete) or `dwarf-truncated`
    /// (CFI unwinding that stopped before the thread's root). Absent in reports of
    /// older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwind: Option<String>,
}

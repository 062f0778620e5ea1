//! The report: what a recording found, in the versioned shape written to JSON.
//!
//! Owns: the serde types of the JSON report (documented field by field in
//! `docs/report-schema.md`) and the schema version. Must not: compute anything —
//! `aggregate` builds a `Report`, `render::text` and `report::json` render it.
//!
//! Times are integer nanoseconds (`*_ns`), addresses are `0x…` hex strings (JSON
//! numbers lose precision above 2^53), and every list is sorted deterministically so
//! that two runs over the same data produce byte-identical reports.

use serde::{Deserialize, Serialize};

use crate::analyze::histogram::Log2Histogram;

/// Version of the JSON layout; bumped on any incompatible change. Readers refuse
/// other versions with a clear error instead of guessing.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole recording, ready to render.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// Version of lockprof that recorded it.
    pub lockprof_version: String,
    /// The processes traced: the ones named with `-p`, the launched command and any
    /// descendants it started.
    pub targets: Vec<Target>,
    /// Wall-clock start of the recording, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// How long the probes were attached.
    pub duration_ns: u64,
    pub totals: Totals,
    /// Everything the probe or the symbolizer could not record. All zero = nothing lost.
    pub losses: Losses,
    /// Lock sites ranked by `total_wait_ns` descending (ties: by `id`).
    pub sites: Vec<Site>,
    /// Futex addresses ranked by total wait, each with the sites that waited on it.
    pub locks: Vec<LockAddress>,
    /// Wake sites (unlock / notify / post) ranked by threads woken.
    pub wakers: Vec<WakerSite>,
    /// What the probes cost the machine while recording.
    #[serde(default)]
    pub probe_cost: ProbeCost,
    /// Wait per interval of the recording (`record --interval`, `top`): the interval
    /// boundaries and the totals of each interval. Absent in reports recorded before
    /// it existed; each site's `series` follows these intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// Go targets only: futex waits of the Go runtime's idle threads, folded into one
    /// line instead of ranked as sites (they say nothing about locks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_scheduler_idle: Option<WaitSummary>,
}

impl Default for Report {
    fn default() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            lockprof_version: String::new(),
            targets: Vec::new(),
            started_unix_ms: 0,
            duration_ns: 0,
            totals: Totals::default(),
            losses: Losses::default(),
            sites: Vec::new(),
            locks: Vec::new(),
            wakers: Vec::new(),
            probe_cost: ProbeCost::default(),
            timeline: None,
            go_scheduler_idle: None,
        }
    }
}

/// The kernel's run-time accounting of lockprof's eBPF programs (`BPF_ENABLE_STATS`):
/// CPU time spent in the probes, summed over all CPUs, and the number of runs. Both
/// are zero when the kernel refused to enable the statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCost {
    pub bpf_run_ns: u64,
    pub bpf_runs: u64,
}

/// One traced process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    /// Command line as read from `/proc/PID/cmdline` (space-joined), when available.
    pub cmdline: String,
    /// `attach` (given with -p), `launch` (the command) or `child` (a descendant).
    pub origin: TargetOrigin,
    /// Had the process exited when the recording ended?
    pub exited: bool,
    /// Exit code of a launched command (128 + signal number if killed by a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The process's pid inside its own PID namespace (a container), when that is not
    /// lockprof's; `pid` is always the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
    /// Its cgroup v2 path (as in `/proc/PID/cgroup`), for a process in another PID
    /// namespace or one recorded through `--cgroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetOrigin {
    #[default]
    Attach,
    Launch,
    Child,
}

/// Sums over all waits and wakes of the recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Futex waits that blocked and were woken (all kinds).
    pub waits: u64,
    pub wait_ns: u64,
    /// The part of `waits`/`wait_ns` at lock sites (mutex, rwlock, semaphore): real
    /// contention. Condvar and other event waits are excluded.
    pub contention_waits: u64,
    pub contention_wait_ns: u64,
    /// Waits that returned EAGAIN at once (the futex word had changed): not blocks.
    pub eagain: u64,
    /// Waits that ended by timeout, and the time they spent.
    pub timeouts: u64,
    pub timeout_wait_ns: u64,
    /// Waits interrupted by a signal.
    pub interrupted: u64,
    /// Waits that failed with any other error (e.g. EFAULT, EINVAL).
    #[serde(default)]
    pub other_errors: u64,
    /// Wake calls, and the threads they woke.
    pub wake_calls: u64,
    pub threads_woken: u64,
    /// Threads still blocked in a futex wait when the recording stopped (not counted
    /// in `waits`, their wait had no end yet).
    pub unfinished_waits: u64,
    /// Blocked waits by kind (and, for `other`, by behaviour), by wait time
    /// descending: where the blocked time goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_kind: Vec<KindShare>,
}

/// Counts of everything that was not recorded, or recorded without detail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Losses {
    /// Waits/wakes whose stack collided with another in the kernel's stack map: the
    /// time is kept (under an "[unknown stack]" site), the stack is not.
    pub stack_collisions: u64,
    /// Other stack-capture failures.
    pub stack_errors: u64,
    /// Waits not aggregated because the kernel's wait map was full.
    pub wait_map_full: u64,
    /// Wakes not aggregated because the kernel's wake map was full.
    pub wake_map_full: u64,
    /// Waits whose start could not be recorded (in-flight map full).
    pub inflight_map_full: u64,
    /// Children of a launched command not followed (target map full).
    pub target_map_full: u64,
    /// Syscall arguments that could not be read from user memory.
    pub user_read_errors: u64,
    /// Stack frames that could not be symbolized (kept as module+offset or address).
    pub unsymbolized_frames: u64,
    /// Wake → wait pairings not recorded because the kernel's edge map was full (the
    /// waits themselves are kept; only "woken by" detail is missing).
    #[serde(default)]
    pub edge_map_full: u64,
    /// User-stack copies the probe could not take or store (map full, unreadable
    /// stack): those stacks fell back to the frame-pointer walk.
    #[serde(default)]
    pub user_stack_copy_errors: u64,
    /// Distinct stacks whose CFI unwinding stopped before the thread's root (stack
    /// deeper than the copy, or code without unwind information): their outermost
    /// frames are missing.
    #[serde(default)]
    pub truncated_stacks: u64,
}

impl Losses {
    /// Events lost outright or stripped of detail by the kernel side.
    pub fn kernel_total(&self) -> u64 {
        self.stack_collisions
            + self.stack_errors
            + self.wait_map_full
            + self.wake_map_full
            + self.inflight_map_full
            + self.target_map_full
            + self.user_read_errors
            + self.edge_map_full
            + self.user_stack_copy_errors
    }
}

/// What kind of wait a site is, told from the lock implementation's frames.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum WaitKind {
    Mutex,
    RwlockRead,
    RwlockWrite,
    /// Wake side of a reader-writer lock (unlock), where read/write cannot be told.
    Rwlock,
    Condvar,
    Semaphore,
    #[default]
    Other,
    // Goroutines parked by the Go scheduler (`analyze::go` tells them apart).
    GoMutex,
    GoRwmutexRead,
    GoRwmutexWrite,
    GoCond,
    GoChanRecv,
    GoChanSend,
    GoWaitgroup,
    GoSelect,
    GoSleep,
    /// Network or file poller wait.
    GoIo,
    /// The Go runtime's own background goroutines (GC workers, finalizers, timers).
    GoRuntime,
    /// A Go runtime thread with nothing to run (futex waits under `notesleep`).
    GoIdle,
}

impl WaitKind {
    /// Lock contention (a thread wanted a lock another held), as opposed to waiting
    /// for an event (condvar, join, channel, park), which is not contention.
    pub fn is_contention(self) -> bool {
        matches!(
            self,
            Self::Mutex
                | Self::RwlockRead
                | Self::RwlockWrite
                | Self::Rwlock
                | Self::Semaphore
                | Self::GoMutex
                | Self::GoRwmutexRead
                | Self::GoRwmutexWrite
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutex => "mutex",
            Self::RwlockRead => "rwlock-read",
            Self::RwlockWrite => "rwlock-write",
            Self::Rwlock => "rwlock",
            Self::Condvar => "condvar",
            Self::Semaphore => "semaphore",
            Self::Other => "other",
            Self::GoMutex => "go-mutex",
            Self::GoRwmutexRead => "go-rwmutex-read",
            Self::GoRwmutexWrite => "go-rwmutex-write",
            Self::GoCond => "go-cond",
            Self::GoChanRecv => "go-chan-recv",
            Self::GoChanSend => "go-chan-send",
            Self::GoWaitgroup => "go-waitgroup",
            Self::GoSelect => "go-select",
            Self::GoSleep => "go-sleep",
            Self::GoIo => "go-io",
            Self::GoRuntime => "go-runtime",
            Self::GoIdle => "go-idle",
        }
    }
}

/// What a futex address is by behaviour (`analyze::behavior`): `lock` when the
/// threads that wait on it also wake it (acquire, then release), `event` when it is
/// woken only by threads that never wait on it (condvar, semaphore post, park word),
/// `unknown` when no wake was seen (shared futex posted by another process) or the
/// two are mixed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    Lock,
    Event,
    #[default]
    Unknown,
}

impl Behavior {
    pub fn is_unknown(&self) -> bool {
        *self == Self::Unknown
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Event => "event",
            Self::Unknown => "unknown",
        }
    }
}

/// Blocked waits of one kind of site, for the header's "where the time goes".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindShare {
    /// The sites' stack-based kind.
    pub kind: WaitKind,
    /// The sites' behaviour (only `other` sites are split by it; others say `unknown`).
    pub behavior: Behavior,
    /// Whether these waits count as lock contention.
    pub contention: bool,
    pub waits: u64,
    pub wait_ns: u64,
}

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
}

/// One "blocked by" edge: a wake site and the waits of this site it ended.
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

/// A futex address (a lock, or a per-thread parking word) and who waited on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockAddress {
    pub pid: u32,
    pub address: String,
    #[serde(flatten)]
    pub wait: WaitSummary,
    /// What the address is by behaviour. Absent when unknown.
    #[serde(default, skip_serializing_if = "Behavior::is_unknown")]
    pub behavior: Behavior,
    /// Most wake calls on it woke several threads at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
    /// Waits on this address that returned `EAGAIN` at once (the futex word changed
    /// before the thread slept): churn on a busy lock word.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eagain: u64,
    /// Wasted wakeups on this address (see `Site::wasted_wakeups`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wasted_wakeups: u64,
    /// Sites that waited on this address: `Site::id`, with their share.
    pub sites: Vec<SiteShare>,
    /// Wake sites that woke threads on this address: `WakerSite::id`.
    pub wakers: Vec<WakerShare>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteShare {
    pub site: String,
    #[serde(flatten)]
    pub wait: WaitSummary,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakerShare {
    pub waker: String,
    pub calls: u64,
    pub woken: u64,
    /// Of `calls`, those that woke nobody and those that woke more than one thread.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub woke_none: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub woke_many: u64,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A place in the target's own code that woke futex waiters (unlock, notify, post).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakerSite {
    /// Stable identity, as for [`Site::id`].
    pub id: String,
    pub kind: WaitKind,
    pub lock_impl: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Wake calls made here.
    pub calls: u64,
    /// Threads woken (or requeued) by them.
    pub woken: u64,
    /// Calls that woke nobody.
    pub woke_none: u64,
    /// Calls that woke more than one thread (broadcasts).
    pub woke_many: u64,
    /// Threads that made the calls, by calls descending.
    pub threads: Vec<WakerThread>,
    /// Blocked waits this site's wake calls ended, and the wait time they ended: the
    /// cost of the critical sections that end here.
    #[serde(default)]
    pub caused_waits: u64,
    #[serde(default)]
    pub caused_wait_ns: u64,
    /// What the threads waking here did during the waits they ended.
    #[serde(default, skip_serializing_if = "HeldAcross::is_empty")]
    pub held: HeldAcross,
    /// The hottest stack (innermost first).
    pub stack: Vec<Frame>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakerThread {
    pub pid: u32,
    pub tid: u32,
    pub name: String,
    pub calls: u64,
    pub woken: u64,
}

/// The recording cut into consecutive intervals, computed from the difference of
/// cumulative snapshots taken every `interval_ns`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The requested interval length; the last interval (and any tick that ran late)
    /// can differ, so each interval carries its own length.
    pub interval_ns: u64,
    pub intervals: Vec<Interval>,
}

/// One interval of the timeline: all blocked waits that ended in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Start, from the start of the recording.
    pub start_ns: u64,
    pub duration_ns: u64,
    pub waits: u64,
    pub wait_ns: u64,
    /// The part of `waits`/`wait_ns` at lock sites (mutex, rwlock, semaphore).
    pub contention_waits: u64,
    pub contention_wait_ns: u64,
}

/// A site's blocked waits and wait time in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalCount {
    pub waits: u64,
    pub wait_ns: u64,
}

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

mod kinds;
mod locks;
mod site;
mod timeline;

pub use kinds::{Behavior, WaitKind};
pub use locks::{LockAddress, SiteShare, WakerShare, WakerSite, WakerThread};
pub use site::{
    AddressShare, BlockedBy, Fairness, Frame, HeldAcross, OffCpuIn, Site, StackShare,
    SyscallFailure, ThreadShare, WaitSummary, WakeLatency, WokenBy,
};
pub use timeline::{Interval, IntervalCount, Timeline};

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
    /// Followed children that exited and are no longer listed in `targets` (only the
    /// 64 that exited last are): a workload that forks for hours keeps a bounded list.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exited_children_not_listed: u64,
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
            exited_children_not_listed: 0,
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
/// CPU time spent in the probes, summed over all CPUs, and the number of runs
/// measured. Both are zero when the statistics were off (the default: they cost every
/// BPF program of the host two clock reads a run; `--probe-time` turns them on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCost {
    pub bpf_run_ns: u64,
    pub bpf_runs: u64,
    /// How futex calls were hooked: `syscall_tracepoints` (only futex calls run a
    /// program) or `raw_syscalls` (every syscall does; used without tracefs). Empty in
    /// reports recorded before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attach_method: String,
    /// Kernel memory of the probes' BPF maps at the end of the recording, as the
    /// kernel accounts it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kernel_memory_bytes: u64,
    /// lockprof's own CPU time (all its threads, user + system) from the moment its
    /// probes were attached until this report was built: its polls, drains,
    /// unwinding and symbolization. The probes' BPF time is not in it (it runs in the
    /// traced threads' context). 0 in reports recorded before it existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lockprof_cpu_ns: u64,
}

impl ProbeCost {
    /// Whether the kernel measured the probes' run time (statistics on for at least
    /// part of the recording).
    pub fn run_time_measured(&self) -> bool {
        self.bpf_runs > 0
    }
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
    /// Wakes whose last-wake record could not be stored: a waiter they woke counts as
    /// unpaired.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_wake_lost: u64,
    /// Waits paired with a waker whose thread state was gone (it exited): the
    /// holder's activity in that window is left out, never assumed on CPU.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub holder_windows_lost: u64,
    /// Shared futex calls (no `FUTEX_PRIVATE_FLAG`) of a process whose shared
    /// mappings were not registered yet (it had just started) or were too many: they
    /// were paired within their process only, so a wake from another process was
    /// missed and the wait may count as unpaired.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shared_futex_unmapped: u64,
    /// Parts of waits not charged to the holder that released them: the kernel's
    /// blame map was full ("blocked by" undercounts; the waits are kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blame_map_full: u64,
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

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

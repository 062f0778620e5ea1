//! Layouts of the Go runtime probes (`profiler-ebpf/src/go.rs`): goroutine parks
//! timed from `runtime.gopark` to `runtime.ready`.
//!
//! Owns: the keys, values and names of the Go maps and programs. Must not: share
//! maps with the futex probes — the Go probes keep their own, so either side can
//! change without the other.

use crate::HIST_BUCKETS;

/// Hash map `tgid → RawGoProc`: the Go processes traced and their runtime layout.
pub const MAP_GO_PROCS: &str = "GO_PROCS";
/// LRU hash map `RawGoKey → RawGoPark`: goroutines parked now.
pub const MAP_GO_PARKED: &str = "GO_PARKED";
/// LRU hash map `RawGoKey → u64`: the semaphore a goroutine entered `semacquire1` on.
pub const MAP_GO_SEMA: &str = "GO_SEMA";
/// Per-CPU hash map `RawGoWaitKey → RawGoWaitStats`: finished parks, aggregated.
pub const MAP_GO_WAITS: &str = "GO_WAITS";
/// Stack trace map of parked goroutines' and wakers' stacks.
pub const MAP_GO_STACKS: &str = "GO_STACKS";
/// Per-CPU array of `GO_LOSS_KINDS` counters (see [`GoLoss`]).
pub const MAP_GO_LOSSES: &str = "GO_LOSSES";

/// Uprobe on `runtime.gopark` (a goroutine parks).
pub const PROG_GO_GOPARK: &str = "go_gopark";
/// Uprobe on `runtime.ready` (a parked goroutine is made runnable).
pub const PROG_GO_READY: &str = "go_ready";
/// Uprobe on `runtime.semacquire1` (a goroutine waits for a sync semaphore).
pub const PROG_GO_SEMACQUIRE: &str = "go_semacquire";

pub const MAX_GO_PROCS: u32 = 256;
pub const MAX_GO_PARKED: u32 = 65_536;
pub const MAX_GO_WAIT_KEYS: u32 = 16_384;
pub const MAX_GO_STACKS: u32 = 16_384;

/// Per traced Go process: where the runtime's `g` struct keeps the goroutine id
/// (it moved in Go 1.23), read from the executable's version by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawGoProc {
    pub goid_offset: u32,
    pub pad: u32,
}

/// A goroutine: its `g` pointer, unique in its process while it lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawGoKey {
    pub tgid: u32,
    pub pad: u32,
    pub g: u64,
}

/// A parked goroutine, written at `gopark`, consumed at `ready`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawGoPark {
    pub start_ns: u64,
    /// The semaphore of a `semacquire1` that led to this park, else 0.
    pub sema_addr: u64,
    /// The return address at the stack pointer on entry to `gopark`: the caller a
    /// frame-pointer walk skips (the callee has not pushed its frame yet).
    pub leaf_ret: u64,
    pub goid: u64,
    pub stack_id: i32,
    /// `gopark`'s `waitReason` argument (numbering differs between Go versions).
    pub reason: u32,
}

/// Aggregation key of finished parks: process, why, where it waited, who woke it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawGoWaitKey {
    pub tgid: u32,
    pub reason: u32,
    /// Id in [`MAP_GO_STACKS`] of the parked goroutine's stack, or negative.
    pub waiter_stack_id: i32,
    /// Stack of the goroutine that called `ready`, or negative.
    pub waker_stack_id: i32,
    pub waiter_leaf_ret: u64,
    pub sema_addr: u64,
}

/// Statistics of one [`RawGoWaitKey`] on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawGoWaitStats {
    pub waits: u64,
    pub total_ns: u64,
    /// Shortest wait (0 in a CPU slot without waits).
    pub min_ns: u64,
    pub max_ns: u64,
    /// Goroutine id of the latest waiter (0 when unreadable).
    pub last_goid: u64,
    pub hist: [u64; HIST_BUCKETS],
}

/// What the Go probes could not record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoLoss {
    /// A finished park not aggregated: `GO_WAITS` was full.
    WaitMapFull = 0,
    /// A stack not captured (the wait is kept, without that stack).
    StackError = 1,
    /// A stack whose slot in `GO_STACKS` held another stack (kept without it).
    StackCollision = 2,
}

pub const GO_LOSS_KINDS: u32 = 3;

impl GoLoss {
    pub const ALL: [GoLoss; GO_LOSS_KINDS as usize] = [
        GoLoss::WaitMapFull,
        GoLoss::StackError,
        GoLoss::StackCollision,
    ];
}

const _: () = assert!(size_of::<RawGoProc>() == 8);
const _: () = assert!(size_of::<RawGoKey>() == 16);
const _: () = assert!(size_of::<RawGoPark>() == 40);
const _: () = assert!(size_of::<RawGoWaitKey>() == 32);
const _: () = assert!(size_of::<RawGoWaitStats>() == 40 + 8 * HIST_BUCKETS);

#[cfg(feature = "user")]
mod pod {
    use super::{RawGoKey, RawGoPark, RawGoProc, RawGoWaitKey, RawGoWaitStats};
    // SAFETY: all are #[repr(C)], Copy, made only of integers and integer arrays with
    // explicit padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for RawGoProc {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawGoKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawGoPark {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawGoWaitKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RawGoWaitStats {}
}

//! Go runtime probes: goroutines parked by the Go scheduler, which no futex sees.
//!
//! Owns: uprobes on `runtime.gopark` (a goroutine parks: remember when, why and its
//! stack), `runtime.semacquire1` (the park that follows waits on this sync
//! semaphore) and `runtime.ready` (the parked goroutine is made runnable: the wait
//! ends, and the caller's stack is the waker's — for a mutex, the holder's
//! `Unlock`), aggregated per (process, reason, waiter stack, waker stack, semaphore)
//! in this module's own maps. Must not: use uretprobes (Go moves goroutine stacks,
//! and a return probe's trampoline address would be copied along and break the
//! runtime's traceback), or touch the futex probes' maps.
//!
//! Registers: Go's amd64 internal ABI passes integer arguments in RAX, RBX, RCX, …
//! and keeps the current goroutine's `g` in R14 (Go 1.17+). `ready` runs on the
//! scheduler stack (`systemstack`), which keeps the goroutine's frame pointer in
//! RBP, so a frame-pointer walk from it reaches the waking goroutine's frames.
//!
//! # Minimum kernel version
//! 4.17 for uprobes through perf events with a pid filter; stack ids need 4.6.
#![allow(
    clippy::inline_always,
    reason = "eBPF: helpers must be inlined into the program; bpf-to-bpf calls cost and limit the verifier"
)]
#![allow(
    clippy::needless_borrows_for_generic_args,
    reason = "passing the zeroed stats by reference keeps 360 bytes off the 512-byte BPF stack"
)]
#![allow(
    clippy::needless_pass_by_value,
    reason = "aya's program macros hand the context to the entry point by value"
)]

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_F_USER_STACK, BPF_NOEXIST},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{map, uprobe},
    maps::{HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, StackTrace},
    programs::{ProbeContext, tracing::StackIdContext as _},
};
use profiler_common::go::{
    GO_LOSS_KINDS, GoLoss, MAX_GO_PARKED, MAX_GO_PROCS, MAX_GO_STACKS, MAX_GO_WAIT_KEYS, RawGoKey,
    RawGoPark, RawGoProc, RawGoWaitKey, RawGoWaitStats,
};
use profiler_common::hist_bucket;

#[map]
static GO_PROCS: HashMap<u32, RawGoProc> = HashMap::with_max_entries(MAX_GO_PROCS, 0);

/// LRU: a goroutine parked for ever (an idle worker) ages out instead of filling it.
#[map]
static GO_PARKED: LruHashMap<RawGoKey, RawGoPark> = LruHashMap::with_max_entries(MAX_GO_PARKED, 0);

#[map]
static GO_SEMA: LruHashMap<RawGoKey, u64> = LruHashMap::with_max_entries(MAX_GO_PARKED, 0);

#[map]
static GO_WAITS: PerCpuHashMap<RawGoWaitKey, RawGoWaitStats> =
    PerCpuHashMap::with_max_entries(MAX_GO_WAIT_KEYS, 0);

#[map]
static GO_STACKS: StackTrace = StackTrace::with_max_entries(MAX_GO_STACKS, 0);

#[map]
static GO_LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(GO_LOSS_KINDS, 0);

/// A never-written per-CPU slot to insert new rows from (too large for the BPF stack).
#[map]
static GO_ZERO_WAIT: PerCpuArray<RawGoWaitStats> = PerCpuArray::with_max_entries(1, 0);

const EEXIST: i64 = 17;

#[uprobe]
pub fn go_gopark(ctx: ProbeContext) -> u32 {
    go_gopark_entry(&ctx)
}

#[uprobe]
pub fn go_semacquire(ctx: ProbeContext) -> u32 {
    go_semacquire_entry(&ctx)
}

#[uprobe]
pub fn go_ready(ctx: ProbeContext) -> u32 {
    go_ready_entry(&ctx)
}

/// `gopark(unlockf, lock, reason waitReason, …)` on the parking goroutine.
fn go_gopark_entry(ctx: &ProbeContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: the value is copied out at once.
    let Some(proc_) = (unsafe { GO_PROCS.get(tgid) }).copied() else {
        return 0;
    };
    // SAFETY: a uprobe's context is the trapped task's registers; reads are checked
    // by the verifier.
    let (g, reason, sp) = unsafe { ((*ctx.regs).r14, (*ctx.regs).rcx, (*ctx.regs).rsp) };
    let key = RawGoKey { tgid, pad: 0, g };
    // SAFETY: copied out at once.
    let sema_addr = unsafe { GO_SEMA.get(key) }.copied().unwrap_or(0);
    if sema_addr != 0 {
        let _ = GO_SEMA.remove(key);
    }
    // SAFETY: plain user reads that fail cleanly on a bad address.
    let leaf_ret = unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0);
    // SAFETY: as above.
    let goid = unsafe { bpf_probe_read_user((g + u64::from(proc_.goid_offset)) as *const u64) }
        .unwrap_or(0);
    let park = RawGoPark {
        // SAFETY: reads the monotonic clock, no memory access.
        start_ns: unsafe { bpf_ktime_get_ns() },
        sema_addr,
        leaf_ret,
        goid,
        stack_id: stack_id(ctx),
        reason: (reason & 0xff) as u32,
    };
    let _ = GO_PARKED.insert(key, park, u64::from(BPF_ANY));
    0
}

/// `semacquire1(addr *uint32, …)`: the next park of this goroutine waits on `addr`.
fn go_semacquire_entry(ctx: &ProbeContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only tests membership.
    if unsafe { GO_PROCS.get(tgid) }.is_none() {
        return 0;
    }
    // SAFETY: the trapped task's registers.
    let (g, addr) = unsafe { ((*ctx.regs).r14, (*ctx.regs).rax) };
    let key = RawGoKey { tgid, pad: 0, g };
    let _ = GO_SEMA.insert(key, addr, u64::from(BPF_ANY));
    0
}

/// `ready(gp *g, …)`: `gp`'s wait ends; the caller is its waker.
fn go_ready_entry(ctx: &ProbeContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: the trapped task's registers.
    let gp = unsafe { (*ctx.regs).rax };
    let key = RawGoKey {
        tgid,
        pad: 0,
        g: gp,
    };
    // SAFETY: copied out at once.
    let Some(park) = (unsafe { GO_PARKED.get(key) }).copied() else {
        return 0;
    };
    let _ = GO_PARKED.remove(key);
    // SAFETY: reads the monotonic clock, no memory access.
    let waited = unsafe { bpf_ktime_get_ns() }.saturating_sub(park.start_ns);
    let wait_key = RawGoWaitKey {
        tgid,
        reason: park.reason,
        waiter_stack_id: park.stack_id,
        waker_stack_id: stack_id(ctx),
        waiter_leaf_ret: park.leaf_ret,
        sema_addr: park.sema_addr,
    };
    let Some(stats) = wait_stats(&wait_key) else {
        return 0;
    };
    // SAFETY: this CPU's slot of a per-CPU hash map row; no concurrent writer.
    let s = unsafe { &mut *stats };
    s.waits += 1;
    s.total_ns += waited;
    if s.min_ns == 0 || waited < s.min_ns {
        s.min_ns = waited;
    }
    if waited > s.max_ns {
        s.max_ns = waited;
    }
    s.last_goid = park.goid;
    let b = hist_bucket(waited);
    if let Some(slot) = s.hist.get_mut(b) {
        *slot += 1;
    }
    0
}

/// The current user stack's id, or a negative value with the loss counted.
#[inline(always)]
fn stack_id(ctx: &ProbeContext) -> i32 {
    match ctx.get_stackid(&GO_STACKS, u64::from(BPF_F_USER_STACK)) {
        Ok(id) => id as i32,
        Err(e) => {
            count_loss(if i64::from(e) == -EEXIST {
                GoLoss::StackCollision
            } else {
                GoLoss::StackError
            });
            -1
        }
    }
}

/// This CPU's row of `key`, created zeroed if new; `None` (loss counted) when full.
#[inline(always)]
fn wait_stats(key: &RawGoWaitKey) -> Option<*mut RawGoWaitStats> {
    if let Some(p) = GO_WAITS.get_ptr_mut(key) {
        return Some(p);
    }
    let zero = GO_ZERO_WAIT.get_ptr(0)?;
    // SAFETY: `zero` points at a live per-CPU array slot the helper only reads.
    if let Err(e) = GO_WAITS.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        count_loss(GoLoss::WaitMapFull);
        return None;
    }
    GO_WAITS.get_ptr_mut(key)
}

#[inline(always)]
fn count_loss(loss: GoLoss) {
    if let Some(p) = GO_LOSSES.get_ptr_mut(loss as u32) {
        // SAFETY: this CPU's slot of a per-CPU array; no concurrent writer.
        unsafe { *p += 1 };
    }
}

//! The programs and maps. Entry points are thin (`match try_x(..) { Ok(r) | Err(r) => r }`);
//! the logic lives in the `try_` helpers so it reads top-down.
#![allow(
    clippy::inline_always,
    reason = "eBPF: helpers must be inlined into the program; bpf-to-bpf calls cost and limit the verifier"
)]
#![allow(
    clippy::needless_pass_by_value,
    reason = "aya's program macros hand the context to the entry point by value"
)]
#![allow(
    clippy::needless_borrows_for_generic_args,
    reason = "passing map values by reference keeps 400-byte stats off the 512-byte BPF stack"
)]
#![allow(
    clippy::cast_ptr_alignment,
    reason = "pt_regs fields are read with bpf_probe_read_kernel, which has no alignment requirement"
)]

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_F_NO_PREALLOC, BPF_F_USER_STACK, BPF_NOEXIST},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task_btf,
        bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user,
        bpf_task_pt_regs, generated as raw_helpers,
    },
    macros::{map, raw_tracepoint},
    maps::{HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, StackTrace},
    programs::{RawTracePointContext, tracing::StackIdContext as _},
};
use profiler_common::{DWARF_STACK_ID_BASE, MAX_USER_STACKS, RawUserStack, USER_STACK_PAGES};
use profiler_common::{
    HIST_BUCKETS, INFLIGHT_REWAIT, LOSS_KINDS, Loss, MAX_EDGES, MAX_INFLIGHT, MAX_LAST_WAKES,
    MAX_LAST_WOKEN, MAX_STACK_CACHE, MAX_STACKS, MAX_STACKS2, MAX_TARGETS, MAX_THREADS,
    MAX_WAIT_KEYS, MAX_WAKE_KEYS, OFF_NO_SYSCALL, OFF_RUNNABLE, OFF_SLOTS, OFF_SPANS, RawAddrKey,
    RawEdgeKey, RawEdgeStats, RawInFlight, RawLastWake, RawOffSpan, RawStackCacheKey,
    RawThreadState, RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats, STACK_ID_OVERFLOW,
    hist_bucket, nr, op, target_flags,
};

#[map]
static WAITS: PerCpuHashMap<RawWaitKey, RawWaitStats> =
    PerCpuHashMap::with_max_entries(MAX_WAIT_KEYS, 0);

#[map]
static WAKES: PerCpuHashMap<RawWakeKey, RawWakeStats> =
    PerCpuHashMap::with_max_entries(MAX_WAKE_KEYS, 0);

#[map]
static STACKS: StackTrace = StackTrace::with_max_entries(MAX_STACKS, 0);

#[map]
static STACKS2: StackTrace = StackTrace::with_max_entries(MAX_STACKS2, 0);

/// Stack ids by call position (see `RawStackCacheKey`): repeats skip the stack walk.
#[map]
static STACK_CACHE: LruHashMap<RawStackCacheKey, i32> =
    LruHashMap::with_max_entries(MAX_STACK_CACHE, 0);

#[map]
static TARGETS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TARGETS, 0);

#[map]
static INFLIGHT: HashMap<u32, RawInFlight> = HashMap::with_max_entries(MAX_INFLIGHT, 0);

#[map]
static LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOSS_KINDS, 0);

#[map]
static EDGES: PerCpuHashMap<RawEdgeKey, RawEdgeStats> =
    PerCpuHashMap::with_max_entries(MAX_EDGES, 0);

/// The last wake call seen on each futex address. LRU: old addresses age out.
#[map]
static LAST_WAKE: LruHashMap<RawAddrKey, RawLastWake> =
    LruHashMap::with_max_entries(MAX_LAST_WAKES, 0);

/// The futex address each thread was last woken from, until it releases it.
#[map]
static LAST_WOKEN: LruHashMap<u32, u64> = LruHashMap::with_max_entries(MAX_LAST_WOKEN, 0);

/// Off-CPU periods and failed syscalls of traced threads (see `RawThreadState`).
#[map]
static THREADS: LruHashMap<u32, RawThreadState> = LruHashMap::with_max_entries(MAX_THREADS, 0);

/// Per CPU: when the last context switch happened there — the time the task now
/// running on that CPU got it. This is how a thread's switch-in is known without
/// reading the `next` task of `sched_switch` (which needs kernel struct offsets).
#[map]
static LAST_SWITCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: `[tid, time]` of the wake syscall being entered, so a wake is timed from
/// its start (the waiter is made runnable inside the syscall, before its exit).
#[map]
static WAKE_ENTER: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// Registers and user-stack copies for DWARF unwinding (see `RawUserStack`). Entries
/// are 16 KiB, so they are allocated on insert rather than preallocated.
#[map]
static USER_STACKS: HashMap<i32, RawUserStack> =
    HashMap::with_max_entries(MAX_USER_STACKS, BPF_F_NO_PREALLOC);

/// Where a `RawUserStack` is assembled before it is inserted: far too large for the
/// 512-byte BPF stack.
#[map]
static USER_STACK_SCRATCH: PerCpuArray<RawUserStack> = PerCpuArray::with_max_entries(1, 0);

/// 1: copy user stacks for DWARF unwinding; 0: frame-pointer stacks only. Set by
/// userspace at load time (`lockprof record --unwind fp`).
#[unsafe(no_mangle)]
static COPY_USER_STACKS: u32 = 1;

/// Per-CPU sequence numbers for `USER_STACKS` ids.
#[map]
static USER_STACK_SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

// Never-written per-CPU slots: a zeroed value to insert new rows from. The stats are
// too large to build on the 512-byte BPF stack.
#[map]
static ZERO_WAIT: PerCpuArray<RawWaitStats> = PerCpuArray::with_max_entries(1, 0);
#[map]
static ZERO_WAKE: PerCpuArray<RawWakeStats> = PerCpuArray::with_max_entries(1, 0);
#[map]
static ZERO_EDGE: PerCpuArray<RawEdgeStats> = PerCpuArray::with_max_entries(1, 0);
#[map]
static ZERO_THREAD: PerCpuArray<RawThreadState> = PerCpuArray::with_max_entries(1, 0);

// x86_64 `struct pt_regs` offsets (arch/x86/include/asm/ptrace.h). Syscall arguments
// are di, si, dx, r10, r8, r9; `orig_ax` holds the syscall number at exit.
const REG_DI: usize = 112;
const REG_SI: usize = 104;
const REG_ORIG_AX: usize = 120;
const REG_SP: usize = 152;
const REG_BP: usize = 32;
const REG_IP: usize = 128;

const CLONE_THREAD: u64 = 0x0001_0000;

const EEXIST: i64 = 17;
const EAGAIN: i64 = 11;
const ETIMEDOUT: i64 = 110;
const EINTR: i64 = 4;
// Kernel-internal restart codes a signal-interrupted wait returns at sys_exit.
const ERESTARTSYS: i64 = 512;
const ERESTART_RESTARTBLOCK: i64 = 516;

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    match try_sys_enter(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    match try_sys_exit(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> i32 {
    match try_sched_switch(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

/// Syscall entry: remember when a traced thread starts a futex wait and on what.
fn try_sys_enter(ctx: &RawTracePointContext) -> Result<i32, i32> {
    let id: u64 = ctx.arg(1);
    if id != nr::FUTEX && id != nr::FUTEX_WAIT && id != nr::FUTEX_WAITV && id != nr::FUTEX_WAKE {
        return Ok(0);
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if !is_target((pid_tgid >> 32) as u32) {
        return Ok(0);
    }
    let regs: *const u8 = ctx.arg(0);
    let (fop, uaddr) = match id {
        nr::FUTEX => {
            let fop = reg(regs, REG_SI)? as u32 & op::FUTEX_CMD_MASK;
            if op::is_wake(fop) {
                note_wake_enter(pid_tgid as u32);
            }
            if !op::is_wait(fop) {
                return Ok(0);
            }
            (fop, reg(regs, REG_DI)?)
        }
        nr::FUTEX_WAIT => (op::FUTEX2_WAIT, reg(regs, REG_DI)?),
        nr::FUTEX_WAKE => {
            note_wake_enter(pid_tgid as u32);
            return Ok(0);
        }
        _ => (op::FUTEX2_WAITV, first_waiter_addr(reg(regs, REG_DI)?)),
    };
    let tid = pid_tgid as u32;
    // SAFETY: the value is copied out immediately.
    let rewait = unsafe { LAST_WOKEN.get(tid) }.is_some_and(|&a| a == uaddr);
    let inflight = RawInFlight {
        start_ns: now_ns(),
        uaddr,
        op: fop,
        flags: if rewait { INFLIGHT_REWAIT } else { 0 },
    };
    if INFLIGHT.insert(tid, inflight, u64::from(BPF_ANY)).is_err() {
        count_loss(Loss::InFlightMapFull);
    }
    Ok(0)
}

/// Syscall exit: finish a wait, record a wake, or follow a fork.
fn try_sys_exit(ctx: &RawTracePointContext) -> Result<i32, i32> {
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    let id = reg(regs, REG_ORIG_AX)?;
    match id {
        nr::FUTEX => {
            let fop = reg(regs, REG_SI)? as u32 & op::FUTEX_CMD_MASK;
            if op::is_wait(fop) {
                finish_wait(ctx, regs, ret);
            } else if op::is_wake(fop) {
                record_wake(ctx, regs, fop, reg(regs, REG_DI)?, ret);
            }
        }
        nr::FUTEX_WAIT | nr::FUTEX_WAITV => finish_wait(ctx, regs, ret),
        nr::FUTEX_WAKE => record_wake(ctx, regs, op::FUTEX2_WAKE, reg(regs, REG_DI)?, ret),
        nr::FUTEX_REQUEUE => {
            let uaddr = first_waiter_addr(reg(regs, REG_DI)?);
            record_wake(ctx, regs, op::FUTEX2_REQUEUE, uaddr, ret);
        }
        nr::CLONE | nr::FORK | nr::VFORK | nr::CLONE3 if ret > 0 => follow_child(regs, id, ret)?,
        _ if ret < 0 => note_failure(id, ret),
        _ => {}
    }
    Ok(0)
}

/// Context switch (system-wide): stamp the CPU's switch time, and when a traced
/// thread leaves the CPU, close its previous off-CPU period and open a new one.
fn try_sched_switch(ctx: &RawTracePointContext) -> Result<i32, i32> {
    let now = now_ns();
    let slot = LAST_SWITCH.get_ptr_mut(0).ok_or(0)?;
    // SAFETY: this CPU's slot of a per-CPU array; no concurrent writer.
    let switched_in = unsafe { core::ptr::replace(slot, now) };
    // The task leaving the CPU is still "current" here.
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    if tid == 0 || !is_target((pid_tgid >> 32) as u32) {
        return Ok(0);
    }
    let state = thread_state(tid).ok_or(0)?;
    // SAFETY: the map value lives as long as the program; an LRU eviction by another
    // CPU at worst makes us write to a recycled entry, which only skews statistics.
    let state = unsafe { &mut *state };
    close_off_span(state, switched_in);
    // TP_PROTO(bool preempt, prev, next, unsigned int prev_state): a preempted or
    // still-running (TASK_RUNNING == 0) task is waiting for a CPU, not blocked.
    let preempt: u64 = ctx.arg(0);
    let prev_state: u64 = ctx.arg(3);
    state.off_start_ns = now;
    state.off_nr = if preempt & 0xff != 0 || prev_state as u32 == 0 {
        OFF_RUNNABLE
    } else {
        current_syscall()
    };
    state.off_fails = state.fails;
    Ok(0)
}

/// The syscall the current task is in, from its user `pt_regs` (`orig_ax`).
#[inline(always)]
fn current_syscall() -> u32 {
    // SAFETY: both helpers are valid in tracing programs; the result is only used as
    // an address for bpf_probe_read_kernel, which validates it.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8;
    match reg(regs, REG_ORIG_AX) {
        Ok(n) if (n as i64) >= 0 && n < 1024 => n as u32,
        _ => OFF_NO_SYSCALL,
    }
}

/// The traced thread's state row, created on first use.
#[inline(always)]
fn thread_state(tid: u32) -> Option<*mut RawThreadState> {
    if let Some(p) = THREADS.get_ptr_mut(tid) {
        return Some(p);
    }
    let zero = ZERO_THREAD.get_ptr(0)?;
    // SAFETY: `zero` points at a live per-CPU array slot the helper only reads.
    let _ = THREADS.insert(tid, unsafe { &*zero }, u64::from(BPF_NOEXIST));
    THREADS.get_ptr_mut(tid)
}

/// The thread is running again (it got this CPU at `switched_in`): its open off-CPU
/// period, if any, ended then; push it into the ring.
#[inline(always)]
fn close_off_span(state: &mut RawThreadState, switched_in: u64) {
    if state.off_start_ns != 0 && switched_in >= state.off_start_ns {
        let i = state.next_span as usize & (OFF_SPANS - 1);
        state.spans[i] = RawOffSpan {
            start_ns: state.off_start_ns,
            end_ns: switched_in,
            nr: state.off_nr,
            fails: state.off_fails,
        };
        state.next_span = state.next_span.wrapping_add(1);
    }
    state.off_start_ns = 0;
}

/// The current thread is on CPU: close its open off-CPU period (see above). Returns
/// its state row, if it has one (every thread that ever left a CPU while traced).
#[inline(always)]
fn on_cpu_again(tid: u32) -> Option<*mut RawThreadState> {
    let state = THREADS.get_ptr_mut(tid)?;
    let &switched_in = LAST_SWITCH.get(0)?;
    // SAFETY: as in `try_sched_switch`.
    close_off_span(unsafe { &mut *state }, switched_in);
    Some(state)
}

/// A traced thread's non-futex syscall failed: count it (a holder retrying a failing
/// write under a lock shows up as failures inside its waiters' windows).
#[inline(always)]
fn note_failure(id: u64, ret: i64) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if !is_target((pid_tgid >> 32) as u32) {
        return;
    }
    let Some(state) = thread_state(pid_tgid as u32) else {
        return;
    };
    // SAFETY: as in `try_sched_switch`.
    let state = unsafe { &mut *state };
    state.fails = state.fails.wrapping_add(1);
    state.last_fail_nr = id as u32;
    state.last_fail_errno = ret.unsigned_abs() as u32;
}

/// Remember when the current thread entered a wake syscall.
#[inline(always)]
fn note_wake_enter(tid: u32) {
    if let Some(p) = WAKE_ENTER.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of a per-CPU array; no concurrent writer.
        unsafe { *p = [u64::from(tid), now_ns()] };
    }
}

/// When the current thread entered the wake syscall it is leaving (or now, if that
/// entry was not seen on this CPU).
#[inline(always)]
fn wake_enter_time(tid: u32, now: u64) -> u64 {
    match WAKE_ENTER.get(0) {
        Some(&[t, ts]) if t == u64::from(tid) && ts <= now && now - ts < 10_000_000 => ts,
        _ => now,
    }
}

/// Close the in-flight wait of the current thread and fold it into `WAITS`.
fn finish_wait(ctx: &RawTracePointContext, regs: *const u8, ret: i64) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    // SAFETY: the value is copied out before the entry is removed below.
    let Some(inflight) = (unsafe { INFLIGHT.get(tid) }).copied() else {
        // Started before we attached, or the entry could not be stored (counted then).
        return;
    };
    let _ = INFLIGHT.remove(tid);
    let now = now_ns();
    let waited = now.saturating_sub(inflight.start_ns);
    let state = on_cpu_again(tid);
    let key = RawWaitKey {
        tgid: (pid_tgid >> 32) as u32,
        tid,
        uaddr: inflight.uaddr,
        stack_id: cached_user_stack_id(ctx, regs),
        op: inflight.op,
        leaf_ret: leaf_return(regs),
    };
    let Some(stats) = wait_row(&key) else {
        return;
    };
    // SAFETY: `stats` points at this CPU's slot of a live map value; BPF programs run
    // with migration disabled, so no other CPU writes this slot.
    let stats = unsafe { &mut *stats };
    match ret {
        // futex_waitv returns the index of the futex that woke it.
        r if r >= 0 => {
            if stats.blocked == 0 || waited < stats.min_ns {
                stats.min_ns = waited;
            }
            if waited > stats.max_ns {
                stats.max_ns = waited;
            }
            stats.blocked += 1;
            stats.total_ns += waited;
            let b = hist_bucket(waited);
            if b < HIST_BUCKETS {
                stats.hist[b] += 1;
            }
            if inflight.flags & INFLIGHT_REWAIT != 0 {
                stats.rewaits += 1;
            }
            if !record_edge(&key, inflight.start_ns, waited) {
                stats.unpaired += 1;
            }
            let _ = LAST_WOKEN.insert(tid, inflight.uaddr, u64::from(BPF_ANY));
            if let Some(state) = state {
                // SAFETY: as in `try_sched_switch`.
                unsafe {
                    (*state).acquired_uaddr = inflight.uaddr;
                    (*state).acquired_ns = now;
                }
            }
        }
        r if r == -EAGAIN => stats.eagain += 1,
        r if r == -ETIMEDOUT => {
            stats.timedout += 1;
            stats.timedout_ns += waited;
        }
        r if r == -EINTR || (-ERESTART_RESTARTBLOCK..=-ERESTARTSYS).contains(&r) => {
            stats.interrupted += 1;
        }
        _ => stats.other_err += 1,
    }
}

/// Fold one wake call into `WAKES`; `ret` is the number of threads woken (or requeued).
fn record_wake(ctx: &RawTracePointContext, regs: *const u8, fop: u32, uaddr: u64, ret: i64) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if !is_target(tgid) {
        return;
    }
    let key = RawWakeKey {
        tgid,
        tid: pid_tgid as u32,
        uaddr,
        stack_id: cached_user_stack_id(ctx, regs),
        op: fop,
        leaf_ret: leaf_return(regs),
    };
    let Some(stats) = wake_row(&key) else {
        return;
    };
    if ret > 0 {
        on_cpu_again(key.tid);
        let mut last = RawLastWake {
            ts_ns: wake_enter_time(key.tid, now_ns()),
            leaf_ret: key.leaf_ret,
            tid: key.tid,
            stack_id: key.stack_id,
            ..RawLastWake::default()
        };
        // SAFETY: the fields are copied out immediately.
        if let Some(state) = unsafe { THREADS.get(key.tid) } {
            last.fails = state.fails;
            last.fail_nr = state.last_fail_nr;
            last.fail_errno = state.last_fail_errno;
        }
        let _ = LAST_WAKE.insert(addr_key(tgid, uaddr), last, u64::from(BPF_ANY));
    }
    // Waking on the address it was woken from means the thread got past it (it took
    // the lock and is releasing it): its next wait there is not a wasted wakeup.
    // SAFETY: the value is copied out immediately.
    if unsafe { LAST_WOKEN.get(key.tid) }.is_some_and(|&a| a == uaddr) {
        let _ = LAST_WOKEN.remove(key.tid);
    }
    // SAFETY: as in `finish_wait`.
    let stats = unsafe { &mut *stats };
    stats.calls += 1;
    if ret < 0 {
        stats.errors += 1;
    } else {
        stats.woken += ret as u64;
        if ret == 0 {
            stats.woke_none += 1;
        } else if ret > 1 {
            stats.woke_many += 1;
        }
    }
}

/// Pair a finished wait with the last wake on its address, if that wake happened
/// during the wait; fold the pair into `EDGES`, with what the waker was doing during
/// the wait and how long the waiter took to get a CPU. Returns whether a waker was
/// found.
fn record_edge(waiter: &RawWaitKey, started: u64, waited: u64) -> bool {
    // SAFETY: the value is copied out immediately.
    let Some(last) = (unsafe { LAST_WAKE.get(addr_key(waiter.tgid, waiter.uaddr)) }).copied()
    else {
        return false;
    };
    if last.ts_ns < started {
        return false;
    }
    let key = RawEdgeKey {
        tgid: waiter.tgid,
        waiter_stack_id: waiter.stack_id,
        waker_stack_id: last.stack_id,
        waker_tid: last.tid,
        waiter_leaf_ret: waiter.leaf_ret,
        waker_leaf_ret: last.leaf_ret,
    };
    let Some(p) = edge_row(&key) else {
        return true;
    };
    // SAFETY: this CPU's slot of a live map value.
    let edge = unsafe { &mut *p };
    edge.waits += 1;
    edge.wait_ns += waited;
    // The waiter is running now; it got this CPU at the CPU's last switch.
    if let Some(&on_cpu) = LAST_SWITCH.get(0)
        && on_cpu >= last.ts_ns
    {
        let latency = on_cpu - last.ts_ns;
        edge.wake_to_run_n += 1;
        edge.wake_to_run_ns += latency;
        if latency > edge.wake_to_run_max_ns {
            edge.wake_to_run_max_ns = latency;
        }
    }
    // SAFETY: read in place; the waker's row is only read.
    if let Some(holder) = unsafe { THREADS.get(last.tid) } {
        add_holder_window(edge, holder, waiter.uaddr, started, &last);
    } else {
        // The waker never left a CPU while traced: on CPU for the whole window.
        edge.window_ns += last.ts_ns - started;
    }
    true
}

/// Fold the waker's off-CPU periods and failed syscalls that fall inside the window
/// `[started, last.ts_ns]` into the edge, the window starting later if the waker got
/// the lock (returned from its own wait on the same address) after `started`.
#[inline(always)]
fn add_holder_window(
    edge: &mut RawEdgeStats,
    holder: &RawThreadState,
    uaddr: u64,
    started: u64,
    last: &RawLastWake,
) {
    let end = last.ts_ns;
    let started = if holder.acquired_uaddr == uaddr
        && holder.acquired_ns > started
        && holder.acquired_ns <= end
    {
        holder.acquired_ns
    } else {
        started
    };
    edge.window_ns += end - started;
    // Failures before the window are excluded by starting from the count at the first
    // off-CPU period after `started` (a lower bound when failures came before it).
    let mut fails_at_start = last.fails;
    for i in 0..OFF_SPANS {
        let span = &holder.spans[i];
        if span.start_ns >= started && span.start_ns <= end && span.fails < fails_at_start {
            fails_at_start = span.fails;
        }
        let from = if span.start_ns > started {
            span.start_ns
        } else {
            started
        };
        let to = if span.end_ns < end { span.end_ns } else { end };
        if to > from {
            add_off(edge, span.nr, to - from);
        }
    }
    // The ring's oldest period is the next one to be overwritten: if it is in use and
    // began after the window did, earlier periods of the window were lost.
    let oldest = &holder.spans[holder.next_span as usize & (OFF_SPANS - 1)];
    if oldest.end_ns != 0 && oldest.start_ns > started {
        edge.truncated += 1;
    }
    let fails = last.fails.wrapping_sub(fails_at_start);
    if fails > 0 {
        edge.fails += u64::from(fails);
        edge.fail_nr = last.fail_nr;
        edge.fail_errno = last.fail_errno;
    }
}

/// Add off-CPU time in syscall `nr` to the edge's slots (the first free or matching
/// one; the rest counts as "other").
#[inline(always)]
fn add_off(edge: &mut RawEdgeStats, nr: u32, ns: u64) {
    for i in 0..OFF_SLOTS {
        let slot = &mut edge.off[i];
        if slot.ns == 0 || slot.nr == nr {
            slot.nr = nr;
            slot.ns += ns;
            return;
        }
    }
    edge.off_other_ns += ns;
}

/// This CPU's edge slot for `key`, created zeroed on first use.
#[inline(always)]
fn edge_row(key: &RawEdgeKey) -> Option<*mut RawEdgeStats> {
    if let Some(p) = EDGES.get_ptr_mut(key) {
        return Some(p);
    }
    let zero = ZERO_EDGE.get_ptr(0)?;
    // SAFETY: as in `wait_row`.
    if let Err(e) = EDGES.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        count_loss(Loss::EdgeMapFull);
        return None;
    }
    EDGES.get_ptr_mut(key)
}

#[inline(always)]
fn addr_key(tgid: u32, uaddr: u64) -> RawAddrKey {
    RawAddrKey {
        tgid,
        pad: 0,
        uaddr,
    }
}

/// A followed process created a process (not a thread): trace the child too.
fn follow_child(regs: *const u8, id: u64, child: i64) -> Result<(), i32> {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: the value is copied out immediately.
    let Some(flags) = (unsafe { TARGETS.get(tgid) }).copied() else {
        return Ok(());
    };
    if flags & target_flags::FOLLOW_CHILDREN == 0 {
        return Ok(());
    }
    let clone_flags = match id {
        nr::CLONE => reg(regs, REG_DI)?,
        // clone3's first argument points at `struct clone_args`, whose first field is
        // the flags word.
        nr::CLONE3 => {
            // SAFETY: bpf_probe_read_user validates the user pointer.
            unsafe { bpf_probe_read_user(reg(regs, REG_DI)? as *const u64) }.map_err(|_| {
                count_loss(Loss::UserReadError);
                0
            })?
        }
        _ => 0,
    };
    if clone_flags & CLONE_THREAD == 0
        && TARGETS
            .insert(child as u32, flags, u64::from(BPF_ANY))
            .is_err()
    {
        count_loss(Loss::TargetMapFull);
    }
    Ok(())
}

#[inline(always)]
fn is_target(tgid: u32) -> bool {
    TARGETS.get_ptr(tgid).is_some()
}

/// The current user stack's id, from the per-thread cache when the thread is at the
/// same call position as before, else from a fresh stack walk (then cached).
#[inline(always)]
fn cached_user_stack_id(ctx: &RawTracePointContext, regs: *const u8) -> i32 {
    let key = stack_cache_key(regs);
    if let Some(key) = &key {
        // SAFETY: the value is copied out immediately.
        if let Some(&id) = unsafe { STACK_CACHE.get(key) } {
            return id;
        }
    }
    let fp_id = user_stack_id(ctx);
    // A new call position: copy the stack once, so userspace can unwind it with the
    // modules' CFI; repeats reuse the id through the cache and cost no copy.
    let id = copy_user_stack(regs, fp_id).unwrap_or(fp_id);
    if id >= 0
        && let Some(key) = &key
    {
        let _ = STACK_CACHE.insert(key, id, u64::from(BPF_ANY));
    }
    id
}

/// Where the thread is: registers plus the first two frame records' return
/// addresses. `None` when the registers cannot be read (no cache then).
///
/// Code without frame pointers (Debian's glibc) uses `rbp` as a general register,
/// and the value it holds at the syscall can change on every call (a counter, a
/// pointer): keying on it, or on words read through it, would miss the cache every
/// time — and with DWARF unwinding every miss copies 16 KiB of stack. So `rbp` and the
/// frame records only count when `rbp` points a little above `sp`, as a frame
/// pointer does.
#[inline(always)]
fn stack_cache_key(regs: *const u8) -> Option<RawStackCacheKey> {
    let sp = reg(regs, REG_SP).ok()?;
    let mut bp = reg(regs, REG_BP).ok()?;
    let mut ret1 = 0;
    let mut ret2 = 0;
    if bp >= sp && bp - sp < MAX_FRAME_DISTANCE {
        // A frame record is [saved bp, return address].
        // SAFETY: bpf_probe_read_user validates the user pointer.
        let frame1: [u64; 2] = unsafe { bpf_probe_read_user(bp as *const [u64; 2]) }.ok()?;
        // SAFETY: as above.
        let frame2: [u64; 2] =
            unsafe { bpf_probe_read_user(frame1[0] as *const [u64; 2]) }.unwrap_or([0, 0]);
        ret1 = frame1[1];
        ret2 = frame2[1];
    } else {
        bp = 0;
    }
    Some(RawStackCacheKey {
        tid: bpf_get_current_pid_tgid() as u32,
        pad: 0,
        ip: reg(regs, REG_IP).ok()?,
        sp,
        bp,
        ret1,
        ret2,
    })
}

/// How far above the stack pointer a frame pointer may be (see `stack_cache_key`).
const MAX_FRAME_DISTANCE: u64 = 256 * 1024;

/// A fresh stack walk: the id in `STACKS`, or in `STACKS2` (offset by
/// `STACK_ID_OVERFLOW`) when the first map's bucket holds another stack; a negative
/// errno (counted as a loss) when both fail.
#[inline(always)]
fn user_stack_id(ctx: &RawTracePointContext) -> i32 {
    let flags = u64::from(BPF_F_USER_STACK);
    let e = match ctx.get_stackid(&STACKS, flags) {
        Ok(id) => return id as i32,
        Err(e) => e,
    };
    if i64::from(e) == -EEXIST
        && let Ok(id) = ctx.get_stackid(&STACKS2, flags)
    {
        return id as i32 + STACK_ID_OVERFLOW;
    }
    count_loss(if i64::from(e) == -EEXIST {
        Loss::StackCollision
    } else {
        Loss::StackError
    });
    e
}

/// Copy the user registers and up to `USER_STACK_PAGES` pages of user stack (from the
/// page holding `sp`) into `USER_STACKS` under a fresh id. `None` (counted as a loss)
/// when the first page is unreadable or the map is full.
#[inline(always)]
fn copy_user_stack(regs: *const u8, fp_stack_id: i32) -> Option<i32> {
    // SAFETY: a plain read of a global the loader may have rewritten; volatile so the
    // compiler does not fold in the initializer.
    if unsafe { core::ptr::read_volatile(&raw const COPY_USER_STACKS) } == 0 {
        return None;
    }
    let copy = USER_STACK_SCRATCH.get_ptr_mut(0)?;
    let seq = USER_STACK_SEQ.get_ptr_mut(0)?;
    let sp = reg(regs, REG_SP).ok()?;
    // SAFETY: `copy` and `seq` are this CPU's slots of per-CPU arrays; BPF programs
    // run with migration disabled, so nothing else writes them meanwhile.
    let (copy, seq) = unsafe { (&mut *copy, &mut *seq) };
    copy.tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    copy.fp_stack_id = fp_stack_id;
    copy.ip = reg(regs, REG_IP).ok()?;
    copy.sp = sp;
    copy.bp = reg(regs, REG_BP).ok()?;
    copy.pad = 0;
    let base = sp & !4095;
    let mut len = 0u32;
    // Whole pages at constant offsets keep the verifier's bounds simple; a stack's
    // end (the mapping above it) stops the copy at the first unreadable page.
    for page in 0..USER_STACK_PAGES {
        let off = page * 4096;
        // SAFETY: the destination is `data[off..off + 4096]`, inside the map value;
        // the helper validates the user source address.
        let r = unsafe {
            raw_helpers::bpf_probe_read_user(
                copy.data.as_mut_ptr().add(off).cast(),
                4096,
                (base + off as u64) as *const core::ffi::c_void,
            )
        };
        if r != 0 {
            break;
        }
        len += 4096;
    }
    if len == 0 {
        count_loss(Loss::UserStackCopy);
        return None;
    }
    copy.len = len;
    // SAFETY: bpf_get_smp_processor_id has no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let id = DWARF_STACK_ID_BASE | ((cpu & 0x3ff) << 20) as i32 | (*seq & 0xf_ffff) as i32;
    *seq = seq.wrapping_add(1);
    if USER_STACKS.insert(&id, &*copy, u64::from(BPF_ANY)).is_err() {
        count_loss(Loss::UserStackCopy);
        return None;
    }
    Some(id)
}

/// This CPU's stats slot for `key`, created (zeroed, thread name set) on first use.
#[inline(always)]
fn wait_row(key: &RawWaitKey) -> Option<*mut RawWaitStats> {
    if let Some(p) = WAITS.get_ptr_mut(key) {
        return Some(p);
    }
    let zero = ZERO_WAIT.get_ptr(0)?;
    // SAFETY: `zero` points at a live per-CPU array slot the helper only reads.
    if let Err(e) = WAITS.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        count_loss(Loss::WaitMapFull);
        return None;
    }
    let p = WAITS.get_ptr_mut(key)?;
    if let Ok(comm) = bpf_get_current_comm() {
        // SAFETY: `p` is this CPU's slot of the row just created.
        unsafe { (*p).comm = comm };
    }
    Some(p)
}

/// As [`wait_row`], for `WAKES`.
#[inline(always)]
fn wake_row(key: &RawWakeKey) -> Option<*mut RawWakeStats> {
    if let Some(p) = WAKES.get_ptr_mut(key) {
        return Some(p);
    }
    let zero = ZERO_WAKE.get_ptr(0)?;
    // SAFETY: as in `wait_row`.
    if let Err(e) = WAKES.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        count_loss(Loss::WakeMapFull);
        return None;
    }
    let p = WAKES.get_ptr_mut(key)?;
    if let Ok(comm) = bpf_get_current_comm() {
        // SAFETY: as in `wait_row`.
        unsafe { (*p).comm = comm };
    }
    Some(p)
}

/// `futex_waitv`/`futex_requeue` take an array of `struct futex_waitv { u64 val;
/// u64 uaddr; u32 flags; u32 reserved; }`: report the first entry's address.
#[inline(always)]
fn first_waiter_addr(waiters: u64) -> u64 {
    // SAFETY: bpf_probe_read_user validates the user pointer.
    if let Ok(a) = unsafe { bpf_probe_read_user((waiters + 8) as *const u64) } {
        a
    } else {
        count_loss(Loss::UserReadError);
        waiters
    }
}

/// The word at the user stack pointer: the return address into the caller of a
/// frameless leaf like glibc's `syscall()` (validated in userspace), or 0.
#[inline(always)]
fn leaf_return(regs: *const u8) -> u64 {
    let Ok(sp) = reg(regs, REG_SP) else {
        return 0;
    };
    // SAFETY: bpf_probe_read_user validates the user pointer.
    unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0)
}

/// Read one saved register from the syscall's `pt_regs`.
#[inline(always)]
fn reg(regs: *const u8, offset: usize) -> Result<u64, i32> {
    // SAFETY: bpf_probe_read_kernel validates the kernel pointer.
    unsafe { bpf_probe_read_kernel(regs.add(offset).cast::<u64>()) }.map_err(|_| 0)
}

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: bpf_ktime_get_ns has no preconditions; aya marks every helper unsafe.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn count_loss(loss: Loss) {
    if let Some(p) = LOSSES.get_ptr_mut(loss as u32) {
        // SAFETY: this CPU's slot of a per-CPU array; no concurrent writer.
        unsafe { *p += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

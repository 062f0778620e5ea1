//! Entry points of futex calls: the per-syscall tracepoints (the default), and the
//! raw `sys_enter`/`sys_exit` fallback. Both decode the call into (address, op) and
//! hand it to [`wait`](crate::wait) or [`wake`](crate::wake).

use aya_ebpf::{
    EbpfContext as _,
    helpers::bpf_probe_read_user,
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext, tracing::StackIdContext},
};
use profiler_common::{
    CALL_NONE, CALL_WAIT, CALL_WAKE, FUTEX_PRIVATE_FLAG, Loss, nr, op, raw_syscalls,
};

use crate::children;
use crate::holders;
use crate::maps::{count_loss, is_target};
use crate::regs::{REG_DI, REG_ORIG_AX, REG_SI, Regs, current_ids};
use crate::tasks::{task, task_row};
use crate::{wait, wake};

/// [`raw_syscalls`] bits, set by userspace at load time: 0 when the per-syscall
/// tracepoints are used and failures are not counted (the raw programs are then not
/// attached at all).
#[unsafe(no_mangle)]
static RAW_SYSCALLS: u32 = 0;

// Field offsets of `syscalls:sys_{enter,exit}_*` records (see their `format` files):
// the syscall number, then each argument (or the return value) in 8 bytes.
const TP_NR: usize = 8;
const TP_ARG0: usize = 16;
const TP_ARG1: usize = 24;
const TP_RET: usize = 16;

#[tracepoint]
pub fn futex_enter(ctx: TracePointContext) -> u32 {
    enter_if_traced(&ctx);
    0
}

#[tracepoint]
pub fn futex_exit(ctx: TracePointContext) -> u32 {
    exit_if_traced(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    match try_sys_enter(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    match try_sys_exit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

/// The filter, then the record (loaded directly: nothing here can fail).
fn enter_if_traced(ctx: &TracePointContext) {
    // The filter comes before anything else: most futex calls of a machine are not
    // ours.
    let ids = current_ids();
    if !is_target(ids.0) {
        return;
    }
    // SAFETY: fields of the syscalls tracepoint record (8-byte aligned offsets inside
    // it); a tracepoint program may load its context directly, which costs no helper
    // call.
    let (id, arg0, arg1) = unsafe {
        (
            tp_field::<i32>(ctx, TP_NR),
            tp_field::<u64>(ctx, TP_ARG0),
            tp_field::<u64>(ctx, TP_ARG1),
        )
    };
    on_enter(ctx, ids, id as u64, arg0, arg1);
}

fn exit_if_traced(ctx: &TracePointContext) {
    let ids = current_ids();
    if !is_target(ids.0) {
        return;
    }
    // SAFETY: as above.
    let ret = unsafe { tp_field::<i64>(ctx, TP_RET) };
    on_exit(ctx, ids, ret);
}

/// A field of the tracepoint record at `offset`.
///
/// # Safety
/// `offset` must be a field of type `T` inside the record.
#[inline(always)]
unsafe fn tp_field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: per the contract; the verifier checks the access against the record.
    unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
}

/// Every syscall of every process (fallback only): leave at once unless it is a
/// futex call.
fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), ()> {
    let id: u64 = ctx.arg(1);
    if !is_futex(id) {
        return Ok(());
    }
    let ids = current_ids();
    if !is_target(ids.0) {
        return Ok(());
    }
    let regs = Regs::from_ptr(ctx.arg(0));
    on_enter(
        ctx,
        ids,
        id,
        regs.get(REG_DI).map_err(|_| ())?,
        regs.get(REG_SI).map_err(|_| ())?,
    );
    Ok(())
}

/// Every syscall exit of every process: futex exits and clones in the fallback;
/// failed syscalls of traced threads with `--syscall-errors`.
fn try_sys_exit(ctx: &RawTracePointContext) -> Result<(), ()> {
    // SAFETY: a plain read of a global the loader may have rewritten.
    let mode = unsafe { core::ptr::read_volatile(&raw const RAW_SYSCALLS) };
    let ret: i64 = ctx.arg(1);
    if mode & raw_syscalls::FUTEX == 0 && ret >= 0 {
        return Ok(());
    }
    let regs = Regs::from_ptr(ctx.arg(0));
    let id = regs.get(REG_ORIG_AX).map_err(|_| ())?;
    if is_futex(id) {
        let ids = current_ids();
        if mode & raw_syscalls::FUTEX != 0 && is_target(ids.0) {
            on_exit(ctx, ids, ret);
        }
    } else if mode & raw_syscalls::FUTEX != 0
        && matches!(id, nr::CLONE | nr::FORK | nr::VFORK | nr::CLONE3)
        && ret > 0
    {
        children::follow_clone(regs, id, ret);
    } else if ret < 0 && mode & raw_syscalls::FAILURES != 0 {
        holders::note_failure(id, ret);
    }
    Ok(())
}

#[inline(always)]
fn is_futex(id: u64) -> bool {
    matches!(
        id,
        nr::FUTEX | nr::FUTEX_WAIT | nr::FUTEX_WAITV | nr::FUTEX_WAKE | nr::FUTEX_REQUEUE
    )
}

/// A futex call of a traced thread (`ids`: tgid, tid) enters: its row is found with
/// one lookup (created at its first call). Untraced threads stopped at the target bit.
#[inline(always)]
pub fn on_enter<C: StackIdContext>(ctx: &C, ids: (u32, u32), id: u64, arg0: u64, arg1: u64) {
    let Some(task) = task_row(ids.1) else {
        return;
    };
    let (is_wait, fop, uaddr) = match id {
        nr::FUTEX => {
            let fop = arg1 as u32 & op::FUTEX_CMD_MASK;
            if op::is_wait(fop) {
                (true, fop, arg0)
            } else if op::is_wake(fop) {
                (false, fop, arg0)
            } else {
                return;
            }
        }
        nr::FUTEX_WAIT => (true, op::FUTEX2_WAIT, arg0),
        nr::FUTEX_WAITV => (true, op::FUTEX2_WAITV, first_waiter_addr(arg0)),
        nr::FUTEX_WAKE => (false, op::FUTEX2_WAKE, arg0),
        nr::FUTEX_REQUEUE => (false, op::FUTEX2_REQUEUE, first_waiter_addr(arg0)),
        _ => return,
    };
    // Shared between processes unless private (the futex2 calls count as private:
    // their flags are not decoded).
    let shared = id == nr::FUTEX && arg1 as u32 & FUTEX_PRIVATE_FLAG == 0;
    // SAFETY: the row lives until this thread exits; only this thread writes its
    // call fields (`sched_switch` of the same thread cannot run concurrently).
    let task = unsafe { &mut *task };
    if is_wait {
        wait::begin(task, uaddr, fop, shared);
    } else {
        wake::begin(ctx, ids, task, uaddr, fop, shared);
    }
}

/// A futex call of a traced thread returns `ret`: its row (one lookup) holds the call
/// its entry recorded, finished here.
#[inline(always)]
pub fn on_exit<C: StackIdContext>(ctx: &C, (tgid, tid): (u32, u32), ret: i64) {
    let Some(task) = task(tid) else {
        return;
    };
    // SAFETY: as in `on_enter`.
    let task = unsafe { &mut *task };
    let call = task.call;
    task.call = CALL_NONE;
    if call & CALL_WAIT != 0 {
        wait::finish(ctx, (tgid, tid), task, call, ret);
    } else if call & CALL_WAKE != 0 {
        wake::finish((tgid, tid), task, call, ret);
    }
}

/// `futex_waitv`/`futex_requeue` take an array of `struct futex_waitv { u64 val;
/// u64 uaddr; u32 flags; u32 reserved; }`: the first entry's address (the one user
/// memory read of such a call), or the array's address when unreadable (counted).
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

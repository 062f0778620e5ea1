//! Holder tracking: when traced threads leave and regain a CPU, and (with
//! `--syscall-errors`) their failed syscalls, so that a waker's "held across
//! blocking" can be measured over its waiters' windows.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use profiler_common::{
    CALL_WAIT, OFF_NO_SYSCALL, OFF_RUNNABLE, OFF_SPANS, RawOffSpan, RawThreadState, nr, op,
};

use crate::maps::{LAST_SWITCH, is_target};
use crate::regs::{REG_ORIG_AX, TaskRegs, current_ids, now_ns, task_pid, task_tgid};
use crate::tasks::task_row;

#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    match try_sched_switch(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

/// Context switch (system-wide). The filter first: the tasks leaving and taking the
/// CPU, one target bit each — a switch between untraced tasks (most of a machine's)
/// does nothing else. Otherwise stamp the switch time in the CPU's slot when a traced
/// task takes the CPU (the slot then says when the task running there got it), and
/// when a traced thread leaves, close its previous off-CPU period and open a new one.
fn try_sched_switch(ctx: &BtfTracePointContext) -> Result<i32, i32> {
    // TP_PROTO(bool preempt, prev, next, unsigned int prev_state). The ids are read
    // from the task structs, not with `bpf_get_current_pid_tgid` (a helper call every
    // switch of the machine pays: 15–25 ns per run here, measured).
    let prev: *const u8 = ctx.arg(1);
    let next: *const u8 = ctx.arg(2);
    let (tgid, tid) = (task_tgid(prev), task_pid(prev));
    let leaving = tid != 0 && is_target(tgid);
    let next_tgid = task_tgid(next);
    let taking = next_tgid != 0 && is_target(next_tgid);
    if !leaving && !taking {
        return Ok(0);
    }
    let now = now_ns();
    let slot = LAST_SWITCH.get_ptr_mut(0).ok_or(0)?;
    // SAFETY: this CPU's slot of a per-CPU array; no concurrent writer. The slot was
    // last stamped when a traced task took this CPU: if the leaving task is traced,
    // that was its own switch-in.
    let switched_in = unsafe { *slot };
    if taking {
        // SAFETY: as above.
        unsafe { *slot = now };
    }
    if !leaving {
        return Ok(0);
    }
    let task = task_row(tid).ok_or(0)?;
    // SAFETY: the row lives until the thread exits (see below); its call fields are
    // only written by the thread itself, which is here.
    let (call, fop) = unsafe { ((*task).call, (*task).op) };
    // SAFETY: as above.
    unsafe {
        // A wait leaving the CPU for the first time: its time counts from here (see
        // `wait::begin`).
        if call & CALL_WAIT != 0 && (*task).wait_from_ns == 0 {
            (*task).wait_from_ns = now;
        }
    }
    // SAFETY: the row lives until the thread exits, which cannot happen while it is
    // being switched out here.
    let state = unsafe { &mut (*task).holder };
    close_off_span(state, switched_in);
    let preempt: u64 = ctx.arg(0);
    let prev_state: u64 = ctx.arg(3);
    state.off_start_ns = now;
    // A preempted or still-running (TASK_RUNNING == 0) task is waiting for a CPU, not
    // blocked.
    state.off_nr = if preempt & 0xff != 0 || prev_state as u32 == 0 {
        OFF_RUNNABLE
    } else if call & CALL_WAIT != 0 {
        // Blocking in the futex wait its row records (most switches of a traced
        // thread): the syscall is known without reading its registers.
        futex_wait_nr(fop)
    } else {
        current_syscall()
    };
    state.off_fails = state.fails;
    Ok(0)
}

/// The syscall number of a futex wait with operation `fop` (see `RawTask::op`).
#[inline(always)]
fn futex_wait_nr(fop: u32) -> u32 {
    (match fop {
        op::FUTEX2_WAIT => nr::FUTEX_WAIT,
        op::FUTEX2_WAITV => nr::FUTEX_WAITV,
        _ => nr::FUTEX,
    }) as u32
}

/// The syscall the current task is in, from its user `pt_regs` (`orig_ax`).
#[inline(always)]
fn current_syscall() -> u32 {
    match TaskRegs::current().get(REG_ORIG_AX) {
        n if (n as i64) >= 0 && n < 1024 => n as u32,
        _ => OFF_NO_SYSCALL,
    }
}

/// When the task running on this CPU got it, if traced and holder tracking is on
/// (else 0, or an earlier traced task's switch-in, older than anything the caller
/// compares it with).
#[inline(always)]
pub fn switched_in() -> Option<u64> {
    LAST_SWITCH.get(0).copied()
}

/// The thread is running again (it got this CPU at the CPU's last stamped switch,
/// its own): its open off-CPU period, if any, ended then; push it into the ring.
#[inline(always)]
pub fn on_cpu_again(state: &mut RawThreadState) {
    if state.off_start_ns == 0 {
        return;
    }
    if let Some(&switched_in) = LAST_SWITCH.get(0) {
        close_off_span(state, switched_in);
    }
}

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

/// A traced thread's non-futex syscall `nr` failed with `ret` (`--syscall-errors`):
/// count it (a holder retrying a failing write under a lock shows up as failures
/// inside its waiters' windows).
#[inline(always)]
pub fn note_failure(nr: u64, ret: i64) {
    let (tgid, tid) = current_ids();
    if !is_target(tgid) {
        return;
    }
    let Some(task) = task_row(tid) else {
        return;
    };
    // SAFETY: as in `try_sched_switch`.
    let state = unsafe { &mut (*task).holder };
    state.fails = state.fails.wrapping_add(1);
    state.last_fail_nr = nr as u32;
    state.last_fail_errno = ret.unsigned_abs() as u32;
}

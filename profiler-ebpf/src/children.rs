//! Following processes: forked children of launched commands (never threads, which
//! share their process's tgid and are traced through it), and dropping a thread's
//! row when it exits.

use aya_ebpf::{
    bindings::BPF_ANY,
    helpers::bpf_probe_read_user,
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use profiler_common::{CALL_EXITED, Loss, nr, target_flags};

use crate::maps::{TARGETS, count_loss, is_target, note_followed, set_target_bit};
use crate::regs::{REG_DI, Regs, current_ids};
use crate::tasks::task;

const CLONE_THREAD: u64 = 0x0001_0000;

// `task:task_newtask` record: `pid_t pid` at 8, `u64 clone_flags` at 32.
const TP_NEWTASK_PID: usize = 8;
const TP_NEWTASK_FLAGS: usize = 32;

#[tracepoint]
pub fn task_newtask(ctx: TracePointContext) -> u32 {
    match try_task_newtask(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    // The exiting task is current. A traced thread's row is marked, not deleted: a
    // waiter it woke may not have returned yet and reads its row to learn what the
    // holder did (see `CALL_EXITED`); userspace deletes it later. Any other thread
    // stops at the target bit.
    let (tgid, tid) = current_ids();
    if is_target(tgid)
        && let Some(row) = task(tid)
    {
        // SAFETY: a live map value; only this (exiting) thread writes its own row.
        unsafe { (*row).call = CALL_EXITED };
    }
    0
}

/// A task was created (in its parent's context): a new process of a followed
/// process is traced too. Threads (`CLONE_THREAD`) stop at the flag test.
fn try_task_newtask(ctx: &TracePointContext) -> Result<(), ()> {
    // SAFETY: offsets of the tracepoint record; the helper bounds-checks.
    let flags = unsafe { ctx.read_at::<u64>(TP_NEWTASK_FLAGS) }.map_err(|_| ())?;
    if flags & CLONE_THREAD != 0 {
        return Ok(());
    }
    // SAFETY: as above.
    let child = unsafe { ctx.read_at::<i32>(TP_NEWTASK_PID) }.map_err(|_| ())?;
    follow(child as u32);
    Ok(())
}

/// Trace `child` if the current process follows its children.
#[inline(always)]
fn follow(child: u32) {
    let tgid = current_ids().0;
    if !is_target(tgid) {
        return;
    }
    // SAFETY: the value is copied out immediately.
    let Some(flags) = (unsafe { TARGETS.get(tgid) }).copied() else {
        return;
    };
    if flags & target_flags::FOLLOW_CHILDREN == 0 {
        return;
    }
    if TARGETS.insert(child, flags, u64::from(BPF_ANY)).is_err() {
        count_loss(Loss::TargetMapFull);
    } else {
        set_target_bit(child);
        note_followed();
    }
}

/// Fallback (raw `sys_exit`, no tracefs): a clone returned `child` in the parent;
/// follow it unless it is a thread.
#[inline(always)]
pub fn follow_clone(regs: Regs, id: u64, child: i64) {
    let clone_flags = match id {
        nr::CLONE => regs.get(REG_DI).unwrap_or(0),
        // clone3's first argument points at `struct clone_args`, whose first field is
        // the flags word.
        nr::CLONE3 => {
            let Ok(args) = regs.get(REG_DI) else {
                return;
            };
            // SAFETY: bpf_probe_read_user validates the user pointer.
            if let Ok(f) = unsafe { bpf_probe_read_user(args as *const u64) } {
                f
            } else {
                count_loss(Loss::UserReadError);
                return;
            }
        }
        _ => 0,
    };
    if clone_flags & CLONE_THREAD == 0 {
        follow(child as u32);
    }
}

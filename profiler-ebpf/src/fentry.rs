//! Futex calls hooked with fentry/fexit on the kernel's syscall functions
//! (`__x64_sys_futex`, …): where the kernel allows it, the cheapest hook there is. An
//! enabled syscall tracepoint puts every task of the machine on the kernel's
//! syscall-tracing slow path for every syscall; a BPF trampoline patches only the
//! hooked function, so no other syscall, traced process or not, pays anything.
//!
//! Owns: the fentry/fexit entry points, one pair per futex syscall (a tracing
//! program is bound to one kernel function when it is loaded), and reading the
//! call's arguments from the `pt_regs` the syscall function is handed. Must not: do
//! anything past the target filter that the tracepoint path does not do — both hand
//! the call to [`futex`](crate::futex)'s `on_enter`/`on_exit`.

use aya_ebpf::{
    macros::{fentry, fexit},
    programs::{FEntryContext, FExitContext},
};
use profiler_common::nr;

use crate::futex::{on_enter, on_exit};
use crate::maps::is_target;
use crate::regs::{REG_DI, REG_SI, TaskRegs, current_ids};

/// One fentry/fexit pair for the syscall function of `$nr`.
macro_rules! futex_hooks {
    ($enter:ident, $exit:ident, $nr:expr) => {
        #[fentry]
        pub fn $enter(ctx: FEntryContext) -> u32 {
            enter_if_traced(&ctx, $nr);
            0
        }

        #[fexit]
        pub fn $exit(ctx: FExitContext) -> u32 {
            exit_if_traced(&ctx);
            0
        }
    };
}

futex_hooks!(fentry_futex, fexit_futex, nr::FUTEX);
futex_hooks!(fentry_futex_wait, fexit_futex_wait, nr::FUTEX_WAIT);
futex_hooks!(fentry_futex_waitv, fexit_futex_waitv, nr::FUTEX_WAITV);
futex_hooks!(fentry_futex_wake, fexit_futex_wake, nr::FUTEX_WAKE);
futex_hooks!(fentry_futex_requeue, fexit_futex_requeue, nr::FUTEX_REQUEUE);

/// The filter first, then the call's first two arguments from the user registers the
/// syscall function was handed (its only argument: `const struct pt_regs *`).
#[inline(always)]
fn enter_if_traced(ctx: &FEntryContext, id: u64) {
    let ids = current_ids();
    if !is_target(ids.0) {
        return;
    }
    let regs = TaskRegs::from_btf_arg(ctx.arg(0));
    on_enter(ctx, ids, id, regs.get(REG_DI), regs.get(REG_SI));
}

/// The filter, then the syscall function's return value (the argument after its
/// only parameter: no helper call).
#[inline(always)]
fn exit_if_traced(ctx: &FExitContext) {
    let ids = current_ids();
    if !is_target(ids.0) {
        return;
    }
    on_exit(ctx, ids, ctx.arg::<i64>(1));
}

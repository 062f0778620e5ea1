//! Futex waits: stamped at entry, counted at exit — one that returned `EAGAIN` in its
//! tally slot when it has one ([`tally`](crate::tally)).

use aya_ebpf::programs::tracing::StackIdContext;
use profiler_common::{
    CALL_REWAIT, CALL_SHARED, CALL_WAIT, HIST_BUCKETS, RawTallyKey, RawTask, RawWaitKey,
    RawWaitStats, STACK_NOT_WALKED, TALLY_EAGAIN, hist_bucket,
};

use crate::holders;
use crate::maps::{bump, drain_gen, raise, wait_row};
use crate::pairing;
use crate::regs::{TaskRegs, now_ns};
use crate::stacks;
use crate::tally;

const EAGAIN: i64 = 11;
const ETIMEDOUT: i64 = 110;
const EINTR: i64 = 4;
// Kernel-internal restart codes a signal-interrupted wait returns at syscall exit.
const ERESTARTSYS: i64 = 512;
const ERESTART_RESTARTBLOCK: i64 = 516;

/// See [`GLOBAL_WAIT_START_AT_SWITCH`](profiler_common::GLOBAL_WAIT_START_AT_SWITCH):
/// set by userspace at load time when `sched_switch` is attached.
#[unsafe(no_mangle)]
static WAIT_START_AT_SWITCH: u32 = 0;

/// A traced thread enters a wait on `uaddr` (`shared`: not process-private): stamp
/// its row (no other map work). With holder tracking the clock is not read here: a
/// wait that blocks is timed from its switch-out ([`holders`]), and most waits of a
/// busy daemon return `EAGAIN` without needing a time at all.
#[inline(always)]
pub fn begin(task: &mut RawTask, uaddr: u64, fop: u32, shared: bool) {
    // SAFETY: a plain read of a global the loader may have rewritten; volatile so the
    // compiler does not fold in the initializer.
    if unsafe { core::ptr::read_volatile(&raw const WAIT_START_AT_SWITCH) } != 0 {
        // A bound below the entry without the clock: this thread's switch-in stamp (a
        // per-CPU slot), or its previous futex call's start if later — a thread that
        // wakes and then waits (a hand-off) has its own wake's time there, so its own
        // wakes and the ones before them never pass for its waker.
        let switched_in = holders::switched_in().unwrap_or(0);
        if switched_in > task.start_ns {
            task.start_ns = switched_in;
        }
        task.wait_from_ns = 0;
    } else {
        task.start_ns = now_ns();
        task.wait_from_ns = task.start_ns;
    }
    task.uaddr = uaddr;
    task.op = fop;
    // Woken from this futex by its previous wait and not released since: if this
    // wait blocks, that wakeup was wasted.
    task.call = if task.woken_uaddr == uaddr {
        CALL_WAIT | CALL_REWAIT
    } else {
        CALL_WAIT
    };
    if shared {
        task.call |= CALL_SHARED;
    }
}

/// The wait in `task` (thread `tid` of `tgid`) returned `ret`; `call` is what its
/// entry recorded.
#[inline(always)]
pub fn finish<C: StackIdContext>(
    ctx: &C,
    (tgid, tid): (u32, u32),
    task: &mut RawTask,
    call: u32,
    ret: i64,
) {
    let regs = TaskRegs::current();
    if ret == -EAGAIN {
        // The fast path (memcached: most of its waits): the futex word had changed,
        // nothing blocked. Counted on the call position's row if the thread's stack
        // cache knows it, else on the address alone — never a stack walk; in its
        // tally slot when it has one, else in its hash row.
        let site = stacks::cached_site(regs, tid, &mut task.wait_site);
        let stack_id = site.map_or(STACK_NOT_WALKED, |s| s.stack_id);
        let leaf_ret = site.map_or(0, |s| s.leaf_ret);
        if tally::count(&RawTallyKey {
            tgid,
            tid,
            uaddr: task.uaddr,
            leaf_ret,
            stack_id,
            op: task.op,
            kind: TALLY_EAGAIN,
            pad: 0,
        }) {
            return;
        }
        let key = RawWaitKey {
            tgid,
            tid,
            uaddr: task.uaddr,
            stack_id,
            op: task.op,
            leaf_ret,
            generation: drain_gen(),
            pad: 0,
        };
        if let Some(stats) = wait_row(&key) {
            // SAFETY: a field of a live map value.
            bump(unsafe { &raw mut (*stats).eagain }, 1);
        }
        return;
    }
    // A wait that blocked ended when the thread got a CPU again: its switch-in,
    // stamped by holder tracking, saves a clock read. Without holder tracking, or
    // when the wait did not switch out (woken before it slept), the clock. Timed
    // from its switch-out (see `begin`), a wait that never left the CPU — woken
    // between queueing and sleeping, or failed before it slept — waited no time
    // (`from` 0).
    let from = task.wait_from_ns;
    let now = holders::switched_in()
        .filter(|&t| from != 0 && t > from)
        .unwrap_or_else(now_ns);
    let waited = if from == 0 {
        0
    } else {
        now.saturating_sub(from)
    };
    holders::on_cpu_again(&mut task.holder);
    let site = stacks::site(ctx, regs, (tgid, tid), &mut task.wait_site);
    let key = RawWaitKey {
        tgid,
        tid,
        uaddr: task.uaddr,
        stack_id: site.stack_id,
        op: task.op,
        leaf_ret: site.leaf_ret,
        // Also the generation of the edge and blame rows this run counts.
        generation: drain_gen(),
        pad: 0,
    };
    let Some(stats) = wait_row(&key) else {
        return;
    };
    match ret {
        // futex_waitv returns the index of the futex that woke it.
        r if r >= 0 => {
            count_blocked(stats, waited, call & CALL_REWAIT != 0);
            if !pairing::record_edge(&key, task.start_ns, from, waited, call & CALL_SHARED != 0) {
                // SAFETY: a field of a live map value.
                bump(unsafe { &raw mut (*stats).unpaired }, 1);
            }
            task.woken_uaddr = task.uaddr;
            // For a lock: when this thread acquired it.
            task.holder.acquired_uaddr = task.uaddr;
            task.holder.acquired_ns = now;
        }
        r if r == -ETIMEDOUT => {
            // SAFETY: fields of a live map value.
            unsafe {
                bump(&raw mut (*stats).timedout, 1);
                bump(&raw mut (*stats).timedout_ns, waited);
            }
        }
        r if r == -EINTR || (-ERESTART_RESTARTBLOCK..=-ERESTARTSYS).contains(&r) => {
            // SAFETY: a field of a live map value.
            bump(unsafe { &raw mut (*stats).interrupted }, 1);
        }
        // SAFETY: a field of a live map value.
        _ => bump(unsafe { &raw mut (*stats).other_err }, 1),
    }
}

/// Fold one blocked wait into its row.
#[inline(always)]
fn count_blocked(stats: *mut RawWaitStats, waited: u64, rewait: bool) {
    // SAFETY: `stats` is a live map value only this thread writes (see `bump`).
    unsafe {
        let s = &raw mut *stats;
        if (*s).blocked == 0 || waited < (*s).min_ns {
            (*s).min_ns = waited;
        }
        raise(&raw mut (*s).max_ns, waited);
        bump(&raw mut (*s).blocked, 1);
        bump(&raw mut (*s).total_ns, waited);
        let b = hist_bucket(waited);
        if b < HIST_BUCKETS {
            bump(&raw mut (*s).hist[b], 1);
        }
        if rewait {
            bump(&raw mut (*s).rewaits, 1);
        }
    }
}

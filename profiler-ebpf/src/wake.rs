//! Futex wakes: announced at entry, before the kernel can make any waiter runnable,
//! in the futex's wakes-in-flight slot (an array slot: no hashing); at exit, when the
//! number woken is known, pushed on the futex's ring if it woke somebody, withdrawn
//! from its slot if not, and counted. Most wakes of a busy daemon wake nobody
//! (memcached: 95 %): they never touch the ring's hash map, and are counted in their
//! tally slot ([`tally`](crate::tally)) rather than their hash row — as are wakes that
//! woke one waiter (a lock handed off).

use aya_ebpf::programs::tracing::StackIdContext;
use profiler_common::{
    CALL_SHARED, CALL_WAKE, RawLastWake, RawTallyKey, RawTask, RawWakeKey, TALLY_WOKE_NONE,
    TALLY_WOKE_ONE,
};

use crate::holders;
use crate::maps::{bump, drain_gen, wake_row};
use crate::regs::{TaskRegs, now_ns};
use crate::ring;
use crate::shared::futex_key;
use crate::stacks;
use crate::tally;

/// A traced thread (`ids`: tgid, tid) enters a wake on `uaddr` (`shared`: not
/// process-private).
#[inline(always)]
pub fn begin<C: StackIdContext>(
    ctx: &C,
    (tgid, tid): (u32, u32),
    task: &mut RawTask,
    uaddr: u64,
    fop: u32,
    shared: bool,
) {
    let now = now_ns();
    let site = stacks::site(ctx, TaskRegs::current(), (tgid, tid), &mut task.wake_site);
    // Its waiters read its off-CPU periods: close the one it just ended.
    holders::on_cpu_again(&mut task.holder);
    task.start_ns = now;
    task.uaddr = uaddr;
    task.op = fop;
    task.call = if shared {
        CALL_WAKE | CALL_SHARED
    } else {
        CALL_WAKE
    };
    task.wake_stack_id = site.stack_id;
    task.wake_leaf_ret = site.leaf_ret;
    // Waking on the address it was woken from means the thread got past it (it took
    // the lock and is releasing it): its next wait there is not a wasted wakeup.
    if task.woken_uaddr == uaddr {
        task.woken_uaddr = 0;
    }
    task.wake_slot = ring::announce(
        &futex_key(tgid, uaddr, shared),
        &last_wake((tgid, tid), task),
    );
}

/// The wake in `task` (thread `tid` of `tgid`) returned `ret` (threads woken or
/// requeued, or an error); `call` is what its entry recorded.
#[inline(always)]
pub fn finish((tgid, tid): (u32, u32), task: &RawTask, call: u32, ret: i64) {
    if ret > 0 {
        let key = futex_key(tgid, task.uaddr, call & CALL_SHARED != 0);
        ring::push(&key, &last_wake((tgid, tid), task));
    } else {
        ring::withdraw(task.wake_slot, tid, task.start_ns);
    }
    // The fast path (memcached: 95 % of its wakes woke nobody), and a lock's
    // release (woke one): counted in their tally slot when they have one.
    let kind = match ret {
        0 => TALLY_WOKE_NONE,
        1 => TALLY_WOKE_ONE,
        _ => 0,
    };
    if kind != 0
        && tally::count(&RawTallyKey {
            tgid,
            tid,
            uaddr: task.uaddr,
            leaf_ret: task.wake_leaf_ret,
            stack_id: task.wake_stack_id,
            op: task.op,
            kind,
            pad: 0,
        })
    {
        return;
    }
    let key = RawWakeKey {
        tgid,
        tid,
        uaddr: task.uaddr,
        stack_id: task.wake_stack_id,
        op: task.op,
        leaf_ret: task.wake_leaf_ret,
        generation: drain_gen(),
        pad: 0,
    };
    let Some(stats) = wake_row(&key) else {
        return;
    };
    // SAFETY: fields of a live map value.
    unsafe {
        bump(&raw mut (*stats).calls, 1);
        match ret.cmp(&0) {
            core::cmp::Ordering::Less => bump(&raw mut (*stats).errors, 1),
            core::cmp::Ordering::Equal => bump(&raw mut (*stats).woke_none, 1),
            core::cmp::Ordering::Greater => {
                bump(&raw mut (*stats).woken, ret as u64);
                if ret > 1 {
                    bump(&raw mut (*stats).woke_many, 1);
                }
            }
        }
    }
}

/// What waiters learn of the wake in progress in `task`: entered when, from where,
/// and the waker's failed syscalls so far (its own row: none of them happen during
/// the futex call, so entry and exit agree).
#[inline(always)]
fn last_wake((tgid, tid): (u32, u32), task: &RawTask) -> RawLastWake {
    RawLastWake {
        ts_ns: task.start_ns,
        leaf_ret: task.wake_leaf_ret,
        tid,
        stack_id: task.wake_stack_id,
        fails: task.holder.fails,
        fail_nr: task.holder.last_fail_nr,
        fail_errno: task.holder.last_fail_errno,
        tgid,
        // Set by `ring` for the futex it is written under.
        tag: 0,
    }
}

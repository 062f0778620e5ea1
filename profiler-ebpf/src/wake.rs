//! Futex wakes: the last-wake record is written at entry, before the kernel can
//! make any waiter runnable, so a waiter never pairs with the previous wake; the
//! call is counted at exit, when the number woken is known.

use aya_ebpf::programs::tracing::StackIdContext;
use profiler_common::{CALL_WAKE, Loss, RawLastWake, RawTask, RawWakeKey};

use aya_ebpf::bindings::BPF_ANY;

use crate::holders;
use crate::maps::{LAST_WAKE, add, addr_key, count_loss, wake_row};
use crate::regs::{Regs, now_ns};
use crate::stacks;

/// A traced thread enters a wake on `uaddr`.
#[inline(always)]
pub fn begin<C: StackIdContext>(
    ctx: &C,
    (tgid, tid): (u32, u32),
    task: &mut RawTask,
    uaddr: u64,
    fop: u32,
) {
    let now = now_ns();
    let site = stacks::site(ctx, Regs::current(), &mut task.wake_site);
    holders::on_cpu_again(&mut task.holder);
    task.start_ns = now;
    task.uaddr = uaddr;
    task.op = fop;
    task.call = CALL_WAKE;
    task.wake_stack_id = site.stack_id;
    task.wake_leaf_ret = site.leaf_ret;
    // Waking on the address it was woken from means the thread got past it (it took
    // the lock and is releasing it): its next wait there is not a wasted wakeup.
    if task.woken_uaddr == uaddr {
        task.woken_uaddr = 0;
    }
    let last = RawLastWake {
        ts_ns: now,
        leaf_ret: site.leaf_ret,
        tid,
        stack_id: site.stack_id,
        fails: task.holder.fails,
        fail_nr: task.holder.last_fail_nr,
        fail_errno: task.holder.last_fail_errno,
        pad: 0,
    };
    let key = addr_key(tgid, uaddr);
    // Overwrite the address's record in place when there is one: an LRU insert
    // allocates a node and frees the old one, several times the cost. (A waiter
    // reading it meanwhile may mix two wakes of this address.)
    if let Some(p) = LAST_WAKE.get_ptr_mut(&key) {
        // SAFETY: a live map value.
        unsafe { *p = last };
    } else if LAST_WAKE.insert(&key, last, u64::from(BPF_ANY)).is_err() {
        count_loss(Loss::LastWakeLost);
    }
}

/// The wake in `task` returned `ret` (threads woken or requeued, or an error).
#[inline(always)]
pub fn finish((tgid, tid): (u32, u32), task: &RawTask, ret: i64) {
    if ret == 0 {
        forget_last_wake(tgid, tid, task);
    }
    let key = RawWakeKey {
        tgid,
        tid,
        uaddr: task.uaddr,
        stack_id: task.wake_stack_id,
        op: task.op,
        leaf_ret: task.wake_leaf_ret,
    };
    let Some(stats) = wake_row(&key) else {
        return;
    };
    // SAFETY: fields of a live map value.
    unsafe {
        add(&raw mut (*stats).calls, 1);
        match ret.cmp(&0) {
            core::cmp::Ordering::Less => add(&raw mut (*stats).errors, 1),
            core::cmp::Ordering::Equal => add(&raw mut (*stats).woke_none, 1),
            core::cmp::Ordering::Greater => {
                add(&raw mut (*stats).woken, ret as u64);
                if ret > 1 {
                    add(&raw mut (*stats).woke_many, 1);
                }
            }
        }
    }
}

/// A wake that woke nobody must not be taken for the waker of a wait that ends
/// later: blank its last-wake record (time 0, which no wait can start before) unless
/// another wake replaced it meanwhile. Blanked in place, not deleted: a delete and the
/// next wake's re-insert cost an LRU node each (≈ 0.3 µs here), the store nothing.
#[inline(always)]
fn forget_last_wake(tgid: u32, tid: u32, task: &RawTask) {
    let key = addr_key(tgid, task.uaddr);
    if let Some(l) = LAST_WAKE.get_ptr_mut(&key) {
        // SAFETY: a live map value; a wake overwriting it between the test and the
        // store is lost to pairing, as with a delete.
        unsafe {
            if (*l).tid == tid && (*l).ts_ns == task.start_ns {
                (*l).ts_ns = 0;
            }
        }
    }
}

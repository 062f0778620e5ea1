//! Pairing a finished wait with the wake that ended it: the last wake on the same
//! address, if it came during the wait. The pair is folded into `EDGES` with what the
//! waker ("holder") did during the wait and how long the waiter took to get a CPU.

use profiler_common::{
    Loss, OFF_SLOTS, OFF_SPANS, RawEdgeKey, RawEdgeStats, RawLastWake, RawThreadState, RawWaitKey,
};

use crate::blame;
use crate::maps::{LAST_SWITCH, add, count_loss, edge_row, raise};
use crate::ring;
use crate::shared::futex_key;
use crate::tasks::task;

/// Pair `waiter` (which entered after `since`, waited `waited` ns counted from
/// `from` — 0 if it never left the CPU; `shared`: on a futex not private to its
/// process) with its waker, of any traced process: the newest wake entered since
/// — in the futex's ring, or still in flight (its waiter can return before it does).
/// Returns whether a waker was found.
#[inline(always)]
pub fn record_edge(waiter: &RawWaitKey, since: u64, from: u64, waited: u64, shared: bool) -> bool {
    let at = futex_key(waiter.tgid, waiter.uaddr, shared);
    let wakes = ring::find(&at);
    let pushed = wakes.and_then(|r| ring::newest(r, &at));
    // Not in the ring yet: the wake that woke this waiter had not returned. (It is
    // also there once it has: then both are the same wake.)
    let flying = ring::in_flight(&at).filter(|f| pushed.is_none_or(|p| f.ts_ns > p.ts_ns));
    let Some(last) = flying.or(pushed) else {
        return false;
    };
    // A thread never wakes itself: its own wake newest means the one that woke it
    // was lost (its in-flight slot taken by another futex's wake before it returned).
    if last.ts_ns < since || last.tid == waiter.tid {
        return false;
    }
    // The window the waker's doings are measured over: from when the wait is counted
    // (its waker may have entered just before the thread left the CPU), empty for a
    // wait that never left it.
    let started = if from == 0 || from > last.ts_ns {
        last.ts_ns
    } else {
        from
    };
    let charge = blame::charge(wakes, &at, flying.as_ref(), waiter, started, &last);
    let key = RawEdgeKey {
        tgid: waiter.tgid,
        waiter_stack_id: waiter.stack_id,
        waker_stack_id: last.stack_id,
        waker_tid: last.tid,
        waiter_leaf_ret: waiter.leaf_ret,
        waker_leaf_ret: last.leaf_ret,
        waker_tgid: last.tgid,
        generation: waiter.generation,
    };
    let Some(edge) = edge_row(&key) else {
        if let Some(c) = charge {
            c.flush();
        }
        return true;
    };
    // SAFETY: fields of a live map value.
    unsafe {
        add(&raw mut (*edge).waits, 1);
        add(&raw mut (*edge).wait_ns, waited);
        // The rare outcome is the one counted (an interval per wait otherwise): one
        // bus-locked add less for most blocked waits.
        match charge {
            Some(c) => add(&raw mut (*edge).blame_ns, c.ns),
            None => add(&raw mut (*edge).unblamed, 1),
        }
    }
    // The waiter is running now; it got this CPU at the CPU's last switch.
    match LAST_SWITCH.get(0) {
        Some(&on_cpu) if on_cpu >= last.ts_ns => {
            let latency = on_cpu - last.ts_ns;
            // SAFETY: fields of a live map value.
            unsafe {
                add(&raw mut (*edge).wake_to_run_ns, latency);
                raise(&raw mut (*edge).wake_to_run_max_ns, latency);
            }
        }
        // SAFETY: a field of a live map value. Not measured: counted as such, the
        // rare case (see `RawEdgeStats::wake_to_run_missed`).
        _ => add(unsafe { &raw mut (*edge).wake_to_run_missed }, 1),
    }
    if let Some(waker) = task(last.tid) {
        // SAFETY: read in place; the waker's row is only read here.
        add_holder_window(
            edge,
            unsafe { &(*waker).holder },
            waiter.uaddr,
            started,
            &last,
        );
    } else {
        // The waker's row is gone (it exited, or its row could not be created): what
        // it did in the window is unknown — never assume it stayed on CPU.
        count_loss(Loss::HolderWindowLost);
    }
    true
}

/// Fold the waker's off-CPU periods and failed syscalls that fall inside the window
/// `[started, last.ts_ns]` into the edge, the window starting later if the waker got
/// the lock (returned from its own wait on the same address) after `started`.
#[inline(always)]
fn add_holder_window(
    edge: *mut RawEdgeStats,
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
    // SAFETY: fields of a live map value.
    add(unsafe { &raw mut (*edge).window_ns }, end - started);
    // Failures before the window are excluded by starting from the count at the first
    // off-CPU period after `started` (a lower bound when failures came before it).
    let mut fails_at_start = last.fails;
    let newest = holder.next_span.wrapping_sub(1);
    for i in 0..OFF_SPANS {
        // Newest first: a thread's periods are closed in time order, so once one ended
        // before the window began every older one did too (an unused slot ends at 0)
        // — most windows overlap one or two periods of the sixteen kept.
        let span = &holder.spans[newest.wrapping_sub(i as u32) as usize & (OFF_SPANS - 1)];
        if span.end_ns < started {
            break;
        }
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
        // SAFETY: a field of a live map value.
        add(unsafe { &raw mut (*edge).truncated }, 1);
    }
    let fails = last.fails.wrapping_sub(fails_at_start);
    if fails > 0 {
        // SAFETY: fields of a live map value (the last failure is a plain store).
        unsafe {
            add(&raw mut (*edge).fails, u64::from(fails));
            (*edge).fail_nr = last.fail_nr;
            (*edge).fail_errno = last.fail_errno;
        }
    }
}

/// Add off-CPU time in syscall `nr` to the edge's slots (the first free or matching
/// one; the rest counts as "other"). Claiming a free slot is a plain store: two CPUs
/// claiming the same slot at once can mislabel one period.
#[inline(always)]
fn add_off(edge: *mut RawEdgeStats, nr: u32, ns: u64) {
    for i in 0..OFF_SLOTS {
        // SAFETY: a slot of a live map value.
        unsafe {
            let slot = &raw mut (*edge).off[i];
            if (*slot).ns == 0 || (*slot).nr == nr {
                (*slot).nr = nr;
                add(&raw mut (*slot).ns, ns);
                return;
            }
        }
    }
    // SAFETY: a field of a live map value.
    add(unsafe { &raw mut (*edge).off_other_ns }, ns);
}

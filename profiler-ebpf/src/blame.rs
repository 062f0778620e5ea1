//! Holder blame: a finished blocked wait's window `[started, end]` is cut by the
//! wakes on the same futex inside it (the ring, oldest first); each interval is
//! charged in `BLAME` to the wake that ended it — for a lock, the holder that released
//! it then. The chain of waiters released one after another behind a slow holder
//! thus charges the slow holder, not just the last waiter in line that woke this
//! one. Consecutive intervals of the same holder stack are charged at once, so a
//! wait costs one `BLAME` update per distinct holder (at most `WAKE_RING`) — but the
//! last group, the waker's own (most waits have no other), goes to the wait's edge
//! row instead (`RawEdgeStats::blame_ns`): the edge's key names the same waiter and
//! holder stacks, and the blocked wait is spared a hash lookup.

use aya_ebpf::{bindings::BPF_NOEXIST, macros::map, maps::HashMap};
use profiler_common::{
    BLAME_EARLIER, Loss, MAX_BLAME, RawAddrKey, RawBlameKey, RawBlameStats, RawLastWake,
    RawWaitKey, RawWakeRing, WAKE_RING,
};

use crate::maps::{add, count_loss};
use crate::ring;

const EEXIST: i64 = 17;

#[map]
static BLAME: HashMap<RawBlameKey, RawBlameStats> = HashMap::with_max_entries(MAX_BLAME, 0);

/// Charge the window `[started, waker.ts_ns]` of `waiter`'s wait among the wakes of
/// `ring` (returned, oldest first) and then `flying` (the wake still in flight that
/// ended it, when it had not returned yet). The last group of intervals, ended by
/// `waker` (the newest wake, so always the last cut), is not charged here but
/// returned: the caller counts it on its edge row, or gives it to [`Charge::flush`].
#[inline(always)]
pub fn charge(
    ring: Option<*const RawWakeRing>,
    key: &RawAddrKey,
    flying: Option<&RawLastWake>,
    waiter: &RawWaitKey,
    started: u64,
    waker: &RawLastWake,
) -> Option<Charge> {
    let mut cut = Cuts {
        key: RawBlameKey {
            tgid: waiter.tgid,
            waiter_stack_id: waiter.stack_id,
            waiter_leaf_ret: waiter.leaf_ret,
            holder_tgid: 0,
            holder_stack_id: BLAME_EARLIER,
            holder_leaf_ret: 0,
            generation: waiter.generation,
            pad: 0,
        },
        from: started,
        end: waker.ts_ns,
        pending_ns: 0,
        pending: false,
    };
    if let Some(ring) = ring {
        // SAFETY: a live map value, read in place.
        let next = unsafe { (*ring).next };
        // SAFETY: as below.
        let second = unsafe { (*ring).slots[(next as usize + 1) & (WAKE_RING - 1)].ts_ns };
        for j in 0..WAKE_RING {
            // Oldest first: slot `next` is the oldest, `next - 1` the newest.
            let slot = (next as usize + j) & (WAKE_RING - 1);
            // SAFETY: a field of a live map value, read in place.
            let ts = unsafe { (*ring).slots[slot].ts_ns };
            // A wake pushed since `next` was read (the waker of this very wait,
            // returning on another CPU) lands in the oldest's slot: it is the newest,
            // not the oldest, and the window's end already stands for it. Most slots
            // hold wakes from before the window: only the time is read of them (the
            // record, 48 bytes, is copied out only when it may be cut at).
            if (j == 0 && ts > second) || ts == 0 || ts < cut.from || ts > cut.end {
                continue;
            }
            // SAFETY: a slot of a live map value, copied out (and checked whole again:
            // a push may have replaced it since its time was read).
            let wake = unsafe { (*ring).slots[slot] };
            // The oldest wake kept is inside the window and older ones were
            // overwritten: who held the lock before it is unknown. A torn record is
            // left out (its interval goes to the next wake); only wakes inside the
            // window are checked.
            if cut.inside(&wake) && ring::is_of(key, &wake) {
                cut.at(&wake, j == 0 && next > WAKE_RING as u64);
            }
        }
    }
    if let Some(wake) = flying {
        cut.at(wake, false);
    }
    if !cut.pending {
        return None;
    }
    let last = Charge {
        key: cut.key,
        ns: cut.pending_ns,
    };
    if last.key.holder_tgid == waker.tgid
        && last.key.holder_stack_id == waker.stack_id
        && last.key.holder_leaf_ret == waker.leaf_ret
    {
        return Some(last);
    }
    // Not the waker's (a torn ring slot): charged where it belongs.
    last.flush();
    None
}

/// Time of a wait charged to one holder stack, not counted yet.
pub struct Charge {
    key: RawBlameKey,
    pub ns: u64,
}

impl Charge {
    /// Count it in its `BLAME` row.
    #[inline(always)]
    pub fn flush(&self) {
        flush(&self.key, self.ns);
    }
}

/// A window being cut at its wakes, oldest first.
struct Cuts {
    /// The holder of the interval not charged yet.
    key: RawBlameKey,
    /// Where that interval began.
    from: u64,
    end: u64,
    /// Consecutive intervals of `key`'s holder, not charged yet.
    pending_ns: u64,
    pending: bool,
}

impl Cuts {
    /// Whether `wake` falls in what is left of the window.
    #[inline(always)]
    fn inside(&self, wake: &RawLastWake) -> bool {
        wake.ts_ns != 0 && wake.ts_ns >= self.from && wake.ts_ns <= self.end
    }

    /// Cut at `wake` if it is inside the window; `earlier_lost`: wakes before it were
    /// overwritten.
    #[inline(always)]
    fn at(&mut self, wake: &RawLastWake, earlier_lost: bool) {
        if !self.inside(wake) {
            return;
        }
        if !self.pending && earlier_lost {
            flush(&self.key, wake.ts_ns - self.from);
            self.from = wake.ts_ns;
            return;
        }
        let same = self.pending
            && wake.tgid == self.key.holder_tgid
            && wake.stack_id == self.key.holder_stack_id
            && wake.leaf_ret == self.key.holder_leaf_ret;
        if self.pending && !same {
            flush(&self.key, self.pending_ns);
            self.pending_ns = 0;
        }
        self.key.holder_tgid = wake.tgid;
        self.key.holder_stack_id = wake.stack_id;
        self.key.holder_leaf_ret = wake.leaf_ret;
        self.pending_ns += wake.ts_ns - self.from;
        self.pending = true;
        self.from = wake.ts_ns;
    }
}

/// `key`'s row, created on first use; `None` when the map is full.
#[inline(always)]
fn blame_row(key: &RawBlameKey) -> Option<*mut RawBlameStats> {
    if let Some(row) = BLAME.get_ptr_mut(key) {
        return Some(row);
    }
    if let Err(e) = BLAME.insert(key, &RawBlameStats::default(), u64::from(BPF_NOEXIST))
        && i64::from(e) != -EEXIST
    {
        return None;
    }
    BLAME.get_ptr_mut(key)
}

/// Add one interval of `ns` to `key`'s row.
#[inline(always)]
fn flush(key: &RawBlameKey, ns: u64) {
    let Some(row) = blame_row(key) else {
        count_loss(Loss::BlameMapFull);
        return;
    };
    // SAFETY: fields of a live map value.
    unsafe {
        add(&raw mut (*row).intervals, 1);
        add(&raw mut (*row).ns, ns);
    }
}

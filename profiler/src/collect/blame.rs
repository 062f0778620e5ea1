//! The probe's holder blame (`BLAME`, and the waker's own share the probe counts on
//! its `EDGES` row) as owned rows: how much of a waiter stack's wait each holder's
//! release stack ended.
//!
//! Owns: [`BlameRow`] and its decoding. Must not: attribute rows to sites
//! (`analyze::blame` does).

use profiler_common::{BLAME_EARLIER, RawBlameKey, RawBlameStats, RawEdgeKey, RawEdgeStats};
use serde::{Deserialize, Serialize};

/// Wait time of one waiter stack charged to one holder's release stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlameRow {
    /// The waiter's process and stack (as in `EdgeRow`).
    pub tgid: u32,
    pub waiter_stack_id: i32,
    pub waiter_leaf_ret: u64,
    /// The holder's process and the stack of its release (wake) call;
    /// `holder_stack_id == BLAME_EARLIER` for the part of waits whose holders the
    /// kernel's ring no longer held.
    pub holder_tgid: u32,
    pub holder_stack_id: i32,
    pub holder_leaf_ret: u64,
    pub intervals: u64,
    pub ns: u64,
}

impl BlameRow {
    pub fn from_raw(key: &RawBlameKey, stats: &RawBlameStats) -> Self {
        BlameRow {
            tgid: key.tgid,
            waiter_stack_id: key.waiter_stack_id,
            waiter_leaf_ret: key.waiter_leaf_ret,
            holder_tgid: key.holder_tgid,
            holder_stack_id: key.holder_stack_id,
            holder_leaf_ret: key.holder_leaf_ret,
            intervals: stats.intervals,
            ns: stats.ns,
        }
    }

    /// The blame the probe counted on an edge row (`RawEdgeStats::blame_ns`): the
    /// part of its waits charged to the waker itself, the row `BLAME` would have held
    /// for the edge's waiter and waker stacks. `None` when there is none.
    pub fn from_edge(key: &RawEdgeKey, stats: &RawEdgeStats) -> Option<Self> {
        (stats.blame_intervals() > 0).then_some(BlameRow {
            tgid: key.tgid,
            waiter_stack_id: key.waiter_stack_id,
            waiter_leaf_ret: key.waiter_leaf_ret,
            holder_tgid: key.waker_tgid,
            holder_stack_id: key.waker_stack_id,
            holder_leaf_ret: key.waker_leaf_ret,
            intervals: stats.blame_intervals(),
            ns: stats.blame_ns,
        })
    }

    /// As `WaitRow::merge`.
    pub fn merge(&mut self, other: &BlameRow) {
        self.intervals += other.intervals;
        self.ns += other.ns;
    }

    /// Whether the holder is unknown (overwritten in the kernel's ring).
    pub fn earlier(&self) -> bool {
        self.holder_stack_id == BLAME_EARLIER
    }

    /// The holder's stack key, unless unknown.
    pub fn holder_stack(&self) -> Option<(u32, i32)> {
        (!self.earlier()).then_some((self.holder_tgid, self.holder_stack_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_decode_and_merge() {
        let key = RawBlameKey {
            tgid: 1,
            waiter_stack_id: 2,
            waiter_leaf_ret: 3,
            holder_tgid: 4,
            holder_stack_id: 5,
            holder_leaf_ret: 6,
            ..RawBlameKey::default()
        };
        let mut a = BlameRow::from_raw(
            &key,
            &RawBlameStats {
                intervals: 2,
                ns: 10,
            },
        );
        a.merge(&a.clone());
        assert_eq!((a.intervals, a.ns), (4, 20));
        assert_eq!(a.holder_stack(), Some((4, 5)));
        let earlier = BlameRow {
            holder_stack_id: BLAME_EARLIER,
            ..a
        };
        assert!(earlier.earlier() && earlier.holder_stack().is_none());
    }

    #[test]
    fn an_edge_row_carries_its_wakers_own_blame() {
        let key = RawEdgeKey {
            tgid: 1,
            waiter_stack_id: 2,
            waker_stack_id: 5,
            waker_tid: 9,
            waiter_leaf_ret: 3,
            waker_leaf_ret: 6,
            waker_tgid: 4,
            generation: 0,
        };
        let none = RawEdgeStats {
            waits: 3,
            wait_ns: 30,
            unblamed: 3,
            ..RawEdgeStats::default()
        };
        assert_eq!(BlameRow::from_edge(&key, &none), None);
        let some = RawEdgeStats {
            unblamed: 0,
            blame_ns: 25,
            ..none
        };
        // The row `BLAME` would have held: the waiter's stack, the waker's process
        // and release stack (its thread is not part of a blame row).
        assert_eq!(
            BlameRow::from_edge(&key, &some),
            Some(BlameRow {
                tgid: 1,
                waiter_stack_id: 2,
                waiter_leaf_ret: 3,
                holder_tgid: 4,
                holder_stack_id: 5,
                holder_leaf_ret: 6,
                intervals: 3,
                ns: 25,
            })
        );
    }
}

//! Waits over time, per interval.

use serde::{Deserialize, Serialize};

/// The recording cut into consecutive intervals, computed from the difference of
/// cumulative snapshots taken every `interval_ns`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The requested interval length; the last interval (and any tick that ran late)
    /// can differ, so each interval carries its own length.
    pub interval_ns: u64,
    pub intervals: Vec<Interval>,
}

/// One interval of the timeline: all blocked waits that ended in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Start, from the start of the recording.
    pub start_ns: u64,
    pub duration_ns: u64,
    pub waits: u64,
    pub wait_ns: u64,
    /// The part of `waits`/`wait_ns` at lock sites (mutex, rwlock, semaphore).
    pub contention_waits: u64,
    pub contention_wait_ns: u64,
}

/// A site's blocked waits and wait time in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalCount {
    pub waits: u64,
    pub wait_ns: u64,
}

//! Lock addresses and the wakers' side of the report.

use serde::{Deserialize, Serialize};

use super::{Behavior, Frame, HeldAcross, WaitKind, WaitSummary, is_zero};

/// A futex address (a lock, or a per-thread parking word) and who waited on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockAddress {
    pub pid: u32,
    pub address: String,
    #[serde(flatten)]
    pub wait: WaitSummary,
    /// What the address is by behaviour. Absent when unknown.
    #[serde(default, skip_serializing_if = "Behavior::is_unknown")]
    pub behavior: Behavior,
    /// Most wake calls on it woke several threads at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
    /// Waits on this address that returned `EAGAIN` at once (the futex word changed
    /// before the thread slept): churn on a busy lock word.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eagain: u64,
    /// Wasted wakeups on this address (see `Site::wasted_wakeups`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wasted_wakeups: u64,
    /// Sites that waited on this address: `Site::id`, with their share.
    pub sites: Vec<SiteShare>,
    /// Wake sites that woke threads on this address: `WakerSite::id`.
    pub wakers: Vec<WakerShare>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteShare {
    pub site: String,
    #[serde(flatten)]
    pub wait: WaitSummary,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakerShare {
    pub waker: String,
    pub calls: u64,
    pub woken: u64,
    /// Of `calls`, those that woke nobody and those that woke more than one thread.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub woke_none: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub woke_many: u64,
}

/// A place in the target's own code that woke futex waiters (unlock, notify, post).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakerSite {
    /// Stable identity, as for [`Site::id`].
    pub id: String,
    pub kind: WaitKind,
    pub lock_impl: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Wake calls made here.
    pub calls: u64,
    /// Threads woken (or requeued) by them.
    pub woken: u64,
    /// Calls that woke nobody.
    pub woke_none: u64,
    /// Calls that woke more than one thread (broadcasts).
    pub woke_many: u64,
    /// Threads that made the calls, by calls descending.
    pub threads: Vec<WakerThread>,
    /// Blocked waits this site's wake calls ended, and the wait time they ended: the
    /// cost of the critical sections that end here.
    #[serde(default)]
    pub caused_waits: u64,
    #[serde(default)]
    pub caused_wait_ns: u64,
    /// What the threads waking here did during the waits they ended.
    #[serde(default, skip_serializing_if = "HeldAcross::is_empty")]
    pub held: HeldAcross,
    /// The hottest stack (innermost first).
    pub stack: Vec<Frame>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakerThread {
    pub pid: u32,
    pub tid: u32,
    pub name: String,
    pub calls: u64,
    pub woken: u64,
}

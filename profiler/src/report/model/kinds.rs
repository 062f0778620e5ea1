//! What kind of wait a site is: the lock or event kind, and how its address behaves.

use serde::{Deserialize, Serialize};

/// What kind of wait a site is, told from the lock implementation's frames.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum WaitKind {
    Mutex,
    RwlockRead,
    RwlockWrite,
    /// Wake side of a reader-writer lock (unlock), where read/write cannot be told.
    Rwlock,
    Condvar,
    Semaphore,
    #[default]
    Other,
    // Goroutines parked by the Go scheduler (`analyze::go` tells them apart).
    GoMutex,
    GoRwmutexRead,
    GoRwmutexWrite,
    GoCond,
    GoChanRecv,
    GoChanSend,
    GoWaitgroup,
    GoSelect,
    GoSleep,
    /// Network or file poller wait.
    GoIo,
    /// The Go runtime's own background goroutines (GC workers, finalizers, timers).
    GoRuntime,
    /// A Go runtime thread with nothing to run (futex waits under `notesleep`).
    GoIdle,
}

impl WaitKind {
    /// Lock contention (a thread wanted a lock another held), as opposed to waiting
    /// for an event (condvar, join, channel, park), which is not contention.
    pub fn is_contention(self) -> bool {
        matches!(
            self,
            Self::Mutex
                | Self::RwlockRead
                | Self::RwlockWrite
                | Self::Rwlock
                | Self::Semaphore
                | Self::GoMutex
                | Self::GoRwmutexRead
                | Self::GoRwmutexWrite
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutex => "mutex",
            Self::RwlockRead => "rwlock-read",
            Self::RwlockWrite => "rwlock-write",
            Self::Rwlock => "rwlock",
            Self::Condvar => "condvar",
            Self::Semaphore => "semaphore",
            Self::Other => "other",
            Self::GoMutex => "go-mutex",
            Self::GoRwmutexRead => "go-rwmutex-read",
            Self::GoRwmutexWrite => "go-rwmutex-write",
            Self::GoCond => "go-cond",
            Self::GoChanRecv => "go-chan-recv",
            Self::GoChanSend => "go-chan-send",
            Self::GoWaitgroup => "go-waitgroup",
            Self::GoSelect => "go-select",
            Self::GoSleep => "go-sleep",
            Self::GoIo => "go-io",
            Self::GoRuntime => "go-runtime",
            Self::GoIdle => "go-idle",
        }
    }
}

/// What a futex address is by behaviour (`analyze::behavior`): `lock` when the
/// threads that wait on it also wake it (acquire, then release), `event` when it is
/// woken only by threads that never wait on it (condvar, semaphore post, park word),
/// `unknown` when no wake was seen (shared futex posted by another process) or the
/// two are mixed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    Lock,
    Event,
    #[default]
    Unknown,
}

impl Behavior {
    pub fn is_unknown(&self) -> bool {
        *self == Self::Unknown
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Event => "event",
            Self::Unknown => "unknown",
        }
    }
}

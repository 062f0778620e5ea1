//! Shared (process-shared, non-private) futexes: the kernel identifies such a futex
//! by the object mapped at its address (a file, a `MAP_SHARED` anonymous region,
//! System V or POSIX shared memory) and the offset in it, not by (process, address).
//! Userspace registers each target's shared mappings; the probe turns the address of
//! a shared futex call into (object, offset), so a wait pairs with a wake made by
//! another process — `PostgreSQL`'s backends post each other's semaphores this way.

/// `futex(2)`'s `FUTEX_PRIVATE_FLAG`: without it, the futex may be shared between
/// processes.
pub const FUTEX_PRIVATE_FLAG: u32 = 128;

/// Hash map `tgid → RawSharedMaps`: the shared mappings of each traced process,
/// written by userspace when it first sees the process and rescanned periodically.
pub const MAP_SHARED_MAPS: &str = "SHARED_MAPS";
/// Capacity of [`MAP_SHARED_MAPS`]: as many processes as can be traced.
pub const MAX_SHARED_PROCS: u32 = crate::maps::MAX_TARGETS;
/// Shared mappings registered per process (the largest ones, when there are more).
pub const MAX_SHARED_RANGES: usize = 8;

/// [`RawTask::call`](crate::rows::RawTask::call) bit: the futex call in progress is
/// a shared one (its `futex(2)` op had no [`FUTEX_PRIVATE_FLAG`]).
pub const CALL_SHARED: u32 = 8;

/// [`RawAddrKey::tgid`](crate::rows::RawAddrKey::tgid) of a key that names a mapped
/// object rather than a process: `pad` is the object's id and `uaddr` the offset of
/// the futex in it. No traced process has tgid 0.
pub const SHARED_KEY_TGID: u32 = 0;

/// [`RawSharedMaps::flags`]: the process had more shared mappings than
/// [`MAX_SHARED_RANGES`] — a shared futex outside the registered ones may be in one
/// of the others.
pub const SHARED_TRUNCATED: u32 = 1;

/// One shared mapping of a process: `[start, end)` maps `object` from byte `offset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawSharedRange {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    /// Userspace's id of the mapped (device, inode), never 0, the same in every
    /// process that maps it.
    pub object: u32,
    pub pad: u32,
}

/// The registered shared mappings of one process (value of [`MAP_SHARED_MAPS`]).
/// A process registered with `count == 0` has no shared mappings: its shared futexes
/// are in private memory, where the kernel keys them by (process, address) too.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawSharedMaps {
    pub count: u32,
    /// [`SHARED_TRUNCATED`] or 0.
    pub flags: u32,
    pub ranges: [RawSharedRange; MAX_SHARED_RANGES],
}

const _: () = assert!(core::mem::size_of::<RawSharedRange>() == 32);
const _: () = assert!(core::mem::size_of::<RawSharedMaps>() == 8 + 32 * MAX_SHARED_RANGES);

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], Copy, integers and an array of such structs with explicit
// padding, so every bit pattern is a valid value.
unsafe impl aya::Pod for RawSharedMaps {}

//! The pairing key of a futex: (process, address) for a private futex; for a shared
//! one in a shared mapping userspace registered, (mapped object, offset) — what the
//! kernel itself keys a shared futex by, so waits and wakes of different processes
//! on the same futex meet (see `profiler_common::shared`).
//!
//! Owns the `SHARED_MAPS` map (the one map defined outside `maps.rs`: only this file
//! reads it). Costs a lookup only for shared futex calls; private ones (glibc's
//! process-private locks, Rust's std) return at once.

use aya_ebpf::{macros::map, maps::HashMap};
use profiler_common::{
    Loss, MAX_SHARED_PROCS, MAX_SHARED_RANGES, RawAddrKey, RawSharedMaps, SHARED_KEY_TGID,
    SHARED_TRUNCATED,
};

use crate::maps::{addr_key, count_loss};

/// The registered shared mappings of each traced process (written by userspace).
#[map]
static SHARED_MAPS: HashMap<u32, RawSharedMaps> = HashMap::with_max_entries(MAX_SHARED_PROCS, 0);

/// The key that pairs waits and wakes on `uaddr` of process `tgid`; `shared` when the
/// call was made without `FUTEX_PRIVATE_FLAG`.
#[inline(always)]
pub fn futex_key(tgid: u32, uaddr: u64, shared: bool) -> RawAddrKey {
    if shared {
        // SAFETY: read in place; userspace replaces the value whole.
        match unsafe { SHARED_MAPS.get(&tgid) } {
            Some(maps) => {
                for i in 0..MAX_SHARED_RANGES {
                    if i as u32 >= maps.count {
                        break;
                    }
                    let r = &maps.ranges[i];
                    if uaddr >= r.start && uaddr < r.end {
                        return RawAddrKey {
                            tgid: SHARED_KEY_TGID,
                            pad: r.object,
                            uaddr: r.offset + (uaddr - r.start),
                        };
                    }
                }
                // Outside every registered shared mapping: private memory (keyed by
                // process and address, as the kernel does) unless some were left out.
                if maps.flags & SHARED_TRUNCATED != 0 {
                    count_loss(Loss::SharedFutexUnmapped);
                }
            }
            // Not registered yet (a process just forked or attached).
            None => count_loss(Loss::SharedFutexUnmapped),
        }
    }
    addr_key(tgid, uaddr)
}

//! Kernel memory of the probes' maps: the worst case computed from the map
//! definitions for any CPU count, and the real figure of the loaded maps.
//!
//! The model follows the kernel's own accounting (`htab_map_mem_usage`,
//! `stack_map_alloc`, `array_map_mem_usage`): a preallocated hash holds
//! `max_entries + possible CPUs` elements of a 48-byte header plus key and value
//! rounded to 8 bytes, an LRU hash `max_entries` of them, a stack map a power-of-two
//! number of 1 KiB buckets, a per-CPU array one value per CPU. `USER_STACKS` is
//! allocated on demand and counted full.

use std::mem::size_of;

use profiler_common::{
    LOSS_KINDS, MAX_EDGES, MAX_LAST_WAKES, MAX_SHARED_SITES, MAX_STACK_CACHE, MAX_STACKS,
    MAX_STACKS2, MAX_TARGETS, MAX_TASK_SPILL, MAX_TASKS, MAX_USER_STACKS, MAX_WAIT_KEYS,
    MAX_WAKE_KEYS, RawEdgeKey, RawEdgeStats, RawSharedSiteKey, RawStackCacheKey,
    RawStackCacheValue, RawTask, RawUserStack, RawWaitKey, RawWaitStats, RawWakeKey, RawWakeStats,
    TARGET_BITS_ENTRIES,
};
use profiler_common::{
    MAX_BLAME, MAX_SHARED_PROCS, POSITION_SLOTS, RawBlameKey, RawBlameStats, RawFutexRing,
    RawPositionSlot, RawSharedMaps, RawTally, RawWakeInFlight, TALLY_SLOTS, TASK_CLAIM_WORDS,
    WAKES_IN_FLIGHT,
};

/// How a map's memory scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Preallocated hash (`max_entries + CPUs` elements).
    Hash,
    /// Hash allocated on insert, counted full.
    HashOnDemand,
    Lru,
    Array,
    PerCpuArray,
    StackTrace,
}

struct MapDef {
    kind: Kind,
    key: usize,
    value: usize,
    max: u32,
}

/// `struct htab_elem` on 64-bit kernels.
const HTAB_ELEM: u64 = 48;
/// A hash bucket: list head and lock.
const HTAB_BUCKET: u64 = 16;
/// `PERF_MAX_STACK_DEPTH` frames of 8 bytes, as aya-ebpf's `StackTrace` declares.
const STACK_VALUE: usize = 127 * 8;
/// `struct stack_map_bucket` header.
const STACK_BUCKET: u64 = 16;

/// The probes' maps (`profiler-ebpf/src/maps.rs`), from the same constants.
fn definitions() -> Vec<MapDef> {
    let def = |kind, key, value, max| MapDef {
        kind,
        key,
        value,
        max,
    };
    vec![
        def(
            Kind::Hash,
            size_of::<RawWaitKey>(),
            size_of::<RawWaitStats>(),
            MAX_WAIT_KEYS,
        ),
        def(
            Kind::Hash,
            size_of::<RawWakeKey>(),
            size_of::<RawWakeStats>(),
            MAX_WAKE_KEYS,
        ),
        def(
            Kind::Hash,
            size_of::<RawEdgeKey>(),
            size_of::<RawEdgeStats>(),
            MAX_EDGES,
        ),
        def(Kind::StackTrace, 4, STACK_VALUE, MAX_STACKS),
        def(Kind::StackTrace, 4, STACK_VALUE, MAX_STACKS2),
        def(
            Kind::Lru,
            size_of::<RawStackCacheKey>(),
            size_of::<RawStackCacheValue>(),
            MAX_STACK_CACHE,
        ),
        def(Kind::Array, 4, size_of::<RawPositionSlot>(), POSITION_SLOTS),
        // `TALLIES` (`profiler-ebpf/src/tally.rs`).
        def(Kind::Array, 4, size_of::<RawTally>(), TALLY_SLOTS),
        def(
            Kind::Lru,
            size_of::<RawSharedSiteKey>(),
            4,
            MAX_SHARED_SITES,
        ),
        def(Kind::Hash, 4, 4, MAX_TARGETS),
        def(Kind::Array, 4, 8, TARGET_BITS_ENTRIES),
        def(Kind::PerCpuArray, 4, 8, LOSS_KINDS),
        def(Kind::PerCpuArray, 4, 8, 1),
        def(
            Kind::HashOnDemand,
            4,
            size_of::<RawUserStack>(),
            MAX_USER_STACKS,
        ),
        def(Kind::PerCpuArray, 4, size_of::<RawUserStack>(), 1),
        def(Kind::Array, 4, 8, 1),
        def(Kind::Array, 4, size_of::<RawWaitStats>(), 1),
        def(Kind::Array, 4, size_of::<RawWakeStats>(), 1),
        def(Kind::Array, 4, size_of::<RawEdgeStats>(), 1),
        // `SHARED_MAPS` (`profiler-ebpf/src/shared.rs`).
        def(Kind::Hash, 4, size_of::<RawSharedMaps>(), MAX_SHARED_PROCS),
        // `BLAME`, `IN_FLIGHT` and `WAKE_RINGS` (`profiler-ebpf/src/{blame,ring}.rs`).
        def(
            Kind::Hash,
            size_of::<RawBlameKey>(),
            size_of::<RawBlameStats>(),
            MAX_BLAME,
        ),
        def(
            Kind::Array,
            4,
            size_of::<RawWakeInFlight>(),
            WAKES_IN_FLIGHT,
        ),
        def(Kind::Array, 4, size_of::<RawFutexRing>(), MAX_LAST_WAKES),
        // `TASKS`, `TASK_SPILL`, `TASK_CLAIMS` and `ZERO_TASK`
        // (`profiler-ebpf/src/tasks.rs`).
        def(Kind::Array, 4, size_of::<RawTask>(), MAX_TASKS),
        def(Kind::Hash, 4, size_of::<RawTask>(), MAX_TASK_SPILL),
        def(Kind::Array, 4, 8, TASK_CLAIM_WORDS),
        def(Kind::Array, 4, size_of::<RawTask>(), 1),
        // `DRAIN_GEN`, and the grace-period trigger's array and array of maps
        // (`collect::generation`).
        def(Kind::Array, 4, 4, 1),
        def(Kind::Array, 4, 4, 1),
        def(Kind::Array, 4, 8, 1),
    ]
}

fn round8(n: usize) -> u64 {
    n.div_ceil(8) as u64 * 8
}

impl MapDef {
    fn bytes(&self, cpus: u64) -> u64 {
        let max = u64::from(self.max);
        let elem = HTAB_ELEM + round8(self.key) + round8(self.value);
        let buckets = u64::from(self.max.next_power_of_two()) * HTAB_BUCKET;
        match self.kind {
            Kind::Hash => (max + cpus) * elem + buckets,
            Kind::HashOnDemand | Kind::Lru => max * elem + buckets,
            Kind::Array => max * round8(self.value),
            Kind::PerCpuArray => max * round8(self.value) * cpus + max * 8,
            Kind::StackTrace => {
                let n = u64::from(self.max.next_power_of_two());
                n * (STACK_BUCKET + self.value as u64) + n * 8
            }
        }
    }
}

/// The most kernel memory the maps can take on a machine with `cpus` possible CPUs.
pub fn worst_case_bytes(cpus: u64) -> u64 {
    definitions().iter().map(|d| d.bytes(cpus)).sum()
}

/// The kernel's own figure for a loaded map (`memlock:` in its fdinfo), in bytes.
pub fn map_memlock(fd: std::os::fd::BorrowedFd<'_>) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn worst_case_is_bounded_and_nearly_independent_of_the_cpu_count() {
        let one = worst_case_bytes(1);
        let many = worst_case_bytes(96);
        let most = worst_case_bytes(256);
        for (cpus, bytes) in [(1, one), (96, many), (256, most)] {
            assert!(
                bytes <= 128 * MIB,
                "{cpus} CPUs: {:.1} MiB > 128 MiB",
                bytes as f64 / MIB as f64
            );
        }
        eprintln!("worst case: 1 CPU {one} B, 96 CPUs {many} B, 256 CPUs {most} B");
        assert!(one < many && many < most, "grows with CPUs only a little");
        // Per-CPU state is the stack-copy scratch and a few counters: < 24 KiB a CPU.
        assert!(
            (most - one) / 255 < 24 * 1024,
            "per-CPU cost {} B",
            (most - one) / 255
        );
    }

    #[test]
    fn largest_maps_are_counted_at_their_full_size() {
        // The stack copies alone are 2,048 × 16 KiB when the map is full.
        assert!(worst_case_bytes(1) > u64::from(MAX_USER_STACKS) * 16 * 1024);
    }
}

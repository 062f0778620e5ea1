//! Kernel memory of a tracer's BPF maps: what the kernel charges for them now, and a
//! worst case at any number of possible CPUs, from each map's definition.
//!
//! Owns: reading the maps a process holds (its fds that are `anon_inode:bpf-map`,
//! described by their fdinfo: type, key/value size, max entries, flags, `memlock`) and
//! the size model. Must not: load or touch any map (read-only, by `/proc`).
//!
//! The model counts what grows: per-CPU values (×CPUs) and every entry a map may hold
//! at `max_entries`, with the kernel's element header (hash maps: `struct htab_elem`,
//! 48 bytes on x86-64, plus a bucket of 16 bytes per entry; stack maps: a bucket
//! header of 16 bytes). Hash maps preallocate unless `BPF_F_NO_PREALLOC`, so their
//! memlock now is already their maximum; a no-prealloc map's memlock grows with use.

use std::fs;

/// One BPF map as its fdinfo describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    pub map_type: u32,
    pub key_size: u64,
    pub value_size: u64,
    pub max_entries: u64,
    pub map_flags: u64,
    /// What the kernel charges for the map now (bytes).
    pub memlock: u64,
    pub map_id: u32,
}

const HASH: u32 = 1;
const ARRAY: u32 = 2;
const PERCPU_HASH: u32 = 5;
const PERCPU_ARRAY: u32 = 6;
const STACK_TRACE: u32 = 7;
const LRU_HASH: u32 = 9;
const LRU_PERCPU_HASH: u32 = 10;
const RINGBUF: u32 = 27;

/// `struct htab_elem` before the key, x86-64.
const HTAB_ELEM: u64 = 48;
/// A hash bucket (`struct bucket`: list head + lock).
const HTAB_BUCKET: u64 = 16;
/// `struct stack_map_bucket` before the ips.
const STACK_BUCKET: u64 = 16;

fn round8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

impl MapInfo {
    /// Parses `/proc/PID/fdinfo/FD` of a map fd; `None` for any other fd.
    pub fn parse(fdinfo: &str) -> Option<MapInfo> {
        let field = |name: &str| -> Option<u64> {
            let v = fdinfo
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
                .trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            }
        };
        Some(MapInfo {
            map_type: u32::try_from(field("map_type")?).ok()?,
            key_size: field("key_size")?,
            value_size: field("value_size")?,
            max_entries: field("max_entries")?,
            map_flags: field("map_flags").unwrap_or(0),
            memlock: field("memlock").unwrap_or(0),
            map_id: u32::try_from(field("map_id")?).ok()?,
        })
    }

    /// The map's size at `max_entries` with `cpus` possible CPUs, by the model above.
    pub fn worst_case_bytes(&self, cpus: u64) -> u64 {
        let (k, v, n) = (
            round8(self.key_size),
            round8(self.value_size),
            self.max_entries,
        );
        match self.map_type {
            HASH | LRU_HASH => n * (HTAB_ELEM + k + v + HTAB_BUCKET),
            // The element holds a pointer to the per-CPU value.
            PERCPU_HASH | LRU_PERCPU_HASH => n * (HTAB_ELEM + k + 8 + HTAB_BUCKET + v * cpus),
            ARRAY => n * v,
            PERCPU_ARRAY => n * (8 + v * cpus),
            STACK_TRACE => n * (STACK_BUCKET + v + 8),
            RINGBUF => n,
            // Other types (perf event arrays…) hold pointers: count the charge as is.
            _ => self.memlock,
        }
    }
}

/// The BPF maps process `pid` holds open, each once (by map id).
pub fn maps_of_pid(pid: u32) -> Vec<MapInfo> {
    let mut maps: Vec<MapInfo> = super::bpf_fds::fdinfos(pid, "bpf-map")
        .iter()
        .filter_map(|info| MapInfo::parse(info))
        .collect();
    maps.sort_by_key(|m| m.map_id);
    maps.dedup_by_key(|m| m.map_id);
    maps
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`, e.g. `0-1` → 2).
pub fn possible_cpus() -> u64 {
    fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
        .unwrap_or(1)
}

fn parse_cpu_list(s: &str) -> Option<u64> {
    let mut n = 0;
    for part in s.split(',') {
        n += if let Some((a, b)) = part.split_once('-') {
            b.parse::<u64>().ok()?.checked_sub(a.parse::<u64>().ok()?)? + 1
        } else {
            part.parse::<u64>().ok()?;
            1
        };
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERCPU_FDINFO: &str = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\n\
        map_type:\t5\nkey_size:\t24\nvalue_size:\t40\nmax_entries:\t16384\n\
        map_flags:\t0x0\nmap_extra:\t0x0\nmemlock:\t3674496\nmap_id:\t77\nfrozen:\t0\n";

    #[test]
    fn parses_a_map_fdinfo_and_ignores_other_fds() {
        let m = MapInfo::parse(PERCPU_FDINFO).unwrap();
        assert_eq!(
            (m.map_type, m.key_size, m.value_size, m.max_entries),
            (5, 24, 40, 16384)
        );
        assert_eq!((m.memlock, m.map_id, m.map_flags), (3_674_496, 77, 0));
        assert!(MapInfo::parse("pos:\t0\nflags:\t0100000\nmnt_id:\t24\nino:\t3\n").is_none());
    }

    #[test]
    fn per_cpu_maps_grow_with_cpus_and_shared_ones_do_not() {
        let percpu = MapInfo::parse(PERCPU_FDINFO).unwrap();
        // 16384 × (48 + 24 + 8 + 16 + 40 × cpus)
        assert_eq!(percpu.worst_case_bytes(1), 16384 * 136);
        assert_eq!(percpu.worst_case_bytes(256), 16384 * (96 + 40 * 256));
        let shared = MapInfo {
            map_type: HASH,
            ..percpu.clone()
        };
        assert_eq!(shared.worst_case_bytes(1), shared.worst_case_bytes(256));
        assert_eq!(shared.worst_case_bytes(4), 16384 * (48 + 24 + 40 + 16));
        let array = MapInfo {
            map_type: PERCPU_ARRAY,
            max_entries: 1,
            value_size: 13,
            ..percpu
        };
        assert_eq!(array.worst_case_bytes(96), 8 + 16 * 96);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,8-11,16"), Some(9));
        assert_eq!(parse_cpu_list("x"), None);
        assert!(possible_cpus() >= 1);
    }
}

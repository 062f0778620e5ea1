//! The targets' shared memory, registered with the probe so that a wait on a shared
//! futex pairs with a wake from another process (`PostgreSQL`'s backends post each
//! other's semaphores in the postmaster's shared memory).
//!
//! Owns: finding each target's shared mappings (`s` in `/proc/PID/maps`), giving each
//! mapped object (device, inode) one id for the whole session — the same in every
//! process that maps it — and deciding when to rescan. Must not: touch aya (it asks
//! `collect::Probes` to write the rows).
//!
//! A new target is scanned at the first poll that sees it, and again whenever its
//! mappings may have changed: its virtual size moved, or its executable layout
//! (`PostgreSQL` maps dynamic shared memory segments as it goes). A settled daemon's
//! processes are not read again. Until its first scan, a process's shared futex calls are paired within the
//! process only, and counted (`shared_futex_unmapped`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use profiler_common::{MAX_SHARED_RANGES, RawSharedMaps, RawSharedRange, SHARED_TRUNCATED};

use crate::collect::Probes;

/// One shared mapping of `/proc/PID/maps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMapping {
    pub start: u64,
    pub end: u64,
    /// Byte offset in the object of `start`.
    pub offset: u64,
    pub dev: u64,
    pub inode: u64,
}

/// The shared (`rw-s`-like) mappings in the text of `/proc/PID/maps` that have an
/// identity (an inode): files, `MAP_SHARED` anonymous memory (`/dev/zero
/// (deleted)`), System V segments, POSIX shared memory, memfds.
pub fn parse_shared(text: &str) -> Vec<SharedMapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (range, perms, offset, dev, inode) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            if perms.as_bytes().get(3) != Some(&b's') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let (major, minor) = dev.split_once(':')?;
            let m = SharedMapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                dev: u64::from_str_radix(major, 16).ok()? << 32
                    | u64::from_str_radix(minor, 16).ok()?,
                inode: inode.parse().ok()?,
            };
            (m.inode != 0 && m.end > m.start).then_some(m)
        })
        .collect()
}

/// The session's registrations.
#[derive(Debug, Default)]
pub struct SharedFutexes {
    /// (dev, inode) → object id (from 1).
    objects: HashMap<(u64, u64), u32>,
    /// What each live target has registered.
    registered: BTreeMap<u32, RawSharedMaps>,
    /// Targets whose maps could not be read (exited): not scanned again.
    gone: BTreeSet<u32>,
    warned: bool,
}

impl SharedFutexes {
    /// The probe's row for a process with these shared mappings: the
    /// [`MAX_SHARED_RANGES`] largest, by address, flagged when some were left out.
    pub fn ranges(&mut self, mut maps: Vec<SharedMapping>) -> RawSharedMaps {
        let mut row = RawSharedMaps::default();
        if maps.len() > MAX_SHARED_RANGES {
            maps.sort_by_key(|m| std::cmp::Reverse(m.end - m.start));
            maps.truncate(MAX_SHARED_RANGES);
            row.flags = SHARED_TRUNCATED;
        }
        maps.sort_by_key(|m| m.start);
        for (slot, m) in row.ranges.iter_mut().zip(&maps) {
            let next = u32::try_from(self.objects.len() + 1).unwrap_or(u32::MAX);
            let object = *self.objects.entry((m.dev, m.inode)).or_insert(next);
            *slot = RawSharedRange {
                start: m.start,
                end: m.end,
                offset: m.offset,
                object,
                pad: 0,
            };
        }
        row.count = maps.len() as u32;
        row
    }

    /// Forget a target that exited: its registration leaves the probe's map (which
    /// must not fill with the dead) and nothing of it is kept here.
    pub fn forget(&mut self, probes: &mut Probes, pid: u32) {
        self.gone.remove(&pid);
        if self.registered.remove(&pid).is_some() {
            probes.forget_shared(pid);
        }
    }

    /// Register the targets not scanned yet or whose mappings may just have changed
    /// (`remapped`: their virtual size moved, or an exec replaced every mapping).
    pub fn poll(
        &mut self,
        probes: &mut Probes,
        pids: impl IntoIterator<Item = u32>,
        remapped: &BTreeSet<u32>,
    ) {
        for pid in pids {
            let due = remapped.contains(&pid) || !self.registered.contains_key(&pid);
            if !due || self.gone.contains(&pid) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
                self.gone.insert(pid);
                if self.registered.remove(&pid).is_some() {
                    probes.forget_shared(pid);
                }
                continue;
            };
            let row = self.ranges(parse_shared(&text));
            if self.registered.get(&pid) == Some(&row) {
                continue;
            }
            match probes.register_shared(pid, &row) {
                Ok(()) => {
                    self.registered.insert(pid, row);
                }
                Err(e) if !self.warned => {
                    self.warned = true;
                    eprintln!(
                        "lockprof: warning: shared futexes of pid {pid} are paired within the process only: {e}"
                    );
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    // As PostgreSQL 15 maps its memory: the main segment as shared anonymous memory,
    // a small SysV segment, a POSIX shm segment; then private mappings.
    const PG_MAPS: &str = "\
55d0c8a00000-55d0c8b00000 r-xp 00000000 fe:01 1311  /usr/lib/postgresql/15/bin/postgres
7f1a40000000-7f1a44a00000 rw-s 00000000 00:01 2048  /dev/zero (deleted)
7f1a44a00000-7f1a44a01000 rw-s 00000000 00:01 32771 /SYSV0052e2c1 (deleted)
7f1a44b00000-7f1a44b20000 rw-s 00010000 00:1a 77    /dev/shm/PostgreSQL.1234
7f1a44c00000-7f1a44c21000 rw-p 00000000 00:00 0
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0     [stack]
";

    #[test]
    fn parse_keeps_shared_mappings_with_their_object() {
        let maps = parse_shared(PG_MAPS);
        assert_eq!(maps.len(), 3, "{maps:?}");
        assert_eq!(
            maps[0],
            SharedMapping {
                start: 0x7f1a_4000_0000,
                end: 0x7f1a_44a0_0000,
                offset: 0,
                dev: 1,
                inode: 2048,
            }
        );
        assert_eq!(maps[2].offset, 0x10000);
        assert_eq!(maps[2].dev, 0x1a);
    }

    #[test]
    fn an_object_keeps_its_id_in_every_process() {
        let mut reg = SharedFutexes::default();
        let a = reg.ranges(parse_shared(PG_MAPS));
        // Another backend: the same objects (it was forked), mapped elsewhere.
        let other = PG_MAPS.replace("7f1a4", "7f2b4");
        let b = reg.ranges(parse_shared(&other));
        assert_eq!(a.count, 3);
        let ids = |r: &RawSharedMaps| r.ranges[..3].iter().map(|x| x.object).collect::<Vec<_>>();
        assert_eq!(ids(&a), vec![1, 2, 3]);
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(a.ranges[0].start, b.ranges[0].start);
        assert_eq!(a.flags, 0);
    }

    #[test]
    fn too_many_mappings_keep_the_largest_and_say_so() {
        let mut text = String::new();
        for i in 0..MAX_SHARED_RANGES as u64 + 3 {
            let start = 0x1000_0000 * (i + 1);
            // Mapping i is (i + 1) pages long: the first three are the smallest.
            let end = start + 0x1000 * (i + 1);
            let inode = 100 + i;
            writeln!(
                text,
                "{start:x}-{end:x} rw-s 00000000 00:05 {inode} /memfd:x (deleted)"
            )
            .unwrap();
        }
        let mut reg = SharedFutexes::default();
        let row = reg.ranges(parse_shared(&text));
        assert_eq!(row.count as usize, MAX_SHARED_RANGES);
        assert_eq!(row.flags, SHARED_TRUNCATED);
        assert_eq!(
            row.ranges[0].start, 0x4000_0000,
            "the three smallest left out"
        );
        assert!(row.ranges.windows(2).all(|w| w[0].start < w[1].start));
    }
}

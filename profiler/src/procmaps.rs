//! Executable mappings of the targets, captured while they are alive.
//!
//! Owns: parsing `/proc/PID/maps`, keeping every distinct version seen per process
//! (exec and dlopen change it), and turning an absolute address into (module, file
//! offset). Must not: symbolize (`symbolize` does, from module + offset), which is
//! what lets a process that exited before the report still be symbolized.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One file-backed executable mapping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    pub path: PathBuf,
}

/// Where an address points: a module and the offset inside its file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleOffset {
    pub path: PathBuf,
    pub offset: u64,
}

/// Parse the text of `/proc/PID/maps`, keeping executable file-backed mappings.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    for line in text.lines() {
        // start-end perms offset dev inode path (the path may contain spaces)
        let mut fields = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(offset), Some(_dev), Some(_inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let path = fields.next().unwrap_or("").trim_start();
        if !perms.contains('x') || !path.starts_with('/') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            u64::from_str_radix(start, 16),
            u64::from_str_radix(end, 16),
            u64::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        out.push(Mapping {
            start,
            end,
            offset,
            path: PathBuf::from(path),
        });
    }
    out
}

/// Every distinct executable map layout seen per process, newest last.
#[derive(Clone, Debug, Default)]
pub struct MapsHistory {
    by_pid: BTreeMap<u32, Vec<Vec<Mapping>>>,
}

impl MapsHistory {
    /// Record a reading of `/proc/PID/maps`; returns `true` if it was new.
    pub fn observe(&mut self, pid: u32, maps_text: &str) -> bool {
        let maps = parse_maps(maps_text);
        if maps.is_empty() {
            // An exited (zombie) process reads as empty: keep what we had.
            return false;
        }
        let versions = self.by_pid.entry(pid).or_default();
        if versions.last() == Some(&maps) {
            return false;
        }
        versions.push(maps);
        true
    }

    /// Read and record `/proc/PID/maps` now. Errors (process gone) are not errors
    /// here: the history keeps the last layout seen.
    pub fn refresh(&mut self, pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            Ok(text) => self.observe(pid, &text),
            Err(_) => false,
        }
    }

    pub fn knows(&self, pid: u32) -> bool {
        self.by_pid.contains_key(&pid)
    }

    /// Module and file offset of `addr` in `pid`, preferring the newest layout.
    pub fn resolve(&self, pid: u32, addr: u64) -> Option<ModuleOffset> {
        self.by_pid.get(&pid)?.iter().rev().find_map(|maps| {
            maps.iter()
                .find(|m| (m.start..m.end).contains(&addr))
                .map(|m| ModuleOffset {
                    path: m.path.clone(),
                    offset: addr - m.start + m.offset,
                })
        })
    }
}

impl MapsHistory {
    /// The newest layout of `pid` in which `addr` is mapped (for unwinding a stack
    /// captured at that address with the modules of its time).
    pub fn layout_for(&self, pid: u32, addr: u64) -> Option<&[Mapping]> {
        self.by_pid
            .get(&pid)?
            .iter()
            .rev()
            .find(|maps| maps.iter().any(|m| (m.start..m.end).contains(&addr)))
            .map(Vec::as_slice)
    }

    /// The `n` bytes of the mapped file just before `addr` (to check for a call
    /// instruction), read from the file on disk. `None` if unmapped or unreadable.
    pub fn bytes_before(&self, pid: u32, addr: u64, n: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mo = self.resolve(pid, addr.checked_sub(1)?)?;
        let end = mo.offset + 1;
        let start = end.saturating_sub(n as u64);
        let mut buf = vec![0; (end - start) as usize];
        let file = std::fs::File::open(&mo.path).ok()?;
        file.read_exact_at(&mut buf, start).ok()?;
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d4c6a00000-55d4c6a22000 r--p 00000000 fe:01 131 /usr/bin/server
55d4c6a22000-55d4c6b00000 r-xp 00022000 fe:01 131 /usr/bin/server
7f1e2a028000-7f1e2a1bd000 r-xp 00028000 fe:01 200 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1e2a200000-7f1e2a221000 rw-p 00000000 00:00 0 
7ffd5f9a0000-7ffd5f9c1000 rw-p 00000000 00:00 0                          [stack]
7ffd5f9fd000-7ffd5f9ff000 r-xp 00000000 00:00 0                          [vdso]
7f00000000-7f00001000 r-xp 00001000 fe:01 77 /tmp/my lib (deleted)
";

    #[test]
    fn parse_keeps_executable_file_mappings_only() {
        let maps = parse_maps(MAPS);
        assert_eq!(maps.len(), 3);
        assert_eq!(maps[0].path, PathBuf::from("/usr/bin/server"));
        assert_eq!(maps[0].offset, 0x22000);
        assert_eq!(
            maps[2].path,
            PathBuf::from("/tmp/my lib"),
            "spaces and (deleted)"
        );
    }

    #[test]
    fn resolve_gives_file_offset() {
        let mut h = MapsHistory::default();
        assert!(h.observe(7, MAPS));
        let mo = h.resolve(7, 0x55d4_c6a2_2000 + 0x10).unwrap();
        assert_eq!(mo.offset, 0x22010);
        assert!(h.resolve(7, 0x1).is_none());
        assert!(h.resolve(8, 0x55d4_c6a2_2010).is_none());
    }

    #[test]
    fn bytes_before_reads_the_mapped_file() {
        let dir = std::env::temp_dir().join(format!("lockprof-procmaps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("code.bin");
        std::fs::write(&file, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        let mut h = MapsHistory::default();
        h.observe(
            1,
            &format!("1000-2000 r-xp 00000002 00:01 1 {}\n", file.display()),
        );
        // Address 0x1004 is file offset 6: the three bytes before it are 3, 4, 5.
        assert_eq!(h.bytes_before(1, 0x1004, 3), Some(vec![3, 4, 5]));
        assert_eq!(h.bytes_before(1, 0x9000, 3), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn history_keeps_old_layouts_and_ignores_empty_readings() {
        let mut h = MapsHistory::default();
        assert!(h.observe(7, MAPS));
        assert!(!h.observe(7, MAPS), "same layout is not new");
        assert!(!h.observe(7, ""), "zombie reading is ignored");
        let after_exec = "400000-401000 r-xp 00000000 fe:01 9 /bin/other\n";
        assert!(h.observe(7, after_exec));
        assert_eq!(
            h.resolve(7, 0x40_0010).unwrap().path,
            PathBuf::from("/bin/other")
        );
        // The pre-exec layout still resolves addresses recorded before the exec.
        assert_eq!(h.resolve(7, 0x55d4_c6a2_2010).unwrap().offset, 0x22010);
    }
}

//! Executable mappings of the targets, captured while they are alive.
//!
//! Owns: parsing `/proc/PID/maps`, keeping every distinct version seen per process
//! (exec and dlopen change it), turning an absolute address into (module, file
//! offset), and holding each mapped file open. Must not: symbolize (`symbolize`
//! does, from module + offset), which is what lets a process that exited before the
//! report still be symbolized.
//!
//! Paths in `/proc/PID/maps` are relative to the target's mount namespace (a
//! container's `/usr/bin/app` is not the host's), and a file can be replaced or
//! deleted while a process still maps it (a rebuild, an upgrade, an exec of a new
//! version). So each mapped file is opened while the process is alive, through
//! `/proc/PID/map_files/` (the very inode that is mapped) or else
//! `/proc/PID/root/<path>`, and kept open: symbolization reads it later through
//! `/proc/self/fd/N`, even after the process or its container is gone. The root
//! directory of a process in another mount namespace is held the same way, for the
//! debug files of its image.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One file-backed executable mapping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    pub path: PathBuf,
    /// Device (`major << 32 | minor`) and inode of the file: its identity, which
    /// outlives renames and tells two containers' `/usr/bin/app` apart.
    pub dev: u64,
    pub inode: u64,
}

/// Where an address points: a module and the offset inside its file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleOffset {
    /// The module's path as the target sees it (in its own mount namespace).
    pub path: PathBuf,
    pub offset: u64,
    /// Where lockprof can read that file: `/proc/self/fd/N` of the copy it held open
    /// while the process was alive, or `path` itself if it could not open one.
    pub file: PathBuf,
}

/// Parse the text of `/proc/PID/maps`, keeping executable file-backed mappings.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    for line in text.lines() {
        // start-end perms offset dev inode path (the path may contain spaces)
        let mut fields = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(offset), Some(dev), Some(inode)) = (
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
            dev: parse_dev(dev).unwrap_or(0),
            inode: inode.parse().unwrap_or(0),
        });
    }
    out
}

/// `fe:01` → `0xfe << 32 | 0x01`.
fn parse_dev(dev: &str) -> Option<u64> {
    let (major, minor) = dev.split_once(':')?;
    Some(u64::from_str_radix(major, 16).ok()? << 32 | u64::from_str_radix(minor, 16).ok()?)
}

/// At most this many mapped files are held open (a few per distinct binary or
/// library; the default soft limit on open files is 1024). Past it, files are read by
/// path, as if they could not be opened.
const MAX_OPEN_FILES: usize = 512;

/// Every distinct executable map layout seen per process, newest last, and the files
/// they map, held open.
#[derive(Debug, Default)]
pub struct MapsHistory {
    by_pid: BTreeMap<u32, Vec<Vec<Mapping>>>,
    /// (dev, inode) → the open file and its `/proc/self/fd/N` path.
    files: HashMap<(u64, u64), (File, PathBuf)>,
    /// Root directories of targets in other mount namespaces (containers), by
    /// namespace id, held open: their debug files stay reachable after the container
    /// is gone.
    roots: BTreeMap<u64, File>,
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

    /// Whether `pid`'s newest layout dropped a file the one before mapped, or moved
    /// it (an exec, an unloaded library): code addresses seen before may now stand
    /// for other code. A layout that only gained mappings (the loader or `dlopen`
    /// mapping more), or whose mappings of a file were split or trimmed at the same
    /// load address (the loader mapping a whole file, then its segments over it), is
    /// not: every address still means what it meant.
    pub fn replaced(&self, pid: u32) -> bool {
        // A file at a load address: where its offset 0 would be.
        let placed = |m: &Mapping| {
            (
                m.dev,
                m.inode,
                m.path.clone(),
                m.start.wrapping_sub(m.offset),
            )
        };
        match self.by_pid.get(&pid).map(Vec::as_slice) {
            Some([.., before, newest]) => {
                let now: Vec<_> = newest.iter().map(placed).collect();
                before.iter().any(|m| !now.contains(&placed(m)))
            }
            _ => false,
        }
    }

    /// Read and record `/proc/PID/maps` now, and open the files of a new layout.
    /// Errors (process gone) are not errors here: the history keeps the last layout
    /// seen.
    pub fn refresh(&mut self, pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            Ok(text) => {
                let new = self.observe(pid, &text);
                if new {
                    self.hold_files(pid, |m| open_mapped_file(pid, m));
                    self.hold_root(pid);
                }
                new
            }
            Err(_) => false,
        }
    }

    /// Keep open every file of `pid`'s newest layout not held yet, as `open` gives it.
    pub fn hold_files(&mut self, pid: u32, mut open: impl FnMut(&Mapping) -> Option<File>) {
        let Some(newest) = self.by_pid.get(&pid).and_then(|v| v.last()) else {
            return;
        };
        for m in newest {
            let key = (m.dev, m.inode);
            // Inode 0 is no identity (anonymous or unknown): never share a handle.
            if m.inode == 0 || self.files.contains_key(&key) || self.files.len() >= MAX_OPEN_FILES {
                continue;
            }
            if let Some(file) = open(m) {
                let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                self.files.insert(key, (file, path));
            }
        }
    }

    /// Keep `pid`'s root directory open if it is in another mount namespace (a
    /// container's: the same root directory can have other mounts below it, so the
    /// namespace, not the directory, is what differs).
    fn hold_root(&mut self, pid: u32) {
        // The inode of a namespace file is the namespace's id.
        let ns = |p: &str| std::fs::metadata(p).map(|m| m.ino());
        let (Ok(ours), Ok(theirs)) = (ns("/proc/self/ns/mnt"), ns(&format!("/proc/{pid}/ns/mnt")))
        else {
            return;
        };
        if ours == theirs || self.roots.contains_key(&theirs) || self.roots.len() >= MAX_OPEN_FILES
        {
            return;
        }
        if let Ok(root) = File::open(format!("/proc/{pid}/root")) {
            self.roots.insert(theirs, root);
        }
    }

    /// Drop the layouts of a process whose stacks are all resolved (it exited and its
    /// last rows were drained): a workload that keeps forking would otherwise grow
    /// this with every process it ever had. Its files stay held for the others.
    pub fn forget(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }

    /// The debug directories inside the containers seen (`/usr/lib/debug` below each
    /// foreign root held open), for debug files installed in the image.
    pub fn container_debug_dirs(&self) -> Vec<PathBuf> {
        self.roots
            .values()
            .map(|root| {
                PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd())).join("usr/lib/debug")
            })
            .collect()
    }

    /// Where lockprof reads the file of mapping `m`: the held copy, else its path.
    pub fn readable(&self, m: &Mapping) -> PathBuf {
        self.files
            .get(&(m.dev, m.inode))
            .map_or_else(|| m.path.clone(), |(_, p)| p.clone())
    }

    /// Module and file offset of `addr` in `pid`, preferring the newest layout.
    pub fn resolve(&self, pid: u32, addr: u64) -> Option<ModuleOffset> {
        self.by_pid
            .get(&pid)?
            .iter()
            .rev()
            .find_map(|maps| self.resolve_in(maps, addr))
    }

    /// Module and file offset of each address of one stack of `pid`, all in the
    /// layout the stack was most likely taken in: the one where most of its addresses
    /// are mapped (the newest on a tie). After an exec, a stack from the old image is
    /// thus named from the old image, never from whatever the new one maps at the
    /// same address. An address outside that layout falls back to [`Self::resolve`]
    /// (a library unloaded later).
    pub fn resolve_stack(&self, pid: u32, addrs: &[u64]) -> Vec<Option<ModuleOffset>> {
        let versions = self.by_pid.get(&pid).map_or(&[][..], Vec::as_slice);
        let mapped = |maps: &Vec<Mapping>| {
            addrs
                .iter()
                .filter(|&&a| maps.iter().any(|m| (m.start..m.end).contains(&a)))
                .count()
        };
        // max_by_key keeps the last maximum: the newest layout on a tie.
        let best = versions.iter().max_by_key(|maps| mapped(maps));
        addrs
            .iter()
            .map(|&a| {
                best.and_then(|maps| self.resolve_in(maps, a))
                    .or_else(|| self.resolve(pid, a))
            })
            .collect()
    }

    fn resolve_in(&self, maps: &[Mapping], addr: u64) -> Option<ModuleOffset> {
        maps.iter()
            .find(|m| (m.start..m.end).contains(&addr))
            .map(|m| ModuleOffset {
                path: m.path.clone(),
                offset: addr - m.start + m.offset,
                file: self.readable(m),
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
        let file = File::open(&mo.file).ok()?;
        file.read_exact_at(&mut buf, start).ok()?;
        Some(buf)
    }
}

/// Open the file `m` maps in `pid`, as the process sees it: its `map_files` entry
/// (the mapped inode itself, even if deleted or replaced since; needs
/// `CAP_SYS_ADMIN`), else its path under the process's root (its mount namespace).
/// A file whose inode is not the mapped one (replaced on disk) is refused.
pub fn open_mapped_file(pid: u32, m: &Mapping) -> Option<File> {
    let candidates = [
        PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end)),
        in_root(Path::new(&format!("/proc/{pid}/root")), &m.path),
    ];
    candidates.iter().find_map(|c| {
        let file = File::open(c).ok()?;
        let meta = file.metadata().ok()?;
        (meta.ino() == m.inode).then_some(file)
    })
}

/// `path` (absolute, in some mount namespace) below `root` (that namespace's root as
/// seen from here, e.g. `/proc/PID/root`).
pub fn in_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
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

    #[test]
    fn only_a_layout_that_lost_a_mapping_is_replaced() {
        let lib = "7f00-8000 r-xp 00000000 fe:01 20 /lib/libx.so\n";
        let mut h = MapsHistory::default();
        h.observe(7, MAPS);
        assert!(!h.replaced(7), "a first layout replaces nothing");
        h.observe(7, &format!("{MAPS}{lib}"));
        assert!(!h.replaced(7), "a library mapped in addition");
        h.observe(
            7,
            &format!("{MAPS}7f00-7f80 r-xp 00000000 fe:01 20 /lib/libx.so\n"),
        );
        assert!(
            !h.replaced(7),
            "the same library trimmed at the same address"
        );
        h.observe(
            7,
            &format!("{MAPS}9f00-9f80 r-xp 00000000 fe:01 20 /lib/libx.so\n"),
        );
        assert!(h.replaced(7), "the library unloaded and loaded elsewhere");
        h.observe(7, "400000-401000 r-xp 00000000 fe:01 9 /bin/other\n");
        assert!(h.replaced(7), "an exec");
        assert!(!h.replaced(8), "an unknown process");
    }

    #[test]
    fn parse_keeps_file_identity() {
        let maps = parse_maps(MAPS);
        assert_eq!((maps[0].dev, maps[0].inode), (0xfe << 32 | 0x01, 131));
        assert_eq!(maps[1].inode, 200);
    }

    #[test]
    fn held_files_are_read_instead_of_the_namespaced_path() {
        let dir = std::env::temp_dir().join(format!("lockprof-hold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app");
        std::fs::write(&file, [9u8, 8, 7, 6]).unwrap();
        let mut h = MapsHistory::default();
        // The target sees its binary at a path that does not exist here.
        let text = "1000-2000 r-xp 00000000 fe:01 131 /inside/container/app\n\
                    3000-4000 r-xp 00000000 fe:01 132 /inside/container/lib.so\n\
                    5000-6000 r-xp 00000000 fe:01 131 /inside/container/app\n";
        assert!(h.observe(5, text));
        let mut opened = Vec::new();
        h.hold_files(5, |m| {
            opened.push(m.path.clone());
            // Only the app can be opened (say the library was deleted).
            (m.inode == 131).then(|| File::open(&file).unwrap())
        });
        assert_eq!(opened.len(), 2, "one open per file identity: {opened:?}");
        let mo = h.resolve(5, 0x1002).unwrap();
        assert_eq!(
            mo.path,
            PathBuf::from("/inside/container/app"),
            "shown as the target sees it"
        );
        assert!(
            mo.file.starts_with("/proc/self/fd/"),
            "{}",
            mo.file.display()
        );
        assert_eq!(h.bytes_before(5, 0x1003, 2), Some(vec![8, 7]));
        let lib = h.resolve(5, 0x3000).unwrap();
        assert_eq!(lib.file, lib.path, "not held: read by path");
        // Another process mapping the same inode shares the held file.
        h.observe(6, "7000-8000 r-xp 00000000 fe:01 131 /other/name\n");
        h.hold_files(6, |_| panic!("already held"));
        assert_eq!(h.resolve(6, 0x7000).unwrap().file, mo.file);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_mapped_file_opens_our_own_executable_by_map_files_or_root() {
        let me = std::process::id();
        let text = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let m = parse_maps(&text)
            .into_iter()
            .find(|m| m.path == exe)
            .expect("our executable is mapped");
        // map_files needs CAP_SYS_ADMIN; /proc/PID/root works for anyone.
        let file = open_mapped_file(me, &m).expect("open our own executable");
        assert_eq!(file.metadata().unwrap().ino(), m.inode);
        let wrong = Mapping {
            inode: m.inode + 1,
            ..m
        };
        assert!(
            open_mapped_file(me, &wrong).is_none(),
            "a replaced file is refused"
        );
    }

    #[test]
    fn in_root_puts_the_namespaced_path_below_the_root() {
        assert_eq!(
            in_root(Path::new("/proc/42/root"), Path::new("/usr/bin/app")),
            PathBuf::from("/proc/42/root/usr/bin/app")
        );
    }

    #[test]
    fn a_stack_is_resolved_in_the_layout_it_was_taken_in() {
        let mut h = MapsHistory::default();
        // A shell, then (after exec) an app mapped partly over the shell's addresses.
        h.observe(
            3,
            "1000-2000 r-xp 00000000 fe:01 1 /bin/sh\n5000-6000 r-xp 00000000 fe:01 2 /lib/libc-old.so\n",
        );
        h.observe(
            3,
            "1800-4000 r-xp 00000000 fe:01 3 /app\n8000-9000 r-xp 00000000 fe:01 4 /lib/libc.so\n",
        );
        let module = |mo: &Option<ModuleOffset>| mo.as_ref().map(|m| m.path.clone());
        // Taken in the shell: 0x1900 is the shell's, although /app maps it now.
        let old = h.resolve_stack(3, &[0x5100, 0x1900]);
        assert_eq!(module(&old[0]), Some("/lib/libc-old.so".into()));
        assert_eq!(module(&old[1]), Some("/bin/sh".into()));
        assert_eq!(old[1].as_ref().unwrap().offset, 0x900);
        // Taken in the app.
        let new = h.resolve_stack(3, &[0x8100, 0x1900, 0x3000]);
        assert_eq!(module(&new[1]), Some("/app".into()));
        assert_eq!(new[1].as_ref().unwrap().offset, 0x100);
        // A lone ambiguous address goes to the newest layout, as resolve() does.
        assert_eq!(
            module(&h.resolve_stack(3, &[0x1900])[0]),
            Some("/app".into())
        );
        // Unknown process or address: None, never dropped.
        assert_eq!(h.resolve_stack(9, &[0x1900]), vec![None]);
        assert_eq!(h.resolve_stack(3, &[0x8100, 0xf000])[1], None);
    }

    #[test]
    fn a_process_in_our_mount_namespace_adds_no_container_debug_dir() {
        let mut h = MapsHistory::default();
        assert!(h.refresh(std::process::id()));
        assert!(h.container_debug_dirs().is_empty());
        // Our own executable is held open (a live process, readable by us).
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let start = parse_maps(&maps)
            .into_iter()
            .find(|m| m.path == exe)
            .unwrap()
            .start;
        let mo = h.resolve(std::process::id(), start).unwrap();
        assert!(mo.file.starts_with("/proc/self/fd/"), "{mo:?}");
    }
}

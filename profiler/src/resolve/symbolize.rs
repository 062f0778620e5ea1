//! Turning raw user stacks into named frames.
//!
//! Owns: the [`Symbolize`] trait (module + file offset → frames, innermost first,
//! inlined frames expanded), its blazesym implementation, and [`StackSymbolizer`],
//! which maps a process's raw addresses through the captured `/proc/PID/maps`
//! history and caches results. Must not: decide what a lock site is (`attribute`).
//!
//! Unresolved frames are data, not errors: they keep their module and offset (or just
//! the address) and are counted, never dropped.
//!
//! Stripped binaries: blazesym follows a module's `.gnu_debuglink` into the debug
//! directories (build-id path first, then by name) and otherwise reads `.symtab` or
//! `.dynsym`; [`BlazeSymbolizer`] adds the case blazesym does not cover, a debug file
//! found only by build id (`DIR/.build-id/xx/rest.debug`) for a module that has no
//! debug link, and, when none is found locally, the one a debuginfod server has for
//! that build id (`debuginfod`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use blazesym::symbolize::{self, Symbolized, Symbolizer};

use crate::report::Frame;
use crate::resolve::debuginfod::Debuginfod;
use crate::session::procmaps::{MapsHistory, ModuleOffset};

/// One resolved frame (a function, or a function inlined into the next frame).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedFrame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub inlined: bool,
}

/// Symbolizes file offsets within one module.
pub trait Symbolize {
    /// For each offset, the frames it stands for, innermost first (inlined callees
    /// before the function that contains them); an empty list when unresolved.
    fn symbolize(&mut self, module: &Path, offsets: &[u64]) -> Vec<Vec<ResolvedFrame>>;
}

/// Where split debug information is looked for when no `--debug-dir` is given.
pub const DEFAULT_DEBUG_DIRS: [&str; 2] = ["/usr/lib/debug", "/lib/debug"];

/// blazesym over the module's ELF file: symbol tables plus DWARF for lines and
/// inlined functions, with Rust and C++ names demangled, and split debug files from
/// the debug directories.
pub struct BlazeSymbolizer {
    inner: Symbolizer,
    debug_dirs: Vec<PathBuf>,
    /// Fetches debug files by build id when none is found locally.
    debuginfod: Option<Debuginfod>,
}

impl Default for BlazeSymbolizer {
    fn default() -> Self {
        Self::with_debug_dirs(&[])
    }
}

impl BlazeSymbolizer {
    /// Look for split debug files in `extra` first, then in [`DEFAULT_DEBUG_DIRS`].
    pub fn with_debug_dirs(extra: &[PathBuf]) -> Self {
        let debug_dirs = debug_dirs(extra);
        Self {
            inner: Symbolizer::builder()
                .enable_code_info(true)
                .enable_inlined_fns(true)
                .enable_demangling(true)
                .set_debug_dirs(Some(&debug_dirs))
                .build(),
            debug_dirs,
            debuginfod: None,
        }
    }

    /// Also fetch missing debug files from debuginfod servers.
    #[must_use]
    pub fn with_debuginfod(mut self, client: Option<Debuginfod>) -> Self {
        self.debuginfod = client;
        self
    }

    fn symbolize_source(
        &self,
        src: &symbolize::source::Source<'_>,
        input: symbolize::Input<&[u64]>,
        n: usize,
    ) -> Vec<Vec<ResolvedFrame>> {
        let Ok(results) = self.inner.symbolize(src, input) else {
            // Unreadable module (deleted, no permission): every frame stays unresolved.
            return vec![Vec::new(); n];
        };
        results
            .into_iter()
            .map(|r| match r {
                Symbolized::Sym(sym) => expand_inlined(&sym),
                Symbolized::Unknown(_) => Vec::new(),
            })
            .collect()
    }

    /// Frames from the debug file named by `module`'s build id, for `offsets` (file
    /// offsets in `module`, which the debug file does not share: they go through
    /// the module's virtual addresses). `None` when there is no such file.
    fn symbolize_build_id_file(
        &mut self,
        module: &Path,
        offsets: &[u64],
    ) -> Option<Vec<Vec<ResolvedFrame>>> {
        use blazesym::symbolize::TranslateFileOffset;
        let build_id = blazesym::helper::read_elf_build_id(module).ok()??;
        let local = build_id_paths(&self.debug_dirs, &build_id)
            .into_iter()
            .find(|p| p.is_file());
        let debug_file = match local {
            Some(p) => p,
            None => self.debuginfod.as_mut()?.debuginfo(&build_id, module)?,
        };
        let elf = blazesym::helper::ElfResolver::open(module).ok()?;
        let virt: Vec<Option<u64>> = offsets
            .iter()
            .map(|&o| elf.file_offset_to_virt_offset(o).ok().flatten())
            .collect();
        let known: Vec<u64> = virt.iter().flatten().copied().collect();
        let src = symbolize::source::Source::Elf(symbolize::source::Elf::new(debug_file));
        let mut resolved = self
            .symbolize_source(&src, symbolize::Input::VirtOffset(&known), known.len())
            .into_iter();
        Some(
            virt.iter()
                .map(|v| match v {
                    Some(_) => resolved.next().unwrap_or_default(),
                    None => Vec::new(),
                })
                .collect(),
        )
    }
}

impl Symbolize for BlazeSymbolizer {
    fn symbolize(&mut self, module: &Path, offsets: &[u64]) -> Vec<Vec<ResolvedFrame>> {
        let src = symbolize::source::Source::Elf(symbolize::source::Elf::new(module));
        let frames =
            self.symbolize_source(&src, symbolize::Input::FileOffset(offsets), offsets.len());
        // No line information at all: a stripped module whose debug file blazesym
        // did not find (no debug link). Try its build id.
        let has_lines = frames.iter().flatten().any(|f| f.line.is_some());
        if has_lines || offsets.is_empty() {
            return frames;
        }
        match self.symbolize_build_id_file(module, offsets) {
            Some(debug) => frames
                .into_iter()
                .zip(debug)
                .map(|(plain, debug)| if debug.is_empty() { plain } else { debug })
                .collect(),
            None => frames,
        }
    }
}

/// `extra` then the defaults, without duplicates.
pub fn debug_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in extra
        .iter()
        .cloned()
        .chain(DEFAULT_DEBUG_DIRS.iter().map(PathBuf::from))
    {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Lower-case hex of a build id, as debug directories and debuginfod name it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `DIR/.build-id/xx/rest.debug` for each debug directory (the GDB convention).
pub fn build_id_paths(dirs: &[PathBuf], build_id: &[u8]) -> Vec<PathBuf> {
    let Some((first, rest)) = build_id.split_first() else {
        return Vec::new();
    };
    let rest = hex(rest);
    dirs.iter()
        .map(|d| {
            d.join(".build-id")
                .join(format!("{first:02x}"))
                .join(format!("{rest}.debug"))
        })
        .collect()
}

/// blazesym reports the outer function with its inlined callees ordered outer → inner,
/// each `code_info` being the location inside that function. We want innermost first.
fn expand_inlined(sym: &symbolize::Sym<'_>) -> Vec<ResolvedFrame> {
    let mut frames = Vec::with_capacity(sym.inlined.len() + 1);
    for f in sym.inlined.iter().rev() {
        let (file, line) = code_location(f.code_info.as_ref());
        frames.push(ResolvedFrame {
            function: f.name.to_string(),
            file,
            line,
            inlined: true,
        });
    }
    let (file, line) = code_location(sym.code_info.as_deref());
    frames.push(ResolvedFrame {
        function: sym.name.to_string(),
        file,
        line,
        inlined: false,
    });
    frames
}

fn code_location(info: Option<&symbolize::CodeInfo<'_>>) -> (Option<String>, Option<u32>) {
    match info {
        Some(ci) => (Some(ci.to_path().display().to_string()), ci.line),
        None => (None, None),
    }
}

/// Symbolizes whole stacks of traced processes, with a cache per (module, offset).
pub struct StackSymbolizer<S> {
    symbolizer: S,
    cache: HashMap<(PathBuf, u64), Vec<ResolvedFrame>>,
    /// Asked before each module: `true` stops symbolizing (the rest stay module+offset).
    stop: fn() -> bool,
    /// `stop` said so while modules were left: some frames stayed module+offset.
    stopped: bool,
}

impl<S: Symbolize> StackSymbolizer<S> {
    pub fn new(symbolizer: S) -> Self {
        Self {
            symbolizer,
            cache: HashMap::new(),
            stop: || false,
            stopped: false,
        }
    }

    /// Stop symbolizing, before the next module, once `stop` says so (a second
    /// Ctrl-C): frames not resolved yet are kept as module+offset.
    #[must_use]
    pub fn stop_when(mut self, stop: fn() -> bool) -> Self {
        self.stop = stop;
        self
    }

    /// Whether `stop` cut symbolizing short, leaving frames as module+offset.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Resolve many stacks of many processes at once, batching lookups per module.
    /// `stacks` are raw addresses, innermost first (the first is the exact IP, the rest
    /// are return addresses).
    pub fn symbolize_stacks(
        &mut self,
        maps: &MapsHistory,
        stacks: &[(u32, &[u64])],
    ) -> Vec<Vec<Frame>> {
        // Each stack against one layout of its process: the one it was taken in.
        let located: Vec<Vec<Option<ModuleOffset>>> = stacks
            .iter()
            .map(|(pid, addrs)| {
                let lookups: Vec<u64> = addrs
                    .iter()
                    .enumerate()
                    .map(|(i, &a)| lookup_addr(i, a))
                    .collect();
                maps.resolve_stack(*pid, &lookups)
            })
            .collect();
        // Batch every uncached (module, offset) per module.
        let mut wanted: HashMap<PathBuf, Vec<u64>> = HashMap::new();
        for mo in located.iter().flatten().flatten() {
            // Keyed by the file read, not the name shown: two containers'
            // `/usr/bin/app` are different files.
            let key = (mo.file.clone(), mo.offset);
            if !self.cache.contains_key(&key) {
                wanted.entry(mo.file.clone()).or_default().push(mo.offset);
            }
        }
        for (path, mut offsets) in wanted {
            if (self.stop)() {
                self.stopped = true;
                break;
            }
            offsets.sort_unstable();
            offsets.dedup();
            let resolved = self.symbolizer.symbolize(&path, &offsets);
            for (off, frames) in offsets.into_iter().zip(resolved) {
                self.cache.insert((path.clone(), off), frames);
            }
        }
        stacks
            .iter()
            .zip(located)
            .map(|((_, addrs), located)| {
                let mut out = Vec::with_capacity(addrs.len());
                for (&addr, mo) in addrs.iter().zip(located) {
                    self.push_frames(addr, mo, &mut out);
                }
                out
            })
            .collect()
    }

    fn push_frames(&mut self, addr: u64, mo: Option<ModuleOffset>, out: &mut Vec<Frame>) {
        let address = format!("{addr:#x}");
        let Some(mo) = mo else {
            out.push(Frame {
                address,
                ..Frame::default()
            });
            return;
        };
        let module = Some(mo.path.display().to_string());
        let module_offset = Some(format!("{:#x}", mo.offset));
        let resolved = self
            .cache
            .get(&(mo.file, mo.offset))
            .map_or(&[][..], Vec::as_slice);
        if resolved.is_empty() {
            out.push(Frame {
                address,
                module,
                module_offset,
                ..Frame::default()
            });
            return;
        }
        for rf in resolved {
            out.push(Frame {
                address: address.clone(),
                function: Some(rf.function.clone()),
                file: rf.file.clone(),
                line: rf.line,
                module: module.clone(),
                module_offset: module_offset.clone(),
                inlined: rf.inlined,
                lock_impl: false,
            });
        }
    }
}

/// Return addresses point after the call; look up the byte before so the frame
/// names the call's line (and the right function when the call is the last
/// instruction). The first frame is the exact instruction pointer.
fn lookup_addr(index: usize, addr: u64) -> u64 {
    if index == 0 {
        addr
    } else {
        addr.saturating_sub(1)
    }
}

/// A symbolizer with a fixed table, for tests: `(module, offset) → frames`.
#[derive(Default)]
pub struct FakeSymbolizer {
    pub table: HashMap<(PathBuf, u64), Vec<ResolvedFrame>>,
    pub calls: usize,
}

impl Symbolize for FakeSymbolizer {
    fn symbolize(&mut self, module: &Path, offsets: &[u64]) -> Vec<Vec<ResolvedFrame>> {
        self.calls += 1;
        offsets
            .iter()
            .map(|&o| {
                self.table
                    .get(&(module.to_path_buf(), o))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rf(name: &str, line: u32, inlined: bool) -> ResolvedFrame {
        ResolvedFrame {
            function: name.into(),
            file: Some("src/main.rs".into()),
            line: Some(line),
            inlined,
        }
    }

    fn maps() -> MapsHistory {
        let mut m = MapsHistory::default();
        m.observe(
            1,
            "1000-2000 r-xp 00000000 00:01 1 /bin/app\n5000-6000 r-xp 00010000 00:01 2 /lib/libc.so.6\n",
        );
        m
    }

    #[test]
    fn return_addresses_are_looked_up_one_byte_back_and_inlines_expand() {
        let mut fake = FakeSymbolizer::default();
        fake.table.insert(
            ("/lib/libc.so.6".into(), 0x10100),
            vec![rf("syscall", 1, false)],
        );
        fake.table.insert(
            ("/bin/app".into(), 0x1ff),
            vec![rf("inner", 10, true), rf("outer", 20, false)],
        );
        let mut s = StackSymbolizer::new(fake);
        let stack = [0x5100u64, 0x1200];
        let out = s.symbolize_stacks(&maps(), &[(1, &stack)]);
        let names: Vec<_> = out[0].iter().map(|f| f.function.clone().unwrap()).collect();
        assert_eq!(names, ["syscall", "inner", "outer"]);
        assert!(out[0][1].inlined && !out[0][2].inlined);
        assert_eq!(out[0][2].module.as_deref(), Some("/bin/app"));
    }

    #[test]
    fn unresolved_frames_are_kept_as_module_offset_or_address() {
        let mut s = StackSymbolizer::new(FakeSymbolizer::default());
        let stack = [0x1100u64, 0x9999];
        let out = s.symbolize_stacks(&maps(), &[(1, &stack)]);
        assert_eq!(out[0].len(), 2);
        assert_eq!(out[0][0].module_offset.as_deref(), Some("0x100"));
        assert_eq!(out[0][1].module, None);
        assert_eq!(out[0][1].address, "0x9999");
        assert!(out[0].iter().all(|f| f.function.is_none()));
    }

    #[test]
    fn a_stop_request_leaves_frames_as_module_and_offset() {
        let mut fake = FakeSymbolizer::default();
        fake.table
            .insert(("/bin/app".into(), 0x100), vec![rf("main", 1, false)]);
        let mut s = StackSymbolizer::new(fake).stop_when(|| true);
        let stack = [0x1100u64];
        let out = s.symbolize_stacks(&maps(), &[(1, &stack)]);
        assert_eq!(
            s.symbolizer.calls, 0,
            "no module is read once asked to stop"
        );
        assert_eq!(out[0][0].function, None);
        assert_eq!(out[0][0].module.as_deref(), Some("/bin/app"));
        assert_eq!(out[0][0].module_offset.as_deref(), Some("0x100"));
    }

    #[test]
    fn lookups_are_cached_and_batched_per_module() {
        let mut s = StackSymbolizer::new(FakeSymbolizer::default());
        let a = [0x1100u64, 0x1200];
        let b = [0x1100u64];
        s.symbolize_stacks(&maps(), &[(1, &a), (1, &b)]);
        s.symbolize_stacks(&maps(), &[(1, &b)]);
        assert_eq!(
            s.symbolizer.calls, 1,
            "one batch for /bin/app, then cache hits"
        );
    }

    #[test]
    fn build_id_paths_follow_the_gdb_layout() {
        let dirs = debug_dirs(&[PathBuf::from("/opt/dbg")]);
        assert_eq!(
            dirs,
            [
                PathBuf::from("/opt/dbg"),
                PathBuf::from("/usr/lib/debug"),
                PathBuf::from("/lib/debug")
            ]
        );
        assert_eq!(debug_dirs(&[PathBuf::from("/usr/lib/debug")]).len(), 2);
        let paths = build_id_paths(&dirs[..1], &[0x93, 0xac, 0x61, 0x0e]);
        assert_eq!(paths, [PathBuf::from("/opt/dbg/.build-id/93/ac610e.debug")]);
        assert!(build_id_paths(&dirs, &[]).is_empty());
    }

    #[test]
    fn the_same_path_in_two_containers_is_two_modules() {
        // Two processes map "/usr/bin/app", but they are different files: held
        // open as different descriptors, looked up separately.
        let dir = std::env::temp_dir().join(format!("lockprof-two-apps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), b"a").unwrap();
        std::fs::write(dir.join("b"), b"b").unwrap();
        let mut m = MapsHistory::default();
        m.observe(1, "1000-2000 r-xp 00000000 00:01 11 /usr/bin/app\n");
        m.observe(2, "1000-2000 r-xp 00000000 00:02 11 /usr/bin/app\n");
        m.hold_files(1, |_| std::fs::File::open(dir.join("a")).ok());
        m.hold_files(2, |_| std::fs::File::open(dir.join("b")).ok());
        let fa = m.resolve(1, 0x1100).unwrap().file;
        let fb = m.resolve(2, 0x1100).unwrap().file;
        assert_ne!(fa, fb);
        let mut fake = FakeSymbolizer::default();
        fake.table.insert((fa, 0x100), vec![rf("in_a", 1, false)]);
        fake.table.insert((fb, 0x100), vec![rf("in_b", 2, false)]);
        let mut s = StackSymbolizer::new(fake);
        let stack = [0x1100u64];
        let out = s.symbolize_stacks(&m, &[(1, &stack), (2, &stack)]);
        assert_eq!(out[0][0].function.as_deref(), Some("in_a"));
        assert_eq!(out[1][0].function.as_deref(), Some("in_b"));
        assert_eq!(out[1][0].module.as_deref(), Some("/usr/bin/app"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Turning raw user stacks into named frames.
//!
//! Owns: the [`Symbolize`] trait (module + file offset → frames, innermost first,
//! inlined frames expanded), its blazesym implementation, and [`StackSymbolizer`],
//! which maps a process's raw addresses through the captured `/proc/PID/maps`
//! history and caches results. Must not: decide what a lock site is (`attribute`).
//!
//! Unresolved frames are data, not errors: they keep their module and offset (or just
//! the address) and are counted, never dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use blazesym::symbolize::{self, Symbolized, Symbolizer};

use crate::procmaps::MapsHistory;
use crate::report::Frame;

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

/// blazesym over the module's ELF file: symbol tables plus DWARF for lines and
/// inlined functions, with Rust and C++ names demangled.
pub struct BlazeSymbolizer {
    inner: Symbolizer,
}

impl Default for BlazeSymbolizer {
    fn default() -> Self {
        Self {
            inner: Symbolizer::builder()
                .enable_code_info(true)
                .enable_inlined_fns(true)
                .enable_demangling(true)
                .build(),
        }
    }
}

impl Symbolize for BlazeSymbolizer {
    fn symbolize(&mut self, module: &Path, offsets: &[u64]) -> Vec<Vec<ResolvedFrame>> {
        let src = symbolize::source::Source::Elf(symbolize::source::Elf::new(module));
        let Ok(results) = self
            .inner
            .symbolize(&src, symbolize::Input::FileOffset(offsets))
        else {
            // Unreadable module (deleted, no permission): every frame stays unresolved.
            return vec![Vec::new(); offsets.len()];
        };
        results
            .into_iter()
            .map(|r| match r {
                Symbolized::Sym(sym) => expand_inlined(&sym),
                Symbolized::Unknown(_) => Vec::new(),
            })
            .collect()
    }
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
    /// Frames that could not be named (kept as module+offset or raw address).
    pub unresolved: u64,
}

impl<S: Symbolize> StackSymbolizer<S> {
    pub fn new(symbolizer: S) -> Self {
        Self {
            symbolizer,
            cache: HashMap::new(),
            unresolved: 0,
        }
    }

    /// Resolve many stacks of many processes at once, batching lookups per module.
    /// `stacks` are raw addresses, innermost first (the first is the exact IP, the rest
    /// are return addresses).
    pub fn symbolize_stacks(
        &mut self,
        maps: &MapsHistory,
        stacks: &[(u32, &[u64])],
    ) -> Vec<Vec<Frame>> {
        // Batch every uncached (module, offset) per module.
        let mut wanted: HashMap<PathBuf, Vec<u64>> = HashMap::new();
        for (pid, addrs) in stacks {
            for (i, &addr) in addrs.iter().enumerate() {
                if let Some(mo) = maps.resolve(*pid, lookup_addr(i, addr)) {
                    let key = (mo.path.clone(), mo.offset);
                    if !self.cache.contains_key(&key) {
                        wanted.entry(mo.path).or_default().push(mo.offset);
                    }
                }
            }
        }
        for (path, mut offsets) in wanted {
            offsets.sort_unstable();
            offsets.dedup();
            let resolved = self.symbolizer.symbolize(&path, &offsets);
            for (off, frames) in offsets.into_iter().zip(resolved) {
                self.cache.insert((path.clone(), off), frames);
            }
        }
        stacks
            .iter()
            .map(|(pid, addrs)| {
                let mut out = Vec::with_capacity(addrs.len());
                for (i, &addr) in addrs.iter().enumerate() {
                    self.push_frames(maps, *pid, i, addr, &mut out);
                }
                out
            })
            .collect()
    }

    fn push_frames(
        &mut self,
        maps: &MapsHistory,
        pid: u32,
        i: usize,
        addr: u64,
        out: &mut Vec<Frame>,
    ) {
        let address = format!("{addr:#x}");
        let Some(mo) = maps.resolve(pid, lookup_addr(i, addr)) else {
            self.unresolved += 1;
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
            .get(&(mo.path, mo.offset))
            .map_or(&[][..], Vec::as_slice);
        if resolved.is_empty() {
            self.unresolved += 1;
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
        assert_eq!(s.unresolved, 0);
    }

    #[test]
    fn unresolved_frames_are_kept_and_counted() {
        let mut s = StackSymbolizer::new(FakeSymbolizer::default());
        let stack = [0x1100u64, 0x9999];
        let out = s.symbolize_stacks(&maps(), &[(1, &stack)]);
        assert_eq!(out[0].len(), 2);
        assert_eq!(out[0][0].module_offset.as_deref(), Some("0x100"));
        assert_eq!(out[0][1].module, None);
        assert_eq!(out[0][1].address, "0x9999");
        assert_eq!(s.unresolved, 2);
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
}

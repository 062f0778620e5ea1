//! Go executables: detection from `.go.buildinfo` and symbolization from `.gopclntab`.
//!
//! Owns: reading a Go binary's own tables — the toolchain version in its build info,
//! the runtime's function table (names, entry points, `file:line` per pc) — and
//! [`GoFallback`], a [`Symbolize`] wrapper that names the frames of Go modules the
//! wrapped symbolizer left unresolved. Both tables survive `strip` (the Go runtime needs
//! them for its own tracebacks), so a stripped daemon is still named. Must not: decide
//! what a frame means (`analyze::go` does) or touch the kernel.
//!
//! Layout (Go 1.18+, `runtime/symtab.go` `pcHeader`, `_func`, `pcvalue`): the header
//! gives offsets of the name, compilation-unit, file, pc-value and function tables;
//! the function table is sorted `(entryoff, funcoff)` pairs relative to `textStart`.
//! Go 1.20 inserted `startLine` into `_func` (magic `0xfffffff1`); 1.18/1.19 use
//! `0xfffffff0`. Older formats are refused with a clear error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSegment};
use thiserror::Error;

use crate::resolve::symbolize::{ResolvedFrame, Symbolize};

/// Why a Go binary's tables could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GoTableError {
    /// The file is not an ELF object we can parse.
    #[error("'{0}' is not a readable ELF file")]
    NotElf(String),
    /// The file has no `.gopclntab` section: not a Go executable.
    #[error("'{0}' has no .gopclntab section (not a Go executable)")]
    NoPclntab(String),
    /// A Go version whose table layout we do not know (before 1.18).
    #[error(
        "'{path}': Go function table with magic {magic:#x} (only Go 1.18 and later are supported)"
    )]
    UnsupportedVersion { path: String, magic: u32 },
    /// The table is cut short or points outside itself.
    #[error("'{0}': truncated or corrupt .gopclntab")]
    Corrupt(String),
}

/// The Go toolchain version recorded in an executable's `.go.buildinfo` section
/// (e.g. `go1.19.8`), or `None` when the file is not a Go executable.
pub fn go_version(data: &[u8]) -> Option<String> {
    let file = object::File::parse(data).ok()?;
    let info = file.section_by_name(".go.buildinfo")?.data().ok()?;
    build_info_version(info, &file)
}

/// `.go.buildinfo`: 14 magic bytes `\xff Go buildinf:`, pointer size, flags. With flag
/// bit 2 (Go 1.18+) the version follows inline at offset 32 as a varint-prefixed
/// string; before, two pointers at 16 lead to Go string headers in the data.
fn build_info_version(info: &[u8], file: &object::File<'_>) -> Option<String> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    if info.len() < 32 || !info.starts_with(MAGIC) {
        return None;
    }
    let ptr_size = usize::from(info[14]);
    let flags = info[15];
    if flags & 2 != 0 {
        let (len, n) = uvarint(&info[32..])?;
        let start = 32 + n;
        let bytes = info.get(start..start + usize::try_from(len).ok()?)?;
        return String::from_utf8(bytes.to_vec()).ok();
    }
    // Old layout: a pointer to a string header {ptr, len}.
    if ptr_size != 8 {
        return None;
    }
    let header = u64::from_le_bytes(info.get(16..24)?.try_into().ok()?);
    let hdr = read_vaddr(file, header, 16)?;
    let ptr = u64::from_le_bytes(hdr[..8].try_into().ok()?);
    let len = u64::from_le_bytes(hdr[8..16].try_into().ok()?);
    let bytes = read_vaddr(file, ptr, usize::try_from(len).ok()?)?;
    String::from_utf8(bytes).ok()
}

fn read_vaddr(file: &object::File<'_>, vaddr: u64, len: usize) -> Option<Vec<u8>> {
    file.sections().find_map(|s| {
        let start = s.address();
        if vaddr < start || vaddr + len as u64 > start + s.size() {
            return None;
        }
        let data = s.data().ok()?;
        let at = usize::try_from(vaddr - start).ok()?;
        data.get(at..at + len).map(<[u8]>::to_vec)
    })
}

/// A resolved program counter: the function containing it and its source position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoPc {
    pub function: String,
    /// Inlined into the next frame out (see [`GoTables::frames`]).
    pub inlined: bool,
    /// The function's entry address.
    pub entry: u64,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// One loadable segment: file offsets `[offset, offset+filesz)` are mapped at `vaddr`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// A Go executable's function table, copied out of the file.
pub struct GoTables {
    /// The toolchain version from the build info (`go1.19.8`), when present.
    pub version: Option<String>,
    tab: Vec<u8>,
    nfunc: usize,
    text_start: u64,
    funcname: usize,
    cutab: usize,
    filetab: usize,
    pctab: usize,
    functab: usize,
    segments: Vec<Segment>,
    /// `_func` layout: Go 1.20+ has `startLine` before `funcID`, moving the
    /// `pcdata`/`funcdata` arrays by 4 bytes, and a shorter inline-tree entry.
    go120: bool,
    /// The bytes from `moduledata.gofunc` (the base of funcdata offsets) to the end of
    /// its section: where inline trees live. Empty when it could not be found.
    gofunc: Vec<u8>,
}

impl GoTables {
    /// Read the tables of the Go executable at `path`.
    pub fn open(path: &Path) -> Result<Self, GoTableError> {
        let name = path.display().to_string();
        let file = crate::resolve::mapped::MappedFile::open(path)
            .ok_or_else(|| GoTableError::NotElf(name.clone()))?;
        Self::parse(file.bytes(), &name)
    }

    /// Read the tables from a whole ELF file's bytes (`name` is used in errors).
    pub fn parse(data: &[u8], name: &str) -> Result<Self, GoTableError> {
        let file = object::File::parse(data).map_err(|_| GoTableError::NotElf(name.into()))?;
        let section = file
            .section_by_name(".gopclntab")
            .ok_or_else(|| GoTableError::NoPclntab(name.into()))?;
        let tab = section
            .data()
            .map_err(|_| GoTableError::Corrupt(name.into()))?
            .to_vec();
        let corrupt = || GoTableError::Corrupt(name.into());
        let magic = u32::from_le_bytes(
            tab.get(..4)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?,
        );
        let go120 = magic == 0xffff_fff1;
        if magic != 0xffff_fff0 && !go120 {
            return Err(GoTableError::UnsupportedVersion {
                path: name.into(),
                magic,
            });
        }
        if tab.get(7) != Some(&8) {
            return Err(corrupt());
        }
        let word = |i: usize| -> Result<u64, GoTableError> {
            let at = 8 + 8 * i;
            tab.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or_else(corrupt)
        };
        let as_off = |v: u64| usize::try_from(v).map_err(|_| corrupt());
        let mut text_start = word(2)?;
        if text_start == 0 {
            // A position-independent build relocates the field at load time.
            text_start = file.section_by_name(".text").ok_or_else(corrupt)?.address();
        }
        let segments = file
            .segments()
            .filter_map(|s| {
                let (offset, filesz) = s.file_range();
                (filesz > 0).then_some(Segment {
                    offset,
                    vaddr: s.address(),
                    filesz,
                })
            })
            .collect();
        let tables = GoTables {
            version: file
                .section_by_name(".go.buildinfo")
                .and_then(|s| s.data().ok())
                .and_then(|info| build_info_version(info, &file)),
            nfunc: as_off(word(0)?)?,
            text_start,
            funcname: as_off(word(3)?)?,
            cutab: as_off(word(4)?)?,
            filetab: as_off(word(5)?)?,
            pctab: as_off(word(6)?)?,
            functab: as_off(word(7)?)?,
            gofunc: gofunc_bytes(&file, section.address(), go120).unwrap_or_default(),
            tab,
            segments,
            go120,
        };
        // The function table and its sentinel must be inside the section.
        if tables.functab + (tables.nfunc + 1) * 8 > tables.tab.len() {
            return Err(corrupt());
        }
        Ok(tables)
    }

    /// Number of functions in the table.
    pub fn len(&self) -> usize {
        self.nfunc
    }

    pub fn is_empty(&self) -> bool {
        self.nfunc == 0
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        self.tab
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }

    fn cstr_at(&self, at: usize) -> Option<&str> {
        let bytes = self.tab.get(at..)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&bytes[..end]).ok()
    }

    /// `(entry offset from textStart, offset of its _func in the function table)`.
    fn functab_entry(&self, i: usize) -> Option<(u32, u32)> {
        let at = self.functab + i * 8;
        Some((self.u32_at(at)?, self.u32_at(at + 4)?))
    }

    /// Every function's name and entry address.
    pub fn functions(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        (0..self.nfunc).filter_map(|i| {
            let (entry, func) = self.functab_entry(i)?;
            let name = self.func_name(self.functab + func as usize)?;
            Some((name, self.text_start + u64::from(entry)))
        })
    }

    /// The entry address of function `name` (e.g. `runtime.gopark`).
    pub fn function_entry(&self, name: &str) -> Option<u64> {
        self.functions()
            .find(|&(n, _)| n == name)
            .map(|(_, entry)| entry)
    }

    fn func_name(&self, func: usize) -> Option<&str> {
        let name_off = self.u32_at(func + 4)? as usize;
        self.cstr_at(self.funcname + name_off)
    }

    /// The function containing virtual address `pc`, with its file and line.
    pub fn lookup(&self, pc: u64) -> Option<GoPc> {
        let rel = u32::try_from(pc.checked_sub(self.text_start)?).ok()?;
        // Entries are sorted; the sentinel entry (index nfunc) holds the end of text.
        let (end, _) = self.functab_entry(self.nfunc)?;
        if rel >= end {
            return None;
        }
        let (mut lo, mut hi) = (0, self.nfunc);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.functab_entry(mid)?.0 <= rel {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (entry_off, func_off) = self.functab_entry(lo)?;
        if entry_off > rel {
            return None;
        }
        let func = self.functab + func_off as usize;
        let entry = self.text_start + u64::from(entry_off);
        let function = self.func_name(func)?.to_owned();
        let pcfile = self.u32_at(func + 20)?;
        let pcln = self.u32_at(func + 24)?;
        let cu = self.u32_at(func + 32)?;
        let file = self
            .pcvalue(pcfile, entry, pc)
            .and_then(|idx| self.file_name(cu, idx));
        let line = self
            .pcvalue(pcln, entry, pc)
            .and_then(|l| u32::try_from(l).ok());
        Some(GoPc {
            function,
            inlined: false,
            entry,
            file,
            line,
        })
    }

    /// The frames at `pc`, innermost first: the functions inlined there (marked
    /// `inlined`, from the function's inline tree), then the function itself, each
    /// with the source position of the call into the next inner one.
    pub fn frames(&self, pc: u64) -> Vec<GoPc> {
        let Some(outer) = self.lookup(pc) else {
            return Vec::new();
        };
        let Some(func) = self.func_at(outer.entry) else {
            return vec![outer];
        };
        let mut out = Vec::new();
        let mut at = pc;
        // Each step goes one call outwards; an inline tree is a few levels deep, the
        // bound only guards against a corrupt table looping.
        for _ in 0..64 {
            let Some(call) = self.inlined_call(func, outer.entry, at) else {
                break;
            };
            let (file, line) = self.position(func, outer.entry, at);
            out.push(GoPc {
                function: call.name,
                entry: outer.entry,
                file,
                line,
                inlined: true,
            });
            at = outer.entry + u64::from(call.parent_pc);
        }
        let (file, line) = self.position(func, outer.entry, at);
        out.push(GoPc {
            file,
            line,
            ..outer
        });
        out
    }

    /// Offset in the table of the `_func` whose entry is `entry`.
    fn func_at(&self, entry: u64) -> Option<usize> {
        let rel = u32::try_from(entry.checked_sub(self.text_start)?).ok()?;
        let (mut lo, mut hi) = (0, self.nfunc);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (e, f) = self.functab_entry(mid)?;
            match e.cmp(&rel) {
                std::cmp::Ordering::Equal => return Some(self.functab + f as usize),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    fn position(&self, func: usize, entry: u64, pc: u64) -> (Option<String>, Option<u32>) {
        let file = self.u32_at(func + 20).and_then(|pcfile| {
            let cu = self.u32_at(func + 32)?;
            self.pcvalue(pcfile, entry, pc)
                .and_then(|idx| self.file_name(cu, idx))
        });
        let line = self
            .u32_at(func + 24)
            .and_then(|pcln| self.pcvalue(pcln, entry, pc))
            .and_then(|l| u32::try_from(l).ok());
        (file, line)
    }

    /// The inlined call `pc` is in, from `PCDATA_InlTreeIndex` (2) and
    /// `FUNCDATA_InlTree` (3): `None` when `pc` is in the function's own code.
    fn inlined_call(&self, func: usize, entry: u64, pc: u64) -> Option<InlinedCall> {
        const PCDATA_INL_TREE_INDEX: usize = 2;
        const FUNCDATA_INL_TREE: usize = 3;
        if self.gofunc.is_empty() {
            return None;
        }
        let npcdata = self.u32_at(func + 28)? as usize;
        let (nfuncdata_at, arrays) = if self.go120 { (43, 44) } else { (39, 40) };
        let nfuncdata = usize::from(*self.tab.get(func + nfuncdata_at)?);
        if npcdata <= PCDATA_INL_TREE_INDEX || nfuncdata <= FUNCDATA_INL_TREE {
            return None;
        }
        let index_table = self.u32_at(func + arrays + 4 * PCDATA_INL_TREE_INDEX)?;
        let tree = self.u32_at(func + arrays + 4 * npcdata + 4 * FUNCDATA_INL_TREE)?;
        if tree == u32::MAX {
            return None;
        }
        let index = usize::try_from(self.pcvalue(index_table, entry, pc)?).ok()?;
        let read = |at: usize| -> Option<u32> {
            self.gofunc
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        // Go 1.20+: {funcID u8, _ [3]u8, nameOff i32, parentPc i32, startLine i32};
        // 1.18/1.19: {parent i16, funcID u8, _ u8, file i32, line i32, func_ i32,
        // parentPc i32}.
        let (size, name_at, parent_at) = if self.go120 { (16, 4, 8) } else { (20, 12, 16) };
        let base = tree as usize + index * size;
        let name_off = read(base + name_at)? as usize;
        Some(InlinedCall {
            name: self.cstr_at(self.funcname + name_off)?.to_owned(),
            parent_pc: read(base + parent_at)?,
        })
    }

    fn file_name(&self, cu: u32, idx: i32) -> Option<String> {
        let idx = u32::try_from(idx).ok()?;
        let off = self.u32_at(self.cutab + 4 * (cu as usize + idx as usize))?;
        if off == u32::MAX {
            return None;
        }
        self.cstr_at(self.filetab + off as usize).map(str::to_owned)
    }

    /// Decode the pc-value table at `off` (runtime `pcvalue`): the value in effect at
    /// `target`. Pairs of zigzag value delta and pc delta; a zero value delta after
    /// the first pair ends the table.
    fn pcvalue(&self, off: u32, entry: u64, target: u64) -> Option<i32> {
        if off == 0 {
            return None;
        }
        let mut p = self.tab.get(self.pctab + off as usize..)?;
        let mut pc = entry;
        let mut val: i32 = -1;
        let mut first = true;
        loop {
            let (uv, n) = uvarint(p)?;
            if uv == 0 && !first {
                return None;
            }
            first = false;
            let uv = uv as u32;
            val = val.wrapping_add((-((uv & 1) as i32)) ^ ((uv >> 1) as i32));
            p = &p[n..];
            let (pcdelta, n) = uvarint(p)?;
            p = &p[n..];
            // amd64's pc quantum is 1.
            pc += pcdelta;
            if target < pc {
                return Some(val);
            }
        }
    }

    /// Virtual address of file offset `offset` (as seen in `/proc/PID/maps`).
    pub fn offset_to_vaddr(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| offset >= s.offset && offset < s.offset + s.filesz)
            .map(|s| offset - s.offset + s.vaddr)
    }

    /// File offset of virtual address `vaddr` (what a uprobe is attached at).
    pub fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz)
            .map(|s| vaddr - s.vaddr + s.offset)
    }
}

/// One entry of a function's inline tree.
struct InlinedCall {
    name: String,
    /// Offset from the function's entry of an instruction at the call site, in the
    /// caller's code (its position is the call's).
    parent_pc: u32,
}

/// The bytes at `moduledata.gofunc` to the end of their section. The runtime's
/// `moduledata` (in `.noptrdata`, found by its first field, the address of the
/// `.gopclntab` header) holds `gofunc` at offset 304 (1.18/1.19) or 320 (1.20+, after
/// the coverage counters were added).
fn gofunc_bytes(file: &object::File<'_>, pclntab: u64, go120: bool) -> Option<Vec<u8>> {
    let noptrdata = file.section_by_name(".noptrdata")?;
    let data = noptrdata.data().ok()?;
    let at = data
        .chunks_exact(8)
        .position(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()) == pclntab)?
        * 8;
    let field = at + if go120 { 320 } else { 304 };
    let gofunc = u64::from_le_bytes(data.get(field..field + 8)?.try_into().ok()?);
    file.sections().find_map(|s| {
        let start = s.address();
        if gofunc < start || gofunc >= start + s.size() {
            return None;
        }
        let bytes = s.data().ok()?;
        bytes
            .get(usize::try_from(gofunc - start).ok()?..)
            .map(<[u8]>::to_vec)
    })
}

/// Unsigned LEB128 as Go's `encoding/binary.Uvarint`: the value and bytes used.
fn uvarint(p: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in p.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A [`Symbolize`] that asks `inner` first and names what it left unresolved in Go
/// executables from their `.gopclntab` (function, `file:line`). Non-Go modules and
/// unreadable ones pass through unchanged.
pub struct GoFallback<S> {
    inner: S,
    tables: HashMap<PathBuf, Option<GoTables>>,
}

impl<S> GoFallback<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            tables: HashMap::new(),
        }
    }
}

impl<S: Symbolize> Symbolize for GoFallback<S> {
    fn symbolize(&mut self, module: &Path, offsets: &[u64]) -> Vec<Vec<ResolvedFrame>> {
        let mut frames = self.inner.symbolize(module, offsets);
        // A frame with a name but no line (a Go daemon stripped of DWARF keeps its
        // symbol table) also gains from the function table's lines and inlined calls.
        let wanting = |f: &Vec<ResolvedFrame>| f.iter().all(|r| r.line.is_none());
        if !frames.iter().any(wanting) {
            return frames;
        }
        let tables = self
            .tables
            .entry(module.to_path_buf())
            .or_insert_with(|| GoTables::open(module).ok());
        let Some(tables) = tables else {
            return frames;
        };
        for (slot, &offset) in frames.iter_mut().zip(offsets) {
            if !wanting(slot) {
                continue;
            }
            let go: Vec<ResolvedFrame> = tables
                .offset_to_vaddr(offset)
                .map(|vaddr| tables.frames(vaddr))
                .unwrap_or_default()
                .into_iter()
                .map(|pc| ResolvedFrame {
                    function: pc.function,
                    file: pc.file,
                    line: pc.line,
                    inlined: pc.inlined,
                })
                .collect();
            if !go.is_empty() {
                *slot = go;
            }
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const SOURCE: &str = r#"package main

import (
	"fmt"
	"sync"
)

var mu sync.Mutex

//go:noinline
func criticalSection(n int) int {
	mu.Lock()
	defer mu.Unlock()
	return n * 2
}

func main() {
	fmt.Println(criticalSection(21))
}
"#;

    /// Build the tiny program above with the installed Go toolchain into a temp dir,
    /// plus a stripped copy. `None` (test skipped with a message) without `go`.
    fn build_go() -> Option<(tempdir::Dir, PathBuf, PathBuf)> {
        let dir = tempdir::Dir::new("lockprof-gopclntab");
        std::fs::write(dir.path.join("main.go"), SOURCE).expect("write source");
        std::fs::write(dir.path.join("go.mod"), "module tiny\n\ngo 1.18\n").expect("go.mod");
        let bin = dir.path.join("tiny");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&dir.path)
            .env("GOCACHE", dir.path.join("cache"))
            .env("GOFLAGS", "-mod=mod")
            .env("GO111MODULE", "on")
            .status();
        match status {
            Ok(s) if s.success() => {}
            _ => {
                eprintln!(
                    "skipping test - no Go toolchain (`cargo xtask setup` installs golang-go)"
                );
                return None;
            }
        }
        let stripped = dir.path.join("tiny-stripped");
        let ok = Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&bin)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "strip failed");
        Some((dir, bin, stripped))
    }

    /// A self-deleting temporary directory.
    mod tempdir {
        pub struct Dir {
            pub path: std::path::PathBuf,
        }
        impl Dir {
            pub fn new(prefix: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "{prefix}-{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                ));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path).expect("temp dir");
                Self { path }
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    fn go_toolchain_version() -> String {
        let out = Command::new("go")
            .arg("version")
            .output()
            .expect("go version");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(2)
            .expect("version word")
            .to_owned()
    }

    #[test]
    fn stripped_go_binary_keeps_version_functions_and_lines() {
        let Some((_dir, bin, stripped)) = build_go() else {
            return;
        };
        let full = GoTables::open(&bin).expect("tables");
        let bare = GoTables::open(&stripped).expect("tables of the stripped binary");
        assert_eq!(
            full.version.as_deref(),
            Some(go_toolchain_version().as_str())
        );
        assert_eq!(bare.version, full.version);
        assert_eq!(bare.len(), full.len());
        for name in [
            "runtime.gopark",
            "runtime.ready",
            "runtime.semacquire1",
            "main.criticalSection",
        ] {
            let entry = bare
                .function_entry(name)
                .unwrap_or_else(|| panic!("{name} not found"));
            assert_eq!(full.function_entry(name), Some(entry));
            let pc = bare.lookup(entry).expect("lookup at entry");
            assert_eq!(pc.function, name);
            assert_eq!(pc.entry, entry);
        }
        // Inside main.criticalSection: its own file, and a line of its body (the
        // function spans lines 11..15 of the source).
        let entry = bare.function_entry("main.criticalSection").expect("entry");
        let pc = bare.lookup(entry + 8).expect("lookup in body");
        assert_eq!(pc.function, "main.criticalSection");
        assert!(
            pc.file.as_deref().is_some_and(|f| f.ends_with("/main.go")),
            "{pc:?}"
        );
        assert!(pc.line.is_some_and(|l| (11..=15).contains(&l)), "{pc:?}");
    }

    #[test]
    fn lookup_matches_the_symbol_table_for_every_function() {
        let Some((_dir, bin, _)) = build_go() else {
            return;
        };
        let data = std::fs::read(&bin).expect("read");
        let file = object::File::parse(&*data).expect("elf");
        let tables = GoTables::parse(&data, "tiny").expect("tables");
        let mut checked = 0;
        for sym in file.symbols() {
            use object::ObjectSymbol;
            let Ok(name) = sym.name() else { continue };
            if sym.kind() != object::SymbolKind::Text || sym.size() == 0 || !name.contains('.') {
                continue;
            }
            // Assembly functions the runtime also lists; the symtab and pclntab agree.
            let Some(pc) = tables.lookup(sym.address() + sym.size() / 2) else {
                continue;
            };
            // The symbol table marks assembly functions with their ABI (`.abi0`); the
            // function table abbreviates array types in generated names (`[...]`).
            if pc.function.contains("[...]") {
                continue;
            }
            assert_eq!(
                pc.function,
                name.trim_end_matches(".abi0"),
                "at {:#x}",
                sym.address()
            );
            assert_eq!(pc.entry, sym.address());
            checked += 1;
        }
        assert!(checked > 500, "only {checked} functions compared");
    }

    #[test]
    fn inlined_calls_unfold_from_the_inline_tree_in_a_stripped_binary() {
        let Some((_dir, _, stripped)) = build_go() else {
            return;
        };
        let tables = GoTables::open(&stripped).expect("tables");
        let entry = tables
            .function_entry("main.criticalSection")
            .expect("entry");
        // `mu.Lock()` (line 12) is inlined into criticalSection: some instruction of
        // the function is in sync.(*Mutex).Lock, called from line 12.
        let inlined = (entry..entry + 200)
            .map(|pc| tables.frames(pc))
            .find(|f| f.len() >= 2 && f[0].function == "sync.(*Mutex).Lock")
            .expect("an instruction of the inlined Mutex.Lock");
        assert!(inlined[0].inlined);
        assert!(
            inlined[0]
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("sync/mutex.go"))
        );
        let outer = inlined.last().expect("outer frame");
        assert_eq!(outer.function, "main.criticalSection");
        assert!(!outer.inlined);
        assert_eq!(outer.line, Some(12), "{inlined:?}");
        assert!(
            outer
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("/main.go"))
        );
    }

    #[test]
    fn file_offsets_map_to_addresses_and_back() {
        let Some((_dir, _, stripped)) = build_go() else {
            return;
        };
        let tables = GoTables::open(&stripped).expect("tables");
        let entry = tables.function_entry("runtime.gopark").expect("gopark");
        let off = tables.vaddr_to_offset(entry).expect("offset");
        assert_eq!(tables.offset_to_vaddr(off), Some(entry));
    }

    #[test]
    fn non_go_files_are_told_apart() {
        let me = std::env::current_exe().expect("exe");
        assert!(matches!(
            GoTables::open(&me),
            Err(GoTableError::NoPclntab(_))
        ));
        assert_eq!(go_version(&std::fs::read(&me).expect("read")), None);
        assert!(matches!(
            GoTables::parse(b"not an elf", "x"),
            Err(GoTableError::NotElf(_))
        ));
    }

    /// File offset of an instruction just inside `main.criticalSection`.
    fn critical_section_offset(binary: &Path) -> u64 {
        let tables = GoTables::open(binary).expect("tables");
        let entry = tables
            .function_entry("main.criticalSection")
            .expect("entry");
        tables.vaddr_to_offset(entry + 4).expect("offset")
    }

    #[test]
    fn fallback_names_frames_the_inner_symbolizer_left_unresolved() {
        let Some((_dir, _, stripped)) = build_go() else {
            return;
        };
        let off = critical_section_offset(&stripped);
        let mut sym = GoFallback::new(crate::resolve::symbolize::FakeSymbolizer::default());
        let frames = sym.symbolize(&stripped, &[off, 0]);
        assert_eq!(frames[0].len(), 1);
        assert_eq!(frames[0][0].function, "main.criticalSection");
        // Offset 0 is the ELF header, outside any function: still unresolved.
        assert!(frames[1].is_empty());
    }

    #[test]
    fn fallback_adds_lines_to_frames_named_without_them() {
        let Some((_dir, _, stripped)) = build_go() else {
            return;
        };
        let off = critical_section_offset(&stripped);
        let mut fake = crate::resolve::symbolize::FakeSymbolizer::default();
        let named = ResolvedFrame {
            function: "main.criticalSection".into(),
            ..ResolvedFrame::default()
        };
        fake.table.insert((stripped.clone(), off), vec![named]);
        let frames = GoFallback::new(fake).symbolize(&stripped, &[off]);
        let last = frames[0].last().expect("a frame");
        assert_eq!(last.function, "main.criticalSection");
        assert!(last.line.is_some() && last.file.is_some(), "{last:?}");
    }

    #[test]
    fn uvarint_decodes_multibyte_values() {
        assert_eq!(uvarint(&[0x01]), Some((1, 1)));
        assert_eq!(uvarint(&[0xac, 0x02]), Some((300, 2)));
        assert_eq!(uvarint(&[0x80]), None);
    }
}

//! Unwinding copied user stacks with the modules' DWARF call-frame information.
//!
//! Owns: turning a [`UserStackCopy`] (registers + stack bytes from the probe) and the
//! process's executable mappings into a list of return addresses, using each ELF's
//! `.eh_frame`/`.eh_frame_hdr`/`.debug_frame` through framehop, and the parsed-module
//! cache that makes repeated stacks cheap. Must not: symbolize (`symbolize`), read
//! `/proc` (the caller passes the mappings captured while the process lived), or
//! touch the kernel.
//!
//! Why: Debian's glibc and Rust's precompiled std are built without frame pointers,
//! so the kernel's frame-pointer walk of a thread blocked in `pthread_mutex_lock`
//! stops inside libc. CFI describes every function's frame, whatever the compiler
//! flags, and is always present because C++ exceptions and Rust panics need it.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};
use serde::{Deserialize, Serialize};

use crate::collect::snapshot::UserStackCopy;
use crate::session::procmaps::Mapping;

/// Frames beyond this are dropped (a corrupt stack could otherwise loop long).
pub const MAX_FRAMES: usize = 256;

/// How a stack in the report was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UnwindMethod {
    /// The kernel's frame-pointer walk (no stack copy, or the copy could not be used).
    #[serde(rename = "fp")]
    FramePointer,
    /// DWARF CFI unwinding of the copied stack, down to the thread's root function.
    #[serde(rename = "dwarf")]
    Dwarf,
    /// DWARF CFI unwinding that stopped early: the copy ended (a deep stack) or an
    /// address had no unwind information. The outer frames are missing.
    #[serde(rename = "dwarf-truncated")]
    DwarfTruncated,
}

impl UnwindMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            UnwindMethod::FramePointer => "fp",
            UnwindMethod::Dwarf => "dwarf",
            UnwindMethod::DwarfTruncated => "dwarf-truncated",
        }
    }
}

/// The result of unwinding one copy: the exact IP, then return addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwound {
    pub addrs: Vec<u64>,
    /// Whether the unwinder reached a root function (CFI marks the return address
    /// undefined in `_start`/`clone3`/`start_thread`) rather than stopping early.
    pub complete: bool,
    /// Highest stack address read, minus the stack pointer: how much of the copy the
    /// stack needed (for sizing the copy).
    pub stack_used: u64,
}

impl Unwound {
    pub fn method(&self) -> UnwindMethod {
        if self.complete {
            UnwindMethod::Dwarf
        } else {
            UnwindMethod::DwarfTruncated
        }
    }
}

/// The unwind sections of one ELF file and its loadable segments.
struct ElfUnwindInfo {
    /// `(file offset, file size, virtual address)` of each `PT_LOAD` segment.
    loads: Vec<(u64, u64, u64)>,
    text_svma: Option<Range<u64>>,
    got_svma: Option<Range<u64>>,
    eh_frame: Option<(Range<u64>, Arc<[u8]>)>,
    eh_frame_hdr: Option<(Range<u64>, Arc<[u8]>)>,
    debug_frame: Option<Arc<[u8]>>,
}

impl ElfUnwindInfo {
    fn parse(data: &[u8]) -> Option<Self> {
        let file = object::File::parse(data).ok()?;
        let loads = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, size, s.address())
            })
            .collect();
        let range = |name: &str| {
            file.section_by_name(name)
                .map(|s| s.address()..s.address() + s.size())
        };
        let with_data = |name: &str| {
            let s = file.section_by_name(name)?;
            let bytes = s.uncompressed_data().ok()?;
            Some((s.address()..s.address() + s.size(), Arc::from(&*bytes)))
        };
        Some(ElfUnwindInfo {
            loads,
            text_svma: range(".text"),
            got_svma: range(".got"),
            eh_frame: with_data(".eh_frame"),
            eh_frame_hdr: with_data(".eh_frame_hdr"),
            debug_frame: with_data(".debug_frame").map(|(_, d)| d),
        })
    }

    /// The load bias of a mapping of this file: the value added to the ELF's virtual
    /// addresses to get process addresses. A segment's file offset need not be page
    /// aligned (`0x16d60` mapped from offset `0x16000`), so the segment whose
    /// page-aligned offset is the mapping's offset is preferred over one that merely
    /// contains it (the previous segment often does).
    fn bias(&self, m: &Mapping) -> Option<u64> {
        let &(off, _, vaddr) = self
            .loads
            .iter()
            .find(|&&(off, _, _)| off & !4095 == m.offset)
            .or_else(|| {
                self.loads
                    .iter()
                    .find(|&&(off, size, _)| (off..off + size.max(1)).contains(&m.offset))
            })?;
        let svma = vaddr.wrapping_add(m.offset.wrapping_sub(off));
        Some(m.start.wrapping_sub(svma))
    }

    fn module(&self, m: &Mapping) -> Option<Module<Arc<[u8]>>> {
        let bias = self.bias(m)?;
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: self.text_svma.clone(),
            got_svma: self.got_svma.clone(),
            eh_frame_svma: self.eh_frame.as_ref().map(|(r, _)| r.clone()),
            eh_frame: self.eh_frame.as_ref().map(|(_, d)| d.clone()),
            eh_frame_hdr_svma: self.eh_frame_hdr.as_ref().map(|(r, _)| r.clone()),
            eh_frame_hdr: self.eh_frame_hdr.as_ref().map(|(_, d)| d.clone()),
            debug_frame: self.debug_frame.clone(),
            ..ExplicitModuleSectionInfo::default()
        };
        Some(Module::new(
            m.path.display().to_string(),
            m.start..m.end,
            bias,
            info,
        ))
    }
}

/// Map layouts whose unwinder is kept (see [`StackUnwinder::unwind_reading`]).
const MAX_LAYOUTS: usize = 64;

/// Unwinds copies against the modules mapped in their process. Modules are parsed
/// once per file and the unwinder (with its rule cache) is reused per map layout.
#[derive(Default)]
pub struct StackUnwinder {
    files: HashMap<PathBuf, Option<Arc<ElfUnwindInfo>>>,
    unwinders: HashMap<Vec<Mapping>, UnwinderX86_64<Arc<[u8]>>>,
    cache: Option<Box<CacheX86_64>>,
}

impl StackUnwinder {
    /// Unwind `copy` with the executable `mappings` of its process at the time.
    pub fn unwind(&mut self, copy: &UserStackCopy, mappings: &[Mapping]) -> Unwound {
        self.unwind_reading(copy, mappings, |m| m.path.clone())
    }

    /// As [`StackUnwinder::unwind`], reading each mapping's file where `readable`
    /// says (a copy held open while the process lived: a path in the target's mount
    /// namespace may not exist in ours, or the file may be gone).
    pub fn unwind_reading(
        &mut self,
        copy: &UserStackCopy,
        mappings: &[Mapping],
        readable: impl Fn(&Mapping) -> PathBuf,
    ) -> Unwound {
        if !self.unwinders.contains_key(mappings) {
            // One per layout: a workload that keeps exec'ing (each process its own
            // layout) would otherwise grow this without end. Rebuilding one is cheap
            // (the parsed files stay), so the cache is simply emptied when full.
            if self.unwinders.len() >= MAX_LAYOUTS {
                self.unwinders.clear();
            }
            let mut unwinder = UnwinderX86_64::new();
            for m in mappings {
                if let Some(module) = self.file(&readable(m)).and_then(|f| f.module(m)) {
                    unwinder.add_module(module);
                }
            }
            self.unwinders.insert(mappings.to_vec(), unwinder);
        }
        let Some(unwinder) = self.unwinders.get(mappings) else {
            return Unwound {
                addrs: vec![copy.ip],
                complete: false,
                stack_used: 0,
            };
        };
        let cache = self
            .cache
            .get_or_insert_with(|| Box::new(CacheX86_64::new()));
        unwind_with(unwinder, cache, copy)
    }

    fn file(&mut self, path: &Path) -> Option<Arc<ElfUnwindInfo>> {
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let file = crate::resolve::mapped::MappedFile::open(path)?;
                ElfUnwindInfo::parse(file.bytes()).map(Arc::new)
            })
            .clone()
    }
}

fn unwind_with(
    unwinder: &UnwinderX86_64<Arc<[u8]>>,
    cache: &mut CacheX86_64,
    copy: &UserStackCopy,
) -> Unwound {
    let end = copy.base + copy.bytes.len() as u64;
    let mut highest = copy.sp;
    let mut read_stack = |addr: u64| -> Result<u64, ()> {
        if addr < copy.base || addr.checked_add(8).is_none_or(|e| e > end) {
            return Err(());
        }
        let at = (addr - copy.base) as usize;
        let word: [u8; 8] = copy.bytes[at..at + 8].try_into().map_err(|_| ())?;
        highest = highest.max(addr + 8);
        Ok(u64::from_le_bytes(word))
    };
    let regs = UnwindRegsX86_64::new(copy.ip, copy.sp, copy.bp);
    let mut addrs = Vec::new();
    let complete = {
        let mut frames = unwinder.iter_frames(copy.ip, regs, cache, &mut read_stack);
        loop {
            if addrs.len() >= MAX_FRAMES {
                break false;
            }
            match frames.next() {
                Ok(Some(frame)) => addrs.push(frame.address()),
                Ok(None) => break true,
                Err(_) => break false,
            }
        }
    };
    if addrs.is_empty() {
        addrs.push(copy.ip);
    }
    Unwound {
        addrs,
        complete,
        stack_used: highest.saturating_sub(copy.sp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::symbolize::{BlazeSymbolizer, StackSymbolizer};
    use crate::session::procmaps::parse_maps;

    /// Registers and 16 KiB of this thread's stack, taken inside `capture`, which
    /// runs as a `qsort` comparator: the stack goes through glibc, which has no frame
    /// pointers, so only CFI can unwind from here to the test.
    #[inline(never)]
    fn capture() -> UserStackCopy {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads three registers into locals; no memory access, no side effects.
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
            );
        }
        let base = sp & !4095;
        let mut bytes = vec![0u8; 4 * 4096];
        let mut len = 0;
        for page in 0..4 {
            let local = libc::iovec {
                iov_base: bytes[page * 4096..].as_mut_ptr().cast(),
                iov_len: 4096,
            };
            let remote = libc::iovec {
                iov_base: (base as usize + page * 4096) as *mut libc::c_void,
                iov_len: 4096,
            };
            // SAFETY: copies into our own buffer; an unmapped source page fails
            // cleanly (returns -1) instead of faulting.
            let n = unsafe {
                libc::process_vm_readv(libc::getpid(), &raw const local, 1, &raw const remote, 1, 0)
            };
            if n != 4096 {
                break;
            }
            len += 4096;
        }
        bytes.truncate(len);
        UserStackCopy {
            ip,
            sp,
            bp,
            base,
            bytes,
            shared: false,
        }
    }

    thread_local! {
        static CAPTURED: std::cell::RefCell<Option<UserStackCopy>> = const { std::cell::RefCell::new(None) };
    }

    extern "C" fn compare(a: *const libc::c_void, b: *const libc::c_void) -> libc::c_int {
        CAPTURED.with(|c| {
            if c.borrow().is_none() {
                *c.borrow_mut() = Some(capture());
            }
        });
        // SAFETY: qsort passes pointers to two elements of our i32 array.
        let (a, b) = unsafe { (*a.cast::<i32>(), *b.cast::<i32>()) };
        a.cmp(&b) as libc::c_int
    }

    #[inline(never)]
    fn sort_through_libc() -> UserStackCopy {
        let mut v = [3i32, 1, 2];
        // SAFETY: a valid array of three i32s and a comparator for i32s.
        unsafe {
            libc::qsort(
                v.as_mut_ptr().cast(),
                v.len(),
                std::mem::size_of::<i32>(),
                Some(compare),
            );
        }
        assert_eq!(v, [1, 2, 3]);
        CAPTURED.with(|c| c.borrow_mut().take()).unwrap()
    }

    #[test]
    fn unwinds_through_glibc_from_its_eh_frame() {
        let copy = std::thread::spawn(sort_through_libc).join().unwrap();
        let maps_text = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mappings = parse_maps(&maps_text);
        let mut unwinder = StackUnwinder::default();
        let unwound = unwinder.unwind(&copy, &mappings);
        assert!(unwound.complete, "reached the thread's root: {unwound:?}");
        assert_eq!(unwound.method(), UnwindMethod::Dwarf);
        assert!(unwound.stack_used > 0 && unwound.stack_used <= copy.bytes.len() as u64);

        let pid = std::process::id();
        let mut history = crate::session::procmaps::MapsHistory::default();
        history.observe(pid, &maps_text);
        let mut symbolizer = StackSymbolizer::new(BlazeSymbolizer::default());
        let frames = symbolizer.symbolize_stacks(&history, &[(pid, &unwound.addrs)]);
        let names: Vec<String> = frames[0]
            .iter()
            .map(|f| f.function.clone().unwrap_or_default())
            .collect();
        let pos = |needle: &str| names.iter().position(|n| n.contains(needle));
        let capture_at = pos("unwind::tests::capture").expect("capture frame");
        let sort_at = pos("sort_through_libc").expect("the caller of qsort");
        assert!(capture_at < sort_at, "{names:#?}");
        // Between them: the comparator and glibc's qsort internals (libc frames).
        let libc_frames = frames[0][capture_at..sort_at]
            .iter()
            .filter(|f| f.module.as_deref().is_some_and(|m| m.contains("libc.so")))
            .count();
        assert!(libc_frames >= 1, "{:#?}", &frames[0][capture_at..sort_at]);
        // And on to the thread's start (std's thread main, then glibc's start_thread).
        assert!(
            pos("start_thread").is_some() || pos("clone").is_some(),
            "{names:#?}"
        );
    }

    #[test]
    fn a_short_copy_gives_a_truncated_stack() {
        let mut copy = std::thread::spawn(sort_through_libc).join().unwrap();
        // Keep only the bytes up to a little above the stack pointer.
        let keep = (copy.sp - copy.base + 64) as usize;
        copy.bytes.truncate(keep);
        let mappings = parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
        let unwound = StackUnwinder::default().unwind(&copy, &mappings);
        assert!(!unwound.complete);
        assert_eq!(unwound.method(), UnwindMethod::DwarfTruncated);
        assert!(!unwound.addrs.is_empty());
    }

    #[test]
    fn bias_uses_the_segment_whose_page_starts_the_mapping() {
        // The layout of a Rust PIE: the code segment's file offset is not page
        // aligned, and the read-only segment before it also covers offset 0x16000.
        let elf = ElfUnwindInfo {
            loads: vec![(0, 0x16d58, 0), (0x16d60, 0x45450, 0x17d60)],
            text_svma: None,
            got_svma: None,
            eh_frame: None,
            eh_frame_hdr: None,
            debug_frame: None,
        };
        let m = Mapping {
            start: 0x5555_5556_a000,
            end: 0x5555_555b_0000,
            offset: 0x16000,
            path: PathBuf::from("/bin/app"),
            dev: 0,
            inode: 0,
        };
        // Offset 0x16000 is mapped at virtual address 0x17000.
        assert_eq!(elf.bias(&m), Some(0x5555_5556_a000 - 0x17000));
        let first = Mapping { offset: 0, ..m };
        assert_eq!(elf.bias(&first), Some(0x5555_5556_a000));
    }

    #[test]
    fn no_modules_means_one_frame_and_truncated() {
        // No CFI anywhere: framehop falls back to the frame pointer, which points
        // outside the copy, so the walk stops there.
        let copy = UserStackCopy {
            ip: 0x1234,
            sp: 0x7000_0000,
            bp: 0x7000_1000,
            base: 0x7000_0000,
            bytes: vec![0; 64],
            shared: false,
        };
        let unwound = StackUnwinder::default().unwind(&copy, &[]);
        assert_eq!(unwound.addrs[0], 0x1234);
        assert!(!unwound.complete);
    }
}

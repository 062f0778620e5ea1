//! Reading executables and libraries without holding them in memory: a read-only
//! mapping for the time one file is parsed.
//!
//! Owns: [`MappedFile`]. Must not: keep a mapping beyond the parse (what is needed
//! is copied out), or parse anything itself.

use std::path::Path;

/// A file mapped read-only for the time of parsing: only the pages read (headers, the
/// sections copied out) are brought in, where reading a whole daemon binary
/// (`mariadbd` is 26 MB) would hold it all in lockprof's memory at once.
pub struct MappedFile {
    ptr: *mut libc::c_void,
    len: usize,
}

impl MappedFile {
    pub fn open(path: &Path) -> Option<Self> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of an open file; the kernel checks
        // the arguments, and the fd may be closed once mapped.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Self { ptr, len })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `drop`. A file truncated while
        // mapped would fault on access (SIGBUS): mapped modules are not truncated in
        // place (running executables cannot be written; package managers replace
        // libraries by rename), and the mapping lives only while one file is parsed.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`, once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

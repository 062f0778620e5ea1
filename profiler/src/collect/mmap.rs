//! A BPF array created `BPF_F_MMAPABLE`, mapped shared into lockprof: the probes and
//! userspace then read and write the same memory, with no syscall per access.
//!
//! Owns: the mapping's lifetime. Must not: interpret the memory (its users do).

use std::os::fd::{AsRawFd as _, BorrowedFd};

use super::CollectError;

/// A shared read-write mapping of a BPF array's values.
pub struct MappedArray {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain shared memory that lives as long as the value; its
// users access it through atomics or volatile reads.
unsafe impl Send for MappedArray {}

impl MappedArray {
    /// Map the first `len` bytes of the values of the array `map` (`fd`).
    pub fn map(fd: BorrowedFd<'_>, len: usize, map: &'static str) -> Result<Self, CollectError> {
        // SAFETY: a fresh shared mapping of a BPF array fd; the kernel checks `len`
        // against the array and keeps the map alive while the mapping exists.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(CollectError::Map {
                map,
                reason: format!("mmap: {}", std::io::Error::last_os_error()),
            });
        }
        Ok(Self { ptr, len })
    }

    /// The start of the mapping, as an array of `T` (page-aligned, so aligned for any
    /// `T`).
    pub fn as_ptr<T>(&self) -> *mut T {
        self.ptr.cast()
    }
}

impl Drop for MappedArray {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

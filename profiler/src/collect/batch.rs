//! Reading hash maps a batch at a time (`BPF_MAP_LOOKUP_BATCH`, and
//! `BPF_MAP_LOOKUP_AND_DELETE_BATCH` to drain them), through the raw `bpf(2)`
//! syscall: aya 0.14 has no batch API, and walking keys costs two syscalls per row.

use std::os::fd::{AsRawFd, BorrowedFd};

use aya::Pod;

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_LOOKUP_AND_DELETE_BATCH: libc::c_long = 25;
/// Rows per syscall: large enough that a few calls read a full map, small enough
/// that the buffers stay a few hundred KiB.
const CHUNK: usize = 1024;

/// `union bpf_attr`'s `batch` member (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every `(key, value)` of a hash map; with `delete`, each row read is removed from
/// the kernel map in the same call.
pub fn read_all<K: Pod, V: Pod>(fd: BorrowedFd<'_>, delete: bool) -> std::io::Result<Vec<(K, V)>> {
    let mut out = Vec::new();
    let mut keys: Vec<K> = Vec::with_capacity(CHUNK);
    let mut values: Vec<V> = Vec::with_capacity(CHUNK);
    // The batch cursor is an opaque token (a bucket index for hash maps).
    let mut cursor = [0u64; 1];
    let mut first = true;
    loop {
        let mut next = [0u64; 1];
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { cursor.as_ptr() as u64 },
            out_batch: next.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let cmd = if delete {
            BPF_MAP_LOOKUP_AND_DELETE_BATCH
        } else {
            BPF_MAP_LOOKUP_BATCH
        };
        // SAFETY: `attr` is a valid bpf_attr prefix of the size passed; the kernel
        // writes at most `count` keys and values into buffers of CHUNK capacity, and
        // one cursor word into `next`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                &raw mut attr,
                std::mem::size_of::<BatchAttr>() as u32,
            )
        };
        let err = (r < 0).then(std::io::Error::last_os_error);
        let n = (attr.count as usize).min(CHUNK);
        // SAFETY: the kernel filled the first `n` keys and values (also on ENOENT,
        // which ends the walk with the last rows).
        unsafe {
            keys.set_len(n);
            values.set_len(n);
        }
        out.extend(keys.drain(..).zip(values.drain(..)));
        match err {
            None => {}
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Some(e) => return Err(e),
        }
        cursor = next;
        first = false;
    }
}

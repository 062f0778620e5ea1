//! Reading hash maps a batch at a time (`BPF_MAP_LOOKUP_BATCH`, and
//! `BPF_MAP_LOOKUP_AND_DELETE_BATCH` to empty them), taking chosen rows out
//! (`BPF_MAP_DELETE_BATCH`), and single elements, through the raw `bpf(2)` syscall:
//! aya 0.14 has no batch API, and walking keys costs two syscalls per row.

use std::os::fd::{AsRawFd, BorrowedFd};

use aya::Pod;

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_LOOKUP_AND_DELETE_BATCH: libc::c_long = 25;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
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

/// `union bpf_attr`'s `map_elem` member.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Key and value buffers for [`Batch::each`] and [`Batch::take`], kept by the caller
/// so that a map read at every refresh reuses them (a fresh buffer of large values —
/// 16 KiB stack copies — would page-fault in again each time).
pub struct Batch<K, V> {
    keys: Vec<K>,
    values: Vec<V>,
    /// The rows of one chunk that [`Batch::take`] deletes.
    taken: Vec<K>,
}

impl<K: Pod, V: Pod> Batch<K, V> {
    /// Buffers for `rows` rows per syscall (grown if one hash bucket holds more).
    pub fn with_rows(rows: usize) -> Self {
        Self {
            keys: Vec::with_capacity(rows),
            values: Vec::with_capacity(rows),
            taken: Vec::new(),
        }
    }

    /// Call `f` on every `(key, value)` of a hash map, a batch at a time; with
    /// `delete`, each row read is removed from the kernel map in the same call.
    /// Nothing is collected: the caller keeps what it needs of each row.
    pub fn each(
        &mut self,
        fd: BorrowedFd<'_>,
        delete: bool,
        mut f: impl FnMut(&K, &V),
    ) -> std::io::Result<()> {
        let cmd = if delete {
            BPF_MAP_LOOKUP_AND_DELETE_BATCH
        } else {
            BPF_MAP_LOOKUP_BATCH
        };
        self.walk(fd, cmd, |keys, values| {
            keys.iter().zip(values).for_each(|(k, v)| f(k, v));
            Ok(())
        })
    }

    /// Take the rows `pick` chooses out of a hash map: each is handed to `f` and then
    /// deleted (a chunk at a time, right after it was read); the others stay. Only
    /// sound for rows nothing writes any more (see `collect::generation`): a row is
    /// read and deleted by two calls, and an add between them would be lost.
    pub fn take(
        &mut self,
        fd: BorrowedFd<'_>,
        pick: impl Fn(&K) -> bool,
        mut f: impl FnMut(&K, &V),
    ) -> std::io::Result<()> {
        let mut taken = std::mem::take(&mut self.taken);
        let walked = self.walk(fd, BPF_MAP_LOOKUP_BATCH, |keys, values| {
            taken.clear();
            for (k, v) in keys.iter().zip(values).filter(|(k, _)| pick(k)) {
                f(k, v);
                taken.push(*k);
            }
            // The cursor names the next bucket: deleting rows of buckets already
            // read does not move it.
            delete_batch(fd, &taken)
        });
        self.taken = taken;
        walked
    }

    /// Run the batch command `cmd` over the whole map, handing each chunk of rows
    /// read to `f` (its keys and values).
    fn walk(
        &mut self,
        fd: BorrowedFd<'_>,
        cmd: libc::c_long,
        mut f: impl FnMut(&[K], &[V]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        // The batch cursor is an opaque token (a bucket index for hash maps).
        let mut cursor = [0u64; 1];
        let mut first = true;
        loop {
            let rows = self.keys.capacity().min(self.values.capacity()).max(1);
            let mut next = [0u64; 1];
            let mut attr = BatchAttr {
                in_batch: if first { 0 } else { cursor.as_ptr() as u64 },
                out_batch: next.as_mut_ptr() as u64,
                keys: self.keys.as_mut_ptr() as u64,
                values: self.values.as_mut_ptr() as u64,
                count: rows as u32,
                map_fd: fd.as_raw_fd() as u32,
                ..BatchAttr::default()
            };
            // SAFETY: `attr` is the batch member of bpf_attr; the kernel writes at most
            // `count` keys and values into buffers of at least that capacity, and one
            // cursor word into `next`.
            let r = unsafe { sys_bpf(cmd, &mut attr) };
            let err = (r < 0).then(std::io::Error::last_os_error);
            let n = if err.is_some() && attr.count as usize > rows {
                0
            } else {
                attr.count as usize
            };
            // SAFETY: the kernel filled the first `n` keys and values (also on ENOENT,
            // which ends the walk with the last rows); `K` and `V` are `Pod`, so any
            // bytes are valid values.
            let (keys, values) = unsafe {
                (
                    std::slice::from_raw_parts(self.keys.as_ptr(), n),
                    std::slice::from_raw_parts(self.values.as_ptr(), n),
                )
            };
            f(keys, values)?;
            match err {
                None => {}
                Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                // One bucket holds more rows than the buffers: retry it with more room.
                Some(e) if e.raw_os_error() == Some(libc::ENOSPC) && n == 0 && rows < 1 << 16 => {
                    self.keys.reserve_exact(rows * 2);
                    self.values.reserve_exact(rows * 2);
                    continue;
                }
                Some(e) => return Err(e),
            }
            cursor = next;
            first = false;
        }
    }
}

/// Every `(key, value)` of a hash map; with `delete`, each row read is removed from
/// the kernel map in the same call.
pub fn read_all<K: Pod, V: Pod>(fd: BorrowedFd<'_>, delete: bool) -> std::io::Result<Vec<(K, V)>> {
    let mut out = Vec::new();
    Batch::with_rows(CHUNK).each(fd, delete, |k: &K, v: &V| out.push((*k, *v)))?;
    Ok(out)
}

/// Delete each of `keys` from a map (`BPF_MAP_DELETE_ELEM`; stack-trace maps have
/// no batch delete). A key already gone is skipped.
pub fn delete_each<K: Pod>(fd: BorrowedFd<'_>, keys: &[K]) {
    for key in keys {
        let mut attr = ElemAttr {
            map_fd: fd.as_raw_fd() as u32,
            pad: 0,
            key: std::ptr::from_ref(key) as u64,
            value: 0,
            flags: 0,
        };
        // SAFETY: `attr` is the map_elem member of bpf_attr; the kernel reads one key.
        let _ = unsafe { sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr) };
    }
}

/// Delete `keys` from a hash map in one call (`BPF_MAP_DELETE_BATCH`, Linux 5.6, as
/// the batch lookups). A key already gone is skipped; the call goes on after it.
pub fn delete_batch<K: Pod>(fd: BorrowedFd<'_>, keys: &[K]) -> std::io::Result<()> {
    let mut done = 0;
    while done < keys.len() {
        let rest = &keys[done..];
        let mut attr = BatchAttr {
            keys: rest.as_ptr() as u64,
            count: rest.len() as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is the batch member of bpf_attr; the kernel reads `count`
        // keys and writes back how many it deleted.
        let r = unsafe { sys_bpf(BPF_MAP_DELETE_BATCH, &mut attr) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(e);
        }
        // The kernel stopped at the missing key `count`: skip it.
        done += attr.count as usize + 1;
    }
    Ok(())
}

/// `map[key] = value` (`BPF_MAP_UPDATE_ELEM`, `BPF_ANY`).
pub fn update_elem<K: Pod, V: Pod>(fd: BorrowedFd<'_>, key: &K, value: &V) -> std::io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        pad: 0,
        key: std::ptr::from_ref(key) as u64,
        value: std::ptr::from_ref(value) as u64,
        flags: 0,
    };
    // SAFETY: `attr` is the map_elem member of bpf_attr; the kernel reads one key and
    // one value of the map's sizes, which the caller's types are.
    let r = unsafe { sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `bpf(cmd, attr, sizeof attr)`.
///
/// # Safety
/// `A` must be the `#[repr(C)]` member of `union bpf_attr` that `cmd` reads, and every
/// pointer in it valid for what the kernel reads or writes through it.
pub(super) unsafe fn sys_bpf<A>(cmd: libc::c_long, attr: &mut A) -> libc::c_long {
    // SAFETY: the caller vouches for `attr`; the size passed is its own.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            std::mem::size_of::<A>() as u32,
        )
    }
}

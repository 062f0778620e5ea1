//! User stacks: which call path a futex call came from.
//!
//! A call position already seen by the thread is found in its row's memo of its last
//! wait or wake positions (a thread locking in a loop calls from the same few places),
//! else in its slot of `POSITIONS` (an array indexed by a hash of thread and position:
//! a daemon's workers lock from many stack depths), else in `STACK_CACHE` (an LRU
//! hash, the authority the levels above copy) — all after register reads and at most
//! two user reads; a new one costs the kernel's frame-pointer walk
//! (`STACKS`, overflowing into `STACKS2`) and, for DWARF unwinding in userspace, one
//! copy of up to 16 KiB of user stack (`USER_STACKS`), under an id never used before —
//! unless another thread of the process took a copy at the same call position
//! (`SHARED_SITES`): then its id is reused, so a daemon's hundreds of threads blocking
//! at the same few places bring one copy (and one stack id in the rows) per place,
//! not one per thread.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_F_USER_STACK, BPF_NOEXIST},
    helpers::{bpf_probe_read_user, generated as raw_helpers},
    programs::tracing::StackIdContext,
};
use profiler_common::{
    COPY_SHARED, DWARF_STACK_ID_BASE, DWARF_STACK_IDS, Loss, RawPositionSlot, RawSharedSiteKey,
    RawSiteMemo, RawSiteMemoWay, RawStackCacheKey, RawStackCacheValue, SITE_MEMO_WAYS,
    STACK_ID_OVERFLOW, USER_STACK_PAGES, follows_call, position_slot,
};

use crate::maps::{
    POSITIONS, SHARED_SITES, STACK_CACHE, STACKS, STACKS2, USER_STACK_SCRATCH, USER_STACK_SEQ,
    USER_STACKS, add, count_loss,
};
use crate::regs::{MAX_FRAME_DISTANCE, TaskRegs, UserPos};

/// 1: copy user stacks for DWARF unwinding; 0: frame-pointer stacks only. Set by
/// userspace at load time (`lockprof record --unwind fp`).
#[unsafe(no_mangle)]
static COPY_USER_STACKS: u32 = 1;

const EEXIST: i64 = 17;

/// The current call position's stack when the thread's `memo`, its slot in
/// `POSITIONS` or the cache knows it (no walk, no stack copy); `None` otherwise.
#[inline(always)]
pub fn cached_site(regs: TaskRegs, tid: u32, memo: &mut RawSiteMemo) -> Option<RawStackCacheValue> {
    let key = cache_key(regs, tid)?;
    known_site(&key, memo)
}

/// The stack of call position `key` from the thread's `memo` (the row it has in hand),
/// else its slot in `POSITIONS` (an array: no hashing), else `STACK_CACHE` (an LRU
/// hash); what a level below the memo knows is copied up.
#[inline(always)]
fn known_site(key: &RawStackCacheKey, memo: &mut RawSiteMemo) -> Option<RawStackCacheValue> {
    let digest = key.digest();
    if let Some(site) = recall(memo, digest) {
        return Some(site);
    }
    let slot = POSITIONS.get_ptr_mut(position_slot(key.tid, digest));
    if let Some(slot) = slot {
        // SAFETY: a live array slot; other threads may write it concurrently (another
        // position hashing to it), so it is copied out and checked whole.
        let s = unsafe { *slot };
        if s.digest == digest && s.tid == key.tid {
            let site = RawStackCacheValue {
                stack_id: s.stack_id,
                pad: 0,
                leaf_ret: s.leaf_ret,
            };
            remember(memo, digest, site);
            return Some(site);
        }
    }
    // SAFETY: the value is copied out immediately.
    let site = unsafe { STACK_CACHE.get(key) }.copied()?;
    fill_slot(slot, key.tid, digest, site);
    remember(memo, digest, site);
    Some(site)
}

/// Put `site` in `slot` of `POSITIONS` (replacing whatever position was there).
#[inline(always)]
fn fill_slot(slot: Option<*mut RawPositionSlot>, tid: u32, digest: u64, site: RawStackCacheValue) {
    if let Some(slot) = slot {
        // SAFETY: a live array slot; a racing writer leaves one of the two positions
        // or a torn mix that matches neither (checked on read by digest and thread).
        unsafe {
            *slot = RawPositionSlot {
                digest,
                leaf_ret: site.leaf_ret,
                stack_id: site.stack_id,
                tid,
            };
        }
    }
}

/// The current call position's stack: from the thread's `memo`, the cache, or a
/// fresh walk (and stack copy) that is then cached.
#[inline(always)]
pub fn site<C: StackIdContext>(
    ctx: &C,
    regs: TaskRegs,
    (tgid, tid): (u32, u32),
    memo: &mut RawSiteMemo,
) -> RawStackCacheValue {
    let key = cache_key(regs, tid);
    if let Some(site) = key.as_ref().and_then(|k| known_site(k, memo)) {
        return site;
    }
    let fp_id = walk(ctx);
    let pos = regs.position();
    let leaf_ret = leaf_return(pos.sp);
    // A new call position for this thread: another thread of the process may have
    // copied the stack there already (a pool of workers blocks at the same few
    // places); else copy it once, so userspace can unwind it with the modules' CFI.
    // Repeats reuse the id through the caches and cost no copy.
    let shared = key
        .as_ref()
        .and_then(|k| shared_key(tgid, fp_id, k, leaf_ret));
    let known = shared
        .as_ref()
        // SAFETY: the value is copied out immediately.
        .and_then(|k| unsafe { SHARED_SITES.get(k) }.copied());
    let stack_id = match known {
        Some(id) => id,
        None => match copy_user_stack(tgid, pos, fp_id, shared.is_some()) {
            Some(id) => {
                if let Some(k) = &shared {
                    let _ = SHARED_SITES.insert(k, &id, u64::from(BPF_ANY));
                }
                id
            }
            None => fp_id,
        },
    };
    let site = RawStackCacheValue {
        stack_id,
        pad: 0,
        leaf_ret,
    };
    if stack_id >= 0
        && let Some(key) = &key
    {
        let _ = STACK_CACHE.insert(key, site, u64::from(BPF_ANY));
        let digest = key.digest();
        fill_slot(
            POSITIONS.get_ptr_mut(position_slot(tid, digest)),
            tid,
            digest,
            site,
        );
        remember(memo, digest, site);
    }
    site
}

/// The memo's stack for the position with `digest`, if it remembers it.
#[inline(always)]
fn recall(memo: &RawSiteMemo, digest: u64) -> Option<RawStackCacheValue> {
    memo.ways
        .iter()
        .find(|w| w.digest == digest)
        .map(|w| RawStackCacheValue {
            stack_id: w.stack_id,
            pad: 0,
            leaf_ret: w.leaf_ret,
        })
}

/// Remember the position with `digest` in place of the oldest one.
#[inline(always)]
fn remember(memo: &mut RawSiteMemo, digest: u64, site: RawStackCacheValue) {
    memo.ways[memo.next as usize & (SITE_MEMO_WAYS - 1)] = RawSiteMemoWay {
        digest,
        leaf_ret: site.leaf_ret,
        stack_id: site.stack_id,
        pad: 0,
    };
    memo.next = memo.next.wrapping_add(1);
}

/// Where thread `tid` is: registers plus the first two frame records' return
/// addresses. `None` when the first frame record cannot be read (no cache then).
///
/// Code without frame pointers (Debian's glibc) uses `rbp` as a general register,
/// and the value it holds at the syscall can change on every call (a counter, a
/// pointer): keying on it, or on words read through it, would miss the cache every
/// time — and with DWARF unwinding every miss copies 16 KiB of stack. So `rbp` and the
/// frame records only count when `rbp` looks like a frame pointer
/// ([`UserPos::frame_pointer`]).
#[inline(always)]
fn cache_key(regs: TaskRegs, tid: u32) -> Option<RawStackCacheKey> {
    let pos = regs.position();
    let UserPos { ip, sp, .. } = pos;
    let mut ret1 = 0;
    let mut ret2 = 0;
    let bp = if let Some(bp) = pos.frame_pointer() {
        // A frame record is [saved bp, return address].
        // SAFETY: bpf_probe_read_user validates the user pointer.
        let frame1: [u64; 2] = unsafe { bpf_probe_read_user(bp as *const [u64; 2]) }.ok()?;
        ret1 = frame1[1];
        // The caller's record lies above this one on the same stack. Anything else is
        // not a frame chain (`rbp` held a stack address by chance) and is not read (a
        // wild read faults, see `frame_pointer`).
        let up = frame1[0];
        if up > bp && up - bp < MAX_FRAME_DISTANCE {
            // SAFETY: as above.
            ret2 = unsafe { bpf_probe_read_user(up as *const [u64; 2]) }.map_or(0, |f| f[1]);
        }
        bp
    } else {
        0
    };
    Some(RawStackCacheKey {
        tid,
        pad: 0,
        ip,
        sp,
        bp,
        ret1,
        ret2,
    })
}

/// The per-process key of a call position with a frame chain (see
/// `RawSharedSiteKey`); `None` without one, where only the per-thread cache applies.
///
/// A frame chain is two frame records whose return addresses each follow a call
/// instruction. In code without frame pointers `rbp` may hold any stack address, and
/// the "records" it leads to are data: a walk of them names no call path, so two
/// threads on different paths could agree on every field of the key and share a copy
/// that is not theirs. Data words that happen to follow a call, twice, are rare; this
/// runs once per new call position of a thread.
#[inline(always)]
fn shared_key(
    tgid: u32,
    fp_id: i32,
    key: &RawStackCacheKey,
    leaf_ret: u64,
) -> Option<RawSharedSiteKey> {
    if fp_id < 0 || key.bp == 0 || !is_return_address(key.ret1) || !is_return_address(key.ret2) {
        return None;
    }
    Some(RawSharedSiteKey {
        tgid,
        fp_stack_id: fp_id,
        ip: key.ip,
        frame_offset: key.bp - key.sp,
        leaf_ret,
    })
}

/// Whether the user code before `addr` ends with a call instruction.
#[inline(always)]
fn is_return_address(addr: u64) -> bool {
    if addr < 8 {
        return false;
    }
    // SAFETY: bpf_probe_read_user validates the user pointer.
    unsafe { bpf_probe_read_user((addr - 8) as *const [u8; 8]) }
        .is_ok_and(|before| follows_call(&before))
}

/// A fresh stack walk: the id in `STACKS`, or in `STACKS2` (offset by
/// `STACK_ID_OVERFLOW`) when the first map's bucket holds another stack; a negative
/// errno (counted as a loss) when both fail.
#[inline(always)]
fn walk<C: StackIdContext>(ctx: &C) -> i32 {
    let flags = u64::from(BPF_F_USER_STACK);
    let e = match ctx.get_stackid(&STACKS, flags) {
        Ok(id) => return id as i32,
        Err(e) => e,
    };
    if i64::from(e) == -EEXIST
        && let Ok(id) = ctx.get_stackid(&STACKS2, flags)
    {
        return id as i32 + STACK_ID_OVERFLOW;
    }
    count_loss(if i64::from(e) == -EEXIST {
        Loss::StackCollision
    } else {
        Loss::StackError
    });
    e
}

/// Copy the user registers and up to `USER_STACK_PAGES` pages of user stack (from the
/// page holding `sp`) into `USER_STACKS` under a fresh id. `None` (counted as a loss)
/// when copying is off-limits (ids exhausted, map full, first page unreadable).
#[inline(always)]
fn copy_user_stack(tgid: u32, pos: UserPos, fp_stack_id: i32, shared: bool) -> Option<i32> {
    // SAFETY: a plain read of a global the loader may have rewritten; volatile so the
    // compiler does not fold in the initializer.
    if unsafe { core::ptr::read_volatile(&raw const COPY_USER_STACKS) } == 0 {
        return None;
    }
    let copy = USER_STACK_SCRATCH.get_ptr_mut(0)?;
    let seq = USER_STACK_SEQ.get_ptr_mut(0)?;
    // SAFETY: `copy` is this CPU's slot of a per-CPU array; BPF programs run with
    // migration disabled, so nothing else writes it meanwhile.
    let copy = unsafe { &mut *copy };
    copy.tgid = tgid;
    copy.fp_stack_id = fp_stack_id;
    copy.ip = pos.ip;
    copy.sp = pos.sp;
    copy.bp = pos.bp;
    copy.flags = if shared { COPY_SHARED } else { 0 };
    let base = pos.sp & !4095;
    let mut len = 0u32;
    // Whole pages at constant offsets keep the verifier's bounds simple; a stack's
    // end (the mapping above it) stops the copy at the first unreadable page.
    for page in 0..USER_STACK_PAGES {
        let off = page * 4096;
        // SAFETY: the destination is `data[off..off + 4096]`, inside the map value;
        // the helper validates the user source address.
        let r = unsafe {
            raw_helpers::bpf_probe_read_user(
                copy.data.as_mut_ptr().add(off).cast(),
                4096,
                (base + off as u64) as *const core::ffi::c_void,
            )
        };
        if r != 0 {
            break;
        }
        len += 4096;
    }
    if len == 0 {
        count_loss(Loss::UserStackCopy);
        return None;
    }
    copy.len = len;
    // The shared counter hands each copy its own id: ids are never reused, so frames
    // userspace cached under an id always belong to it. A racing CPU can read the same
    // value before both add (the generic BPF CPU has no fetch-and-add): the second
    // insert then fails on BPF_NOEXIST and takes the next id instead.
    for _ in 0..2 {
        // SAFETY: `seq` is a live array slot; read here, bumped atomically.
        let n = unsafe { core::ptr::read_volatile(seq) };
        add(seq, 1);
        if n >= DWARF_STACK_IDS {
            break;
        }
        let id = DWARF_STACK_ID_BASE + n as i32;
        match USER_STACKS.insert(&id, &*copy, u64::from(BPF_NOEXIST)) {
            Ok(()) => return Some(id),
            Err(e) if i64::from(e) == -EEXIST => {}
            Err(_) => break,
        }
    }
    count_loss(Loss::UserStackCopy);
    None
}

/// The word at the user stack pointer: the return address into the caller of a
/// frameless leaf like glibc's `syscall()` (validated in userspace), or 0.
#[inline(always)]
fn leaf_return(sp: u64) -> u64 {
    // SAFETY: bpf_probe_read_user validates the user pointer.
    unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0)
}

//! The symbolized stacks of one live session: each raw stack key (process, kernel
//! stack id, leaf) is unwound (CFI or frame pointers), repaired and symbolized once,
//! when it first appears, and given a canonical key — one per distinct call path,
//! whichever thread or process took it. Rows are summed under canonical keys
//! (`session::fold`), so the frames are kept once per call path; the raw keys of
//! exited threads are forgotten.
//!
//! Stack copies are unwound as they are drained (the kernel's copy map is emptied at
//! every refresh), and only the unwound addresses wait for the rows that name them.
//!
//! Owns: the per-session stack cache, the canonical stacks, the symbolizer it
//! builds lazily (with the user's debug directories, debuginfod and the Go fallback),
//! and which kernel frame-pointer stack ids nothing will name again ([`StackCache::
//! spent_ids`]). Must not: read the kernel's maps (it is handed a `Snapshot` and
//! each drained copy) or decide what a frame means.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use profiler_common::DWARF_STACK_ID_BASE;

use crate::analyze::aggregate::{CANONICAL_STACK_BASE, StackKey, SymbolizedStacks, stack_slot};
use crate::collect::snapshot::{Snapshot, UserStackCopy};
use crate::report::Frame;
use crate::resolve::debuginfod::Debuginfod;
use crate::resolve::gopclntab::GoFallback;
use crate::resolve::stack_repair;
use crate::resolve::symbolize::{BlazeSymbolizer, StackSymbolizer};
use crate::resolve::unwind::{StackUnwinder, UnwindMethod, Unwound};
use crate::session::process::signals;
use crate::session::procmaps::MapsHistory;

/// Hashing of raw stack keys, looked up for every drained row (tens of thousands a
/// refresh): a multiply-rotate per word instead of `SipHash`. The keys come from our
/// own probes, so there is no adversary to resist.
type KeyHash = std::hash::BuildHasherDefault<WordHasher>;

#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(u64::from(n.cast_unsigned()));
    }

    fn write_u64(&mut self, n: u64) {
        // The step of `FxHash` (rustc's hasher): rotate, xor, multiply by a large odd constant.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Unwound copies held for rows not drained yet, at most (a few hundred bytes each).
const MAX_PENDING: usize = 16_384;

/// A raw stack key's canonical key, and the thread that took it (0 when not known),
/// whose exit makes the raw key useless: the kernel's stack cache is per thread —
/// except for a `shared` copy, which the probe hands to every thread of the process
/// at that call position, so its raw key lives as long as the process.
#[derive(Clone, Copy)]
struct Canon {
    key: StackKey,
    owner: u32,
    shared: bool,
}

/// Symbolized stacks of one session, by canonical key (see [`stack_slot`]): a raw
/// key is stable while the probes' maps live (stack ids are never reused) and the
/// process keeps its layout, so each is symbolized once; a process's raw keys are
/// forgotten when it execs, a thread's when it has exited.
pub(super) struct StackCache {
    /// Frames by canonical slot (`(0, id, 0)`): one entry per distinct call path.
    pub(super) frames: SymbolizedStacks,
    /// How each canonical stack was unwound.
    pub(super) methods: HashMap<StackKey, UnwindMethod>,
    /// Raw key → canonical key.
    canon: HashMap<StackKey, Canon, KeyHash>,
    /// The kernel's frame-pointer stack of each raw `(tgid, id)` read, for the same
    /// id seen later with another leaf.
    ips: HashMap<(u32, i32), Vec<u64>, KeyHash>,
    /// The canonical key of each unwound stack, by process (its layout) and addresses.
    by_addrs: HashMap<(u32, Option<UnwindMethod>, Vec<u64>), StackKey>,
    /// Canonical id of each distinct (frames, unwind method), frames by identity hash.
    interned: HashMap<(Vec<u128>, Option<UnwindMethod>), i32>,
    /// Drained stack copies unwound, by `(tgid, copy id)`, until a row names them (a
    /// wait's copy is taken when it starts, its row counted when it ends).
    pending: HashMap<(u32, i32), Unwound>,
    /// Processes found exited at the previous pruning with copies pending: those go
    /// at the next one.
    pending_exited: HashSet<u32>,
    /// Copies of the probe's per-process copy cache (see `UserStackCopy::shared`) by
    /// `(tgid, copy id)`, until their raw key is resolved.
    shared: HashSet<(u32, i32), KeyHash>,
    /// Frame-pointer stack ids rows named directly (a failed copy, or `--unwind fp`):
    /// the probe's stack cache hands them out again, so they stay in the kernel.
    direct: HashSet<i32>,
    /// Frame-pointer ids read for copies only: once read, nothing needs them.
    spent: HashSet<i32>,
    /// The probe's cumulative count of failed copies at the previous [`Self::spent_ids`].
    copy_errors: u64,
    /// Threads found exited at the previous pruning: their raw keys go at the next
    /// one (their last rows may still be drained in between).
    exited: HashSet<(u32, u32)>,
    pub(super) symbolizer: Option<StackSymbolizer<GoFallback<BlazeSymbolizer>>>,
    /// Split debug directories the user gave, searched first.
    pub(super) debug_dirs: Vec<PathBuf>,
    /// Fetch missing debug files from `DEBUGINFOD_URLS` (off with `--no-debuginfod`).
    pub(super) debuginfod: bool,
    pub(super) verbose: bool,
    pub(super) unwinder: StackUnwinder,
    /// The most stack any CFI unwinding read above its stack pointer, in bytes: how
    /// much of the probe's copy real stacks need.
    pub(super) deepest_stack: u64,
    /// User-stack copies unwound by CFI so far.
    pub(super) copies_unwound: u64,
    /// Frame-pointer stack ids handed back for deletion so far ([`Self::spent_ids`]).
    pub(super) fp_stacks_deleted: u64,
}

impl StackCache {
    pub(super) fn new(debug_dirs: &[PathBuf], debuginfod: bool, verbose: bool) -> Self {
        Self {
            frames: SymbolizedStacks::default(),
            methods: HashMap::new(),
            canon: HashMap::default(),
            ips: HashMap::default(),
            by_addrs: HashMap::new(),
            interned: HashMap::new(),
            pending: HashMap::new(),
            pending_exited: HashSet::new(),
            shared: HashSet::default(),
            direct: HashSet::new(),
            spent: HashSet::new(),
            copy_errors: 0,
            exited: HashSet::new(),
            symbolizer: None,
            debug_dirs: debug_dirs.to_vec(),
            debuginfod,
            verbose,
            unwinder: StackUnwinder::default(),
            deepest_stack: 0,
            copies_unwound: 0,
            fp_stacks_deleted: 0,
        }
    }

    /// Is the raw stack `(tgid, id)` resolved already (with any leaf)? Then the
    /// probes need not read it again.
    pub(super) fn knows(&self, key: (u32, i32)) -> bool {
        self.ips.contains_key(&key)
    }

    /// Drop the raw keys of `pids` (their layout changed); their canonical stacks
    /// stay for the rows already summed.
    pub(super) fn forget(&mut self, pids: &BTreeSet<u32>) {
        if pids.is_empty() {
            return;
        }
        self.canon.retain(|(pid, _, _), _| !pids.contains(pid));
        self.ips.retain(|(pid, _), _| !pids.contains(pid));
        self.pending.retain(|(pid, _), _| !pids.contains(pid));
        self.shared.retain(|(pid, _)| !pids.contains(pid));
        self.by_addrs.retain(|(pid, _, _), _| !pids.contains(pid));
    }

    /// The canonical key of a resolved raw key, noting `tid` as the thread that took
    /// it; kernel-lost stacks (negative ids) and unresolved keys stay as they are.
    pub(super) fn canonical(&mut self, key: StackKey, tid: u32) -> StackKey {
        match self.canon.get_mut(&key) {
            Some(c) => {
                if tid != 0 && !c.shared {
                    c.owner = tid;
                }
                let (_, id, leaf) = c.key;
                (key.0, id, leaf)
            }
            None => key,
        }
    }

    /// The processes that own raw keys (to check which threads are alive).
    pub(super) fn owner_tgids(&self) -> HashSet<u32> {
        self.canon
            .keys()
            .map(|k| k.0)
            .chain(self.pending.keys().map(|k| k.0))
            .collect()
    }

    /// Take one drained stack copy of process `tgid` under `id`: unwind it now
    /// against the process's maps and keep the addresses (not the 16 KiB) until a
    /// row names it, with `fp`, the frame-pointer walk of the same capture (id
    /// `fp_id`), as its fallback when that walk is the one taken with this copy.
    pub(super) fn take_copy(
        &mut self,
        copy: &UserStackCopy,
        (tgid, id): (u32, i32),
        (fp_id, fp): (i32, &[u64]),
        maps: &MapsHistory,
    ) {
        let fp = if stack_repair::walk_matches_copy(fp, copy) {
            fp.to_vec()
        } else {
            Vec::new()
        };
        self.ips.insert((tgid, id), fp);
        if copy.shared {
            self.shared.insert((tgid, id));
        }
        if fp_id >= 0 {
            self.spent.insert(fp_id);
        }
        // A second Ctrl-C: no more CFI unwinding, the frame-pointer walk is kept.
        if signals::hurry() {
            return;
        }
        let layout = maps.layout_for(tgid, copy.ip).unwrap_or(&[]);
        let unwound = self
            .unwinder
            .unwind_reading(copy, layout, |m| maps.readable(m));
        self.copies_unwound += 1;
        self.deepest_stack = self.deepest_stack.max(unwound.stack_used);
        self.pending.insert((tgid, id), unwound);
    }

    /// The frame-pointer stack ids read for copies that the kernel can delete: no row
    /// named them directly (a thread whose copy failed names its walk's id, which the
    /// probe's cache keeps handing out). Held back while copies fail (`copy_errors`,
    /// the probe's cumulative count): a failed copy's row naming one of them may not
    /// have been drained yet. An id deleted and bound to another stack before a copy
    /// naming it is read is caught by [`stack_repair::walk_matches_copy`].
    pub(super) fn spent_ids(&mut self, copy_errors: u64) -> Vec<i32> {
        let failed = copy_errors > self.copy_errors;
        self.copy_errors = copy_errors;
        let direct = &self.direct;
        self.spent.retain(|id| !direct.contains(id));
        if failed {
            return Vec::new();
        }
        self.fp_stacks_deleted += self.spent.len() as u64;
        self.spent.drain().collect()
    }

    /// Forget the raw keys of threads found exited at the previous call (a thread's
    /// last rows are drained after it is seen gone), and note the threads exited now.
    /// Go's stacks stay: its maps are never drained. Returns the raw keys held.
    pub(super) fn prune(&mut self, alive: impl Fn(u32, u32) -> bool) -> usize {
        let exited = std::mem::take(&mut self.exited);
        let go = crate::analyze::go::GO_STACK_ID_BASE..DWARF_STACK_ID_BASE;
        self.canon
            .retain(|k, c| go.contains(&k.1) || !exited.contains(&(k.0, c.owner)));
        self.exited = self
            .canon
            .iter()
            .filter(|(k, c)| !go.contains(&k.1) && !alive(k.0, c.owner))
            .map(|(k, c)| (k.0, c.owner))
            .collect();
        // Copies of processes gone since the previous pruning (whose rows have been
        // drained since) will never be named.
        let gone = std::mem::take(&mut self.pending_exited);
        self.pending.retain(|k, _| !gone.contains(&k.0));
        // A live process's copy waits for as long as its thread blocks at a new call
        // position, or forever if its row was lost to a full map (counted there):
        // past the bound the oldest go (a row naming one later has no frames).
        if self.pending.len() > MAX_PENDING {
            let mut ids: Vec<i32> = self.pending.keys().map(|k| k.1).collect();
            ids.sort_unstable();
            let oldest_kept = ids[ids.len() - MAX_PENDING / 2];
            self.pending.retain(|k, _| k.1 >= oldest_kept);
        }
        self.pending_exited = self
            .pending
            .keys()
            .map(|k| k.0)
            .filter(|&tgid| !alive(tgid, 0))
            .collect();
        let held: HashSet<(u32, i32)> = self
            .canon
            .keys()
            .map(|k| (k.0, k.1))
            .chain(self.pending.keys().copied())
            .collect();
        self.ips.retain(|k, _| held.contains(k));
        self.shared.retain(|k| held.contains(k));
        let processes: HashSet<u32> = held.iter().map(|k| k.0).collect();
        self.by_addrs
            .retain(|(pid, _, _), _| processes.contains(pid));
        self.canon.len()
    }

    /// Frames the symbolizer could not name, over the distinct stacks `snapshot`'s
    /// rows reference.
    pub(super) fn unsymbolized(&self, snapshot: &Snapshot) -> u64 {
        let keys: HashSet<StackKey> = referenced(snapshot).map(stack_slot).collect();
        keys.iter()
            .filter_map(|k| self.frames.get(k))
            .flatten()
            .filter(|f| f.function.is_none())
            .count() as u64
    }

    /// Resolve the raw stacks `snapshot`'s rows reference that are not known yet,
    /// from the maps captured while the processes were alive, and give each its
    /// canonical key. A stack with a user-stack copy is unwound from the modules'
    /// CFI; the kernel's frame-pointer walk (with the skipped leaf caller restored) is
    /// kept instead when the CFI unwind stopped early and the walk went further. A
    /// key whose stack the snapshot lacks has no frames (an unknown stack). Returns
    /// how many raw keys were resolved.
    pub(super) fn resolve(&mut self, snapshot: &Snapshot, maps: &MapsHistory) -> usize {
        // Sorted (canonical ids are handed out in this order, so reports do not
        // depend on hash order) and deduplicated: most rows repeat a key.
        let mut keys: Vec<StackKey> = referenced(snapshot)
            .chain(
                snapshot
                    .edges
                    .iter()
                    .map(|e| (e.tgid, e.waiter_stack_id, e.waiter_leaf_ret)),
            )
            .chain(
                snapshot
                    .blame
                    .iter()
                    .map(|b| (b.tgid, b.waiter_stack_id, b.waiter_leaf_ret)),
            )
            .filter(|k| k.1 >= 0 && !self.canon.contains_key(k))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut raw: Vec<(StackKey, Option<UnwindMethod>, Vec<u64>)> = Vec::new();
        let mut after_call: HashMap<(u32, u64), bool> = HashMap::new();
        for (&k, ips) in &snapshot.stacks {
            self.ips.entry(k).or_insert_with(|| ips.clone());
        }
        self.direct.extend(
            keys.iter()
                .map(|k| k.1)
                .filter(|&id| id < crate::analyze::go::GO_STACK_ID_BASE),
        );
        for &key @ (pid, id, leaf) in &keys {
            let Some(kernel) = self.ips.get(&(pid, id)) else {
                raw.push((key, None, Vec::new()));
                continue;
            };
            // Many keys share a leaf caller: read its bytes once.
            let fp = stack_repair::splice_leaf(kernel, leaf, |addr| {
                *after_call.entry((pid, addr)).or_insert_with(|| {
                    maps.bytes_before(pid, addr, 7)
                        .is_some_and(|b| profiler_common::follows_call(&b))
                })
            });
            let (method, stack) = match self.pending.remove(&(pid, id)) {
                Some(u) if u.complete || u.addrs.len() >= fp.len() => (u.method(), u.addrs),
                _ => (UnwindMethod::FramePointer, fp),
            };
            raw.push((key, Some(method), stack));
        }
        // Threads of one process that took the same call path unwind to the same
        // addresses: each distinct one is symbolized once, in this batch or ever.
        let mut new: Vec<(StackKey, Option<UnwindMethod>, Vec<u64>)> = Vec::new();
        let mut first_of: HashMap<(u32, Option<UnwindMethod>, &[u64]), usize> = HashMap::new();
        let mut later: Vec<(StackKey, usize)> = Vec::new();
        for (key, method, stack) in &raw {
            if let Some(&canonical) = self.by_addrs.get(&(key.0, *method, stack.clone())) {
                let canon = self.canon_for(*key, canonical);
                self.canon.insert(*key, canon);
                continue;
            }
            match first_of.entry((key.0, *method, stack.as_slice())) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    later.push((*key, *e.get()));
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(new.len());
                    new.push((*key, *method, stack.clone()));
                }
            }
        }
        let frames = self.symbolize(&new, maps);
        let mut canonical_of = Vec::with_capacity(new.len());
        for ((key, method, stack), frames) in new.into_iter().zip(frames) {
            let canonical = self.intern(frames, method);
            self.by_addrs.insert((key.0, method, stack), canonical);
            let canon = self.canon_for(key, canonical);
            self.canon.insert(key, canon);
            canonical_of.push(canonical);
        }
        for (key, first) in later {
            let canon = self.canon_for(key, canonical_of[first]);
            self.canon.insert(key, canon);
        }
        keys.len()
    }

    /// The canonical entry of a raw key resolved now: owned by no thread yet, shared
    /// by the process when its copy came from the probe's per-process cache.
    fn canon_for(&mut self, key: StackKey, canonical: StackKey) -> Canon {
        Canon {
            key: canonical,
            owner: 0,
            shared: self.shared.remove(&(key.0, key.1)),
        }
    }

    /// Symbolize the unwound stacks (none for a stack without addresses).
    fn symbolize(
        &mut self,
        raw: &[(StackKey, Option<UnwindMethod>, Vec<u64>)],
        maps: &MapsHistory,
    ) -> Vec<Vec<Frame>> {
        if raw.iter().all(|(_, _, s)| s.is_empty()) {
            return vec![Vec::new(); raw.len()];
        }
        let inputs: Vec<(u32, &[u64])> = raw
            .iter()
            .map(|((pid, _, _), _, s)| (*pid, s.as_slice()))
            .collect();
        // The user's debug directories, then the containers' own, then the host's.
        let debug_dirs = [self.debug_dirs.clone(), maps.container_debug_dirs()].concat();
        let debuginfod = self
            .debuginfod
            .then(|| Debuginfod::from_env(self.verbose))
            .flatten();
        let symbolizer = self.symbolizer.get_or_insert_with(|| {
            StackSymbolizer::new(GoFallback::new(
                BlazeSymbolizer::with_debug_dirs(&debug_dirs).with_debuginfod(debuginfod),
            ))
            .stop_when(signals::hurry)
        });
        symbolizer.symbolize_stacks(maps, &inputs)
    }

    /// Whether a second Ctrl-C cut symbolization short (frames left as module+offset).
    pub fn symbolization_cut_short(&self) -> bool {
        self.symbolizer
            .as_ref()
            .is_some_and(StackSymbolizer::stopped)
    }

    /// The canonical slot of a symbolized stack: the same frames (up to their absolute
    /// addresses, which differ between processes) unwound the same way share one.
    fn intern(&mut self, frames: Vec<Frame>, method: Option<UnwindMethod>) -> StackKey {
        let identity = (frames.iter().map(frame_identity).collect(), method);
        let next = CANONICAL_STACK_BASE + self.interned.len() as i32;
        let id = *self.interned.entry(identity).or_insert(next);
        let slot = (0, id, 0);
        if id == next {
            self.frames.insert(slot, frames);
            if let Some(m) = method {
                self.methods.insert(slot, m);
            }
        }
        slot
    }
}

/// The stacks of `snapshot`'s waits and wakes, its edges' wakers and its blamed
/// holders (with repeats): what a report shows frames of.
fn referenced(snapshot: &Snapshot) -> impl Iterator<Item = StackKey> + '_ {
    crate::analyze::aggregate::row_stacks(snapshot)
        .chain(
            snapshot
                .edges
                .iter()
                .map(|e| (e.waker_pid(), e.waker_stack_id, e.waker_leaf_ret)),
        )
        .chain(snapshot.blame.iter().filter_map(|b| {
            b.holder_stack()
                .map(|(pid, id)| (pid, id, b.holder_leaf_ret))
        }))
}

/// Everything a frame says but its absolute address, which differs between
/// processes, as a 128-bit hash (two `SipHash`es with fixed keys: two different frames
/// share one with odds of 2^-128, and hashing is far cheaper than formatting the
/// fields). A frame no module maps (its process exited before its maps were read)
/// says nothing that would tell it from another: such frames are one unknown place,
/// or every short-lived process would bring call paths (and sites) of its own.
fn frame_identity(f: &Frame) -> u128 {
    if f.function.is_none() && f.module.is_none() {
        return 0;
    }
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        (
            &f.function,
            &f.file,
            f.line,
            &f.module,
            &f.module_offset,
            f.inlined,
        )
            .hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::snapshot::WaitRow;

    /// A copy whose frame-pointer walk is just its instruction pointer.
    fn copy(ip: u64) -> UserStackCopy {
        UserStackCopy {
            ip,
            sp: 0x7000,
            bp: 0,
            base: 0x7000,
            bytes: vec![0; 64],
            shared: false,
        }
    }

    fn wait(tgid: u32, stack_id: i32) -> WaitRow {
        WaitRow {
            tgid,
            tid: tgid,
            stack_id,
            ..WaitRow::default()
        }
    }

    #[test]
    fn frame_pointer_ids_read_for_copies_are_spent_unless_a_row_named_them() {
        let maps = MapsHistory::default();
        let mut cache = StackCache::new(&[], false, false);
        let copy_id = DWARF_STACK_ID_BASE;
        cache.take_copy(&copy(0x10), (1, copy_id), (5, &[0x10]), &maps);
        cache.take_copy(&copy(0x20), (1, copy_id + 1), (6, &[0x20]), &maps);
        // Id 6 is also a row's own stack (a thread whose copy failed).
        let snap = Snapshot {
            waits: vec![wait(1, copy_id), wait(1, 6)],
            ..Snapshot::default()
        };
        cache.resolve(&snap, &maps);
        assert_eq!(cache.spent_ids(0), [5]);
        assert!(cache.spent_ids(0).is_empty(), "each id is handed back once");
        cache.take_copy(&copy(0x30), (1, copy_id + 2), (7, &[0x30]), &maps);
        assert!(
            cache.spent_ids(1).is_empty(),
            "held back in a refresh where copies failed"
        );
        assert_eq!(cache.spent_ids(1), [7]);
        assert_eq!(cache.fp_stacks_deleted, 2);
    }

    #[test]
    fn a_walk_that_is_not_the_copys_own_is_not_its_fallback() {
        let maps = MapsHistory::default();
        let mut cache = StackCache::new(&[], false, false);
        let id = DWARF_STACK_ID_BASE;
        cache.take_copy(&copy(0x10), (1, id), (5, &[0x99, 0x98]), &maps);
        assert_eq!(cache.ips[&(1, id)], Vec::<u64>::new());
        cache.take_copy(&copy(0x10), (1, id + 1), (5, &[0x10]), &maps);
        assert_eq!(cache.ips[&(1, id + 1)], [0x10]);
    }

    #[test]
    fn copies_wait_for_their_rows_and_go_with_their_process() {
        let maps = MapsHistory::default();
        let mut cache = StackCache::new(&[], false, false);
        let id = DWARF_STACK_ID_BASE;
        cache.take_copy(&copy(0x10), (1, id), (-17, &[]), &maps);
        cache.take_copy(&copy(0x20), (2, id + 1), (-17, &[]), &maps);
        assert_eq!(cache.owner_tgids(), HashSet::from([1, 2]));
        // Process 2 is gone: its copy goes at the second pruning (its last rows may
        // be drained in between); process 1's waits for its row.
        let alive = |tgid: u32, _| tgid == 1;
        cache.prune(alive);
        assert_eq!(cache.pending.len(), 2);
        cache.prune(alive);
        assert_eq!(cache.pending.keys().collect::<Vec<_>>(), [&(1, id)]);
        let snap = Snapshot {
            waits: vec![wait(1, id)],
            ..Snapshot::default()
        };
        cache.resolve(&snap, &maps);
        assert!(cache.pending.is_empty(), "a row took it");
        // Unwound from the copy (CFI), not the (empty) frame-pointer walk.
        let key = stack_slot(cache.canonical((1, id, 0), 1));
        assert!(
            matches!(
                cache.methods.get(&key),
                Some(UnwindMethod::Dwarf | UnwindMethod::DwarfTruncated)
            ),
            "{:?}",
            cache.methods.get(&key)
        );
    }
}

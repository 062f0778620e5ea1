//! The symbolized stacks of one live session: each raw stack key (process, kernel
//! stack id, leaf) is unwound (CFI or frame pointers), repaired and symbolized once,
//! when it first appears, and given a canonical key — one per distinct call path,
//! whichever thread or process took it. Rows are summed under canonical keys
//! (`session::fold`), so the frames are kept once per call path; the raw keys of
//! exited threads are forgotten.
//!
//! Owns: the per-session stack cache, the canonical stacks and the symbolizer it
//! builds lazily (with the user's debug directories, debuginfod and the Go fallback).
//! Must not: read the kernel's maps (it is handed a `Snapshot`) or decide what a
//! frame means.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use profiler_common::DWARF_STACK_ID_BASE;

use crate::analyze::aggregate::{CANONICAL_STACK_BASE, StackKey, SymbolizedStacks, stack_slot};
use crate::collect::snapshot::Snapshot;
use crate::report::Frame;
use crate::resolve::debuginfod::Debuginfod;
use crate::resolve::gopclntab::GoFallback;
use crate::resolve::stack_repair;
use crate::resolve::symbolize::{BlazeSymbolizer, StackSymbolizer};
use crate::resolve::unwind::{StackUnwinder, UnwindMethod, Unwound};
use crate::session::process::signals;
use crate::session::procmaps::MapsHistory;

/// A raw stack key's canonical key, and the thread that took it (0 when not known),
/// whose exit makes the raw key useless: the kernel's stack cache is per thread.
#[derive(Clone, Copy)]
struct Canon {
    key: StackKey,
    owner: u32,
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
    canon: HashMap<StackKey, Canon>,
    /// The kernel's frame-pointer stack of each raw `(tgid, id)` read, for the same
    /// id seen later with another leaf.
    ips: HashMap<(u32, i32), Vec<u64>>,
    /// The canonical key of each unwound stack, by process (its layout) and addresses.
    by_addrs: HashMap<(u32, Option<UnwindMethod>, Vec<u64>), StackKey>,
    /// Canonical id of each distinct (frames, unwind method).
    interned: HashMap<(Vec<String>, Option<UnwindMethod>), i32>,
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
}

impl StackCache {
    pub(super) fn new(debug_dirs: &[PathBuf], debuginfod: bool, verbose: bool) -> Self {
        Self {
            frames: SymbolizedStacks::default(),
            methods: HashMap::new(),
            canon: HashMap::new(),
            ips: HashMap::new(),
            by_addrs: HashMap::new(),
            interned: HashMap::new(),
            exited: HashSet::new(),
            symbolizer: None,
            debug_dirs: debug_dirs.to_vec(),
            debuginfod,
            verbose,
            unwinder: StackUnwinder::default(),
            deepest_stack: 0,
            copies_unwound: 0,
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
        self.by_addrs.retain(|(pid, _, _), _| !pids.contains(pid));
    }

    /// The canonical key of a resolved raw key, noting `tid` as the thread that took
    /// it; kernel-lost stacks (negative ids) and unresolved keys stay as they are.
    pub(super) fn canonical(&mut self, key: StackKey, tid: u32) -> StackKey {
        match self.canon.get_mut(&key) {
            Some(c) => {
                if tid != 0 {
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
        self.canon.keys().map(|k| k.0).collect()
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
        let held: HashSet<(u32, i32)> = self.canon.keys().map(|k| (k.0, k.1)).collect();
        self.ips.retain(|k, _| held.contains(k));
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
        let keys: BTreeSet<StackKey> = referenced(snapshot)
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
        let mut unwound: HashMap<(u32, i32), Unwound> = HashMap::new();
        let mut raw: Vec<(StackKey, Option<UnwindMethod>, Vec<u64>)> = Vec::new();
        for (&k, ips) in &snapshot.stacks {
            self.ips.entry(k).or_insert_with(|| ips.clone());
        }
        for &key @ (pid, id, leaf) in &keys {
            let Some(kernel) = self.ips.get(&(pid, id)) else {
                raw.push((key, None, Vec::new()));
                continue;
            };
            let fp = stack_repair::splice_leaf(kernel, leaf, |addr| {
                maps.bytes_before(pid, addr, 7)
                    .is_some_and(|b| stack_repair::follows_call(&b))
            });
            // A second Ctrl-C: no more CFI unwinding, the frame-pointer walk is kept.
            let copy = snapshot
                .user_stacks
                .get(&(pid, id))
                .filter(|_| !signals::hurry());
            let dwarf = copy.map(|copy| {
                unwound.entry((pid, id)).or_insert_with(|| {
                    let layout = maps.layout_for(pid, copy.ip).unwrap_or(&[]);
                    self.unwinder
                        .unwind_reading(copy, layout, |m| maps.readable(m))
                })
            });
            let (method, stack) = match dwarf {
                Some(u) if u.complete || u.addrs.len() >= fp.len() => (u.method(), u.addrs.clone()),
                _ => (UnwindMethod::FramePointer, fp),
            };
            raw.push((key, Some(method), stack));
        }
        self.copies_unwound += unwound.len() as u64;
        self.deepest_stack = unwound
            .values()
            .map(|u| u.stack_used)
            .fold(self.deepest_stack, u64::max);
        // Threads of one process that took the same call path unwind to the same
        // addresses: those are symbolized once.
        let (known, new): (Vec<_>, Vec<_>) = raw
            .into_iter()
            .partition(|(k, m, s)| self.by_addrs.contains_key(&(k.0, *m, s.clone())));
        let frames = self.symbolize(&new, maps);
        for ((key, method, stack), frames) in new.into_iter().zip(frames) {
            let canonical = self.intern(frames, method);
            self.by_addrs.insert((key.0, method, stack), canonical);
            self.canon.insert(
                key,
                Canon {
                    key: canonical,
                    owner: 0,
                },
            );
        }
        for (key, method, stack) in &known {
            let canonical = self.by_addrs[&(key.0, *method, stack.clone())];
            self.canon.insert(
                *key,
                Canon {
                    key: canonical,
                    owner: 0,
                },
            );
        }
        keys.len()
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
/// processes. A frame no module maps (its process exited before its maps were read)
/// says nothing that would tell it from another: such frames are one unknown place,
/// or every short-lived process would bring call paths (and sites) of its own.
fn frame_identity(f: &Frame) -> String {
    if f.function.is_none() && f.module.is_none() {
        return "?".to_owned();
    }
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{}",
        f.function, f.file, f.line, f.module, f.module_offset, f.inlined
    )
}

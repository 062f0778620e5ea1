//! The symbolized stacks of one live session: each stack key is unwound (CFI or frame
//! pointers), repaired and symbolized once, when it first appears, and kept for every
//! later report; a process's stacks are forgotten when it execs.
//!
//! Owns: the per-session stack cache and the symbolizer it builds lazily (with the
//! user's debug directories, debuginfod and the Go fallback). Must not: read the
//! kernel's maps (it is handed a `Snapshot`) or decide what a frame means.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use crate::analyze::aggregate::{StackKey, SymbolizedStacks};
use crate::collect::snapshot::Snapshot;
use crate::resolve::debuginfod::Debuginfod;
use crate::resolve::gopclntab::GoFallback;
use crate::resolve::stack_repair;
use crate::resolve::symbolize::{BlazeSymbolizer, StackSymbolizer};
use crate::resolve::unwind::{StackUnwinder, UnwindMethod, Unwound};
use crate::session::process::signals;
use crate::session::procmaps::MapsHistory;

/// Symbolized stacks of one session. A stack key is stable while the probes' maps
/// live (stack ids are never reused without `BPF_F_REUSE_STACKID`) and the process
/// keeps its layout, so each stack is symbolized once, when it first appears, and kept
/// for every later report; a process's stacks are forgotten when it execs.
pub(super) struct StackCache {
    pub(super) frames: SymbolizedStacks,
    /// How each cached stack was unwound.
    pub(super) methods: HashMap<StackKey, UnwindMethod>,
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
}

impl StackCache {
    pub(super) fn new(debug_dirs: &[PathBuf], debuginfod: bool, verbose: bool) -> Self {
        Self {
            frames: SymbolizedStacks::default(),
            methods: HashMap::new(),
            symbolizer: None,
            debug_dirs: debug_dirs.to_vec(),
            debuginfod,
            verbose,
            unwinder: StackUnwinder::default(),
            deepest_stack: 0,
        }
    }

    /// Drop the cached stacks of `pids` (their layout changed).
    pub(super) fn forget(&mut self, pids: &BTreeSet<u32>) {
        if pids.is_empty() {
            return;
        }
        self.frames.retain(|(pid, _, _), _| !pids.contains(pid));
        self.methods.retain(|(pid, _, _), _| !pids.contains(pid));
    }

    /// Symbolize the stacks the snapshot references that are not cached yet, from the
    /// maps captured while the processes were alive. A stack with a user-stack copy
    /// is unwound from the modules' CFI; the kernel's frame-pointer walk (with the
    /// skipped leaf caller restored) is kept instead when the CFI unwind stopped early
    /// and the walk went further. Returns the unsymbolized frames among all
    /// referenced stacks.
    pub(super) fn symbolize(&mut self, snapshot: &Snapshot, maps: &MapsHistory) -> u64 {
        let keys: BTreeSet<StackKey> = crate::analyze::aggregate::row_stacks(snapshot)
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
            .filter(|k| snapshot.stacks.contains_key(&(k.0, k.1)))
            .collect();
        let mut unwound: HashMap<(u32, i32), Unwound> = HashMap::new();
        let raw: Vec<(StackKey, Vec<u64>)> = keys
            .iter()
            .filter(|k| !self.frames.contains_key(k))
            .map(|&key @ (pid, id, leaf)| {
                let kernel = &snapshot.stacks[&(pid, id)];
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
                    Some(u) if u.complete || u.addrs.len() >= fp.len() => {
                        (u.method(), u.addrs.clone())
                    }
                    _ => (UnwindMethod::FramePointer, fp),
                };
                self.methods.insert(key, method);
                (key, stack)
            })
            .collect();
        self.deepest_stack = unwound
            .values()
            .map(|u| u.stack_used)
            .fold(self.deepest_stack, u64::max);
        if !raw.is_empty() {
            let inputs: Vec<(u32, &[u64])> = raw
                .iter()
                .map(|((pid, _, _), s)| (*pid, s.as_slice()))
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
            let frames = symbolizer.symbolize_stacks(maps, &inputs);
            self.frames
                .extend(raw.into_iter().map(|(k, _)| k).zip(frames));
        }
        // Unresolved frames are the ones left without a function name.
        keys.iter()
            .filter_map(|k| self.frames.get(k))
            .flatten()
            .filter(|f| f.function.is_none())
            .count() as u64
    }
}

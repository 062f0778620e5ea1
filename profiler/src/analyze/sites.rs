//! One lock site's accumulation: identity from its site frame, counts and times,
//! per-thread / per-address / per-stack breakdowns, and the ranked `Site` it becomes.
//!
//! Owns: `SiteIdentity` (the stable id), `SiteAcc` and the orderings of a site's
//! lists. Must not: look at wakes beyond the "woken by" edges handed to it.

use std::collections::{BTreeMap, HashMap};

use crate::analyze::aggregate::{
    MAX_ADDRESSES_PER_SITE, StackKey, SymbolizedStacks, frames_of, stack_slot,
};
use crate::analyze::attribute::{Attribution, attribute};
use crate::analyze::behavior::{is_contention, site_behavior};
use crate::analyze::blame::{self, BlameAcc};
use crate::analyze::stacks;
use crate::analyze::wakers::{EdgeAcc, WakerLocations, held_across, wake_latency};
use crate::analyze::wrappers::LockFns;
use crate::collect::snapshot::{WaitCounts, WaitRow, WakeToRun, listed_id};
use crate::report::{
    AddressShare, Behavior, Fairness, Frame, Site, StackShare, ThreadShare, WaitKind, WaitSummary,
    WokenBy,
};

/// The frames with `lock_impl` set on those between the syscall and the site frame:
/// the lock implementation the text report folds.
pub(crate) fn mark_lock_impl(frames: &[Frame], lock_fns: &LockFns) -> Vec<Frame> {
    let site = lock_fns.skip(frames, attribute(frames, WaitKind::Other).site);
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| Frame {
            lock_impl: i < site,
            ..f.clone()
        })
        .collect()
}

/// The identity and location of a site, derived from its site frame.
#[derive(Clone, Debug)]
pub(crate) struct SiteIdentity {
    pub(crate) id: String,
    pub(crate) kind: WaitKind,
    pub(crate) lock_impl: &'static str,
    pub(crate) function: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) module: Option<String>,
}

pub(crate) fn site_identity(frames: &[Frame], attr: &Attribution) -> SiteIdentity {
    let Some(f) = frames.get(attr.site) else {
        return SiteIdentity {
            id: format!("{}|?|[unknown stack]|?", attr.kind.as_str()),
            kind: attr.kind,
            lock_impl: attr.lock_impl,
            function: Some("[unknown stack]".to_owned()),
            file: None,
            line: None,
            module: None,
        };
    };
    let module_name = f
        .module
        .as_deref()
        .map(|m| m.rsplit('/').next().unwrap_or(m));
    // Stable across runs and machines: no addresses, only the module's file name.
    let id = match (&f.function, &f.file) {
        (Some(func), Some(file)) => format!(
            "{}|{}|{func}|{file}:{}",
            attr.kind.as_str(),
            module_name.unwrap_or("?"),
            f.line.unwrap_or(0)
        ),
        (Some(func), None) => format!(
            "{}|{}|{func}|?",
            attr.kind.as_str(),
            module_name.unwrap_or("?")
        ),
        // Unresolved: module + offset is the most stable name there is.
        (None, _) => format!(
            "{}|{}|{}|?",
            attr.kind.as_str(),
            module_name.unwrap_or("?"),
            f.module_offset.as_deref().unwrap_or(&f.address)
        ),
    };
    SiteIdentity {
        id,
        kind: attr.kind,
        lock_impl: attr.lock_impl,
        function: f.function.clone().or_else(|| {
            Some(format!(
                "{}+{}",
                module_name.unwrap_or("?"),
                f.module_offset.as_deref().unwrap_or(&f.address)
            ))
        }),
        file: f.file.clone(),
        line: f.line,
        module: f.module.clone(),
    }
}

impl WaitSummary {
    pub(crate) fn add(&mut self, waits: u64, total_ns: u64, max_ns: u64) {
        self.waits += waits;
        self.total_wait_ns += total_ns;
        self.max_wait_ns = self.max_wait_ns.max(max_ns);
    }
}

pub(crate) struct SiteAcc {
    pub(crate) site: SiteIdentity,
    /// The rows' counts summed; `rewaits` holds only the wasted ones.
    pub(crate) counts: WaitCounts,
    /// waker site id → what it ended and what it did meanwhile
    pub(crate) woken_by: BTreeMap<String, EdgeAcc>,
    /// holder (waker site id) → the part of this site's wait its releases ended
    pub(crate) blocked_by: BTreeMap<String, BlameAcc>,
    /// Wait whose holders the kernel's wake ring no longer held.
    pub(crate) blocked_by_unknown_ns: u64,
    pub(crate) wake_to_run: WakeToRun,
    pub(crate) threads: BTreeMap<(u32, u32), (String, WaitSummary)>,
    pub(crate) addresses: BTreeMap<(u32, u64), WaitSummary>,
    pub(crate) stacks: BTreeMap<StackKey, WaitSummary>,
    /// Wait time (or count, for waits of no measurable time) per address behaviour.
    pub(crate) behaviors: BTreeMap<Behavior, u64>,
}

impl SiteAcc {
    pub(crate) fn new(site: SiteIdentity) -> Self {
        Self {
            site,
            counts: WaitCounts::default(),
            woken_by: BTreeMap::new(),
            blocked_by: BTreeMap::new(),
            blocked_by_unknown_ns: 0,
            wake_to_run: WakeToRun::default(),
            threads: BTreeMap::new(),
            addresses: BTreeMap::new(),
            stacks: BTreeMap::new(),
            behaviors: BTreeMap::new(),
        }
    }

    /// Add one wait row; `behavior` is its address's, `wasted` the part of its
    /// re-waits that count as wasted wakeups (see `behavior::rewait_is_wasted`).
    pub(crate) fn add(&mut self, row: &WaitRow, behavior: Behavior, wasted: u64) {
        let c = &row.counts;
        *self.behaviors.entry(behavior).or_default() += c.total_ns.max(c.blocked);
        // Only the wasted part of the row's re-waits counts at a site.
        let rewaits = self.counts.rewaits + wasted;
        self.counts.merge(c);
        self.counts.rewaits = rewaits;
        let t = self
            .threads
            .entry((listed_id(row.tgid), listed_id(row.tid)))
            .or_insert_with(|| (row.comm.clone(), WaitSummary::default()));
        t.1.add(c.blocked, c.total_ns, c.max_ns);
        self.addresses
            .entry((listed_id(row.tgid), row.uaddr))
            .or_default()
            .add(c.blocked, c.total_ns, c.max_ns);
        self.stacks
            .entry((row.tgid, row.stack_id, row.leaf_ret))
            .or_default()
            .add(c.blocked, c.total_ns, c.max_ns);
    }

    pub(crate) fn finish(
        self,
        stacks: &SymbolizedStacks,
        unwind: &HashMap<StackKey, crate::resolve::unwind::UnwindMethod>,
        waker_locations: &WakerLocations,
        lock_fns: &LockFns,
    ) -> Site {
        let c = &self.counts;
        let min = if c.blocked > 0 { c.min_ns } else { 0 };
        let mut threads: Vec<ThreadShare> = self
            .threads
            .into_iter()
            .map(|((pid, tid), (name, wait))| ThreadShare {
                pid,
                tid,
                name,
                wait,
            })
            .collect();
        threads.sort_by(|a, b| by_wait(&a.wait, &b.wait).then((a.pid, a.tid).cmp(&(b.pid, b.tid))));

        let mut addresses: Vec<AddressShare> = self
            .addresses
            .into_iter()
            .map(|((pid, addr), wait)| AddressShare {
                pid,
                address: format!("{addr:#x}"),
                wait,
            })
            .collect();
        addresses.sort_by(|a, b| {
            by_wait(&a.wait, &b.wait).then_with(|| (a.pid, &a.address).cmp(&(b.pid, &b.address)))
        });
        addresses.truncate(MAX_ADDRESSES_PER_SITE);

        let merged = stacks::merge(stacks, self.stacks);
        let keep = stacks::keep_count(&merged);
        let more_stacks = (merged.len() - keep) as u64;
        let stacks_out = merged
            .into_iter()
            .take(keep)
            .map(|m| StackShare {
                wait: m.wait,
                frames: mark_lock_impl(frames_of(stacks, m.representative), lock_fns),
                unwind: unwind
                    .get(&stack_slot(m.representative))
                    .map(|how| how.as_str().to_owned()),
            })
            .collect();

        let fairness = fairness(&threads);
        let mut woken_by: Vec<WokenBy> = self
            .woken_by
            .into_iter()
            .map(|(waker, edge)| {
                let (function, file, line) =
                    waker_locations.get(&waker).cloned().unwrap_or_default();
                WokenBy {
                    waker,
                    function,
                    file,
                    line,
                    waits: edge.waits,
                    wait_ns: edge.wait_ns,
                    from_other_processes: edge.from_other_processes,
                    held: held_across(&edge.holder),
                    wake_to_run: wake_latency(&edge.wake_to_run),
                }
            })
            .collect();
        woken_by.sort_by(|a, b| {
            b.wait_ns
                .cmp(&a.wait_ns)
                .then_with(|| a.waker.cmp(&b.waker))
        });
        woken_by.truncate(MAX_WOKEN_BY);

        let behavior = site_behavior(&self.behaviors);
        Site {
            id: self.site.id,
            kind: self.site.kind,
            contention: is_contention(self.site.kind, behavior),
            behavior,
            lock_impl: self.site.lock_impl.to_owned(),
            function: self.site.function,
            file: self.site.file,
            line: self.site.line,
            module: self.site.module,
            waits: c.blocked,
            total_wait_ns: c.total_ns,
            avg_wait_ns: c.total_ns.checked_div(c.blocked).unwrap_or(0),
            min_wait_ns: min,
            max_wait_ns: c.max_ns,
            p50_wait_ns: c.hist.quantile(0.50, min, c.max_ns),
            p99_wait_ns: c.hist.quantile(0.99, min, c.max_ns),
            eagain: c.eagain,
            timeouts: c.timedout,
            timeout_wait_ns: c.timedout_ns,
            interrupted: c.interrupted,
            other_errors: c.other_err,
            wasted_wakeups: c.rewaits,
            unpaired_waits: c.unpaired,
            woken_by,
            blocked_by: blame::blocked_by(self.blocked_by, waker_locations),
            blocked_by_unknown_ns: self.blocked_by_unknown_ns,
            wake_to_run: wake_latency(&self.wake_to_run),
            fairness,
            histogram: self.counts.hist,
            threads,
            addresses,
            stacks: stacks_out,
            more_stacks,
            series: Vec::new(),
            from_saved_stacks: false,
        }
    }
}

/// Waker sites listed per site in `woken_by`.
const MAX_WOKEN_BY: usize = 5;

/// Spread of the per-thread total wait over the threads that blocked.
pub(crate) fn fairness(threads: &[ThreadShare]) -> Fairness {
    let waits: Vec<f64> = threads
        .iter()
        .filter(|t| t.wait.waits > 0)
        .map(|t| t.wait.total_wait_ns as f64)
        .collect();
    let n = waits.len();
    if n < 2 {
        return Fairness {
            threads: n as u64,
            wait_cv: 0.0,
            max_min_ratio: if n == 1 { 1.0 } else { 0.0 },
        };
    }
    let mean = waits.iter().sum::<f64>() / n as f64;
    let var = waits.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / n as f64;
    let max = waits.iter().copied().fold(0.0, f64::max);
    let min = waits.iter().copied().fold(f64::INFINITY, f64::min);
    Fairness {
        threads: n as u64,
        wait_cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
        max_min_ratio: if min > 0.0 { max / min } else { 0.0 },
    }
}

/// Total wait descending, then waits descending.
pub(crate) fn by_wait(a: &WaitSummary, b: &WaitSummary) -> std::cmp::Ordering {
    b.total_wait_ns
        .cmp(&a.total_wait_ns)
        .then(b.waits.cmp(&a.waits))
}

//! Folding the kernel's rows into lock sites, locks and wakers: the pure middle of
//! the pipeline.
//!
//! Owns: grouping wait rows by site (via `attribute`), per-site statistics (counts,
//! times, merged histograms, percentiles), per-thread / per-address / per-stack
//! breakdowns, the address → sites index, the wake side, totals, and every sort
//! order of the report. Must not: read the clock, the kernel or files — the same
//! inputs always give the same `Report`, which is what the tests rely on.

use std::collections::{BTreeMap, HashMap};

use crate::analyze::attribute::{Attribution, attribute, kind_from_op};
use crate::analyze::histogram::Log2Histogram;
use crate::analyze::syscalls;
use crate::collect::snapshot::{EdgeRow, HolderActivity, Snapshot, WaitRow, WakeRow, WakeToRun};
use crate::report::{
    AddressShare, Fairness, Frame, HeldAcross, LockAddress, Losses, OffCpuIn, Report,
    SCHEMA_VERSION, Site, SiteShare, StackShare, SyscallFailure, Target, ThreadShare, Totals,
    WaitKind, WaitSummary, WakeLatency, WakerShare, WakerSite, WakerThread, WokenBy,
};

/// Distinct stacks listed per site; the rest are counted in `more_stacks`.
pub const MAX_STACKS_PER_SITE: usize = 5;
/// Addresses listed per site and sites listed per lock address.
const MAX_ADDRESSES_PER_SITE: usize = 16;
/// Lock addresses listed in the report.
const MAX_LOCKS: usize = 64;

/// Identifies one distinct stack: `(tgid, kernel stack id, leaf return address)`.
/// The leaf return address is part of it because the frame it restores is not in
/// the kernel's stack (see `stack_repair`).
pub type StackKey = (u32, i32, u64);

/// Symbolized stacks by [`StackKey`], innermost first.
pub type SymbolizedStacks = HashMap<StackKey, Vec<Frame>>;

/// Everything besides the snapshot that the report carries.
#[derive(Clone, Debug, Default)]
pub struct ReportContext {
    pub targets: Vec<Target>,
    pub started_unix_ms: u64,
    pub duration_ns: u64,
    /// Frames the symbolizer could not name.
    pub unsymbolized_frames: u64,
    pub probe_cost: crate::report::ProbeCost,
    /// How each stack was unwound (absent: the kernel's frame-pointer walk).
    pub unwind: HashMap<StackKey, crate::resolve::unwind::UnwindMethod>,
}

/// Build the report. Sites are ranked by total blocked wait (descending), ties broken
/// by their id so the order never depends on hash-map iteration.
pub fn build_report(snapshot: &Snapshot, stacks: &SymbolizedStacks, ctx: ReportContext) -> Report {
    let mut sites: BTreeMap<String, SiteAcc> = BTreeMap::new();
    // Which site each waiter stack was attributed to, for the wake → wait edges.
    let mut site_of_stack: HashMap<StackKey, String> = HashMap::new();
    let mut locks: BTreeMap<(u32, u64), LockAcc> = BTreeMap::new();
    let mut totals = Totals {
        unfinished_waits: snapshot.unfinished_waits,
        ..Totals::default()
    };

    for row in &snapshot.waits {
        let frames = frames_of(stacks, (row.tgid, row.stack_id, row.leaf_ret));
        let attr = attribute(frames, kind_from_op(row.op));
        let site = site_identity(frames, &attr);
        let acc = sites
            .entry(site.id.clone())
            .or_insert_with(|| SiteAcc::new(site));
        acc.add(row);
        site_of_stack.insert((row.tgid, row.stack_id, row.leaf_ret), acc.site.id.clone());

        totals.waits += row.blocked;
        totals.wait_ns += row.total_ns;
        if attr.kind.is_contention() {
            totals.contention_waits += row.blocked;
            totals.contention_wait_ns += row.total_ns;
        }
        totals.eagain += row.eagain;
        totals.timeouts += row.timedout;
        totals.timeout_wait_ns += row.timedout_ns;
        totals.interrupted += row.interrupted;
        totals.other_errors += row.other_err;

        if row.blocked > 0 || row.eagain > 0 {
            let lock = locks.entry((row.tgid, row.uaddr)).or_default();
            lock.wait.add(row.blocked, row.total_ns, row.max_ns);
            lock.eagain += row.eagain;
            lock.wasted_wakeups += row.rewaits;
            lock.sites.entry(acc.site.id.clone()).or_default().add(
                row.blocked,
                row.total_ns,
                row.max_ns,
            );
        }
    }

    let mut wakers: BTreeMap<String, WakerAcc> = BTreeMap::new();
    let mut waker_of_stack: HashMap<StackKey, String> = HashMap::new();
    for row in &snapshot.wakes {
        let frames = frames_of(stacks, (row.tgid, row.stack_id, row.leaf_ret));
        let attr = attribute(frames, kind_from_op(row.op));
        let site = site_identity(frames, &attr);
        let acc = wakers
            .entry(site.id.clone())
            .or_insert_with(|| WakerAcc::new(site));
        acc.add(row, frames);
        waker_of_stack.insert((row.tgid, row.stack_id, row.leaf_ret), acc.site.id.clone());
        totals.wake_calls += row.calls;
        totals.threads_woken += row.woken;
        if let Some(lock) = locks.get_mut(&(row.tgid, row.uaddr)) {
            let w = lock
                .wakers
                .entry(acc.site.id.clone())
                .or_insert_with(|| WakerShare {
                    waker: acc.site.id.clone(),
                    ..WakerShare::default()
                });
            w.calls += row.calls;
            w.woken += row.woken;
            w.woke_none += row.woke_none;
            w.woke_many += row.woke_many;
        }
    }

    // Wake → wait edges: credit each waiter site with its wakers, and each waker site
    // with the wait it ended.
    for edge in &snapshot.edges {
        let Some(site_id) =
            site_of_stack.get(&(edge.tgid, edge.waiter_stack_id, edge.waiter_leaf_ret))
        else {
            continue;
        };
        let waker_key = (edge.tgid, edge.waker_stack_id, edge.waker_leaf_ret);
        let waker_id = waker_of_stack.get(&waker_key).cloned().unwrap_or_else(|| {
            let frames = frames_of(stacks, waker_key);
            site_identity(frames, &attribute(frames, WaitKind::Other)).id
        });
        if let Some(site) = sites.get_mut(site_id) {
            site.woken_by.entry(waker_id.clone()).or_default().add(edge);
            site.wake_to_run.merge(&edge.wake_to_run);
        }
        if let Some(waker) = wakers.get_mut(&waker_id) {
            waker.caused_waits += edge.waits;
            waker.caused_wait_ns += edge.wait_ns;
            waker.held.merge(&edge.holder);
        }
    }
    // Where each waker site is, to name it in the waiters' "woken by" lists.
    let waker_locations: WakerLocations = wakers
        .values()
        .map(|w| {
            (
                w.site.id.clone(),
                (w.site.function.clone(), w.site.file.clone(), w.site.line),
            )
        })
        .collect();

    let mut sites: Vec<Site> = sites
        .into_values()
        .map(|a| a.finish(stacks, &ctx.unwind, &waker_locations))
        .collect();
    sites.sort_by(|a, b| {
        b.total_wait_ns
            .cmp(&a.total_wait_ns)
            .then_with(|| a.id.cmp(&b.id))
    });

    let mut wakers: Vec<WakerSite> = wakers.into_values().map(WakerAcc::finish).collect();
    wakers.sort_by(|a, b| {
        b.woken
            .cmp(&a.woken)
            .then(b.calls.cmp(&a.calls))
            .then_with(|| a.id.cmp(&b.id))
    });

    let mut locks: Vec<LockAddress> = locks
        .into_iter()
        .map(|((pid, addr), l)| l.finish(pid, addr))
        .collect();
    locks.sort_by(|a, b| {
        b.wait
            .total_wait_ns
            .cmp(&a.wait.total_wait_ns)
            .then_with(|| (a.pid, &a.address).cmp(&(b.pid, &b.address)))
    });
    locks.truncate(MAX_LOCKS);

    let k = &snapshot.losses;
    let losses = Losses {
        stack_collisions: k.get(profiler_common::Loss::StackCollision),
        stack_errors: k.get(profiler_common::Loss::StackError),
        wait_map_full: k.get(profiler_common::Loss::WaitMapFull),
        wake_map_full: k.get(profiler_common::Loss::WakeMapFull),
        inflight_map_full: k.get(profiler_common::Loss::InFlightMapFull),
        target_map_full: k.get(profiler_common::Loss::TargetMapFull),
        user_read_errors: k.get(profiler_common::Loss::UserReadError),
        edge_map_full: k.get(profiler_common::Loss::EdgeMapFull),
        unsymbolized_frames: ctx.unsymbolized_frames,
        user_stack_copy_errors: k.get(profiler_common::Loss::UserStackCopy),
        last_wake_lost: k.get(profiler_common::Loss::LastWakeLost),
        holder_windows_lost: k.get(profiler_common::Loss::HolderWindowLost),
        truncated_stacks: ctx
            .unwind
            .values()
            .filter(|&&m| m == crate::resolve::unwind::UnwindMethod::DwarfTruncated)
            .count() as u64,
    };

    Report {
        schema_version: SCHEMA_VERSION,
        lockprof_version: env!("CARGO_PKG_VERSION").to_owned(),
        targets: ctx.targets,
        started_unix_ms: ctx.started_unix_ms,
        duration_ns: ctx.duration_ns,
        totals,
        losses,
        sites,
        locks,
        wakers,
        probe_cost: ctx.probe_cost,
        timeline: None,
    }
}

/// The frames with `lock_impl` set on those between the syscall and the site frame:
/// the lock implementation the text report folds.
fn mark_lock_impl(frames: &[Frame]) -> Vec<Frame> {
    let site = attribute(frames, WaitKind::Other).site;
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| Frame {
            lock_impl: i < site,
            ..f.clone()
        })
        .collect()
}

fn frames_of(stacks: &SymbolizedStacks, key: StackKey) -> &[Frame] {
    if key.1 < 0 {
        return &[];
    }
    stacks.get(&key).map_or(&[], Vec::as_slice)
}

/// The identity and location of a site, derived from its site frame.
#[derive(Clone, Debug)]
struct SiteIdentity {
    id: String,
    kind: WaitKind,
    lock_impl: &'static str,
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    module: Option<String>,
}

fn site_identity(frames: &[Frame], attr: &Attribution) -> SiteIdentity {
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
    fn add(&mut self, waits: u64, total_ns: u64, max_ns: u64) {
        self.waits += waits;
        self.total_wait_ns += total_ns;
        self.max_wait_ns = self.max_wait_ns.max(max_ns);
    }
}

struct SiteAcc {
    site: SiteIdentity,
    waits: u64,
    total_ns: u64,
    min_ns: u64,
    max_ns: u64,
    hist: Log2Histogram,
    eagain: u64,
    timeouts: u64,
    timeout_ns: u64,
    interrupted: u64,
    other_errors: u64,
    rewaits: u64,
    unpaired: u64,
    /// waker site id → what it ended and what it did meanwhile
    woken_by: BTreeMap<String, EdgeAcc>,
    wake_to_run: WakeToRun,
    threads: BTreeMap<(u32, u32), (String, WaitSummary)>,
    addresses: BTreeMap<(u32, u64), WaitSummary>,
    stacks: BTreeMap<StackKey, WaitSummary>,
}

impl SiteAcc {
    fn new(site: SiteIdentity) -> Self {
        Self {
            site,
            waits: 0,
            total_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            hist: Log2Histogram::default(),
            eagain: 0,
            timeouts: 0,
            timeout_ns: 0,
            interrupted: 0,
            other_errors: 0,
            rewaits: 0,
            unpaired: 0,
            woken_by: BTreeMap::new(),
            wake_to_run: WakeToRun::default(),
            threads: BTreeMap::new(),
            addresses: BTreeMap::new(),
            stacks: BTreeMap::new(),
        }
    }

    fn add(&mut self, row: &WaitRow) {
        self.waits += row.blocked;
        self.total_ns += row.total_ns;
        if row.blocked > 0 {
            self.min_ns = self.min_ns.min(row.min_ns);
        }
        self.max_ns = self.max_ns.max(row.max_ns);
        self.hist.merge(&row.hist);
        self.eagain += row.eagain;
        self.timeouts += row.timedout;
        self.timeout_ns += row.timedout_ns;
        self.interrupted += row.interrupted;
        self.other_errors += row.other_err;
        self.rewaits += row.rewaits;
        self.unpaired += row.unpaired;
        let t = self
            .threads
            .entry((row.tgid, row.tid))
            .or_insert_with(|| (row.comm.clone(), WaitSummary::default()));
        t.1.add(row.blocked, row.total_ns, row.max_ns);
        self.addresses
            .entry((row.tgid, row.uaddr))
            .or_default()
            .add(row.blocked, row.total_ns, row.max_ns);
        self.stacks
            .entry((row.tgid, row.stack_id, row.leaf_ret))
            .or_default()
            .add(row.blocked, row.total_ns, row.max_ns);
    }

    fn finish(
        self,
        stacks: &SymbolizedStacks,
        unwind: &HashMap<StackKey, crate::resolve::unwind::UnwindMethod>,
        waker_locations: &WakerLocations,
    ) -> Site {
        let min = if self.waits > 0 { self.min_ns } else { 0 };
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

        let mut site_stacks: Vec<(StackKey, WaitSummary)> = self.stacks.into_iter().collect();
        site_stacks.sort_by(|a, b| by_wait(&a.1, &b.1).then(a.0.cmp(&b.0)));
        let more_stacks = site_stacks.len().saturating_sub(MAX_STACKS_PER_SITE) as u64;
        let stacks_out = site_stacks
            .into_iter()
            .take(MAX_STACKS_PER_SITE)
            .map(|(key, wait)| StackShare {
                wait,
                frames: mark_lock_impl(frames_of(stacks, key)),
                unwind: unwind.get(&key).map(|m| m.as_str().to_owned()),
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

        Site {
            id: self.site.id,
            kind: self.site.kind,
            contention: self.site.kind.is_contention(),
            lock_impl: self.site.lock_impl.to_owned(),
            function: self.site.function,
            file: self.site.file,
            line: self.site.line,
            module: self.site.module,
            waits: self.waits,
            total_wait_ns: self.total_ns,
            avg_wait_ns: self.total_ns.checked_div(self.waits).unwrap_or(0),
            min_wait_ns: min,
            max_wait_ns: self.max_ns,
            p50_wait_ns: self.hist.quantile(0.50, min, self.max_ns),
            p99_wait_ns: self.hist.quantile(0.99, min, self.max_ns),
            eagain: self.eagain,
            timeouts: self.timeouts,
            timeout_wait_ns: self.timeout_ns,
            interrupted: self.interrupted,
            other_errors: self.other_errors,
            wasted_wakeups: self.rewaits,
            unpaired_waits: self.unpaired,
            woken_by,
            wake_to_run: wake_latency(&self.wake_to_run),
            fairness,
            histogram: self.hist,
            threads,
            addresses,
            stacks: stacks_out,
            more_stacks,
            series: Vec::new(),
        }
    }
}

/// One waker of a site: the waits it ended and what it did during them.
#[derive(Default)]
struct EdgeAcc {
    waits: u64,
    wait_ns: u64,
    holder: HolderActivity,
    wake_to_run: WakeToRun,
}

impl EdgeAcc {
    fn add(&mut self, edge: &EdgeRow) {
        self.waits += edge.waits;
        self.wait_ns += edge.wait_ns;
        self.holder.merge(&edge.holder);
        self.wake_to_run.merge(&edge.wake_to_run);
    }
}

/// The report's view of a holder's activity: off-CPU time by syscall name, largest
/// first, and the last failed syscall named.
fn held_across(h: &HolderActivity) -> HeldAcross {
    let mut off_cpu_in: Vec<OffCpuIn> = h
        .off_ns
        .iter()
        .map(|(&nr, &ns)| OffCpuIn {
            syscall: syscalls::off_cpu_reason(nr),
            ns,
        })
        .collect();
    off_cpu_in.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.syscall.cmp(&b.syscall)));
    HeldAcross {
        window_ns: h.window_ns,
        // Off-CPU periods never exceed the windows they were clipped to.
        off_cpu_ns: h.off_cpu_ns().min(h.window_ns),
        off_cpu_in,
        truncated_windows: h.truncated_windows,
        failed_syscalls: h.failed_syscalls,
        last_failure: h.last_failure.map(|(nr, errno)| SyscallFailure {
            syscall: syscalls::syscall_name(nr),
            errno: syscalls::errno_name(errno),
        }),
    }
}

fn wake_latency(w: &WakeToRun) -> WakeLatency {
    WakeLatency {
        count: w.count,
        avg_ns: w.total_ns.checked_div(w.count).unwrap_or(0),
        max_ns: w.max_ns,
    }
}

/// Where a waker site is: function, file, line.
type WakerLocations = HashMap<String, (Option<String>, Option<String>, Option<u32>)>;

/// Waker sites listed per site in `woken_by`.
const MAX_WOKEN_BY: usize = 5;

/// Spread of the per-thread total wait over the threads that blocked.
fn fairness(threads: &[ThreadShare]) -> Fairness {
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
fn by_wait(a: &WaitSummary, b: &WaitSummary) -> std::cmp::Ordering {
    b.total_wait_ns
        .cmp(&a.total_wait_ns)
        .then(b.waits.cmp(&a.waits))
}

#[derive(Default)]
struct LockAcc {
    wait: WaitSummary,
    eagain: u64,
    wasted_wakeups: u64,
    sites: BTreeMap<String, WaitSummary>,
    wakers: BTreeMap<String, WakerShare>,
}

impl LockAcc {
    fn finish(self, pid: u32, addr: u64) -> LockAddress {
        let mut sites: Vec<SiteShare> = self
            .sites
            .into_iter()
            .map(|(site, wait)| SiteShare { site, wait })
            .collect();
        sites.sort_by(|a, b| by_wait(&a.wait, &b.wait).then_with(|| a.site.cmp(&b.site)));
        sites.truncate(MAX_ADDRESSES_PER_SITE);
        let mut wakers: Vec<WakerShare> = self.wakers.into_values().collect();
        wakers.sort_by(|a, b| b.woken.cmp(&a.woken).then_with(|| a.waker.cmp(&b.waker)));
        wakers.truncate(MAX_ADDRESSES_PER_SITE);
        LockAddress {
            pid,
            address: format!("{addr:#x}"),
            wait: self.wait,
            eagain: self.eagain,
            wasted_wakeups: self.wasted_wakeups,
            sites,
            wakers,
        }
    }
}

struct WakerAcc {
    site: SiteIdentity,
    calls: u64,
    woken: u64,
    woke_none: u64,
    woke_many: u64,
    threads: BTreeMap<(u32, u32), WakerThread>,
    /// Hottest stack so far: (woken, calls, frames).
    stack: (u64, u64, Vec<Frame>),
    caused_waits: u64,
    caused_wait_ns: u64,
    held: HolderActivity,
}

impl WakerAcc {
    fn new(site: SiteIdentity) -> Self {
        Self {
            site,
            calls: 0,
            woken: 0,
            woke_none: 0,
            woke_many: 0,
            threads: BTreeMap::new(),
            stack: (0, 0, Vec::new()),
            caused_waits: 0,
            caused_wait_ns: 0,
            held: HolderActivity::default(),
        }
    }

    fn add(&mut self, row: &WakeRow, frames: &[Frame]) {
        self.calls += row.calls;
        self.woken += row.woken;
        self.woke_none += row.woke_none;
        self.woke_many += row.woke_many;
        let t = self
            .threads
            .entry((row.tgid, row.tid))
            .or_insert_with(|| WakerThread {
                pid: row.tgid,
                tid: row.tid,
                name: row.comm.clone(),
                ..WakerThread::default()
            });
        t.calls += row.calls;
        t.woken += row.woken;
        if (row.woken, row.calls) > (self.stack.0, self.stack.1) || self.stack.2.is_empty() {
            self.stack = (row.woken, row.calls, frames.to_vec());
        }
    }

    fn finish(self) -> WakerSite {
        let mut threads: Vec<WakerThread> = self.threads.into_values().collect();
        threads.sort_by(|a, b| {
            b.calls
                .cmp(&a.calls)
                .then((a.pid, a.tid).cmp(&(b.pid, b.tid)))
        });
        WakerSite {
            id: self.site.id,
            kind: self.site.kind,
            lock_impl: self.site.lock_impl.to_owned(),
            function: self.site.function,
            file: self.site.file,
            line: self.site.line,
            module: self.site.module,
            calls: self.calls,
            woken: self.woken,
            woke_none: self.woke_none,
            woke_many: self.woke_many,
            threads,
            caused_waits: self.caused_waits,
            caused_wait_ns: self.caused_wait_ns,
            held: held_across(&self.held),
            stack: self.stack.2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiler_common::{Loss, hist_bucket, op};

    fn frame(function: &str, module: &str, line: u32) -> Frame {
        Frame {
            address: "0x10".into(),
            function: Some(function.into()),
            file: Some("src/demo.rs".into()),
            line: Some(line),
            module: Some(module.into()),
            module_offset: Some("0x10".into()),
            inlined: false,
            lock_impl: false,
        }
    }

    const LIBC: &str = "/lib/libc.so.6";
    const APP: &str = "/bin/demo";

    fn stacks() -> SymbolizedStacks {
        let mut s = SymbolizedStacks::new();
        // 1: mutex wait in `writer` line 40
        s.insert(
            (1, 1, 0),
            vec![
                frame("syscall", LIBC, 0),
                frame(
                    "std::sys::sync::mutex::futex::Mutex::lock_contended",
                    APP,
                    0,
                ),
                frame("demo::Store::writer", APP, 40),
                frame("demo::pull", APP, 90),
            ],
        );
        // 2: same site reached from another caller
        s.insert(
            (1, 2, 0),
            vec![
                frame("syscall", LIBC, 0),
                frame(
                    "std::sys::sync::mutex::futex::Mutex::lock_contended",
                    APP,
                    0,
                ),
                frame("demo::Store::writer", APP, 40),
                frame("demo::other", APP, 120),
            ],
        );
        // 3: condvar wait in `lookup` line 70
        s.insert(
            (1, 3, 0),
            vec![
                frame("syscall", LIBC, 0),
                frame(
                    "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
                    APP,
                    0,
                ),
                frame("demo::lookup", APP, 70),
            ],
        );
        // 4: wake in `unlock` path of writer
        s.insert(
            (1, 4, 0),
            vec![
                frame("syscall", LIBC, 0),
                frame("std::sys::sync::mutex::futex::Mutex::wake", APP, 0),
                frame("demo::Store::writer", APP, 44),
            ],
        );
        s
    }

    fn row(tid: u32, uaddr: u64, stack_id: i32, waits: &[u64]) -> WaitRow {
        let mut r = WaitRow {
            tgid: 1,
            tid,
            comm: format!("w{tid}"),
            uaddr,
            stack_id,
            op: op::WAIT_BITSET,
            min_ns: waits.iter().copied().min().unwrap_or(0),
            max_ns: waits.iter().copied().max().unwrap_or(0),
            ..WaitRow::default()
        };
        for &w in waits {
            r.blocked += 1;
            r.total_ns += w;
            r.hist.counts[hist_bucket(w)] += 1;
        }
        r
    }

    fn snapshot() -> Snapshot {
        let mut s = Snapshot {
            waits: vec![
                row(11, 0xa0, 1, &[1_000_000, 3_000_000]),
                row(12, 0xa0, 2, &[5_000_000]),
                row(12, 0xb0, 3, &[50_000_000]),
                row(13, 0xa0, -17, &[10]),
            ],
            wakes: vec![WakeRow {
                tgid: 1,
                tid: 11,
                comm: "w11".into(),
                uaddr: 0xa0,
                stack_id: 4,
                op: op::WAKE_BITSET,
                leaf_ret: 0,
                calls: 3,
                woken: 3,
                woke_none: 0,
                woke_many: 0,
                errors: 0,
            }],
            ..Snapshot::default()
        };
        s.losses.set(Loss::StackCollision, 1);
        s
    }

    #[test]
    fn merges_stacks_into_sites_and_ranks_by_total_wait() {
        let r = build_report(&snapshot(), &stacks(), ReportContext::default());
        let ids: Vec<_> = r.sites.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "condvar|demo|demo::lookup|src/demo.rs:70",
                "mutex|demo|demo::Store::writer|src/demo.rs:40",
                "other|?|[unknown stack]|?",
            ]
        );
        let writer = &r.sites[1];
        assert_eq!((writer.waits, writer.total_wait_ns), (3, 9_000_000));
        assert_eq!(
            (writer.min_wait_ns, writer.max_wait_ns),
            (1_000_000, 5_000_000)
        );
        assert_eq!(writer.avg_wait_ns, 3_000_000);
        assert!(writer.contention && !r.sites[0].contention);
        assert_eq!(writer.stacks.len(), 2, "two callers, two stacks");
        assert_eq!(
            writer.stacks[0].wait.total_wait_ns, 5_000_000,
            "hottest first"
        );
        assert_eq!(
            writer.threads.iter().map(|t| t.tid).collect::<Vec<_>>(),
            [12, 11]
        );
        assert_eq!(writer.addresses[0].address, "0xa0");
        assert!(writer.p50_wait_ns >= 1_000_000 && writer.p99_wait_ns <= 5_000_000);
    }

    #[test]
    fn totals_separate_contention_from_event_waits_and_keep_losses() {
        let r = build_report(&snapshot(), &stacks(), ReportContext::default());
        assert_eq!(r.totals.waits, 5);
        assert_eq!(r.totals.wait_ns, 59_000_010);
        assert_eq!(
            r.totals.contention_wait_ns, 9_000_000,
            "condvar and unknown excluded"
        );
        assert_eq!(r.losses.stack_collisions, 1);
        assert_eq!(r.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn lock_addresses_list_their_sites_and_wakers() {
        let r = build_report(&snapshot(), &stacks(), ReportContext::default());
        let a0 = r.locks.iter().find(|l| l.address == "0xa0").unwrap();
        assert_eq!(a0.wait.waits, 4);
        assert_eq!(
            a0.sites[0].site,
            "mutex|demo|demo::Store::writer|src/demo.rs:40"
        );
        assert_eq!(
            a0.wakers[0].waker,
            "mutex|demo|demo::Store::writer|src/demo.rs:44"
        );
        assert_eq!(r.wakers[0].woken, 3);
        assert_eq!(r.wakers[0].kind, WaitKind::Mutex);
    }

    #[test]
    fn edges_name_the_waker_of_each_site_and_its_cost() {
        let mut s = snapshot();
        s.waits[0].rewaits = 1;
        s.waits[2].unpaired = 1;
        s.edges.push(crate::collect::snapshot::EdgeRow {
            tgid: 1,
            waiter_stack_id: 1,
            waiter_leaf_ret: 0,
            waker_stack_id: 4,
            waker_leaf_ret: 0,
            waker_tid: 11,
            waits: 2,
            wait_ns: 4_000_000,
            holder: crate::collect::snapshot::HolderActivity {
                window_ns: 3_000_000,
                off_ns: BTreeMap::from([
                    (Some(230), 2_000_000),
                    (Some(profiler_common::OFF_RUNNABLE), 500_000),
                    (None, 100_000),
                ]),
                truncated_windows: 0,
                failed_syscalls: 3,
                last_failure: Some((46, 105)),
            },
            wake_to_run: crate::collect::snapshot::WakeToRun {
                count: 2,
                total_ns: 60_000,
                max_ns: 50_000,
            },
        });
        let r = build_report(&s, &stacks(), ReportContext::default());
        let writer = r.sites.iter().find(|x| x.line == Some(40)).unwrap();
        assert_eq!(writer.wasted_wakeups, 1);
        assert_eq!(writer.woken_by.len(), 1);
        let edge = &writer.woken_by[0];
        assert_eq!(edge.waker, "mutex|demo|demo::Store::writer|src/demo.rs:44");
        assert_eq!(
            (edge.line, edge.waits, edge.wait_ns),
            (Some(44), 2, 4_000_000)
        );
        // What the holder did: off-CPU time by name, largest first; failures named.
        let held = &edge.held;
        assert_eq!((held.window_ns, held.off_cpu_ns), (3_000_000, 2_600_000));
        let places: Vec<(&str, u64)> = held
            .off_cpu_in
            .iter()
            .map(|o| (o.syscall.as_str(), o.ns))
            .collect();
        assert_eq!(
            places,
            [
                ("clock_nanosleep", 2_000_000),
                ("runnable (waiting for a CPU)", 500_000),
                ("other", 100_000)
            ]
        );
        let failure = held.last_failure.as_ref().unwrap();
        assert_eq!(
            (
                held.failed_syscalls,
                failure.syscall.as_str(),
                failure.errno.as_str()
            ),
            (3, "sendmsg", "ENOBUFS")
        );
        assert_eq!(
            (
                edge.wake_to_run.count,
                edge.wake_to_run.avg_ns,
                edge.wake_to_run.max_ns
            ),
            (2, 30_000, 50_000)
        );
        assert_eq!(writer.wake_to_run, edge.wake_to_run);
        let waker = r.wakers.iter().find(|w| w.line == Some(44)).unwrap();
        assert_eq!(waker.held, edge.held);
        let lookup = r.sites.iter().find(|x| x.line == Some(70)).unwrap();
        assert_eq!(lookup.unpaired_waits, 1);
        assert!(lookup.woken_by.is_empty());
        assert_eq!(r.wakers[0].caused_waits, 2);
        assert_eq!(r.wakers[0].caused_wait_ns, 4_000_000);
    }

    #[test]
    fn fairness_measures_the_spread_over_threads() {
        let share = |tid, ns| ThreadShare {
            pid: 1,
            tid,
            name: String::new(),
            wait: WaitSummary {
                waits: 1,
                total_wait_ns: ns,
                max_wait_ns: ns,
            },
        };
        let even = fairness(&[share(1, 100), share(2, 100)]);
        assert_eq!(
            (even.threads, even.wait_cv, even.max_min_ratio),
            (2, 0.0, 1.0)
        );
        let skewed = fairness(&[share(1, 100), share(2, 100), share(3, 100), share(4, 570)]);
        assert!((skewed.max_min_ratio - 5.7).abs() < 1e-9);
        assert!(skewed.wait_cv > 0.5, "{}", skewed.wait_cv);
        assert!((fairness(&[share(1, 5)]).max_min_ratio - 1.0).abs() < f64::EPSILON);
        assert_eq!(fairness(&[]).threads, 0);
    }

    #[test]
    fn report_is_deterministic_regardless_of_row_order() {
        let mut s = snapshot();
        let a = build_report(&s, &stacks(), ReportContext::default());
        s.waits.reverse();
        let b = build_report(&s, &stacks(), ReportContext::default());
        assert_eq!(a, b);
    }

    #[test]
    fn empty_snapshot_gives_empty_report() {
        let r = build_report(
            &Snapshot::default(),
            &SymbolizedStacks::new(),
            ReportContext::default(),
        );
        assert!(r.sites.is_empty() && r.locks.is_empty() && r.wakers.is_empty());
        assert_eq!(r.totals, Totals::default());
    }

    #[test]
    fn stacks_mark_lock_frames_and_say_how_they_were_unwound() {
        use crate::resolve::unwind::UnwindMethod;
        let mut unwind = HashMap::new();
        unwind.insert((1, 1, 0), UnwindMethod::Dwarf);
        unwind.insert((1, 2, 0), UnwindMethod::DwarfTruncated);
        let r = build_report(
            &snapshot(),
            &stacks(),
            ReportContext {
                unwind,
                ..ReportContext::default()
            },
        );
        let writer = r
            .sites
            .iter()
            .find(|s| s.function.as_deref() == Some("demo::Store::writer"))
            .unwrap();
        let marks: Vec<bool> = writer.stacks[0]
            .frames
            .iter()
            .map(|f| f.lock_impl)
            .collect();
        assert_eq!(
            marks,
            [true, true, false, false],
            "syscall and lock_contended"
        );
        let mut how: Vec<Option<&str>> =
            writer.stacks.iter().map(|s| s.unwind.as_deref()).collect();
        how.sort_unstable();
        assert_eq!(how, [Some("dwarf"), Some("dwarf-truncated")]);
        assert_eq!(r.losses.truncated_stacks, 1);
        // Stacks without an unwind record came from the frame-pointer walk of an
        // older probe: no claim is made.
        let plain = build_report(&snapshot(), &stacks(), ReportContext::default());
        assert!(
            plain
                .sites
                .iter()
                .flat_map(|s| &s.stacks)
                .all(|s| s.unwind.is_none())
        );
    }
}

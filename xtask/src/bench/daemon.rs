//! Rows (c) and (d) of `bench overhead`: a real memcached under its contended load,
//! with lockprof (with and without holder tracking), the bpftrace peer and the futex
//! tracepoints' floor attached in turn between unattached windows; and the kernel memory and RSS lockprof takes there.
//!
//! Owns what a window measures on the daemon: its server-side throughput (`stats`),
//! its own CPU time per operation (`/proc/PID/stat`: the probes' BPF time runs in
//! memcached's threads and is charged to it, and CPU per operation moves far less
//! than throughput when other work on the machine takes CPUs away), the tracer's own
//! CPU per operation and its probes' BPF time per operation (the kernel's run-time
//! statistics are on during the windows), and lockprof's peak RSS and maps. Must not: render, or decide
//! the order of windows (`windows::schedule`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::attach::{Attached, Tracer, cpu_ms, voluntary_switches};
use super::bpf_fds::BpfRuns;
use super::kmem::MapInfo;
use super::memcached::{self, Memcached};
use super::overhead::{Plan, each_window};
use super::windows::{Rounds, schedule};
use crate::report::LockReport;
use crate::run::say;

/// What is attached in turn in (c).
pub const ATTACHED: [Tracer; 4] = [
    Tracer::Lockprof,
    Tracer::LockprofNoHolders,
    Tracer::Bpftrace,
    Tracer::Floor,
];

#[derive(Default, Debug)]
pub struct Daemon {
    pub ops_per_s: Rounds,
    /// memcached's own CPU time per operation, ns.
    pub server_cpu_ns_per_op: Rounds,
    /// memcached's plus the tracer's CPU time per operation, ns: all the machine
    /// spends per operation served.
    pub total_cpu_ns_per_op: Rounds,
    /// BPF time of the tracer's programs per operation, ns (0 when nothing is
    /// attached): the part of memcached's CPU per operation that each tracer's probes
    /// add, measured directly instead of as a difference of noisy totals.
    pub bpf_ns_per_op: Rounds,
    /// The machine's futex calls per operation served (the runs of the tracer's
    /// futex entry program over the same window; 0 when nothing is attached): how
    /// contended memcached was in that window — it moves the BPF time per operation,
    /// and the throughput, more than the choice of tracer does.
    pub futex_calls_per_op: Rounds,
    /// BPF time of the tracer's futex programs per futex call, ns (0 when nothing is
    /// attached): what each tracer's probes cost per call, whatever the contention.
    pub futex_bpf_ns_per_call: Rounds,
    /// The tracer process's own CPU time (user + system) per second of the window,
    /// ms (0 when nothing is attached): what it takes from the machine besides its
    /// probes.
    pub tracer_cpu_ms_per_s: Rounds,
    /// memcached's voluntary context switches per operation: how often its threads
    /// blocked, measured the same way with or without a tracer. Any syscall
    /// tracepoint slows every syscall a little, which changes how often the workers
    /// find a lock taken — this row shows it where throughput alone cannot.
    pub switches_per_op: Rounds,
    /// lockprof's peak RSS per lockprof window, KiB.
    pub rss_kib: Vec<u64>,
    /// lockprof's maps, read in its first window.
    pub maps: Vec<MapInfo>,
    /// `probe_cost.kernel_memory_bytes` of the reports, when the probe reports it.
    pub reported_kernel_bytes: Vec<u64>,
    pub losses: u64,
    /// bpftrace windows whose bpftrace had to be killed after SIGINT.
    pub peer_killed: u64,
}

/// How far apart (a fraction of their mean) the unattached windows on either side of
/// an attached one may be for it to count as steady (see `Rounds::steady_ratios`).
pub const STEADY: f64 = 0.05;

/// How long each attached window measures the tracer's BPF time per operation,
/// after its throughput window (statistics on); (b)'s run with the statistics on
/// lasts as long.
pub const COST_WINDOW: Duration = Duration::from_secs(1);

/// How long the load must last: every window plus attach/detach time, generously.
pub fn load_seconds(plan: Plan) -> u64 {
    let per_window =
        plan.window.as_secs_f64() + plan.settle.as_secs_f64() + COST_WINDOW.as_secs_f64() + 20.0;
    (schedule(plan.rounds, &ATTACHED).len() as f64 * per_window) as u64 + 30
}

/// One reading of the server (and the tracer) at a window's edge.
struct Mark {
    ops: u64,
    at: Instant,
    server_ms: f64,
    /// memcached's voluntary context switches so far.
    server_switches: u64,
    tracer_ms: f64,
}

fn mark(server: u32, tracer: Option<u32>) -> Result<Mark> {
    Ok(Mark {
        ops: memcached::stats_ops()?,
        at: Instant::now(),
        server_ms: cpu_ms(server).context("read memcached's CPU time")?,
        server_switches: voluntary_switches(server).context("read memcached's context switches")?,
        tracer_ms: tracer.and_then(cpu_ms).unwrap_or(0.0),
    })
}

pub fn measure(plan: Plan, dir: &Path) -> Result<Daemon> {
    say(&format!(
        "bench overhead (c): memcached -t 4 on 127.0.0.1:{} under memcached-load (8 connections, 16 hot keys, 90% sets)",
        memcached::PORT
    ));
    let mut server = Memcached::start()?;
    server.start_load(8, load_seconds(plan))?;
    let report = dir.join("overhead-memcached.json");
    let mut d = Daemon::default();
    each_window(plan, "(c) memcached", &ATTACHED, |t| {
        let a = Attached::start(t, server.pid(), &report)?;
        // The first moments after attaching are not what a long recording costs:
        // lockprof reads the target's maps and binaries, and unwinds and symbolizes
        // every call path it sees for the first time (a burst of its own CPU that
        // took up to half of memcached's throughput in a 0.5 s-settle run).
        std::thread::sleep(plan.settle);
        let m0 = mark(server.pid(), a.pid())?;
        std::thread::sleep(plan.window);
        let m1 = mark(server.pid(), a.pid())?;
        // The BPF time per operation, in a short window of its own: the kernel's
        // run-time statistics add two clock reads to every program run, so they stay
        // off while throughput is measured.
        if let Some(tracer) = a.pid() {
            let (ops, bpf) = BpfRuns::over(tracer, || {
                let ops0 = memcached::stats_ops()?;
                std::thread::sleep(COST_WINDOW);
                Ok(memcached::stats_ops()?.saturating_sub(ops0).max(1) as f64)
            })?;
            let calls = bpf.futex.calls;
            d.bpf_ns_per_op.push(t, bpf.run_ns as f64 / ops);
            d.futex_calls_per_op.push(t, calls as f64 / ops);
            d.futex_bpf_ns_per_call
                .push(t, bpf.futex.run_ns as f64 / calls.max(1) as f64);
        } else {
            d.bpf_ns_per_op.push(t, 0.0);
            d.futex_calls_per_op.push(t, 0.0);
            d.futex_bpf_ns_per_call.push(t, 0.0);
        }
        if t == Tracer::Lockprof && d.maps.is_empty() {
            d.maps = a.maps();
        }
        let detached = a.stop()?;
        d.peer_killed += u64::from(detached.killed);
        let ops = (m1.ops - m0.ops).max(1) as f64;
        d.ops_per_s.push(t, ops / (m1.at - m0.at).as_secs_f64());
        let server_ns = (m1.server_ms - m0.server_ms) * 1e6;
        d.server_cpu_ns_per_op.push(t, server_ns / ops);
        d.switches_per_op.push(
            t,
            m1.server_switches.saturating_sub(m0.server_switches) as f64 / ops,
        );
        d.total_cpu_ns_per_op
            .push(t, (server_ns + (m1.tracer_ms - m0.tracer_ms) * 1e6) / ops);
        d.tracer_cpu_ms_per_s.push(
            t,
            (m1.tracer_ms - m0.tracer_ms) / (m1.at - m0.at).as_secs_f64(),
        );
        if t.is_lockprof() {
            d.rss_kib.push(detached.vm_hwm_kib);
            let rep = LockReport::read(&report)?;
            d.losses += rep.lost_events();
            if let Some(b) = reported_kernel_memory(&report) {
                d.reported_kernel_bytes.push(b);
            }
        }
        Ok(())
    })?;
    Ok(d)
}

/// `probe_cost.kernel_memory_bytes` of a report, from probes that report it.
fn reported_kernel_memory(report: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(report).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.pointer("/probe_cost/kernel_memory_bytes")?.as_u64()
}

pub fn kernel_bytes(maps: &[MapInfo]) -> u64 {
    maps.iter().map(|m| m.memlock).sum()
}

pub fn worst_bytes(maps: &[MapInfo], cpus: u64) -> u64 {
    maps.iter().map(|m| m.worst_case_bytes(cpus)).sum()
}

/// The window length the table names.
pub fn window_label(window: Duration) -> String {
    format!("{} s windows", window.as_secs_f64())
}

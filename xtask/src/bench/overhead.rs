//! `cargo xtask bench overhead`: what attaching lockprof costs its users, each figure a
//! ratio measured in one run with alternating windows, next to the bpftrace peer.
//!
//! Owns the parts of the table, their order of measurement and the rendering:
//! - (a) machine-wide tax: an untraced `dd bs=1` syscall loop while lockprof (or the
//!   bpftrace script, or the floor) is attached to an idle `sleep`, against nothing
//!   attached;
//! - (b) `futex-pingpong` round trip with lockprof, the peer or the floor attached
//!   against nothing attached, and each tracer's BPF time per futex call over a second
//!   run with the kernel's run-time statistics on (they add two clock reads to every
//!   program run, so they are off in the timed runs; in (c) they are on only in a
//!   short window after each throughput window), measured by `pingpong`;
//! - (c) a real memcached under `memcached-load` and (d) the kernel memory of
//!   lockprof's maps and its peak RSS there (measured by `daemon`).
//!
//! (e) and (f), the Go runtime probes' cost on the Go demo and on containerd, are
//! measured and rendered by `go`, after these; (v), fentry against the tracepoints
//! where fentry loads (a VM booting Debian's kernel), by `fentry`. `--only` picks
//! parts (`--only c`).
//!
//! The floor (`attach::floor_script`: the peer's two futex tracepoints with programs
//! that only compare the pid) is measured in (a), (b) and (c) like a tracer and shown under
//! the peer's column: what any futex tracer costs on this kernel before its programs
//! do any work.
//!
//! Every attached window sits between two unattached ones (the tracers take turns
//! going first, see `windows::schedule`), and its ratio is its value over the mean of
//! those two neighbours, so a drift of the shared machine shows up on both sides of it.
//! Attach and detach happen outside the measured part of a window. Must not: assert
//! anything (it prints the targets and whether they were met; the test suite is
//! `cargo xtask test`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::attach::{Attached, Tracer};
use super::daemon::{self, ATTACHED, Daemon, kernel_bytes, worst_bytes};
use super::fentry::FentryCost;
use super::kmem;
use super::pingpong::{self, PingPong};
use super::regimes::Regimes;
use super::windows::{Rounds, Spread, schedule};
use super::{Stats, mark};
use crate::demo::{build_release_bins, require_root};
use crate::run::{Cmd, on_path, say, show, target_dir, write_json};

/// Targets from issue 11 (printed, never asserted).
const TARGET_TAX: f64 = 1.25;
const TARGET_NS_PER_FUTEX_CALL: f64 = 150.0;
const TARGET_DAEMON: f64 = 0.97;
const TARGET_KERNEL_MEM_256: u64 = 128 << 20;

/// What (a) attaches in turn.
const TAX_ATTACHED: [Tracer; 3] = [Tracer::Lockprof, Tracer::Bpftrace, Tracer::Floor];

/// How long and how often.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds of (a) and (c); each round measures every tracer once.
    pub rounds: u64,
    /// Rounds of (b); each round measures every tracer once.
    pub pingpong_runs: u64,
    /// Length of one measured memcached window.
    pub window: Duration,
    /// How long after attaching a memcached window starts.
    pub settle: Duration,
    /// `dd bs=1 count=…` of (a).
    pub dd_count: u64,
    /// Parts to run: (a), (b), (c) with (d), and the Go rows.
    pub parts: Parts,
}

/// Which parts of the table to measure (`--only abcg`; all by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    pub tax: bool,
    pub pingpong: bool,
    pub daemon: bool,
    pub go: bool,
    pub vm: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        tax: true,
        pingpong: true,
        daemon: true,
        go: true,
        vm: true,
    };

    const NONE: Parts = Parts {
        tax: false,
        pingpong: false,
        daemon: false,
        go: false,
        vm: false,
    };

    /// `--only` letters: `a` tax, `b` ping-pong, `c` memcached (and memory), `g` Go,
    /// `v` fentry in a VM.
    pub fn parse(letters: &str) -> Result<Parts> {
        let mut p = Parts::NONE;
        for c in letters.chars() {
            match c {
                'a' => p.tax = true,
                'b' => p.pingpong = true,
                'c' | 'd' => p.daemon = true,
                'g' | 'e' | 'f' => p.go = true,
                'v' => p.vm = true,
                ',' => {}
                _ => bail!(
                    "'--only' takes letters of parts: a (tax), b (ping-pong), c (memcached and memory), g (Go), v (fentry in a VM); got '{letters}'"
                ),
            }
        }
        if p == Parts::NONE {
            bail!("'--only' needs at least one part (a, b, c, g or v)");
        }
        Ok(p)
    }
}

impl Plan {
    pub fn new(quick: bool, rounds: Option<u64>) -> Plan {
        let base = if quick {
            Plan {
                rounds: 3,
                pingpong_runs: 2,
                window: Duration::from_secs(2),
                settle: Duration::from_millis(500),
                dd_count: 1_000_000,
                parts: Parts::ALL,
            }
        } else {
            // Many short windows rather than a few long ones: the machine's drift is
            // slower than a window, so more pairs narrow the median's interval more
            // than longer windows would.
            Plan {
                rounds: 10,
                pingpong_runs: 5,
                window: Duration::from_secs(3),
                settle: Duration::from_millis(1500),
                dd_count: 3_000_000,
                parts: Parts::ALL,
            }
        };
        Plan {
            rounds: rounds.unwrap_or(base.rounds),
            ..base
        }
    }

    /// The same plan measuring only `parts`.
    pub fn only(self, parts: Parts) -> Plan {
        Plan { parts, ..self }
    }
}

pub fn overhead(plan: Plan) -> Result<()> {
    require_root("'cargo xtask bench overhead'")?;
    crate::setup::setup()?;
    if !on_path("bpftrace") {
        say("bpftrace (the peer) is missing: installing it");
        crate::setup::apt_install(&["bpftrace"])?;
    }
    mount_tracefs()?;
    build_release_bins()?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create '{}'", dir.display()))?;

    let tax = if plan.parts.tax {
        Some(machine_tax(plan, &dir)?)
    } else {
        None
    };
    let pp = if plan.parts.pingpong {
        Some(pingpong::measure(plan, &dir)?)
    } else {
        None
    };
    let daemon = if plan.parts.daemon {
        Some(daemon::measure(plan, &dir)?)
    } else {
        None
    };
    let go = if plan.parts.go {
        Some(super::go::measure(plan, &dir)?)
    } else {
        None
    };
    let fentry = if plan.parts.vm {
        Some(super::fentry::measure(plan)?)
    } else {
        None
    };
    let measured = Measured {
        tax,
        pp,
        daemon,
        fentry,
        cpus: kmem::possible_cpus(),
    };
    let table = render(plan, &measured);
    let path = dir.join("overhead.json");
    let go_table = go
        .as_ref()
        .map(super::go::GoCost::render)
        .unwrap_or_default();
    println!("{table}\n{go_table}\nresults: {}", show(&path));
    let mut json = to_json(plan, &measured);
    if let Some(go) = &go {
        json["go"] = go.to_json();
    }
    write_json(&path, &json)
}

/// Syscall tracepoints need tracefs; a fresh machine does not mount it.
fn mount_tracefs() -> Result<()> {
    if Path::new("/sys/kernel/tracing/events").exists() {
        return Ok(());
    }
    Cmd::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .run()
        .context("mount tracefs (the bpftrace peer attaches syscall tracepoints)")
}

// ---------------------------------------------------------------------------------------
// (a) machine-wide tax
// ---------------------------------------------------------------------------------------

/// Seconds of `dd if=/dev/zero of=/dev/null bs=1 count=N` per round and state.
fn machine_tax(plan: Plan, dir: &Path) -> Result<Rounds> {
    let mut idle = Command::new("sleep")
        .arg("3600")
        .stdin(Stdio::null())
        .spawn()
        .context("start 'sleep 3600' (the idle target)")?;
    let mut r = Rounds::default();
    let result = each_window(plan, "(a) machine tax", &TAX_ATTACHED, |t| {
        let a = Attached::start(t, idle.id(), &dir.join("overhead-tax.json"))?;
        // What being attached costs, not what starting costs: both tracers' first
        // moments (lockprof re-reads a new target's maps every 10 ms for a second,
        // then drains for the first time) cost dd up to 8 % more than their steady
        // state, and dd starts right after the tracer says it is ready.
        std::thread::sleep(plan.settle);
        let started = Instant::now();
        let status = Command::new("dd")
            .args(["if=/dev/zero", "of=/dev/null", "bs=1", "status=none"])
            .arg(format!("count={}", plan.dd_count))
            .status()
            .context("run dd")?;
        let secs = started.elapsed().as_secs_f64();
        if a.stop()?.killed {
            say("bench overhead: bpftrace did not exit on SIGINT and was killed");
        }
        if !status.success() {
            bail!("dd failed ({status})");
        }
        r.push(t, secs);
        Ok(())
    });
    let _ = idle.kill();
    let _ = idle.wait();
    result.map(|()| r)
}

/// Runs `measure` for every window of the [`schedule`] of `attached`.
pub fn each_window(
    plan: Plan,
    part: &str,
    attached: &[Tracer],
    mut measure: impl FnMut(Tracer) -> Result<()>,
) -> Result<()> {
    let windows = schedule(plan.rounds, attached);
    for (i, &t) in windows.iter().enumerate() {
        say(&format!(
            "bench overhead {part}: window {}/{}, {}",
            i + 1,
            windows.len(),
            t.name()
        ));
        measure(t)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// table and JSON
// ---------------------------------------------------------------------------------------

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// One table row: a label and up to two cells (lockprof, the peer).
pub(super) fn row(t: &mut String, label: &str, lockprof: &str, peer: &str) {
    let _ = writeln!(t, "  {label:<56} {lockprof:>36} {peer:>36}");
}

/// What a run measured: the parts it ran, and the machine's possible CPUs.
struct Measured {
    tax: Option<Rounds>,
    pp: Option<PingPong>,
    daemon: Option<Daemon>,
    fentry: Option<FentryCost>,
    cpus: u64,
}

fn render(plan: Plan, measured: &Measured) -> String {
    let (tax, pp, d, cpus) = (
        measured.tax.as_ref(),
        measured.pp.as_ref(),
        measured.daemon.as_ref(),
        measured.cpus,
    );
    let mut out = String::new();
    let n = plan.rounds;
    let _ = writeln!(
        out,
        "\nlockprof overhead: ratios measured in one run, alternating windows\n(median (min..max) [95% bootstrap interval of the median], n = windows of each kind)"
    );
    row(&mut out, "", "lockprof", "bpftrace (peer)");
    let mut verdicts = Vec::new();
    if let Some(tax) = tax {
        let (tl, tb) = (
            Spread::of(&tax.ratios(Tracer::Lockprof)),
            Spread::of(&tax.ratios(Tracer::Bpftrace)),
        );
        row(
            &mut out,
            &format!(
                "(a) untraced dd bs=1 count={}: time ×, n={n}",
                plan.dd_count
            ),
            &tl.cell(),
            &tb.cell(),
        );
        floor_row(&mut out, &Spread::of(&tax.ratios(Tracer::Floor)).cell());
        let (l, b) = (tl.stats.median, tb.stats.median);
        verdicts.push(mark(
            l <= TARGET_TAX.max(b),
            &format!("(a) tax {l:.3}× ≤ bpftrace's {b:.3}× in the same run (or ≤ {TARGET_TAX}×)"),
        ));
    }
    if let Some(pp) = pp {
        render_pingpong(&mut out, pp, &mut verdicts);
    }
    if let Some(d) = d {
        render_daemon(&mut out, plan, d, cpus, &mut verdicts);
    }
    if let Some(f) = &measured.fentry {
        f.render(&mut out, &mut verdicts);
    }
    let lost_pp = pp.map_or(0, |p| p.losses);
    let (lost_d, killed) = d.map_or((0, 0), |d| (d.losses, d.peer_killed));
    let killed = killed + pp.map_or(0, |p| p.peer_killed);
    let _ = writeln!(
        out,
        "  lost events in lockprof's reports: {lost_pp} (ping-pong) and {lost_d} (memcached); bpftrace killed after SIGINT: {killed} time(s)"
    );
    let _ = write!(out, "targets (issue 11):");
    for v in verdicts {
        let _ = write!(out, "\n  {v}");
    }
    out
}

/// The floor's cell, under the peer's column.
fn floor_row(out: &mut String, floor: &str) {
    row(
        out,
        "      futex tracepoints, filter only (floor)",
        "",
        floor,
    );
}

/// Row (b): each tracer's round-trip ratio and BPF time per futex call, the floor under
/// the peer's column.
fn render_pingpong(out: &mut String, pp: &PingPong, verdicts: &mut Vec<String>) {
    let rtt = |t: Tracer| Spread::of(&pp.rtt_ns.ratios(t));
    row(
        out,
        &format!(
            "(b) futex ping-pong round trip ×, {} s runs, n={}",
            pingpong::RUN_SECONDS,
            rtt(Tracer::Lockprof).n
        ),
        &rtt(Tracer::Lockprof).cell(),
        &rtt(Tracer::Bpftrace).cell(),
    );
    row(
        out,
        "      lockprof --no-holders",
        &rtt(Tracer::LockprofNoHolders).cell(),
        "",
    );
    floor_row(out, &rtt(Tracer::Floor).cell());
    let ns = |r: &Rounds, t: Tracer| Stats::of(&r.values(t)).cell_ns();
    let times = |r: &Rounds, t: Tracer| {
        let s = Stats::of(&r.values(t));
        format!("{:.3} ({:.3}..{:.3})", s.median, s.min, s.max)
    };
    for (label, r, cell) in [
        (
            format!(
                "    BPF time per futex call ({} s runs, statistics on)",
                daemon::COST_WINDOW.as_secs_f64()
            ),
            &pp.bpf_ns_per_call,
            &ns as &dyn Fn(&Rounds, Tracer) -> String,
        ),
        (
            "    the machine's futex calls per ping-pong futex call".to_owned(),
            &pp.machine_calls_per_call,
            &times,
        ),
    ] {
        row(
            out,
            &label,
            &cell(r, Tracer::Lockprof),
            &cell(r, Tracer::Bpftrace),
        );
        row(
            out,
            "      lockprof --no-holders",
            &cell(r, Tracer::LockprofNoHolders),
            "",
        );
        floor_row(out, &cell(r, Tracer::Floor));
    }
    row(
        out,
        "    not attached: round trip",
        &ns(&pp.rtt_ns, Tracer::None),
        "",
    );
    let bpf = |t: Tracer| Stats::of(&pp.bpf_ns_per_call.values(t)).median;
    let l = bpf(Tracer::Lockprof);
    verdicts.push(mark(
        l <= TARGET_NS_PER_FUTEX_CALL,
        &format!(
            "(b) {l:.0} ns of BPF per futex call ≤ {TARGET_NS_PER_FUTEX_CALL} ns (--no-holders: {:.0} ns, bpftrace: {:.0} ns, the floor: {:.0} ns)",
            bpf(Tracer::LockprofNoHolders),
            bpf(Tracer::Bpftrace),
            bpf(Tracer::Floor)
        ),
    ));
}

/// Throughput ratio and BPF time per operation of each tracer's windows in each of
/// memcached's regimes (see `regimes`): the comparison inside one regime.
fn render_regimes(out: &mut String, d: &Daemon, reg: Regimes) {
    for (quiet, name) in [(true, "quiet (≤"), (false, "contended (>")] {
        let cell = |t: Tracer| {
            let s = Spread::of(&reg.ops_ratios(d, t, quiet));
            if s.n == 0 {
                // Every window of this tracer fell in the other regime.
                return "no window".to_owned();
            }
            let bpf = Stats::of(&reg.bpf_ns_per_op(d, t, quiet));
            format!(
                "{:.3} n={}, BPF {:.0} ns/op",
                s.stats.median, s.n, bpf.median
            )
        };
        row(
            out,
            &format!("      windows {name} {:.3} futex calls/op)", reg.threshold),
            &cell(Tracer::Lockprof),
            &cell(Tracer::Bpftrace),
        );
        floor_row(out, &cell(Tracer::Floor));
    }
}

/// Rows (c) and (d).
fn render_daemon(out: &mut String, plan: Plan, d: &Daemon, cpus: u64, verdicts: &mut Vec<String>) {
    let rounds = plan.rounds;
    let spread = |r: &Rounds, tr: Tracer| Spread::of(&r.ratios(tr));
    let win = daemon::window_label(plan.window);
    for (label, r, steady_row) in [
        (
            format!("(c) memcached -t 4 throughput ×, {win}, n={rounds}"),
            &d.ops_per_s,
            true,
        ),
        (
            "    memcached CPU time per operation ×".to_owned(),
            &d.server_cpu_ns_per_op,
            false,
        ),
        (
            "    memcached + tracer CPU per operation ×".to_owned(),
            &d.total_cpu_ns_per_op,
            false,
        ),
        (
            "    memcached's voluntary context switches per op ×".to_owned(),
            &d.switches_per_op,
            false,
        ),
    ] {
        row(
            out,
            &label,
            &spread(r, Tracer::Lockprof).cell(),
            &spread(r, Tracer::Bpftrace).cell(),
        );
        row(
            out,
            "      lockprof --no-holders",
            &spread(r, Tracer::LockprofNoHolders).cell(),
            "",
        );
        floor_row(out, &spread(r, Tracer::Floor).cell());
        if steady_row {
            let steady = |tr: Tracer| {
                let s = Spread::of(&r.steady_ratios(tr, daemon::STEADY));
                format!("{} n={}", s.cell(), s.n)
            };
            row(
                out,
                &format!(
                    "      only windows whose neighbours agree within {:.0} %",
                    daemon::STEADY * 100.0
                ),
                &steady(Tracer::Lockprof),
                &steady(Tracer::Bpftrace),
            );
            if let Some(reg) = Regimes::of(d) {
                render_regimes(out, d, reg);
            }
        }
    }
    // Absolute figures (no ratio): median (min..max) per tracer.
    for (label, r, unit, decimals) in [
        (
            "    BPF time of the tracer's probes per operation",
            &d.bpf_ns_per_op,
            "ns",
            0,
        ),
        (
            "    the machine's futex calls per operation",
            &d.futex_calls_per_op,
            "",
            3,
        ),
        (
            "    BPF time of the futex probes per futex call",
            &d.futex_bpf_ns_per_call,
            "ns",
            0,
        ),
        (
            "    the tracer process's own CPU time",
            &d.tracer_cpu_ms_per_s,
            "ms/s",
            1,
        ),
    ] {
        let cell = |t: Tracer| {
            let s = Stats::of(&r.values(t));
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            format!(
                "{:.decimals$}{unit} ({:.decimals$}..{:.decimals$})",
                s.median, s.min, s.max
            )
        };
        row(out, label, &cell(Tracer::Lockprof), &cell(Tracer::Bpftrace));
        row(
            out,
            "      lockprof --no-holders",
            &cell(Tracer::LockprofNoHolders),
            "",
        );
        floor_row(out, &cell(Tracer::Floor));
    }
    let plain = Stats::of(&d.ops_per_s.values(Tracer::None));
    let cpu = Stats::of(&d.server_cpu_ns_per_op.values(Tracer::None));
    row(
        out,
        "    not attached: ops/s (server stats), CPU ns per op",
        &format!(
            "{:.0}k ({:.0}k..{:.0}k)",
            plain.median / 1e3,
            plain.min / 1e3,
            plain.max / 1e3
        ),
        &format!("{:.0} ns ({:.0}..{:.0})", cpu.median, cpu.min, cpu.max),
    );
    let now = kernel_bytes(&d.maps);
    row(
        out,
        &format!(
            "(d) kernel memory of the maps now ({cpus} CPUs, {} maps)",
            d.maps.len()
        ),
        &mib(now),
        "",
    );
    if let Some(b) = d.reported_kernel_bytes.first() {
        row(out, "    as lockprof reports it (probe_cost)", &mib(*b), "");
    }
    for c in [cpus, 96, 256] {
        row(
            out,
            &format!("    worst case at max entries, {c} CPUs (model)"),
            &mib(worst_bytes(&d.maps, c)),
            "",
        );
    }
    let rss = Stats::of(&d.rss_kib.iter().map(|k| *k as f64).collect::<Vec<_>>());
    row(
        out,
        "    lockprof peak RSS (VmHWM) per memcached window",
        &format!(
            "{:.0} MiB ({:.0}..{:.0})",
            rss.median / 1024.0,
            rss.min / 1024.0,
            rss.max / 1024.0
        ),
        "",
    );
    let (lp_spread, peer_spread) = (
        spread(&d.ops_per_s, Tracer::Lockprof),
        spread(&d.ops_per_s, Tracer::Bpftrace),
    );
    let (lp, peer, floor) = (
        lp_spread.stats.median,
        peer_spread.stats.median,
        spread(&d.ops_per_s, Tracer::Floor).stats.median,
    );
    // The floor is context, not part of the target: a futex tracer changes how often
    // memcached blocks, so a tracer's throughput can land on either side of it. The
    // verdict compares the medians; whether the run can tell them apart is said too.
    let apart = if lp_spread.apart_from(&peer_spread) {
        "intervals apart"
    } else {
        "intervals overlap: level within this run's noise"
    };
    verdicts.push(mark(
        lp >= TARGET_DAEMON && lp >= peer,
        &format!(
            "(c) memcached throughput {lp:.3} ≥ {TARGET_DAEMON} and ≥ bpftrace's {peer:.3} ({apart}; the floor: {floor:.3})"
        ),
    ));
    let (cl, cb) = (
        spread(&d.server_cpu_ns_per_op, Tracer::Lockprof)
            .stats
            .median,
        spread(&d.server_cpu_ns_per_op, Tracer::Bpftrace)
            .stats
            .median,
    );
    verdicts.push(mark(
        cl <= 1.0 / TARGET_DAEMON && cl <= cb,
        &format!(
            "(c) memcached CPU per operation {cl:.3}× ≤ {:.3}× and ≤ bpftrace's {cb:.3}×",
            1.0 / TARGET_DAEMON
        ),
    ));
    let w256 = worst_bytes(&d.maps, 256);
    verdicts.push(mark(
        w256 <= TARGET_KERNEL_MEM_256,
        &format!("(d) {} at 256 CPUs ≤ 128 MiB", mib(w256)),
    ));
}

fn to_json(plan: Plan, measured: &Measured) -> Value {
    let (tax, pp, d, cpus) = (
        measured.tax.as_ref(),
        measured.pp.as_ref(),
        measured.daemon.as_ref(),
        measured.cpus,
    );
    let mut v = json!({
        "benchmark": "overhead",
        "config": { "rounds": plan.rounds, "pingpong_runs": plan.pingpong_runs,
                    "window_s": plan.window.as_secs_f64(), "settle_s": plan.settle.as_secs_f64(),
                    "dd_count": plan.dd_count, "possible_cpus": cpus },
    });
    if let Some(tax) = tax {
        v["machine_tax"] = json!({ "dd_seconds": tax.to_json(&TAX_ATTACHED) });
    }
    if let Some(pp) = pp {
        v["pingpong"] = pingpong_json(pp);
    }
    if let Some(f) = &measured.fentry {
        v["fentry_vm"] = f.to_json();
    }
    if let Some(d) = d {
        v["memcached"] = json!({ "ops_per_s": d.ops_per_s.to_json(&ATTACHED),
                       "steady_neighbours_tolerance": daemon::STEADY,
                       "ops_ratio_steady_neighbours": ATTACHED.iter()
                           .map(|&t| (t.key().to_owned(), Spread::of(&d.ops_per_s.steady_ratios(t, daemon::STEADY)).to_json()))
                           .collect::<serde_json::Map<_, _>>(),
                       "server_cpu_ns_per_op": d.server_cpu_ns_per_op.to_json(&ATTACHED),
                       "voluntary_switches_per_op": d.switches_per_op.to_json(&ATTACHED),
                       "server_and_tracer_cpu_ns_per_op": d.total_cpu_ns_per_op.to_json(&ATTACHED),
                       "bpf_ns_per_op": ATTACHED.iter()
                           .map(|&t| (t.key().to_owned(), json!(d.bpf_ns_per_op.values(t))))
                           .collect::<serde_json::Map<_, _>>(),
                       "tracer_cpu_ms_per_s": ATTACHED.iter()
                           .map(|&t| (t.key().to_owned(), json!(d.tracer_cpu_ms_per_s.values(t))))
                           .collect::<serde_json::Map<_, _>>(),
                       "futex_calls_per_op": ATTACHED.iter()
                           .map(|&t| (t.key().to_owned(), json!(d.futex_calls_per_op.values(t))))
                           .collect::<serde_json::Map<_, _>>(),
                       "futex_bpf_ns_per_call": ATTACHED.iter()
                           .map(|&t| (t.key().to_owned(), json!(d.futex_bpf_ns_per_call.values(t))))
                           .collect::<serde_json::Map<_, _>>(),
                       "by_regime": Regimes::of(d).map(|r| r.to_json(d)),
                       "lost_events": d.losses, "bpftrace_killed_after_sigint": d.peer_killed });
        v["memory"] = json!({
            "kernel_bytes_now": kernel_bytes(&d.maps),
            "kernel_bytes_reported": d.reported_kernel_bytes,
            "worst_case_bytes": { "this_machine": worst_bytes(&d.maps, cpus),
                                  "cpus_96": worst_bytes(&d.maps, 96), "cpus_256": worst_bytes(&d.maps, 256) },
            "maps": d.maps.iter().map(|m| json!({ "id": m.map_id, "type": m.map_type, "key_size": m.key_size,
                "value_size": m.value_size, "max_entries": m.max_entries, "flags": m.map_flags,
                "memlock": m.memlock })).collect::<Vec<_>>(),
            "lockprof_vm_hwm_kib": d.rss_kib,
        });
    }
    v
}

/// (b)'s JSON: lockprof's figures under the keys they always had, then every tracer's
/// (`rtt_ns` as (a)'s and (c)'s windows, the BPF figures by tracer).
fn pingpong_json(pp: &PingPong) -> Value {
    let by_tracer = |r: &Rounds| {
        pingpong::ATTACHED
            .iter()
            .map(|&t| (t.key().to_owned(), json!(r.values(t))))
            .collect::<serde_json::Map<_, _>>()
    };
    let lockprof_bpf = pp.bpf_ns_per_call.values(Tracer::Lockprof);
    let mut v = json!({
        "rtt_unprofiled_ns": pp.rtt_ns.values(Tracer::None),
        "rtt_profiled_ns": pp.rtt_ns.values(Tracer::Lockprof),
        "rtt_ratio": Spread::of(&pp.rtt_ns.ratios(Tracer::Lockprof)).to_json(),
        "bpf_ns_per_futex_call": Stats::of(&lockprof_bpf).to_json(),
        "bpf_ns_per_futex_call_runs": lockprof_bpf,
        "futex_calls_per_s": pp.calls_per_s.values(Tracer::Lockprof),
        "lost_events": pp.losses,
        "run_s": pingpong::RUN_SECONDS,
        "cost_run_s": daemon::COST_WINDOW.as_secs_f64(),
        "target_threads_on_one_cpu": true,
        "rtt_ns": pp.rtt_ns.to_json(&pingpong::ATTACHED),
        "bpf_ns_per_futex_call_by_tracer": by_tracer(&pp.bpf_ns_per_call),
        "machine_futex_calls_per_pingpong_call": by_tracer(&pp.machine_calls_per_call),
        "futex_programs_bpf_ns_per_machine_futex_call": by_tracer(&pp.futex_bpf_ns_per_machine_call),
        "futex_calls_per_s_by_tracer": by_tracer(&pp.calls_per_s),
        "bpftrace_killed_after_sigint": pp.peer_killed,
    });
    for t in [Tracer::LockprofNoHolders, Tracer::Bpftrace, Tracer::Floor] {
        v[format!("rtt_ratio_{}", t.key())] = Spread::of(&pp.rtt_ns.ratios(t)).to_json();
        v[format!("bpf_ns_per_futex_call_{}", t.key())] =
            Stats::of(&pp.bpf_ns_per_call.values(t)).to_json();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rounds of (b): every attached window's round trip 10 % (lockprof), 8 %
    /// (`--no-holders`), 6 % (bpftrace) or 2 % (the floor) above its unattached
    /// neighbours' 2,000 ns.
    fn pingpong_two_rounds() -> PingPong {
        let mut pp = PingPong::default();
        for t in super::super::windows::schedule(2, &pingpong::ATTACHED) {
            let (rtt, bpf) = match t {
                Tracer::Lockprof => (2200.0, 600.0),
                Tracer::LockprofNoHolders => (2160.0, 500.0),
                Tracer::Bpftrace => (2120.0, 400.0),
                Tracer::Floor => (2040.0, 90.0),
                Tracer::None => (2000.0, 0.0),
                Tracer::LockprofFentry | Tracer::LockprofTracepoints => {
                    unreachable!("not in (b)")
                }
            };
            pp.rtt_ns.push(t, rtt);
            if t != Tracer::None {
                pp.bpf_ns_per_call.push(t, bpf);
                pp.machine_calls_per_call.push(t, 1.01);
                pp.futex_bpf_ns_per_machine_call.push(t, bpf / 2.0);
                pp.calls_per_s.push(t, 1.2e6);
            }
        }
        pp.peer_killed = 1;
        pp
    }

    #[test]
    fn pingpong_rows_show_no_holders_the_peer_and_the_floor_beside_lockprof() {
        let (mut out, mut verdicts) = (String::new(), Vec::new());
        render_pingpong(&mut out, &pingpong_two_rounds(), &mut verdicts);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].contains("(b) futex ping-pong round trip ×, 2 s runs, n=2"));
        assert!(
            lines[0].contains("1.100 (1.100..1.100)") && lines[0].contains("1.060 (1.060..1.060)"),
            "{out}"
        );
        assert!(
            lines[1].contains("lockprof --no-holders") && lines[1].contains("1.080 (1.080..1.080)"),
            "{out}"
        );
        assert!(
            lines[2].contains("(floor)") && lines[2].trim_end().ends_with("[1.020..1.020]"),
            "{out}"
        );
        assert!(lines[3].contains("BPF time per futex call"), "{out}");
        assert!(
            lines[3].contains("600ns (600ns..600ns)") && lines[3].contains("400ns"),
            "{out}"
        );
        assert!(
            lines[4].contains("--no-holders") && lines[4].contains("500ns"),
            "{out}"
        );
        assert!(
            lines[5].contains("(floor)") && lines[5].contains("90ns"),
            "{out}"
        );
        assert!(lines[6].contains("1.010 (1.010..1.010)"), "{out}");
        assert!(
            lines[9].contains("not attached: round trip") && lines[9].contains("2.00µs"),
            "{out}"
        );
        assert_eq!(verdicts.len(), 1);
        assert!(
            verdicts[0].starts_with("FAIL (b) 600 ns of BPF per futex call ≤ 150 ns (--no-holders: 500 ns, bpftrace: 400 ns, the floor: 90 ns)"),
            "{verdicts:?}"
        );
    }

    #[test]
    fn pingpong_json_keeps_lockprofs_keys_and_adds_every_other_tracers() {
        let v = pingpong_json(&pingpong_two_rounds());
        assert_eq!(v["rtt_unprofiled_ns"].as_array().unwrap().len(), 9);
        assert_eq!(v["rtt_profiled_ns"], json!([2200.0, 2200.0]));
        assert!((v["rtt_ratio"]["median"].as_f64().unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(v["bpf_ns_per_futex_call"]["median"], json!(600.0));
        assert_eq!(v["bpf_ns_per_futex_call_runs"], json!([600.0, 600.0]));
        assert_eq!(v["futex_calls_per_s"], json!([1.2e6, 1.2e6]));
        assert!((v["rtt_ratio_bpftrace"]["median"].as_f64().unwrap() - 1.06).abs() < 1e-12);
        assert!((v["rtt_ratio_floor"]["median"].as_f64().unwrap() - 1.02).abs() < 1e-12);
        assert_eq!(v["bpf_ns_per_futex_call_bpftrace"]["max"], json!(400.0));
        assert_eq!(v["bpf_ns_per_futex_call_floor"]["min"], json!(90.0));
        assert_eq!(
            v["bpf_ns_per_futex_call_lockprof_no_holders"]["median"],
            json!(500.0)
        );
        assert!(
            (v["rtt_ratio_lockprof_no_holders"]["median"]
                .as_f64()
                .unwrap()
                - 1.08)
                .abs()
                < 1e-12
        );
        assert_eq!(
            v["bpf_ns_per_futex_call_by_tracer"]["floor"],
            json!([90.0, 90.0])
        );
        assert_eq!(v["rtt_ns"]["bpftrace"], json!([2120.0, 2120.0]));
        assert_eq!(
            v["futex_programs_bpf_ns_per_machine_futex_call"]["lockprof"],
            json!([300.0, 300.0])
        );
        assert_eq!(v["rtt_ns"]["order"].as_array().unwrap().len(), 17);
        assert_eq!(v["bpftrace_killed_after_sigint"], json!(1));
    }

    #[test]
    fn a_regime_without_a_tracers_window_says_so() {
        // Two rounds: the peer's windows all contended (0.16 futex calls per
        // operation), the others' quiet in the first round (0.04) and contended in
        // the second.
        let mut d = Daemon::default();
        let order = crate::bench::windows::schedule(2, &daemon::ATTACHED);
        let mut seen = 0;
        for t in order {
            let fc = match t {
                Tracer::None => 0.0,
                Tracer::Bpftrace => 0.16,
                _ if seen < daemon::ATTACHED.len() => 0.04,
                _ => 0.16,
            };
            if t != Tracer::None {
                seen += 1;
            }
            d.ops_per_s.push(t, 1000.0);
            d.futex_calls_per_op.push(t, fc);
            d.bpf_ns_per_op.push(t, 50.0);
        }
        let reg = Regimes::of(&d).expect("two regimes");
        let mut out = String::new();
        render_regimes(&mut out, &d, reg);
        let quiet = out
            .lines()
            .find(|l| l.contains("quiet"))
            .expect("quiet row");
        assert!(quiet.contains("no window"), "{out}");
        assert!(!out.contains("NaN"), "{out}");
    }

    #[test]
    fn quick_plan_is_shorter() {
        let (q, f) = (
            Plan::new(true, None),
            Plan::new(false, Some(12)).only(Parts::parse("c").unwrap()),
        );
        assert!(q.rounds < f.rounds && q.window < f.window);
        assert_eq!(f.rounds, 12);
        assert!(daemon::load_seconds(f) > 12 * 6 * 3);
    }

    #[test]
    fn only_picks_parts_and_rejects_unknown_letters() {
        let p = Parts::parse("c").unwrap();
        assert!(p.daemon && !p.tax && !p.pingpong && !p.go && !p.vm);
        assert_eq!(Parts::parse("abcgv").unwrap(), Parts::ALL);
        assert!(Parts::parse("v").unwrap().vm);
        let e = Parts::parse("x").unwrap_err().to_string();
        assert!(e.contains("'--only' takes letters"), "{e}");
        assert!(Parts::parse("").is_err());
    }
}

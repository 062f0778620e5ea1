//! `cargo xtask bench overhead`: what attaching lockprof costs its users, each figure a
//! ratio measured in one run with alternating windows, next to the bpftrace peer.
//!
//! Owns the four parts of the table and their order of measurement:
//! - (a) machine-wide tax: an untraced `dd bs=1` syscall loop while lockprof (or the
//!   bpftrace script) is attached to an idle `sleep`, against nothing attached;
//! - (b) `futex-pingpong` round trip, unprofiled vs launched under lockprof, and the
//!   BPF time per futex call from the report's `probe_cost` (the kernel's run-time
//!   statistics);
//! - (c) a real memcached under `memcached-load`: server-side throughput (`stats`) in
//!   windows with lockprof attached, bpftrace attached and nothing attached;
//! - (d) the kernel memory of lockprof's maps (now, and the model's worst case at 96
//!   and 256 CPUs) and lockprof's peak RSS, both taken from the memcached windows.
//!
//! (e) and (f), the Go runtime probes' cost on the Go demo and on containerd, are
//! measured and rendered by `go`, after these.
//!
//! Every attached window sits between two unattached ones (lockprof and the peer take
//! turns going first, see `schedule`), and its ratio is its value over the mean of
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
use super::kmem::{self, MapInfo};
use super::memcached::{self, Memcached};
use super::{Stats, mark};
use crate::demo::{build_release_bins, require_root};
use crate::report::{LockReport, human_ns};
use crate::run::{Cmd, on_path, release_bin, say, show, target_dir, write_json};

/// Targets from issue 11 (printed, never asserted).
const TARGET_TAX: f64 = 1.25;
const TARGET_NS_PER_FUTEX_CALL: f64 = 150.0;
const TARGET_DAEMON: f64 = 0.97;
const TARGET_KERNEL_MEM_256: u64 = 128 << 20;

/// How long and how often.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds of (a) and (c); each round measures lockprof and the peer once.
    pub rounds: u64,
    /// Runs of (b) each way.
    pub pingpong_runs: u64,
    /// Length of one measured memcached window.
    pub window: Duration,
    /// How long after attaching a memcached window starts.
    pub settle: Duration,
    /// `dd bs=1 count=…` of (a).
    pub dd_count: u64,
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
            }
        } else {
            Plan {
                rounds: 10,
                pingpong_runs: 5,
                window: Duration::from_secs(5),
                settle: Duration::from_secs(2),
                dd_count: 3_000_000,
            }
        };
        Plan {
            rounds: rounds.unwrap_or(base.rounds),
            ..base
        }
    }
}

/// The windows of a run, in order: an unattached window before, between and after
/// the attached ones, lockprof and the peer taking turns going first. Each attached
/// window is compared with the mean of its two unattached neighbours, so a drift of
/// the shared machine (other work starting or stopping) shows up on both sides of it
/// instead of on one.
fn schedule(rounds: u64) -> Vec<Tracer> {
    let mut v = vec![Tracer::None];
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            (Tracer::Lockprof, Tracer::Bpftrace)
        } else {
            (Tracer::Bpftrace, Tracer::Lockprof)
        };
        v.extend([a, Tracer::None, b, Tracer::None]);
    }
    v
}

/// One value per window, in the order of [`schedule`].
#[derive(Default, Debug)]
struct Rounds {
    windows: Vec<(Tracer, f64)>,
}

impl Rounds {
    fn push(&mut self, t: Tracer, v: f64) {
        self.windows.push((t, v));
    }

    /// The values of the windows in state `t`.
    fn values(&self, t: Tracer) -> Vec<f64> {
        self.windows
            .iter()
            .filter(|(s, _)| *s == t)
            .map(|(_, v)| *v)
            .collect()
    }

    /// Each window in state `t` over the mean of the unattached windows next to it.
    fn ratios(&self, t: Tracer) -> Vec<f64> {
        self.windows
            .windows(3)
            .filter(|w| w[1].0 == t && w[0].0 == Tracer::None && w[2].0 == Tracer::None)
            .map(|w| w[1].1 / f64::midpoint(w[0].1, w[2].1))
            .collect()
    }

    fn to_json(&self) -> Value {
        json!({ "not_attached": self.values(Tracer::None), "lockprof": self.values(Tracer::Lockprof),
                "bpftrace": self.values(Tracer::Bpftrace),
                "order": self.windows.iter().map(|(t, _)| t.name()).collect::<Vec<_>>(),
                "ratio_lockprof": self.ratios(Tracer::Lockprof), "ratio_bpftrace": self.ratios(Tracer::Bpftrace) })
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

    let tax = machine_tax(plan, &dir)?;
    let pp = pingpong(plan, &dir)?;
    let daemon = daemon(plan, &dir)?;
    let go = super::go::measure(plan, &dir)?;
    let cpus = kmem::possible_cpus();
    let table = render(plan, &tax, &pp, &daemon, cpus);
    let path = dir.join("overhead.json");
    println!("{table}\n{}\nresults: {}", go.render(), show(&path));
    let mut json = to_json(plan, &tax, &pp, &daemon, cpus);
    json["go"] = go.to_json();
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
    let result = each_window(plan, "(a) machine tax", |t| {
        let a = Attached::start(t, idle.id(), &dir.join("overhead-tax.json"))?;
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

/// Runs `measure` for every window of the [`schedule`].
fn each_window(
    plan: Plan,
    part: &str,
    mut measure: impl FnMut(Tracer) -> Result<()>,
) -> Result<()> {
    let windows = schedule(plan.rounds);
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
// (b) futex ping-pong
// ---------------------------------------------------------------------------------------

#[derive(Default, Debug)]
struct PingPong {
    rtt_plain_ns: Vec<f64>,
    rtt_profiled_ns: Vec<f64>,
    bpf_ns_per_call: Vec<f64>,
    calls_per_s: Vec<f64>,
    losses: u64,
}

fn pingpong_rtt(stdout: &[u8]) -> Result<f64> {
    super::result_field(stdout, "futex-pingpong", "round_trips", "rtt_ns")
}

impl PingPong {
    /// Profiled / unprofiled round trip, run by run.
    fn rtt_ratios(&self) -> Vec<f64> {
        self.rtt_profiled_ns
            .iter()
            .zip(&self.rtt_plain_ns)
            .map(|(p, u)| p / u)
            .collect()
    }
}

fn pingpong(plan: Plan, dir: &Path) -> Result<PingPong> {
    let bin = release_bin("futex-pingpong");
    let mut p = PingPong::default();
    let report = dir.join("overhead-pingpong.json");
    for i in 0..plan.pingpong_runs {
        let profiled_first = i % 2 == 1;
        for profile in [profiled_first, !profiled_first] {
            say(&format!(
                "bench overhead (b) futex ping-pong: run {}/{}, {}",
                i + 1,
                plan.pingpong_runs,
                if profile {
                    "under lockprof"
                } else {
                    "unprofiled"
                }
            ));
            if profile {
                let _ = std::fs::remove_file(&report);
                let out = Cmd::new(release_bin("lockprof"))
                    .args(["record", "-q", "-o"])
                    .arg(&report)
                    .arg("--")
                    .arg(&bin)
                    .args(["--seconds", "2"])
                    .capture()?;
                p.rtt_profiled_ns.push(pingpong_rtt(&out.stdout)?);
                let rep = LockReport::read(&report)?;
                let (bpf_ns, _) = rep.bpf_cost();
                let calls = rep.wait_calls() + rep.wake_calls();
                if calls == 0 {
                    bail!("lockprof saw no futex call of futex-pingpong");
                }
                p.bpf_ns_per_call.push(bpf_ns as f64 / calls as f64);
                p.calls_per_s
                    .push(calls as f64 / rep.duration_s().max(1e-9));
                p.losses += rep.losses().iter().map(|(_, n)| n).sum::<u64>();
            } else {
                let out = Cmd::new(&bin).args(["--seconds", "2"]).capture()?;
                p.rtt_plain_ns.push(pingpong_rtt(&out.stdout)?);
            }
        }
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------
// (c) memcached, (d) memory
// ---------------------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Daemon {
    ops_per_s: Rounds,
    /// lockprof's peak RSS per lockprof window, KiB.
    rss_kib: Vec<u64>,
    /// lockprof's maps, read in its first window.
    maps: Vec<MapInfo>,
    /// `probe_cost.kernel_memory_bytes` of the reports, when the probe reports it.
    reported_kernel_bytes: Vec<u64>,
    losses: u64,
    /// bpftrace windows whose bpftrace had to be killed after SIGINT.
    peer_killed: u64,
}

/// How long the load must last: every window plus attach/detach time, generously.
fn load_seconds(plan: Plan) -> u64 {
    schedule(plan.rounds).len() as u64 * (plan.window.as_secs() + 20) + 30
}

fn daemon(plan: Plan, dir: &Path) -> Result<Daemon> {
    say(&format!(
        "bench overhead (c): memcached -t 4 on 127.0.0.1:{} under memcached-load (8 connections, 16 hot keys, 90% sets)",
        memcached::PORT
    ));
    let mut server = Memcached::start()?;
    server.start_load(8, load_seconds(plan))?;
    let report = dir.join("overhead-memcached.json");
    let mut d = Daemon::default();
    each_window(plan, "(c) memcached", |t| {
        let a = Attached::start(t, server.pid(), &report)?;
        // The first moments after attaching are not what a long recording costs:
        // lockprof reads the target's maps and binaries, and unwinds and symbolizes
        // every call path it sees for the first time (a burst of its own CPU that
        // took up to half of memcached's throughput in a 0.5 s-settle run).
        std::thread::sleep(plan.settle);
        let (ops0, t0) = (memcached::stats_ops()?, Instant::now());
        std::thread::sleep(plan.window);
        let (ops1, t1) = (memcached::stats_ops()?, Instant::now());
        if t == Tracer::Lockprof && d.maps.is_empty() {
            d.maps = a.maps();
        }
        let detached = a.stop()?;
        d.peer_killed += u64::from(detached.killed);
        d.ops_per_s
            .push(t, (ops1 - ops0) as f64 / (t1 - t0).as_secs_f64());
        if t == Tracer::Lockprof {
            d.rss_kib.push(detached.vm_hwm_kib);
            let rep = LockReport::read(&report)?;
            d.losses += rep.losses().iter().map(|(_, n)| n).sum::<u64>();
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

fn kernel_bytes(maps: &[MapInfo]) -> u64 {
    maps.iter().map(|m| m.memlock).sum()
}

fn worst_bytes(maps: &[MapInfo], cpus: u64) -> u64 {
    maps.iter().map(|m| m.worst_case_bytes(cpus)).sum()
}

// ---------------------------------------------------------------------------------------
// table and JSON
// ---------------------------------------------------------------------------------------

fn ratio_cell(v: &[f64]) -> String {
    let s = Stats::of(v);
    format!("{:.3} ({:.3}..{:.3})", s.median, s.min, s.max)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn render(plan: Plan, tax: &Rounds, pp: &PingPong, d: &Daemon, cpus: u64) -> String {
    let mut t = String::new();
    let n = plan.rounds;
    let _ = writeln!(
        t,
        "\nlockprof overhead: ratios measured in one run, alternating windows (median (min..max), n = rounds)"
    );
    let _ = writeln!(
        t,
        "  {:<58} {:>26} {:>26}",
        "", "lockprof", "bpftrace (peer)"
    );
    let tl = tax.ratios(Tracer::Lockprof);
    let tb = tax.ratios(Tracer::Bpftrace);
    let _ = writeln!(
        t,
        "  {:<58} {:>26} {:>26}",
        format!(
            "(a) untraced dd bs=1 count={}: time ×, n={n}",
            plan.dd_count
        ),
        ratio_cell(&tl),
        ratio_cell(&tb)
    );
    let rtt = pp.rtt_ratios();
    let _ = writeln!(
        t,
        "  {:<58} {:>26} {:>26}",
        format!(
            "(b) futex ping-pong round trip ×, n={}",
            pp.rtt_plain_ns.len()
        ),
        ratio_cell(&rtt),
        "–"
    );
    let bpf = Stats::of(&pp.bpf_ns_per_call);
    let _ = writeln!(
        t,
        "  {:<58} {:>26} {:>26}",
        "    BPF time per futex call (probe_cost)",
        format!(
            "{} ({}..{})",
            human_ns(bpf.median as u64),
            human_ns(bpf.min as u64),
            human_ns(bpf.max as u64)
        ),
        "–"
    );
    let dl = d.ops_per_s.ratios(Tracer::Lockprof);
    let db = d.ops_per_s.ratios(Tracer::Bpftrace);
    let _ = writeln!(
        t,
        "  {:<58} {:>26} {:>26}",
        format!(
            "(c) memcached -t 4 throughput ×, {} s windows, n={n}",
            plan.window.as_secs()
        ),
        ratio_cell(&dl),
        ratio_cell(&db)
    );
    let plain = Stats::of(&d.ops_per_s.values(Tracer::None));
    let _ = writeln!(
        t,
        "  {:<58} {:>26}",
        "    not attached (ops/s, server stats)",
        format!(
            "{:.0}k ({:.0}k..{:.0}k)",
            plain.median / 1e3,
            plain.min / 1e3,
            plain.max / 1e3
        )
    );
    let now = kernel_bytes(&d.maps);
    let _ = writeln!(
        t,
        "  {:<58} {:>26}",
        format!(
            "(d) kernel memory of the maps now ({cpus} CPUs, {} maps)",
            d.maps.len()
        ),
        mib(now)
    );
    if let Some(b) = d.reported_kernel_bytes.first() {
        let _ = writeln!(
            t,
            "  {:<58} {:>26}",
            "    as lockprof reports it (probe_cost)",
            mib(*b)
        );
    }
    for c in [cpus, 96, 256] {
        let _ = writeln!(
            t,
            "  {:<58} {:>26}",
            format!("    worst case at max entries, {c} CPUs (model)"),
            mib(worst_bytes(&d.maps, c))
        );
    }
    let rss = Stats::of(&d.rss_kib.iter().map(|k| *k as f64).collect::<Vec<_>>());
    let _ = writeln!(
        t,
        "  {:<58} {:>26}",
        format!(
            "    lockprof peak RSS (VmHWM) per {} s memcached window",
            plan.window.as_secs()
        ),
        format!(
            "{:.0} MiB ({:.0}..{:.0})",
            rss.median / 1024.0,
            rss.min / 1024.0,
            rss.max / 1024.0
        )
    );
    let _ = writeln!(
        t,
        "  lost events in lockprof's reports: {} (ping-pong) and {} (memcached); bpftrace killed after SIGINT: {} time(s)",
        pp.losses, d.losses, d.peer_killed
    );
    let _ = writeln!(t, "targets (issue 11):");
    let tax_med = Stats::of(&tl).median;
    let _ = writeln!(
        t,
        "  {}",
        mark(
            tax_med <= TARGET_TAX.max(Stats::of(&tb).median),
            &format!(
                "(a) tax {tax_med:.3}× ≤ bpftrace's {:.3}× in the same run (or ≤ {TARGET_TAX}×)",
                Stats::of(&tb).median
            )
        )
    );
    let _ = writeln!(
        t,
        "  {}",
        mark(
            bpf.median <= TARGET_NS_PER_FUTEX_CALL,
            &format!(
                "(b) {:.0} ns of BPF per futex call ≤ {TARGET_NS_PER_FUTEX_CALL} ns",
                bpf.median
            )
        )
    );
    let (dlm, dbm) = (Stats::of(&dl).median, Stats::of(&db).median);
    let _ = writeln!(
        t,
        "  {}",
        mark(
            dlm >= TARGET_DAEMON && dlm >= dbm,
            &format!("(c) memcached {dlm:.3} ≥ {TARGET_DAEMON} and ≥ bpftrace's {dbm:.3}")
        )
    );
    let w256 = worst_bytes(&d.maps, 256);
    let _ = write!(
        t,
        "  {}",
        mark(
            w256 <= TARGET_KERNEL_MEM_256,
            &format!("(d) {} at 256 CPUs ≤ 128 MiB", mib(w256))
        )
    );
    t
}

fn to_json(plan: Plan, tax: &Rounds, pp: &PingPong, d: &Daemon, cpus: u64) -> Value {
    let rtt = pp.rtt_ratios();
    json!({
        "benchmark": "overhead",
        "config": { "rounds": plan.rounds, "pingpong_runs": plan.pingpong_runs,
                    "window_s": plan.window.as_secs(), "dd_count": plan.dd_count,
                    "possible_cpus": cpus },
        "machine_tax": { "dd_seconds": tax.to_json(),
                         "ratio_lockprof": Stats::of(&tax.ratios(Tracer::Lockprof)).to_json(),
                         "ratio_bpftrace": Stats::of(&tax.ratios(Tracer::Bpftrace)).to_json() },
        "pingpong": { "rtt_unprofiled_ns": pp.rtt_plain_ns, "rtt_profiled_ns": pp.rtt_profiled_ns,
                      "rtt_ratio": Stats::of(&rtt).to_json(),
                      "bpf_ns_per_futex_call": Stats::of(&pp.bpf_ns_per_call).to_json(),
                      "bpf_ns_per_futex_call_runs": pp.bpf_ns_per_call,
                      "futex_calls_per_s": pp.calls_per_s, "lost_events": pp.losses },
        "memcached": { "ops_per_s": d.ops_per_s.to_json(),
                       "ratio_lockprof": Stats::of(&d.ops_per_s.ratios(Tracer::Lockprof)).to_json(),
                       "ratio_bpftrace": Stats::of(&d.ops_per_s.ratios(Tracer::Bpftrace)).to_json(),
                       "lost_events": d.losses, "bpftrace_killed_after_sigint": d.peer_killed },
        "memory": {
            "kernel_bytes_now": kernel_bytes(&d.maps),
            "kernel_bytes_reported": d.reported_kernel_bytes,
            "worst_case_bytes": { "this_machine": worst_bytes(&d.maps, cpus),
                                  "cpus_96": worst_bytes(&d.maps, 96), "cpus_256": worst_bytes(&d.maps, 256) },
            "maps": d.maps.iter().map(|m| json!({ "id": m.map_id, "type": m.map_type, "key_size": m.key_size,
                "value_size": m.value_size, "max_entries": m.max_entries, "flags": m.map_flags,
                "memlock": m.memlock })).collect::<Vec<_>>(),
            "lockprof_vm_hwm_kib": d.rss_kib,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_windows_alternate_between_unattached_ones() {
        use Tracer::{Bpftrace as B, Lockprof as L, None as N};
        assert_eq!(schedule(2), vec![N, L, N, B, N, B, N, L, N]);
        assert_eq!(schedule(1).len(), 5);
    }

    #[test]
    fn ratios_compare_each_window_with_its_unattached_neighbours() {
        let mut r = Rounds::default();
        for (t, v) in schedule(2)
            .into_iter()
            .zip([100.0, 45.0, 80.0, 60.0, 120.0, 100.0, 80.0, 50.0, 20.0])
        {
            r.push(t, v);
        }
        assert_eq!(r.ratios(Tracer::Lockprof), vec![0.5, 1.0]);
        assert_eq!(r.ratios(Tracer::Bpftrace), vec![0.6, 1.0]);
        assert_eq!(r.values(Tracer::None), vec![100.0, 80.0, 120.0, 80.0, 20.0]);
    }

    #[test]
    fn pingpong_line_is_read() {
        let out = b"noise\n{\"round_trips\":10,\"rtt_ns\":9413,\"wait_calls\":1}\n";
        assert!((pingpong_rtt(out).unwrap() - 9413.0).abs() < 1e-9);
        assert!(pingpong_rtt(b"").is_err());
    }

    #[test]
    fn quick_plan_is_shorter() {
        let (q, f) = (Plan::new(true, None), Plan::new(false, Some(12)));
        assert!(q.rounds < f.rounds && q.window < f.window);
        assert_eq!(f.rounds, 12);
        assert!(load_seconds(f) > 12 * 4 * 3);
    }
}

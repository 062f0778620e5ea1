//! `cargo xtask bench overhead`, Go part: what lockprof's Go runtime probes (uprobes
//! on `runtime.gopark`, `runtime.semacquire1`, `runtime.ready`, one stack walk per park
//! and per wake) cost the Go programs they are attached to, each figure a ratio
//! measured in one run with alternating windows:
//! - (e) the Go demo (`demo-targets/go`, `godemo -unit-us 50 before`: 16 goroutines
//!   queueing on one `sync.Mutex`, short try-lock sleeps, so parks are frequent):
//!   its own measured time for all pulls, with lockprof attached by pid vs nothing
//!   (the demo waits with `-wait` until the tracer is attached), runs in pairs whose
//!   order alternates;
//! - (f) a real Go daemon, Debian's containerd under `ctrload -mix snapshots`
//!   (concurrent `ctr snapshots prepare`/`rm`: bbolt's writer lock, the metadata
//!   database's `RWMutex` against its garbage collector): the gRPC calls it handled per
//!   second (its own metrics) in windows with lockprof attached by pid vs nothing
//!   attached. (The root test's import load re-creates the duplicate-pull bug, whose
//!   try-lock sleeps make the rate swing ×10 between windows: no use for a ratio.)
//!
//! - (g) `parkpong` (`demo-targets/go/parkpong`): two goroutines on one P handing a
//!   token over unbuffered channels, every round trip two parks and two wake-ups and
//!   nothing else — the worst case per event, like futex-pingpong for (b): its CPU time
//!   per round trip (user + system, which holds the uprobe traps) attached vs not.
//!
//! There is no peer: bpftrace cannot follow goroutines. Attach and detach stay outside
//! the measured part of a window (`attach`). Must not: assert anything.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::attach::{Attached, Tracer};
use super::containerd::{self, Containerd, LoadResult};
use super::overhead::Plan;
use super::{Stats, result_field};
use crate::report::{LockReport, human_ns};
use crate::run::say;

/// The demo's arguments: one upstream millisecond is 50 µs, so the try-lock sleeps
/// are short and parks frequent (the default 500 µs spends the run asleep).
const DEMO_ARGS: [&str; 3] = ["-unit-us", "50", "before"];
/// `ctrload -workers`: concurrent `ctr` loops on the daemon.
const CTR_WORKERS: u32 = 8;

/// One measured value per state, paired by round (ratios are taken within a pair).
#[derive(Default, Debug)]
struct Pairs {
    plain: Vec<f64>,
    profiled: Vec<f64>,
}

impl Pairs {
    fn push(&mut self, profiled: bool, v: f64) {
        if profiled {
            self.profiled.push(v);
        } else {
            self.plain.push(v);
        }
    }

    fn ratios(&self) -> Vec<f64> {
        self.profiled
            .iter()
            .zip(&self.plain)
            .map(|(p, u)| p / u)
            .collect()
    }

    fn to_json(&self) -> Value {
        json!({ "not_attached": self.plain, "lockprof": self.profiled,
                "ratio": Stats::of(&self.ratios()).to_json(), "ratios": self.ratios() })
    }
}

/// What lockprof's own report says about one profiled run or window.
#[derive(Default, Debug)]
struct Probed {
    /// BPF time per program run (every probe of the session, futex and Go).
    bpf_ns_per_run: Vec<f64>,
    /// Program runs per second of recording.
    runs_per_s: Vec<f64>,
    /// Goroutine waits recorded (sites of a `go-*` kind) per second.
    go_waits_per_s: Vec<f64>,
    losses: u64,
}

impl Probed {
    fn add(&mut self, report: &Path) -> Result<()> {
        let rep = LockReport::read(report)?;
        let (ns, runs) = rep.bpf_cost();
        let secs = rep.duration_s().max(1e-9);
        if runs > 0 {
            self.bpf_ns_per_run.push(ns as f64 / runs as f64);
        }
        self.runs_per_s.push(runs as f64 / secs);
        let go_waits: u64 = rep
            .top_sites(usize::MAX)
            .iter()
            .filter(|s| s.kind.starts_with("go-"))
            .map(|s| s.waits)
            .sum();
        self.go_waits_per_s.push(go_waits as f64 / secs);
        self.losses += rep.lost_events();
        Ok(())
    }

    fn to_json(&self) -> Value {
        json!({ "bpf_ns_per_run": Stats::of(&self.bpf_ns_per_run).to_json(),
                "bpf_runs_per_s": Stats::of(&self.runs_per_s).to_json(),
                "go_waits_per_s": Stats::of(&self.go_waits_per_s).to_json(),
                "lost_events": self.losses })
    }
}

/// The Go part of the overhead table.
#[derive(Default, Debug)]
pub struct GoCost {
    /// (e) the demo's own time for all pulls, ms.
    demo_ms: Pairs,
    demo_probed: Probed,
    /// (f) containerd's gRPC calls handled per second.
    daemon_rps: Pairs,
    daemon_window: Duration,
    daemon_probed: Probed,
    load: LoadResult,
    /// (g) parkpong's CPU time per round trip, ns.
    pong_cpu_ns: Pairs,
    pong_probed: Probed,
}

/// Measures (e) and (f); `dir` holds the reports and the daemon's private state.
pub fn measure(plan: Plan, dir: &Path) -> Result<GoCost> {
    // Its BPF time per run comes from the reports' `probe_cost`, which needs the
    // kernel's run-time statistics: on for the whole Go part (two clock reads a
    // program run, in the attached and the unattached windows alike).
    let _stats = super::bpf_fds::RunTimeStats::enable();
    let godemo = crate::demo_go::build()?;
    let ctrload = crate::demo_go::build_tool("ctrload")?;
    let mut cost = GoCost::default();
    let parkpong = crate::demo_go::build_tool("parkpong")?;
    demo(plan, dir, &godemo, &mut cost)?;
    daemon(plan, dir, &ctrload, &mut cost)?;
    pong(plan, dir, &parkpong, &mut cost)?;
    Ok(cost)
}

/// Pairs of demo runs: twice as many as the rounds of the other parts, since one run
/// lasts a fraction of a second.
fn demo_runs(plan: Plan) -> u64 {
    plan.rounds * 2
}

fn demo(plan: Plan, dir: &Path, godemo: &Path, cost: &mut GoCost) -> Result<()> {
    let report = dir.join("overhead-go-demo.json");
    each_pair(demo_runs(plan), "(e) Go demo", |tracer| {
        let wall_s = waited_run(godemo, &DEMO_ARGS, tracer, &report, ("demo", "wall_s"))?;
        cost.demo_ms.push(tracer == Tracer::Lockprof, wall_s * 1e3);
        if tracer == Tracer::Lockprof {
            cost.demo_probed.add(&report)?;
        }
        Ok(())
    })
}

/// Runs `measure` unattached and with lockprof, `pairs` times, the order alternating.
fn each_pair(pairs: u64, part: &str, mut measure: impl FnMut(Tracer) -> Result<()>) -> Result<()> {
    for i in 0..pairs {
        let order = if i % 2 == 0 {
            [Tracer::None, Tracer::Lockprof]
        } else {
            [Tracer::Lockprof, Tracer::None]
        };
        for tracer in order {
            say(&format!(
                "bench overhead {part}: {}/{pairs}, {}",
                i + 1,
                tracer.name()
            ));
            measure(tracer)?;
        }
    }
    Ok(())
}

/// Starts `cmd` with piped stdin and stdout and waits for its first line, `ready`
/// (the Go demo with `-wait`, `ctrload load`); returns it and the rest of its stdout.
pub fn spawn_until_ready(cmd: &mut Command, what: &str) -> Result<(Child, BufReader<ChildStdout>)> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut ready = String::new();
    out.read_line(&mut ready)
        .with_context(|| format!("read {what}"))?;
    if ready.trim() != "ready" {
        // Dropping its stdin lets a waiting program exit.
        drop(child.stdin.take());
        let status = child.wait()?;
        bail!("{what} did not print 'ready' ({status})");
    }
    Ok((child, out))
}

/// One run of a Go program started with `-wait`, so the tracer attaches (and settles)
/// before the measured run: returns `field` of its JSON result line (the one that
/// starts with `{"<first>"`).
fn waited_run(
    bin: &Path,
    args: &[&str],
    tracer: Tracer,
    report: &Path,
    (first, field): (&str, &str),
) -> Result<f64> {
    let what = bin.display().to_string();
    let (mut child, mut out) = spawn_until_ready(Command::new(bin).arg("-wait").args(args), &what)?;
    let attached = Attached::start(tracer, child.id(), report)?;
    std::thread::sleep(Duration::from_millis(500));
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(b"go\n")
        .with_context(|| format!("start {what}"))?;
    let mut rest = Vec::new();
    out.read_to_end(&mut rest)
        .with_context(|| format!("read {what}"))?;
    let status = child.wait()?;
    // lockprof stops by itself when its target exits; this waits for its report.
    attached.stop()?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    result_field(&rest, &what, first, field)
}

/// (g) parkpong: CPU time per round trip (two parks, two wake-ups).
fn pong(plan: Plan, dir: &Path, parkpong: &Path, cost: &mut GoCost) -> Result<()> {
    let report = dir.join("overhead-go-parkpong.json");
    each_pair(plan.rounds, "(g) goroutine ping-pong", |tracer| {
        let cpu_ns = waited_run(
            parkpong,
            &["-seconds", "1"],
            tracer,
            &report,
            ("cpu_ns_per_rtt", "cpu_ns_per_rtt"),
        )?;
        cost.pong_cpu_ns.push(tracer == Tracer::Lockprof, cpu_ns);
        if tracer == Tracer::Lockprof {
            cost.pong_probed.add(&report)?;
        }
        Ok(())
    })
}

fn daemon(plan: Plan, dir: &Path, ctrload: &Path, cost: &mut GoCost) -> Result<()> {
    // A window holds a few hundred calls at this daemon's rate: twice the other
    // parts' window length keeps the count's noise down.
    let window = plan.window * 2;
    cost.daemon_window = window;
    say(&format!(
        "bench overhead (f): containerd (metrics on 127.0.0.1:{}) under ctrload ({CTR_WORKERS} ctr loops: snapshots prepare/rm)",
        containerd::METRICS_PORT
    ));
    let mut server = Containerd::start(ctrload, &dir.join("containerd"))?;
    server.start_load(ctrload, CTR_WORKERS)?;
    let report = dir.join("overhead-go-containerd.json");
    each_pair(plan.rounds, "(f) containerd", |tracer| {
        let a = Attached::start(tracer, server.pid(), &report)?;
        // Reading the daemon's maps and its 50 MB binary right after attaching
        // is not what a long recording costs.
        std::thread::sleep(Duration::from_millis(500));
        let (n0, t0) = (containerd::rpcs_handled()?, Instant::now());
        std::thread::sleep(window);
        let (n1, t1) = (containerd::rpcs_handled()?, Instant::now());
        a.stop()?;
        if n1 <= n0 {
            bail!("containerd handled no gRPC call in a window: is the load running?");
        }
        let profiled = tracer == Tracer::Lockprof;
        cost.daemon_rps
            .push(profiled, (n1 - n0) as f64 / (t1 - t0).as_secs_f64());
        if profiled {
            cost.daemon_probed.add(&report)?;
        }
        Ok(())
    })?;
    cost.load = server.finish_load()?;
    Ok(())
}

fn cell(v: &[f64]) -> String {
    let s = Stats::of(v);
    format!("{:.3} ({:.3}..{:.3})", s.median, s.min, s.max)
}

fn plain_cell(v: &[f64], unit: &str) -> String {
    let s = Stats::of(v);
    format!("{:.0} ({:.0}..{:.0}) {unit}", s.median, s.min, s.max)
}

fn probe_cell(p: &Probed) -> String {
    let ns = Stats::of(&p.bpf_ns_per_run).median;
    format!(
        "{} × {:.0}/s, {:.0} go waits/s",
        human_ns(ns as u64),
        Stats::of(&p.runs_per_s).median,
        Stats::of(&p.go_waits_per_s).median
    )
}

/// Three rows of the table: the ratio, the unattached values (`plain`: label, unit)
/// and what lockprof's reports said about its probes.
fn part(t: &mut String, head: &str, p: &Pairs, plain: (&str, &str), probed: &Probed) {
    let mut row = |label: &str, value: String| {
        let _ = writeln!(t, "  {label:<58} {value:>26}");
    };
    row(head, cell(&p.ratios()));
    row(&format!("    {}", plain.0), plain_cell(&p.plain, plain.1));
    row(
        "    BPF per probe run × runs/s; goroutine waits",
        probe_cell(probed),
    );
}

impl GoCost {
    /// The Go rows of the overhead table (after the futex rows).
    pub fn render(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "\nGo runtime probes: ratios in one run, alternating (median (min..max), n = pairs); no peer"
        );
        part(
            &mut t,
            &format!(
                "(e) Go demo ({}) time ×, n={}",
                DEMO_ARGS.join(" "),
                self.demo_ms.profiled.len()
            ),
            &self.demo_ms,
            ("unprofiled, the demo's own time for all pulls", "ms"),
            &self.demo_probed,
        );
        part(
            &mut t,
            &format!(
                "(f) containerd gRPC calls/s ×, {} s windows, n={}",
                self.daemon_window.as_secs(),
                self.daemon_rps.profiled.len()
            ),
            &self.daemon_rps,
            ("not attached (calls/s, containerd's metrics)", "/s"),
            &self.daemon_probed,
        );
        part(
            &mut t,
            &format!(
                "(g) goroutine ping-pong CPU per round trip ×, n={}",
                self.pong_cpu_ns.profiled.len()
            ),
            &self.pong_cpu_ns,
            ("unprofiled (2 parks + 2 wake-ups, parkpong)", "ns"),
            &self.pong_probed,
        );
        let added = (Stats::of(&self.pong_cpu_ns.profiled).median
            - Stats::of(&self.pong_cpu_ns.plain).median)
            / 2.0;
        let _ = writeln!(
            t,
            "  {:<58} {:>26}",
            "    added CPU per park + wake-up (median difference / 2)",
            human_ns(added.max(0.0) as u64)
        );
        let _ = write!(
            t,
            "  lost events in lockprof's reports: {} (Go demo), {} (containerd), {} (ping-pong); ctr commands: {} ok, {} failed in {:.0} s",
            self.demo_probed.losses,
            self.daemon_probed.losses,
            self.pong_probed.losses,
            self.load.ok,
            self.load.failed,
            self.load.seconds
        );
        t
    }

    /// The `go` object of `target/bench/overhead.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "demo": { "args": DEMO_ARGS, "pull_all_ms": self.demo_ms.to_json(),
                      "probes": self.demo_probed.to_json() },
            "containerd": { "ctr_workers": CTR_WORKERS, "window_s": self.daemon_window.as_secs(),
                            "grpc_calls_per_s": self.daemon_rps.to_json(),
                            "probes": self.daemon_probed.to_json(),
                            "ctr_ok": self.load.ok, "ctr_failed": self.load.failed },
            "parkpong": { "cpu_ns_per_round_trip": self.pong_cpu_ns.to_json(),
                          "probes": self.pong_probed.to_json() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_pair_each_profiled_value_with_its_own_round() {
        let mut p = Pairs::default();
        p.push(false, 100.0);
        p.push(true, 110.0);
        p.push(true, 200.0);
        p.push(false, 250.0);
        assert_eq!(p.ratios(), vec![1.1, 0.8]);
    }

    #[test]
    fn demo_runs_outnumber_the_rounds() {
        assert_eq!(demo_runs(Plan::new(true, None)), 6);
        assert_eq!(demo_runs(Plan::new(false, Some(4))), 8);
    }
}

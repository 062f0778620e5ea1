//! Row (b) of `bench overhead`: `futex-pingpong` (two threads handing one futex word
//! back and forth, every futex call blocks or wakes a blocked thread) with nothing,
//! lockprof, lockprof `--no-holders`, the bpftrace peer and the futex tracepoints'
//! floor attached in turn
//! between unattached windows (`windows::schedule`, the tracers rotating).
//!
//! Owns what a window measures on futex-pingpong: the round trip of a timed run, and
//! for an attached window the BPF time of the tracer's programs per futex call of
//! futex-pingpong over a second run with the kernel's run-time statistics on
//! (`BpfRuns::over`, the same reading as (c): the statistics cost every program run
//! two clock reads, so they stay off in the timed run). One futex-pingpong process
//! serves a window: started with `--on-stdin 1`, it makes no futex call until asked
//! for a run, so every tracer — lockprof by `record -p` like the bpftrace scripts,
//! which filter by pid — is attached before the first one. Its two threads share one
//! CPU (see `Target::start`). Must not: render, or decide
//! the order of windows.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::attach::{Attached, Tracer};
use super::bpf_fds::BpfRuns;
use super::daemon::COST_WINDOW;
use super::overhead::{Plan, each_window};
use super::windows::Rounds;
use crate::report::LockReport;
use crate::run::release_bin;

/// What is attached in turn in (b): lockprof also without holder tracking, whose
/// context-switch probe runs at every hand-over here (one switch per two futex calls).
pub const ATTACHED: [Tracer; 4] = [
    Tracer::Lockprof,
    Tracer::LockprofNoHolders,
    Tracer::Bpftrace,
    Tracer::Floor,
];

/// The timed run of each window, seconds.
pub const RUN_SECONDS: u64 = 2;

#[derive(Default, Debug)]
pub struct PingPong {
    /// futex-pingpong's round trip in each window's timed run, ns.
    pub rtt_ns: Rounds,
    /// BPF time of the tracer's programs per futex call of futex-pingpong, ns (attached
    /// windows only, statistics on): all its programs, over the calls futex-pingpong
    /// counted itself.
    pub bpf_ns_per_call: Rounds,
    /// The machine's futex calls (runs of the tracer's futex entry program, as in (c))
    /// per futex call of futex-pingpong over the same run: near 1 when nothing else on
    /// the machine calls futex; above, the tracer's programs also ran on others' calls.
    pub machine_calls_per_call: Rounds,
    /// The tracer's futex (tracepoint) programs' BPF time per run of its futex entry
    /// program, ns: (c)'s "per futex call" figure, every futex call of the machine in
    /// the denominator.
    pub futex_bpf_ns_per_machine_call: Rounds,
    /// futex-pingpong's futex calls per second in that run.
    pub calls_per_s: Rounds,
    /// Events lost in lockprof's reports.
    pub losses: u64,
    /// bpftrace windows whose bpftrace had to be killed after SIGINT.
    pub peer_killed: u64,
}

/// What one futex-pingpong run printed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    rtt_ns: f64,
    /// Its futex calls: waits and wakes.
    calls: f64,
    seconds: f64,
}

impl Run {
    fn parse(stdout: &[u8]) -> Result<Run> {
        let field = |name| super::result_field(stdout, "futex-pingpong", "round_trips", name);
        Ok(Run {
            rtt_ns: field("rtt_ns")?,
            calls: field("wait_calls")? + field("wake_calls")?,
            seconds: field("seconds")?,
        })
    }
}

/// A futex-pingpong waiting on its stdin for runs; killed when dropped.
struct Target {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Target {
    fn start() -> Result<Target> {
        let cpu = last_cpu()?;
        // Both threads on one CPU (`taskset` execs the program: the pid is its own).
        // Left to the scheduler they are sometimes placed on two CPUs, where every
        // hand-over waits for the other CPU to wake from idle: a run's round trip then
        // jumps from ≈ 1.7 µs to 4–70 µs on this VM, with or without a tracer, and its
        // neighbours' ratios with it (0.08..8 in a 5-round run). On one CPU a round trip
        // is two wakes and two switches, and a tracer's time per call adds to it.
        let mut child = Command::new("taskset")
            .args(["-c", &cpu.to_string()])
            .arg(release_bin("futex-pingpong"))
            .args(["--on-stdin", "1", "--seconds", &RUN_SECONDS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start futex-pingpong under taskset")?;
        let stdin = child.stdin.take().context("futex-pingpong stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("futex-pingpong stdout")?);
        Ok(Target {
            child,
            stdin: Some(stdin),
            stdout,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One run, of `RUN_SECONDS` or of `length`; returns once it printed its line.
    fn run(&mut self, length: Option<Duration>) -> Result<Run> {
        let stdin = self
            .stdin
            .as_mut()
            .context("futex-pingpong's stdin is closed")?;
        let line = length
            .map(|d| d.as_millis().to_string())
            .unwrap_or_default();
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .context("ask futex-pingpong for a run")?;
        let mut out = String::new();
        loop {
            let mut l = String::new();
            if self.stdout.read_line(&mut l)? == 0 {
                let status = self.child.wait()?;
                bail!("futex-pingpong exited during a run ({status}); it printed:\n{out}");
            }
            let done = l.starts_with("{\"round_trips\"");
            out.push_str(&l);
            if done {
                return Run::parse(out.as_bytes());
            }
        }
    }

    /// Closes its stdin and waits until it has exited.
    fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait().context("wait for futex-pingpong")?;
        if !status.success() {
            bail!("futex-pingpong failed ({status})");
        }
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The CPU futex-pingpong runs on: the last this process may run on (CPU 0 takes more
/// of the machine's interrupts).
pub(super) fn last_cpu() -> Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    last_allowed_cpu(&status).context("no Cpus_allowed_list in /proc/self/status")
}

/// The highest CPU of a `status` file's `Cpus_allowed_list` (`0-3,8-11`).
fn last_allowed_cpu(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .split([',', '-'])
        .filter_map(|c| c.trim().parse().ok())
        .max()
}

/// `plan.pingpong_runs` rounds, each window one futex-pingpong process.
pub fn measure(plan: Plan, dir: &Path) -> Result<PingPong> {
    let report = dir.join("overhead-pingpong.json");
    let mut p = PingPong::default();
    let rounds = Plan {
        rounds: plan.pingpong_runs,
        ..plan
    };
    each_window(rounds, "(b) futex ping-pong", &ATTACHED, |t| {
        let mut target = Target::start()?;
        let a = Attached::start(t, target.pid(), &report)?;
        // As in (a) and (c): what being attached costs, not what starting costs
        // (lockprof re-reads a new target's maps every 10 ms for its first second).
        // Nothing attached waits as long, so every window is the same.
        std::thread::sleep(plan.settle);
        let timed = target.run(None)?;
        p.rtt_ns.push(t, timed.rtt_ns);
        if let Some(tracer) = a.pid() {
            let (run, bpf) = BpfRuns::over(tracer, || target.run(Some(COST_WINDOW)))?;
            p.bpf_ns_per_call.push(t, bpf.run_ns as f64 / run.calls);
            p.machine_calls_per_call
                .push(t, bpf.futex.calls as f64 / run.calls);
            p.futex_bpf_ns_per_machine_call
                .push(t, bpf.futex.run_ns as f64 / bpf.futex.calls.max(1) as f64);
            p.calls_per_s.push(t, run.calls / run.seconds.max(1e-9));
        }
        let detached = a.stop()?;
        p.peer_killed += u64::from(detached.killed);
        target.finish()?;
        if t.is_lockprof() {
            p.losses += LockReport::read(&report)?.lost_events();
        }
        Ok(())
    })?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futex_pingpong_runs_on_the_last_allowed_cpu() {
        let status =
            |list| format!("Name:\txtask\nCpus_allowed:\tff\nCpus_allowed_list:\t{list}\n");
        assert_eq!(last_allowed_cpu(&status("0-1")), Some(1));
        assert_eq!(last_allowed_cpu(&status("0-3,8-11,5")), Some(11));
        assert_eq!(last_allowed_cpu(&status("6")), Some(6));
        assert_eq!(last_allowed_cpu("Name:\txtask\n"), None);
        assert!(last_cpu().is_ok());
    }

    #[test]
    fn a_run_line_gives_the_round_trip_and_the_futex_calls() {
        let out = b"noise\n{\"round_trips\":10,\"rtt_ns\":9413,\"wait_calls\":12,\"blocked_waits\":12,\"wake_calls\":20,\"seconds\":1.002}\n";
        assert_eq!(
            Run::parse(out).unwrap(),
            Run {
                rtt_ns: 9413.0,
                calls: 32.0,
                seconds: 1.002
            }
        );
        assert!(Run::parse(b"").is_err());
        let e = Run::parse(b"{\"round_trips\":1,\"rtt_ns\":5,\"wait_calls\":1}").unwrap_err();
        assert!(e.to_string().contains("'wake_calls'"), "{e}");
    }
}

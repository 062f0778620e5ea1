//! Attaching a tracer to a running process for one measured window, and detaching it:
//! `lockprof record -p PID`, the bpftrace peer script, the futex tracepoints' floor (a
//! bpftrace program that only filters), or nothing (the baseline).
//!
//! Owns: starting each tracer and waiting until its probes are attached (lockprof's
//! "recording" line, bpftrace's `BEGIN` line), stopping it with SIGINT and waiting
//! for its report, lockprof's peak RSS (`VmHWM`, sampled until it exits) and the BPF
//! maps it holds (read from its fdinfo while attached). Must not: time anything — the
//! callers measure between `start` and `stop`, so attach and detach stay outside the
//! measured part of a window.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::kmem::MapInfo;
use crate::run::release_bin;

/// What is attached during a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracer {
    /// Nothing: the baseline window.
    None,
    /// `lockprof record -p PID` with its defaults.
    Lockprof,
    /// `lockprof record -p PID --no-holders`: without the context-switch probe.
    LockprofNoHolders,
    /// `lockprof record -p PID --attach-method fentry` (part (v), in a VM: this
    /// machine kind's kernel refuses fentry).
    LockprofFentry,
    /// `lockprof record -p PID --attach-method syscall-tracepoints` (part (v), beside
    /// fentry in the same VM).
    LockprofTracepoints,
    /// The bpftrace futex-wait script ([`bpftrace_script`]).
    Bpftrace,
    /// The floor of any futex tracer here: bpftrace on the same two tracepoints as
    /// the peer, with programs that only compare the pid ([`floor_script`]).
    Floor,
}

impl Tracer {
    pub fn name(self) -> &'static str {
        match self {
            Tracer::None => "not attached",
            Tracer::Lockprof => "lockprof",
            Tracer::LockprofNoHolders => "lockprof --no-holders",
            Tracer::LockprofFentry => "lockprof --attach-method fentry",
            Tracer::LockprofTracepoints => "lockprof --attach-method syscall-tracepoints",
            Tracer::Bpftrace => "bpftrace",
            Tracer::Floor => "futex tracepoints, filter only",
        }
    }

    /// The name as a JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Tracer::None => "not_attached",
            Tracer::Lockprof => "lockprof",
            Tracer::LockprofNoHolders => "lockprof_no_holders",
            Tracer::LockprofFentry => "lockprof_fentry",
            Tracer::LockprofTracepoints => "lockprof_syscall_tracepoints",
            Tracer::Bpftrace => "bpftrace",
            Tracer::Floor => "floor",
        }
    }

    /// One of lockprof's configurations.
    pub fn is_lockprof(self) -> bool {
        matches!(
            self,
            Tracer::Lockprof
                | Tracer::LockprofNoHolders
                | Tracer::LockprofFentry
                | Tracer::LockprofTracepoints
        )
    }

    /// lockprof's options for this configuration (none for the peer and the floor).
    pub fn lockprof_args(self) -> &'static [&'static str] {
        match self {
            Tracer::LockprofNoHolders => &["--no-holders"],
            Tracer::LockprofFentry => &["--attach-method", "fentry"],
            Tracer::LockprofTracepoints => &["--attach-method", "syscall-tracepoints"],
            _ => &[],
        }
    }

    /// A bpftrace script (the peer or the floor).
    fn is_bpftrace(self) -> bool {
        matches!(self, Tracer::Bpftrace | Tracer::Floor)
    }
}

/// The peer: a futexctn-like bpftrace script, the way its users measure futex waits —
/// the wait time of each `FUTEX_WAIT`/`FUTEX_WAIT_BITSET` of `pid` as a histogram per
/// futex address. `BEGIN` runs once every probe is attached: that line is the signal.
/// `END` clears the maps instead of printing them: printing happens after the measured
/// window anyway, and on a busy daemon it once kept bpftrace from exiting for a minute.
pub fn bpftrace_script(pid: u32) -> String {
    format!(
        "BEGIN {{ printf(\"ready\\n\"); }}\n\
         tracepoint:syscalls:sys_enter_futex /pid == {pid} && ((args->op & 127) == 0 || (args->op & 127) == 9)/ \
         {{ @start[tid] = nsecs; @addr[tid] = args->uaddr; }}\n\
         tracepoint:syscalls:sys_exit_futex /pid == {pid} && @start[tid]/ \
         {{ @wait_ns[@addr[tid]] = hist(nsecs - @start[tid]); delete(@start[tid]); delete(@addr[tid]); }}\n\
         END {{ clear(@start); clear(@addr); clear(@wait_ns); }}\n"
    )
}

/// The floor: what attaching to `syscalls:sys_{enter,exit}_futex` costs before a
/// program does anything — the kernel's syscall-tracepoint path, which every task on
/// the machine takes for every syscall once a syscall tracepoint is enabled, and two
/// programs that compare the pid and return. No futex tracer on this kernel can cost
/// less (fentry is refused here), so lockprof's and the peer's figures are read
/// against it.
pub fn floor_script(pid: u32) -> String {
    format!(
        "BEGIN {{ printf(\"ready\\n\"); }}\n\
         tracepoint:syscalls:sys_enter_futex /pid == {pid}/ {{ }}\n\
         tracepoint:syscalls:sys_exit_futex /pid == {pid}/ {{ }}\n"
    )
}

/// A tracer attached to a process; killed when dropped without [`Attached::stop`] (a
/// window that failed must not leave a tracer attached behind it).
pub struct Attached {
    tracer: Tracer,
    child: Option<Child>,
}

/// What a tracer left after it stopped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Detached {
    /// Peak resident memory of the tracer process, KiB (0 for none).
    pub vm_hwm_kib: u64,
    /// The peer did not exit within [`STOP_TIMEOUT`] of SIGINT and was killed (its
    /// window's measurement, taken before, still stands).
    pub killed: bool,
}

/// How long a tracer may take to attach, or lockprof to write its report once stopped.
const ATTACH_TIMEOUT: Duration = Duration::from_mins(1);
/// How long the bpftrace peer may take to exit: it has nothing to write.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

impl Attached {
    /// Starts `tracer` on `pid` and returns once its probes are attached. `report` is
    /// where lockprof writes its JSON report.
    pub fn start(tracer: Tracer, pid: u32, report: &Path) -> Result<Attached> {
        let (mut cmd, ready) = match tracer {
            Tracer::None => {
                return Ok(Attached {
                    tracer,
                    child: None,
                });
            }
            t if t.is_lockprof() => {
                let _ = std::fs::remove_file(report);
                let mut c = Command::new(release_bin("lockprof"));
                c.args(["record", "-p", &pid.to_string(), "-o"])
                    .arg(report)
                    .args(tracer.lockprof_args());
                c.stdout(Stdio::null()).stderr(Stdio::piped());
                (c, "lockprof: recording")
            }
            _ => {
                let script = if tracer == Tracer::Floor {
                    floor_script(pid)
                } else {
                    bpftrace_script(pid)
                };
                let mut c = Command::new("bpftrace");
                c.args(["-e", &script])
                    // The histograms are printed at exit: not needed here.
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                (c, "ready")
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", tracer.name()))?;
        // Read the tracer's output on a thread (so a chatty tracer never blocks on a
        // full pipe) and hear from it when the ready line came.
        let out: Box<dyn std::io::Read + Send> = if tracer.is_lockprof() {
            Box::new(child.stderr.take().context("lockprof stderr")?)
        } else {
            Box::new(child.stdout.take().context("bpftrace stdout")?)
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = false;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !seen && line.starts_with(ready) {
                    seen = true;
                    let _ = tx.send(());
                }
            }
        });
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("{} exited before attaching ({status})", tracer.name());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} did not attach within {}s",
                    tracer.name(),
                    ATTACH_TIMEOUT.as_secs()
                );
            }
        }
        Ok(Attached {
            tracer,
            child: Some(child),
        })
    }

    /// The tracer's process id (`None` for no tracer).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The BPF maps the tracer holds right now (lockprof only; empty otherwise).
    pub fn maps(&self) -> Vec<MapInfo> {
        self.child
            .as_ref()
            .map(|c| super::kmem::maps_of_pid(c.id()))
            .unwrap_or_default()
    }

    /// Stops the tracer (SIGINT, as Ctrl-C) and waits until it has exited, sampling its
    /// peak RSS on the way (report building is part of what it costs).
    pub fn stop(mut self) -> Result<Detached> {
        let Some(mut child) = self.child.take() else {
            return Ok(Detached::default());
        };
        let pid = child.id();
        let mut hwm = vm_hwm_kib(pid).unwrap_or(0);
        let status = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .context("run 'kill -INT'")?;
        if !status.success() {
            bail!("'kill -INT {pid}' failed");
        }
        let limit = if self.tracer.is_bpftrace() {
            STOP_TIMEOUT
        } else {
            ATTACH_TIMEOUT
        };
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            hwm = hwm.max(vm_hwm_kib(pid).unwrap_or(0));
            if Instant::now() > deadline && self.tracer.is_bpftrace() {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(Detached {
                    vm_hwm_kib: hwm,
                    killed: true,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} did not exit within {}s of SIGINT",
                    self.tracer.name(),
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            bail!("{} failed after SIGINT ({status})", self.tracer.name());
        }
        Ok(Detached {
            vm_hwm_kib: hwm,
            killed: false,
        })
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU time of a process (all its live threads), milliseconds: the scheduler's own
/// nanosecond count of each thread's time on CPU (`/proc/PID/task/TID/schedstat`),
/// else user + system time from `/proc/PID/stat` (`USER_HZ` 100: 10 ms steps, too
/// coarse for a tracer's few milliseconds per second). BPF programs on a process's
/// own syscalls run in its context and are charged here.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    schedstat_ms(pid).or_else(|| stat_ms(pid))
}

/// The live threads' CPU time from the scheduler's nanosecond counts; a thread that
/// exits while they are read is skipped.
fn schedstat_ms(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(text) = task.and_then(|t| std::fs::read_to_string(t.path().join("schedstat")))
        else {
            continue;
        };
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e6)
}

fn stat_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized comm, which may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 * 10.0)
}

/// `VmHWM` (peak resident set) of a process, KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// A `kB` field of `/proc/PID/status`.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    status_field(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        field,
    )
}

/// The voluntary context switches of a process's live threads so far (each thread's
/// `voluntary_ctxt_switches` in `/proc/PID/task/TID/status`): how often they blocked —
/// in a daemon under load, mostly on each other's locks. Counted by the kernel
/// whatever is attached, so comparable between attached and unattached windows. A
/// thread that exits while they are read is skipped.
pub fn voluntary_switches(pid: u32) -> Option<u64> {
    let mut n = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(text) = task.and_then(|t| std::fs::read_to_string(t.path().join("status"))) else {
            continue;
        };
        n += status_field(&text, "voluntary_ctxt_switches:")?;
    }
    Some(n)
}

/// The number after `field` at the start of a line of a `status` file.
fn status_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_script_filters_by_pid_and_op() {
        let s = bpftrace_script(4242);
        assert_eq!(s.matches("pid == 4242").count(), 2);
        assert!(s.contains("(args->op & 127) == 0 || (args->op & 127) == 9"));
        assert!(s.contains("hist(nsecs - @start[tid])"));
        assert!(s.starts_with("BEGIN"));
        assert!(s.contains("END { clear(@start); clear(@addr); clear(@wait_ns); }"));
    }

    #[test]
    fn floor_script_only_filters_on_the_peers_tracepoints() {
        let s = floor_script(4242);
        assert!(s.starts_with("BEGIN"));
        for tp in ["sys_enter_futex", "sys_exit_futex"] {
            assert!(
                bpftrace_script(4242).contains(&format!("tracepoint:syscalls:{tp} /pid == 4242"))
            );
            assert!(s.contains(&format!("tracepoint:syscalls:{tp} /pid == 4242/ {{ }}")));
        }
        // Nothing but the ready line runs: no map, no clock.
        assert!(!s.contains('@') && !s.contains("nsecs"));
    }

    #[test]
    fn reads_our_own_cpu_time() {
        // This thread's own CPU time, from the kernel: the spin below lasts 60 ms of
        // it, not of wall time, so a busy machine (CI's other jobs on two CPUs)
        // makes it longer instead of failing the test.
        let own_ns = || {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
                .expect("/proc/thread-self/schedstat")
        };
        let t0 = cpu_ms(std::process::id()).unwrap();
        let (from, deadline) = (
            own_ns(),
            std::time::Instant::now() + Duration::from_secs(20),
        );
        let mut x = 0u64;
        while own_ns() < from + 60_000_000 && std::time::Instant::now() < deadline {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        let t1 = cpu_ms(std::process::id()).unwrap();
        // Other test threads that exit meanwhile leave the sum of live threads; their
        // few milliseconds are what the margin is for.
        assert!(t1 >= t0 + 30.0, "{t0} -> {t1} ms after 60 ms of spinning");
        assert!(cpu_ms(u32::MAX).is_none());
        // The nanosecond count of the live threads never exceeds the 10 ms ticks of
        // all of them (the test runner's threads that exited count only in the
        // ticks), beyond the ticks' granularity.
        let pid = std::process::id();
        let fine = schedstat_ms(pid).unwrap();
        let after = stat_ms(pid).unwrap();
        assert!(fine <= after + 20.0, "{fine} vs {after} ms");
    }

    #[test]
    fn counts_our_own_voluntary_switches() {
        let before = voluntary_switches(std::process::id()).unwrap();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let after = voluntary_switches(std::process::id()).unwrap();
        assert!(after >= before + 5, "{before} -> {after} after 5 sleeps");
        assert!(voluntary_switches(u32::MAX).is_none());
        // Not the `nonvoluntary_ctxt_switches` line, which contains the field's name.
        let status = "nonvoluntary_ctxt_switches:\t7\nvoluntary_ctxt_switches:\t3\n";
        assert_eq!(status_field(status, "voluntary_ctxt_switches:"), Some(3));
    }

    #[test]
    fn reads_our_own_peak_rss() {
        let kib = vm_hwm_kib(std::process::id()).unwrap();
        assert!(kib > 100, "{kib} KiB");
        assert!(vm_hwm_kib(u32::MAX).is_none());
    }
}

//! The 1-minute soak (CI's version of `cargo xtask bench soak --minutes N`): `lockprof
//! record --interval 1s` on `lock-churn` (threads created and destroyed continuously,
//! thousands of lock addresses, children forked and exec'd) for a minute, lockprof's
//! resident memory sampled once a second from outside. Asserts memory bounds and a
//! complete report, never a timing.
//!
//! Root only (`#[ignore]`): run by `cargo xtask test`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{demo_bin, lockprof, require_root, tempdir};
use profiler::report::Report;

/// `VmRSS` of a process, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn a_minute_of_churn_keeps_memory_flat_and_the_report_complete() {
    const SECONDS: u64 = 60;
    require_root();
    let dir = tempdir();
    let json = dir.join("soak.json");
    let mut child = Command::new(lockprof())
        .args(["record", "-q", "--interval", "1s", "-o"])
        .arg(&json)
        .arg("--")
        .arg(demo_bin("lock-churn"))
        .args(["--seconds", &SECONDS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start lockprof");
    let pid = child.id();
    let mut samples = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for lockprof") {
            break status;
        }
        if let Some(kib) = rss_kib(pid) {
            samples.push(kib);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(status.success(), "lockprof record failed: {status}");

    // Leave out the first second (loading, first symbolization) and the last sample
    // (the final report being built): what is left is the steady state.
    assert!(
        samples.len() >= 40,
        "only {} samples of a {SECONDS}-second recording",
        samples.len()
    );
    let steady = &samples[1..samples.len() - 1];
    let q = steady.len() / 4;
    let (first, last) = (mean(&steady[..q]), mean(&steady[steady.len() - q..]));
    eprintln!(
        "lockprof RSS: first quarter {:.1} MiB, last quarter {:.1} MiB, max {:.1} MiB",
        first / 1024.0,
        last / 1024.0,
        *steady.iter().max().expect("samples") as f64 / 1024.0
    );
    // Flat: what lockprof keeps must not grow with the threads, addresses and
    // processes it has seen (a slack of 8 MiB for allocator noise).
    assert!(
        last <= 1.25 * first + 8.0 * 1024.0,
        "lockprof's RSS grew from {:.1} MiB (first quarter) to {:.1} MiB (last quarter): {samples:?}",
        first / 1024.0,
        last / 1024.0
    );

    let report: Report = profiler::report::json::read(&json).expect("read the soak report");
    let children = report.targets.len();
    assert!(
        children > 20,
        "the forked and exec'd children were not followed: {children} targets"
    );
    assert!(
        report.totals.waits > 0 && !report.sites.is_empty(),
        "no contention recorded"
    );
    let intervals = report.timeline.as_ref().map_or(0, |t| t.intervals.len()) as u64;
    assert!(
        intervals + 2 >= SECONDS,
        "the timeline has {intervals} intervals for a {SECONDS}-second recording"
    );
}

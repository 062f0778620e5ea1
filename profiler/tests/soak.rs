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
    // A child every 250 ms: ~240 followed, the list bounded to the last 64 exited
    // (plus the parent, and a child still alive at the end).
    let children = report.targets.len() as u64 + report.exited_children_not_listed;
    assert!(
        children > 100,
        "the forked and exec'd children were not followed: {children} targets"
    );
    assert!(
        report.targets.len() <= 64 + 3,
        "the target list grows with every exited child: {} listed",
        report.targets.len()
    );
    // Threads exit right after waking a waiter here: the waker's row outlives it, so
    // what the holder did in the window is still known.
    let l = &report.losses;
    assert_eq!(
        (
            l.holder_windows_lost,
            l.edge_map_full,
            l.wait_map_full,
            l.wake_map_full,
            l.target_map_full,
            l.inflight_map_full
        ),
        (0, 0, 0, 0, 0, 0),
        "events lost under churn: {l:?}"
    );
    assert!(
        report.totals.waits > 0 && !report.sites.is_empty(),
        "no contention recorded"
    );
    // Complete: the timeline covers the recording without a gap (a refresh that
    // comes late on a loaded machine makes one longer interval, which loses nothing).
    let intervals = report
        .timeline
        .as_ref()
        .map_or(&[][..], |t| &t.intervals[..]);
    assert!(intervals.len() >= 10, "{} intervals", intervals.len());
    let mut end = 0;
    for i in intervals {
        assert_eq!(i.start_ns, end, "a gap in the timeline: {intervals:?}");
        end = i.start_ns + i.duration_ns;
    }
    assert!(
        end as f64 >= 0.99 * report.duration_ns as f64,
        "the timeline covers {end} of {} ns",
        report.duration_ns
    );
}

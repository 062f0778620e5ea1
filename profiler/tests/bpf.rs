//! Root-only tests of the kernel path: real probes, real processes.
//!
//! Each test is `#[ignore]`d so `cargo test` stays unprivileged; `cargo xtask test`
//! runs them as root with one test thread (the probes are shared kernel state and the
//! timings are real), and `require_root` turns a missing privilege into a failure.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    assert_every_futex_op_seen, assert_held_across_sleep, demo_bin, find_site, fixture_line,
    record, require_root, tag_line, top_sites,
};
use profiler::report::{TargetOrigin, WaitKind};

const FIXTURE_SRC: &str = "demo-targets/src/bin/lockprof-fixture.rs";

/// The fixture's own measurement of the time it spent inside `lock()`.
fn fixture_measured_wait_ns(stdout: &str) -> u64 {
    fixture_line(stdout)["hot_wait_ns"]
        .as_u64()
        .expect("hot_wait_ns")
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn launch_ranks_the_contended_site_first_with_accurate_wait() {
    require_root();
    // A blocked wait ends at the thread's switch-in when holder tracking stamps it,
    // else at the clock read at syscall exit: both must time it right.
    for holders in [&[][..], &["--no-holders"][..]] {
        contended_site_ranks_first_with_accurate_wait(holders);
    }
}

fn contended_site_ranks_first_with_accurate_wait(extra: &[&str]) {
    let fixture = demo_bin("lockprof-fixture");
    let mut args = extra.to_vec();
    args.extend([
        "--",
        fixture.to_str().expect("a UTF-8 build path"),
        "--threads",
        "4",
        "--iters",
        "250",
        "--hold-us",
        "400",
    ]);
    let r = record(&args);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);

    let line = tag_line(FIXTURE_SRC, "fixture.hot");
    let (rank, site) = find_site(&r.report, "hot_section", "lockprof-fixture.rs", line)
        .unwrap_or_else(|| panic!("no site at line {line}:\n{}", top_sites(&r.report, 6)));
    assert_eq!(
        rank,
        0,
        "hot site must rank #1:\n{}",
        top_sites(&r.report, 6)
    );
    assert_eq!(site.kind, WaitKind::Mutex);
    assert!(site.contention);
    assert_eq!(site.lock_impl, "rust-std");
    assert_eq!(site.threads.len(), 4, "all four workers waited there");
    assert!(
        site.threads.iter().all(|t| t.name.starts_with("fixture-")),
        "{:?}",
        site.threads
    );

    // lockprof times the futex syscall; the fixture times the whole lock() call (which
    // adds only the uncontended fast path and a short spin): they must agree ±15 %.
    let measured = fixture_measured_wait_ns(&r.stdout) as f64;
    let seen = site.total_wait_ns as f64;
    let ratio = seen / measured;
    assert!(
        (0.85..=1.15).contains(&ratio),
        "{extra:?}: lockprof saw {seen} ns, the fixture measured {measured} ns (ratio {ratio:.3})"
    );

    let launched = &r.report.targets[0];
    assert_eq!(launched.origin, TargetOrigin::Launch);
    assert_eq!(launched.exit_code, Some(0));
    assert_eq!(r.report.losses.kernel_total(), 0, "{:?}", r.report.losses);
}

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// The kernel's BPF run-time statistics cost every BPF program of the host two clock
/// reads a run, so lockprof turns them on (`BPF_ENABLE_STATS`, machine-wide until its
/// fd closes) only for `--probe-time`. The kernel counts runs only while they are on,
/// so a report's run count says whether they were.
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn probe_run_time_is_measured_only_with_probe_time() {
    require_root();
    assert_eq!(
        std::fs::read_to_string(STATS_SYSCTL)
            .expect("sysctl")
            .trim(),
        "0",
        "the statistics are on for the whole machine: this test cannot tell who turned them on"
    );
    let storm = demo_bin("futex-storm");
    let run = |extra: &[&str]| {
        let mut args = vec!["-q"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "--",
            storm.to_str().unwrap(),
            "--threads",
            "2",
            "--duration-ms",
            "300",
        ]);
        let r = record(&args);
        assert!(r.output.status.success(), "{}", r.stderr);
        assert!(r.report.totals.eagain + r.report.totals.waits > 0);
        r.report.probe_cost
    };

    let cost = run(&[]);
    assert!(
        !cost.run_time_measured(),
        "statistics on without --probe-time: {cost:?}"
    );
    assert!(
        cost.kernel_memory_bytes > 0,
        "the memory figure needs no statistics"
    );

    let cost = run(&["--probe-time"]);
    assert!(
        cost.run_time_measured() && cost.bpf_run_ns > 0,
        "--probe-time measured nothing: {cost:?}"
    );

    // Turned off again when that lockprof exited.
    let cost = run(&[]);
    assert!(
        !cost.run_time_measured(),
        "statistics left on by the previous lockprof: {cost:?}"
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn launch_forwards_the_command_exit_code() {
    require_root();
    let fixture = demo_bin("lockprof-fixture");
    let r = record(&[
        "-q",
        "--",
        fixture.to_str().unwrap(),
        "--threads",
        "2",
        "--iters",
        "20",
        "--exit-code",
        "3",
    ]);
    assert_eq!(r.output.status.code(), Some(3), "stderr: {}", r.stderr);
    assert_eq!(r.report.targets[0].exit_code, Some(3));
    // A command that cannot be run is a clear error.
    let out = Command::new(common::lockprof())
        .args([
            "record",
            "-q",
            "--",
            "/nonexistent/lockprof-no-such-program",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot run '/nonexistent/lockprof-no-such-program'"),
        "{err}"
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn attach_to_a_running_process_sees_threads_created_later() {
    require_root();
    // The fixture sleeps before creating its workers: we attach to the bare process,
    // and every wait we must see happens on threads created after attaching.
    let mut child = Command::new(demo_bin("lockprof-fixture"))
        .args([
            "--start-delay-ms",
            "700",
            "--threads",
            "3",
            "--iters",
            "150",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let pid = child.id().to_string();
    let r = record(&["-p", &pid]);
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    assert_eq!(r.report.targets[0].origin, TargetOrigin::Attach);
    assert!(
        r.report.targets[0].exited,
        "recording ends when the target exits"
    );

    let line = tag_line(FIXTURE_SRC, "fixture.hot");
    let (rank, site) = find_site(&r.report, "hot_section", "lockprof-fixture.rs", line)
        .unwrap_or_else(|| panic!("no site at line {line}:\n{}", top_sites(&r.report, 6)));
    assert_eq!(rank, 0, "{}", top_sites(&r.report, 6));
    assert_eq!(site.threads.len(), 3);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn launch_follows_child_processes() {
    require_root();
    // The shell forks the fixture: only the child contends.
    let fixture = demo_bin("lockprof-fixture");
    let script = format!("{} --threads 3 --iters 100; exit 0", fixture.display());
    let r = record(&["-q", "--", "/bin/sh", "-c", &script]);
    assert!(r.output.status.success(), "{}", r.stderr);
    let line = tag_line(FIXTURE_SRC, "fixture.hot");
    assert!(
        find_site(&r.report, "hot_section", "lockprof-fixture.rs", line).is_some(),
        "child's site missing:\n{}",
        top_sites(&r.report, 6)
    );
    assert!(
        r.report
            .targets
            .iter()
            .any(|t| t.origin == TargetOrigin::Child && t.comm.starts_with("lockprof-fixtur")),
        "child target listed: {:?}",
        r.report.targets
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn sigint_and_sigterm_stop_cleanly_and_keep_the_report() {
    require_root();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut target = Command::new(demo_bin("lockprof-fixture"))
            .args(["--threads", "3", "--iters", "100000", "--hold-us", "200"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let dir = common::tempdir();
        let json = dir.join("r.json");
        let lockprof = Command::new(common::lockprof())
            .args(["record", "-q", "-o"])
            .arg(&json)
            .args(["-p", &target.id().to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(lockprof.id() as i32, sig) };
        let out = lockprof.wait_with_output().unwrap();
        let _ = target.kill();
        let _ = target.wait();
        assert!(
            out.status.success(),
            "signal {sig}: lockprof exit {:?}",
            out.status
        );
        let report = profiler::report::json::read(&json).expect("report written after the signal");
        assert!(
            report.totals.waits > 100,
            "signal {sig}: {} waits",
            report.totals.waits
        );
        assert!(
            !report.targets[0].exited,
            "the target outlives the recording"
        );
    }
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn nonexistent_pid_is_a_clear_error() {
    require_root();
    let out = Command::new(common::lockprof())
        .args(["record", "-p", "999999999", "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "lockprof: error: no process with PID '999999999'"
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn duration_stops_an_attached_recording() {
    require_root();
    let mut target = Command::new(demo_bin("lockprof-fixture"))
        .args(["--threads", "2", "--iters", "100000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let r = record(&["-q", "--duration", "800ms", "-p", &target.id().to_string()]);
    let elapsed = started.elapsed();
    let _ = target.kill();
    let _ = target.wait();
    assert!(r.output.status.success(), "{}", r.stderr);
    // Duration is wall time of the probes being attached.
    let secs = r.report.duration_ns as f64 / 1e9;
    assert!((0.75..2.0).contains(&secs), "recorded {secs} s");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert!(r.report.totals.waits > 0);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn every_futex_wait_and_wake_op_is_seen_and_named() {
    require_root();
    let r = record(&["-q", "--", demo_bin("futex-ops").to_str().unwrap()]);
    assert!(r.output.status.success(), "{}", r.stderr);
    // This kernel (6.7+) has every call: all ten scenarios must run.
    assert_eq!(
        assert_every_futex_op_seen(&r.report, &fixture_line(&r.stdout)),
        10
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn short_lived_process_is_fully_symbolized() {
    // Regression: a ~100 ms process exited before the next 100 ms maps poll, after the
    // loader had mapped libc, so libc frames (and with them the site) went unresolved.
    require_root();
    let fixture = demo_bin("lockprof-fixture");
    let r = record(&[
        "-q",
        "--",
        fixture.to_str().unwrap(),
        "--threads",
        "2",
        "--iters",
        "40",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr);
    assert_eq!(
        r.report.losses.unsymbolized_frames,
        0,
        "{}",
        top_sites(&r.report, 4)
    );
    let line = tag_line(FIXTURE_SRC, "fixture.hot");
    let (rank, site) = find_site(&r.report, "hot_section", "lockprof-fixture.rs", line)
        .unwrap_or_else(|| panic!("{}", top_sites(&r.report, 4)));
    assert_eq!((rank, site.kind), (0, WaitKind::Mutex));
}

const FORWARDER_SRC: &str = "demo-targets/src/forwarder.rs";

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn forwarder_herd_has_wasted_wakeups_and_named_wakers() {
    require_root();
    let builds = 384u64;
    let demo = demo_bin("demo-targets");
    let run = |variant: &str| {
        let b = builds.to_string();
        let r = record(&[
            "-q",
            "--",
            demo.to_str().unwrap(),
            "forwarder",
            variant,
            "--builds",
            &b,
            "--calls",
            "64",
            "--call-gap-us",
            "0",
        ]);
        assert!(r.output.status.success(), "{variant}: {}", r.stderr);
        r
    };

    // Before: every (un)registration and every finished lookup wakes all waiters, most
    // of whom find nothing and wait again on the same futex.
    let before = run("before");
    let line = tag_line(FORWARDER_SRC, "fwd.before.map_read");
    let (_, site) = find_site(&before.report, "Before::contains", "forwarder.rs", line)
        .unwrap_or_else(|| panic!("{}", top_sites(&before.report, 6)));
    // The herd's wasted wakeups, at the RwLock re-check and the Condvar wait together.
    // Measured on 2 cores with these knobs: 122–178 per build over four runs (47k–68k
    // for 384 builds), later 80–208 per build (30.8k–80k) across CI runs and loads;
    // with `--calls 32` it ranged 80–228. The bar, 50 per build, sits well below
    // that and far above the fixed build's 0 (asserted below).
    let wasted: u64 = before
        .report
        .sites
        .iter()
        .filter(|s| {
            s.file
                .as_deref()
                .is_some_and(|f| f.ends_with("forwarder.rs"))
                && matches!(s.kind, WaitKind::RwlockRead | WaitKind::Condvar)
        })
        .map(|s| s.wasted_wakeups)
        .sum();
    assert!(
        wasted >= 50 * builds,
        "{wasted} wasted wakeups for {builds} builds; re-check site: {} of {} waits",
        site.wasted_wakeups,
        site.waits
    );
    let wakers: Vec<&str> = site
        .woken_by
        .iter()
        .filter_map(|w| w.function.as_deref())
        .collect();
    assert!(
        wakers.iter().any(|f| f.ends_with("::register")),
        "wakers: {wakers:?}"
    );

    // After: each lookup waits on its own slot and is woken once, by its registration.
    let after = run("after");
    let line = tag_line(FORWARDER_SRC, "fwd.after.slot_wait");
    let (_, slot) = after
        .report
        .sites
        .iter()
        .enumerate()
        .find(|(_, s)| {
            s.line == Some(line)
                && s.file
                    .as_deref()
                    .is_some_and(|f| f.ends_with("forwarder.rs"))
        })
        .unwrap_or_else(|| panic!("{}", top_sites(&after.report, 6)));
    assert_eq!(slot.kind, WaitKind::Condvar);
    assert_eq!(slot.wasted_wakeups, 0, "{slot:?}");
    let top_waker = slot
        .woken_by
        .first()
        .and_then(|w| w.function.as_deref())
        .unwrap_or("?");
    assert!(top_waker.ends_with("::register"), "woken by {top_waker}");
}

const HOLDER_SRC: &str = "demo-targets/src/bin/holder-fixture.rs";

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn holder_blocking_under_the_lock_is_reported_with_its_syscalls() {
    require_root();
    let bin = demo_bin("holder-fixture");
    let (rounds, retries) = (20u64, 5u64);
    let r = record(&[
        "-q",
        // The holder's failed sends are counted only on request (a hook on every
        // syscall exit).
        "--syscall-errors",
        "--",
        bin.to_str().unwrap(),
        "--rounds",
        &rounds.to_string(),
        "--retries",
        &retries.to_string(),
        "--backoff-us",
        "2000",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr);
    let line = tag_line(HOLDER_SRC, "holder.waiter");
    let (_, site) = find_site(
        &r.report,
        "holder_fixture::waiter",
        "holder-fixture.rs",
        line,
    )
    .unwrap_or_else(|| panic!("{}", top_sites(&r.report, 4)));
    assert!(site.waits >= rounds / 2, "{} waits", site.waits);
    let waker = site.woken_by.first().expect("the waiter has a waker");
    assert!(
        waker
            .function
            .as_deref()
            .is_some_and(|f| f.starts_with("holder_fixture::") && !f.ends_with("::waiter")),
        "woken by {:?}",
        waker.function
    );
    // The holder sleeps between retries with the lock held: off CPU for most of the
    // window, in a sleep, and its failed sends are counted with their errno.
    let held = &waker.held;
    assert_held_across_sleep(held);
    // Each window holds `retries` sleeps, each its own off-CPU period of the holder:
    // every one of them counts (the probe reads a holder's periods newest first and
    // stops at the first that ended before the window — never earlier).
    assert!(
        held.off_cpu_ns * 10 >= held.window_ns * 9,
        "holder off CPU {} of {} ns: not every sleep of the window was counted",
        held.off_cpu_ns,
        held.window_ns
    );
    assert!(
        held.failed_syscalls >= site.waits && held.failed_syscalls <= rounds * retries,
        "{} failed syscalls in {} windows",
        held.failed_syscalls,
        site.waits
    );
    let failure = held.last_failure.as_ref().expect("a failure is named");
    assert_eq!(
        (failure.syscall.as_str(), failure.errno.as_str()),
        ("sendto", "EAGAIN")
    );
    assert!(site.wake_to_run.count > 0 && site.wake_to_run.max_ns >= site.wake_to_run.avg_ns);
}

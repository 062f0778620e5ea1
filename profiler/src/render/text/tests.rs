//! Snapshots of whole text reports: the sample report, options, absurdly long names,
//! an empty and an inconsistent report.

use super::*;
use crate::render::fit::chars;
use crate::report::model::{
    AddressShare, Frame, Losses, ProbeCost, SCHEMA_VERSION, Site, StackShare, Target, TargetOrigin,
    Totals, WaitKind, WakerSite,
};
use crate::test_support::{held, sample_report, sum, thread};

/// A report whose only site has absurdly long names everywhere.
fn long_names_report() -> Report {
    let long_fn = "<alloc::sync::Arc<tokio::sync::rwlock::RwLock<std::collections::hash::map::\
            HashMap<my_service::routing::table::RouteKey, alloc::vec::Vec<my_service::routing::\
            table::Upstream>>>> as my_service::routing::resolver::ResolveUpstream<my_service::\
            config::ServiceConfiguration>>::resolve_upstream_with_retries_and_fallback::\
            {{closure}}::h9f3a61c0d2b4e587";
    let long_file = "/home/builder/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/\
            my-service-routing-extremely-long-crate-name-0.42.0/src/routing/resolver/\
            upstream_resolution_with_retries.rs";
    let site = Site {
        id: format!("rwlock-write|my-service|{long_fn}|{long_file}:1204"),
        kind: WaitKind::RwlockWrite,
        contention: true,
        lock_impl: "parking_lot".to_owned(),
        function: Some(long_fn.to_owned()),
        file: Some(long_file.to_owned()),
        line: Some(1_204),
        module: Some("/usr/local/bin/my-service".to_owned()),
        waits: 123_456_789,
        total_wait_ns: 7_384_000_000_000,
        avg_wait_ns: 59_811,
        min_wait_ns: 12,
        max_wait_ns: 4_000_000_000_000,
        p50_wait_ns: 999_999,
        p99_wait_ns: 59_999_999_999,
        threads: vec![thread(
            4_194_304,
            "a-thread-name-\u{1b}[31m-with-escapes",
            sum(123_456_789, 7_384_000_000_000, 4_000_000_000_000),
        )],
        addresses: (0..5)
            .map(|i| AddressShare {
                pid: 77,
                address: format!("0x7ffd5e3a{i:04x}"),
                wait: sum(1, 1, 1),
            })
            .collect(),
        stacks: vec![StackShare {
            wait: sum(123_456_789, 7_384_000_000_000, 4_000_000_000_000),
            frames: vec![
                Frame {
                    address: "0x7f0000001234".to_owned(),
                    function: Some(long_fn.to_owned()),
                    file: Some(long_file.to_owned()),
                    line: Some(1_204),
                    module: None,
                    module_offset: None,
                    inlined: true,
                    lock_impl: false,
                },
                Frame {
                    address: "0x7f0000005678".to_owned(),
                    module: Some(
                        "/opt/vendor/lib/libsome-very-long-vendor-library-name.so.3.2.1".to_owned(),
                    ),
                    module_offset: Some("0x5678".to_owned()),
                    ..Frame::default()
                },
            ],
            unwind: None,
        }],
        ..Site::default()
    };
    Report {
        schema_version: SCHEMA_VERSION,
        lockprof_version: "0.1.0".to_owned(),
        targets: vec![
            Target {
                pid: 77,
                comm: "my-service".to_owned(),
                origin: TargetOrigin::Attach,
                ..Target::default()
            },
            Target {
                pid: 78,
                comm: "my-service".to_owned(),
                origin: TargetOrigin::Attach,
                exited: true,
                ..Target::default()
            },
            Target {
                pid: 79,
                comm: "helper".to_owned(),
                origin: TargetOrigin::Child,
                ..Target::default()
            },
        ],
        duration_ns: 7_500_000_000_000,
        totals: Totals {
            waits: 123_456_789,
            wait_ns: 7_384_000_000_000,
            contention_waits: 123_456_789,
            contention_wait_ns: 7_384_000_000_000,
            ..Totals::default()
        },
        losses: Losses {
            stack_errors: 1,
            wait_map_full: 20_000,
            wake_map_full: 3,
            inflight_map_full: 4,
            target_map_full: 5,
            user_read_errors: 6,
            ..Losses::default()
        },
        sites: vec![site],
        ..Report::default()
    }
}

// -- snapshots ----------------------------------------------------------------------

#[test]
fn empty_report_says_nothing_was_recorded() {
    let report = Report {
        schema_version: SCHEMA_VERSION,
        lockprof_version: "0.1.0".to_owned(),
        targets: vec![Target {
            pid: 4242,
            comm: "server".to_owned(),
            cmdline: "server --port 8080".to_owned(),
            origin: TargetOrigin::Attach,
            exited: false,
            exit_code: None,
            ..Target::default()
        }],
        duration_ns: 10_000_000_000,
        ..Report::default()
    };
    insta::assert_snapshot!(render(&report, &TextOptions::default()), @r"
        lockprof: pid 4242 (server) attached
        recorded 10.0s: 0 blocked waits, 0ns waiting
        also: 0 eagain (futex word changed, no block), 0 timeouts (0ns waiting), 0 waits interrupted by a signal
        losses: none

        no futex waits were recorded for the target(s)
        ");
}

#[test]
fn cost_line_says_when_the_probes_run_time_was_not_measured() {
    let cost_line = |probe_cost: ProbeCost| {
        let report = Report {
            duration_ns: 1_000_000_000,
            probe_cost,
            ..Report::default()
        };
        render(&report, &TextOptions::default())
            .lines()
            .find(|l| l.starts_with("probe cost:"))
            .map(str::to_owned)
    };
    let live = ProbeCost {
        attach_method: "syscall_tracepoints".to_owned(),
        kernel_memory_bytes: 86 * 1_048_576,
        ..ProbeCost::default()
    };
    assert_eq!(
        cost_line(live.clone()).as_deref(),
        Some(
            "probe cost: BPF time not measured (--probe-time), 86.0 MiB of kernel memory, futex calls hooked through syscall_tracepoints"
        )
    );
    let measured = ProbeCost {
        bpf_run_ns: 2_000_000,
        bpf_runs: 10_000,
        ..live.clone()
    };
    assert_eq!(
        cost_line(measured).as_deref(),
        Some(
            "probe cost: 2.00ms of BPF time in 10000 runs (200 ns each), 86.0 MiB of kernel memory, futex calls hooked through syscall_tracepoints"
        )
    );
    // lockprof's own CPU, and per second of the 1 s recorded.
    let own = ProbeCost {
        lockprof_cpu_ns: 4_500_000,
        ..live
    };
    assert_eq!(
        cost_line(own).as_deref(),
        Some(
            "probe cost: BPF time not measured (--probe-time), 86.0 MiB of kernel memory, futex calls hooked through syscall_tracepoints; lockprof's own CPU 4.50ms (4.5 ms/s)"
        )
    );
    // Reports saved before the cost line existed have no memory figure: no line.
    assert_eq!(cost_line(ProbeCost::default()), None);
}

#[test]
fn held_across_blocking_lists_blocked_holders_not_preempted_ones() {
    let mut report = sample_report();
    report.wakers[0].held = held(&[("clock_nanosleep", 800_000_000)], 1_000_000_000, 0);
    report.wakers[1].held = held(
        &[("runnable (waiting for a CPU)", 900_000_000)],
        1_000_000_000,
        0,
    );
    let text = render(&report, &TextOptions::default());
    let section = text
        .split("held across blocking")
        .nth(1)
        .expect("a held-across-blocking section");
    assert!(section.contains("broadcast_locked"), "{section}");
    assert!(section.contains("clock_nanosleep 80%"), "{section}");
    assert!(!section.contains("watcher_broadcast"), "{section}");
}

#[test]
fn sample_report_renders_sites_stacks_and_wakers() {
    insta::assert_snapshot!(render(&sample_report(), &TextOptions::default()), @r"
        lockprof: pid 4242 (demo-targets) launched, exited with code 0
        recorded 3.12s: 22.0k blocked waits, 7.57s waiting; lock contention 19.0k waits, 4.86s (64% of wait time)
        also: 1262 eagain (futex word changed, no block), 4 timeouts (12.0s waiting), 0 waits interrupted by a signal
        wakes: 5972 calls woke 206k threads
        unfinished: 2 waits still blocked when the recording stopped (not counted above)
        losses:
          3 stack collisions (time kept under '[unknown stack]', stack lost)
          2 unsymbolized frames (shown as module+offset or address)

        wait sites by total wait time (3 of 3):
        #  KIND         WAITS   TOTAL     AVG     P50     P99     MAX  THREADS  SITE
        1  rwlock-read  18.4k   4.82s   262µs  97.1µs  7.56ms  41.9ms        6  Before::contains (forwarder.rs:179)
        2  condvar*      2944   2.71s   921µs   251µs  11.7ms   1.29s        6  Before::wait_for_change (forwarder.rs:189)
        3  mutex          611  38.2ms  62.5µs  42.5µs   874µs  1.20ms        8  Before::broadcast_locked (forwarder.rs:157)
        * event wait (condvar/other): waiting for a signal, not lock contention

        #1 rwlock-read  forwarder::Before::contains (demo-targets/src/forwarder.rs:179)
            function   demo_targets::forwarder::Before::contains
            file       demo-targets/src/forwarder.rs:179
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      18.4k blocked, 4.82s total (64% of all wait time); also 57 eagain
            durations  min 2.14µs  avg 262µs  p50 97.1µs  p99 7.56ms  max 41.9ms
            threads    build-3 (4247)  3511 waits  1.10s  23%
                       build-1 (4245)  3406 waits  1.01s  21%
                       build-0 (4244)  3160 waits  803ms  17%
                       build-5 (4249)  3021 waits  772ms  16%
                       … 2 more threads
            fairness   wait spread over 6 threads: cv 0.28, max/min 2.2x
            wasted     15.1k of 18.4k waits began right after a wakeup from the same futex (82%): woken for nothing
            blocked by Before::register (forwarder.rs:218)                       7355 intervals  2.95s  61%
                       forwarder::Before::watcher_broadcast (forwarder.rs:169)  11.0k intervals  1.80s  37%
                         holder: 1.45s held, off CPU 90% of it (sendmsg 83%, runnable 7.6%)
                         holder: 1204 syscalls failed, last sendmsg → ENOBUFS
                       40.0ms (0.8%) behind holders no longer known (more than 8 releases during a wait)
            woken by   forwarder::Before::watcher_broadcast (forwarder.rs:169)  11.0k waits  2.90s  60%
                       Before::register (forwarder.rs:218)                       7355 waits  1.90s  39%
                       57 waits with no waker seen (kernel wake or untraced process)
            wake→run   avg 41.0µs  max 3.20ms  over 18.4k woken waits (from the wake call until back on a CPU)
            addresses  0x55d4c3b41e10  18.4k waits  4.82s  100%
            stack      hottest: 71% of this site's wait time (13.1k waits, 1 of 3 distinct stacks), innermost first
              syscall                                       libc.so.6
              unix::futex::futex_wait                       pal/unix/futex.rs:72  [inlined]
              futex::RwLock::read_contended                 sync/rwlock/futex.rs:172
              rwlock::RwLock::read                          sync/poison/rwlock.rs:273  [inlined]
              forwarder::Before::contains                   demo-targets/src/forwarder.rs:179
              Before::lookup                                demo-targets/src/forwarder.rs:220
              demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
              forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
              sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
              spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
              AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
              panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
              … 5 more frames

        #2 condvar*  forwarder::Before::wait_for_change (demo-targets/src/forwarder.rs:189)
            function   demo_targets::forwarder::Before::wait_for_change
            file       demo-targets/src/forwarder.rs:189
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      2944 blocked, 2.71s total (36% of all wait time); also 1203 eagain, 4 timeouts (12.0s)
            durations  min 3.41µs  avg 921µs  p50 251µs  p99 11.7ms  max 1.29s
            threads    build-1 (4245)  530 waits  611ms  23%
                       build-3 (4247)  511 waits  503ms  19%
                       build-0 (4244)  488 waits  470ms  17%
                       build-2 (4246)  480 waits  422ms  16%
                       … 2 more threads
            addresses  0x55d4c3b41e40  2944 waits  2.71s  100%
            stack      hottest: 100% of this site's wait time (2944 waits), innermost first
              syscall                                       libc.so.6
              futex::Condvar::wait_optional_timeout         sync/condvar/futex.rs:61
              condvar::Condvar::wait_timeout_while          sync/poison/condvar.rs:401  [inlined]
              forwarder::Before::wait_for_change            demo-targets/src/forwarder.rs:189
              Before::lookup                                demo-targets/src/forwarder.rs:227
              demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
              forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
              sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
              spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
              AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
              panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
              Builder::spawn_unchecked_::{{closure}}        src/thread/mod.rs:557
              … 4 more frames

        #3 mutex  forwarder::Before::broadcast_locked (demo-targets/src/forwarder.rs:157)
            function   demo_targets::forwarder::Before::broadcast_locked
            file       demo-targets/src/forwarder.rs:157
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      611 blocked, 38.2ms total (0.5% of all wait time); also 2 eagain
            durations  min 1.73µs  avg 62.5µs  p50 42.5µs  p99 874µs  max 1.20ms
            threads    registrar-1 (4251)  140 waits  10.4ms   27%
                       registrar-0 (4250)  133 waits  9.88ms   26%
                       build-3 (4247)       61 waits  3.50ms  9.2%
                       build-1 (4245)       57 waits  3.11ms  8.1%
                       … 4 more threads
            addresses  0x55d4c3b41e38  611 waits  38.2ms  100%
            stack      hottest: 76% of this site's wait time (402 waits, 1 of 2 distinct stacks), innermost first
              syscall                                       libc.so.6
              futex::Mutex::lock_contended                  sync/mutex/futex.rs:62
              mutex::Mutex::lock                            sync/poison/mutex.rs:425  [inlined]
              forwarder::Before::broadcast_locked           demo-targets/src/forwarder.rs:157
              forwarder::Before::watcher_broadcast          demo-targets/src/forwarder.rs:168
              demo_targets::forwarder::build_client         demo-targets/src/forwarder.rs:421
              forwarder::run_with::{{closure}}              demo-targets/src/forwarder.rs:372
              sys::backtrace::__rust_begin_short_backtrace  src/sys/backtrace.rs:152  [inlined]
              spawn_unchecked_::{{closure}}::{{closure}}    src/thread/mod.rs:559
              AssertUnwindSafe::call_once                   src/panic/unwind_safe.rs:272  [inlined]
              panicking::try::do_call                       std/src/panicking.rs:589  [inlined]
              Builder::spawn_unchecked_::{{closure}}        src/thread/mod.rs:557
              … 4 more frames

        wakers by threads woken (3 of 3; WAIT ENDED = the wait time of the waits they ended):
        #  KIND     CALLS  WOKEN  WOKE-NONE  BROADCASTS  WAIT ENDED  SITE
        1  condvar   2410   183k         12        2301       1.83s  forwarder::Before::broadcast_locked (src/forwarder.rs:159)
        2  rwlock    1152  21.9k         40        1020       219ms  forwarder::Before::watcher_broadcast (src/forwarder.rs:169)
        3  mutex     2410    640       1770           0      6.40ms  forwarder::Before::broadcast_locked (src/forwarder.rs:161)
        ");
}

#[test]
fn options_limit_sites_threads_and_frames() {
    let opts = TextOptions {
        max_sites: 1,
        stacks: true,
        max_frames: 3,
        threads: 1,
        expand_lock_frames: false,
    };
    insta::assert_snapshot!(render(&sample_report(), &opts), @r"
        lockprof: pid 4242 (demo-targets) launched, exited with code 0
        recorded 3.12s: 22.0k blocked waits, 7.57s waiting; lock contention 19.0k waits, 4.86s (64% of wait time)
        also: 1262 eagain (futex word changed, no block), 4 timeouts (12.0s waiting), 0 waits interrupted by a signal
        wakes: 5972 calls woke 206k threads
        unfinished: 2 waits still blocked when the recording stopped (not counted above)
        losses:
          3 stack collisions (time kept under '[unknown stack]', stack lost)
          2 unsymbolized frames (shown as module+offset or address)

        wait sites by total wait time (1 of 3):
        #  KIND         WAITS  TOTAL    AVG     P50     P99     MAX  THREADS  SITE
        1  rwlock-read  18.4k  4.82s  262µs  97.1µs  7.56ms  41.9ms        6  forwarder::Before::contains (src/forwarder.rs:179)
        … 2 more sites (2.75s in total, 36% of wait time)

        #1 rwlock-read  forwarder::Before::contains (demo-targets/src/forwarder.rs:179)
            function   demo_targets::forwarder::Before::contains
            file       demo-targets/src/forwarder.rs:179
            module     /work/main/target/release/demo-targets
            lock impl  rust-std
            waits      18.4k blocked, 4.82s total (64% of all wait time); also 57 eagain
            durations  min 2.14µs  avg 262µs  p50 97.1µs  p99 7.56ms  max 41.9ms
            threads    build-3 (4247)  3511 waits  1.10s  23%
                       … 5 more threads
            fairness   wait spread over 6 threads: cv 0.28, max/min 2.2x
            wasted     15.1k of 18.4k waits began right after a wakeup from the same futex (82%): woken for nothing
            blocked by Before::register (forwarder.rs:218)                       7355 intervals  2.95s  61%
                       forwarder::Before::watcher_broadcast (forwarder.rs:169)  11.0k intervals  1.80s  37%
                         holder: 1.45s held, off CPU 90% of it (sendmsg 83%, runnable 7.6%)
                         holder: 1204 syscalls failed, last sendmsg → ENOBUFS
                       40.0ms (0.8%) behind holders no longer known (more than 8 releases during a wait)
            woken by   forwarder::Before::watcher_broadcast (forwarder.rs:169)  11.0k waits  2.90s  60%
                       Before::register (forwarder.rs:218)                       7355 waits  1.90s  39%
                       57 waits with no waker seen (kernel wake or untraced process)
            wake→run   avg 41.0µs  max 3.20ms  over 18.4k woken waits (from the wake call until back on a CPU)
            addresses  0x55d4c3b41e10  18.4k waits  4.82s  100%
            stack      hottest: 71% of this site's wait time (13.1k waits, 1 of 3 distinct stacks), innermost first
              syscall                        libc.so.6
              unix::futex::futex_wait        pal/unix/futex.rs:72  [inlined]
              futex::RwLock::read_contended  sync/rwlock/futex.rs:172
              … 14 more frames

        wakers by threads woken (3 of 3; WAIT ENDED = the wait time of the waits they ended):
        #  KIND     CALLS  WOKEN  WOKE-NONE  BROADCASTS  WAIT ENDED  SITE
        1  condvar   2410   183k         12        2301       1.83s  forwarder::Before::broadcast_locked (src/forwarder.rs:159)
        2  rwlock    1152  21.9k         40        1020       219ms  forwarder::Before::watcher_broadcast (src/forwarder.rs:169)
        3  mutex     2410    640       1770           0      6.40ms  forwarder::Before::broadcast_locked (src/forwarder.rs:161)
        ");
}

#[test]
fn no_stacks_option_omits_stacks() {
    let opts = TextOptions {
        stacks: false,
        ..TextOptions::default()
    };
    let text = render(&sample_report(), &opts);
    assert!(!text.contains("hottest"), "{text}");
    assert!(!text.contains("read_contended"), "{text}");
}

#[test]
fn long_names_are_shortened_and_keep_alignment() {
    let text = render(&long_names_report(), &TextOptions::default());
    insta::assert_snapshot!(text, @r"
        lockprof: pid 77 (my-service) attached; pid 78 (my-service) attached, exited; + 1 child process
        recorded 2h05m: 123M blocked waits, 2h03m waiting; lock contention 123M waits, 2h03m (100% of wait time)
        also: 0 eagain (futex word changed, no block), 0 timeouts (0ns waiting), 0 waits interrupted by a signal
        losses:
          1 stack capture error (stack not captured)
          20.0k waits not aggregated: kernel wait map full (wait totals undercount)
          3 wakes not aggregated: kernel wake map full (wake totals undercount)
          4 waits not timed: in-flight map full (start not recorded)
          5 child processes not followed: target map full
          6 syscall arguments unreadable from user memory

        wait sites by total wait time (1 of 1):
        #  KIND          WAITS  TOTAL     AVG     P50    P99    MAX  THREADS  SITE
        1  rwlock-write   123M  2h03m  59.8µs  1.00ms  1m00s  1h07m        1  Arc::resolve_upstream_with_retries_and_fallback::…

        #1 rwlock-write  Arc::resolve_upstream_with_retries_and_fallback::{{closure}} (upstream_resolution_with_retries.rs:1204)
            function   <alloc::sync::Arc<tokio::sync::rwlock::RwLock<std::c…retries_and_fallback::{{closure}}::h9f3a61c0d2b4e587
            file       …e-routing-extremely-long-crate-name-0.42.0/src/routing/resolver/upstream_resolution_with_retries.rs:1204
            module     /usr/local/bin/my-service
            lock impl  parking_lot
            waits      123M blocked, 2h03m total (100% of all wait time)
            durations  min 12ns  avg 59.8µs  p50 1.00ms  p99 1m00s  max 1h07m
            threads    a-thread-name-?[31m-wit… (4194304)  123M waits  2h03m  100%
            addresses  0x7ffd5e3a0000 (pid 77)  1 wait  1ns  <0.1%
                       0x7ffd5e3a0001 (pid 77)  1 wait  1ns  <0.1%
                       0x7ffd5e3a0002 (pid 77)  1 wait  1ns  <0.1%
                       … 2 more addresses
            stack      hottest: 100% of this site's wait time (123M waits), innermost first
              Arc::resolve_upstream_with_retries_and_fallback::{{closure}}  …ream_resolution_with_retries.rs:1204  [inlined]
              libsome-very-long-vendor-library-name.so.3.2.1+0x5678
        ");
}

#[test]
fn lines_fit_the_width() {
    for report in [sample_report(), long_names_report()] {
        let text = render(&report, &TextOptions::default());
        for line in text.lines() {
            assert!(chars(line) <= WIDTH, "{} chars: {line}", chars(line));
            assert!(
                !line.chars().any(char::is_control),
                "control char: {line:?}"
            );
        }
    }
}

#[test]
fn inconsistent_reports_do_not_panic() {
    let mut report = sample_report();
    report.totals = Totals::default();
    report.sites[0].total_wait_ns = 0;
    report.sites[0].threads[0].wait.total_wait_ns = u64::MAX;
    report.sites[1].stacks[0].frames.clear();
    report.sites[2].stacks.clear();
    report.sites[2].threads.clear();
    report.sites.push(Site::default());
    report.wakers.push(WakerSite::default());
    report.targets.clear();
    let text = render(&report, &TextOptions::default());
    assert!(text.contains("lockprof: no target processes"), "{text}");
    let zero = TextOptions {
        max_sites: 0,
        stacks: true,
        max_frames: 0,
        threads: 0,
        expand_lock_frames: false,
    };
    let text = render(&report, &zero);
    assert!(text.contains("… 4 more sites"), "{text}");
}

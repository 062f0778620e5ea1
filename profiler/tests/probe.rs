//! Root-only tests of the probe's own contract: how it hooks futex calls, what kernel
//! memory it takes, which processes it follows.
//!
//! `#[ignore]`d like every kernel test; `cargo xtask test` runs them as root with one
//! test thread.

mod common;

use common::{demo_bin, record, require_root};
use profiler::report::TargetOrigin;

const MIB: u64 = 1 << 20;

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn futex_calls_are_hooked_through_their_own_tracepoints_with_bounded_kernel_memory() {
    require_root();
    let storm = demo_bin("futex-storm");
    let r = record(&[
        "-q",
        "--",
        storm.to_str().unwrap(),
        "--threads",
        "4",
        "--duration-ms",
        "1000",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr);
    let cost = &r.report.probe_cost;
    // tracefs is mounted by lockprof when missing, so this machine never needs the
    // raw-syscall fallback.
    assert_eq!(cost.attach_method, "syscall_tracepoints");
    assert!(
        cost.kernel_memory_bytes > MIB && cost.kernel_memory_bytes <= 128 * MIB,
        "kernel memory {} B",
        cost.kernel_memory_bytes
    );
    assert!(cost.bpf_runs > 0 && r.report.totals.waits > 0);
    let l = &r.report.losses;
    assert_eq!(
        (
            l.wait_map_full,
            l.wake_map_full,
            l.inflight_map_full,
            l.last_wake_lost
        ),
        (0, 0, 0, 0),
        "{l:?}"
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn threads_of_a_launched_command_are_never_taken_for_child_processes() {
    require_root();
    let fixture = demo_bin("pthread-fixture");
    let r = record(&[
        "-q",
        "--",
        fixture.to_str().unwrap(),
        "--threads",
        "8",
        "--iters",
        "20",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr);
    let children: Vec<u32> = r
        .report
        .targets
        .iter()
        .filter(|t| t.origin == TargetOrigin::Child)
        .map(|t| t.pid)
        .collect();
    assert!(
        children.is_empty(),
        "threads followed as processes: {children:?}"
    );
    assert!(r.report.totals.waits > 0, "the threads' waits are traced");
}

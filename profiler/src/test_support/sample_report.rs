//! The sample report: a realistic, hand-built `Report` of the `forwarder` demo before
//! its fix (three sites, three wakers, their locks), used by the tests of every output.
//! It is not a recording: its numbers were written to add up the way `aggregate`
//! makes them, which `sample_report_is_self_consistent` checks. Its JSON is stored as
//! `profiler/tests/fixtures/report-sample.json` for the integration tests and the TUI
//! snapshots; `sample_fixture_is_up_to_date` keeps the two in sync.

use crate::analyze::histogram::Log2Histogram;
use crate::report::model::{
    AddressShare, Behavior, BlockedBy, Fairness, Frame, HeldAcross, LockAddress, Losses, OffCpuIn,
    ProbeCost, Report, SCHEMA_VERSION, Site, SiteShare, StackShare, SyscallFailure, Target,
    TargetOrigin, ThreadShare, Totals, WaitKind, WaitSummary, WakeLatency, WakerShare, WakerSite,
    WakerThread, WokenBy,
};

const EXE: &str = "/work/main/target/release/demo-targets";
const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const RUSTC: &str = "/rustc/17067e9ac6d7e98f18d4d5a6e8e2a0b8c9e7f3a1/library";
const FWD: &str = "demo-targets/src/forwarder.rs";

pub(crate) fn sum(waits: u64, total_wait_ns: u64, max_wait_ns: u64) -> WaitSummary {
    WaitSummary {
        waits,
        total_wait_ns,
        max_wait_ns,
    }
}

pub(crate) fn func(address: &str, function: &str, file: &str, line: u32, inlined: bool) -> Frame {
    Frame {
        address: address.to_owned(),
        function: Some(function.to_owned()),
        file: Some(file.to_owned()),
        line: Some(line),
        module: Some(EXE.to_owned()),
        module_offset: None,
        inlined,
        lock_impl: false,
    }
}

pub(crate) fn libc(address: &str, function: Option<&str>, offset: &str) -> Frame {
    Frame {
        address: address.to_owned(),
        function: function.map(str::to_owned),
        file: None,
        line: None,
        module: Some(LIBC.to_owned()),
        module_offset: Some(offset.to_owned()),
        inlined: false,
        lock_impl: false,
    }
}

/// The frames below a site frame on a `std::thread` worker of the forwarder demo.
fn thread_base(first: &str) -> Vec<Frame> {
    vec![
        func(
            first,
            "demo_targets::forwarder::build_client",
            FWD,
            421,
            false,
        ),
        func(
            "0x55d4c2a0b8e1",
            "demo_targets::forwarder::run_with::{{closure}}",
            FWD,
            372,
            false,
        ),
        func(
            "0x55d4c2a0b8e1",
            "std::sys::backtrace::__rust_begin_short_backtrace",
            &format!("{RUSTC}/std/src/sys/backtrace.rs"),
            152,
            true,
        ),
        func(
            "0x55d4c2a0c204",
            "std::thread::Builder::spawn_unchecked_::{{closure}}::{{closure}}",
            &format!("{RUSTC}/std/src/thread/mod.rs"),
            559,
            false,
        ),
        func(
            "0x55d4c2a0c204",
            "<core::panic::unwind_safe::AssertUnwindSafe<F> as \
                 core::ops::function::FnOnce<()>>::call_once",
            &format!("{RUSTC}/core/src/panic/unwind_safe.rs"),
            272,
            true,
        ),
        func(
            "0x55d4c2a0c204",
            "std::panicking::try::do_call",
            &format!("{RUSTC}/std/src/panicking.rs"),
            589,
            true,
        ),
        func(
            "0x55d4c2a0c3a9",
            "std::thread::Builder::spawn_unchecked_::{{closure}}",
            &format!("{RUSTC}/std/src/thread/mod.rs"),
            557,
            false,
        ),
        func(
            "0x55d4c2a0d0f5",
            "core::ops::function::FnOnce::call_once{{vtable.shim}}",
            &format!("{RUSTC}/core/src/ops/function.rs"),
            250,
            false,
        ),
        func(
            "0x55d4c2a31a6b",
            "std::sys::pal::unix::thread::Thread::new::thread_start",
            &format!("{RUSTC}/std/src/sys/pal/unix/thread.rs"),
            105,
            false,
        ),
        libc("0x7f3a5c894ac3", None, "0x94ac3"),
        Frame {
            address: "0x7f3a5c926a04".to_owned(),
            ..Frame::default()
        },
    ]
}

pub(crate) fn site_contains() -> Site {
    let mut frames = vec![
        libc("0x7f3a5c91b25d", Some("syscall"), "0x11b25d"),
        func(
            "0x55d4c2a3c1f7",
            "std::sys::pal::unix::futex::futex_wait",
            &format!("{RUSTC}/std/src/sys/pal/unix/futex.rs"),
            72,
            true,
        ),
        func(
            "0x55d4c2a3c1f7",
            "std::sys::sync::rwlock::futex::RwLock::read_contended",
            &format!("{RUSTC}/std/src/sys/sync/rwlock/futex.rs"),
            172,
            false,
        ),
        func(
            "0x55d4c2a09a62",
            "std::sync::poison::rwlock::RwLock<T>::read",
            &format!("{RUSTC}/std/src/sync/poison/rwlock.rs"),
            273,
            true,
        ),
        func(
            "0x55d4c2a09a62",
            "demo_targets::forwarder::Before::contains",
            FWD,
            179,
            false,
        ),
        func(
            "0x55d4c2a09c3d",
            "<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::lookup",
            FWD,
            220,
            false,
        ),
    ];
    frames.extend(thread_base("0x55d4c2a0b77c"));
    Site {
            id: format!(
                "rwlock-read|demo-targets|demo_targets::forwarder::Before::contains|{FWD}:179"
            ),
            kind: WaitKind::RwlockRead,
            contention: true,
            behavior: Behavior::Unknown,
            lock_impl: "rust-std".to_owned(),
            function: Some("demo_targets::forwarder::Before::contains".to_owned()),
            file: Some(FWD.to_owned()),
            line: Some(179),
            module: Some(EXE.to_owned()),
            waits: 18_432,
            total_wait_ns: 4_823_117_842,
            avg_wait_ns: 261_670,
            min_wait_ns: 2_140,
            max_wait_ns: 41_872_650,
            p50_wait_ns: 97_125,
            p99_wait_ns: 7_555_302,
            eagain: 57,
            timeouts: 0,
            timeout_wait_ns: 0,
            interrupted: 0,
            other_errors: 0,
            wasted_wakeups: 15_104,
            unpaired_waits: 57,
            woken_by: vec![
                WokenBy {
                    waker: format!("rwlock|demo-targets|demo_targets::forwarder::Before::watcher_broadcast|{FWD}:169"),
                    function: Some("demo_targets::forwarder::Before::watcher_broadcast".to_owned()),
                    file: Some(FWD.to_owned()),
                    line: Some(169),
                    waits: 11_020,
                    wait_ns: 2_900_114_000,
                    from_other_processes: 0,
                    held: HeldAcross {
                        window_ns: 1_450_000_000,
                        off_cpu_ns: 1_310_000_000,
                        off_cpu_in: vec![
                            OffCpuIn { syscall: "sendmsg".to_owned(), ns: 1_200_000_000 },
                            OffCpuIn { syscall: "runnable (waiting for a CPU)".to_owned(), ns: 110_000_000 },
                        ],
                        truncated_windows: 0,
                        failed_syscalls: 1_204,
                        last_failure: Some(SyscallFailure { syscall: "sendmsg".to_owned(), errno: "ENOBUFS".to_owned() }),
                    },
                    wake_to_run: WakeLatency::default(),
                },
                WokenBy {
                    waker: format!("rwlock-write|demo-targets|<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::register|{FWD}:218"),
                    function: Some("<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::register".to_owned()),
                    file: Some(FWD.to_owned()),
                    line: Some(218),
                    waits: 7_355,
                    wait_ns: 1_900_000_000,
                    from_other_processes: 0,
                    held: HeldAcross::default(),
                    wake_to_run: WakeLatency::default(),
                },
            ],
            blocked_by: vec![
                BlockedBy {
                    holder: format!("rwlock-write|demo-targets|<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::register|{FWD}:218"),
                    function: Some("<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::register".to_owned()),
                    file: Some(FWD.to_owned()),
                    line: Some(218),
                    intervals: 7_355,
                    wait_ns: 2_950_000_000,
                },
                BlockedBy {
                    holder: format!("rwlock|demo-targets|demo_targets::forwarder::Before::watcher_broadcast|{FWD}:169"),
                    function: Some("demo_targets::forwarder::Before::watcher_broadcast".to_owned()),
                    file: Some(FWD.to_owned()),
                    line: Some(169),
                    intervals: 11_020,
                    wait_ns: 1_800_000_000,
                },
            ],
            blocked_by_unknown_ns: 40_000_000,
            wake_to_run: WakeLatency {
                count: 18_375,
                avg_ns: 41_000,
                max_ns: 3_200_000,
            },
            fairness: Fairness {
                threads: 6,
                wait_cv: 0.28,
                max_min_ratio: 2.22,
            },
            histogram: hist(&[
                (11, 310),
                (12, 902),
                (13, 1_544),
                (14, 2_310),
                (15, 2_702),
                (16, 3_004),
                (17, 3_126),
                (18, 2_117),
                (19, 1_211),
                (20, 603),
                (21, 298),
                (22, 151),
                (23, 102),
                (24, 41),
                (25, 11),
            ]),
            threads: vec![
                thread(4247, "build-3", sum(3_511, 1_102_331_087, 41_872_650)),
                thread(4245, "build-1", sum(3_406, 1_010_224_301, 38_113_002)),
                thread(4244, "build-0", sum(3_160, 802_610_554, 22_400_117)),
                thread(4249, "build-5", sum(3_021, 771_902_337, 19_801_440)),
                thread(4246, "build-2", sum(2_901, 640_118_803, 17_320_008)),
                thread(4248, "build-4", sum(2_433, 495_930_760, 12_004_871)),
            ],
            addresses: vec![AddressShare {
                pid: 4242,
                address: "0x55d4c3b41e10".to_owned(),
                wait: sum(18_432, 4_823_117_842, 41_872_650),
            }],
            stacks: vec![
                StackShare {
                    wait: sum(13_120, 3_422_871_004, 41_872_650),
                    frames,
                    unwind: None,
                },
                StackShare {
                    wait: sum(5_000, 1_380_000_000, 33_500_120),
                    frames: vec![func(
                        "0x55d4c2a09a62",
                        "demo_targets::forwarder::Before::contains",
                        FWD,
                        179,
                        false,
                    )],
                    unwind: None,
                },
            ],
            more_stacks: 1,
            series: Vec::new(),
            from_saved_stacks: false,
        }
}

fn site_cond_wait() -> Site {
    let mut frames = vec![
        libc("0x7f3a5c91b25d", Some("syscall"), "0x11b25d"),
        func(
            "0x55d4c2a3b9d0",
            "std::sys::sync::condvar::futex::Condvar::wait_optional_timeout",
            &format!("{RUSTC}/std/src/sys/sync/condvar/futex.rs"),
            61,
            false,
        ),
        func(
            "0x55d4c2a0a41e",
            "std::sync::poison::condvar::Condvar::wait_timeout_while",
            &format!("{RUSTC}/std/src/sync/poison/condvar.rs"),
            401,
            true,
        ),
        func(
            "0x55d4c2a0a41e",
            "demo_targets::forwarder::Before::wait_for_change",
            FWD,
            189,
            false,
        ),
        func(
            "0x55d4c2a09cb8",
            "<demo_targets::forwarder::Before as demo_targets::forwarder::Forwarder>::lookup",
            FWD,
            227,
            false,
        ),
    ];
    frames.extend(thread_base("0x55d4c2a0b77c"));
    Site {
        id: format!(
            "condvar|demo-targets|demo_targets::forwarder::Before::wait_for_change|{FWD}:189"
        ),
        kind: WaitKind::Condvar,
        contention: false,
        behavior: Behavior::Unknown,
        lock_impl: "rust-std".to_owned(),
        function: Some("demo_targets::forwarder::Before::wait_for_change".to_owned()),
        file: Some(FWD.to_owned()),
        line: Some(189),
        module: Some(EXE.to_owned()),
        waits: 2_944,
        total_wait_ns: 2_710_440_118,
        avg_wait_ns: 920_665,
        min_wait_ns: 3_410,
        max_wait_ns: 1_288_004_211,
        p50_wait_ns: 251_221,
        p99_wait_ns: 11_744_051,
        eagain: 1_203,
        timeouts: 4,
        timeout_wait_ns: 12_000_512_000,
        interrupted: 0,
        other_errors: 0,
        wasted_wakeups: 0,
        unpaired_waits: 0,
        woken_by: Vec::new(),
        blocked_by: Vec::new(),
        blocked_by_unknown_ns: 0,
        wake_to_run: WakeLatency::default(),
        fairness: Fairness::default(),
        histogram: hist(&[
            (11, 12),
            (12, 40),
            (13, 88),
            (14, 130),
            (15, 240),
            (16, 401),
            (17, 612),
            (18, 701),
            (19, 402),
            (20, 170),
            (21, 80),
            (22, 31),
            (23, 20),
            (24, 9),
            (25, 4),
            (27, 2),
            (28, 1),
            (30, 1),
        ]),
        threads: vec![
            thread(4245, "build-1", sum(530, 611_004_312, 1_288_004_211)),
            thread(4247, "build-3", sum(511, 502_776_121, 402_113_877)),
            thread(4244, "build-0", sum(488, 470_231_904, 388_120_450)),
            thread(4246, "build-2", sum(480, 421_880_315, 201_400_003)),
            thread(4249, "build-5", sum(472, 380_117_406, 190_033_181)),
            thread(4248, "build-4", sum(463, 324_430_060, 170_552_019)),
        ],
        addresses: vec![AddressShare {
            pid: 4242,
            address: "0x55d4c3b41e40".to_owned(),
            wait: sum(2_944, 2_710_440_118, 1_288_004_211),
        }],
        stacks: vec![StackShare {
            wait: sum(2_944, 2_710_440_118, 1_288_004_211),
            frames,
            unwind: None,
        }],
        more_stacks: 0,
        series: Vec::new(),
        from_saved_stacks: false,
    }
}

fn site_epoch_lock() -> Site {
    let mut frames = vec![
        libc("0x7f3a5c91b25d", Some("syscall"), "0x11b25d"),
        func(
            "0x55d4c2a3b512",
            "std::sys::sync::mutex::futex::Mutex::lock_contended",
            &format!("{RUSTC}/std/src/sys/sync/mutex/futex.rs"),
            62,
            false,
        ),
        func(
            "0x55d4c2a0a018",
            "std::sync::poison::mutex::Mutex<T>::lock",
            &format!("{RUSTC}/std/src/sync/poison/mutex.rs"),
            425,
            true,
        ),
        func(
            "0x55d4c2a0a018",
            "demo_targets::forwarder::Before::broadcast_locked",
            FWD,
            157,
            false,
        ),
        func(
            "0x55d4c2a0a120",
            "demo_targets::forwarder::Before::watcher_broadcast",
            FWD,
            168,
            false,
        ),
    ];
    frames.extend(thread_base("0x55d4c2a0b7c2"));
    Site {
        id: format!(
            "mutex|demo-targets|demo_targets::forwarder::Before::broadcast_locked|{FWD}:157"
        ),
        kind: WaitKind::Mutex,
        contention: true,
        behavior: Behavior::Unknown,
        lock_impl: "rust-std".to_owned(),
        function: Some("demo_targets::forwarder::Before::broadcast_locked".to_owned()),
        file: Some(FWD.to_owned()),
        line: Some(157),
        module: Some(EXE.to_owned()),
        waits: 611,
        total_wait_ns: 38_201_774,
        avg_wait_ns: 62_523,
        min_wait_ns: 1_730,
        max_wait_ns: 1_204_331,
        p50_wait_ns: 42_533,
        p99_wait_ns: 873_813,
        eagain: 2,
        timeouts: 0,
        timeout_wait_ns: 0,
        interrupted: 0,
        other_errors: 0,
        wasted_wakeups: 0,
        unpaired_waits: 0,
        woken_by: Vec::new(),
        blocked_by: Vec::new(),
        blocked_by_unknown_ns: 0,
        wake_to_run: WakeLatency::default(),
        fairness: Fairness::default(),
        histogram: hist(&[
            (10, 3),
            (11, 21),
            (12, 40),
            (13, 77),
            (14, 120),
            (15, 151),
            (16, 102),
            (17, 60),
            (18, 25),
            (19, 9),
            (20, 3),
        ]),
        threads: vec![
            thread(4251, "registrar-1", sum(140, 10_402_118, 1_204_331)),
            thread(4250, "registrar-0", sum(133, 9_880_402, 990_120)),
            thread(4247, "build-3", sum(61, 3_504_881, 402_117)),
            thread(4245, "build-1", sum(57, 3_112_004, 388_004)),
            thread(4244, "build-0", sum(55, 2_998_115, 301_227)),
            thread(4249, "build-5", sum(58, 2_874_090, 288_190)),
            thread(4246, "build-2", sum(54, 2_770_031, 280_110)),
            thread(4248, "build-4", sum(53, 2_660_133, 277_003)),
        ],
        addresses: vec![AddressShare {
            pid: 4242,
            address: "0x55d4c3b41e38".to_owned(),
            wait: sum(611, 38_201_774, 1_204_331),
        }],
        stacks: vec![
            StackShare {
                wait: sum(402, 29_004_112, 1_204_331),
                frames,
                unwind: None,
            },
            StackShare {
                wait: sum(209, 9_197_662, 702_118),
                frames: vec![func(
                    "0x55d4c2a0a018",
                    "demo_targets::forwarder::Before::broadcast_locked",
                    FWD,
                    157,
                    false,
                )],
                unwind: None,
            },
        ],
        more_stacks: 0,
        series: Vec::new(),
        from_saved_stacks: false,
    }
}

pub(crate) fn thread(tid: u32, name: &str, wait: WaitSummary) -> ThreadShare {
    ThreadShare {
        pid: 4242,
        tid,
        name: name.to_owned(),
        wait,
    }
}

fn hist(buckets: &[(usize, u64)]) -> Log2Histogram {
    let mut h = Log2Histogram::default();
    for &(b, n) in buckets {
        h.counts[b] = n;
    }
    h
}

fn waker(
    kind: WaitKind,
    function: &str,
    line: u32,
    calls: u64,
    woken: u64,
    woke_none: u64,
    woke_many: u64,
) -> WakerSite {
    WakerSite {
        id: format!("{}|demo-targets|{function}|{FWD}:{line}", kind.as_str()),
        kind,
        lock_impl: "rust-std".to_owned(),
        function: Some(function.to_owned()),
        file: Some(FWD.to_owned()),
        line: Some(line),
        module: Some(EXE.to_owned()),
        calls,
        woken,
        woke_none,
        woke_many,
        threads: vec![
            WakerThread {
                pid: 4242,
                tid: 4247,
                name: "build-3".to_owned(),
                calls: calls / 4,
                woken: woken / 4,
            },
            WakerThread {
                pid: 4242,
                tid: 4250,
                name: "registrar-0".to_owned(),
                calls: calls / 8,
                woken: woken / 8,
            },
        ],
        caused_waits: woken / 2,
        caused_wait_ns: woken * 10_000,
        held: HeldAcross::default(),
        stack: vec![func("0x55d4c2a0a04c", function, FWD, line, false)],
    }
}

/// A realistic report: the `forwarder` demo, before the fix. Also stored as
/// `tests/fixtures/report-sample.json`.
pub(crate) fn sample_report() -> Report {
    let sites = vec![site_contains(), site_cond_wait(), site_epoch_lock()];
    let wakers = vec![
        waker(
            WaitKind::Condvar,
            "demo_targets::forwarder::Before::broadcast_locked",
            159,
            2_410,
            183_224,
            12,
            2_301,
        ),
        waker(
            WaitKind::Rwlock,
            "demo_targets::forwarder::Before::watcher_broadcast",
            169,
            1_152,
            21_880,
            40,
            1_020,
        ),
        waker(
            WaitKind::Mutex,
            "demo_targets::forwarder::Before::broadcast_locked",
            161,
            2_410,
            640,
            1_770,
            0,
        ),
    ];
    let locks = vec![
        LockAddress {
            behavior: Behavior::Unknown,
            broadcast: false,
            pid: 4242,
            address: "0x55d4c3b41e10".to_owned(),
            wait: sum(18_432, 4_823_117_842, 41_872_650),
            eagain: 57,
            wasted_wakeups: 15_104,
            sites: vec![SiteShare {
                site: sites[0].id.clone(),
                wait: sum(18_432, 4_823_117_842, 41_872_650),
            }],
            wakers: vec![WakerShare {
                waker: wakers[1].id.clone(),
                calls: 1_152,
                woken: 21_880,
                woke_none: 40,
                woke_many: 1_020,
            }],
        },
        LockAddress {
            behavior: Behavior::Unknown,
            broadcast: false,
            pid: 4242,
            address: "0x55d4c3b41e40".to_owned(),
            wait: sum(2_944, 2_710_440_118, 1_288_004_211),
            eagain: 1_203,
            wasted_wakeups: 0,
            sites: vec![SiteShare {
                site: sites[1].id.clone(),
                wait: sum(2_944, 2_710_440_118, 1_288_004_211),
            }],
            wakers: vec![WakerShare {
                waker: wakers[0].id.clone(),
                calls: 2_410,
                woken: 183_224,
                woke_none: 12,
                woke_many: 2_301,
            }],
        },
        LockAddress {
            behavior: Behavior::Unknown,
            broadcast: false,
            pid: 4242,
            address: "0x55d4c3b41e38".to_owned(),
            wait: sum(611, 38_201_774, 1_204_331),
            eagain: 2,
            wasted_wakeups: 0,
            sites: vec![SiteShare {
                site: sites[2].id.clone(),
                wait: sum(611, 38_201_774, 1_204_331),
            }],
            wakers: vec![WakerShare {
                waker: wakers[2].id.clone(),
                calls: 2_410,
                woken: 640,
                woke_none: 1_770,
                woke_many: 0,
            }],
        },
    ];
    Report {
        schema_version: SCHEMA_VERSION,
        lockprof_version: "0.1.0".to_owned(),
        targets: vec![Target {
            pid: 4242,
            comm: "demo-targets".to_owned(),
            cmdline: "demo-targets forwarder before --builds 6 --calls 400".to_owned(),
            origin: TargetOrigin::Launch,
            exited: true,
            exit_code: Some(0),
            ..Target::default()
        }],
        exited_children_not_listed: 0,
        started_unix_ms: 1_767_225_600_000,
        duration_ns: 3_118_402_557,
        totals: Totals {
            waits: 21_987,
            wait_ns: 7_571_759_734,
            contention_waits: 19_043,
            contention_wait_ns: 4_861_319_616,
            eagain: 1_262,
            timeouts: 4,
            timeout_wait_ns: 12_000_512_000,
            interrupted: 0,
            other_errors: 0,
            wake_calls: 5_972,
            threads_woken: 205_744,
            unfinished_waits: 2,
            by_kind: Vec::new(),
        },
        losses: Losses {
            stack_collisions: 3,
            unsymbolized_frames: 2,
            ..Losses::default()
        },
        sites,
        locks,
        wakers,
        probe_cost: ProbeCost {
            bpf_run_ns: 41_200_000,
            bpf_runs: 1_530_000,
            ..ProbeCost::default()
        },
        timeline: None,
        go_scheduler_idle: None,
    }
}

pub(crate) fn held(off: &[(&str, u64)], window_ns: u64, failed: u64) -> HeldAcross {
    HeldAcross {
        window_ns,
        off_cpu_ns: off.iter().map(|(_, ns)| ns).sum(),
        off_cpu_in: off
            .iter()
            .map(|(syscall, ns)| OffCpuIn {
                syscall: (*syscall).to_owned(),
                ns: *ns,
            })
            .collect(),
        truncated_windows: 0,
        failed_syscalls: failed,
        last_failure: (failed > 0).then(|| SyscallFailure {
            syscall: "sendmsg".to_owned(),
            errno: "ENOBUFS".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Other tests use the sample as a fixture: its numbers must add up the way
    /// `aggregate` makes them.
    #[test]
    fn sample_report_is_self_consistent() {
        let r = sample_report();
        let (mut waits, mut wait_ns) = (0, 0);
        for site in &r.sites {
            waits += site.waits;
            wait_ns += site.total_wait_ns;
            assert_eq!(site.histogram.total(), site.waits, "{}", site.id);
            assert_eq!(site.avg_wait_ns, site.total_wait_ns / site.waits);
            let (min, max) = (site.min_wait_ns, site.max_wait_ns);
            assert_eq!(site.p50_wait_ns, site.histogram.quantile(0.50, min, max));
            assert_eq!(site.p99_wait_ns, site.histogram.quantile(0.99, min, max));
            assert_eq!(site.contention, site.kind.is_contention());
            let threads: u64 = site.threads.iter().map(|t| t.wait.total_wait_ns).sum();
            assert_eq!(threads, site.total_wait_ns, "{}", site.id);
            let stacks: u64 = site.stacks.iter().map(|s| s.wait.waits).sum();
            assert!(stacks <= site.waits);
        }
        assert_eq!((waits, wait_ns), (r.totals.waits, r.totals.wait_ns));
        let woken: u64 = r.wakers.iter().map(|w| w.woken).sum();
        assert_eq!(woken, r.totals.threads_woken);
    }

    /// The sample report is shared with other tests as a fixture file; keep it in sync.
    /// Regenerate with `LOCKPROF_UPDATE_FIXTURES=1 cargo test`.
    #[test]
    fn sample_fixture_is_up_to_date() {
        let json = crate::report::json::to_string(&sample_report());
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/report-sample.json"
        );
        if std::env::var_os("LOCKPROF_UPDATE_FIXTURES").is_some() {
            std::fs::write(path, &json).expect("write fixture");
        }
        let stored = include_str!("../../tests/fixtures/report-sample.json");
        assert!(
            stored == json,
            "tests/fixtures/report-sample.json is stale: rerun with LOCKPROF_UPDATE_FIXTURES=1"
        );
    }
}

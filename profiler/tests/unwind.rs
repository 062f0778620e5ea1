//! Root-only tests of full-stack unwinding: the probe's user-stack copies unwound with
//! the modules' CFI, through glibc (no frame pointers on Debian) and Rust's
//! precompiled std, and the lock kinds told from those frames.
//!
//! `#[ignore]`d like `bpf.rs`; `cargo xtask test` runs them as root, one at a time.

mod common;

use common::{demo_bin, record, require_root, tag_line, top_sites};
use profiler::report::{Report, Site, WaitKind};

const FIXTURE_SRC: &str = "demo-targets/src/bin/pthread-fixture.rs";

fn pthread_fixture_report() -> Report {
    let fixture = demo_bin("pthread-fixture");
    let r = record(&[
        "-q",
        "--",
        fixture.to_str().expect("UTF-8 path"),
        "--threads",
        "3",
        "--iters",
        "40",
    ]);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    r.report
}

/// The site at the fixture's `LOCK-SITE: <tag>` line, in `function`.
fn site<'r>(report: &'r Report, function: &str, tag: &str, kind: WaitKind) -> &'r Site {
    let line = tag_line(FIXTURE_SRC, tag);
    report
        .sites
        .iter()
        .find(|s| {
            s.kind == kind
                && s.function.as_deref().is_some_and(|f| f.ends_with(function))
                && s.file
                    .as_deref()
                    .is_some_and(|f| f.ends_with("pthread-fixture.rs"))
                && s.line == Some(line)
        })
        .unwrap_or_else(|| {
            panic!(
                "no {} site at {function} line {line}:\n{}",
                kind.as_str(),
                top_sites(report, 12)
            )
        })
}

/// The hottest stack of `site` was unwound by CFI down to the thread's root, and
/// holds lock-implementation frames from libc (marked `lock_impl`) before the site
/// frame, then the fixture's own frames out to the thread start.
fn assert_full_stack(site: &Site, lock_call: &str) {
    let stack = &site.stacks[0];
    assert_eq!(stack.unwind.as_deref(), Some("dwarf"), "{stack:#?}");
    let names: Vec<&str> = stack
        .frames
        .iter()
        .map(|f| f.function.as_deref().unwrap_or("?"))
        .collect();
    let at = stack
        .frames
        .iter()
        .position(|f| f.function == site.function && f.line == site.line)
        .unwrap_or_else(|| panic!("site frame missing: {names:#?}"));
    assert!(at >= 1, "lock frames before the site: {names:#?}");
    let lock = &stack.frames[..at];
    assert!(lock.iter().all(|f| f.lock_impl), "{lock:#?}");
    assert!(
        lock.iter()
            .any(|f| f.module.as_deref().is_some_and(|m| m.contains("libc.so"))),
        "glibc frames are present: {names:#?}"
    );
    assert!(
        names[..at].iter().any(|n| n.contains(lock_call)),
        "'{lock_call}' among the lock frames: {names:#?}"
    );
    assert!(!stack.frames[at].lock_impl);
    // Out to the thread's start: std's thread main and glibc's start_thread/clone3.
    assert!(
        names[at..]
            .iter()
            .any(|n| n.contains("start_thread") || n.contains("clone")),
        "the stack reaches the thread's root: {names:#?}"
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn glibc_lock_stacks_reach_the_tagged_lines_with_precise_kinds() {
    require_root();
    let report = pthread_fixture_report();

    let mutex = site(&report, "mutex_section", "pthread.mutex", WaitKind::Mutex);
    assert_eq!(mutex.lock_impl, "glibc");
    assert_full_stack(mutex, "pthread_mutex_lock");

    let rd = site(
        &report,
        "read_section",
        "pthread.rdlock",
        WaitKind::RwlockRead,
    );
    assert_full_stack(rd, "rwlock_rdlock");
    let wr = site(
        &report,
        "write_section",
        "pthread.wrlock",
        WaitKind::RwlockWrite,
    );
    assert_full_stack(wr, "rwlock_wrlock");
    let cond = site(&report, "cond_wait", "pthread.cond", WaitKind::Condvar);
    assert!(!cond.contention, "a condvar wait is an event wait");
    assert_full_stack(cond, "pthread_cond_wait");
    let sem = site(&report, "sem_take", "pthread.sem", WaitKind::Semaphore);
    assert_full_stack(sem, "sem_wait");

    assert_eq!(report.losses.kernel_total(), 0, "{:?}", report.losses);
    assert_eq!(report.losses.truncated_stacks, 0, "{:?}", report.losses);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn rust_std_mutex_stacks_include_std_lock_frames() {
    require_root();
    let report = pthread_fixture_report();
    let std_site = site(&report, "std_section", "pthread.std", WaitKind::Mutex);
    assert_eq!(std_site.lock_impl, "rust-std");
    let stack = &std_site.stacks[0];
    assert_eq!(stack.unwind.as_deref(), Some("dwarf"));
    let lock_frames: Vec<&str> = stack
        .frames
        .iter()
        .take_while(|f| f.lock_impl)
        .filter_map(|f| f.function.as_deref())
        .collect();
    // std is precompiled without frame pointers: `lock_contended` (which calls the
    // frameless `syscall()`) and the futex wait inlined into it come from CFI.
    assert!(
        lock_frames.iter().any(|f| f.contains("lock_contended")),
        "{lock_frames:#?}"
    );
    assert!(
        lock_frames.iter().any(|f| f.contains("futex_wait")),
        "{lock_frames:#?}"
    );
    assert_eq!(lock_frames.first().copied(), Some("syscall"));
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn text_report_folds_lock_frames_unless_expanded() {
    require_root();
    let fixture = demo_bin("pthread-fixture");
    let r = record(&["--print", "--", fixture.to_str().unwrap(), "--iters", "20"]);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    assert!(r.stdout.contains("[lock impl, "), "{}", r.stdout);
    assert!(!r.stdout.contains("__lll_lock_wait"), "{}", r.stdout);

    let dir = common::tempdir();
    let json = dir.join("r.json");
    profiler::report::json::write(&r.report, &json).expect("write report");
    let expanded = std::process::Command::new(common::lockprof())
        .args(["report", "--expand-lock-frames", "--top", "20"])
        .arg(&json)
        .output()
        .expect("run lockprof report");
    let text = String::from_utf8_lossy(&expanded.stdout);
    assert!(expanded.status.success());
    assert!(!text.contains("[lock impl, "), "{text}");
    assert!(text.contains("lll_lock_wait"), "{text}");
    // Folded, the run of glibc frames is one line naming the lock call itself.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("pthread_mutex_lock") && l.contains("[lock impl, ")),
        "{}",
        r.stdout
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn frame_pointers_only_stop_inside_glibc() {
    require_root();
    // The contrast that makes the copies worth it: with `--unwind fp` the same
    // rwlock waits never reach the fixture's line, because glibc has no frame
    // pointers.
    let fixture = demo_bin("pthread-fixture");
    let r = record(&[
        "-q",
        "--unwind",
        "fp",
        "--",
        fixture.to_str().expect("UTF-8 path"),
        "--iters",
        "20",
    ]);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    let line = tag_line(FIXTURE_SRC, "pthread.wrlock");
    assert!(
        !r.report
            .sites
            .iter()
            .any(|s| s.kind == WaitKind::RwlockWrite && s.line == Some(line)),
        "{}",
        top_sites(&r.report, 12)
    );
    // Every stack that was walked was walked by frame pointers. (A wait that returns
    // EAGAIN at a call position the thread's stack cache does not know is counted
    // without a walk: no frames, no method — more of them on a loaded machine.)
    let walked: Vec<_> = r
        .report
        .sites
        .iter()
        .flat_map(|s| s.stacks.iter().map(move |st| (&s.id, st)))
        .filter(|(_, st)| !st.frames.is_empty())
        .collect();
    assert!(!walked.is_empty(), "no stack was walked");
    let other: Vec<_> = walked
        .iter()
        .filter(|(_, st)| st.unwind.as_deref() != Some("fp"))
        .map(|(id, st)| (id, st.unwind.clone(), st.frames.len()))
        .collect();
    assert!(other.is_empty(), "stacks not unwound by fp: {other:?}");
}

/// Kernel stack maps shrunk (`LOCKPROF_TEST_MAX_ENTRIES`) far below the number of
/// distinct frame-pointer stacks a fork/exec-heavy recording brings: without
/// userspace deleting the ids it has read, they would fill within seconds and every
/// later stack would collide (issue 13 item 6: a 30-minute soak lost 162k stacks).
const SHRUNK_STACKS: u32 = 1024;
const SHRUNK_STACKS2: u32 = 512;

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn stack_maps_never_fill_with_the_stacks_of_exited_processes() {
    require_root();
    // lock-churn execs a child every 20 ms (each its own ASLR layout, so its own
    // stacks) while threads come and go; the refresh every 100 ms drains the copies
    // and deletes the frame-pointer stacks read for them.
    let json = common::tempdir().join("report.json");
    let output = std::process::Command::new(common::lockprof())
        .env(
            "LOCKPROF_TEST_MAX_ENTRIES",
            format!("STACKS={SHRUNK_STACKS},STACKS2={SHRUNK_STACKS2},USER_STACKS=256"),
        )
        .args(["record", "--interval", "100ms", "-o"])
        .arg(&json)
        .arg("--")
        .arg(demo_bin("lock-churn"))
        .args(["--seconds", "10", "--threads", "4", "--locks", "64"])
        .args(["--exec-every-ms", "20"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run lockprof");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report = profiler::report::json::read(&json).expect("report");
    let deleted: u64 = stderr
        .lines()
        .find_map(|l| l.strip_suffix(" frame-pointer stacks deleted from the kernel once read"))
        .and_then(|l| l.rsplit("; ").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no deletion count in:\n{stderr}"));
    let capacity = u64::from(SHRUNK_STACKS + SHRUNK_STACKS2);
    assert!(
        deleted > capacity,
        "only {deleted} stacks went through maps of {capacity}: the test did not pass their size\n{stderr}"
    );
    // Only the last 64 exited children are listed; the others are counted.
    let processes = report.targets.len() as u64 + report.exited_children_not_listed;
    assert!(processes > 100, "{processes} processes");
    // Stacks that collide in both hash maps *within one interval* are still counted
    // (buckets are a hash of the stack, and ~20 new stacks land between two reads);
    // without the deletions all but the first ~1,536 stacks would collide. Measured
    // with these sizes: 0–2 of 2,000–2,500 stacks.
    let collisions = report.losses.stack_collisions;
    assert!(
        collisions * 100 <= deleted,
        "{collisions} stack collisions for {deleted} stacks read\n{stderr}"
    );
    // The copy map (shrunk to 256) is emptied at every refresh, so it never fills;
    // a copy can still fail when two CPUs take the same id at once (the probe's id
    // counter is read, then bumped) or the stack page is unreadable.
    let copy_errors = report.losses.user_stack_copy_errors;
    assert!(
        copy_errors * 100 <= deleted,
        "{copy_errors} stack copies failed\n{stderr}"
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn threads_at_one_call_position_share_one_stack_copy() {
    require_root();
    // 384 client threads block at the same few call positions (the read lock, the
    // condvar, the epoch mutex), and exit at different times while the 100 ms
    // refreshes prune what exited threads took.
    let forwarder = demo_bin("demo-targets");
    let r = record(&[
        "--interval",
        "100ms",
        "--",
        forwarder.to_str().expect("UTF-8 path"),
        "forwarder",
        "before",
        "--builds",
        "384",
        "--calls",
        "16",
        "--call-gap-us",
        "0",
    ]);
    assert!(r.output.status.success(), "lockprof failed: {}", r.stderr);
    let copies: u64 = r
        .stderr
        .lines()
        .find_map(|l| l.split_once(" stack copies unwound by CFI"))
        .and_then(|(l, _)| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no copy count in:\n{}", r.stderr));
    // One copy per call position and process, not one per thread (a thread per
    // position would be > 768); a few more when two threads reach a new position at
    // once.
    assert!(
        copies < 100,
        "{copies} stack copies for 384 threads\n{}",
        r.stderr
    );
    // Every blocked wait is on a symbolized stack: rows of threads that came to a
    // position after the thread that copied it had exited still find its frames.
    // (A wait that returned EAGAIN at a position its thread had not blocked at is
    // counted without a walk, on purpose: no frames.)
    let report = &r.report;
    for site in report.sites.iter().filter(|s| s.waits > 0) {
        assert!(site.function.is_some(), "{}", top_sites(report, 12));
        for stack in &site.stacks {
            assert!(!stack.frames.is_empty(), "{site:#?}");
        }
    }
    // Edges and blame keyed by shared stack ids fit their maps (per-thread ids did
    // not: 37k edges and 100k blame rows lost in this run).
    let l = &report.losses;
    assert_eq!(
        (l.edge_map_full, l.blame_map_full, l.user_stack_copy_errors),
        (0, 0, 0),
        "{l:?}"
    );
}

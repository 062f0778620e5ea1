//! Root-only tests of the probe's own contract: how it hooks futex calls, what kernel
//! memory it takes, which processes it follows, and its integrity (issue 13 item 4):
//! full maps counted as losses and no wait counted twice (maps shrunk on purpose with
//! the test-only `LOCKPROF_TEST_MAX_ENTRIES`), stack-copy ids never reused, every
//! wake paired with the wait it ended, threads that share a row slot losing nothing,
//! calls from more positions than a thread's memo holds each counted at their own,
//! futexes sharing a wake-in-flight slot never paired or blamed across.
//!
//! `#[ignore]`d like every kernel test; `cargo xtask test` runs them as root with one
//! test thread.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{demo_bin, fixture_line, lockprof, record, require_root, tempdir};
use profiler::collect::{LoadOptions, Probes};
use profiler::report::TargetOrigin;
use profiler_common::{DWARF_STACK_ID_BASE, Loss, RawAddrKey, in_flight_slot};
use serde_json::Value;

const MIB: u64 = 1 << 20;

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn futex_calls_are_hooked_through_their_own_tracepoints_with_bounded_kernel_memory() {
    require_root();
    let storm = demo_bin("futex-storm");
    let r = record(&[
        "-q",
        "--probe-time",
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
    // lockprof's own CPU is reported too: at least its final drain and symbolization.
    assert!(cost.lockprof_cpu_ns > 0, "{cost:?}");
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

/// The counts `futex-pingpong` prints about its own futex calls.
struct PingPongCalls {
    wait_calls: u64,
    blocked_waits: u64,
    wake_calls: u64,
}

fn pingpong_calls(stdout: &[u8]) -> PingPongCalls {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("{\"round_trips\""))
        .unwrap_or_else(|| panic!("no futex-pingpong result line in:\n{text}"));
    let v: Value = serde_json::from_str(line).expect("futex-pingpong JSON");
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("'{k}' in {line}"));
    PingPongCalls {
        wait_calls: n("wait_calls"),
        blocked_waits: n("blocked_waits"),
        wake_calls: n("wake_calls"),
    }
}

/// Futex calls lockprof may see beyond the ping-pong's own: the runtime's (thread
/// joins, stdout's lock), a handful at most.
const RUNTIME_CALLS: u64 = 16;

/// `lockprof record` of a 2 s ping-pong with the maps shrunk to `sizes`
/// (`LOCKPROF_TEST_MAX_ENTRIES`), draining every 100 ms: its report, and the calls
/// the ping-pong counted itself.
fn record_pingpong_with_maps(sizes: &str) -> (profiler::report::Report, PingPongCalls) {
    let json = tempdir().join("report.json");
    let output = Command::new(lockprof())
        .env("LOCKPROF_TEST_MAX_ENTRIES", sizes)
        .args(["record", "-q", "--interval", "100ms", "-o"])
        .arg(&json)
        .arg("--")
        .arg(demo_bin("futex-pingpong"))
        .args(["--seconds", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("run lockprof");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report = profiler::report::json::read(&json).expect("report");
    (report, pingpong_calls(&output.stdout))
}

/// Every wait and wake call the ping-pong made is either counted once in the totals
/// or counted as lost: never dropped silently, never counted twice by the drains.
fn assert_every_call_counted_once(report: &profiler::report::Report, pp: &PingPongCalls) {
    let t = &report.totals;
    let l = &report.losses;
    let waits =
        t.waits + t.eagain + t.timeouts + t.interrupted + t.other_errors + t.unfinished_waits;
    let accounted = waits + l.wait_map_full;
    assert!(
        (pp.wait_calls..=pp.wait_calls + RUNTIME_CALLS).contains(&accounted),
        "ping-pong made {} wait calls; lockprof counted {waits} + {} lost = {accounted}",
        pp.wait_calls,
        l.wait_map_full
    );
    let wakes = t.wake_calls + l.wake_map_full;
    assert!(
        (pp.wake_calls..=pp.wake_calls + RUNTIME_CALLS).contains(&wakes),
        "ping-pong made {} wake calls; lockprof counted {} + {} lost",
        pp.wake_calls,
        t.wake_calls,
        l.wake_map_full
    );
    assert!(t.waits <= pp.blocked_waits + RUNTIME_CALLS, "{t:?}");
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn full_maps_count_their_losses_and_never_count_a_wait_twice() {
    require_root();
    // Room for one row: each ping-pong thread needs its own, so the maps are full all
    // the time, and drained (read and deleted) at every 100 ms interval.
    let (report, pp) = record_pingpong_with_maps("WAITS=1,WAKES=1");
    let l = &report.losses;
    assert!(
        l.wait_map_full > 0 && l.wake_map_full > 0,
        "one-row maps must overflow: {l:?}"
    );
    assert_every_call_counted_once(&report, &pp);
    // Pairings: one row for the two directions (each thread wakes the other).
    let (report, pp) = record_pingpong_with_maps("EDGES=1");
    let l = &report.losses;
    assert!(
        l.edge_map_full > 0,
        "a one-row edge map must overflow: {l:?}"
    );
    assert_eq!((l.wait_map_full, l.wake_map_full), (0, 0), "{l:?}");
    assert_every_call_counted_once(&report, &pp);
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn threads_that_share_a_row_slot_spill_and_lose_nothing() {
    require_root();
    // One `TASKS` slot for all the ping-pong's threads, as where `pid_max` exceeds the
    // slots and thread ids collide: the first thread to need a row takes the slot, the
    // others get rows in `TASK_SPILL` — and each call is still timed, counted and
    // paired as with a slot of its own.
    let (report, pp) = record_pingpong_with_maps("TASKS=1");
    assert_eq!(report.losses.inflight_map_full, 0, "{:?}", report.losses);
    assert_every_call_counted_once(&report, &pp);
    let t = &report.totals;
    assert!(
        t.waits * 10 >= pp.blocked_waits * 9,
        "{} of {} blocked waits timed",
        t.waits,
        pp.blocked_waits
    );
    let unpaired: u64 = report.sites.iter().map(|s| s.unpaired_waits).sum();
    assert!(
        unpaired * 1000 <= t.waits,
        "{unpaired} of {} blocked waits without their waker",
        t.waits
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn calls_from_more_positions_than_the_memo_holds_are_each_counted_at_their_own() {
    require_root();
    // Three threads each cycle through six wake and six wait positions: the memo of
    // two per kind always misses, so the stacks come from the position slots (and
    // the stack cache behind them) — each wake must be counted once, at its function,
    // and each `EAGAIN` wait once (at a position where no wait ever blocked, its
    // stack is not known: the fast path does not walk).
    let r = record(&["-q", "--", demo_bin("futex-positions").to_str().unwrap()]);
    assert!(r.output.status.success(), "{}", r.stderr);
    let fixture = fixture_line(&r.stdout);
    let per_position = fixture["threads"].as_u64().unwrap() * fixture["rounds"].as_u64().unwrap();
    let positions = fixture["positions"].as_u64().unwrap();
    assert!(per_position > 0 && positions > 2, "{fixture}");
    for i in 0..positions {
        let wake = format!("futex_positions::wake_{i}");
        let waker = r
            .report
            .wakers
            .iter()
            .find(|w| w.function.as_deref() == Some(wake.as_str()))
            .unwrap_or_else(|| panic!("no waker {wake}: {:?}", r.report.wakers));
        assert_eq!(
            (waker.calls, waker.woke_none),
            (per_position, per_position),
            "{wake}"
        );
    }
    let eagain: u64 = r.report.sites.iter().map(|s| s.eagain).sum();
    assert_eq!(eagain, positions * per_position);
    assert_eq!(r.report.losses.kernel_total(), 0, "{:?}", r.report.losses);
}

/// The probes as `lockprof record` loads them by default.
fn load_probes() -> Probes {
    Probes::load(LoadOptions {
        holders: true,
        copy_user_stacks: true,
        syscall_errors: false,
        attach_method: None,
        run_time_stats: false,
    })
    .expect("load probes")
}

/// Load the probes, start `cmd` (which waits a moment before its first futex call),
/// trace it, snapshot every `every` until it exits, and hand each snapshot to `each`;
/// returns the last snapshot and the command's output.
fn trace(
    cmd: &mut Command,
    every: Duration,
    mut each: impl FnMut(&profiler::collect::snapshot::Snapshot),
) -> (
    u32,
    profiler::collect::snapshot::Snapshot,
    std::process::Output,
) {
    let mut probes = load_probes();
    // The workload's first calls must be traced too: it execs only once it is a
    // target (started at once, a fixture made ≈ 4,800 of its 1,080,000 calls before
    // `add_target` on a machine kept busy by another process, and the test missed them).
    let mut child = gated(cmd)
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .spawn()
        .expect("start workload");
    let pid = child.id();
    // Children too: a workload that forks or execs brings its processes' rows.
    probes.add_target(pid, true).expect("add target");
    let mut gate = child.stdin.take().expect("the gate: the shell's stdin");
    gate.write_all(b"go\n").expect("open the gate");
    drop(gate);
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait workload"));
    let deadline = Instant::now() + Duration::from_mins(1);
    // Each snapshot drains what was counted since the previous one: `all` sums them
    // (rows appended, so a key may appear once per snapshot), and stacks are read once.
    let mut all = profiler::collect::snapshot::Snapshot::default();
    let mut seen: BTreeSet<(u32, i32)> = BTreeSet::new();
    // Every stack copy is drained once: its id is never handed out again.
    let mut copies: BTreeSet<i32> = BTreeSet::new();
    let mut drain = |probes: &mut Probes| {
        let snap = probes.snapshot(|k| seen.contains(&k)).expect("snapshot");
        probes
            .drain_copies(|_, tgid, id, _, _| {
                assert!(
                    copies.insert(id),
                    "stack copy {id} (process {tgid}) read twice"
                );
            })
            .expect("drain stack copies");
        seen.extend(snap.stacks.keys().copied());
        each(&snap);
        all.waits.extend(snap.waits);
        all.wakes.extend(snap.wakes);
        all.edges.extend(snap.edges);
        all.blame.extend(snap.blame);
        all.stacks.extend(snap.stacks);
        all.losses = snap.losses;
        all.unfinished_waits = snap.unfinished_waits;
    };
    while !waiter.is_finished() {
        assert!(Instant::now() < deadline, "workload did not finish");
        std::thread::sleep(every);
        drain(&mut probes);
    }
    let out = waiter.join().expect("workload thread");
    drain(&mut probes);
    (pid, all, out)
}

/// `cmd` behind a shell that waits for a line on its stdin, then execs the command
/// in its own place (the same pid; the command's stdin is `/dev/null`). End of file
/// instead of the line: the shell exits without running it.
fn gated(cmd: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.args(["-c", r#"read -r _ && exec "$0" "$@" </dev/null"#])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    sh
}

/// [`trace`] a 2 s `futex-pingpong` (started 300 ms after it is traced), draining
/// every `every`: its pid, the sum of the snapshots, and the calls it counted itself.
fn trace_pingpong(
    every: Duration,
    each: impl FnMut(&profiler::collect::snapshot::Snapshot),
) -> (u32, profiler::collect::snapshot::Snapshot, PingPongCalls) {
    let (pid, snap, out) = trace(
        Command::new(demo_bin("futex-pingpong")).args([
            "--seconds",
            "2",
            "--start-delay-ms",
            "300",
        ]),
        every,
        each,
    );
    assert!(out.status.success());
    (pid, snap, pingpong_calls(&out.stdout))
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn every_ping_pong_wait_is_paired_with_the_partner_thread_that_woke_it() {
    require_root();
    let (pid, snap, pp) = trace_pingpong(Duration::from_millis(500), |_| {});
    let blocked: Vec<_> = snap
        .waits
        .iter()
        .filter(|r| r.tgid == pid && r.counts.blocked > 0)
        .collect();
    // The word both threads hand over: where nearly all blocked waits are.
    let mut by_addr: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &blocked {
        *by_addr.entry(r.uaddr).or_default() += r.counts.blocked;
    }
    let (&word, &n) = by_addr
        .iter()
        .max_by_key(|(_, n)| **n)
        .expect("blocked waits");
    assert!(
        n * 10 >= pp.blocked_waits * 9,
        "{n} of {} blocked waits seen",
        pp.blocked_waits
    );
    // Each thread waits at its own call position (its own stack copy), so a pairing's
    // waiter stack names the waiting thread.
    let mut waiter_tid: BTreeMap<(i32, u64), u32> = BTreeMap::new();
    let mut unpaired = 0;
    for r in blocked.iter().filter(|r| r.uaddr == word) {
        let prev = waiter_tid.insert((r.stack_id, r.leaf_ret), r.tid);
        assert!(
            prev.is_none_or(|t| t == r.tid),
            "stack {} shared by threads",
            r.stack_id
        );
        unpaired += r.counts.unpaired;
    }
    // Measured here (2 vCPUs): 0–9 unpaired blocked waits of 67k–93k per run (at most
    // 1.1 per 10,000), with no loss counted; their cause is not known yet (suspects:
    // the ring's plain, non-atomic slot updates, and a wake that woke nobody racing a
    // waiter's exit before it withdraws from its in-flight slot). Before `ring::newest`
    // skipped the blanked slots of wakes that woke nobody, 15–19 of 80k–94k per run
    // (1.6–2.1 per 10,000) were unpaired, and a probe that put wakes in the ring only at
    // their exit, without the in-flight slot, left 149 of 89k (1.7 per 10,000: the
    // woken thread returned before its waker): the bound of 1.5 per 10,000 catches
    // both, and any systematic race (pairing with the previous wake, losing the
    // record) misses far more.
    assert!(
        unpaired * 20_000 <= n * 3,
        "{unpaired} of {n} blocked waits without their waker; {:?}",
        snap.losses
    );
    let tids: BTreeSet<u32> = waiter_tid.values().copied().collect();
    assert_eq!(tids.len(), 2, "both threads block: {tids:?}");
    let (mut paired, mut woken_to_run) = (0, 0);
    for e in snap.edges.iter().filter(|e| e.tgid == pid) {
        let Some(&waiter) = waiter_tid.get(&(e.waiter_stack_id, e.waiter_leaf_ret)) else {
            continue;
        };
        assert!(
            e.waker_tid != waiter && tids.contains(&e.waker_tid),
            "a wait of thread {waiter} paired with a wake of thread {}",
            e.waker_tid
        );
        paired += e.waits;
        woken_to_run += e.wake_to_run.count;
    }
    assert_eq!(
        paired + unpaired,
        n,
        "every blocked wait on the word is paired once"
    );
    // Wake-to-run: measured for a paired wait when its thread switched in after the
    // wake (the probe counts the others). Every ping-pong wait sleeps until its
    // partner wakes it, but one woken before it slept does not switch: measured here,
    // all but 4–5 of 103k–138k per run (session 16). A probe that mixed up the two
    // counts would measure almost none.
    eprintln!("wake-to-run measured for {woken_to_run} of {paired} paired waits");
    assert!(
        woken_to_run <= paired && woken_to_run * 100 >= paired * 99,
        "wake-to-run measured for {woken_to_run} of {paired} paired waits"
    );
    // Holder blame: a ping-pong wait's window holds one wake, its partner's, which
    // is charged the whole window — one interval per paired wait, every one of them
    // to a release stack the edges name as that waiter's waker (the probe counts
    // this share on the edge row itself; the snapshot hands it back as blame rows).
    let wakers: BTreeSet<(i32, i32, u64)> = snap
        .edges
        .iter()
        .filter(|e| e.tgid == pid)
        .map(|e| (e.waiter_stack_id, e.waker_stack_id, e.waker_leaf_ret))
        .collect();
    let mut intervals = 0;
    for b in snap.blame.iter().filter(|b| {
        b.tgid == pid && waiter_tid.contains_key(&(b.waiter_stack_id, b.waiter_leaf_ret))
    }) {
        assert!(
            wakers.contains(&(b.waiter_stack_id, b.holder_stack_id, b.holder_leaf_ret)),
            "blame charged to a holder that woke none of the waiter's waits: {b:?}"
        );
        assert!(b.ns > 0, "{b:?}");
        intervals += b.intervals;
    }
    assert_eq!(intervals, paired, "one blame interval per paired wait");
}

/// Drains as fast as they can go (no pause between snapshots) while a ping-pong
/// hands a futex back and forth: a drain reads and deletes rows the probe is adding
/// to at that moment, which before the generations (`collect::generation`) lost an
/// add now and then, silently. Every wait and wake the ping-pong made is counted
/// exactly once (no loss is allowed: the maps never fill here), and every blocked
/// wait on the word is paired once or counted unpaired.
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn draining_while_the_probe_counts_loses_nothing() {
    require_root();
    // When each drain ended: with no pause between them, their spacing is what one
    // drain takes (printed, not asserted).
    let mut ends: Vec<Instant> = Vec::new();
    let (pid, snap, pp) = trace_pingpong(Duration::ZERO, |_| ends.push(Instant::now()));
    let drains = ends.len() as u64;
    let mut took: Vec<Duration> = ends.windows(2).map(|w| w[1] - w[0]).collect();
    took.sort();
    let l = &snap.losses;
    assert_eq!(
        (
            l.get(Loss::WaitMapFull),
            l.get(Loss::WakeMapFull),
            l.get(Loss::EdgeMapFull)
        ),
        (0, 0, 0),
        "{l:?}"
    );
    let (mut wait_calls, mut blocked, mut unpaired) = (0, 0, 0);
    for c in snap
        .waits
        .iter()
        .filter(|r| r.tgid == pid)
        .map(|r| &r.counts)
    {
        wait_calls += c.blocked + c.eagain + c.timedout + c.interrupted + c.other_err;
        blocked += c.blocked;
        unpaired += c.unpaired;
    }
    let (mut wake_calls, mut paired) = (0, 0);
    for r in snap.wakes.iter().filter(|r| r.tgid == pid) {
        wake_calls += r.calls;
    }
    for e in snap.edges.iter().filter(|e| e.tgid == pid) {
        paired += e.waits;
    }
    eprintln!(
        "{drains} drains, each {:?} median ({:?}..{:?}); ping-pong: {} wait calls ({} blocked), {} wake calls; counted {wait_calls} ({blocked}), {wake_calls}",
        took.get(took.len() / 2).copied().unwrap_or_default(),
        took.first().copied().unwrap_or_default(),
        took.last().copied().unwrap_or_default(),
        pp.wait_calls,
        pp.blocked_waits,
        pp.wake_calls
    );
    // A drain waits for one RCU grace period (≈ 8 ms here), so ~250 of them fit in
    // the ping-pong; before the generations, ~9,000–18,000 did.
    assert!(drains >= 20, "only {drains} drains: the race was not tried");
    assert!(
        (pp.wait_calls..=pp.wait_calls + RUNTIME_CALLS).contains(&wait_calls),
        "ping-pong made {} wait calls; the drains counted {wait_calls}",
        pp.wait_calls
    );
    assert!(
        (pp.wake_calls..=pp.wake_calls + RUNTIME_CALLS).contains(&wake_calls),
        "ping-pong made {} wake calls; the drains counted {wake_calls}",
        pp.wake_calls
    );
    // Edges and unpaired waits: each blocked wait of the process lands in exactly
    // one of them (the edge row is a third row the drain can race).
    assert_eq!(
        paired + unpaired,
        blocked,
        "blocked waits: {paired} paired + {unpaired} unpaired"
    );
}

/// The fast paths' counts live in the probe's tally slots, which userspace empties
/// with a compare-and-swap while the probes add to them (`collect::tallies`): drained
/// with no pause while three threads make `EAGAIN` waits and wakes of nobody from
/// twelve positions, every call is counted exactly once.
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn tallies_drained_while_the_probe_counts_lose_nothing() {
    require_root();
    let mut drains = 0u64;
    let (pid, snap, out) = trace(
        Command::new(demo_bin("futex-positions")).args(["--rounds", "60000"]),
        Duration::ZERO,
        |_| drains += 1,
    );
    assert!(out.status.success());
    let fixture = fixture_line(&String::from_utf8_lossy(&out.stdout));
    let calls = fixture["threads"].as_u64().unwrap()
        * fixture["rounds"].as_u64().unwrap()
        * fixture["positions"].as_u64().unwrap();
    let l = &snap.losses;
    assert_eq!(
        (l.get(Loss::WaitMapFull), l.get(Loss::WakeMapFull)),
        (0, 0),
        "{l:?}"
    );
    let eagain: u64 = snap
        .waits
        .iter()
        .filter(|r| r.tgid == pid)
        .map(|r| r.counts.eagain)
        .sum();
    let woke_none: u64 = snap
        .wakes
        .iter()
        .filter(|r| r.tgid == pid)
        .map(|r| r.woke_none)
        .sum();
    eprintln!(
        "{drains} drains; {calls} calls of each kind; counted {eagain} EAGAIN waits, {woke_none} wakes of nobody"
    );
    assert!(drains >= 20, "only {drains} drains: the race was not tried");
    assert!(
        (calls..=calls + RUNTIME_CALLS).contains(&eagain),
        "{calls} EAGAIN waits made, {eagain} counted"
    );
    assert!(
        (calls..=calls + RUNTIME_CALLS).contains(&woke_none),
        "{calls} wakes of nobody made, {woke_none} counted"
    );
}

#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn stack_copy_ids_are_never_reused() {
    require_root();
    // Threads and processes come and go (a child exec'd every 100 ms: new call
    // positions, new copies) while snapshots drain and read the copies. A copy belongs
    // to one process: its threads at the same call position share it.
    let mut owner: BTreeMap<i32, u32> = BTreeMap::new();
    let (_, _, out) = trace(
        Command::new(demo_bin("lock-churn")).args([
            "--seconds",
            "3",
            "--threads",
            "4",
            "--locks",
            "256",
            "--exec-every-ms",
            "100",
        ]),
        Duration::from_millis(100),
        |snap| {
            let rows = snap
                .waits
                .iter()
                .map(|r| (r.stack_id, r.tgid, r.tid))
                .chain(snap.wakes.iter().map(|r| (r.stack_id, r.tgid, r.tid)))
                .chain(
                    snap.edges
                        .iter()
                        .map(|e| (e.waker_stack_id, e.tgid, e.waker_tid)),
                );
            for (id, tgid, _) in rows.filter(|(id, _, _)| *id >= DWARF_STACK_ID_BASE) {
                let first = *owner.entry(id).or_insert(tgid);
                assert_eq!(first, tgid, "stack copy id {id} used by two processes");
            }
        },
    );
    assert!(out.status.success());
    // `trace` asserts that no copy id is read twice (in one process or two).
    assert!(owner.len() >= 8, "only {} stack copies taken", owner.len());
    let processes: BTreeSet<u32> = owner.values().copied().collect();
    assert!(
        processes.len() >= 2,
        "copies of {} process(es): lock-churn's children were not traced",
        processes.len()
    );
}

/// One pair of the floor object (`profiler-ebpf/src/floor.rs`), priced on a 2 s
/// ping-pong: BPF ns per program run and per futex call of the ping-pong, and the
/// waits it timed.
struct FloorRun {
    pair: &'static str,
    runs: u64,
    run_ns: u64,
    calls: u64,
    blocked_waits: u64,
    timed: u64,
    /// Frame records read (`site`, `wakers`).
    frames: u64,
    /// Blocked waits whose waker was found (`wakers`, `holders`).
    paired: u64,
    /// Off-CPU periods of the ping-pong's threads ended (`holders`).
    off_periods: u64,
}

impl FloorRun {
    fn per_call(&self) -> f64 {
        self.run_ns as f64 / self.calls.max(1) as f64
    }
}

/// The floor of timing a futex wait on this machine (issue 11 items 2 and 6b): minimal
/// enter/exit program pairs — the target filter alone, then a clock read at both ends
/// with the start time in an array slot, in task-local storage, in a hash by thread
/// id; then the array pair reading one frame record per call (the least that tells
/// call paths apart), and that plus the clock at each wake kept per futex (the least
/// that names a blocked wait's waker) — each attached alone to `futex-pingpong` with
/// its two threads on one CPU (as `cargo xtask bench overhead`'s row b), priced by the
/// kernel's run-time statistics, next to lockprof's own probe in the same run. Prints
/// the table the README quotes; asserts only what each pair must do (time every
/// blocked wait of the ping-pong, read a frame record at each call, find each blocked
/// wait's waker), never a timing.
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn floor_of_timing_a_futex_wait() {
    use aya::maps::{Array, PerCpuArray};
    use aya::programs::{BtfTracePoint, TracePoint};
    use profiler_common::{GLOBAL_TASK_PID_OFFSET, GLOBAL_TASK_TGID_OFFSET};

    require_root();
    // Held for the whole test: run-time statistics are on while this fd is open.
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("BPF_ENABLE_STATS");
    // aya 0.14 has no type for task-local storage: it creates the map only when told
    // to accept map types it cannot wrap (the programs use it, userspace never does).
    // `floor_switch` reads the ids of `sched_switch`'s tasks where lockprof's does.
    let ids = profiler::collect::task_id_offsets().expect("task_struct offsets from BTF");
    let btf = aya::Btf::from_sys_fs().expect("kernel BTF");
    let mut ebpf = aya::EbpfLoader::new()
        .allow_unsupported_maps()
        .override_global(GLOBAL_TASK_TGID_OFFSET, &ids.tgid, true)
        .override_global(GLOBAL_TASK_PID_OFFSET, &ids.pid, true)
        .load(aya::include_bytes_aligned!(concat!(
            env!("OUT_DIR"),
            "/lockprof-floor-probes"
        )))
        .expect("load the floor object");
    let cpu = last_allowed_cpu().to_string();
    let mut runs = Vec::new();
    for pair in ["none", "array", "task", "hash", "site", "wakers", "holders"] {
        let mut links = Vec::new();
        // `taskset` execs the ping-pong: the pid is its own.
        let child = Command::new("taskset")
            .args(["-c", &cpu])
            .arg(demo_bin("futex-pingpong"))
            .args(["--seconds", "2", "--start-delay-ms", "300"])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start futex-pingpong");
        let mut tgid: Array<_, u32> =
            Array::try_from(ebpf.map_mut("FLOOR_TGID").expect("FLOOR_TGID")).expect("array");
        tgid.set(0, child.id(), 0).expect("set the target");
        for (end, tp) in [("enter", "sys_enter_futex"), ("exit", "sys_exit_futex")] {
            let name = format!("floor_{pair}_{end}");
            let prog: &mut TracePoint = ebpf
                .program_mut(&name)
                .expect("program")
                .try_into()
                .expect("tracepoint");
            if prog.fd().is_err() {
                prog.load().expect("load program");
            }
            links.push((name, prog.attach("syscalls", tp).expect("attach")));
        }
        let switch = (pair == "holders").then(|| {
            let prog: &mut BtfTracePoint = ebpf
                .program_mut("floor_switch")
                .expect("floor_switch")
                .try_into()
                .expect("BTF tracepoint");
            if prog.fd().is_err() {
                prog.load("sched_switch", &btf).expect("load floor_switch");
            }
            prog.attach().expect("attach floor_switch")
        });
        let names: Vec<String> = links
            .iter()
            .map(|(name, _)| name.clone())
            .chain(switch.is_some().then(|| "floor_switch".to_owned()))
            .collect();
        let stats_of = |ebpf: &aya::Ebpf| -> (u64, u64) {
            names.iter().fold((0, 0), |(n, ns), name| {
                let info = ebpf.program(name).expect("program").info().expect("info");
                (n + info.run_count(), ns + info.run_time().as_nanos() as u64)
            })
        };
        let before = stats_of(&ebpf);
        let out = child.wait_with_output().expect("futex-pingpong");
        assert!(out.status.success());
        let after = stats_of(&ebpf);
        for (name, link) in links {
            let prog: &mut TracePoint = ebpf.program_mut(&name).unwrap().try_into().unwrap();
            prog.detach(link).expect("detach");
        }
        if let Some(link) = switch {
            let prog: &mut BtfTracePoint = ebpf
                .program_mut("floor_switch")
                .unwrap()
                .try_into()
                .unwrap();
            prog.detach(link).expect("detach floor_switch");
        }
        // Each counter pair summed over the CPUs, then zeroed for the next pair.
        let mut take = |name: &str| -> [u64; 2] {
            let mut map: PerCpuArray<_, [u64; 2]> =
                PerCpuArray::try_from(ebpf.map_mut(name).expect(name)).unwrap();
            let per_cpu = map.get(&0, 0).expect(name);
            let sum = per_cpu
                .iter()
                .fold([0, 0], |[a, b], v| [a + v[0], b + v[1]]);
            let zero = aya::maps::PerCpuValues::try_from(vec![[0u64; 2]; per_cpu.len()]).unwrap();
            map.set(0, zero, 0).expect("reset");
            sum
        };
        let [timed, _] = take("FLOOR_TIMED");
        let [frames, paired] = take("FLOOR_SEEN");
        let [off_periods, _] = take("FLOOR_OFF_CPU");
        let pp = pingpong_calls(&out.stdout);
        runs.push(FloorRun {
            pair,
            runs: after.0 - before.0,
            run_ns: after.1 - before.1,
            calls: pp.wait_calls + pp.wake_calls,
            blocked_waits: pp.blocked_waits,
            timed,
            frames,
            paired,
            off_periods,
        });
    }
    // lockprof's probe on the same load, in the same run.
    let r = record(&[
        "-q",
        "--probe-time",
        "--",
        "taskset",
        "-c",
        &cpu,
        demo_bin("futex-pingpong").to_str().unwrap(),
        "--seconds",
        "2",
    ]);
    let pp = pingpong_calls(&r.output.stdout);
    let cost = &r.report.probe_cost;
    let lockprof_per_call = cost.bpf_run_ns as f64 / (pp.wait_calls + pp.wake_calls) as f64;
    eprintln!(
        "floor of timing a futex wait (futex-pingpong 2 s on CPU {cpu}; every futex call of the machine runs each pair)"
    );
    eprintln!(
        "  pair      runs       ns/run   ns per ping-pong futex call   waits timed / blocked   frames read   wakers found   off-CPU periods"
    );
    for f in &runs {
        eprintln!(
            "  {:<8} {:>8} {:>10.1} {:>14.1} {:>22} {:>13} {:>14} {:>17}",
            f.pair,
            f.runs,
            f.run_ns as f64 / f.runs.max(1) as f64,
            f.per_call(),
            format!("{} / {}", f.timed, f.blocked_waits),
            f.frames,
            f.paired,
            f.off_periods,
        );
    }
    eprintln!(
        "  lockprof {:>8} {:>10.1} {:>14.1}",
        cost.bpf_runs,
        cost.bpf_run_ns as f64 / cost.bpf_runs.max(1) as f64,
        lockprof_per_call
    );
    for f in &runs {
        assert!(
            f.runs >= f.calls,
            "{}: {} runs for {} calls",
            f.pair,
            f.runs,
            f.calls
        );
        // The ping-pong is built with frame pointers: one record read per futex call
        // (and per runtime call that has one).
        let reads_frames = matches!(f.pair, "site" | "wakers" | "holders");
        assert!(
            !reads_frames || (f.calls..=f.calls + RUNTIME_CALLS).contains(&f.frames),
            "{}: read {} frame records for {} calls",
            f.pair,
            f.frames,
            f.calls
        );
        assert_eq!(reads_frames, f.frames > 0, "{}: frame records", f.pair);
        // Every blocked wait of a ping-pong is ended by its partner's wake, the last
        // one on their futex when it returns.
        if matches!(f.pair, "wakers" | "holders") {
            assert!(
                f.paired + RUNTIME_CALLS >= f.timed && f.paired <= f.timed,
                "{}: found the waker of {} of {} timed waits",
                f.pair,
                f.paired,
                f.timed
            );
        } else {
            assert_eq!(f.paired, 0, "{}: only the wakers pairs pair", f.pair);
        }
        // Each blocked wait took its thread off the CPU and back.
        if f.pair == "holders" {
            assert!(
                f.off_periods + RUNTIME_CALLS >= f.timed,
                "holders: {} off-CPU periods for {} blocked waits",
                f.off_periods,
                f.timed
            );
        } else {
            assert_eq!(f.off_periods, 0, "{}: no context-switch program", f.pair);
        }
        if f.pair == "none" {
            assert_eq!(f.timed, 0, "the filter-only pair times nothing");
        } else {
            // Every blocked wait is timed, once; the few runtime waits (thread join)
            // may add to them.
            assert!(
                f.timed >= f.blocked_waits && f.timed <= f.blocked_waits + RUNTIME_CALLS,
                "{}: timed {} of {} blocked waits",
                f.pair,
                f.timed,
                f.blocked_waits
            );
        }
    }
}

/// The last CPU this test may run on (`Cpus_allowed_list`), where the floor pairs'
/// ping-pong runs with both threads, as in `cargo xtask bench overhead`'s row b.
fn last_allowed_cpu() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    list.trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Cpus_allowed_list {list:?}"))
}

/// One side of a ping-pong on `word` (0: this side's turn is `me`): wait for the turn
/// (100 ms timeouts, so a stop is never missed), hand it over and wake the partner,
/// until `stop`. Returns how many of its waits blocked (returned 0). Each `SIDE` is
/// its own function (its timeout differs by `SIDE` ns, so no two are folded into
/// one): its waits and wakes have their own stacks, which name the thread in edge
/// and blame rows — threads at one call position would share a stack.
#[inline(never)]
fn hand_back_and_forth<const SIDE: i64>(word: &AtomicU32, me: u32, stop: &AtomicBool) -> u64 {
    const FUTEX_WAIT_PRIVATE: i32 = 128;
    const FUTEX_WAKE_PRIVATE: i32 = 129;
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000 + SIDE,
    };
    let mut blocked = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = word.load(Ordering::Acquire);
        if now != me {
            // SAFETY: FUTEX_WAIT on a live, aligned u32; `ts` outlives the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    FUTEX_WAIT_PRIVATE,
                    now,
                    &raw const ts,
                )
            };
            if r == 0 {
                blocked += 1;
            }
            continue;
        }
        word.store(1 - me, Ordering::Release);
        // SAFETY: FUTEX_WAKE on a live, aligned u32.
        unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), FUTEX_WAKE_PRIVATE, 1) };
    }
    blocked
}

/// Two futexes whose keys share a slot of the probe's wakes-in-flight array, handed
/// back and forth by two pairs of threads at once: their wakes overwrite each other's
/// announcements, and two CPUs' stores can interleave into one record (one futex's
/// key with the other's wake). A wait must still be counted once, never be paired
/// with a thread of the other pair, and never have its window charged to one. (Before
/// records were tagged with their futex, a run of this test paired waits across.)
#[test]
#[ignore = "needs root + BPF: cargo xtask test"]
fn futexes_sharing_a_wake_slot_never_pair_or_blame_across() {
    require_root();
    let pid = std::process::id();
    // Two words of one buffer whose (process, address) keys share a slot.
    let words: Vec<AtomicU32> = (0..1 << 16).map(|_| AtomicU32::new(0)).collect();
    let slot_of = |w: &AtomicU32| {
        in_flight_slot(&RawAddrKey {
            tgid: pid,
            pad: 0,
            uaddr: w.as_ptr() as u64,
        })
    };
    let mut first: BTreeMap<u32, usize> = BTreeMap::new();
    let (i, j) = words
        .iter()
        .enumerate()
        .find_map(|(j, w)| first.insert(slot_of(w), j).map(|i| (i, j)))
        .expect("two words sharing a slot");
    let pair_words = [&words[i], &words[j]];
    let mut probes = load_probes();
    probes.add_target(pid, false).expect("add target");
    let stop = AtomicBool::new(false);
    // (thread id, pair, blocked waits) of each side.
    let sides: Vec<(u32, usize, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let (pair, me) = (k / 2, (k % 2) as u32);
                let (word, stop) = (pair_words[pair], &stop);
                s.spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::gettid() } as u32;
                    let blocked = match k {
                        0 => hand_back_and_forth::<0>(word, me, stop),
                        1 => hand_back_and_forth::<1>(word, me, stop),
                        2 => hand_back_and_forth::<2>(word, me, stop),
                        _ => hand_back_and_forth::<3>(word, me, stop),
                    };
                    (tid, pair, blocked)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("side"))
            .collect()
    });
    let snap = probes.snapshot(|_| false).expect("snapshot");
    let pair_of: BTreeMap<u32, usize> = sides.iter().map(|&(t, p, _)| (t, p)).collect();
    // The hand-overs' calls: the pairs' threads on the two words. (The same threads
    // can also block in the standard library as they start or end — two of them at
    // one position, sharing its stack — which this test does not count.)
    let ours = |tgid: u32, tid: u32, uaddr: u64| {
        tgid == pid
            && pair_of.contains_key(&tid)
            && pair_words.iter().any(|w| w.as_ptr() as u64 == uaddr)
    };
    // Every blocked wait counted, once; a thread's waits name it by their stack.
    let mut waiter_of: BTreeMap<(i32, u64), u32> = BTreeMap::new();
    let (mut blocked, mut unpaired) = (BTreeMap::<u32, u64>::new(), 0);
    for r in snap.waits.iter().filter(|r| ours(r.tgid, r.tid, r.uaddr)) {
        *blocked.entry(r.tid).or_default() += r.counts.blocked;
        unpaired += r.counts.unpaired;
        if r.counts.blocked > 0 {
            let prev = waiter_of.insert((r.stack_id, r.leaf_ret), r.tid);
            assert!(prev.is_none_or(|t| t == r.tid), "stack shared: {r:?}");
        }
    }
    for &(tid, _, n) in &sides {
        assert_eq!(
            blocked.get(&tid).copied().unwrap_or(0),
            n,
            "thread {tid}'s blocked waits; {:?}",
            snap.losses
        );
    }
    let total: u64 = sides.iter().map(|s| s.2).sum();
    assert!(total > 1000, "only {total} blocked waits");
    let mut paired = 0;
    for e in snap.edges.iter().filter(|e| e.tgid == pid) {
        let Some(&waiter) = waiter_of.get(&(e.waiter_stack_id, e.waiter_leaf_ret)) else {
            continue;
        };
        assert!(
            e.waker_tid != waiter && pair_of.get(&e.waker_tid) == pair_of.get(&waiter),
            "a wait of thread {waiter} (pair {:?}) paired with thread {} (pair {:?})",
            pair_of.get(&waiter),
            e.waker_tid,
            pair_of.get(&e.waker_tid)
        );
        paired += e.waits;
    }
    assert_eq!(
        paired + unpaired,
        total,
        "every blocked wait paired or not, once"
    );
    // Most waits still find their waker: in its futex's own ring once it returned.
    assert!(
        paired * 2 > total,
        "{paired} of {total} blocked waits paired"
    );
    // Blame: to the partner's release stack, or to nobody known.
    let wakes_of: BTreeMap<(i32, u64), u32> = snap
        .wakes
        .iter()
        .filter(|r| ours(r.tgid, r.tid, r.uaddr))
        .map(|r| ((r.stack_id, r.leaf_ret), r.tid))
        .collect();
    let mut unknown_ns = 0;
    for b in snap.blame.iter().filter(|b| b.tgid == pid) {
        let Some(&waiter) = waiter_of.get(&(b.waiter_stack_id, b.waiter_leaf_ret)) else {
            continue;
        };
        if b.earlier() {
            unknown_ns += b.ns;
            continue;
        }
        let holder = wakes_of.get(&(b.holder_stack_id, b.holder_leaf_ret));
        assert!(
            holder.is_some_and(|h| *h != waiter && pair_of.get(h) == pair_of.get(&waiter)),
            "thread {waiter}'s wait charged to {holder:?}: {b:?}"
        );
    }
    println!(
        "{total} blocked waits: {paired} paired, {unpaired} unpaired; {} ms charged to no known holder; {:?}",
        unknown_ns / 1_000_000,
        snap.losses
    );
}

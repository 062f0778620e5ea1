//! `cargo xtask bench storm`: `futex-storm` alternately
//! unprofiled and under `lockprof record`, `--runs` times each in one invocation
//! (alternating, and swapping which goes first, so that drift of a noisy 2-core
//! machine hits both sides alike); the table of throughput, futex rates, losses and BPF
//! cost; the goal verdict; and `target/bench/storm.json`.
//!
//! Must not: change what the program does (knobs are passed through, not tuned here).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use super::{Stats, mark};
use crate::demo::{build_release_bins, require_root};
use crate::demos::show_value;
use crate::report::{LockReport, human_count, human_ns};
use crate::run::{Cmd, release_bin, say, show, target_dir, write_json};
use crate::setup::setup;

/// The overhead goal: at most this much throughput lost…
const MAX_LOSS_PCT: f64 = 5.0;
/// …at a load of at least this many blocked futex waits per second…
const MIN_WAITS_PER_S: f64 = 200_000.0;
// …with zero losses.

/// One profiled run, as lockprof reported it.
struct ProfiledRun {
    ops_per_s: f64,
    waits_per_s: f64,
    wait_calls_per_s: f64,
    wakes_per_s: f64,
    losses: Vec<(String, u64)>,
    bpf_ns_per_s: f64,
    bpf_ns_per_run: f64,
    report: String,
}

fn storm_ops_per_s(stdout: &[u8]) -> Result<f64> {
    super::result_field(stdout, "futex-storm", "ops", "ops_per_s")
}

pub(super) fn storm(flags: &BTreeMap<String, u64>, holders: bool) -> Result<()> {
    let runs = flags.get("runs").copied().unwrap_or(5);
    let threads = flags.get("threads").copied().unwrap_or(8);
    let duration_ms = flags.get("duration-ms").copied().unwrap_or(3000);
    require_root("'cargo xtask bench storm'")?;
    setup()?;
    build_release_bins()?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create '{}'", dir.display()))?;
    let storm = release_bin("futex-storm");
    let storm_args = [
        "--threads".to_owned(),
        threads.to_string(),
        "--duration-ms".to_owned(),
        duration_ms.to_string(),
    ];

    let mut unprofiled = Vec::new();
    let mut profiled: Vec<ProfiledRun> = Vec::new();
    for i in 0..runs {
        // Swap the order every run so a trend (thermal, other builds) cancels out.
        let profiled_first = i % 2 == 1;
        for profile in [profiled_first, !profiled_first] {
            if profile {
                say(&format!(
                    "bench storm: run {}/{runs}, under lockprof",
                    i + 1
                ));
                let report = dir.join(format!("storm-run{}.json", i + 1));
                let _ = std::fs::remove_file(&report);
                let out = Cmd::new(release_bin("lockprof"))
                    // The report's BPF time needs the kernel's run-time statistics.
                    .args(["record", "-q", "--probe-time", "-o"])
                    .arg(&report)
                    .args(if holders {
                        &[][..]
                    } else {
                        &["--no-holders"][..]
                    })
                    .arg("--")
                    .arg(&storm)
                    .args(&storm_args)
                    .capture()?;
                profiled.push(read_profiled(&out.stdout, &report)?);
            } else {
                say(&format!("bench storm: run {}/{runs}, unprofiled", i + 1));
                let out = Cmd::new(&storm).args(&storm_args).capture()?;
                unprofiled.push(storm_ops_per_s(&out.stdout)?);
            }
        }
    }

    let plain = Stats::of(&unprofiled);
    let prof = Stats::of(&profiled.iter().map(|r| r.ops_per_s).collect::<Vec<_>>());
    let waits = Stats::of(&profiled.iter().map(|r| r.waits_per_s).collect::<Vec<_>>());
    let calls = Stats::of(
        &profiled
            .iter()
            .map(|r| r.wait_calls_per_s)
            .collect::<Vec<_>>(),
    );
    let wakes = Stats::of(&profiled.iter().map(|r| r.wakes_per_s).collect::<Vec<_>>());
    let lost: Vec<f64> = profiled
        .iter()
        // Summed as integers: an empty f64 sum is -0.0, which would print as "-0".
        .map(|r| r.losses.iter().map(|(_, n)| *n).sum::<u64>() as f64)
        .collect();
    let lost_stats = Stats::of(&lost);
    let bpf = Stats::of(&profiled.iter().map(|r| r.bpf_ns_per_s).collect::<Vec<_>>());
    let bpf_per_run = Stats::of(
        &profiled
            .iter()
            .map(|r| r.bpf_ns_per_run)
            .collect::<Vec<_>>(),
    );
    // Probe CPU per blocked wait: comparable across runs whose throughput differs.
    let bpf_per_wait = Stats::of(
        &profiled
            .iter()
            .map(|r| r.bpf_ns_per_s / r.waits_per_s.max(1.0))
            .collect::<Vec<_>>(),
    );
    let loss_pct = 100.0 * (1.0 - prof.median / plain.median);

    let mut reasons = Vec::new();
    let loss_ok = loss_pct <= MAX_LOSS_PCT;
    let load_ok = waits.median >= MIN_WAITS_PER_S;
    let losses_ok = lost_stats.max == 0.0;
    reasons.push(mark(
        loss_ok,
        &format!("throughput loss {loss_pct:.1}% (goal ≤ {MAX_LOSS_PCT}%)"),
    ));
    reasons.push(mark(
        load_ok,
        &format!(
            "load {} blocked futex waits/s (goal ≥ {})",
            human_count(waits.median),
            human_count(MIN_WAITS_PER_S)
        ),
    ));
    reasons.push(mark(
        losses_ok,
        &format!(
            "lost events: {} at most in a run (goal 0)",
            show_value(lost_stats.max)
        ),
    ));
    let pass = loss_ok && load_ok && losses_ok;

    // The table.
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nlockprof on a futex storm, {threads} threads on one std Mutex, {duration_ms} ms, \
         {runs} runs unprofiled + {runs} under lockprof{} (alternating)",
        if holders { "" } else { " --no-holders" }
    );
    let _ = writeln!(
        t,
        "  {:<40} {:>10} {:>10} {:>10}",
        "", "median", "min", "max"
    );
    let row = |t: &mut String, name: &str, s: Stats, unit: &str| {
        let _ = writeln!(
            t,
            "  {name:<40} {:>10} {:>10} {:>10}",
            format!("{}{unit}", human_count(s.median)),
            format!("{}{unit}", human_count(s.min)),
            format!("{}{unit}", human_count(s.max)),
        );
    };
    row(&mut t, "throughput unprofiled (ops/s)", plain, "");
    row(&mut t, "throughput under lockprof (ops/s)", prof, "");
    let _ = writeln!(
        t,
        "  {:<40} {:>10}   (1 − median profiled / median unprofiled)",
        "throughput loss",
        format!("{loss_pct:.1}%")
    );
    row(&mut t, "blocked futex waits/s (lockprof)", waits, "");
    row(&mut t, "all FUTEX_WAIT calls/s (lockprof)", calls, "");
    row(&mut t, "FUTEX_WAKE calls/s (lockprof)", wakes, "");
    let _ = writeln!(
        t,
        "  {:<40} {:>10} {:>10} {:>10}",
        "lost events per run (report 'losses')",
        show_value(lost_stats.median),
        show_value(lost_stats.min),
        show_value(lost_stats.max)
    );
    let kinds: BTreeMap<&str, u64> = profiled
        .iter()
        .flat_map(|r| r.losses.iter().map(|(k, n)| (k.as_str(), *n)))
        .fold(BTreeMap::new(), |mut m, (k, n)| {
            *m.entry(k).or_default() += n;
            m
        });
    if !kinds.is_empty() {
        let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(t, "  {:<40} {}", "  of which (all runs)", list.join(", "));
    }
    let _ = writeln!(
        t,
        "  {:<40} {:>10} {:>10} {:>10}   ({:.1}% of one CPU; {} per program run)",
        "BPF run time per second recorded",
        format!("{}/s", human_ns(bpf.median as u64)),
        format!("{}/s", human_ns(bpf.min as u64)),
        format!("{}/s", human_ns(bpf.max as u64)),
        bpf.median / 1e7,
        human_ns(bpf_per_run.median as u64),
    );
    let _ = writeln!(
        t,
        "  {:<40} {:>10} {:>10} {:>10}",
        "BPF run time per blocked wait",
        human_ns(bpf_per_wait.median as u64),
        human_ns(bpf_per_wait.min as u64),
        human_ns(bpf_per_wait.max as u64),
    );
    let _ = writeln!(
        t,
        "goal: ≤ {MAX_LOSS_PCT}% throughput loss at ≥ {} blocked futex waits/s, zero losses: {}",
        human_count(MIN_WAITS_PER_S),
        if pass { "PASS" } else { "FAIL" }
    );
    for r in &reasons {
        let _ = writeln!(t, "  {r}");
    }
    let path = dir.join("storm.json");
    let _ = write!(
        t,
        "per-run lockprof reports: {}/storm-run<N>.json; results: {}",
        show(&dir),
        show(&path)
    );
    println!("{t}");

    let json = json!({
        "benchmark": "storm",
        "config": { "program": "futex-storm", "threads": threads, "duration_ms": duration_ms, "runs": runs, "holders": holders },
        "bpf_ns_per_blocked_wait": bpf_per_wait.to_json(),
        "unprofiled_ops_per_s": unprofiled,
        "profiled": profiled.iter().map(|r| json!({
            "ops_per_s": r.ops_per_s,
            "blocked_waits_per_s": r.waits_per_s,
            "wait_calls_per_s": r.wait_calls_per_s,
            "wake_calls_per_s": r.wakes_per_s,
            "losses": r.losses.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "bpf_run_ns_per_s": r.bpf_ns_per_s,
            "bpf_run_ns_per_run": r.bpf_ns_per_run,
            "report": r.report,
        })).collect::<Vec<_>>(),
        "summary": {
            "unprofiled_ops_per_s": plain.to_json(),
            "profiled_ops_per_s": prof.to_json(),
            "throughput_loss_pct": loss_pct,
            "blocked_waits_per_s": waits.to_json(),
            "wait_calls_per_s": calls.to_json(),
            "wake_calls_per_s": wakes.to_json(),
            "lost_events_per_run": lost_stats.to_json(),
            "bpf_run_ns_per_s": bpf.to_json(),
        },
        "goal": {
            "max_loss_pct": MAX_LOSS_PCT,
            "min_blocked_waits_per_s": MIN_WAITS_PER_S,
            "zero_losses": true,
            "pass": pass,
            "checks": reasons,
        },
    });
    write_json(&path, &json)
}

fn read_profiled(stdout: &[u8], report_path: &Path) -> Result<ProfiledRun> {
    let ops_per_s = storm_ops_per_s(stdout)?;
    let report = LockReport::read(report_path)?;
    let secs = report.duration_s();
    if secs <= 0.0 {
        bail!("'{}' has no recording duration", report_path.display());
    }
    let (bpf_ns, bpf_runs) = report.bpf_cost();
    Ok(ProfiledRun {
        ops_per_s,
        waits_per_s: report.waits() as f64 / secs,
        wait_calls_per_s: report.wait_calls() as f64 / secs,
        wakes_per_s: report.wake_calls() as f64 / secs,
        losses: report.losses(),
        bpf_ns_per_s: bpf_ns as f64 / secs,
        bpf_ns_per_run: if bpf_runs > 0 {
            bpf_ns as f64 / bpf_runs as f64
        } else {
            0.0
        },
        report: show(report_path),
    })
}

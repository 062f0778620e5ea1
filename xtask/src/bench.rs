//! `cargo xtask bench overhead` and `cargo xtask bench demos`: benchmarks that report,
//! never assert (a failed goal prints FAIL and still exits 0; the test suite is
//! `cargo xtask test`).
//!
//! Owns:
//! - `overhead`: `futex-storm` alternately unprofiled and under `lockprof record`,
//!   `--runs` times each in one invocation (alternating, and swapping which goes first,
//!   so that drift of a noisy 2-core machine hits both sides alike); the table of
//!   throughput, futex rates, losses and BPF cost; the goal verdict; and
//!   `target/bench/overhead.json`.
//! - `demos`: each demo pair `--runs` times with the spec's default knobs and without
//!   lockprof, median/min/max of the headline, the spec's assertions on the medians,
//!   and `target/bench/demos.json`.
//!
//! Must not: change what the programs do (knobs are passed through, not tuned here).

mod gate;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::demo::{build_release_bins, require_root};
use crate::demos::{self, Check, DemoRun, Lookup, improvement, show_ratio, show_value};
use crate::report::{LockReport, human_count, human_ns};
use crate::run::{Cmd, release_bin, say, show, target_dir, write_json};
use crate::setup::setup;

/// The overhead goal: at most this much throughput lost…
const MAX_LOSS_PCT: f64 = 5.0;
/// …at a load of at least this many blocked futex waits per second…
const MIN_WAITS_PER_S: f64 = 200_000.0;
// …with zero losses.

pub fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("overhead") => {
            // `--no-holders` measures lockprof without its context-switch probe.
            let (switches, rest): (Vec<String>, Vec<String>) =
                args[1..].iter().cloned().partition(|a| a == "--no-holders");
            let flags = parse_flags(&rest, &["runs", "threads", "duration-ms"])?;
            overhead(&flags, switches.is_empty())
        }
        Some("demos") => {
            let flags = parse_flags(&args[1..], &["runs"])?;
            demos_bench(flags.get("runs").copied().unwrap_or(3))
        }
        Some("gate") => gate::gate(
            parse_flags(&args[1..], &["runs"])?
                .get("runs")
                .copied()
                .unwrap_or(3),
        ),
        Some(other) => {
            bail!("unknown benchmark '{other}' (expected 'overhead', 'demos' or 'gate')")
        }
        None => bail!("which benchmark? 'cargo xtask bench overhead' or 'cargo xtask bench demos'"),
    }
}

/// `--name N` / `--name=N` integer flags, only the `allowed` names, each > 0.
fn parse_flags(args: &[String], allowed: &[&str]) -> Result<BTreeMap<String, u64>> {
    let mut flags = BTreeMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            bail!("unexpected argument '{arg}'");
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        if !allowed.contains(&name) {
            let list: Vec<String> = allowed.iter().map(|a| format!("--{a}")).collect();
            bail!("unknown option '--{name}' (accepted: {})", list.join(", "));
        }
        let value = inline
            .or_else(|| it.next().cloned())
            .with_context(|| format!("'--{name}' needs a value"))?;
        let n: u64 = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("'--{name}' expects a positive integer, got '{value}'"))?;
        flags.insert(name.to_owned(), n);
    }
    Ok(flags)
}

/// Median, min and max of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Stats {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Stats {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            f64::midpoint(v[n / 2 - 1], v[n / 2])
        };
        Stats {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    fn to_json(self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

// ---------------------------------------------------------------------------------------
// overhead
// ---------------------------------------------------------------------------------------

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
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("{\"ops\""))
        .context("futex-storm printed no JSON result line ('{\"ops\"…')")?;
    let v: Value = serde_json::from_str(line).context("parse futex-storm's JSON line")?;
    v.get("ops_per_s")
        .and_then(Value::as_f64)
        .context("futex-storm's JSON has no 'ops_per_s'")
}

fn overhead(flags: &BTreeMap<String, u64>, holders: bool) -> Result<()> {
    let runs = flags.get("runs").copied().unwrap_or(5);
    let threads = flags.get("threads").copied().unwrap_or(8);
    let duration_ms = flags.get("duration-ms").copied().unwrap_or(3000);
    require_root("'cargo xtask bench overhead'")?;
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
                    "bench overhead: run {}/{runs}, under lockprof",
                    i + 1
                ));
                let report = dir.join(format!("overhead-run{}.json", i + 1));
                let _ = std::fs::remove_file(&report);
                let out = Cmd::new(release_bin("lockprof"))
                    .args(["record", "-q", "-o"])
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
                say(&format!("bench overhead: run {}/{runs}, unprofiled", i + 1));
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
        "\nlockprof overhead: futex-storm, {threads} threads on one std Mutex, {duration_ms} ms, \
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
    let path = dir.join("overhead.json");
    let _ = write!(
        t,
        "per-run lockprof reports: {}/overhead-run<N>.json; results: {}",
        show(&dir),
        show(&path)
    );
    println!("{t}");

    let json = json!({
        "benchmark": "overhead",
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

fn mark(ok: bool, text: &str) -> String {
    format!("{} {text}", if ok { "ok  " } else { "FAIL" })
}

// ---------------------------------------------------------------------------------------
// demos
// ---------------------------------------------------------------------------------------

/// Medians of every numeric metric and param of one variant over the runs.
struct Medians(BTreeMap<String, f64>);

impl Lookup for Medians {
    fn get(&self, key: &str) -> Option<f64> {
        self.0.get(key).copied()
    }
}

impl Medians {
    fn of(runs: &[DemoRun]) -> Medians {
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for run in runs {
            for (k, v) in run.params.iter().chain(run.metrics.iter()) {
                if let Some(x) = v.as_f64() {
                    values.entry(k.clone()).or_default().push(x);
                }
            }
        }
        Medians(
            values
                .into_iter()
                .map(|(k, v)| (k, Stats::of(&v).median))
                .collect(),
        )
    }
}

fn demos_bench(runs: u64) -> Result<()> {
    setup()?;
    say("building the demo targets (release)");
    Cmd::cargo()
        .args(["build", "--release", "-p", "demo-targets"])
        .run()?;
    let bin = release_bin("demo-targets");
    let (mut passed, mut total) = (0, 0);
    let mut results = Vec::new();
    for info in &demos::DEMOS {
        let mut before = Vec::new();
        let mut after = Vec::new();
        for i in 0..runs {
            for variant in ["before", "after"] {
                say(&format!(
                    "bench demos: {} {variant}, run {}/{runs}",
                    info.name,
                    i + 1
                ));
                let out = Cmd::new(&bin).args([info.name, variant]).capture()?;
                let run = DemoRun::parse(&String::from_utf8_lossy(&out.stdout))
                    .with_context(|| format!("{} {variant}", info.name))?;
                if variant == "before" {
                    before.push(run);
                } else {
                    after.push(run);
                }
            }
        }
        let checks = demos::checks(info.name, &Medians::of(&before), &Medians::of(&after));
        passed += checks.iter().filter(|c| c.pass).count();
        total += checks.len();
        print!(
            "{}",
            demo_section(info.name, runs, &before, &after, &checks)
        );
        results.push(demo_json(info.name, &before, &after, &checks));
    }
    let path = target_dir().join("bench").join("demos.json");
    println!(
        "\nbench demos: {passed} of {total} spec checks passed on the medians of {runs} run(s); \
         results: {}",
        show(&path)
    );
    write_json(
        &path,
        &json!({ "benchmark": "demos", "runs": runs, "knobs": "spec defaults", "demos": results }),
    )
}

fn headline_stats(runs: &[DemoRun]) -> Stats {
    Stats::of(&runs.iter().map(|r| r.value).collect::<Vec<_>>())
}

fn demo_section(
    name: &str,
    runs: u64,
    before: &[DemoRun],
    after: &[DemoRun],
    checks: &[Check],
) -> String {
    let mut s = String::new();
    let Some(first) = before.first() else {
        return s;
    };
    let (b, a) = (headline_stats(before), headline_stats(after));
    let direction = if first.lower_is_better {
        "lower is better"
    } else {
        "higher is better"
    };
    let _ = writeln!(
        s,
        "\n══ {name}: {runs} run(s), spec knobs, without lockprof"
    );
    let _ = writeln!(
        s,
        "  {:<48} {:>10} {:>10} {:>10}",
        format!("{} ({}, {direction})", first.headline, first.unit),
        "median",
        "min",
        "max"
    );
    for (variant, st) in [("before", b), ("after", a)] {
        let _ = writeln!(
            s,
            "    {variant:<46} {:>10} {:>10} {:>10}",
            show_value(st.median),
            show_value(st.min),
            show_value(st.max)
        );
    }
    let _ = writeln!(
        s,
        "    {:<46} {:>10}",
        "improvement (medians)",
        show_ratio(improvement(b.median, a.median, first.lower_is_better))
    );
    let _ = writeln!(
        s,
        "  spec checks (demo-targets.md §(c) 'Assert'), on the medians:"
    );
    for c in checks {
        let _ = writeln!(
            s,
            "    {}  {:<56} {}",
            if c.pass { "PASS" } else { "FAIL" },
            c.what,
            c.observed
        );
    }
    s
}

fn demo_json(name: &str, before: &[DemoRun], after: &[DemoRun], checks: &[Check]) -> Value {
    let headline = before
        .first()
        .map(|r| r.headline.clone())
        .unwrap_or_default();
    json!({
        "demo": name,
        "headline": headline,
        "before": headline_stats(before).to_json(),
        "after": headline_stats(after).to_json(),
        "checks": checks.iter().map(|c| json!({ "check": c.what, "observed": c.observed, "pass": c.pass })).collect::<Vec<_>>(),
        "runs": {
            "before": before.iter().map(|r| r.raw.clone()).collect::<Vec<_>>(),
            "after": after.iter().map(|r| r.raw.clone()).collect::<Vec<_>>(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_take_the_middle() {
        let s = Stats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert!((Stats::of(&[1.0, 2.0, 3.0, 10.0]).median - 2.5).abs() < 1e-12);
        assert!(Stats::of(&[]).median.is_nan());
    }

    #[test]
    fn flags_parse_and_reject() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let f = parse_flags(&args(&["--runs", "3", "--threads=4"]), &["runs", "threads"]).unwrap();
        assert_eq!(f["runs"], 3);
        assert_eq!(f["threads"], 4);
        let err = parse_flags(&args(&["--fast"]), &["runs"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown option '--fast' (accepted: --runs)"),
            "{err}"
        );
        assert!(parse_flags(&args(&["--runs", "0"]), &["runs"]).is_err());
        assert!(parse_flags(&args(&["--runs"]), &["runs"]).is_err());
    }
}

//! `cargo xtask bench gate`: how often the CI gate cries wolf, and whether it still
//! catches the bugs.
//!
//! Owns: recording each demo's *before* and *after* `--runs` times under
//! `lockprof record` (the quick knobs of `cargo xtask demo`), then running
//! `lockprof check NEW --baseline BASE` with the defaults on every ordered pair:
//! - same-build pairs (before vs before, after vs after, never a run with itself)
//!   must pass: each failure is a false alarm;
//! - the bug coming back (the *before* run checked against an *after* baseline) must
//!   fail: each pass is a miss.
//!
//! The table goes to stdout, the numbers to `target/bench/gate.json`. Like every
//! benchmark it reports and never asserts (the gate's logic is tested by
//! `cargo xtask test`). Must not: tune the gate's rules (it measures the defaults).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::demo::{build_release_bins, require_root};
use crate::demos::DEMOS;
use crate::run::{Cmd, release_bin, say, show, target_dir, write_json};
use crate::setup::setup;

/// The short *after* runs must stay alive long enough for lockprof to read their maps.
const LINGER_MS: &str = "200";

/// One demo's outcome.
struct DemoGate {
    name: &'static str,
    /// False alarms among same-build pairs, per variant: (failed, pairs).
    same_before: (usize, usize),
    same_after: (usize, usize),
    /// Before-vs-after-baseline pairs that failed the gate: (caught, pairs).
    caught: (usize, usize),
    /// The first breach line of each false alarm or the first miss, to see why.
    examples: Vec<String>,
}

pub fn gate(runs: u64) -> Result<()> {
    if runs < 2 {
        bail!("--runs must be at least 2: same-build pairs need two runs of a build");
    }
    require_root("'cargo xtask bench gate'")?;
    setup()?;
    build_release_bins()?;
    let dir = target_dir().join("bench").join("gate");
    std::fs::create_dir_all(&dir).with_context(|| format!("create '{}'", dir.display()))?;
    let mut results = Vec::new();
    for info in &DEMOS {
        let mut recorded: [Vec<PathBuf>; 2] = [Vec::new(), Vec::new()];
        for i in 0..runs {
            for (v, variant) in ["before", "after"].into_iter().enumerate() {
                say(&format!(
                    "bench gate: {} {variant}, run {}/{runs}",
                    info.name,
                    i + 1
                ));
                recorded[v].push(record(&dir, info.name, variant, i, info.short_args)?);
            }
        }
        let [before, after] = &recorded;
        let mut examples = Vec::new();
        let same_before = same_build(before, &mut examples)?;
        let same_after = same_build(after, &mut examples)?;
        let mut caught = (0, 0);
        for base in after {
            for new in before {
                let (failed, _) = check(new, base)?;
                caught.1 += 1;
                if failed {
                    caught.0 += 1;
                } else if examples.len() < 6 {
                    examples.push(format!("missed: {} vs baseline {}", show(new), show(base)));
                }
            }
        }
        results.push(DemoGate {
            name: info.name,
            same_before,
            same_after,
            caught,
            examples,
        });
    }
    print!("{}", table(&results, runs));
    let path = target_dir().join("bench").join("gate.json");
    println!("results: {}", show(&path));
    write_json(&path, &to_json(&results, runs))
}

/// `lockprof record -q -o DIR/<demo>-<variant>-<i>.json -- demo-targets <demo> <variant>`.
fn record(dir: &Path, demo: &str, variant: &str, i: u64, knobs: &[&str]) -> Result<PathBuf> {
    let json = dir.join(format!("{demo}-{variant}-{i}.json"));
    let _ = std::fs::remove_file(&json);
    Cmd::new(release_bin("lockprof"))
        .args(["record", "-q", "--no-stacks", "-o"])
        .arg(&json)
        .arg("--")
        .arg(release_bin("demo-targets"))
        .args([demo, variant])
        .args(knobs)
        .args(["--linger-ms", LINGER_MS])
        .capture()
        .with_context(|| format!("record {demo} {variant}"))?;
    Ok(json)
}

/// Every ordered pair of distinct runs of one build: (false alarms, pairs).
fn same_build(runs: &[PathBuf], examples: &mut Vec<String>) -> Result<(usize, usize)> {
    let (mut failed, mut pairs) = (0, 0);
    for (i, base) in runs.iter().enumerate() {
        for (j, new) in runs.iter().enumerate() {
            if i == j {
                continue;
            }
            pairs += 1;
            let (fail, first) = check(new, base)?;
            if fail {
                failed += 1;
                if examples.len() < 6 {
                    examples.push(format!("false alarm: {first}"));
                }
            }
        }
    }
    Ok((failed, pairs))
}

/// `lockprof check NEW --baseline BASE` with the default rules: (failed, first breach).
fn check(new: &Path, base: &Path) -> Result<(bool, String)> {
    let out = Command::new(release_bin("lockprof"))
        .arg("check")
        .arg(new)
        .arg("--baseline")
        .arg(base)
        .stdin(Stdio::null())
        .output()
        .context("run lockprof check")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().nth(1).unwrap_or("").trim().to_owned();
    match out.status.code() {
        Some(0) => Ok((false, first)),
        Some(1) => Ok((true, first)),
        other => bail!(
            "lockprof check {} --baseline {} exited {other:?}: {}",
            show(new),
            show(base),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

fn table(results: &[DemoGate], runs: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nbench gate: 'lockprof check NEW --baseline BASE' with the default rules, {runs} runs of each build\n"
    );
    let _ = writeln!(
        s,
        "  {:<16} {:>22} {:>22} {:>26}",
        "demo", "false alarms (before)", "false alarms (after)", "regressions caught"
    );
    let frac = |(a, b): (usize, usize)| format!("{a} of {b}");
    let (mut alarms, mut same, mut caught, mut cross) = (0, 0, 0, 0);
    for r in results {
        let _ = writeln!(
            s,
            "  {:<16} {:>22} {:>22} {:>26}",
            r.name,
            frac(r.same_before),
            frac(r.same_after),
            frac(r.caught)
        );
        alarms += r.same_before.0 + r.same_after.0;
        same += r.same_before.1 + r.same_after.1;
        caught += r.caught.0;
        cross += r.caught.1;
    }
    let mark = |ok: bool| if ok { "ok" } else { "FAIL" };
    let _ = writeln!(
        s,
        "\n  same-build pairs failing the gate: {alarms} of {same} (target 0)  {}",
        mark(alarms == 0)
    );
    let _ = writeln!(
        s,
        "  before vs after baseline caught:   {caught} of {cross} (target all)  {}",
        mark(caught == cross)
    );
    for r in results {
        for e in &r.examples {
            let _ = writeln!(s, "  {}: {e}", r.name);
        }
    }
    s
}

fn to_json(results: &[DemoGate], runs: u64) -> Value {
    let pair = |(a, b): (usize, usize)| json!({ "count": a, "of": b });
    json!({
        "benchmark": "gate",
        "runs": runs,
        "rules": "lockprof check defaults",
        "demos": results.iter().map(|r| json!({
            "demo": r.name,
            "false_alarms_before": pair(r.same_before),
            "false_alarms_after": pair(r.same_after),
            "regressions_caught": pair(r.caught),
            "examples": r.examples,
        })).collect::<Vec<_>>(),
    })
}

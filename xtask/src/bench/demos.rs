//! `cargo xtask bench demos`: each demo pair `--runs` times with the spec's default
//! knobs and without lockprof, median/min/max of the headline, the spec's assertions on
//! the medians, and `target/bench/demos.json`.
//!
//! Must not: change what the programs do (knobs are passed through, not tuned here).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::Stats;
use crate::demos::{self, Check, DemoRun, Lookup, improvement, show_ratio, show_value};
use crate::run::{Cmd, release_bin, say, show, target_dir, write_json};
use crate::setup::setup;

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

pub(super) fn demos_bench(runs: u64) -> Result<()> {
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

//! `cargo xtask bench …`: benchmarks that report, never assert (a failed goal prints
//! FAIL and still exits 0; the test suite is `cargo xtask test`).
//!
//! Owns: dispatch of the benchmark names, their flag parser and the statistics every
//! benchmark prints (median, min..max, count). Each benchmark lives in its own file:
//! - `overhead`: what attaching costs, ratios against nothing attached and against the
//!   bpftrace peer (`bench overhead`), with `windows` (the alternating-window method
//!   and its statistics), `attach` (tracers on and off), `pingpong` (what a window
//!   measures on `futex-pingpong`), `daemon` and `memcached` (the
//!   real daemon, its load and what a window measures on it), `kmem` (kernel memory of
//!   the maps) and `go` (the Go probes' cost on the Go demo and on containerd, with
//!   `containerd`);
//! - `breakdown`: where lockprof's BPF time per futex call goes on (b)'s load, by
//!   sampling (`bench breakdown`);
//! - `storm`: `futex-storm` unprofiled vs under `lockprof record` (`bench storm`);
//! - `soak`: lockprof attached for minutes to a churning workload (`bench soak`);
//! - `demos`: each demo pair without lockprof against the spec's ratios (`bench demos`).
//!
//! Must not: change what the measured programs do (knobs are passed through, not tuned
//! here), or assert on a timing.

mod attach;
mod bpf_fds;
mod breakdown;
mod containerd;
mod daemon;
mod demos;
mod fentry;
mod gate;
mod go;
mod jit_lines;
mod kmem;
mod memcached;
mod overhead;
mod pingpong;
mod regimes;
mod soak;
mod storm;
mod windows;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

pub fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("overhead") => {
            let (quick, rest): (Vec<String>, Vec<String>) =
                args[1..].iter().cloned().partition(|a| a == "--quick");
            let (only, rest) = take_text_flag(&rest, "only")?;
            let parts = only.map_or(Ok(overhead::Parts::ALL), |o| overhead::Parts::parse(&o))?;
            let flags = parse_flags(&rest, &["rounds"])?;
            overhead::overhead(
                overhead::Plan::new(!quick.is_empty(), flags.get("rounds").copied()).only(parts),
            )
        }
        Some("breakdown") => {
            let flags = parse_flags(&args[1..], &["seconds"])?;
            breakdown::breakdown(flags.get("seconds").copied().unwrap_or(3))
        }
        Some("storm") => {
            // `--no-holders` measures lockprof without its context-switch probe.
            let (switches, rest): (Vec<String>, Vec<String>) =
                args[1..].iter().cloned().partition(|a| a == "--no-holders");
            let flags = parse_flags(&rest, &["runs", "threads", "duration-ms"])?;
            storm::storm(&flags, switches.is_empty())
        }
        Some("soak") => {
            let flags = parse_flags(&args[1..], &["minutes", "max-rss-mib"])?;
            soak::soak(
                flags.get("minutes").copied().unwrap_or(30),
                flags
                    .get("max-rss-mib")
                    .copied()
                    .unwrap_or(soak::DEFAULT_MAX_RSS_MIB),
            )
        }
        Some("demos") => {
            let flags = parse_flags(&args[1..], &["runs"])?;
            demos::demos_bench(flags.get("runs").copied().unwrap_or(3))
        }
        Some("gate") => gate::gate(
            parse_flags(&args[1..], &["runs"])?
                .get("runs")
                .copied()
                .unwrap_or(3),
        ),
        Some(other) => {
            bail!(
                "unknown benchmark '{other}' (expected 'overhead', 'breakdown', 'storm', 'soak', 'demos' or 'gate')"
            )
        }
        None => {
            bail!(
                "which benchmark? 'cargo xtask bench overhead', 'bench breakdown', 'bench storm', 'bench soak', 'bench demos' or 'bench gate'"
            )
        }
    }
}

/// A `--name TEXT` / `--name=TEXT` flag taken out of `args` (the rest is returned).
fn take_text_flag(args: &[String], name: &str) -> Result<(Option<String>, Vec<String>)> {
    let mut rest = Vec::new();
    let mut value = None;
    let mut it = args.iter();
    let long = format!("--{name}");
    while let Some(a) = it.next() {
        if *a == long {
            value = Some(
                it.next()
                    .cloned()
                    .with_context(|| format!("'{long}' needs a value"))?,
            );
        } else if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            value = Some(v.to_owned());
        } else {
            rest.push(a.clone());
        }
    }
    Ok((value, rest))
}

/// `--name N` / `--name=N` integer flags, only the `allowed` names, each > 0.
pub(crate) fn parse_flags(args: &[String], allowed: &[&str]) -> Result<BTreeMap<String, u64>> {
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

/// A positive number `field` from the JSON result line a load program prints (the line
/// that starts with `{"<first>"`), with an error naming `program` when it is missing.
pub(crate) fn result_field(stdout: &[u8], program: &str, first: &str, field: &str) -> Result<f64> {
    let text = String::from_utf8_lossy(stdout);
    let prefix = format!("{{\"{first}\"");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .with_context(|| format!("{program} printed no JSON result line ('{prefix}…')"))?;
    let v: Value =
        serde_json::from_str(line).with_context(|| format!("parse {program}'s JSON line"))?;
    v.get(field)
        .and_then(Value::as_f64)
        .filter(|x| *x > 0.0)
        .with_context(|| format!("{program}'s JSON has no positive '{field}'"))
}

/// Median, min and max of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Stats {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Stats {
    pub(crate) fn of(values: &[f64]) -> Stats {
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

    pub(crate) fn to_json(self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }

    /// `median (min..max)` of nanoseconds, each in a readable unit.
    pub(crate) fn cell_ns(self) -> String {
        use crate::report::human_ns;
        format!(
            "{} ({}..{})",
            human_ns(self.median as u64),
            human_ns(self.min as u64),
            human_ns(self.max as u64)
        )
    }
}

pub(crate) fn mark(ok: bool, text: &str) -> String {
    format!("{} {text}", if ok { "ok  " } else { "FAIL" })
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
    fn result_lines_are_found_among_other_output() {
        let out = b"noise\n{\"ops\":10,\"ops_per_s\":2.5}\n";
        assert!((result_field(out, "p", "ops", "ops_per_s").unwrap() - 2.5).abs() < 1e-12);
        let e = result_field(b"", "futex-storm", "ops", "ops_per_s").unwrap_err();
        assert!(
            e.to_string()
                .contains("futex-storm printed no JSON result line"),
            "{e}"
        );
        let e = result_field(b"{\"ops\":0,\"ops_per_s\":0}", "p", "ops", "ops_per_s");
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("no positive 'ops_per_s'")
        );
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

//! Reading lockprof's JSON report (`lockprof record -o FILE`) for the demo and bench
//! tables, which show numbers and names in the profiler's own formatting
//! (`profiler-fmt`, shared with `lockprof report`).
//!
//! Owns: the few fields of the report that the demo summary and the overhead benchmark
//! show (`totals`, `losses`, `probe_cost`, `duration_ns`, the top `sites`), read through
//! `serde_json::Value` so that xtask does not depend on the profiler crate (whose
//! build script needs bpf-linker, which `cargo xtask setup` installs). The layout is
//! documented in `docs/report-schema.md`; a field that is missing reads as zero/empty
//! rather than failing, so an older or newer report still summarizes. Must not: run
//! anything.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use profiler_fmt::names::{basename, short_function};
use profiler_fmt::units::fmt_count;
/// Durations in the profiler's units (`4.56ms`, `2m03s`), under the name the demo and
/// bench tables use.
pub use profiler_fmt::units::fmt_duration_ns as human_ns;
use serde_json::Value;

/// A parsed lockprof report.
pub struct LockReport(Value);

/// One lock site, as shown in summaries.
pub struct SiteRow {
    pub kind: String,
    pub contention: bool,
    pub function: String,
    /// `file:line` with the file's base name, or the module when there is no line info.
    pub place: String,
    pub waits: u64,
    pub total_wait_ns: u64,
    /// Who waited: thread names grouped by their stem (`tx-stream-* ×8, rx-vm0`),
    /// heaviest first.
    pub threads: String,
    /// Who ended the waits: the top waker site, and what its thread did meanwhile
    /// (`kmutex::Store::writer kmutex.rs:210; holder off CPU 100%, mostly
    /// clock_nanosleep`); empty when no waker was recorded.
    pub woken_by: String,
}

impl LockReport {
    pub fn read(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("read lockprof report '{}'", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("parse lockprof report '{}'", path.display()))?;
        if !value.is_object() || value.get("totals").is_none() {
            bail!(
                "'{}' is not a lockprof JSON report (no 'totals')",
                path.display()
            );
        }
        Ok(Self(value))
    }

    fn u64_at(&self, pointer: &str) -> u64 {
        self.0.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
    }

    pub fn duration_s(&self) -> f64 {
        self.u64_at("/duration_ns") as f64 / 1e9
    }

    /// Blocked futex waits (woken after blocking), all kinds.
    pub fn waits(&self) -> u64 {
        self.u64_at("/totals/waits")
    }

    pub fn wait_ns(&self) -> u64 {
        self.u64_at("/totals/wait_ns")
    }

    pub fn contention_wait_ns(&self) -> u64 {
        self.u64_at("/totals/contention_wait_ns")
    }

    /// Every `FUTEX_WAIT` the probes saw: blocked, EAGAIN, timed out, interrupted, failed.
    pub fn wait_calls(&self) -> u64 {
        ["waits", "eagain", "timeouts", "interrupted", "other_errors"]
            .iter()
            .map(|k| self.u64_at(&format!("/totals/{k}")))
            .sum()
    }

    pub fn wake_calls(&self) -> u64 {
        self.u64_at("/totals/wake_calls")
    }

    /// Non-zero loss counters, by name. `unsymbolized_frames` is left out: it marks
    /// frames shown as module+offset, not lost events.
    pub fn losses(&self) -> Vec<(String, u64)> {
        self.0
            .get("losses")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "unsymbolized_frames")
                    .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| (k.clone(), n)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Events lost: the [`Self::losses`] that are events. `truncated_stacks` is left
    /// out too: those are distinct call paths missing their outermost frames, whose
    /// waits are all counted.
    pub fn lost_events(&self) -> u64 {
        self.losses()
            .iter()
            .filter(|(k, _)| k != "truncated_stacks")
            .map(|(_, n)| n)
            .sum()
    }

    /// CPU time spent in the eBPF programs (all CPUs) and how many times they ran.
    pub fn bpf_cost(&self) -> (u64, u64) {
        (
            self.u64_at("/probe_cost/bpf_run_ns"),
            self.u64_at("/probe_cost/bpf_runs"),
        )
    }

    /// The first `n` sites that blocked (the report ranks them by total wait; sites
    /// whose waits all returned at once, e.g. EAGAIN, are left out).
    pub fn top_sites(&self, n: usize) -> Vec<SiteRow> {
        let Some(sites) = self.0.get("sites").and_then(Value::as_array) else {
            return Vec::new();
        };
        sites
            .iter()
            .map(site_row)
            .filter(|s| s.waits > 0 || s.total_wait_ns > 0)
            .take(n)
            .collect()
    }
}

fn site_row(site: &Value) -> SiteRow {
    let str_of = |k: &str| site.get(k).and_then(Value::as_str);
    let u64_of = |k: &str| site.get(k).and_then(Value::as_u64).unwrap_or(0);
    let function =
        str_of("function").map_or_else(|| "[unknown function]".to_owned(), short_function);
    let place = match (str_of("file"), site.get("line").and_then(Value::as_u64)) {
        (Some(file), Some(line)) => format!("{}:{line}", basename(file)),
        (Some(file), None) => basename(file).to_owned(),
        _ => str_of("module").map_or_else(|| "?".to_owned(), |m| basename(m).to_owned()),
    };
    SiteRow {
        kind: str_of("kind").unwrap_or("other").to_owned(),
        contention: site
            .get("contention")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        function,
        place,
        waits: u64_of("waits"),
        total_wait_ns: u64_of("total_wait_ns"),
        threads: thread_groups(
            site.get("threads")
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice),
        ),
        woken_by: site
            .pointer("/woken_by/0")
            .map_or_else(String::new, top_waker),
    }
}

/// `function file:line`, then the holder's off-CPU share and where, if measured.
fn top_waker(w: &Value) -> String {
    let function = w
        .get("function")
        .and_then(Value::as_str)
        .map_or_else(|| "[unknown function]".to_owned(), short_function);
    let mut out = match (
        w.get("file").and_then(Value::as_str),
        w.get("line").and_then(Value::as_u64),
    ) {
        (Some(file), Some(line)) => format!("{function} {}:{line}", basename(file)),
        _ => function,
    };
    let u64_at = |p: &str| w.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let off = u64_at("/held/off_cpu_ns");
    if let Some(pct) = (off * 100).checked_div(u64_at("/held/window_ns")) {
        let _ = write!(out, "; holder off CPU {pct}%");
        if let Some(top) = w
            .pointer("/held/off_cpu_in/0/syscall")
            .and_then(Value::as_str)
        {
            let _ = write!(out, ", mostly {}", top.split(" (").next().unwrap_or(top));
        }
    }
    out
}

/// Groups thread names that differ only in their numbers (`fetch-1-0`, `fetch-2-1` →
/// `fetch-*-* ×2`), heaviest group first, at most three groups.
fn thread_groups(threads: &[Value]) -> String {
    // (stem, members, total wait, the one name when there is a single member)
    let mut groups: Vec<(String, usize, u64, String)> = Vec::new();
    for t in threads {
        let name = t.get("name").and_then(Value::as_str).unwrap_or("?");
        let wait = t.get("total_wait_ns").and_then(Value::as_u64).unwrap_or(0);
        let stem = digits_to_star(name);
        match groups.iter_mut().find(|g| g.0 == stem) {
            Some(g) => {
                g.1 += 1;
                g.2 += wait;
            }
            None => groups.push((stem, 1, wait, name.to_owned())),
        }
    }
    groups.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let mut parts: Vec<String> = groups
        .iter()
        .take(3)
        .map(|(stem, n, _, only)| {
            if *n == 1 {
                only.clone()
            } else {
                format!("{stem} ×{n}")
            }
        })
        .collect();
    if groups.len() > 3 {
        parts.push(format!("+{} more", groups.len() - 3));
    }
    parts.join(", ")
}

/// Every run of digits replaced by `*`: `fetch-18-1` → `fetch-*-*`.
fn digits_to_star(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('*') {
            out.push('*');
        }
    }
    out
}

/// A count or a rate in the profiler's count units (`12.3k`, `1.5M`), rounded to a
/// whole number first.
pub fn human_count(x: f64) -> String {
    fmt_count(x.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_waker_names_the_site_and_what_its_holder_did() {
        let w = serde_json::json!({
            "waker": "mutex|demo-targets|demo_targets::kmutex::Store::writer|/w/kmutex.rs:210",
            "function": "demo_targets::kmutex::Store::writer",
            "file": "/w/demo-targets/src/kmutex.rs", "line": 210,
            "waits": 180, "wait_ns": 132_000_000_000_u64,
            "held": {
                "window_ns": 2_490_000_000_u64, "off_cpu_ns": 2_480_000_000_u64,
                "off_cpu_in": [{"syscall": "clock_nanosleep", "ns": 2_480_000_000_u64}]
            }
        });
        assert_eq!(
            top_waker(&w),
            "kmutex::Store::writer kmutex.rs:210; holder off CPU 99%, mostly clock_nanosleep"
        );
        let bare = serde_json::json!({"waker": "x", "waits": 1, "wait_ns": 5});
        assert_eq!(top_waker(&bare), "[unknown function]");
    }

    #[test]
    fn numbers_use_the_profilers_units() {
        assert_eq!(human_ns(182_000_000_000), "3m02s");
        assert_eq!(human_ns(4_210_000), "4.21ms");
        assert_eq!(human_count(84_123.4), "84.1k");
        assert_eq!(human_count(949.6), "950");
    }

    #[test]
    fn threads_group_by_name_stem() {
        let threads: Vec<Value> = serde_json::from_str(
            r#"[{"name": "rx-vm0", "total_wait_ns": 50},
                {"name": "tx-stream-1", "total_wait_ns": 40},
                {"name": "tx-stream-2", "total_wait_ns": 40},
                {"name": "fetch-1-0", "total_wait_ns": 2},
                {"name": "fetch-12-1", "total_wait_ns": 2},
                {"name": "churn", "total_wait_ns": 1},
                {"name": "main", "total_wait_ns": 0}]"#,
        )
        .unwrap();
        assert_eq!(
            thread_groups(&threads),
            "tx-stream-* ×2, rx-vm0, fetch-*-* ×2, +2 more"
        );
    }

    #[test]
    fn reads_sites_and_totals_from_json() {
        let dir = std::env::temp_dir().join(format!("xtask-report-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        fs::write(
            &path,
            r#"{"duration_ns": 2000000000,
                "totals": {"waits": 10, "eagain": 5, "wait_ns": 7, "contention_wait_ns": 3},
                "losses": {"stack_collisions": 2, "wait_map_full": 0, "unsymbolized_frames": 9,
                           "truncated_stacks": 3},
                "probe_cost": {"bpf_run_ns": 100, "bpf_runs": 4},
                "sites": [{"kind": "mutex", "contention": true,
                           "function": "demo_targets::kmutex::Store::writer",
                           "file": "/w/demo-targets/src/kmutex.rs", "line": 203,
                           "waits": 3, "total_wait_ns": 5}]}"#,
        )
        .unwrap();
        let r = LockReport::read(&path).unwrap();
        assert_eq!(r.waits(), 10);
        assert_eq!(r.wait_calls(), 15);
        assert!((r.duration_s() - 2.0).abs() < 1e-9);
        assert_eq!(
            r.losses(),
            vec![
                ("stack_collisions".to_owned(), 2),
                ("truncated_stacks".to_owned(), 3)
            ]
        );
        assert_eq!(r.lost_events(), 2);
        assert_eq!(r.bpf_cost(), (100, 4));
        let sites = r.top_sites(3);
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].function, "kmutex::Store::writer");
        assert_eq!(sites[0].place, "kmutex.rs:203");
        assert!(sites[0].contention);
        assert_eq!(sites[0].threads, "");
        fs::write(&path, "{}").unwrap();
        assert!(LockReport::read(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}

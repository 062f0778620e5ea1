//! `cargo xtask bench soak --minutes N`: lockprof attached for N minutes to a workload
//! that never settles (`lock-churn`: threads created and destroyed continuously,
//! thousands of lock addresses, children forked and exec'd), recording with
//! `--interval 1s` so that a timeline refresh happens every second.
//!
//! Owns: sampling lockprof once a second from outside (resident memory `VmRSS`, the
//! kernel memory of its maps from their fdinfo, and its CPU time, which is the cost of
//! the per-second refresh plus the polling between), the flatness verdict (mean of the
//! last quarter against the first, and the least-squares slope per minute), the
//! losses and completeness of the final report, the table and `target/bench/soak.json`.
//! Must not: assert (the bounded 1-minute check is `profiler/tests/soak.rs`).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::attach::{cpu_ms, status_kib};
use super::kmem;
use super::mark;
use crate::demo::{build_release_bins, require_root};
use crate::report::LockReport;
use crate::run::{release_bin, say, show, target_dir, write_json};

/// "Flat": the last quarter's mean is at most this × the first quarter's, plus a slack
/// (per series, below) for values too small for a ratio to mean anything.
const FLAT_RATIO: f64 = 1.25;

/// One series sampled over time, and whether it stayed flat.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    pub first_quarter: f64,
    pub last_quarter: f64,
    /// Least-squares slope, units per minute.
    pub slope_per_min: f64,
    pub max: f64,
}

impl Trend {
    /// `samples`: (seconds since start, value). `None` with fewer than 4 samples.
    pub fn of(samples: &[(f64, f64)]) -> Option<Trend> {
        let n = samples.len();
        if n < 4 {
            return None;
        }
        let q = n / 4;
        let mean = |s: &[(f64, f64)]| s.iter().map(|p| p.1).sum::<f64>() / s.len() as f64;
        let (mt, mv) = (
            samples.iter().map(|p| p.0).sum::<f64>() / n as f64,
            mean(samples),
        );
        let (mut num, mut den) = (0.0, 0.0);
        for (t, v) in samples {
            num += (t - mt) * (v - mv);
            den += (t - mt) * (t - mt);
        }
        Some(Trend {
            first_quarter: mean(&samples[..q]),
            last_quarter: mean(&samples[n - q..]),
            slope_per_min: if den > 0.0 { 60.0 * num / den } else { 0.0 },
            max: samples.iter().map(|p| p.1).fold(f64::MIN, f64::max),
        })
    }

    /// The last quarter within [`FLAT_RATIO`] × the first, plus `slack`.
    pub fn flat(&self, slack: f64) -> bool {
        self.last_quarter <= FLAT_RATIO * self.first_quarter + slack
    }
}

/// One sample of lockprof from outside.
struct Sample {
    t: f64,
    rss_kib: u64,
    kernel_bytes: u64,
    cpu_ms: f64,
}

/// Stops the soak early when lockprof's RSS passes this (the machine is shared: a leak
/// must not take its memory).
pub const DEFAULT_MAX_RSS_MIB: u64 = 2048;

pub fn soak(minutes: u64, max_rss_mib: u64) -> Result<()> {
    if minutes > 24 * 60 {
        bail!("'--minutes' must be at most 1440 (a day), got {minutes}");
    }
    require_root("'cargo xtask bench soak'")?;
    build_release_bins()?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create '{}'", dir.display()))?;
    let report = dir.join("soak-report.json");
    let _ = std::fs::remove_file(&report);
    let seconds = minutes * 60;
    say(&format!(
        "bench soak: lockprof record --interval 1s on lock-churn for {minutes} min (samples every second)"
    ));
    let mut child = Command::new(release_bin("lockprof"))
        .args(["record", "-q", "--interval", "1s", "-o"])
        .arg(&report)
        .arg("--")
        .arg(release_bin("lock-churn"))
        .args(["--seconds", &seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start lockprof")?;
    let pid = child.id();
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut capped_at: Option<f64> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let (Some(rss_kib), Some(cpu)) = (status_kib(pid, "VmRSS:"), cpu_ms(pid)) {
            if rss_kib > max_rss_mib * 1024 && capped_at.is_none() {
                let at = start.elapsed().as_secs_f64();
                say(&format!(
                    "bench soak: lockprof's RSS passed {max_rss_mib} MiB after {at:.0} s: stopping it (Ctrl-C) so the report is still written"
                ));
                // lockprof forwards the stop to the launched command.
                let _ = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
                capped_at = Some(at);
            }
            let maps = kmem::maps_of_pid(pid);
            samples.push(Sample {
                t: start.elapsed().as_secs_f64(),
                rss_kib,
                kernel_bytes: maps.iter().map(|m| m.memlock).sum(),
                cpu_ms: cpu,
            });
        }
        let done = start.elapsed().as_secs();
        if done > 0
            && done.is_multiple_of(60)
            && let Some(s) = samples.last()
        {
            say(&format!(
                "bench soak: {} of {minutes} min, lockprof RSS {} MiB",
                done / 60,
                s.rss_kib / 1024
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    // Stopped at the cap, lockprof exits with the launched command's status (130
    // after the forwarded Ctrl-C); the report must be there all the same.
    if !status.success() && (capped_at.is_none() || !report.exists()) {
        bail!("lockprof record failed ({status})");
    }
    // Only samples from after the first interval and before the report was built:
    // the last sample may catch the final symbolization.
    let steady: &[Sample] = if samples.len() > 3 {
        &samples[1..samples.len() - 1]
    } else {
        &samples
    };
    let series = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        steady.iter().map(|s| (s.t, f(s))).collect()
    };
    let rss = Trend::of(&series(&|s| s.rss_kib as f64 / 1024.0));
    let kmem_t = Trend::of(&series(&|s| s.kernel_bytes as f64 / f64::from(1 << 20)));
    let cpu_per_s: Vec<(f64, f64)> = steady
        .windows(2)
        .map(|w| (w[1].t, (w[1].cpu_ms - w[0].cpu_ms) / (w[1].t - w[0].t)))
        .collect();
    let cpu = Trend::of(&cpu_per_s);
    let (Some(rss), Some(kmem_t), Some(cpu)) = (rss, kmem_t, cpu) else {
        bail!(
            "too few samples of lockprof ({}): did it exit early?",
            samples.len()
        );
    };

    let rep = LockReport::read(&report)?;
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let timeline = Coverage::of(&raw);
    let intervals = timeline.intervals;
    let targets = raw
        .get("targets")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as u64
        + raw
            .get("exited_children_not_listed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    // Truncated stacks are listed with the losses, left out of "no event lost".
    let losses = rep.losses();
    let lost = rep.lost_events();

    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nlockprof soak: record --interval 1s on lock-churn, {minutes} min, {} samples (1/s)",
        steady.len()
    );
    let _ = writeln!(
        t,
        "  {:<42} {:>12} {:>12} {:>12} {:>14}",
        "", "first 1/4", "last 1/4", "max", "slope /min"
    );
    for (name, tr, unit) in [
        ("lockprof RSS (VmRSS)", &rss, "MiB"),
        ("kernel memory of its maps (memlock)", &kmem_t, "MiB"),
        ("lockprof CPU per second (refresh + poll)", &cpu, "ms"),
    ] {
        let _ = writeln!(
            t,
            "  {name:<42} {:>12} {:>12} {:>12} {:>14}",
            format!("{:.1} {unit}", tr.first_quarter),
            format!("{:.1} {unit}", tr.last_quarter),
            format!("{:.1} {unit}", tr.max),
            format!("{:+.2} {unit}", tr.slope_per_min),
        );
    }
    let _ = writeln!(
        t,
        "  report: {intervals} timeline intervals ({} late: lockprof not scheduled for over 1.5 s), {targets} processes, {} sites, {} lock addresses, {lost} events lost{}",
        timeline.late,
        rep.top_sites(usize::MAX).len(),
        raw.get("locks")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        if losses.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                losses
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let checks = [
        mark(
            capped_at.is_none(),
            &capped_at.map_or_else(
                || format!("ran the whole {minutes} min under the {max_rss_mib} MiB RSS cap"),
                |at| format!("stopped after {at:.0} s: RSS passed the {max_rss_mib} MiB cap"),
            ),
        ),
        mark(
            rss.flat(8.0),
            &format!("RSS flat: last quarter ≤ {FLAT_RATIO}× first + 8 MiB"),
        ),
        mark(
            kmem_t.flat(1.0),
            &format!("kernel memory flat: last quarter ≤ {FLAT_RATIO}× first + 1 MiB"),
        ),
        mark(
            cpu.flat(5.0),
            &format!("CPU per second flat: last quarter ≤ {FLAT_RATIO}× first + 5 ms"),
        ),
        mark(lost == 0, "no event lost"),
        mark(
            timeline.gaps == 0 && timeline.covered >= 0.99,
            &format!(
                "report complete: the timeline covers the recording without a gap ({:.1} %)",
                100.0 * timeline.covered
            ),
        ),
    ];
    for c in &checks {
        let _ = writeln!(t, "  {c}");
    }
    let path = dir.join("soak.json");
    println!("{t}results: {}", show(&path));
    let trend = |tr: &Trend| json!({ "first_quarter": tr.first_quarter, "last_quarter": tr.last_quarter, "max": tr.max, "slope_per_min": tr.slope_per_min });
    write_json(
        &path,
        &json!({
            "benchmark": "soak", "minutes": minutes, "samples": steady.len(),
            "max_rss_mib": max_rss_mib, "stopped_at_rss_cap_s": capped_at,
            "rss_mib": trend(&rss), "kernel_map_mib": trend(&kmem_t), "cpu_ms_per_s": trend(&cpu),
            "report": { "path": show(&report), "intervals": intervals, "late_intervals": timeline.late,
                        "timeline_gaps": timeline.gaps, "timeline_covered": timeline.covered, "processes": targets, "lost_events": lost,
                        "losses": losses.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>() },
            "checks": checks,
            "series": steady.iter().map(|s| json!([s.t, s.rss_kib, s.kernel_bytes, s.cpu_ms])).collect::<Vec<_>>(),
            "series_columns": ["seconds", "vm_rss_kib", "kernel_map_bytes", "cpu_ms_total"],
        }),
    )
}

/// How the report's timeline covers the recording: a refresh that comes late (the
/// machine did not run lockprof for a while) makes one longer interval, which loses
/// nothing; a gap between intervals would.
struct Coverage {
    intervals: usize,
    /// Intervals over 1.5× the interval length.
    late: usize,
    /// Intervals that do not start where the previous one ended.
    gaps: usize,
    /// The intervals' total length over the recording's.
    covered: f64,
}

impl Coverage {
    fn of(report: &Value) -> Self {
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let interval_ns = report
            .pointer("/timeline/interval_ns")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let list: &[Value] = report
            .pointer("/timeline/intervals")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let mut end = 0;
        let (mut late, mut gaps, mut total) = (0, 0, 0);
        for i in list {
            let (start, len) = (num(i, "start_ns"), num(i, "duration_ns"));
            if start != end {
                gaps += 1;
            }
            if len * 2 > interval_ns * 3 {
                late += 1;
            }
            end = start + len;
            total += len;
        }
        let duration = num(report, "duration_ns").max(1);
        Self {
            intervals: list.len(),
            late,
            gaps,
            covered: total as f64 / duration as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_series_is_flat_and_a_growing_one_is_not() {
        let flat: Vec<(f64, f64)> = (0..40)
            .map(|i| (f64::from(i), 50.0 + f64::from(i % 3)))
            .collect();
        let tr = Trend::of(&flat).unwrap();
        assert!((tr.first_quarter - 51.0).abs() < 0.2, "{tr:?}");
        assert!(tr.slope_per_min.abs() < 1.0, "{tr:?}");
        assert!(tr.flat(0.0));
        // +1 MiB a second: 60 MiB per minute, last quarter far above the first.
        let growing: Vec<(f64, f64)> = (0..40)
            .map(|i| (f64::from(i), 50.0 + f64::from(i)))
            .collect();
        let tr = Trend::of(&growing).unwrap();
        assert!((tr.slope_per_min - 60.0).abs() < 1e-6, "{tr:?}");
        assert!(!tr.flat(8.0));
        assert!((tr.max - 89.0).abs() < 1e-9);
        assert!(Trend::of(&growing[..3]).is_none());
    }

    #[test]
    fn cpu_time_of_ourselves() {
        let ms = cpu_ms(std::process::id()).unwrap();
        assert!(ms >= 0.0);
        assert!(cpu_ms(u32::MAX).is_none());
    }
}

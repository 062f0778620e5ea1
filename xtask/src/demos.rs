//! The catalog of demo targets and how to read and judge their output.
//!
//! Owns: the five demos' names, plain-words descriptions, the short-run knobs from each
//! module's doc comment (`demo-targets/src/<demo>.rs`, "Short run for tests"), the
//! parsing of the one JSON line a demo prints, and the spec's assertions
//! (`demo-targets.md` §(c) "Assert") evaluated on medians. Shared by `cargo xtask demo`
//! (short runs under lockprof) and `cargo xtask bench demos` (spec runs, unprofiled).
//! Must not: run anything.

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value};

/// One demo: what it reproduces and how to run it briefly.
pub struct DemoInfo {
    /// The `demo-targets` sub-command.
    pub name: &'static str,
    /// Upstream project, issue/PR: what the reader can look up.
    pub upstream: &'static str,
    /// The bug and its fix in plain words, for someone who never read the spec.
    pub bug: &'static str,
    /// Knobs for a quick run (seconds, not tens of seconds), from the module docs.
    pub short_args: &'static [&'static str],
    /// Secondary metrics worth showing next to the headline.
    pub extra_metrics: &'static [&'static str],
    /// What lockprof's top sites should show, before vs after.
    pub look_for: &'static str,
}

pub const DEMOS: [DemoInfo; 5] = [
    DemoInfo {
        name: "forwarder",
        upstream: "moby/buildkit gateway forwarder, issue #5171, fixed by PR #6741",
        bug: "every build registration and every finished lookup woke ALL waiting lookups \
              (one RWMutex + one condition variable broadcast), so the woken crowd fought \
              over the read lock while registrations queued for the write lock and clients \
              timed out with 'no such job'; the fix gives each build its own wait slot, woken \
              only by its own registration.",
        short_args: &["--builds", "384", "--calls", "16", "--call-gap-us", "0"],
        extra_metrics: &["first_lookup_wait_p50_ms", "timeouts", "spurious_wakeups"],
        look_for: "before: the RwLock read (Before::contains, the map re-check after every \
                   wakeup: the herd) tops the list, above the Condvar wait for the next \
                   broadcast; after: only the per-build slot wait remains, an event wait, not \
                   contention.",
    },
    DemoInfo {
        name: "switch",
        upstream: "containers/gvisor-tap-vsock virtual switch, PR #613",
        bug: "the switch retried socket writes failing with ENOBUFS in a tight loop while \
              holding its global write lock AND the connection-list lock, so the VM's \
              receive path (broadcasts go through the same send path) and connect/disconnect \
              stalled behind it and the VM dropped packets; the fix copies the connection \
              list under its lock and holds only the write lock while sending.",
        short_args: &["--duration-ms", "1000"],
        extra_metrics: &["vm_to_host_drops", "bcast_p99_us", "connect_p99_us"],
        look_for: "before: tx-stream threads AND rx-vm0 (the VM's receive path) wait for \
                   the write lock in tx_pkt_before, and churn waits for conns in \
                   connect/disconnect; after: the write lock (kept by the fix) moves into \
                   tx_buf_after and only tx-stream threads wait for it. Total wait changes \
                   little; who waits changes completely.",
    },
    DemoInfo {
        name: "kmutex",
        upstream: "containerd concurrent image pulls, issue #4937, fixed by PR #6702",
        bug: "pulls that lost the race for a layer slept in a try-lock retry loop while \
              holding the metadata database's single writer lock, so every other pull, \
              including the one that would release the layer, queued behind the sleepers, \
              and every pull then unpacked the same layers again; the fix makes pulls of the \
              same layer take turns on a per-layer keyed mutex.",
        short_args: &[],
        extra_metrics: &["duplicate_unpacks", "trylock_failures", "db_hold_max_ms"],
        look_for: "before: long waits for the db Mutex in Store::writer (held across sleeps); \
                   after: the db waits are gone and the per-key Condvar wait (intended \
                   single-flight waiting) is what remains.",
    },
    DemoInfo {
        name: "container-store",
        upstream: "moby/moby 'docker ps' hangs, issue #28183, fixed by PR #31273",
        bug: "'docker ps' locked every container in turn, and slow operations (start/stop, \
              network setup) hold a container's lock for a long time, so listing hung behind \
              them; the fix lists from a snapshot database and takes no container lock.",
        short_args: &["--duration-ms", "1000"],
        extra_metrics: &["ps_p50_ms", "ps_calls"],
        look_for: "before: the per-container Mutex in list_before tops the list; after: the \
                   lister's waits are gone.",
    },
    DemoInfo {
        name: "layer-store",
        upstream: "containers/storage 'podman images' blocks during push, issue #420, fixed by PR #1386",
        bug: "listing layers took the layer store's EXCLUSIVE lock although it only reads, so \
              'podman images' waited for every 'podman push' (which holds the shared lock for \
              the whole upload); the fix takes the lock shared for reads.",
        short_args: &["--duration-ms", "1000"],
        extra_metrics: &["list_p50_ms", "list_calls"],
        look_for: "before: the RwLock write wait in layers_before tops the list; after: \
                   listers share the lock with the push and barely wait.",
    },
];

pub fn names() -> String {
    DEMOS.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
}

/// The demos selected by an optional name; an unknown name lists the valid ones.
pub fn select(name: Option<&str>) -> Result<Vec<&'static DemoInfo>> {
    match name {
        None => Ok(DEMOS.iter().collect()),
        Some(n) => match DEMOS.iter().find(|d| d.name == n) {
            Some(d) => Ok(vec![d]),
            None => bail!("unknown demo '{n}' (expected one of: {})", names()),
        },
    }
}

/// What one demo run printed: `{"demo","variant","params","headline","metrics","wall_s"}`.
pub struct DemoRun {
    pub headline: String,
    pub unit: String,
    pub lower_is_better: bool,
    pub value: f64,
    /// Includes the headline under its own name.
    pub metrics: Map<String, Value>,
    pub params: Map<String, Value>,
    /// The line as printed, kept for the JSON outputs.
    pub raw: Value,
}

impl DemoRun {
    /// Finds the JSON line (`{"demo"…`) in a run's stdout; anything else on stdout
    /// (lockprof's text report) is ignored.
    pub fn parse(stdout: &str) -> Result<Self> {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("{\"demo\""))
            .context("the demo printed no JSON result line ('{\"demo\"…')")?;
        let raw: Value = serde_json::from_str(line).context("parse the demo's JSON line")?;
        let headline = raw.get("headline").context("demo JSON has no 'headline'")?;
        let obj = |k: &str| {
            raw.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        Ok(Self {
            headline: headline
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("headline")
                .to_owned(),
            unit: headline
                .get("unit")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            lower_is_better: headline
                .get("lower_is_better")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            value: headline
                .get("value")
                .and_then(Value::as_f64)
                .context("demo JSON headline has no numeric 'value'")?,
            metrics: obj("metrics"),
            params: obj("params"),
            raw,
        })
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).and_then(Value::as_f64)
    }
}

/// How many times better `after` is than `before` (∞ when the bad side is zero, NaN
/// when a value is missing).
pub fn improvement(before: f64, after: f64, lower_is_better: bool) -> f64 {
    if before.is_nan() || after.is_nan() {
        return f64::NAN;
    }
    let (num, den) = if lower_is_better {
        (before, after)
    } else {
        (after, before)
    };
    if den > 0.0 {
        num / den
    } else if num > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

pub fn show_ratio(r: f64) -> String {
    if r.is_nan() {
        "n/a".to_owned()
    } else if r.is_infinite() {
        "∞".to_owned()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// A number as a demo metric reads best: integers plainly, others to 3 significant
/// digits (but never in exponent form).
pub fn show_value(x: f64) -> String {
    if x.is_nan() {
        "n/a".to_owned()
    } else if x.fract() == 0.0 || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// One spec assertion, evaluated.
pub struct Check {
    pub what: String,
    pub observed: String,
    pub pass: bool,
}

/// Medians of one variant's numeric metrics and params (params are constant per run).
pub trait Lookup {
    fn get(&self, key: &str) -> Option<f64>;
}

/// The spec's assertions for `demo` (§(c) "Assert" of demo-targets.md), on medians.
pub fn checks(demo: &str, before: &dyn Lookup, after: &dyn Lookup) -> Vec<Check> {
    let mut out = Vec::new();
    let num = |v: &dyn Lookup, k: &str| v.get(k).unwrap_or(f64::NAN);
    let ratio_at_least = |key: &str, lower_is_better: bool, min: f64| {
        let r = improvement(num(before, key), num(after, key), lower_is_better);
        let dir = if lower_is_better {
            "before/after"
        } else {
            "after/before"
        };
        Check {
            what: format!("{key} ratio {dir} ≥ {min}×"),
            observed: show_ratio(r),
            pass: r >= min,
        }
    };
    match demo {
        "forwarder" => {
            out.push(ratio_at_least("first_lookup_wait_p99_ms", true, 5.0));
            let builds = num(before, "builds");
            out.push(zero(after, "timeouts"));
            out.push(zero(after, "spurious_wakeups"));
            let spurious = num(before, "spurious_wakeups");
            out.push(Check {
                what: format!(
                    "before.spurious_wakeups ≥ 100 × builds ({})",
                    show_value(100.0 * builds)
                ),
                observed: show_value(spurious),
                pass: spurious >= 100.0 * builds,
            });
        }
        "switch" => {
            out.push(ratio_at_least("bcast_p99_us", true, 100.0));
            out.push(ratio_at_least("connect_p99_us", true, 100.0));
            out.push(ratio_at_least("rx_pps", false, 1.5));
            let (b, a) = (
                num(before, "vm_to_host_drops"),
                num(after, "vm_to_host_drops"),
            );
            out.push(Check {
                what: format!(
                    "after.vm_to_host_drops ≤ 0.26 × before ({})",
                    show_value(0.26 * b)
                ),
                observed: show_value(a),
                pass: a <= 0.26 * b,
            });
        }
        "kmutex" => {
            out.push(ratio_at_least("makespan_s", true, 8.0));
            out.push(zero(after, "duplicate_unpacks"));
            out.push(zero(after, "trylock_failures"));
            for (variant, v) in [("before", before), ("after", after)] {
                let (d, l) = (num(v, "downloads"), num(v, "layers"));
                out.push(Check {
                    what: format!("{variant}.downloads == layers ({})", show_value(l)),
                    observed: show_value(d),
                    pass: (d - l).abs() < 0.5, // integer counts
                });
            }
        }
        "container-store" => out.push(ratio_at_least("ps_p99_ms", true, 10.0)),
        "layer-store" => out.push(ratio_at_least("list_p99_ms", true, 10.0)),
        _ => {}
    }
    out
}

fn zero(after: &dyn Lookup, key: &str) -> Check {
    let v = after.get(key).unwrap_or(f64::NAN);
    Check {
        what: format!("after.{key} == 0"),
        observed: show_value(v),
        pass: v == 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    impl Lookup for HashMap<&str, f64> {
        fn get(&self, key: &str) -> Option<f64> {
            HashMap::get(self, key).copied()
        }
    }

    #[test]
    fn parses_the_demo_line_among_report_text() {
        let out = "lockprof text\n{\"demo\":\"kmutex\",\"variant\":\"before\",\"params\":{\"pulls\":20},\
                   \"headline\":{\"name\":\"makespan_s\",\"value\":3.9,\"unit\":\"s\",\"lower_is_better\":true},\
                   \"metrics\":{\"makespan_s\":3.9,\"downloads\":6},\"wall_s\":3.9}\nmore text\n";
        let run = DemoRun::parse(out).unwrap();
        assert_eq!(run.headline, "makespan_s");
        assert!((run.value - 3.9).abs() < 1e-12);
        assert_eq!(run.metric("downloads"), Some(6.0));
        assert!(DemoRun::parse("no json here").is_err());
    }

    #[test]
    fn improvement_respects_direction_and_zero() {
        assert!((improvement(10.0, 2.0, true) - 5.0).abs() < 1e-12);
        assert!((improvement(10.0, 20.0, false) - 2.0).abs() < 1e-12);
        assert!(improvement(10.0, 0.0, true).is_infinite());
        assert_eq!(show_ratio(f64::INFINITY), "∞");
        assert_eq!(show_ratio(23.14), "23.1×");
    }

    #[test]
    fn kmutex_checks_follow_the_spec() {
        let before = HashMap::from([
            ("makespan_s", 3.9),
            ("downloads", 6.0),
            ("layers", 6.0),
            ("duplicate_unpacks", 47.0),
            ("trylock_failures", 1340.0),
        ]);
        let mut after = HashMap::from([
            ("makespan_s", 0.2),
            ("downloads", 6.0),
            ("layers", 6.0),
            ("duplicate_unpacks", 0.0),
            ("trylock_failures", 0.0),
        ]);
        assert!(checks("kmutex", &before, &after).iter().all(|c| c.pass));
        after.insert("duplicate_unpacks", 1.0);
        let failed: Vec<String> = checks("kmutex", &before, &after)
            .into_iter()
            .filter(|c| !c.pass)
            .map(|c| c.what)
            .collect();
        assert_eq!(failed, ["after.duplicate_unpacks == 0"]);
    }

    #[test]
    fn unknown_demo_lists_names() {
        let err = select(Some("nope")).err().unwrap().to_string();
        assert!(err.contains("forwarder, switch, kmutex, container-store, layer-store"));
        assert_eq!(select(None).unwrap().len(), 5);
    }
}

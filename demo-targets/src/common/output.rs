//! The one JSON line a run prints: its headline number, metrics and parameters.

use std::time::Duration;

use serde::Serialize;

use crate::common::{Demo, Params, Variant, percentile, round3};

/// The number a demo is judged by.
#[derive(Debug, Serialize)]
pub struct Headline {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub lower_is_better: bool,
}

/// What a demo returns: headline, secondary metrics and the workload's wall time.
#[derive(Debug)]
pub struct Outcome {
    pub headline: Headline,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    pub wall_s: f64,
}

/// Builds the `metrics` object; the headline is added to it by [`Report::new`].
#[derive(Debug, Default)]
pub struct Metrics(serde_json::Map<String, serde_json::Value>);

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    pub fn put(&mut self, key: &str, value: impl Into<serde_json::Value>) -> &mut Metrics {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// A float rounded to 3 decimals.
    pub fn num(&mut self, key: &str, value: f64) -> &mut Metrics {
        self.put(key, round3(value))
    }

    pub fn into_map(self) -> serde_json::Map<String, serde_json::Value> {
        self.0
    }
}

/// The outcome of a demo judged by a latency: `headline` (`<what>_p99_ms`) is the
/// p99 of `samples_ms`, lower is better, and `metrics` gain `<what>_p50_ms`,
/// `<what>_max_ms` and `<what>_calls`.
pub fn latency_outcome(
    headline: &'static str,
    samples_ms: &[f64],
    mut metrics: Metrics,
    wall: Duration,
) -> Outcome {
    let what = headline.strip_suffix("_p99_ms").unwrap_or(headline);
    metrics
        .num(&format!("{what}_p50_ms"), percentile(samples_ms, 50.0))
        .num(&format!("{what}_max_ms"), percentile(samples_ms, 100.0))
        .put(&format!("{what}_calls"), samples_ms.len());
    Outcome {
        headline: Headline {
            name: headline,
            value: percentile(samples_ms, 99.0),
            unit: "ms",
            lower_is_better: true,
        },
        metrics: metrics.into_map(),
        wall_s: wall.as_secs_f64(),
    }
}

/// The latency demos' acceptance check, for their unit tests: with `params` holding
/// the lock for 60 ms (knob `hold_knob`), the headline p99 approaches the hold before
/// the fix (≥ 20 ms) and is tiny after it (< 10 ms).
#[cfg(test)]
pub fn assert_p99_waits_only_before(
    run: impl Fn(Variant, &Params) -> Result<Outcome, crate::common::RunError>,
    params: &Params,
    hold_knob: &str,
) {
    assert_eq!(params.get(hold_knob), 60, "the check assumes a 60 ms hold");
    let before = run(Variant::Before, params).expect("run before");
    let after = run(Variant::After, params).expect("run after");
    let (b, a) = (before.headline.value, after.headline.value);
    assert!(
        b >= 20.0,
        "before p99 {b} ms should approach {hold_knob} (60)"
    );
    assert!(a < 10.0, "after p99 {a} ms should be tiny");
}

/// The single JSON line printed on stdout, fields in the documented order.
#[derive(Debug, Serialize)]
pub struct Report {
    pub demo: &'static str,
    pub variant: &'static str,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub headline: Headline,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    pub wall_s: f64,
}

impl Report {
    pub fn new(demo: Demo, variant: Variant, params: &Params, outcome: Outcome) -> Report {
        let mut metrics = outcome.metrics;
        metrics.insert(
            outcome.headline.name.to_owned(),
            round3(outcome.headline.value).into(),
        );
        Report {
            demo: demo.name(),
            variant: variant.name(),
            params: params.to_json(demo.spec()),
            headline: Headline {
                value: round3(outcome.headline.value),
                ..outcome.headline
            },
            metrics,
            wall_s: round3(outcome.wall_s),
        }
    }

    pub fn to_json_line(&self) -> String {
        // Serialising plain maps, strings and finite floats cannot fail; a NaN would
        // become `null` rather than an error.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::args::tests::run_params;

    #[test]
    fn report_serialises_fields_in_order() {
        let (demo, variant, params) = run_params("layer-store after");
        let mut m = Metrics::new();
        m.put("n", 3);
        let report = Report::new(
            demo,
            variant,
            &params,
            Outcome {
                headline: Headline {
                    name: "list_p99_ms",
                    value: 1.234_56,
                    unit: "ms",
                    lower_is_better: true,
                },
                metrics: m.into_map(),
                wall_s: 2.0,
            },
        );
        let line = report.to_json_line();
        assert!(!line.contains('\n'));
        let keys = [
            "\"demo\"",
            "\"variant\"",
            "\"params\"",
            "\"headline\"",
            "\"metrics\"",
            "\"wall_s\"",
        ];
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| line.find(k).expect("key present"))
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["headline"]["value"], 1.235);
        assert_eq!(v["metrics"]["list_p99_ms"], 1.235);
        assert_eq!(v["params"]["threads"], v["params"]["listers"]);
    }
}

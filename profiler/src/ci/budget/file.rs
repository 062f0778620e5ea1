//! The budget file: its keys (every one documented in `docs/ci.md`, "Budget file"),
//! the value grammar (durations with a unit, percentages with `%`), and one-line
//! errors that name the file, line and column.
//!
//! Must not: evaluate anything.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::ci::budget::Pattern;
use crate::ci::gate::{GateOverrides, GateRules};
use crate::report::model::WaitKind;

/// Why a budget file could not be used. One line each, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The file could not be opened or read.
    #[error("cannot read budget '{path}': {error}")]
    Read { path: String, error: std::io::Error },
    /// Not valid TOML, an unknown key, or a value of the wrong form.
    #[error("budget '{name}': line {line} column {column}: {message}")]
    Invalid {
        name: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// A budget file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default)]
    pub total: TotalRules,
    #[serde(default, rename = "site")]
    pub sites: Vec<SiteRule>,
    #[serde(default)]
    pub forbid: Vec<ForbidRule>,
    #[serde(default)]
    pub baseline: BaselineRules,
}

/// `[total]`: report-wide limits, per second of recording.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalRules {
    /// All blocked futex waits (`totals.wait_ns`), condvar and event waits included.
    pub max_wait_per_sec: Option<Duration>,
    /// Lock contention only (`totals.contention_wait_ns`: mutex, rwlock, semaphore).
    pub max_contention_per_sec: Option<Duration>,
}

/// `[[site]]`: ceilings for every site matching a pattern.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRule {
    #[serde(rename = "match")]
    pub pattern: Pattern,
    /// Only sites of this kind (`mutex`, `rwlock-read`, …).
    pub kind: Option<WaitKind>,
    pub max_p99: Option<Duration>,
    /// The longest single wait (`max_wait_ns`).
    pub max_wait: Option<Duration>,
    pub max_total_wait: Option<Duration>,
    pub max_wait_per_sec: Option<Duration>,
    /// Share of all blocked wait in the report (as in `lockprof report`'s SHARE).
    pub max_share: Option<Percent>,
}

/// `[[forbid]]`: no site matching the pattern may wait more than `above` in total.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForbidRule {
    #[serde(rename = "match")]
    pub pattern: Pattern,
    pub kind: Option<WaitKind>,
    /// Default 0: any wait at all is a breach.
    #[serde(default)]
    pub above: Duration,
}

/// `[baseline]`: how a change versus a baseline report is judged (the shared gate of
/// `diff` and `check --baseline`). Every key has a default; flags override them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineRules {
    /// Relative growth that counts (default 400%: more than ×5).
    pub max_regression: Option<Percent>,
    /// Absolute per-site floor, in wait per second (default 2ms).
    pub min_wait_per_sec: Option<Duration>,
    /// Per-site floor as a share of the run's lock contention per second (default 20%).
    pub min_share: Option<Percent>,
    /// Judge condvar and other event waits too (default false).
    pub include_event_waits: Option<bool>,
}

/// A duration in nanoseconds, written with a unit: `"5ms"`, `"1.5s"`, `"200us"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Duration(pub u64);

/// A percentage, written `"20%"`; stored as a fraction (0.2).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percent(pub f64);

/// The grammar lockprof's command line uses too: one parser for both.
pub use crate::units::{parse_duration_ns, parse_percent};

/// `0.2` → `20%`, `0.125` → `12.5%`.
pub fn fmt_percent(fraction: f64) -> String {
    let pct = fraction * 100.0;
    let text = format!("{pct:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

struct StrVisitor {
    expecting: &'static str,
    parse: fn(&str) -> Result<String, String>,
}

impl Visitor<'_> for StrVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Err(E::custom(format!(
            "{v} has no unit: write {} in quotes",
            self.expecting
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Err(E::custom(format!(
            "{v} has no unit: write {} in quotes",
            self.expecting
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Err(E::custom(format!(
            "{v} has no unit: write {} in quotes",
            self.expecting
        )))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_any(StrVisitor {
            expecting: "a duration such as \"5ms\"",
            parse: |s| parse_duration_ns(s).map(|_| s.to_owned()),
        })?;
        parse_duration_ns(&text)
            .map(Duration)
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_any(StrVisitor {
            expecting: "a percentage such as \"20%\"",
            parse: |s| parse_percent(s).map(|_| s.to_owned()),
        })?;
        parse_percent(&text).map(Percent).map_err(de::Error::custom)
    }
}

/// Reads and checks a budget file.
pub fn load(path: &Path) -> Result<Budget, BudgetError> {
    let text = std::fs::read_to_string(path).map_err(|error| BudgetError::Read {
        path: path.display().to_string(),
        error,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses a budget; `name` (usually the file name) is used in errors.
pub fn parse(text: &str, name: &str) -> Result<Budget, BudgetError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        BudgetError::Invalid {
            name: name.to_owned(),
            line,
            column,
            message: e.message().trim_end().replace('`', "'").replace('\n', "; "),
        }
    })
}

/// 1-based line and column (in chars) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Budget {
    /// The gate rules: each flag given on the command line, else the `[baseline]`
    /// key, else the default.
    pub fn gate_rules(&self, flags: GateOverrides) -> GateRules {
        let b = &self.baseline;
        let d = GateRules::default();
        GateRules {
            max_regression: flags
                .max_regression
                .or(b.max_regression.map(|p| p.0))
                .unwrap_or(d.max_regression),
            min_share: flags
                .min_share
                .or(b.min_share.map(|p| p.0))
                .unwrap_or(d.min_share),
            min_wait_per_sec_ns: flags
                .min_wait_per_sec_ns
                .or(b.min_wait_per_sec.map(|x| x.0))
                .unwrap_or(d.min_wait_per_sec_ns),
            include_event_waits: flags.include_event_waits
                || b.include_event_waits.unwrap_or(d.include_event_waits),
        }
    }

    /// How many limits the budget sets (for the summary line).
    pub fn rule_count(&self, with_baseline: bool) -> usize {
        let t = &self.total;
        let totals = usize::from(t.max_wait_per_sec.is_some())
            + usize::from(t.max_contention_per_sec.is_some());
        let sites: usize = self
            .sites
            .iter()
            .map(|r| {
                [
                    r.max_p99.is_some(),
                    r.max_wait.is_some(),
                    r.max_total_wait.is_some(),
                    r.max_wait_per_sec.is_some(),
                    r.max_share.is_some(),
                ]
                .into_iter()
                .filter(|&b| b)
                .count()
            })
            .sum();
        totals + sites + self.forbid.len() + usize::from(with_baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "b.toml")
            .expect_err("should be refused")
            .to_string()
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration_ns("5ms"), Ok(5_000_000));
        assert_eq!(parse_duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration_ns("200us"), Ok(200_000));
        assert_eq!(parse_duration_ns("200µs"), Ok(200_000));
        assert_eq!(parse_duration_ns("0"), Ok(0));
        assert!(parse_duration_ns("5").unwrap_err().contains("needs a unit"));
        assert!(
            parse_duration_ns("5 parsecs")
                .unwrap_err()
                .contains("unit 'parsecs'")
        );
        assert!(
            parse_duration_ns("-5ms")
                .unwrap_err()
                .contains("invalid duration")
        );
        assert!(parse_duration_ns("1e300h").is_err());
    }

    #[test]
    fn percentages_need_a_percent_sign() {
        assert_eq!(parse_percent("20%"), Ok(0.2));
        assert_eq!(parse_percent("12.5 %"), Ok(0.125));
        assert!(parse_percent("0.2").unwrap_err().contains("with '%'"));
        assert!(parse_percent("-3%").is_err());
        assert_eq!(fmt_percent(0.2), "20%");
        assert_eq!(fmt_percent(0.125), "12.5%");
    }

    #[test]
    fn a_full_budget_parses() {
        let b = parse(
            r#"
            [total]
            max_wait_per_sec = "50ms"
            max_contention_per_sec = "20ms"
            [[site]]
            match = "Store::writer"
            kind = "mutex"
            max_p99 = "5ms"
            max_share = "30%"
            [[forbid]]
            match = "*::Cache::*"
            above = "10ms"
            [[forbid]]
            match = "legacy.rs:*"
            [baseline]
            max_regression = "20%"
            "#,
            "b.toml",
        )
        .expect("parses");
        assert_eq!(b.total.max_contention_per_sec, Some(Duration(20_000_000)));
        assert_eq!(b.sites[0].kind, Some(WaitKind::Mutex));
        assert_eq!(b.sites[0].max_share, Some(Percent(0.3)));
        assert_eq!(b.forbid[1].above, Duration(0));
        assert_eq!(b.baseline.max_regression, Some(Percent(0.2)));
        assert_eq!(b.rule_count(true), 2 + 2 + 2 + 1);
    }

    #[test]
    fn errors_name_the_file_line_and_problem() {
        assert_eq!(
            err("[total]\nmax_wiat_per_sec = \"5ms\"\n"),
            "budget 'b.toml': line 2 column 1: unknown field 'max_wiat_per_sec', expected 'max_wait_per_sec' or 'max_contention_per_sec'"
        );
        assert_eq!(
            err("[[site]]\nmatch = \"x\"\nmax_p99 = 5\n"),
            "budget 'b.toml': line 3 column 11: 5 has no unit: write a duration such as \"5ms\" in quotes"
        );
        assert_eq!(
            err("[[site]]\nmatch = \"x\"\nmax_share = \"0.3\"\n"),
            "budget 'b.toml': line 3 column 13: invalid percentage '0.3' (write it with '%', e.g. \"20%\")"
        );
        assert_eq!(
            err("[[forbid]]\nabove = \"1ms\"\n"),
            "budget 'b.toml': line 1 column 1: missing field 'match'"
        );
        assert!(err("[[site]]\nmatch = \"\"\n").contains("'match' is empty"));
        assert!(
            err("[[site]]\nmatch = \"x\"\nkind = \"spin\"\n").contains("unknown variant 'spin'")
        );
        assert!(err("[total\n").starts_with("budget 'b.toml': line 1 column"));
        assert!(err("colour = \"red\"\n").contains("unknown field 'colour'"));
    }
}

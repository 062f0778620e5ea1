//! Budgets: the limits `lockprof check` and `lockprof record --check` hold a report to.
//!
//! Owns: the budget file (TOML, every key documented in `docs/ci.md`, "Budget file"),
//! reading it with one-line errors that name the file, line and key, evaluating a
//! report — and, with a baseline, its regressions — against it, and the list of
//! breaches, one line each. Must not: read report files or pick exit codes (`cli`
//! does both), or match sites across runs itself (`compare` does).
//!
//! ```toml
//! [total]
//! max_contention_per_sec = "20ms"   # lock contention per second of recording
//!
//! [[site]]
//! match = "Store::writer"           # substring, or glob with * and ?
//! max_p99 = "5ms"
//! max_share = "30%"
//!
//! [[forbid]]
//! match = "*::Cache::*"
//! above = "10ms"                    # total wait
//!
//! [baseline]
//! max_regression = "20%"            # with --baseline FILE
//! ```

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::ci::diff::{NOISE_NS_PER_SEC, fmt_change, per_sec};
use crate::ci::identity::match_sites;
use crate::render::text::{fmt_duration_ns, fmt_pct, short_function, short_path};
use crate::report::model::{Report, Site, WaitKind};

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
    /// Valid, but unusable as given (e.g. a baseline without a regression limit).
    #[error("budget '{name}': {message}")]
    Unusable { name: String, message: String },
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

/// `[baseline]`: regression limits, used when a baseline report is given.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineRules {
    pub max_regression: Option<Percent>,
    /// Sites (and totals) below this wait per second in the new report never count
    /// as regressions (default 1ms, as `lockprof diff`'s noise floor).
    pub min_wait_per_sec: Option<Duration>,
}

/// A duration in nanoseconds, written with a unit: `"5ms"`, `"1.5s"`, `"200us"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Duration(pub u64);

/// A percentage, written `"20%"`; stored as a fraction (0.2).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percent(pub f64);

/// A site pattern: a substring, or a glob (`*` any run of characters, `?` one) when it
/// contains `*` or `?`. See [`Pattern::matches`] for what it is tried against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(pub String);

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

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Err(de::Error::custom(
                "'match' is empty: give part of a function name, a file:line or a glob",
            ));
        }
        Ok(Pattern(text))
    }
}

impl Pattern {
    fn is_glob(&self) -> bool {
        self.0.contains(['*', '?'])
    }

    /// Is `site` matched? The pattern is tried against the site's function (in full
    /// and as `lockprof report` shortens it), its `file:line` (in full, the last three
    /// path components, and the file name alone), and its id. A plain pattern matches when it is a
    /// substring of one of them; a glob must match one of them whole.
    pub fn matches(&self, site: &Site) -> bool {
        let mut names: Vec<String> = vec![site.id.clone()];
        if let Some(f) = &site.function {
            names.push(f.clone());
            names.push(short_function(f));
        }
        if let Some(file) = &site.file {
            let line = site.line.map(|l| format!(":{l}")).unwrap_or_default();
            names.push(format!("{file}{line}"));
            names.push(format!("{}{line}", short_path(file)));
            let base = file.rsplit('/').next().unwrap_or(file);
            names.push(format!("{base}{line}"));
        }
        if self.is_glob() {
            names.iter().any(|n| glob(&self.0, n))
        } else {
            names.iter().any(|n| n.contains(&self.0))
        }
    }
}

/// Whole-string glob match: `*` any run of characters (also `::` and `/`), `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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

/// A baseline report to check regressions against, with the limits in force.
#[derive(Clone, Copy, Debug)]
pub struct Baseline<'a> {
    pub report: &'a Report,
    pub name: &'a str,
    /// Largest allowed growth (0.2 = +20%).
    pub max_regression: f64,
    /// Noise floor in wait per second (ns/s).
    pub min_wait_per_sec_ns: u64,
}

impl Budget {
    /// The regression limit: `--max-regression` if given, else `[baseline]`'s.
    pub fn regression_limits(
        &self,
        max_regression: Option<f64>,
        name: &str,
    ) -> Result<(f64, u64), BudgetError> {
        let limit = max_regression
            .or(self.baseline.max_regression.map(|p| p.0))
            .ok_or_else(|| BudgetError::Unusable {
                name: name.to_owned(),
                message: "a baseline was given but no regression limit: add \
                          '[baseline] max_regression = \"20%\"' or pass --max-regression"
                    .to_owned(),
            })?;
        let floor = self
            .baseline
            .min_wait_per_sec
            .map_or(NOISE_NS_PER_SEC, |d| d.0);
        Ok((limit, floor))
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

/// One limit exceeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Breach {
    /// `total`, or the site (`mutex Store::writer at src/store.rs:42`).
    pub subject: String,
    /// The site's id (absent for totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    /// Which rule: `total.max_contention_per_sec`, `site[1] 'Store::writer' max_p99`, …
    pub rule: String,
    /// What was measured, against what limit, in words.
    pub message: String,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}  [{}]", self.subject, self.message, self.rule)
    }
}

/// The result of checking a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub report: String,
    /// The budget file (absent when only a baseline was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    pub rules: usize,
    pub sites: usize,
    pub breaches: Vec<Breach>,
    /// Things worth knowing that are not breaches (a pattern that matched no site).
    pub notes: Vec<String>,
}

impl Evaluation {
    pub fn passed(&self) -> bool {
        self.breaches.is_empty()
    }
}

/// `mutex Store::writer at src/store.rs:42`, control characters replaced.
pub fn site_label(site: &Site) -> String {
    let function = site
        .function
        .as_deref()
        .map_or_else(|| "[unknown function]".to_owned(), short_function);
    let place = match (&site.file, site.line) {
        (Some(file), Some(line)) => format!(" at {}:{line}", short_path(file)),
        (Some(file), None) => format!(" at {}", short_path(file)),
        _ => String::new(),
    };
    format!("{} {function}{place}", site.kind.as_str())
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn per_sec_text(ns: u64) -> String {
    format!("{}/s", fmt_duration_ns(ns))
}

fn quoted(p: &Pattern) -> String {
    format!("'{}'", p.0)
}

/// Checks `report` against `budget` (and `baseline`, if any). The names are shown in
/// the result.
pub fn evaluate(
    budget: &Budget,
    report: &Report,
    report_name: &str,
    budget_name: Option<&str>,
    baseline: Option<Baseline<'_>>,
) -> Evaluation {
    let mut breaches = Vec::new();
    let mut notes = Vec::new();
    let duration = report.duration_ns;
    let no_duration = |notes: &mut Vec<String>, rule: &str| {
        notes.push(format!(
            "{rule} not checked: the report has no recording duration"
        ));
    };

    let totals = [
        (
            "max_wait_per_sec",
            budget.total.max_wait_per_sec,
            report.totals.wait_ns,
            "wait",
        ),
        (
            "max_contention_per_sec",
            budget.total.max_contention_per_sec,
            report.totals.contention_wait_ns,
            "lock contention",
        ),
    ];
    for (key, limit, value, what) in totals {
        let Some(limit) = limit else { continue };
        let rule = format!("total.{key}");
        match per_sec(value, duration) {
            None => no_duration(&mut notes, &rule),
            Some(v) if v > limit.0 => breaches.push(Breach {
                subject: "total".to_owned(),
                site_id: None,
                rule,
                message: format!(
                    "{what} per second {} exceeds {}",
                    per_sec_text(v),
                    per_sec_text(limit.0)
                ),
            }),
            Some(_) => {}
        }
    }

    for (i, rule) in budget.sites.iter().enumerate() {
        let label = format!("site[{}] {}", i + 1, quoted(&rule.pattern));
        let matching: Vec<&Site> = report
            .sites
            .iter()
            .filter(|s| rule.kind.is_none_or(|k| k == s.kind) && rule.pattern.matches(s))
            .collect();
        if matching.is_empty() {
            notes.push(format!("{label} matched no site"));
        }
        for site in matching {
            let mut push = |key: &str, message: String| {
                breaches.push(Breach {
                    subject: site_label(site),
                    site_id: Some(site.id.clone()),
                    rule: format!("{label} {key}"),
                    message,
                });
            };
            let ceilings = [
                ("max_p99", rule.max_p99, site.p99_wait_ns, "p99 wait"),
                ("max_wait", rule.max_wait, site.max_wait_ns, "longest wait"),
                (
                    "max_total_wait",
                    rule.max_total_wait,
                    site.total_wait_ns,
                    "total wait",
                ),
            ];
            for (key, limit, value, what) in ceilings {
                if let Some(limit) = limit
                    && value > limit.0
                {
                    push(
                        key,
                        format!(
                            "{what} {} exceeds {}",
                            fmt_duration_ns(value),
                            fmt_duration_ns(limit.0)
                        ),
                    );
                }
            }
            if let Some(limit) = rule.max_wait_per_sec {
                match per_sec(site.total_wait_ns, duration) {
                    Some(v) if v > limit.0 => push(
                        "max_wait_per_sec",
                        format!(
                            "wait per second {} exceeds {}",
                            per_sec_text(v),
                            per_sec_text(limit.0)
                        ),
                    ),
                    Some(_) => {}
                    None => no_duration(&mut notes, &format!("{label} max_wait_per_sec")),
                }
            }
            if let Some(limit) = rule.max_share {
                let whole = report.totals.wait_ns;
                if whole > 0 && site.total_wait_ns as f64 > limit.0 * whole as f64 {
                    push(
                        "max_share",
                        format!(
                            "share of all wait {} exceeds {}",
                            fmt_pct(site.total_wait_ns, whole),
                            fmt_percent(limit.0)
                        ),
                    );
                }
            }
        }
    }

    for (i, rule) in budget.forbid.iter().enumerate() {
        let label = format!("forbid[{}] {}", i + 1, quoted(&rule.pattern));
        for site in report.sites.iter().filter(|s| {
            rule.kind.is_none_or(|k| k == s.kind)
                && rule.pattern.matches(s)
                && s.total_wait_ns > rule.above.0
        }) {
            let message = if rule.above.0 == 0 {
                format!(
                    "waits {} in total where no wait is allowed",
                    fmt_duration_ns(site.total_wait_ns)
                )
            } else {
                format!(
                    "total wait {} is above the allowed {}",
                    fmt_duration_ns(site.total_wait_ns),
                    fmt_duration_ns(rule.above.0)
                )
            };
            breaches.push(Breach {
                subject: site_label(site),
                site_id: Some(site.id.clone()),
                rule: format!("{label} above"),
                message,
            });
        }
    }

    if let Some(base) = baseline {
        regressions(report, &base, &mut breaches, &mut notes);
    }

    Evaluation {
        report: report_name.to_owned(),
        budget: budget_name.map(str::to_owned),
        baseline: baseline.map(|b| b.name.to_owned()),
        rules: budget.rule_count(baseline.is_some()),
        sites: report.sites.len(),
        breaches,
        notes,
    }
}

/// `[baseline] max_regression`: report-wide lock contention and every site may grow by
/// at most the limit, in wait per second; a site new since the baseline may not wait
/// more than the noise floor.
fn regressions(
    report: &Report,
    base: &Baseline<'_>,
    breaches: &mut Vec<Breach>,
    notes: &mut Vec<String>,
) {
    let rule = "baseline max_regression".to_owned();
    let limit = fmt_change(1.0 + base.max_regression);
    let (Some(_), Some(_)) = (
        per_sec(1, base.report.duration_ns),
        per_sec(1, report.duration_ns),
    ) else {
        notes.push(format!(
            "{rule} not checked: a report has no recording duration"
        ));
        return;
    };
    let grew = |before: u64, after: u64| {
        after >= base.min_wait_per_sec_ns
            && after > before
            && after as f64 > before as f64 * (1.0 + base.max_regression)
    };
    let growth = |before: u64, after: u64| {
        if before == 0 {
            format!("from none in the baseline to {}", per_sec_text(after))
        } else {
            format!(
                "{} → {} ({}), more than {limit}",
                per_sec_text(before),
                per_sec_text(after),
                fmt_change(after as f64 / before as f64)
            )
        }
    };
    let before = per_sec(
        base.report.totals.contention_wait_ns,
        base.report.duration_ns,
    )
    .unwrap_or(0);
    let after = per_sec(report.totals.contention_wait_ns, report.duration_ns).unwrap_or(0);
    if grew(before, after) {
        breaches.push(Breach {
            subject: "total".to_owned(),
            site_id: None,
            rule: rule.clone(),
            message: format!("lock contention per second grew {}", growth(before, after)),
        });
    }
    let matching = match_sites(&base.report.sites, &report.sites);
    let site_rate = |s: &Site, duration: u64| per_sec(s.total_wait_ns, duration).unwrap_or(0);
    for pair in &matching.pairs {
        let site = &report.sites[pair.new];
        let before = site_rate(&base.report.sites[pair.base], base.report.duration_ns);
        let after = site_rate(site, report.duration_ns);
        if grew(before, after) {
            breaches.push(Breach {
                subject: site_label(site),
                site_id: Some(site.id.clone()),
                rule: rule.clone(),
                message: format!("wait per second grew {}", growth(before, after)),
            });
        }
    }
    for &n in &matching.only_new {
        let site = &report.sites[n];
        let after = site_rate(site, report.duration_ns);
        if after >= base.min_wait_per_sec_ns {
            breaches.push(Breach {
                subject: site_label(site),
                site_id: Some(site.id.clone()),
                rule: rule.clone(),
                message: format!(
                    "new site (not in the baseline) waits {}, at or above the floor {}",
                    per_sec_text(after),
                    per_sec_text(base.min_wait_per_sec_ns)
                ),
            });
        }
    }
}

/// The evaluation as text: a summary line, then one line per breach and per note.
pub fn render(eval: &Evaluation) -> String {
    let mut out = Vec::new();
    let against = [("budget", &eval.budget), ("baseline", &eval.baseline)]
        .into_iter()
        .filter_map(|(what, name)| name.as_ref().map(|n| format!("{what} '{n}'")))
        .collect::<Vec<_>>()
        .join(", ");
    if eval.passed() {
        out.push(format!(
            "lockprof check: '{}' is within budget ({against}): {} {} checked on {} {}",
            eval.report,
            eval.rules,
            if eval.rules == 1 { "rule" } else { "rules" },
            eval.sites,
            if eval.sites == 1 { "site" } else { "sites" },
        ));
    } else {
        out.push(format!(
            "lockprof check: '{}' is over budget ({against}): {} {}",
            eval.report,
            eval.breaches.len(),
            if eval.breaches.len() == 1 {
                "breach"
            } else {
                "breaches"
            },
        ));
        out.extend(eval.breaches.iter().map(|b| format!("  {b}")));
    }
    out.extend(eval.notes.iter().map(|n| format!("note: {n}")));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The evaluation as pretty JSON with a trailing newline.
pub fn to_json(eval: &Evaluation) -> String {
    // Plain structs of strings and integers: serializing cannot fail.
    let mut text = serde_json::to_string_pretty(eval).expect("an Evaluation always serializes");
    text.push('\n');
    text
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

    #[test]
    fn globs_and_substrings() {
        assert!(glob("*Store::writer", "kmutex::Store::writer"));
        assert!(glob("src/*.rs:1?", "src/store.rs:12"));
        assert!(!glob("src/*.rs:1?", "src/store.rs:123"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acbd"));
        let site = Site {
            id: "mutex|app|app::Store::writer|src/store.rs:42".to_owned(),
            function: Some("app::Store::writer".to_owned()),
            file: Some("/home/me/app/src/store.rs".to_owned()),
            line: Some(42),
            ..Site::default()
        };
        for yes in [
            "Store::writer",
            "store.rs:42",
            "app/src/store.rs:4",
            "*::writer",
            "store.rs:4?",
        ] {
            assert!(Pattern(yes.to_owned()).matches(&site), "{yes}");
        }
        for no in [
            "Store::reader",
            "*::writer2",
            "store.rs:43",
            "src/store.rs:4?",
        ] {
            assert!(!Pattern(no.to_owned()).matches(&site), "{no}");
        }
    }

    #[test]
    fn baseline_without_a_limit_is_unusable() {
        let b = Budget::default();
        assert!(b.regression_limits(None, "b.toml").is_err());
        assert_eq!(
            b.regression_limits(Some(0.2), "b.toml").ok(),
            Some((0.2, NOISE_NS_PER_SEC))
        );
    }

    #[test]
    fn an_empty_report_passes_with_notes() {
        let b = parse("[[site]]\nmatch = \"x\"\nmax_p99 = \"1ms\"\n", "b.toml").expect("parses");
        let eval = evaluate(&b, &Report::default(), "r.json", Some("b.toml"), None);
        assert!(eval.passed());
        assert_eq!(eval.notes, ["site[1] 'x' matched no site"]);
    }
}

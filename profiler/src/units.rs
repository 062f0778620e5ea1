//! Durations and percentages as users write them, on the command line and in budget
//! files: one grammar for both.
//!
//! Owns: parsing `5ms`, `1.5s`, `2m`, `20%` into numbers, exactly (integer arithmetic,
//! no float rounding to zero) and with one-line errors. Must not: decide what range a
//! particular option accepts (the caller bounds it: see [`bounded`]).
//!
//! A duration is a decimal number followed by a unit: `ns`, `us` (or `µs`), `ms`, `s`,
//! `m` (or `min`) or `h`. The unit is required, except for a plain `0`: a bare `10`
//! could mean seconds to one reader and milliseconds to another.

use std::time::Duration;

/// Units in the order the error messages list them, with their length in ns.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// `5ms` → `5_000_000`; see the module docs for the grammar. Fractions finer than a
/// nanosecond are rounded to the nearest one.
pub fn parse_duration_ns(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let s = &shown(text);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let invalid = || format!("invalid duration '{s}' (examples: 500us, 5ms, 1.5s, 2m)");
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(invalid());
    }
    let scale = match UNITS.iter().find(|(u, _)| *u == unit) {
        Some(&(_, scale)) => scale,
        None if unit.is_empty() => {
            if int.bytes().chain(frac.bytes()).all(|b| b == b'0') {
                return Ok(0);
            }
            return Err(format!(
                "duration '{s}' needs a unit: ns, us, ms, s, m or h (e.g. {num}s)"
            ));
        }
        None => {
            return Err(format!(
                "invalid duration unit '{}' in '{s}' (use ns, us, ms, s, m or h)",
                shown(unit)
            ));
        }
    };
    let too_large = || format!("duration '{s}' is too large");
    // Leading zeros never matter; more than 39 significant digits overflow u128.
    let int = int.trim_start_matches('0');
    let whole: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let mut ns = whole.checked_mul(scale).ok_or_else(too_large)?;
    // The fraction: digit by digit, each worth scale / 10^k, rounded at the end. 25
    // digits are far below a nanosecond of any unit, and keep `numer * scale` inside
    // u128 for the longest (10^25 × 3.6·10^12 ns an hour < 3.4·10^38); 30 overflowed.
    let mut denom: u128 = 1;
    let mut numer: u128 = 0;
    for d in frac.bytes().take(25) {
        denom *= 10;
        numer = numer * 10 + u128::from(d - b'0');
    }
    if denom > 1 {
        ns += (numer * scale + denom / 2) / denom;
    }
    u64::try_from(ns).map_err(|_| too_large())
}

/// `text` as an error message quotes it: control characters (a newline in a budget
/// string, say) escaped, so the error stays one line.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// [`parse_duration_ns`] as a [`Duration`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_ns(s).map(Duration::from_nanos)
}

/// A duration within `min..=max`, for an option named `what` (e.g. `--interval`).
pub fn bounded(s: &str, what: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < min {
        return Err(format!(
            "{what} '{s}' is too short: the shortest is {}",
            fmt(min)
        ));
    }
    if d > max {
        return Err(format!(
            "{what} '{s}' is too long: the longest is {}",
            fmt(max)
        ));
    }
    Ok(d)
}

/// A duration in the grammar's own words, the largest unit that divides it exactly.
pub fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns >= scale && ns.is_multiple_of(scale) {
            return format!("{}{unit}", ns / scale);
        }
    }
    format!("{ns}ns")
}

/// `20%` → 0.2.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let s = &shown(text);
    let Some(num) = t.strip_suffix('%') else {
        return Err(format!(
            "invalid percentage '{s}' (write it with '%', e.g. \"20%\")"
        ));
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!("invalid percentage '{s}' (e.g. \"20%\")")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_unit_parses_exactly() {
        assert_eq!(parse_duration_ns("5ms"), Ok(5_000_000));
        assert_eq!(parse_duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration_ns("200us"), Ok(200_000));
        assert_eq!(parse_duration_ns("200µs"), Ok(200_000));
        assert_eq!(parse_duration_ns("7ns"), Ok(7));
        assert_eq!(parse_duration_ns("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration_ns("2min"), Ok(120_000_000_000));
        assert_eq!(parse_duration_ns("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_duration_ns(" 10 s "), Ok(10_000_000_000));
        assert_eq!(parse_duration_ns(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("0"), Ok(0));
        assert_eq!(parse_duration_ns("0.000"), Ok(0));
        // Finer than a nanosecond: rounded, never a float turned into zero by accident.
        assert_eq!(parse_duration_ns("0.0000000001s"), Ok(0));
        assert_eq!(parse_duration_ns("1.5ns"), Ok(2));
        // Long fractions (the fuzzer's find: 70 digits of minutes overflowed u128).
        let long = format!(".35{}m", "4".repeat(68));
        assert_eq!(parse_duration_ns(&long), Ok(21_266_666_667));
        assert_eq!(
            parse_duration_ns(&format!("0.{}h", "9".repeat(60))),
            Ok(3_600_000_000_000)
        );
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        assert_eq!(
            parse_duration_ns("10"),
            Err("duration '10' needs a unit: ns, us, ms, s, m or h (e.g. 10s)".to_owned())
        );
        assert!(
            parse_duration_ns("10 parsecs")
                .unwrap_err()
                .contains("unit 'parsecs'")
        );
        for bad in ["fast", "", "-5ms", "1.2.3s", ".s", "1e3s"] {
            let err = parse_duration_ns(bad).unwrap_err();
            assert!(
                err.starts_with("invalid duration") || err.contains("unit"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            parse_duration_ns("99999999999999999999h"),
            Err("duration '99999999999999999999h' is too large".to_owned())
        );
        // The input is quoted on one line, whatever it holds.
        assert_eq!(
            parse_duration_ns("1s\nx"),
            Err(r"invalid duration unit 's\nx' in '1s\nx' (use ns, us, ms, s, m or h)".to_owned())
        );
        assert!(
            parse_duration_ns(&format!("{}s", "9".repeat(60)))
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn bounds_name_the_option_and_the_limit() {
        let (min, max) = (Duration::from_millis(10), Duration::from_hours(24));
        assert_eq!(
            bounded("5ms", "--interval", min, max),
            Err("--interval '5ms' is too short: the shortest is 10ms".to_owned())
        );
        assert_eq!(
            bounded("25h", "--interval", min, max),
            Err("--interval '25h' is too long: the longest is 24h".to_owned())
        );
        assert_eq!(
            bounded("1s", "--interval", min, max),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn percentages_need_the_sign() {
        assert_eq!(parse_percent("20%"), Ok(0.2));
        assert_eq!(parse_percent("12.5 %"), Ok(0.125));
        assert!(parse_percent("0.2").unwrap_err().contains("with '%'"));
        assert!(parse_percent("-3%").is_err());
        assert!(parse_percent("inf%").is_err());
    }

    /// A unit and its length in ns, as the strategy below picks them.
    fn unit() -> impl Strategy<Value = (&'static str, u128)> {
        proptest::sample::select(UNITS.to_vec())
    }

    proptest! {
        /// Any string: an answer or a one-line error, never a panic.
        #[test]
        fn any_text_gives_a_value_or_a_one_line_error(s in "\\PC{0,40}") {
            if let Err(e) = parse_duration_ns(&s) {
                prop_assert!(!e.contains('\n'));
                prop_assert!(!e.is_empty());
            }
        }

        /// Digits, a dot and a unit: always parsed, never a panic, even past u64.
        #[test]
        fn number_and_unit_round_trip(int in 0u64..1_000_000_000, frac in "[0-9]{0,12}", (u, scale) in unit()) {
            let text = if frac.is_empty() { format!("{int}{u}") } else { format!("{int}.{frac}{u}") };
            let exact = u128::from(int) * scale;
            match parse_duration_ns(&text) {
                Ok(ns) => {
                    let ns = u128::from(ns);
                    // The fraction adds less than one unit.
                    prop_assert!(ns >= exact && ns <= exact + scale, "{text} -> {ns}");
                }
                Err(e) => {
                    prop_assert!(exact + scale > u128::from(u64::MAX), "{text}: {e}");
                    prop_assert!(e.ends_with("is too large"));
                }
            }
        }

        /// What `fmt` writes, the parser reads back to the same duration.
        #[test]
        fn fmt_is_parsed_back(ns in 0u64..u64::MAX / 4) {
            let d = Duration::from_nanos(ns);
            prop_assert_eq!(parse_duration(&fmt(d)), Ok(d));
        }

        /// Within bounds passes unchanged; outside is an error naming the option.
        #[test]
        fn bounded_accepts_exactly_the_range(ms in 0u64..100_000) {
            let (min, max) = (Duration::from_millis(10), Duration::from_mins(1));
            let r = bounded(&format!("{ms}ms"), "-d", min, max);
            let d = Duration::from_millis(ms);
            if d >= min && d <= max {
                prop_assert_eq!(r, Ok(d));
            } else {
                prop_assert!(r.unwrap_err().starts_with("-d '"));
            }
        }
    }
}

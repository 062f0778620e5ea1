//! Human units: a duration, a count or a share in three significant digits, so that
//! columns stay narrow and comparable. Must not: pad or align (tables do that).

/// A duration in ns for humans, three significant digits: `850ns`, `12.3µs`, `4.56ms`,
/// `1.23s`, then `2m03s` and `1h02m`. Rounds to nearest; a value that rounds up to the
/// next unit is shown in it (`999.6µs` → `1.00ms`).
pub fn fmt_duration_ns(ns: u64) -> String {
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    for (scale, unit) in [(1_000, "µs"), (1_000_000, "ms")] {
        if let Some(s) = three_digits(ns, scale, unit) {
            return s;
        }
    }
    // Seconds, while they round to less than a minute.
    let hundredths = div_round(ns, 10_000_000);
    if hundredths < 1_000 {
        return format!("{}.{:02}s", hundredths / 100, hundredths % 100);
    }
    let tenths = div_round(ns, 100_000_000);
    if tenths < 600 {
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    let secs = div_round(ns, 1_000_000_000);
    if secs < 3_600 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    let mins = div_round(ns, 60_000_000_000);
    format!("{}h{:02}m", mins / 60, mins % 60)
}

/// A count for humans: exact up to 10,000, then `12.3k`, `283k`, `1.2M`, `45.6M`,
/// `283M`, `1.2G`.
pub fn fmt_count(n: u64) -> String {
    if n <= 10_000 {
        return n.to_string();
    }
    for (scale, unit) in [(1_000, "k"), (1_000_000, "M"), (1_000_000_000, "G")] {
        let tenths = div_round(n, scale / 10);
        if tenths < 1_000 {
            return format!("{}.{}{unit}", tenths / 10, tenths % 10);
        }
        let units = div_round(n, scale);
        if units < 1_000 {
            return format!("{units}{unit}");
        }
    }
    format!("{}G", div_round(n, 1_000_000_000))
}

/// `ns / scale` in three significant digits of `unit`, or `None` if it rounds to 1000
/// or more of it.
fn three_digits(ns: u64, scale: u64, unit: &str) -> Option<String> {
    let hundredths = div_round(ns, scale / 100);
    if hundredths < 1_000 {
        return Some(format!(
            "{}.{:02}{unit}",
            hundredths / 100,
            hundredths % 100
        ));
    }
    let tenths = div_round(ns, scale / 10);
    if tenths < 1_000 {
        return Some(format!("{}.{}{unit}", tenths / 10, tenths % 10));
    }
    let units = div_round(ns, scale);
    (units < 1_000).then(|| format!("{units}{unit}"))
}

/// `n / d` rounded half up, without overflow.
fn div_round(n: u64, d: u64) -> u64 {
    ((u128::from(n) + u128::from(d) / 2) / u128::from(d)) as u64
}

/// `part` as a share of `whole`: `64%`, `4.5%`, `<0.1%`; `-` when `whole` is 0.
pub fn fmt_pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let pct = part as f64 * 100.0 / whole as f64;
    if part == 0 {
        "0%".to_owned()
    } else if pct < 0.1 {
        "<0.1%".to_owned()
    } else if pct < 9.95 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.0}%")
    }
}

/// `1 wait` / `3 waits`, with the count in human units.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", fmt_count(n), if n == 1 { one } else { many })
}

/// `… 1 more thread` / `… 3 more threads`.
pub fn more(n: u64, one: &str, many: &str) -> String {
    format!(
        "… {} more {}",
        fmt_count(n),
        if n == 1 { one } else { many }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_at_unit_boundaries() {
        let cases = [
            (0, "0ns"),
            (850, "850ns"),
            (999, "999ns"),
            (1_000, "1.00µs"),
            (1_004, "1.00µs"),
            (1_005, "1.01µs"),
            (9_994, "9.99µs"),
            (9_995, "10.0µs"),
            (12_345, "12.3µs"),
            (99_949, "99.9µs"),
            (99_950, "100µs"),
            (999_499, "999µs"),
            (999_500, "1.00ms"),
            (4_560_000, "4.56ms"),
            (999_499_999, "999ms"),
            (999_500_000, "1.00s"),
            (1_234_000_000, "1.23s"),
            (9_995_000_000, "10.0s"),
            (59_949_999_999, "59.9s"),
            (59_950_000_000, "1m00s"),
            (123_000_000_000, "2m03s"),
            (3_599_499_999_999, "59m59s"),
            (3_599_500_000_000, "1h00m"),
            (3_720_000_000_000, "1h02m"),
            (u64::MAX, "5124095h35m"),
        ];
        for (ns, want) in cases {
            assert_eq!(fmt_duration_ns(ns), want, "{ns} ns");
        }
    }

    #[test]
    fn counts_at_suffix_boundaries() {
        let cases = [
            (0, "0"),
            (9_999, "9999"),
            (10_000, "10000"),
            (10_001, "10.0k"),
            (12_345, "12.3k"),
            (99_949, "99.9k"),
            (99_950, "100k"),
            (283_456, "283k"),
            (999_499, "999k"),
            (999_500, "1.0M"),
            (1_234_567, "1.2M"),
            (45_600_000, "45.6M"),
            (999_500_000, "1.0G"),
            (u64::MAX, "18446744074G"),
        ];
        for (n, want) in cases {
            assert_eq!(fmt_count(n), want, "{n}");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(fmt_pct(1, 0), "-");
        assert_eq!(fmt_pct(0, 10), "0%");
        assert_eq!(fmt_pct(1, 10_000), "<0.1%");
        assert_eq!(fmt_pct(45, 1_000), "4.5%");
        assert_eq!(fmt_pct(640, 1_000), "64%");
        assert_eq!(fmt_pct(10, 10), "100%");
        assert_eq!(fmt_pct(u64::MAX, 1), "1844674407370955161600%");
    }
}

//! What a waker's thread did while its waiters waited ("held across"), in words: the
//! text report's "woken by" and "held across blocking" sections and `lockprof top`'s
//! site detail say it the same way.

use crate::render::units::{fmt_duration_ns, fmt_pct, plural};
use crate::report::model::HeldAcross;

/// What a waker did while its waiters waited: `holder: 2.49s held, off CPU 97% of
/// it (clock_nanosleep 96%, runnable 1%)` and, if any, `holder: 1204 syscalls
/// failed, last sendmsg → ENOBUFS`. Empty when there is too little to say (under
/// 1 ms held and no failures).
pub fn held_lines(h: &HeldAcross) -> Vec<String> {
    let mut lines = Vec::new();
    if h.window_ns >= 1_000_000 {
        // A truncated window lost off-CPU periods: the share is a lower bound.
        let at_least = h.truncated_windows > 0 && h.off_cpu_ns * 100 < h.window_ns * 99;
        let mut line = format!(
            "holder: {} held, off CPU {}{} of it",
            fmt_duration_ns(h.window_ns),
            if at_least { "≥ " } else { "" },
            fmt_pct(h.off_cpu_ns, h.window_ns),
        );
        let places: Vec<String> = h
            .off_cpu_in
            .iter()
            .filter(|o| o.ns * 100 >= h.window_ns)
            .take(3)
            .map(|o| {
                let name = o.syscall.split(" (").next().unwrap_or(&o.syscall);
                format!("{name} {}", fmt_pct(o.ns, h.window_ns))
            })
            .collect();
        if !places.is_empty() {
            line = format!("{line} ({})", places.join(", "));
        }
        lines.push(line);
    }
    if h.failed_syscalls > 0 {
        let mut line = format!(
            "holder: {} failed",
            plural(h.failed_syscalls, "syscall", "syscalls")
        );
        if let Some(f) = &h.last_failure {
            line = format!("{line}, last {} → {}", f.syscall, f.errno);
        }
        lines.push(line);
    }
    lines
}

/// Off-CPU time of a holder spent blocked, i.e. not merely waiting for a CPU.
pub fn blocked_ns(h: &HeldAcross) -> u64 {
    let runnable: u64 = h
        .off_cpu_in
        .iter()
        .filter(|o| o.syscall.starts_with("runnable"))
        .map(|o| o.ns)
        .sum();
    h.off_cpu_ns.saturating_sub(runnable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::held;

    #[test]
    fn holder_lines_name_where_the_holder_was_and_what_failed() {
        let h = held(
            &[
                ("clock_nanosleep", 900),
                ("runnable (waiting for a CPU)", 50),
            ],
            1_000_000_000,
            0,
        );
        assert_eq!(
            held_lines(&h),
            ["holder: 1.00s held, off CPU <0.1% of it"],
            "shares under 1% are not listed"
        );
        let h = held(
            &[
                ("clock_nanosleep", 900_000_000),
                ("runnable (waiting for a CPU)", 50_000_000),
            ],
            1_000_000_000,
            1_204,
        );
        assert_eq!(
            held_lines(&h),
            [
                "holder: 1.00s held, off CPU 95% of it (clock_nanosleep 90%, runnable 5.0%)",
                "holder: 1204 syscalls failed, last sendmsg → ENOBUFS",
            ]
        );
        assert!(
            held_lines(&held(&[], 999_999, 0)).is_empty(),
            "under 1 ms: nothing to say"
        );
    }
}

//! The capacities the probes' maps are loaded with: the constants of
//! `profiler-common`, unless the test-only environment variable
//! `LOCKPROF_TEST_MAX_ENTRIES` (`NAME=N[,NAME=N…]`, e.g. `WAITS=4,EDGES=1`) shrinks
//! some, so root tests can fill maps on purpose and check that what does not fit is
//! counted as lost, never silently dropped or counted twice.
//!
//! Owns: that one knob. Must not: be documented for users — it exists for tests
//! (`profiler/tests/probe.rs`); a malformed value is ignored with a warning-free
//! fallback to the defaults because no user sets it.

use profiler_common::{MAP_TASKS, MAX_TASKS};

/// The test-only knob's name.
pub const TEST_MAX_ENTRIES_ENV: &str = "LOCKPROF_TEST_MAX_ENTRIES";

/// `(map name, capacity)` overrides from the environment.
pub fn overrides() -> Vec<(String, u32)> {
    std::env::var(TEST_MAX_ENTRIES_ENV)
        .map(|v| parse(&v))
        .unwrap_or_default()
}

/// The slots `TASKS` is loaded with: [`MAX_TASKS`], or the override if it is a
/// smaller power of two (the probe finds a thread's slot with a mask).
pub fn task_slots(overrides: &[(String, u32)]) -> u32 {
    overrides
        .iter()
        .find(|(name, _)| name == MAP_TASKS)
        .map(|&(_, n)| n)
        .filter(|n| n.is_power_of_two() && *n <= MAX_TASKS)
        .unwrap_or(MAX_TASKS)
}

fn parse(v: &str) -> Vec<(String, u32)> {
    v.split(',')
        .filter_map(|pair| {
            let (name, n) = pair.split_once('=')?;
            let n: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
            Some((name.trim().to_owned(), n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_pairs_and_skips_malformed_ones() {
        assert_eq!(
            parse("WAITS=4, EDGES=1,bad,ZERO=0,X=y"),
            vec![("WAITS".to_owned(), 4), ("EDGES".to_owned(), 1)]
        );
        assert!(parse("").is_empty());
    }

    #[test]
    fn task_slots_take_only_a_smaller_power_of_two() {
        let o = |v: &str| task_slots(&parse(v));
        assert_eq!(o(""), MAX_TASKS);
        assert_eq!(o("TASKS=4"), 4);
        assert_eq!(
            o("TASKS=6"),
            MAX_TASKS,
            "not a power of two: the probe masks"
        );
        assert_eq!(o("TASKS=65536"), MAX_TASKS);
        assert_eq!(o("WAITS=4"), MAX_TASKS);
    }
}

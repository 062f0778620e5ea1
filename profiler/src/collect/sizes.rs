//! The capacities the probes' maps are loaded with: the constants of
//! `profiler-common`, unless the test-only environment variable
//! `LOCKPROF_TEST_MAX_ENTRIES` (`NAME=N[,NAME=N…]`, e.g. `WAITS=4,EDGES=1`) shrinks
//! some, so root tests can fill maps on purpose and check that what does not fit is
//! counted as lost, never silently dropped or counted twice.
//!
//! Owns: that one knob. Must not: be documented for users — it exists for tests
//! (`profiler/tests/probe.rs`); a malformed value is ignored with a warning-free
//! fallback to the defaults because no user sets it.

/// The test-only knob's name.
pub const TEST_MAX_ENTRIES_ENV: &str = "LOCKPROF_TEST_MAX_ENTRIES";

/// `(map name, capacity)` overrides from the environment.
pub fn overrides() -> Vec<(String, u32)> {
    std::env::var(TEST_MAX_ENTRIES_ENV)
        .map(|v| parse(&v))
        .unwrap_or_default()
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
}

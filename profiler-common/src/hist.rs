//! The wait-time histogram's log2 buckets, computed the same way in the kernel and
//! in userspace.

/// Number of log2 buckets in a wait-time histogram. Bucket `b` counts waits of
/// `[2^b, 2^(b+1))` ns (bucket 0 also takes 0 ns); the last bucket is open-ended
/// (2^39 ns ≈ 9 minutes).
pub const HIST_BUCKETS: usize = 40;

/// Log2 bucket of a duration in ns, clamped to the last bucket.
#[allow(
    clippy::inline_always,
    reason = "runs in the eBPF hot path, where a call costs more than the body"
)]
#[inline(always)]
#[must_use]
pub fn hist_bucket(ns: u64) -> usize {
    // Branch-light integer log2: the verifier accepts it (no loops) and it costs a
    // handful of instructions on the hot path.
    let mut v = ns;
    let mut r = 0usize;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    if r >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hist_bucket_is_floor_log2_clamped() {
        assert_eq!(hist_bucket(0), 0);
        assert_eq!(hist_bucket(1), 0);
        assert_eq!(hist_bucket(2), 1);
        assert_eq!(hist_bucket(3), 1);
        assert_eq!(hist_bucket(1024), 10);
        assert_eq!(hist_bucket(1_000_000), 19);
        assert_eq!(hist_bucket((1 << 39) - 1), 38);
        assert_eq!(hist_bucket(1 << 39), 39);
        assert_eq!(hist_bucket(u64::MAX), HIST_BUCKETS - 1);
    }
}

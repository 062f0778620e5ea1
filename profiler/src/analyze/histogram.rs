//! Log2 wait-time histograms and the percentiles estimated from them.
//!
//! Owns: merging the kernel's per-key histograms and turning buckets into p50/p99.
//! Must not: know where the counts came from. Pure arithmetic, tested exhaustively.

use profiler_common::HIST_BUCKETS;
use serde::{Deserialize, Serialize};

/// `counts[b]` waits took `[2^b, 2^(b+1))` ns (bucket 0 also holds 0 ns; the last
/// bucket is open-ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Log2Histogram {
    pub counts: Vec<u64>,
}

impl Default for Log2Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; HIST_BUCKETS],
        }
    }
}

impl Log2Histogram {
    pub fn from_buckets(buckets: &[u64]) -> Self {
        let mut h = Self::default();
        h.add_buckets(buckets);
        h
    }

    /// Add counts bucket-wise. Extra buckets beyond [`HIST_BUCKETS`] (only a
    /// hand-made report can have them) fold into the last, open-ended bucket.
    pub fn add_buckets(&mut self, buckets: &[u64]) {
        self.counts.resize(HIST_BUCKETS, 0);
        for (b, &n) in buckets.iter().enumerate() {
            let slot = &mut self.counts[b.min(HIST_BUCKETS - 1)];
            *slot = slot.saturating_add(n);
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.add_buckets(&other.counts);
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// The `q`-quantile (0 < q ≤ 1) in ns, interpolated linearly inside its bucket
    /// and clamped to the observed `[min_ns, max_ns]`, which are exact. Returns 0 for
    /// an empty histogram.
    pub fn quantile(&self, q: f64, min_ns: u64, max_ns: u64) -> u64 {
        let n = self.total();
        if n == 0 {
            return 0;
        }
        // Rank of the wanted sample, 1-based (nearest-rank definition).
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (b, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if seen.saturating_add(count) >= rank {
                let (lo, hi) = bucket_bounds(b);
                // Position of the rank inside the bucket, as a fraction in (0, 1].
                let frac = (rank - seen) as f64 / count as f64;
                let est = lo as f64 + (hi - lo) as f64 * frac;
                return (est as u64).clamp(min_ns, max_ns.max(min_ns));
            }
            seen += count;
        }
        max_ns
    }
}

/// `[lo, hi)` of bucket `b` in ns.
fn bucket_bounds(b: usize) -> (u64, u64) {
    let b = b.min(62);
    let lo = if b == 0 { 0 } else { 1u64 << b };
    (lo, 1u64 << (b + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiler_common::hist_bucket;

    fn hist_of(samples: &[u64]) -> Log2Histogram {
        let mut h = Log2Histogram::default();
        for &s in samples {
            h.counts[hist_bucket(s)] += 1;
        }
        h
    }

    #[test]
    fn empty_histogram_has_zero_quantiles() {
        assert_eq!(Log2Histogram::default().quantile(0.99, 0, 0), 0);
    }

    #[test]
    fn single_sample_quantiles_are_exact_through_clamping() {
        let h = hist_of(&[1_500]);
        assert_eq!(h.quantile(0.5, 1_500, 1_500), 1_500);
        assert_eq!(h.quantile(0.99, 1_500, 1_500), 1_500);
    }

    #[test]
    fn quantile_lands_in_the_right_bucket() {
        // 99 waits of ~1 µs and one of ~1 s: p50 is in the µs bucket, p99 too (rank
        // 99 of 100), and p100 is the max.
        let mut samples = vec![1_000u64; 99];
        samples.push(1_000_000_000);
        let h = hist_of(&samples);
        let p50 = h.quantile(0.5, 1_000, 1_000_000_000);
        assert!((512..2048).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99, 1_000, 1_000_000_000);
        assert!((512..2048).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0, 1_000, 1_000_000_000), 1_000_000_000);
    }

    #[test]
    fn quantiles_are_monotonic_and_bounded_by_factor_two() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 997).collect();
        let h = hist_of(&samples);
        let mut prev = 0;
        for q in [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0] {
            let est = h.quantile(q, 997, 997_000);
            assert!(est >= prev, "q {q} went down");
            prev = est;
            // The true quantile and the estimate share a log2 bucket: within 2x.
            let truth = samples[((q * 1000.0) as usize).clamp(1, 1000) - 1];
            assert!(
                est <= truth * 2 && truth <= est * 2,
                "q {q}: {est} vs {truth}"
            );
        }
    }

    #[test]
    fn oversized_hand_made_histograms_do_not_panic() {
        let h = Log2Histogram::from_buckets(&[1; 100]);
        assert_eq!(h.counts.len(), HIST_BUCKETS);
        assert_eq!(h.total(), 100);
        assert!(h.quantile(0.99, 0, u64::MAX) > 0);
        let huge = Log2Histogram::from_buckets(&[u64::MAX, u64::MAX]);
        assert_eq!(huge.total(), u64::MAX);
    }

    #[test]
    fn merge_adds_bucketwise() {
        let mut a = hist_of(&[1, 100, 10_000]);
        let b = hist_of(&[100, 1_000_000]);
        a.merge(&b);
        assert_eq!(a.total(), 5);
        assert_eq!(a.counts[hist_bucket(100)], 2);
    }
}

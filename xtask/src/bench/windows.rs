//! The alternating-window method every "attached vs not" figure of `bench overhead`
//! uses: the order of windows, the ratio of each attached window to its unattached
//! neighbours, and how sure the median of those ratios is.
//!
//! Owns: [`schedule`] (an unattached window before, between and after the attached
//! ones; the attached tracers rotate which goes first in each round), [`Rounds`] (one
//! value per window, and the per-window ratios) and [`Spread`] (median, min..max and a
//! bootstrap 95 % interval of the median). Must not: measure anything or know what a
//! window's value means (throughput, seconds, CPU per operation are all just values).

use serde_json::{Value, json};

use super::Stats;
use super::attach::Tracer;

/// The windows of a run, in order: `None, t1, None, t2, None, …` for each round, the
/// `attached` tracers rotating which goes first. Each attached window is compared with
/// the mean of its two unattached neighbours, so a drift of the shared machine (other
/// work starting or stopping) shows up on both sides of it instead of on one.
pub fn schedule(rounds: u64, attached: &[Tracer]) -> Vec<Tracer> {
    let mut v = vec![Tracer::None];
    let k = attached.len();
    for r in 0..rounds as usize {
        for i in 0..k {
            v.extend([attached[(r + i) % k], Tracer::None]);
        }
    }
    v
}

/// One value per window, in the order of [`schedule`].
#[derive(Default, Debug, Clone)]
pub struct Rounds {
    windows: Vec<(Tracer, f64)>,
}

impl Rounds {
    pub fn push(&mut self, t: Tracer, v: f64) {
        self.windows.push((t, v));
    }

    /// The values of the windows in state `t`.
    pub fn values(&self, t: Tracer) -> Vec<f64> {
        self.windows
            .iter()
            .filter(|(s, _)| *s == t)
            .map(|(_, v)| *v)
            .collect()
    }

    /// Each window in state `t` over the mean of the unattached windows next to it.
    pub fn ratios(&self, t: Tracer) -> Vec<f64> {
        self.ratios_where(t, |_, _| true)
    }

    /// As [`Rounds::ratios`], only for the windows whose two unattached neighbours
    /// agree within `tolerance` (a fraction of their mean). memcached under the
    /// bench's load switches by itself between two regimes — on this VM ≈ 750k
    /// operations per second with ≈ 0.15 futex calls per operation, and ≈ 1,000k with
    /// ≈ 0.04 — every few tens of seconds: a window next to a switch measures the
    /// switch, not the tracer.
    pub fn steady_ratios(&self, t: Tracer, tolerance: f64) -> Vec<f64> {
        self.ratios_where(t, |before, after| {
            (before - after).abs() <= tolerance * f64::midpoint(before, after)
        })
    }

    /// As [`Rounds::ratios`], each paired with `by`'s value for the same window (`by`:
    /// another figure of the same run, one value per window, e.g. the window's futex
    /// calls per operation).
    pub fn ratios_by(&self, t: Tracer, by: &Rounds) -> Vec<(f64, f64)> {
        let w = &self.windows;
        (1..w.len().saturating_sub(1))
            .filter(|&i| w[i].0 == t && w[i - 1].0 == Tracer::None && w[i + 1].0 == Tracer::None)
            .filter_map(|i| {
                let ratio = w[i].1 / f64::midpoint(w[i - 1].1, w[i + 1].1);
                Some((ratio, by.windows.get(i)?.1))
            })
            .collect()
    }

    fn ratios_where(&self, t: Tracer, neighbours: impl Fn(f64, f64) -> bool) -> Vec<f64> {
        self.windows
            .windows(3)
            .filter(|w| w[1].0 == t && w[0].0 == Tracer::None && w[2].0 == Tracer::None)
            .filter(|w| neighbours(w[0].1, w[2].1))
            .map(|w| w[1].1 / f64::midpoint(w[0].1, w[2].1))
            .collect()
    }

    pub fn to_json(&self, attached: &[Tracer]) -> Value {
        let mut v = json!({
            "not_attached": self.values(Tracer::None),
            "order": self.windows.iter().map(|(t, _)| t.name()).collect::<Vec<_>>(),
        });
        for &t in attached {
            v[t.key()] = json!(self.values(t));
            v[format!("ratio_{}", t.key())] = Spread::of(&self.ratios(t)).to_json();
        }
        v
    }
}

/// A sample of ratios: median, min..max, and a 95 % bootstrap interval of the median
/// (how far the median could move were the run repeated on a machine as noisy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub stats: Stats,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n: usize,
}

/// Resamples of the bootstrap (deterministic: a fixed seed, so a table can be
/// recomputed from its JSON).
const RESAMPLES: usize = 2000;

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let stats = Stats::of(&v);
        if v.len() < 2 {
            return Spread {
                stats,
                ci_low: stats.median,
                ci_high: stats.median,
                n: v.len(),
            };
        }
        let mut rng = SplitMix(0x6c6f_636b_7072_6f66);
        let mut medians: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                let sample: Vec<f64> = (0..v.len())
                    .map(|_| v[(rng.next() % v.len() as u64) as usize])
                    .collect();
                Stats::of(&sample).median
            })
            .collect();
        medians.sort_by(f64::total_cmp);
        Spread {
            stats,
            ci_low: medians[RESAMPLES * 25 / 1000],
            ci_high: medians[RESAMPLES * 975 / 1000 - 1],
            n: v.len(),
        }
    }

    /// Whether the two medians' 95 % intervals are disjoint: only then does a run
    /// tell which is larger (overlapping, the order of the medians is the run's noise).
    pub fn apart_from(&self, other: &Spread) -> bool {
        self.ci_low > other.ci_high || other.ci_low > self.ci_high
    }

    /// `median (min..max) [95% lo..hi]`.
    pub fn cell(&self) -> String {
        format!(
            "{:.3} ({:.3}..{:.3}) [{:.3}..{:.3}]",
            self.stats.median, self.stats.min, self.stats.max, self.ci_low, self.ci_high
        )
    }

    pub fn to_json(self) -> Value {
        json!({ "median": self.stats.median, "min": self.stats.min, "max": self.stats.max,
                "ci95_median": [self.ci_low, self.ci_high], "n": self.n })
    }
}

/// splitmix64: a small, good-enough generator for resampling indices.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Tracer::{Bpftrace as B, Lockprof as L, LockprofNoHolders as H, None as N};

    #[test]
    fn attached_windows_alternate_between_unattached_ones_and_rotate() {
        assert_eq!(schedule(2, &[L, B]), vec![N, L, N, B, N, B, N, L, N]);
        assert_eq!(
            schedule(3, &[L, H, B]),
            vec![N, L, N, H, N, B, N, H, N, B, N, L, N, B, N, L, N, H, N]
        );
        assert_eq!(schedule(1, &[L, B]).len(), 5);
    }

    #[test]
    fn ratios_compare_each_window_with_its_unattached_neighbours() {
        let mut r = Rounds::default();
        for (t, v) in schedule(2, &[L, B])
            .into_iter()
            .zip([100.0, 45.0, 80.0, 60.0, 120.0, 100.0, 80.0, 50.0, 20.0])
        {
            r.push(t, v);
        }
        assert_eq!(r.ratios(L), vec![0.5, 1.0]);
        assert_eq!(r.ratios(B), vec![0.6, 1.0]);
        assert_eq!(r.values(N), vec![100.0, 80.0, 120.0, 80.0, 20.0]);
    }

    #[test]
    fn steady_ratios_skip_windows_beside_a_regime_switch() {
        let mut r = Rounds::default();
        // Neighbours 100 and 104 agree within 5 %, and 78 and 82; 104 and 80 do not
        // (a switch).
        for (t, v) in schedule(2, &[L, B])
            .into_iter()
            .zip([100.0, 51.0, 104.0, 92.0, 80.0, 79.0, 78.0, 70.0, 82.0])
        {
            r.push(t, v);
        }
        assert_eq!(r.ratios(L).len(), 2);
        assert_eq!(r.steady_ratios(L, 0.05), vec![0.5, 0.875]);
        assert_eq!(r.steady_ratios(B, 0.05), vec![1.0]);
        assert_eq!(r.steady_ratios(B, 1.0), r.ratios(B));
    }

    #[test]
    fn ratios_by_pair_each_window_with_the_other_figure_of_the_same_window() {
        let (mut r, mut by) = (Rounds::default(), Rounds::default());
        for (i, (t, v)) in schedule(1, &[L, B])
            .into_iter()
            .zip([100.0, 50.0, 100.0, 90.0, 80.0])
            .enumerate()
        {
            r.push(t, v);
            by.push(t, i as f64);
        }
        assert_eq!(r.ratios_by(L, &by), vec![(0.5, 1.0)]);
        assert_eq!(r.ratios_by(B, &by), vec![(1.0, 3.0)]);
    }

    #[test]
    fn spreads_are_apart_only_when_their_intervals_are_disjoint() {
        let at = |lo: f64, hi: f64| Spread {
            stats: Stats::of(&[f64::midpoint(lo, hi)]),
            ci_low: lo,
            ci_high: hi,
            n: 8,
        };
        assert!(at(1.00, 1.02).apart_from(&at(1.03, 1.05)));
        assert!(at(1.03, 1.05).apart_from(&at(1.00, 1.02)));
        assert!(!at(1.00, 1.04).apart_from(&at(1.03, 1.05)));
        assert!(!at(1.00, 1.06).apart_from(&at(1.02, 1.03)));
    }

    #[test]
    fn bootstrap_interval_holds_the_median_and_narrows_with_more_windows() {
        let few: Vec<f64> = (0..6).map(|i| 0.9 + 0.04 * f64::from(i)).collect();
        let many: Vec<f64> = (0..60).map(|i| 0.9 + 0.04 * f64::from(i % 6)).collect();
        let (a, b) = (Spread::of(&few), Spread::of(&many));
        for s in [a, b] {
            assert!(
                s.ci_low <= s.stats.median && s.stats.median <= s.ci_high,
                "{s:?}"
            );
            assert!(s.ci_low >= s.stats.min && s.ci_high <= s.stats.max, "{s:?}");
        }
        assert!(b.ci_high - b.ci_low < a.ci_high - a.ci_low, "{a:?} {b:?}");
        assert_eq!(Spread::of(&few), Spread::of(&few), "deterministic");
        let one = Spread::of(&[1.02]);
        assert_eq!((one.ci_low, one.ci_high, one.n), (1.02, 1.02, 1));
        assert!(Spread::of(&[]).stats.median.is_nan());
    }
}

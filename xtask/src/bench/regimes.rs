//! memcached's two regimes in (c): under the bench's load it switches by itself, every
//! few tens of seconds, between ≈ 0.15 futex calls per operation (contended, slower)
//! and ≈ 0.04 (quiet, faster). A tracer's windows that fell in one regime and the
//! peer's that fell in the other compare the regimes, not the tracers: each traced
//! window is classified by its own futex calls per operation, and the figures are
//! split by regime.
//!
//! Owns: the threshold between the regimes and the split. Must not: measure or render.

use serde_json::{Value, json};

use super::Stats;
use super::attach::Tracer;
use super::daemon::{ATTACHED, Daemon};
use super::windows::Spread;

/// The two regimes of a run's traced windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regimes {
    /// Futex calls per operation at or below which a window is quiet: the geometric
    /// mean of the run's smallest and largest.
    pub threshold: f64,
}

/// The regimes are told apart only when the traced windows' futex calls per operation
/// span at least this factor (on this VM the two regimes are ≈ 4× apart).
const MIN_SPAN: f64 = 2.0;

impl Regimes {
    /// The regimes of `d`'s traced windows; `None` when they all fell in one.
    pub fn of(d: &Daemon) -> Option<Regimes> {
        let all: Vec<f64> = ATTACHED
            .iter()
            .flat_map(|&t| d.futex_calls_per_op.values(t))
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = all.iter().copied().reduce(f64::min)?;
        let hi = all.iter().copied().reduce(f64::max)?;
        (hi >= lo * MIN_SPAN).then(|| Regimes {
            threshold: (lo * hi).sqrt(),
        })
    }

    fn quiet(self, futex_calls_per_op: f64) -> bool {
        futex_calls_per_op <= self.threshold
    }

    /// Throughput ratios of `t`'s windows (over their unattached neighbours) in the
    /// quiet (`quiet`) or contended regime.
    pub fn ops_ratios(self, d: &Daemon, t: Tracer, quiet: bool) -> Vec<f64> {
        d.ops_per_s
            .ratios_by(t, &d.futex_calls_per_op)
            .into_iter()
            .filter(|&(_, fc)| self.quiet(fc) == quiet)
            .map(|(r, _)| r)
            .collect()
    }

    /// BPF time of `t`'s probes per operation in its windows of one regime, ns.
    pub fn bpf_ns_per_op(self, d: &Daemon, t: Tracer, quiet: bool) -> Vec<f64> {
        d.bpf_ns_per_op
            .values(t)
            .into_iter()
            .zip(d.futex_calls_per_op.values(t))
            .filter(|&(_, fc)| self.quiet(fc) == quiet)
            .map(|(v, _)| v)
            .collect()
    }

    pub fn to_json(self, d: &Daemon) -> Value {
        let per = |quiet: bool| {
            ATTACHED
                .iter()
                .map(|&t| {
                    (
                        t.key().to_owned(),
                        json!({
                            "ops_ratio": Spread::of(&self.ops_ratios(d, t, quiet)).to_json(),
                            "bpf_ns_per_op": Stats::of(&self.bpf_ns_per_op(d, t, quiet)).to_json(),
                        }),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
        };
        json!({ "futex_calls_per_op_threshold": self.threshold,
                "quiet": per(true), "contended": per(false) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::windows::schedule;

    /// A run of `rounds` with throughput `ops` and futex calls per operation `fc` per
    /// window, in schedule order.
    fn daemon(rounds: u64, ops: &[f64], fc: &[f64], bpf: &[f64]) -> Daemon {
        let mut d = Daemon::default();
        for (i, t) in schedule(rounds, &ATTACHED).into_iter().enumerate() {
            d.ops_per_s.push(t, ops[i]);
            d.futex_calls_per_op.push(t, fc[i]);
            d.bpf_ns_per_op.push(t, bpf[i]);
        }
        d
    }

    #[test]
    fn windows_are_split_at_the_geometric_mean_of_their_futex_calls() {
        // Round 1 quiet (0.04), round 2 contended (0.16): windows
        // N L N H N B N F N | H N B N F N L N (the tracers rotate).
        let ops = [
            1000.0, 970.0, 1000.0, 990.0, 1000.0, 995.0, 1000.0, 998.0, 1000.0, 740.0, 750.0,
            745.0, 750.0, 748.0, 750.0, 720.0, 750.0,
        ];
        let fc = [
            0.0, 0.04, 0.0, 0.04, 0.0, 0.04, 0.0, 0.04, 0.0, 0.16, 0.0, 0.16, 0.0, 0.16, 0.0, 0.16,
            0.0,
        ];
        let bpf = [
            0.0, 40.0, 0.0, 30.0, 0.0, 20.0, 0.0, 5.0, 0.0, 80.0, 0.0, 70.0, 0.0, 10.0, 0.0, 100.0,
            0.0,
        ];
        let d = daemon(2, &ops, &fc, &bpf);
        let r = Regimes::of(&d).expect("two regimes");
        assert!((r.threshold - 0.08).abs() < 1e-9);
        assert_eq!(r.ops_ratios(&d, Tracer::Lockprof, true), vec![0.97]);
        assert_eq!(r.ops_ratios(&d, Tracer::Lockprof, false), vec![0.96]);
        assert_eq!(r.ops_ratios(&d, Tracer::Bpftrace, true), vec![0.995]);
        assert_eq!(r.bpf_ns_per_op(&d, Tracer::Lockprof, false), vec![100.0]);
        assert_eq!(r.bpf_ns_per_op(&d, Tracer::Bpftrace, false), vec![70.0]);
        assert_eq!(r.ops_ratios(&d, Tracer::Floor, true), vec![0.998]);
        assert_eq!(r.bpf_ns_per_op(&d, Tracer::Floor, false), vec![10.0]);
    }

    #[test]
    fn one_regime_is_not_split() {
        let fc = [0.0, 0.04, 0.0, 0.05, 0.0, 0.06, 0.0, 0.05, 0.0];
        let d = daemon(1, &[1.0; 9], &fc, &[0.0; 9]);
        assert_eq!(Regimes::of(&d), None);
    }
}

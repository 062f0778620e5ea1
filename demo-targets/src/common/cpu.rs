//! Calibrated CPU work: a fixed iteration count per millisecond, so duplicated work
//! costs real CPU time under oversubscription.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// CPU burner with a fixed iteration count per millisecond, measured once at start-up
/// on an idle machine. Under oversubscription the same work simply takes longer, which
/// is what makes duplicated work (kmutex's redundant unpacks) cost real CPU time.
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    iters_per_ms: u64,
}

impl Cpu {
    /// Times a fixed probe a few times and keeps the fastest run (the one least
    /// disturbed by preemption). Takes roughly 10–20 ms.
    pub fn calibrate() -> Cpu {
        const PROBE: u64 = 500_000;
        let mut best = Duration::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            black_box(spin(PROBE));
            best = best.min(t.elapsed());
        }
        let ns = best.as_nanos().max(1);
        let iters_per_ms = (u128::from(PROBE) * 1_000_000 / ns).max(1);
        Cpu {
            iters_per_ms: u64::try_from(iters_per_ms).unwrap_or(u64::MAX),
        }
    }

    /// A fixed rate, for tests that must not depend on the machine.
    #[cfg(test)]
    pub fn fixed(iters_per_ms: u64) -> Cpu {
        Cpu { iters_per_ms }
    }

    pub fn iters_per_ms(self) -> u64 {
        self.iters_per_ms
    }

    /// Burns about `ms` milliseconds of CPU (as calibrated).
    pub fn work_ms(self, ms: u64) {
        black_box(spin(self.iters_per_ms.saturating_mul(ms)));
    }

    /// Burns about `ns` nanoseconds of CPU (as calibrated).
    pub fn work_ns(self, ns: u64) {
        let iters = u128::from(self.iters_per_ms) * u128::from(ns) / 1_000_000;
        black_box(spin(u64::try_from(iters).unwrap_or(u64::MAX)));
    }
}

/// A serial dependency chain the optimiser cannot vectorise or fold.
#[inline(never)]
fn spin(iters: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..iters {
        x = (x.rotate_left(7) ^ black_box(i)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_work_scales_with_the_iteration_count() {
        let cpu = Cpu::calibrate();
        assert!(cpu.iters_per_ms() > 1000);
        let t = Instant::now();
        Cpu::fixed(1).work_ms(5);
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "5 iterations are instant"
        );
    }
}

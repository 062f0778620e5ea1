//! Seeded jitter: a tiny deterministic generator per thread, so a run is repeatable
//! for a seed.

/// xorshift64* generator: tiny, deterministic for a seed, good enough for jitter.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Generator for `stream` (a thread index) under `seed`; streams are decorrelated by
    /// a splitmix64 step so thread 0 and thread 1 do not share a sequence.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // xorshift has an all-zero fixed point.
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (Go's `rand.Intn(n)`); 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            // Multiply-shift keeps the high bits, which are the good ones in xorshift*.
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }

    /// `base` scaled uniformly into `[base/2, 3·base/2)`: mean `base`, some jitter.
    pub fn jitter(&mut self, base: u64) -> u64 {
        base / 2 + self.below(base.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_per_seed_and_stream() {
        let draw = |seed, stream| {
            let mut rng = Rng::new(seed, stream);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<u64>>()
        };
        assert_eq!(draw(1, 0), draw(1, 0));
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(1, 0), draw(2, 0));
        assert!(
            draw(0, 0).iter().all(|x| *x != 0),
            "seed 0 is not a fixed point"
        );
    }

    #[test]
    fn rng_below_and_jitter_stay_in_range() {
        let mut r = Rng::new(7, 3);
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let v = r.below(10);
            assert!(v < 10);
            seen[v as usize] = true;
            let j = r.jitter(200);
            assert!((100..300).contains(&j));
        }
        assert!(seen.iter().all(|s| *s), "every bucket is hit");
        assert_eq!(r.below(0), 0);
    }
}

//! Per-node clocks: each node reads only its own clock; the checker sees real time.

use tenure::Instant;

/// One node's monotonic clock: `local = offset + real * (1 + rate_ppm / 10^6)`, in whole
/// microseconds (rounded down, so it never runs backwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Clock {
    /// The local reading at real time zero.
    pub offset: u64,
    /// Rate error against real time, parts per million (above -10^6).
    pub rate_ppm: i64,
}

const MILLION: i128 = 1_000_000;

impl Clock {
    /// A clock reading `offset` at real time zero and running `rate_ppm` fast.
    pub fn new(offset: u64, rate_ppm: i64) -> Self {
        assert!(
            rate_ppm > -500_000 && rate_ppm < 500_000,
            "absurd clock rate"
        );
        Clock { offset, rate_ppm }
    }

    /// The local reading at real time `real` (microseconds).
    pub fn local(&self, real: u64) -> Instant {
        let real = i128::from(real);
        let skew = (real * i128::from(self.rate_ppm)).div_euclid(MILLION);
        let micros = i128::from(self.offset) + real + skew;
        Instant::from_micros(u64::try_from(micros.max(0)).unwrap_or(u64::MAX))
    }

    /// The first real time at which this clock reads `local` or later.
    pub fn real_at(&self, local: Instant) -> u64 {
        let target = i128::from(local.as_micros()) - i128::from(self.offset);
        if target <= 0 {
            return 0;
        }
        let speed = MILLION + i128::from(self.rate_ppm);
        let guess = (target * MILLION + speed - 1) / speed;
        let mut real = u64::try_from(guess.max(0)).unwrap_or(u64::MAX / 2);
        // Rounding can leave the guess a microsecond or two off: settle it exactly.
        for _ in 0..8 {
            if self.local(real) < local {
                real += 1;
            } else if real > 0 && self.local(real - 1) >= local {
                real -= 1;
            } else {
                break;
            }
        }
        real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_at_inverts_local_exactly() {
        for rate in [-100_000i64, -12_345, -1, 0, 1, 9_999, 100_000] {
            let c = Clock::new(1_234_567, rate);
            for real in [0u64, 1, 999, 1_000_000, 987_654_321] {
                let l = c.local(real);
                let r = c.real_at(l);
                assert!(r <= real, "rate {rate}: {r} > {real}");
                assert_eq!(c.local(r), l.max(c.local(r)));
                assert!(c.local(r) >= l);
                assert!(r == 0 || c.local(r - 1) < l);
            }
        }
        assert_eq!(Clock::new(50, 0).real_at(Instant::from_micros(10)), 0);
    }
}

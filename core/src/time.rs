//! Time as the core sees it: a monotonic [`Instant`] and a [`Duration`], both whole
//! microseconds in a `u64`.
//!
//! The core never reads a clock. Every input carries `now`, taken by the driver from a
//! monotonic clock (never a wall clock: a wall clock can jump, and a jump would break the
//! lease). Arithmetic saturates instead of overflowing, so hostile or absurd values can
//! never make the core panic.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use serde::{Deserialize, Serialize};

/// A point on the driver's monotonic clock, in microseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    micros: u64,
}

/// A span of time in microseconds.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    postcard::experimental::max_size::MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration {
    micros: u64,
}

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant { micros: 0 };
    /// The latest representable instant.
    pub const MAX: Instant = Instant { micros: u64::MAX };

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Instant { micros }
    }
    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            micros: millis.saturating_mul(1_000),
        }
    }
    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }
    /// Milliseconds since the origin (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }
    /// `self + d`, or `None` on overflow.
    pub const fn checked_add(self, d: Duration) -> Option<Instant> {
        match self.micros.checked_add(d.micros) {
            Some(micros) => Some(Instant { micros }),
            None => None,
        }
    }
    /// `self - d`, or `None` before the origin.
    pub const fn checked_sub(self, d: Duration) -> Option<Instant> {
        match self.micros.checked_sub(d.micros) {
            Some(micros) => Some(Instant { micros }),
            None => None,
        }
    }
    /// `self + d`, clamped to [`Instant::MAX`].
    #[cfg_attr(target_os = "none", inline(never))]
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(d.micros),
        }
    }
    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[cfg_attr(target_os = "none", inline(never))]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros),
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { micros: 0 };
    /// The longest representable duration.
    pub const MAX: Duration = Duration { micros: u64::MAX };

    /// `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Duration { micros }
    }
    /// `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Duration {
            micros: millis.saturating_mul(1_000),
        }
    }
    /// `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            micros: secs.saturating_mul(1_000_000),
        }
    }
    /// Whole microseconds.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }
    /// Whole milliseconds (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }
    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Duration) -> Option<Duration> {
        match self.micros.checked_add(other.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }
    /// `self - other`, or `None` if negative.
    pub const fn checked_sub(self, other: Duration) -> Option<Duration> {
        match self.micros.checked_sub(other.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }
    /// `self + other`, clamped to [`Duration::MAX`].
    #[cfg_attr(target_os = "none", inline(never))]
    pub const fn saturating_add(self, other: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_add(other.micros),
        }
    }
    /// `self - other`, clamped to zero.
    pub const fn saturating_sub(self, other: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(other.micros),
        }
    }
    /// `self * k`, clamped to [`Duration::MAX`].
    #[cfg_attr(target_os = "none", inline(never))]
    pub const fn saturating_mul(self, k: u64) -> Duration {
        Duration {
            micros: self.micros.saturating_mul(k),
        }
    }
    /// `self * num / den`, rounded down, clamped to [`Duration::MAX`] (`den` of zero gives
    /// zero). Exact whenever `(self mod den) * num` fits in 64 bits, which always holds
    /// for `num` and `den` below 2^32 (every ratio the core uses).
    pub const fn mul_ratio(self, num: u64, den: u64) -> Duration {
        if den == 0 {
            return Duration::ZERO;
        }
        // floor(micros * num / den) = q * num + floor(r * num / den), with u64 only
        // (128-bit division costs hundreds of bytes of flash on a microcontroller).
        let (q, r) = (self.micros / den, self.micros % den);
        let whole = match q.checked_mul(num) {
            Some(v) => v,
            None => u64::MAX,
        };
        let part = match r.checked_mul(num) {
            Some(v) => v / den,
            None => u64::MAX,
        };
        Duration {
            micros: whole.saturating_add(part),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: never panics.
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier `self` gives zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    /// Saturating: never panics.
    fn add(self, other: Duration) -> Duration {
        self.saturating_add(other)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.micros.is_multiple_of(1_000) {
            write!(f, "{}ms", self.micros / 1_000)
        } else {
            write!(f, "{}us", self.micros)
        }
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{}us", self.micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Instant::from_millis(5), Duration::ZERO);
        assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(Duration::MAX.saturating_mul(3), Duration::MAX);
        assert_eq!(
            Duration::from_secs(1).mul_ratio(99, 101).as_micros(),
            980_198
        );
        assert_eq!(Duration::MAX.mul_ratio(3, 1), Duration::MAX);
        assert_eq!(Duration::from_secs(1).mul_ratio(1, 0), Duration::ZERO);
        // Exact against 128-bit arithmetic for ratios below 2^32, saturating above u64.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros = x >> (x % 40);
            let (num, den) = ((x >> 3) as u32 as u64, ((x >> 35) as u32 as u64).max(1));
            let wide = u128::from(micros) * u128::from(num) / u128::from(den);
            let want = u64::try_from(wide).unwrap_or(u64::MAX);
            assert_eq!(
                Duration::from_micros(micros)
                    .mul_ratio(num, den)
                    .as_micros(),
                want,
                "{micros} * {num} / {den}"
            );
        }
    }
}

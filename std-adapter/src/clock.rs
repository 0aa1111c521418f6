//! Time: the [`Clock`] trait the driver reads, the tokio binding of it, and the
//! host's `CLOCK_MONOTONIC` for outside observers.
//!
//! Only monotonic clocks are used: a wall-clock jump (NTP step, manual change) must never
//! shorten or lengthen a lease.

use tenure::Instant;

/// A monotonic clock in the core's time ([`tenure::Instant`], microseconds).
///
/// Readings must never go backwards. The core tolerates a regression (it counts it and
/// keeps the later reading) but leases are only as good as the clock.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The tokio binding: microseconds elapsed since an anchor `tokio::time::Instant`
/// taken when the node started.
///
/// Tokio's `Instant` is the host's monotonic clock (`CLOCK_MONOTONIC` on Linux), so
/// timers armed with [`TokioClock::deadline`] and readings of [`Clock::now`] are on the
/// same time line.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    anchor: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        TokioClock {
            anchor: tokio::time::Instant::now(),
        }
    }

    /// The tokio instant of a core instant (for `sleep_until`). Instants too far in the
    /// future to represent become "in about a year".
    pub fn deadline(&self, at: Instant) -> tokio::time::Instant {
        let far = std::time::Duration::from_secs(365 * 24 * 3600);
        let offset = std::time::Duration::from_micros(at.as_micros()).min(far);
        self.anchor + offset
    }

    /// The core instant of a tokio instant (instants before the anchor become zero).
    pub fn instant(&self, at: tokio::time::Instant) -> Instant {
        let micros = at.saturating_duration_since(self.anchor).as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        self.instant(tokio::time::Instant::now())
    }
}

/// The host's `CLOCK_MONOTONIC` in nanoseconds: the same time line for every process on
/// the host, so outside tools can compare the `/status` views of several nodes.
pub fn host_monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Parses a human duration: a number (decimals allowed) followed by `us`, `ms`, `s`, `m`
/// or `h`, for example `300ms`, `1s`, `1.5s`, `2m`. Returns a message on error.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit (write for example \"300ms\" or \"1s\")"))?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use us, ms, s, m or h)"
            ))
        }
    };
    let secs = value * scale;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Converts a std duration to the core's, rounding to whole microseconds.
pub fn to_core(d: std::time::Duration) -> tenure::Duration {
    tenure::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Formats a duration the way [`parse_duration`] reads it (`1s`, `300ms`, `250us`).
pub fn format_duration(d: std::time::Duration) -> String {
    let micros = d.as_micros();
    if micros % 1_000_000 == 0 {
        format!("{}s", micros / 1_000_000)
    } else if micros % 1_000 == 0 {
        format!("{}ms", micros / 1_000)
    } else {
        format!("{micros}us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(" 250us "), Ok(Duration::from_micros(250)));
        assert!(parse_duration("300").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1500us");
    }

    #[test]
    fn tokio_clock_round_trips() {
        let clock = TokioClock::start();
        let t = Instant::from_micros(1_234_567);
        assert_eq!(clock.instant(clock.deadline(t)), t);
        assert!(clock.deadline(Instant::MAX) > clock.deadline(t));
        assert!(host_monotonic_ns() > 0);
    }
}

//! Time: the [`Clock`] trait the driver reads, the tokio binding of it, and the host's
//! clocks for outside observers.
//!
//! Only clocks that never jump are used: a wall-clock step (NTP, a manual change) must
//! never shorten or lengthen a lease. Leases are measured on `CLOCK_BOOTTIME`, not
//! `CLOCK_MONOTONIC`: the latter stops while the host is suspended, so a master resumed
//! after a suspend would believe in a term that ended long ago (the others counted the
//! whole suspend). `CLOCK_BOOTTIME` counts the suspend; the first reading after resume
//! shows that the term is over.

use tenure::Instant;

/// A monotonic clock in the core's time ([`tenure::Instant`], microseconds).
///
/// Readings must never go backwards, and must count time the host spent suspended. The
/// core survives a regression (it counts it and ends its own term) but leases are only as
/// good as the clock.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;

    /// The host's `CLOCK_BOOTTIME` reading, in nanoseconds, of instant `at` of this clock,
    /// when the clock is tied to it (for logs and `/status` that outside observers
    /// compare across processes); `None` otherwise.
    fn boottime_ns(&self, at: Instant) -> Option<u64> {
        let _ = at;
        None
    }
}

/// The tokio binding: microseconds of the host's `CLOCK_BOOTTIME` elapsed since the node
/// started.
///
/// Tokio's timers run on `CLOCK_MONOTONIC`, which stops during a suspend. The conversions
/// [`TokioClock::deadline`] and [`TokioClock::instant`] therefore go through the current
/// offset between both clocks, read at the call: a deadline computed after a resume is
/// right; a timer armed before a suspend fires late after it, by at most the time it
/// still had to run (the driver re-arms after every input; [`crate::Handle::run_while_master`]
/// re-checks the clock at least every [`crate::node::SUSPEND_CHECK`]).
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    /// `CLOCK_BOOTTIME` at the core's instant zero, in nanoseconds.
    anchor_ns: u64,
}

impl TokioClock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        TokioClock {
            anchor_ns: host_boottime_ns(),
        }
    }

    /// A clock whose zero was `ns` on `CLOCK_BOOTTIME` (see [`host_boottime_ns`]); an
    /// anchor in the past reads like a clock that lived through a suspend.
    pub fn anchored_at(ns: u64) -> Self {
        TokioClock { anchor_ns: ns }
    }

    /// The tokio instant and the core instant of one moment.
    fn pair(&self) -> (tokio::time::Instant, Instant) {
        let before = tokio::time::Instant::now();
        let core = self.now();
        let after = tokio::time::Instant::now();
        (before + (after - before) / 2, core)
    }

    /// The tokio instant of a core instant (for `sleep_until`): now on tokio's clock plus
    /// what remains until `at` on this one (an instant already past is now). Instants too
    /// far in the future to represent become "in about a year".
    pub fn deadline(&self, at: Instant) -> tokio::time::Instant {
        let far = std::time::Duration::from_secs(365 * 24 * 3600);
        let (tokio_now, now) = self.pair();
        let ahead = std::time::Duration::from_micros(at.saturating_duration_since(now).as_micros());
        tokio_now + ahead.min(far)
    }

    /// The core instant of a tokio instant (instants before the clock's zero become zero).
    pub fn instant(&self, at: tokio::time::Instant) -> Instant {
        let (tokio_now, now) = self.pair();
        let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if at >= tokio_now {
            Instant::from_micros(now.as_micros().saturating_add(micros(at - tokio_now)))
        } else {
            Instant::from_micros(now.as_micros().saturating_sub(micros(tokio_now - at)))
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        let ns = host_boottime_ns().saturating_sub(self.anchor_ns);
        Instant::from_micros(ns / 1000)
    }

    /// `at` on the host's `CLOCK_BOOTTIME`: the clock's zero plus `at`. A reading of
    /// [`TokioClock::now`] at a host instant `h` converts to at most `h` (readings round
    /// down to whole microseconds).
    fn boottime_ns(&self, at: Instant) -> Option<u64> {
        Some(
            self.anchor_ns
                .saturating_add(at.as_micros().saturating_mul(1000)),
        )
    }
}

fn nanos(ts: rustix::time::Timespec) -> u64 {
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The host's `CLOCK_BOOTTIME` in nanoseconds: monotonic, and counting the time the host
/// was suspended. What [`TokioClock`] reads.
pub fn host_boottime_ns() -> u64 {
    nanos(rustix::time::clock_gettime(rustix::time::ClockId::Boottime))
}

/// The host's `CLOCK_MONOTONIC` in nanoseconds: the same time line for every process on
/// the host (it stops during a suspend), so outside tools can compare the `/status`
/// views of several nodes.
pub fn host_monotonic_ns() -> u64 {
    nanos(rustix::time::clock_gettime(
        rustix::time::ClockId::Monotonic,
    ))
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

/// Converts a core duration to std's.
pub fn from_core(d: tenure::Duration) -> std::time::Duration {
    std::time::Duration::from_micros(d.as_micros())
}

/// Formats a duration the way [`parse_duration`] reads it (`1s`, `300ms`, `250us`).
pub fn format_duration(d: std::time::Duration) -> String {
    let micros = d.as_micros();
    if micros.is_multiple_of(1_000_000) {
        format!("{}s", micros / 1_000_000)
    } else if micros.is_multiple_of(1_000) {
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
        let t = clock.now() + tenure::Duration::from_secs(2);
        let back = clock.instant(clock.deadline(t));
        // Two conversions, each reading both clocks: equal up to the reading jitter.
        let diff = back.as_micros().abs_diff(t.as_micros());
        assert!(diff <= 1_000, "{back:?} vs {t:?}");
        assert!(clock.deadline(Instant::MAX) > clock.deadline(t));
        assert!(host_monotonic_ns() > 0);
    }

    #[test]
    fn the_tokio_clock_reads_boottime() {
        let anchor = host_boottime_ns();
        let clock = TokioClock::anchored_at(anchor);
        let before = host_boottime_ns();
        let now = clock.now();
        let after = host_boottime_ns();
        assert!((before - anchor) / 1000 <= now.as_micros());
        assert!(now.as_micros() <= (after - anchor) / 1000);
        // Back on the host's clock: within the readings around it.
        let host = clock.boottime_ns(now).unwrap();
        assert!(
            before - 1000 < host && host <= after,
            "{before} {host} {after}"
        );
        // BOOTTIME counts suspends, MONOTONIC does not: never behind it.
        let mono = host_monotonic_ns();
        assert!(host_boottime_ns() >= mono);
    }

    #[test]
    fn a_term_read_after_a_suspend_is_over() {
        // A clock that lived through a 10 s suspend: BOOTTIME ran on, MONOTONIC (tokio's
        // timers) did not. Reads and deadlines follow BOOTTIME.
        let suspend = 10_000_000_000;
        let clock = TokioClock::anchored_at(host_boottime_ns() - suspend);
        let term_end = Instant::from_millis(5_000);
        assert!(clock.now() >= Instant::from_millis(10_000));
        assert!(clock.now() > term_end, "the term must read as over");
        assert!(clock.deadline(term_end) <= tokio::time::Instant::now());
    }
}

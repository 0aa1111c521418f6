//! The node's timers: a small table keyed by purpose.
//!
//! After every input the node writes, for each purpose, when it next needs
//! [`Node::handle_timeout`](crate::Node::handle_timeout);
//! [`Node::poll_timeout`](crate::Node::poll_timeout) is the earliest entry. A driver
//! needs only that one instant; the table is public so that tests, simulators and
//! operators can see why a node will wake up.

use crate::time::Instant;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Timer {
    /// The current Paxos phase (Prepare or Accept) times out.
    Round,
    /// The random pause after a failed phase ends: the next attempt begins.
    Backoff,
    /// This node campaigns if still no master is live.
    Campaign,
    /// The master renews its term.
    Renewal,
    /// The lease of the master in this node's view ends (for the master itself: its
    /// term ends).
    Expiry,
}

impl Timer {
    /// Every purpose, in table order.
    pub const ALL: [Timer; 5] = [
        Timer::Round,
        Timer::Backoff,
        Timer::Campaign,
        Timer::Renewal,
        Timer::Expiry,
    ];

    const fn index(self) -> usize {
        match self {
            Timer::Round => 0,
            Timer::Backoff => 1,
            Timer::Campaign => 2,
            Timer::Renewal => 3,
            Timer::Expiry => 4,
        }
    }
}

/// When each [`Timer`] fires next (`None`: not armed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timers {
    at: [Option<Instant>; 5],
}

impl Timers {
    /// When `timer` fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// Arms (`Some`) or disarms (`None`) `timer`.
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer.index()] = at;
    }

    /// The earliest armed timer (the first in table order among equals).
    pub fn earliest(&self) -> Option<(Timer, Instant)> {
        let mut best: Option<(Timer, Instant)> = None;
        for t in Timer::ALL {
            if let Some(at) = self.at[t.index()] {
                // Strictly earlier only: ties go to table order.
                if best.is_none_or(|(_, b)| at < b) {
                    best = Some((t, at));
                }
            }
        }
        best
    }

    /// Whether `timer` is armed and due at `now`.
    pub fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_is_the_minimum_and_ties_go_to_table_order() {
        let mut t = Timers::default();
        assert_eq!(t.earliest(), None);
        t.set(Timer::Expiry, Some(Instant::from_millis(5)));
        t.set(Timer::Campaign, Some(Instant::from_millis(7)));
        assert_eq!(t.earliest(), Some((Timer::Expiry, Instant::from_millis(5))));
        t.set(Timer::Round, Some(Instant::from_millis(5)));
        assert_eq!(t.earliest(), Some((Timer::Round, Instant::from_millis(5))));
        assert!(t.is_due(Timer::Campaign, Instant::from_millis(7)));
        assert!(!t.is_due(Timer::Campaign, Instant::from_millis(6)));
        assert!(!t.is_due(Timer::Renewal, Instant::from_millis(100)));
    }
}

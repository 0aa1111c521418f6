//! The acceptor: the part of Paxos whose state must survive a crash.
//!
//! One acceptor state serves every instance: the promised ballot carries over from one
//! instance to the next (only the accepted proposal resets), which is what lets a stable
//! proposer skip the Prepare phase.

use serde::{Deserialize, Serialize};

use crate::ballot::Ballot;
use crate::election::Op;
use crate::time::{Duration, Instant};

/// A value accepted under a ballot.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    postcard::experimental::max_size::MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Proposal {
    /// The ballot it was accepted under.
    pub ballot: Ballot,
    /// The operation.
    pub op: Op,
}

/// Acceptor state for the current instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Acceptor {
    pub(crate) promised: Ballot,
    pub(crate) accepted: Option<Proposal>,
    /// Volatile (R8): when `accepted` was last accepted, on this node's clock (the restore
    /// instant after a restart), and the age it arrived with.
    pub(crate) accepted_at: Instant,
    pub(crate) accepted_age: Duration,
}

/// What an acceptor did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vote<T> {
    /// Granted; `changed` says whether durable state changed (and must be persisted
    /// before the reply leaves).
    Granted { reply: T, changed: bool },
    /// Refused: the ballot is below this promise.
    Refused { promised: Ballot },
}

impl Acceptor {
    /// Phase 1b: promise `ballot` unless a higher one was promised.
    pub(crate) fn prepare(&mut self, ballot: Ballot) -> Vote<Option<Proposal>> {
        if ballot < self.promised {
            return Vote::Refused {
                promised: self.promised,
            };
        }
        let changed = ballot > self.promised;
        self.promised = ballot;
        Vote::Granted {
            reply: self.accepted,
            changed,
        }
    }

    /// Phase 2b: accept `op` under `ballot` unless a higher ballot was promised.
    pub(crate) fn accept(&mut self, ballot: Ballot, op: Op) -> Vote<()> {
        if ballot < self.promised {
            return Vote::Refused {
                promised: self.promised,
            };
        }
        let proposal = Proposal { ballot, op };
        let changed = ballot > self.promised || self.accepted != Some(proposal);
        self.promised = ballot;
        self.accepted = Some(proposal);
        Vote::Granted { reply: (), changed }
    }

    /// The instance was decided: forget the accepted value, keep the promise.
    pub(crate) fn next_instance(&mut self) {
        self.accepted = None;
        self.accepted_age = Duration::ZERO;
    }

    /// Notes when the value just accepted was accepted, and the age it came with.
    pub(crate) fn accepted_now(&mut self, now: Instant, age: Duration) {
        self.accepted_at = now;
        self.accepted_age = age;
    }

    /// R8: the age of the accepted value at `now`: the age its latest acceptance arrived
    /// with plus this node's time since then.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        self.accepted_age
            .saturating_add(now.saturating_duration_since(self.accepted_at))
    }

    /// R10: instance chosen under `ballot` was learned; no lower ballot may be helped.
    /// Volatile: it only restricts this acceptor.
    /// Returns whether the promise rose (the next record must carry it before any
    /// reply relies on it).
    pub(crate) fn learned_under(&mut self, ballot: Ballot) -> bool {
        let raised = ballot > self.promised;
        self.promised = self.promised.max(ballot);
        raised
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeId;
    use crate::election::{Op, OpId};
    use crate::time::Duration;

    fn b(round: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(1),
        }
    }
    fn op() -> Op {
        Op::BeMaster {
            node: NodeId(1),
            version: None,
            lease: Duration::from_secs(1),
            id: OpId {
                incarnation: 1,
                seq: 1,
            },
        }
    }

    #[test]
    fn promises_are_kept_and_refusals_carry_the_promise() {
        let mut a = Acceptor::default();
        assert_eq!(
            a.prepare(b(2)),
            Vote::Granted {
                reply: None,
                changed: true
            }
        );
        assert_eq!(a.prepare(b(1)), Vote::Refused { promised: b(2) });
        assert_eq!(a.accept(b(1), op()), Vote::Refused { promised: b(2) });
        assert_eq!(
            a.accept(b(2), op()),
            Vote::Granted {
                reply: (),
                changed: true
            }
        );
        // A duplicate Accept changes nothing durable.
        assert_eq!(
            a.accept(b(2), op()),
            Vote::Granted {
                reply: (),
                changed: false
            }
        );
        // A later Prepare learns the accepted value.
        assert_eq!(
            a.prepare(b(3)),
            Vote::Granted {
                reply: Some(Proposal {
                    ballot: b(2),
                    op: op()
                }),
                changed: true
            }
        );
        // The promise carries over to the next instance.
        a.next_instance();
        assert_eq!(a.accepted, None);
        assert_eq!(a.accept(b(2), op()), Vote::Refused { promised: b(3) });
    }
}

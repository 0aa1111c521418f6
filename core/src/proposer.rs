//! The proposer: drives one of this node's own ops through Prepare/Accept.
//!
//! It is a plain state machine, like the [`Acceptor`](crate::acceptor::Acceptor): it
//! never sends, persists or votes itself. Each call returns a [`Step`] that the node
//! carries out (its own vote, the durable write, the sends) and whose own vote it feeds
//! back, so the same code runs for one voter or thirty-two.
//!
//! One proposal at a time, always in the node's current instance. A phase that gets no
//! majority within the round timeout, or that a majority refuses, is retried under a new
//! ballot after a random backoff. A proposer whose Prepare succeeded, and that has seen
//! no higher ballot since, goes straight to Accept in the following instances ("skip
//! Prepare", `docs/algorithm.md` §2): sound because every acceptor's promise carries over
//! from instance to instance. Skipping is earned only by a full Prepare whose
//! carry-forward duty is done (rule R1): in the instance it was prepared in, the value
//! found there is proposed again, never the node's own.

use crate::acceptor::Proposal;
use crate::ballot::{Ballot, Votes};
use crate::config::NodeId;
use crate::election::Op;
use crate::rand::Rng;
use crate::time::{Duration, Instant};

/// What the node must do next for its proposer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing until the next message or deadline.
    Wait,
    /// Promise `ballot` ourselves (durably), send Prepare to the voters, and report our
    /// own promise with [`Proposer::on_promise`].
    Prepare(Ballot),
    /// Accept `op` under `ballot` ourselves (durably), send Accept (with `age`), and
    /// report our own acceptance with [`Proposer::on_accepted`] (or a refusal with
    /// [`Proposer::refused`]).
    Accept {
        ballot: Ballot,
        op: Op,
        age: Duration,
    },
    /// `op` was chosen under `ballot` in the current instance: commit and learn it.
    Chosen { ballot: Ballot, op: Op },
}

/// What the proposer needs to know of the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) me: NodeId,
    pub(crate) me_index: usize,
    pub(crate) quorum: usize,
    pub(crate) voters: usize,
    pub(crate) round_timeout: Duration,
    pub(crate) max_backoff: Duration,
    /// Lease mode (R11): a phase that times out keeps the prepared ballot; only a
    /// `Reject` with a higher one drops it.
    pub(crate) keep_prepared_on_timeout: bool,
    /// Lease mode: carried values go on with their age (R8); logged mode sends none.
    pub(crate) ages: bool,
    /// Planted fault: forwarded ages are doubled.
    pub(crate) double_age: bool,
}

/// The value a Prepare found and must carry forward, with its age.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Found {
    proposal: Proposal,
    /// Its age as the Promise reported it.
    age: Duration,
    /// When that Promise arrived (R8: the proposer adds its own time since then).
    received: Instant,
}

/// A ballot a majority promised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Prepared {
    ballot: Ballot,
    /// The instance the Prepare ran in.
    instance: u64,
    /// It found a value there that it had to carry forward (its duty, R1): no skipping
    /// in that instance, only in later ones.
    duty: bool,
}

/// Where the proposer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
enum Phase {
    #[default]
    Idle,
    Preparing {
        ballot: Ballot,
        votes: Votes,
        rejects: Votes,
        best: Option<Found>,
    },
    Accepting {
        ballot: Ballot,
        value: Op,
        votes: Votes,
        rejects: Votes,
    },
    /// Waiting out a random pause before the next attempt.
    Backoff,
}

/// The proposer's state; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Proposer {
    /// The own op being proposed.
    own: Option<Op>,
    phase: Phase,
    /// End of the current phase or backoff.
    deadline: Option<Instant>,
    /// A ballot a majority promised, usable without a new Prepare.
    prepared: Option<Prepared>,
    /// The highest ballot seen anywhere.
    highest_seen: Ballot,
    /// Phases failed since a value was last learned: stretches timeouts and pauses so
    /// dueling proposers, or a network slower than the round timeout, still settle.
    failures: u32,
}

/// Doublings of the round timeout (x4 at most) and of the backoff range (x32 at most)
/// after repeated failures.
const MAX_TIMEOUT_DOUBLINGS: u32 = 2;
const MAX_BACKOFF_DOUBLINGS: u32 = 5;

impl Proposer {
    /// Whether no own op is being proposed.
    pub(crate) fn is_idle(&self) -> bool {
        self.own.is_none()
    }

    /// The own op being proposed.
    #[cfg(test)]
    pub(crate) fn own(&self) -> Option<Op> {
        self.own
    }

    /// End of the current phase or backoff, and whether it is a backoff.
    pub(crate) fn deadline(&self) -> Option<(Instant, bool)> {
        self.deadline
            .map(|d| (d, matches!(self.phase, Phase::Backoff)))
    }

    /// The ballot a majority promised, if it is still usable (nothing higher seen, and
    /// our own promise is still that ballot).
    pub(crate) fn prepared_ballot(&self, promised: Ballot) -> Option<Ballot> {
        self.prepared
            .map(|p| p.ballot)
            .filter(|b| *b == promised && self.highest_seen <= *b)
    }

    /// A ballot was seen in a message.
    pub(crate) fn see(&mut self, ballot: Ballot) {
        if ballot > self.highest_seen {
            self.highest_seen = ballot;
        }
    }

    /// The current instance was decided (by us or anyone): stop proposing in it.
    pub(crate) fn decided(&mut self) {
        self.own = None;
        self.phase = Phase::Idle;
        self.deadline = None;
        self.failures = 0;
    }

    /// Forgets the own op without touching the failure count (a snapshot moved the node
    /// on).
    pub(crate) fn reset(&mut self) {
        self.own = None;
        self.phase = Phase::Idle;
        self.deadline = None;
    }

    /// Forgets the prepared ballot (the member list changed: a promise of the old list's
    /// majority says nothing about the next change's list), so the next proposal, or the
    /// next renewal, prepares again under the new list.
    pub(crate) fn forget_prepared(&mut self) {
        self.prepared = None;
    }

    /// Lease mode: a master without a usable prepared ballot (it won a duel, say, and a
    /// rival's higher ballot was promised since) runs a Prepare with no op of its own, to
    /// get a ballot to renew under. A value the Prepare finds is carried forward (R1),
    /// even if it ends this node's term. Does nothing unless the proposer is idle.
    pub(crate) fn prepare_only(
        &mut self,
        now: Instant,
        _instance: u64,
        promised: Ballot,
        lim: &Limits,
    ) -> Step {
        if self.own.is_some() || self.phase != Phase::Idle {
            return Step::Wait;
        }
        self.prepared = None;
        let seen = self.highest_seen.max(promised);
        let Some(ballot) = Ballot::above(seen, lim.me) else {
            return Step::Wait;
        };
        self.phase = Phase::Preparing {
            ballot,
            votes: Votes::default(),
            rejects: Votes::default(),
            best: None,
        };
        self.deadline = Some(now + self.phase_timeout(lim));
        Step::Prepare(ballot)
    }

    /// Starts proposing `op` in `instance`; `promised` is our own acceptor's promise.
    pub(crate) fn propose(
        &mut self,
        now: Instant,
        op: Op,
        instance: u64,
        promised: Ballot,
        lim: &Limits,
    ) -> Step {
        self.own = Some(op);
        self.begin_round(now, instance, promised, lim)
    }

    fn begin_round(&mut self, now: Instant, instance: u64, promised: Ballot, lim: &Limits) -> Step {
        let Some(own) = self.own else {
            // (The end of a prepare-only round's backoff: the node decides again.)
            self.phase = Phase::Idle;
            self.deadline = None;
            return Step::Wait;
        };
        if let (Some(p), Some(ballot)) = (self.prepared, self.prepared_ballot(promised)) {
            // R1: skip only where the Prepare's duty cannot apply: a later instance, or
            // the same one when it found nothing to carry forward.
            if instance > p.instance || (instance == p.instance && !p.duty) {
                return self.start_accept(now, ballot, own, Duration::ZERO, lim);
            }
        }
        self.prepared = None;
        let seen = self.highest_seen.max(promised);
        let Some(ballot) = Ballot::above(seen, lim.me) else {
            self.reset(); // round space exhausted: give up rather than wrap
            return Step::Wait;
        };
        self.phase = Phase::Preparing {
            ballot,
            votes: Votes::default(),
            rejects: Votes::default(),
            best: None,
        };
        self.deadline = Some(now + self.phase_timeout(lim));
        Step::Prepare(ballot)
    }

    fn start_accept(
        &mut self,
        now: Instant,
        ballot: Ballot,
        value: Op,
        age: Duration,
        lim: &Limits,
    ) -> Step {
        self.phase = Phase::Accepting {
            ballot,
            value,
            votes: Votes::default(),
            rejects: Votes::default(),
        };
        self.deadline = Some(now + self.phase_timeout(lim));
        Step::Accept {
            ballot,
            op: value,
            age,
        }
    }

    /// A promise for `ballot` in the current instance (ours included), with the value
    /// the voter accepted there and its age.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_promise(
        &mut self,
        now: Instant,
        from: usize,
        instance: u64,
        ballot: Ballot,
        accepted: Option<Proposal>,
        age: Duration,
        lim: &Limits,
    ) -> Option<Step> {
        let Phase::Preparing {
            ballot: mine,
            ref mut votes,
            ref mut best,
            ..
        } = self.phase
        else {
            return None;
        };
        if mine != ballot {
            return None;
        }
        votes.insert(from);
        if let Some(p) = accepted {
            if best.is_none_or(|b| p.ballot > b.proposal.ballot) {
                *best = Some(Found {
                    proposal: p,
                    age,
                    received: now,
                });
            }
        }
        if votes.count() < lim.quorum {
            return Some(Step::Wait);
        }
        let best = *best;
        self.prepared = Some(Prepared {
            ballot,
            instance,
            duty: best.is_some(),
        });
        // Paxos: a value possibly chosen before must be carried forward.
        let (value, age) = match (best, self.own) {
            (Some(found), _) => (found.proposal.op, forwarded_age(found, now, lim)),
            (None, Some(own)) => (own, Duration::ZERO),
            (None, None) => {
                // A prepare-only round: the ballot is ours, nothing to propose.
                self.phase = Phase::Idle;
                self.deadline = None;
                return Some(Step::Wait);
            }
        };
        Some(self.start_accept(now, ballot, value, age, lim))
    }

    /// An acceptance of `ballot` in the current instance (ours included).
    pub(crate) fn on_accepted(
        &mut self,
        from: usize,
        ballot: Ballot,
        lim: &Limits,
    ) -> Option<Step> {
        let Phase::Accepting {
            ballot: mine,
            value,
            ref mut votes,
            ..
        } = self.phase
        else {
            return None;
        };
        if mine != ballot {
            return None;
        }
        votes.insert(from);
        Some(if votes.count() >= lim.quorum {
            Step::Chosen { ballot, op: value }
        } else {
            Step::Wait
        })
    }

    /// Our own acceptor refused our Accept: a higher promise exists.
    pub(crate) fn refused(&mut self, now: Instant, promised: Ballot, lim: &Limits, rng: &mut Rng) {
        self.see(promised);
        self.prepared = None;
        self.backoff(now, lim, rng);
    }

    /// A refusal of `ballot` in the current instance. Returns false when it was not
    /// about the current phase.
    pub(crate) fn on_reject(
        &mut self,
        now: Instant,
        from: usize,
        ballot: Ballot,
        lim: &Limits,
        rng: &mut Rng,
    ) -> bool {
        let (mine, rejects) = match self.phase {
            Phase::Preparing {
                ballot,
                ref mut rejects,
                ..
            }
            | Phase::Accepting {
                ballot,
                ref mut rejects,
                ..
            } => (ballot, rejects),
            _ => return false,
        };
        if mine != ballot {
            return false;
        }
        self.prepared = None;
        rejects.insert(from);
        // Once a majority can no longer be reached, retry without waiting for the timeout.
        if rejects.count() > lim.voters - lim.quorum {
            self.backoff(now, lim, rng);
        }
        true
    }

    /// The phase deadline or the backoff ended (`instance` and `promised` as in
    /// [`propose`](Self::propose)). Returns whether a phase timed out, and what to do.
    pub(crate) fn on_deadline(
        &mut self,
        now: Instant,
        instance: u64,
        promised: Ballot,
        lim: &Limits,
        rng: &mut Rng,
    ) -> (bool, Step) {
        match self.phase {
            Phase::Preparing { .. } | Phase::Accepting { .. } => {
                if !lim.keep_prepared_on_timeout {
                    self.prepared = None;
                }
                self.backoff(now, lim, rng);
                (true, Step::Wait)
            }
            Phase::Backoff => (false, self.begin_round(now, instance, promised, lim)),
            Phase::Idle => {
                self.deadline = None;
                (false, Step::Wait)
            }
        }
    }

    /// The round timeout, doubled per recent failure up to four times its setting.
    fn phase_timeout(&self, lim: &Limits) -> Duration {
        let doublings = self.failures.min(MAX_TIMEOUT_DOUBLINGS);
        lim.round_timeout.saturating_mul(1 << doublings)
    }

    fn backoff(&mut self, now: Instant, lim: &Limits, rng: &mut Rng) {
        self.phase = Phase::Backoff;
        let doublings = self.failures.min(MAX_BACKOFF_DOUBLINGS);
        self.failures = self.failures.saturating_add(1);
        let range = lim.max_backoff.saturating_mul(1 << doublings);
        let pause = 1 + rng.below(range.as_micros());
        self.deadline = Some(now + Duration::from_micros(pause));
    }
}

/// R8: the age a carried value goes on with: the age its Promise reported plus our own
/// time since that Promise arrived (flight times are not counted: an undercount, safe).
fn forwarded_age(found: Found, now: Instant, lim: &Limits) -> Duration {
    if !lim.ages {
        return Duration::ZERO;
    }
    let age = found
        .age
        .saturating_add(now.saturating_duration_since(found.received));
    if lim.double_age {
        age.saturating_mul(2) // planted fault: overstated
    } else {
        age
    }
}

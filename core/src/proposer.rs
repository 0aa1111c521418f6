//! The proposer: drives one of this node's own ops through Prepare/Accept.
//!
//! One proposal at a time, always in the node's current instance. A phase that gets no
//! majority within the round timeout, or that a majority refuses, is retried under a new
//! ballot after a random backoff. A proposer whose Prepare succeeded, and that has seen
//! no higher ballot since, goes straight to Accept in the following instances
//! ("skip Prepare"): sound because every acceptor's promise carries over from instance to
//! instance.

use crate::acceptor::{Proposal, Vote};
use crate::ballot::{Ballot, Votes};
use crate::election::Op;
use crate::node::{Destination, Node};
use crate::time::{Duration, Instant};
use crate::wire::Message;

/// Where the proposer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Phase {
    #[default]
    Idle,
    Preparing {
        ballot: Ballot,
        votes: Votes,
        rejects: Votes,
        best: Option<Proposal>,
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Proposer {
    /// The own op being proposed.
    pub(crate) own: Option<Op>,
    pub(crate) phase: Phase,
    /// End of the current phase or backoff.
    pub(crate) deadline: Option<Instant>,
    /// A ballot a majority promised, usable without a new Prepare.
    pub(crate) prepared: Option<Ballot>,
    /// The highest ballot seen anywhere.
    pub(crate) highest_seen: Ballot,
    /// Phases failed since a value was last learned: stretches timeouts and pauses so
    /// dueling proposers, or a network slower than the round timeout, still settle.
    pub(crate) failures: u32,
}

/// Doublings of the round timeout (x4 at most) and of the backoff range (x32 at most)
/// after repeated failures.
const MAX_TIMEOUT_DOUBLINGS: u32 = 2;
const MAX_BACKOFF_DOUBLINGS: u32 = 5;

impl Proposer {
    pub(crate) fn is_idle(&self) -> bool {
        self.own.is_none()
    }
    pub(crate) fn see(&mut self, ballot: Ballot) {
        if ballot > self.highest_seen {
            self.highest_seen = ballot;
        }
    }
    pub(crate) fn reset(&mut self) {
        self.own = None;
        self.phase = Phase::Idle;
        self.deadline = None;
    }
}

impl<const N: usize> Node<N> {
    /// Starts proposing `op` in the current instance.
    pub(crate) fn propose(&mut self, now: Instant, op: Op) {
        self.proposer.own = Some(op);
        self.begin_round(now);
    }

    fn begin_round(&mut self, now: Instant) {
        let Some(own) = self.proposer.own else {
            return;
        };
        if let Some(ballot) = self.proposer.prepared {
            if self.acceptor.promised == ballot && self.proposer.highest_seen <= ballot {
                self.start_accept(now, ballot, own);
                return;
            }
        }
        self.proposer.prepared = None;
        let seen = self.proposer.highest_seen.max(self.acceptor.promised);
        let Some(ballot) = Ballot::above(seen, self.config.node_id) else {
            self.proposer.reset(); // round space exhausted: give up rather than wrap
            return;
        };
        // SAFETY-OF-PROTOCOL: our own promise is made, and persisted, before the Prepare
        // leaves; after a crash the restored promise keeps us from reusing the ballot.
        let best = match self.acceptor.prepare(ballot) {
            Vote::Granted { reply, .. } => reply,
            Vote::Refused { .. } => None, // cannot happen: the ballot is above the promise
        };
        self.persist();
        if self.config.quorum() > 1 {
            // (A single voter has no one to ask: learners never vote.)
            self.send(
                Destination::All,
                Message::Prepare {
                    instance: self.instance,
                    ballot,
                },
            );
        }
        let mut votes = Votes::default();
        votes.insert(self.me_index);
        self.proposer.phase = Phase::Preparing {
            ballot,
            votes,
            rejects: Votes::default(),
            best,
        };
        self.proposer.deadline = Some(now + self.phase_timeout());
        if votes.count() >= self.config.quorum() {
            self.prepared(now, ballot, best);
        }
    }

    fn prepared(&mut self, now: Instant, ballot: Ballot, best: Option<Proposal>) {
        self.proposer.prepared = Some(ballot);
        // Paxos: a value possibly chosen before must be carried forward.
        let value = match (best, self.proposer.own) {
            (Some(p), _) => p.op,
            (None, Some(own)) => own,
            (None, None) => return,
        };
        self.start_accept(now, ballot, value);
    }

    fn start_accept(&mut self, now: Instant, ballot: Ballot, value: Op) {
        match self.acceptor.accept(ballot, value) {
            Vote::Granted { .. } => {}
            Vote::Refused { promised } => {
                self.proposer.see(promised);
                self.proposer.prepared = None;
                self.backoff(now);
                return;
            }
        }
        // SAFETY-OF-PROTOCOL: our own acceptance is durable before the Accept leaves.
        self.persist();
        self.send(
            Destination::All,
            Message::Accept {
                instance: self.instance,
                ballot,
                op: value,
            },
        );
        let mut votes = Votes::default();
        votes.insert(self.me_index);
        self.proposer.phase = Phase::Accepting {
            ballot,
            value,
            votes,
            rejects: Votes::default(),
        };
        self.proposer.deadline = Some(now + self.phase_timeout());
        if votes.count() >= self.config.quorum() {
            self.chosen(now, ballot, value);
        }
    }

    fn chosen(&mut self, now: Instant, ballot: Ballot, value: Op) {
        self.send(
            Destination::All,
            Message::Commit {
                instance: self.instance,
                ballot,
            },
        );
        self.learn(now, value);
    }

    pub(crate) fn on_promise(
        &mut self,
        now: Instant,
        from: usize,
        instance: u64,
        ballot: Ballot,
        accepted: Option<Proposal>,
    ) -> bool {
        if instance != self.instance {
            return false;
        }
        let Phase::Preparing {
            ballot: mine,
            ref mut votes,
            ref mut best,
            ..
        } = self.proposer.phase
        else {
            return false;
        };
        if mine != ballot {
            return false;
        }
        votes.insert(from);
        if let Some(p) = accepted {
            if best.is_none_or(|b| p.ballot > b.ballot) {
                *best = Some(p);
            }
        }
        if votes.count() >= self.config.quorum() {
            let best = *best;
            self.prepared(now, ballot, best);
        }
        true
    }

    pub(crate) fn on_accepted(
        &mut self,
        now: Instant,
        from: usize,
        instance: u64,
        ballot: Ballot,
    ) -> bool {
        if instance != self.instance {
            return false;
        }
        let Phase::Accepting {
            ballot: mine,
            value,
            ref mut votes,
            ..
        } = self.proposer.phase
        else {
            return false;
        };
        if mine != ballot {
            return false;
        }
        votes.insert(from);
        if votes.count() >= self.config.quorum() {
            self.chosen(now, ballot, value);
        }
        true
    }

    pub(crate) fn on_reject(
        &mut self,
        now: Instant,
        from: usize,
        instance: u64,
        ballot: Ballot,
        promised: Ballot,
    ) -> bool {
        self.proposer.see(promised);
        if instance != self.instance {
            return false;
        }
        let (mine, rejects) = match self.proposer.phase {
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
        self.proposer.prepared = None;
        rejects.insert(from);
        // Once a majority can no longer be reached, retry without waiting for the timeout.
        if rejects.count() > self.config.voter_count() - self.config.quorum() {
            self.backoff(now);
        }
        true
    }

    /// The phase deadline or the backoff ended.
    pub(crate) fn on_proposer_deadline(&mut self, now: Instant) {
        match self.proposer.phase {
            Phase::Preparing { .. } | Phase::Accepting { .. } => {
                self.stats.round_timeouts += 1;
                self.proposer.prepared = None;
                self.backoff(now);
            }
            Phase::Backoff => self.begin_round(now),
            Phase::Idle => self.proposer.deadline = None,
        }
    }

    /// The round timeout, doubled per recent failure up to four times its setting.
    fn phase_timeout(&self) -> Duration {
        let doublings = self.proposer.failures.min(MAX_TIMEOUT_DOUBLINGS);
        self.config.round_timeout.saturating_mul(1 << doublings)
    }

    fn backoff(&mut self, now: Instant) {
        self.proposer.phase = Phase::Backoff;
        let doublings = self.proposer.failures.min(MAX_BACKOFF_DOUBLINGS);
        self.proposer.failures = self.proposer.failures.saturating_add(1);
        let range = self.config.max_backoff.saturating_mul(1 << doublings);
        let pause = 1 + self.rng.below(range.as_micros());
        self.proposer.deadline = Some(now + Duration::from_micros(pause));
    }
}

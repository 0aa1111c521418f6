//! Rejoin after a lost record, as a new incarnation (`docs/algorithm.md` §10).
//!
//! A node started with [`Node::rejoin`] stands by (votes for no one, does not
//! campaign, keeps the restart silence) and asks the others for their instance and
//! promise. Once a majority of the other voters answered, with `M` the highest instance
//! among them, it votes only from instance `M + 3` on (two instances decided after any
//! its old incarnation can have voted in). The bound is durable: a crash while rejoining
//! restarts rejoining.

use crate::ballot::Ballot;
use crate::node::{Destination, Node};
use crate::time::Instant;
use crate::wire::Message;

/// The rejoin bound while the majority's instances are not yet known.
pub(crate) const ASKING: u64 = u64::MAX;

impl<const N: usize> Node<N> {
    /// Whether this node is rejoining after a lost record and may not vote yet
    /// ([`Node::rejoin`]).
    pub fn is_rejoining(&self) -> bool {
        self.rejoin != 0
    }

    /// While the majority's instances are unknown: asks every member, at most once per
    /// round timeout.
    pub(crate) fn ask_rejoin(&mut self, now: Instant) {
        if self.rejoin != ASKING
            || self
                .rejoin_asked
                .is_some_and(|at| now < at + self.config.round_timeout)
        {
            return;
        }
        self.rejoin_asked = Some(now);
        let nonce = self.rejoin_nonce;
        self.send(Destination::All, Message::RejoinQuery { nonce });
    }

    /// Answers a rejoining node: only a voting member that is not standing by knows
    /// what its instance proves.
    pub(crate) fn answer_rejoin(&mut self, to: crate::config::NodeId, nonce: u32) -> bool {
        if !self.config.role().votes() || self.election.standby {
            return false;
        }
        let (instance, promised) = (self.instance, self.acceptor.promised);
        self.send(
            Destination::Node(to),
            Message::RejoinReply {
                nonce,
                instance,
                promised,
            },
        );
        true
    }

    /// A voter's answer: counted once per voter; at a majority of the other voters the
    /// bound is set (and stored) and the promise raised to the highest reported.
    pub(crate) fn on_rejoin_reply(
        &mut self,
        now: Instant,
        from_index: usize,
        nonce: u32,
        instance: u64,
        promised: Ballot,
    ) -> bool {
        let votes = self.config.members[from_index].role.votes();
        let bit = 1u32 << (from_index % 32);
        if self.rejoin != ASKING
            || nonce != self.rejoin_nonce
            || !votes
            || self.rejoin_heard & bit != 0
        {
            return false;
        }
        self.rejoin_heard |= bit;
        self.rejoin_max = self.rejoin_max.max(instance);
        if !self.fault(crate::fault::Fault::RejoinOldBallot) {
            // Above every ballot the old incarnation sent an Accept or a Renew under.
            self.acceptor.promised = self.acceptor.promised.max(promised);
        }
        if (self.rejoin_heard.count_ones() as usize) < self.config.quorum() {
            return true;
        }
        // Instances are at most MAX_SANE_INSTANCE (checked on receipt): no overflow.
        let wait = if self.fault(crate::fault::Fault::RejoinOneInstance) {
            2
        } else {
            3
        };
        self.rejoin = self.rejoin_max.saturating_add(wait).max(1);
        self.persist();
        self.check_rejoin(now);
        true
    }

    /// After every input: ends the rejoin once this node is at its bound (and its list
    /// is the register's and holds it), with an incarnation above the register's last
    /// op of its own, stored before anything of the new incarnation leaves.
    pub(crate) fn check_rejoin(&mut self, _now: Instant) {
        if self.rejoin == 0 || self.rejoin == ASKING || self.instance < self.rejoin {
            return;
        }
        if self.members_wanted.is_some() || self.config.member(self.config.node_id).is_none() {
            return;
        }
        let me = self.config.node_id;
        let state = self.election.state;
        if state.master == Some(me) {
            if let Some(id) = state.op {
                let above = id.incarnation.saturating_add(1);
                self.election.incarnation = self.election.incarnation.max(above);
            }
        }
        self.rejoin = 0;
        self.election.standby = false;
        // A value kept as a learner in the current instance was never voted for.
        self.acceptor.accepted = None;
        self.persist();
    }
}

//! Learning chosen values, and catching up a node that fell behind.
//!
//! Values are learned strictly in instance order. A node that hears of an instance above
//! its own asks the sender to catch it up; the sender answers with the op chosen in the
//! instance just below its own, or, for a node further behind, with a snapshot of the
//! election state (it is tiny, so there is no log to replay). Messages about instances a
//! node has already decided are answered the same way and never voted on again.

use crate::config::NodeId;
use crate::election::{ElectionState, Op};
use crate::node::{Destination, Node};
use crate::time::{Duration, Instant};
use crate::wire::Message;

impl<const N: usize> Node<N> {
    /// The op chosen in the current instance is `op`, learned `age` after it was first
    /// sent as far as this node can tell (R8): apply it and move on.
    pub(crate) fn learn(&mut self, now: Instant, op: Op, age: Duration) {
        let instance = self.instance;
        // Never overflows: instances above MAX_SANE_INSTANCE are refused on receipt.
        self.instance = self.instance.saturating_add(1);
        self.acceptor.next_instance();
        self.last_chosen = Some(op);
        let holder = self.election.state.master;
        let reconfigure = matches!(op, Op::Reconfigure { .. });
        let effective = if reconfigure {
            self.apply_reconfigure(instance, op, now)
        } else {
            self.election.apply(instance, op, now, &self.config, age)
        };
        if effective {
            self.end_guards_of(holder);
            let me = Some(self.config.node_id);
            if holder == me && self.election.state.master == me && op.node() == self.config.node_id
            {
                // Logged mode: one of our renewals was chosen.
                if matches!(op, Op::BeMaster { .. }) {
                    self.stats.renewals_completed = self.stats.renewals_completed.wrapping_add(1);
                }
            }
        }
        let term = self.election.state.term;
        if let Some(r) = self.renewer.as_mut() {
            // R3: no round survives an op after the term; an effective membership change
            // by the holder does not end the term (its rounds were dropped above).
            if instance > r.term && !(reconfigure && effective && term == Some(r.term)) {
                r.stopped = true;
            }
        }
        // Whatever we were proposing in that instance is decided now (ours or not); the
        // election decides whether to propose again.
        self.proposer.decided();
        // Learning needs no write for safety: a node restarted from an older record is
        // at an older instance, so anything it proposes lands in an instance that is
        // already decided and is answered with the chosen value (it catches up); a
        // stale view of another master only makes it wait longer. The next vote persists
        // the instance anyway; a change of holder is written at once so a restart knows
        // whom to wait for. This halves the writes per renewal.
        if self.election.state.master != holder {
            self.persist();
        }
    }

    /// Installs the election state after every instance below `next_instance`.
    pub(crate) fn install(&mut self, now: Instant, next_instance: u64, state: ElectionState) {
        self.instance = next_instance;
        self.acceptor.next_instance();
        self.last_chosen = None;
        let holder = self.election.state.master;
        self.election.install(state, now, &self.config);
        self.check_members_after_install();
        self.end_guards_of(holder);
        self.renewer = None;
        self.proposer.reset();
        self.stats.snapshots_installed = self.stats.snapshots_installed.wrapping_add(1);
        self.persist();
    }

    /// R9: an effective op above a term ends it; this node stops guarding the holder it
    /// replaced (release and hand-over stay as fast as a round).
    fn end_guards_of(&mut self, previous: Option<NodeId>) {
        if let Some(h) = previous {
            if self.election.state.master != Some(h) {
                self.guards.drop_holder(h);
            }
        }
    }

    /// Answers a node that is at `instance`, below ours.
    pub(crate) fn answer_behind(&mut self, to: NodeId, instance: u64) {
        let message = match self.last_chosen {
            Some(op) if instance + 1 == self.instance => Message::Chosen { instance, op },
            _ => Message::Snapshot {
                next_instance: self.instance,
                state: self.election.state,
            },
        };
        self.send(Destination::Node(to), message);
    }

    /// We heard of an instance above ours from `from`: ask it to catch us up, at most
    /// once per round timeout for the same instance.
    pub(crate) fn request_catch_up(&mut self, now: Instant, from: NodeId) {
        if let Some((instance, at)) = self.last_catch_up {
            if instance == self.instance && now < at + self.config.round_timeout {
                return;
            }
        }
        self.last_catch_up = Some((self.instance, now));
        self.stats.catch_ups = self.stats.catch_ups.wrapping_add(1);
        self.send(
            Destination::Node(from),
            Message::CatchUp {
                next_instance: self.instance,
            },
        );
    }
}

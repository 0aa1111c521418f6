//! Events: every change of the master view a user must react to.

use crate::config::NodeId;
use crate::time::Instant;

/// Why a term (this node's or another's) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TermEnd {
    /// The lease ran out (no renewal in time).
    Expired,
    /// The master gave the role up (`release` or `hand_over`).
    Released,
    /// Another node took the role, learned before the old lease ran out in this view
    /// (for example after catching up).
    Superseded,
    /// This node's clock went backwards: its own term ends at once (fail safe).
    ClockRegression,
}

/// A change of the master view, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// This node became master; its term ends at `term_end` unless renewed.
    BecameMaster {
        /// The fencing token of the term: the instance of the op that began it. Fixed for
        /// the whole term, strictly higher than every earlier term's.
        token: u64,
        /// End of the term on this node's clock.
        term_end: Instant,
    },
    /// This node is no longer master.
    TermEnded {
        /// The term's fencing token.
        token: u64,
        /// Why.
        reason: TermEnd,
    },
    /// Another node became master, in this node's view.
    MasterElected {
        /// The new master.
        node: NodeId,
        /// Its term's fencing token.
        token: u64,
    },
    /// Another node's mastership ended in this node's view.
    MasterLost {
        /// The former master.
        node: NodeId,
        /// Its term's fencing token.
        token: u64,
        /// Why.
        reason: TermEnd,
    },
    /// A membership change chosen in instance `version` took effect at this node: the
    /// next instance is decided by the new list of `members` members.
    MembersChanged {
        /// The instance of the change.
        version: u64,
        /// Members in the new list.
        members: u8,
    },
    /// This node's member list differs from the register's: on a restore, the stored
    /// list differs from the configured one and is followed (`followed`); after a
    /// snapshot or a change this node cannot hold, it cannot follow and stands by
    /// (votes for no one, does not campaign).
    MemberListDiffers {
        /// The register's last change, as far as this node knows.
        version: Option<u64>,
        /// Whether this node now follows the register's list.
        followed: bool,
    },
}

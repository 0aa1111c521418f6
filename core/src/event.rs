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
}

/// A change of the master view, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// This node became master at `version`; its term ends at `term_end` unless renewed.
    BecameMaster {
        /// The version (instance) that made it master: use it as a fencing token.
        version: u64,
        /// End of the term on this node's clock.
        term_end: Instant,
    },
    /// This node is no longer master.
    TermEnded {
        /// The last version of the term.
        version: u64,
        /// Why.
        reason: TermEnd,
    },
    /// Another node became master, in this node's view.
    MasterElected {
        /// The new master.
        node: NodeId,
        /// Its version.
        version: u64,
    },
    /// Another node's mastership ended in this node's view.
    MasterLost {
        /// The former master.
        node: NodeId,
        /// Its last version.
        version: u64,
        /// Why.
        reason: TermEnd,
    },
}

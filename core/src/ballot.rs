//! Ballots and quorums.

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::config::NodeId;

/// A Paxos ballot: `(round, node)`, compared lexicographically, so two proposers never
/// share one.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    postcard::experimental::max_size::MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ballot {
    /// Increases with every new attempt.
    pub round: u64,
    /// The proposer that owns the ballot.
    pub node: NodeId,
}

/// Lexicographic, round first (as a derive would), kept out of line on bare-metal
/// targets: ballots are compared in dozens of places, and inlined each costs the
/// firmware flash. (Elsewhere the compiler inlines it: out of line, with the time
/// arithmetic's helpers, it cost a host renewal round about 2,000 instructions.)
impl Ord for Ballot {
    #[cfg_attr(target_os = "none", inline(never))]
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.round
            .cmp(&other.round)
            .then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Ballot {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ballot {
    /// The lowest ballot; every acceptor starts having promised it.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        node: NodeId(0),
    };

    /// A fresh ballot for `node`, above `seen`. `None` when the round space is exhausted
    /// (only a hostile peer can push rounds that high; such ballots are refused earlier).
    pub fn above(seen: Ballot, node: NodeId) -> Option<Ballot> {
        seen.round
            .checked_add(1)
            .map(|round| Ballot { round, node })
    }
}

/// `round.nNode`, e.g. `3.n2`.
impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.n{}", self.round, self.node)
    }
}

/// Rounds above this are refused as hostile: an honest cluster needs billions of years
/// of retries to get there, and refusing them keeps `Ballot::above` from running out.
pub const MAX_SANE_ROUND: u64 = u64::MAX / 2;

/// Instances above this are refused as hostile: at a thousand decisions a second an
/// honest cluster needs hundreds of millions of years to get there, and refusing them
/// keeps the instance counter from ever overflowing.
pub const MAX_SANE_INSTANCE: u64 = u64::MAX / 2;

/// A set of members (by index in the member list) that voted for something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Votes(u32);

impl Votes {
    /// Records `index`; returns whether it was new.
    pub(crate) fn insert(&mut self, index: usize) -> bool {
        let bit = 1u32 << (index as u32 & 31);
        let new = self.0 & bit == 0;
        self.0 |= bit;
        new
    }
    pub(crate) fn count(self) -> usize {
        self.0.count_ones() as usize
    }
    pub(crate) fn contains(self, index: usize) -> bool {
        index < 32 && self.0 & (1u32 << index) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node() {
        let a = Ballot {
            round: 1,
            node: NodeId(9),
        };
        let b = Ballot {
            round: 2,
            node: NodeId(1),
        };
        assert!(a < b);
        assert!(Ballot::ZERO < a);
        assert_eq!(Ballot::above(b, NodeId(3)).unwrap().round, 3);
        let top = Ballot {
            round: u64::MAX,
            node: NodeId(1),
        };
        assert_eq!(Ballot::above(top, NodeId(1)), None);
    }

    #[test]
    fn votes_count_each_member_once() {
        let mut v = Votes::default();
        assert!(v.insert(0));
        assert!(!v.insert(0));
        assert!(v.insert(31));
        assert_eq!(v.count(), 2);
    }
}

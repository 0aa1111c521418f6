//! Counters for observing a node: what came in, what went out, what was dropped and why.

/// Why an input was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropReason {
    /// Bytes that did not decode (reported by the driver through
    /// [`Node::note_malformed`](crate::Node::note_malformed)).
    Malformed,
    /// A frame whose authentication tag is missing or wrong.
    BadTag,
    /// A newer protocol version than this build speaks.
    NewerProtocol,
    /// Another cluster's message.
    WrongCluster,
    /// The sender is not a member, is this node itself, or may not send this message.
    NotMember,
    /// A field makes no sense (absurd ballot, op from a non-candidate, bad lease, ...).
    BadField,
    /// About an instance or ballot that is no longer current.
    Stale,
    /// The driver had not drained the previous outputs; the input was refused.
    Backlog,
}

/// Drop counters, one per [`DropReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Drops {
    /// [`DropReason::Malformed`].
    pub malformed: u64,
    /// [`DropReason::BadTag`].
    pub bad_tag: u64,
    /// [`DropReason::NewerProtocol`].
    pub newer_protocol: u64,
    /// [`DropReason::WrongCluster`].
    pub wrong_cluster: u64,
    /// [`DropReason::NotMember`].
    pub not_member: u64,
    /// [`DropReason::BadField`].
    pub bad_field: u64,
    /// [`DropReason::Stale`].
    pub stale: u64,
    /// [`DropReason::Backlog`].
    pub backlog: u64,
}

impl Drops {
    /// Counts one drop.
    pub fn add(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Malformed => &mut self.malformed,
            DropReason::BadTag => &mut self.bad_tag,
            DropReason::NewerProtocol => &mut self.newer_protocol,
            DropReason::WrongCluster => &mut self.wrong_cluster,
            DropReason::NotMember => &mut self.not_member,
            DropReason::BadField => &mut self.bad_field,
            DropReason::Stale => &mut self.stale,
            DropReason::Backlog => &mut self.backlog,
        };
        *c = c.saturating_add(1);
    }
    /// All drops.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.bad_tag
            + self.newer_protocol
            + self.wrong_cluster
            + self.not_member
            + self.bad_field
            + self.stale
            + self.backlog
    }
}

/// A node's counters since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Messages handed to `handle_message`.
    pub messages_in: u64,
    /// `Send` outputs emitted (a send to all counts once).
    pub messages_out: u64,
    /// Inputs dropped, by reason.
    pub dropped: Drops,
    /// `Persist` outputs emitted.
    pub persists: u64,
    /// Campaigns started (BeMaster proposed while no master was live).
    pub elections_started: u64,
    /// Times this node became master.
    pub elections_won: u64,
    /// Renewals proposed.
    pub renewals: u64,
    /// Releases and hand-overs proposed.
    pub releases: u64,
    /// Paxos phases that timed out.
    pub round_timeouts: u64,
    /// Catch-up requests sent.
    pub catch_ups: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// Calls with a `now` earlier than a previous one (treated as the previous one).
    pub clock_regressions: u64,
    /// Outputs lost because the queue was full. Always zero unless the call protocol is
    /// broken in a way the node cannot see; tests assert it.
    pub queue_overflows: u64,
}

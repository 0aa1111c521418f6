//! Counters for observing a node: what came in, what went out, what was dropped and why.

/// Why an input was dropped: what [`Node::handle_frame`](crate::Node::handle_frame) and
/// [`Node::handle_message`](crate::Node::handle_message) return, and what
/// [`Drops`] counts (each dropped input under exactly one reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropReason {
    /// A frame longer than any frame a member sends.
    Oversized,
    /// Bytes that did not decode.
    Malformed,
    /// A frame whose authentication tag is missing or wrong.
    BadTag,
    /// A newer protocol version than this build speaks.
    NewerProtocol,
    /// An older protocol version than this build speaks (a protocol-1 node).
    OlderProtocol,
    /// The sender runs the other [`Renewal`](crate::Renewal) mode: one cluster, one mode.
    WrongRenewal,
    /// Another cluster's message.
    WrongCluster,
    /// The sender is not a member, is this node itself, or may not send this message.
    NotMember,
    /// The header names another member than the one the driver received the frame from
    /// (see [`Node::handle_frame_from`](crate::Node::handle_frame_from)).
    SourceMismatch,
    /// A field makes no sense (absurd ballot, op from a non-candidate, bad lease, ...).
    BadField,
    /// About an instance or ballot that is no longer current.
    Stale,
    /// The driver had not drained the previous outputs; the input was refused.
    Backlog,
}

impl DropReason {
    /// Every reason, in the order of [`Drops`]' fields.
    pub const ALL: [DropReason; 12] = [
        DropReason::Oversized,
        DropReason::Malformed,
        DropReason::BadTag,
        DropReason::NewerProtocol,
        DropReason::OlderProtocol,
        DropReason::WrongRenewal,
        DropReason::WrongCluster,
        DropReason::NotMember,
        DropReason::SourceMismatch,
        DropReason::BadField,
        DropReason::Stale,
        DropReason::Backlog,
    ];

    /// A short snake_case name, for logs and metric labels.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::Oversized => "oversized",
            DropReason::Malformed => "malformed",
            DropReason::BadTag => "bad_tag",
            DropReason::NewerProtocol => "newer_protocol",
            DropReason::OlderProtocol => "older_protocol",
            DropReason::WrongRenewal => "wrong_renewal",
            DropReason::WrongCluster => "wrong_cluster",
            DropReason::NotMember => "not_member",
            DropReason::SourceMismatch => "source_mismatch",
            DropReason::BadField => "bad_field",
            DropReason::Stale => "stale",
            DropReason::Backlog => "backlog",
        }
    }

    /// Whether the drop is part of normal operation (late answers, repeats, a driver
    /// that fed inputs too fast) rather than bad traffic.
    pub const fn is_benign(self) -> bool {
        matches!(self, DropReason::Stale | DropReason::Backlog)
    }
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.label())
    }
}

/// Drop counters, one per [`DropReason`]. Each wraps at 2^32, like every counter of
/// [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Drops {
    /// [`DropReason::Oversized`].
    pub oversized: u32,
    /// [`DropReason::Malformed`].
    pub malformed: u32,
    /// [`DropReason::BadTag`].
    pub bad_tag: u32,
    /// [`DropReason::NewerProtocol`].
    pub newer_protocol: u32,
    /// [`DropReason::OlderProtocol`].
    pub older_protocol: u32,
    /// [`DropReason::WrongRenewal`].
    pub wrong_renewal: u32,
    /// [`DropReason::WrongCluster`].
    pub wrong_cluster: u32,
    /// [`DropReason::NotMember`].
    pub not_member: u32,
    /// [`DropReason::SourceMismatch`].
    pub source_mismatch: u32,
    /// [`DropReason::BadField`].
    pub bad_field: u32,
    /// [`DropReason::Stale`].
    pub stale: u32,
    /// [`DropReason::Backlog`].
    pub backlog: u32,
}

impl Drops {
    /// Counts one drop.
    pub fn add(&mut self, reason: DropReason) {
        let c = self.counter(reason);
        *c = c.wrapping_add(1);
    }

    /// The count of one reason.
    pub fn get(&self, reason: DropReason) -> u32 {
        let mut copy = *self;
        *copy.counter(reason)
    }

    fn counter(&mut self, reason: DropReason) -> &mut u32 {
        match reason {
            DropReason::Oversized => &mut self.oversized,
            DropReason::SourceMismatch => &mut self.source_mismatch,
            DropReason::Malformed => &mut self.malformed,
            DropReason::BadTag => &mut self.bad_tag,
            DropReason::NewerProtocol => &mut self.newer_protocol,
            DropReason::OlderProtocol => &mut self.older_protocol,
            DropReason::WrongRenewal => &mut self.wrong_renewal,
            DropReason::WrongCluster => &mut self.wrong_cluster,
            DropReason::NotMember => &mut self.not_member,
            DropReason::BadField => &mut self.bad_field,
            DropReason::Stale => &mut self.stale,
            DropReason::Backlog => &mut self.backlog,
        }
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        DropReason::ALL
            .iter()
            .map(|r| u64::from(self.get(*r)))
            .sum()
    }
}

/// A node's counters since it was built. Each is 32 bits and wraps at 2^32 (at a
/// thousand messages a second, after about 50 days): a monitoring system reads a wrap
/// as a counter reset, as it reads a restart. 32 bits halve the counters' share of the
/// node's memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Messages handed to `handle_message` (also through `handle_frame`) with room to
    /// take them.
    pub messages_in: u32,
    /// `Send` outputs emitted (a send to all counts once).
    pub messages_out: u32,
    /// Inputs dropped, by reason.
    pub dropped: Drops,
    /// `Persist` outputs emitted.
    pub persists: u32,
    /// Campaigns started (BeMaster proposed while no master was live).
    pub elections_started: u32,
    /// Times this node became master.
    pub elections_won: u32,
    /// Renewals begun: [`Renewal::Lease`](crate::Renewal::Lease) rounds, or
    /// [`Renewal::Logged`](crate::Renewal::Logged) `BeMaster` renewals proposed.
    pub renewals: u32,
    /// Renewals that took effect: lease rounds a majority answered, or (logged mode)
    /// this master's own `BeMaster` renewals chosen.
    pub renewals_completed: u32,
    /// Lease renewal rounds that timed out without a majority.
    pub renewals_failed: u32,
    /// `Renew`s this node answered as a voter (each now guarded by it).
    pub renews_answered: u32,
    /// `Renew`s this node refused (not silent, but its register or promise disagreed,
    /// or a replayed seq).
    pub renews_refused: u32,
    /// `Prepare`s and `Accept`s refused because a guard named another node.
    pub guard_refusals: u32,
    /// Votes refused during the restart silence.
    pub silent_refusals: u32,
    /// Releases and hand-overs proposed.
    pub releases: u32,
    /// Paxos phases that timed out.
    pub round_timeouts: u32,
    /// Catch-up requests sent.
    pub catch_ups: u32,
    /// Snapshots installed.
    pub snapshots_installed: u32,
    /// Membership changes this node proposed as master.
    pub member_changes_proposed: u32,
    /// Membership changes applied (chosen and effective).
    pub member_changes_applied: u32,
    /// Calls with a `now` earlier than the previous one: each ends this node's own term
    /// at once.
    pub clock_regressions: u32,
    /// Outputs lost because the queue was full. Always zero unless the call protocol is
    /// broken in a way the node cannot see; tests assert it.
    pub queue_overflows: u32,
}

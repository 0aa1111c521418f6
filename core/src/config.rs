//! Cluster configuration: who the members are, and the timing that safety rests on.
//!
//! Every node of a cluster is first given the same member list; later changes go through
//! the register one member at a time ([`Node::add_member`](crate::Node::add_member),
//! [`Node::remove_member`](crate::Node::remove_member)), and `members` then follows it.
//! [`Config::validate`] returns a specific [`ConfigError`] for each bad setting; a
//! [`Node`](crate::Node) cannot be built from an invalid configuration.

use core::fmt;
use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::time::Duration;

/// A member's identity, unique within a cluster.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    postcard::experimental::max_size::MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeId(pub u16);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a member does in the election.
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
pub enum Role {
    /// Votes in Paxos and may become master.
    Candidate,
    /// Votes in Paxos (counts toward the majority) but never campaigns.
    Voter,
    /// Learns who the master is; never votes, never campaigns.
    Learner,
}

impl Role {
    /// Whether this role counts toward the Paxos majority.
    pub const fn votes(self) -> bool {
        !matches!(self, Role::Learner)
    }
}

/// One member of the cluster.
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
pub struct Member {
    /// The member's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Campaign preference among candidates: a higher value campaigns first after the
    /// master is lost; the others wait [`Config::priority_step`] per rank. All zero (the
    /// default) means no preference.
    pub priority: u8,
}

impl Member {
    /// A candidate with no priority.
    pub const fn candidate(id: u16) -> Self {
        Member {
            id: NodeId(id),
            role: Role::Candidate,
            priority: 0,
        }
    }
    /// A voter that never campaigns.
    pub const fn voter(id: u16) -> Self {
        Member {
            id: NodeId(id),
            role: Role::Voter,
            priority: 0,
        }
    }
    /// A non-voting learner.
    pub const fn learner(id: u16) -> Self {
        Member {
            id: NodeId(id),
            role: Role::Learner,
            priority: 0,
        }
    }
    /// The same member with a campaign priority.
    pub const fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }
}

/// The largest member count any configuration may have: quorums are tracked in a `u32`
/// bit set.
pub const MAX_MEMBERS: usize = 32;

/// The largest accepted clock-rate error bound, in parts per million (10 %).
pub const MAX_DRIFT_PPM: u32 = 100_000;

/// How the master keeps its role between changes of master.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    postcard::experimental::max_size::MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Renewal {
    /// Protocol 2 (the default): `Renew` rounds under the master's prepared ballot, one
    /// round trip, nothing written; voters guard the master for a lease on their own
    /// clock. Only changes of master go through the register. See `docs/algorithm.md`.
    #[default]
    Lease,
    /// The seed's renewal (PhxPaxos): every renewal chooses a fresh `BeMaster` through
    /// Multi-Paxos, written by every voter. Kept as the comparison.
    Logged,
}

impl Renewal {
    /// `lease` or `logged`.
    pub const fn label(self) -> &'static str {
        match self {
            Renewal::Lease => "lease",
            Renewal::Logged => "logged",
        }
    }
}

impl fmt::Display for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Everything a node needs to know about its cluster. `N` is the member capacity.
///
/// Build one with [`Config::new`], adjust the public fields, and let
/// [`Node::first_boot`](crate::Node::first_boot) or [`Node::restore`](crate::Node::restore)
/// validate it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config<const N: usize> {
    /// Identifies the cluster on the wire; messages of another cluster are dropped.
    pub cluster_id: u32,
    /// This node's id; must be one of `members`.
    pub node_id: NodeId,
    /// Every member, this node included. Same list on every node. After a membership
    /// change the node's own copy follows the register (see
    /// [`Node::members`](crate::Node::members)).
    pub members: Vec<Member, N>,
    /// How long other nodes believe in a master after they learn of it.
    pub lease: Duration,
    /// Bound on the relative rate error between any two nodes' clocks, in parts per
    /// million (0..=100_000). The master's own term is shortened by it.
    pub drift_ppm: u32,
    /// Extra margin taken off the master's own term (scheduling and processing delays).
    pub guard: Duration,
    /// How long a Paxos phase may wait for a majority before it is retried (doubled
    /// after each failed phase, up to four times, until a value is learned again). A
    /// phase includes the proposer's own durable write and a voter's, so set it to at
    /// least the round-trip time plus two record writes.
    pub round_timeout: Duration,
    /// The largest random pause before a failed phase is retried (dueling proposers);
    /// the range doubles after each failed phase, up to 32 times, until a value is
    /// learned again.
    pub max_backoff: Duration,
    /// Extra wait per priority rank before a less preferred candidate campaigns.
    pub priority_step: Duration,
    /// After a hand-over, how long the others let the named successor go first.
    pub handover_grace: Duration,
    /// Seed of the node's jitter generator. Give each node and each start a different one
    /// where possible (the core also mixes in the node id and incarnation).
    pub seed: u64,
    /// Frame authentication. [`Config::new`] leaves it [`Auth::Insecure`]; set a cluster
    /// key for any network others can reach (see [`crate::auth`]).
    pub auth: Auth,
    /// How the master renews its role; every member must use the same (frames of the
    /// other mode are refused).
    pub renewal: Renewal,
    /// [`Renewal::Lease`]: how often the master begins a renewal round (`None`, the
    /// default: a sixth of the lease). See [`Config::renew_every`].
    pub renew_every: Option<Duration>,
    /// [`Renewal::Lease`]: the master begins no round later than this after its last
    /// round a majority answered, then lets its term run out (`None`, the default: a
    /// third of the lease). A master that can send but not hear is replaced within about
    /// `lease + try_window + round_timeout`. See [`Config::try_window`].
    pub try_window: Option<Duration>,
}

impl<const N: usize> Config<N> {
    /// A configuration with sensible defaults for a LAN: lease 1 s, drift bound 1 %,
    /// guard 10 ms, round timeout 50 ms, backoff up to 50 ms, priority step 100 ms,
    /// hand-over grace 200 ms, seed 0, no frame authentication, [`Renewal::Lease`] with a
    /// round every sixth of the lease and a try window of a third of it.
    pub fn new(cluster_id: u32, node_id: NodeId, members: &[Member]) -> Result<Self, ConfigError> {
        let members = Vec::from_slice(members).map_err(|_| ConfigError::TooManyMembers {
            count: members.len(),
            capacity: N.min(MAX_MEMBERS),
        })?;
        Ok(Config {
            cluster_id,
            node_id,
            members,
            lease: Duration::from_secs(1),
            drift_ppm: 10_000,
            guard: Duration::from_millis(10),
            round_timeout: Duration::from_millis(50),
            max_backoff: Duration::from_millis(50),
            priority_step: Duration::from_millis(100),
            handover_grace: Duration::from_millis(200),
            seed: 0,
            auth: Auth::Insecure,
            renewal: Renewal::Lease,
            renew_every: None,
            try_window: None,
        })
    }

    /// Checks every setting and returns the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.len() > MAX_MEMBERS {
            return Err(ConfigError::TooManyMembers {
                count: self.members.len(),
                capacity: MAX_MEMBERS,
            });
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].iter().any(|o| o.id == m.id) {
                return Err(ConfigError::DuplicateMember(m.id));
            }
        }
        if self.member(self.node_id).is_none() {
            return Err(ConfigError::SelfNotMember(self.node_id));
        }
        if self.voter_count() == 0 {
            return Err(ConfigError::NoVoters);
        }
        if !self.members.iter().any(|m| m.role == Role::Candidate) {
            return Err(ConfigError::NoCandidates);
        }
        if self.lease == Duration::ZERO {
            return Err(ConfigError::ZeroLease);
        }
        if self.round_timeout == Duration::ZERO {
            return Err(ConfigError::ZeroRoundTimeout);
        }
        if self.drift_ppm > MAX_DRIFT_PPM {
            return Err(ConfigError::DriftOutOfRange(self.drift_ppm));
        }
        if self.renewal == Renewal::Lease {
            let (renew_every, try_window) = (self.renew_every(), self.try_window());
            if renew_every == Duration::ZERO || renew_every > try_window {
                return Err(ConfigError::RenewEvery {
                    renew_every,
                    try_window,
                });
            }
            if try_window.saturating_add(self.round_timeout) >= self.master_lease() {
                return Err(ConfigError::TryWindow {
                    try_window,
                    master_lease: self.master_lease(),
                });
            }
        }
        // A term must leave room for a renewal round, a retry, and the next renewal.
        let needed = self.round_timeout.saturating_mul(MIN_ROUNDS_PER_TERM);
        if self.master_lease() < needed {
            return Err(ConfigError::LeaseTooShort {
                master_lease: self.master_lease(),
                needed,
            });
        }
        Ok(())
    }

    /// The master's own term, counted from when it began proposing:
    /// `lease * (1 - drift) / (1 + drift) - guard`.
    ///
    /// SAFETY-OF-PROTOCOL: another node's view of the same lease starts no earlier (it
    /// learns the value after it was first sent) and runs `lease` on a clock that is at
    /// most `drift` faster or slower, so in real time the master's term always ends first.
    pub fn master_lease(&self) -> Duration {
        let ppm = u64::from(self.drift_ppm.min(MAX_DRIFT_PPM));
        self.lease
            .mul_ratio(1_000_000 - ppm, 1_000_000 + ppm)
            .saturating_sub(self.guard)
    }

    /// [`Renewal::Logged`]: how long after a term began the master proposes its
    /// renewal.
    pub fn renew_interval(&self) -> Duration {
        self.master_lease().mul_ratio(1, 3)
    }

    /// [`Renewal::Lease`]: the interval between renewal rounds (the field, or a sixth of
    /// the lease).
    pub fn renew_every(&self) -> Duration {
        self.renew_every.unwrap_or(self.lease.mul_ratio(1, 6))
    }

    /// [`Renewal::Lease`]: how long after its last completed round the master still
    /// begins rounds (the field, or a third of the lease).
    pub fn try_window(&self) -> Duration {
        self.try_window.unwrap_or(self.lease.mul_ratio(1, 3))
    }

    /// The member ids a send to `to` reaches: one member, or every member except this
    /// node.
    pub fn destinations(&self, to: crate::node::Destination) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.node_id;
        self.members
            .iter()
            .map(|m| m.id)
            .filter(move |id| match to {
                crate::node::Destination::All => *id != me,
                crate::node::Destination::Node(n) => *id == n,
            })
    }

    /// The member entry for `id`.
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The position of `id` in the member list.
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// Members that vote.
    pub fn voter_count(&self) -> usize {
        self.members.iter().filter(|m| m.role.votes()).count()
    }

    /// Votes needed for a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voter_count() / 2 + 1
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.member(self.node_id)
            .map(|m| m.role)
            .unwrap_or(Role::Learner)
    }

    /// How many candidates are strictly preferred to `id`.
    pub(crate) fn priority_rank(&self, id: NodeId) -> u64 {
        let mine = self.member(id).map(|m| m.priority).unwrap_or(0);
        self.members
            .iter()
            .filter(|m| m.role == Role::Candidate && m.priority > mine)
            .count() as u64
    }
}

/// Round timeouts that must fit in a master's term.
pub const MIN_ROUNDS_PER_TERM: u64 = 4;

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// More members than the capacity (`N`, at most [`MAX_MEMBERS`]).
    TooManyMembers {
        /// Members given.
        count: usize,
        /// Members allowed.
        capacity: usize,
    },
    /// The same id appears twice.
    DuplicateMember(NodeId),
    /// `node_id` is not in `members`.
    SelfNotMember(NodeId),
    /// No member votes.
    NoVoters,
    /// No member may become master.
    NoCandidates,
    /// `lease` is zero.
    ZeroLease,
    /// `round_timeout` is zero.
    ZeroRoundTimeout,
    /// `drift_ppm` is above 100 000 (10 %).
    DriftOutOfRange(u32),
    /// [`Renewal::Lease`]: `renew_every` is zero or longer than `try_window`.
    RenewEvery {
        /// As configured.
        renew_every: Duration,
        /// As configured.
        try_window: Duration,
    },
    /// [`Renewal::Lease`]: `try_window` plus a round timeout does not fit in the
    /// master's term.
    TryWindow {
        /// As configured.
        try_window: Duration,
        /// The master's term (lease shortened by drift and guard).
        master_lease: Duration,
    },
    /// The master's term (`lease` shortened by drift and guard) does not hold enough
    /// round timeouts.
    LeaseTooShort {
        /// The master's term as configured.
        master_lease: Duration,
        /// The least term accepted: [`MIN_ROUNDS_PER_TERM`] round timeouts.
        needed: Duration,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::TooManyMembers { count, capacity } => {
                write!(f, "{count} members given, capacity is {capacity}")
            }
            ConfigError::DuplicateMember(id) => write!(f, "member {id} is listed twice"),
            ConfigError::SelfNotMember(id) => {
                write!(f, "this node ({id}) is not in the member list")
            }
            ConfigError::NoVoters => write!(f, "no member votes (all are learners)"),
            ConfigError::NoCandidates => write!(f, "no member is a candidate"),
            ConfigError::ZeroLease => write!(f, "lease must be longer than zero"),
            ConfigError::ZeroRoundTimeout => write!(f, "round timeout must be longer than zero"),
            ConfigError::DriftOutOfRange(ppm) => write!(
                f,
                "drift bound {ppm} ppm is outside 0..={MAX_DRIFT_PPM} ppm (0 to 10 %)"
            ),
            ConfigError::RenewEvery {
                renew_every,
                try_window,
            } => write!(
                f,
                "renew_every {renew_every} must be above zero and at most try_window \
                 {try_window}"
            ),
            ConfigError::TryWindow {
                try_window,
                master_lease,
            } => write!(
                f,
                "try_window {try_window} plus one round timeout must be shorter than the \
                 master term {master_lease} (lease minus drift and guard)"
            ),
            ConfigError::LeaseTooShort {
                master_lease,
                needed,
            } => write!(
                f,
                "master term {master_lease} (lease minus drift and guard) is shorter than \
                 {MIN_ROUNDS_PER_TERM} round timeouts ({needed}); lengthen the lease or \
                 shorten the round timeout"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Config<5> {
        Config::new(
            1,
            NodeId(1),
            &[
                Member::candidate(1),
                Member::candidate(2),
                Member::candidate(3),
            ],
        )
        .unwrap()
    }

    #[test]
    fn defaults_are_valid_and_master_term_is_shortened() {
        let c = three();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.quorum(), 2);
        // 1 s * 0.99 / 1.01 - 10 ms
        assert_eq!(c.master_lease().as_micros(), 980_198 - 10_000);
        assert!(c.renew_interval() < c.master_lease());
    }

    #[test]
    fn each_bad_setting_has_its_own_error() {
        let mut c = three();
        c.node_id = NodeId(9);
        assert_eq!(c.validate(), Err(ConfigError::SelfNotMember(NodeId(9))));

        let mut c = three();
        c.members[2].id = NodeId(1);
        assert_eq!(c.validate(), Err(ConfigError::DuplicateMember(NodeId(1))));

        let too_many = [Member::candidate(1); 6];
        assert_eq!(
            Config::<5>::new(1, NodeId(1), &too_many).unwrap_err(),
            ConfigError::TooManyMembers {
                count: 6,
                capacity: 5
            }
        );

        let mut c = three();
        c.drift_ppm = 100_001;
        assert_eq!(c.validate(), Err(ConfigError::DriftOutOfRange(100_001)));

        let mut c = three();
        c.lease = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::ZeroLease));

        let mut c = three();
        c.round_timeout = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::ZeroRoundTimeout));

        let mut c = three();
        c.renew_every = Some(c.try_window() + Duration::from_millis(1));
        assert!(matches!(c.validate(), Err(ConfigError::RenewEvery { .. })));

        let mut c = three();
        c.try_window = Some(c.lease);
        assert!(matches!(c.validate(), Err(ConfigError::TryWindow { .. })));

        let mut c = three();
        c.lease = Duration::from_millis(150);
        c.renewal = Renewal::Logged;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::LeaseTooShort { .. })
        ));

        let mut c = three();
        for m in c.members.iter_mut() {
            m.role = Role::Learner;
        }
        assert_eq!(c.validate(), Err(ConfigError::NoVoters));

        let mut c = three();
        for m in c.members.iter_mut() {
            m.role = Role::Voter;
        }
        assert_eq!(c.validate(), Err(ConfigError::NoCandidates));
    }

    #[test]
    fn priority_rank_counts_preferred_candidates() {
        let mut c = three();
        c.members[0].priority = 2;
        c.members[1].priority = 1;
        assert_eq!(c.priority_rank(NodeId(1)), 0);
        assert_eq!(c.priority_rank(NodeId(2)), 1);
        assert_eq!(c.priority_rank(NodeId(3)), 2);
    }
}

//! The election state machine, on top of the replicated register.
//!
//! It sees Paxos only through two calls: it hands the node an [`Op`] to propose, and it
//! is told, in instance order, which op was chosen for each instance (`apply`) or, when
//! this node was far behind, the state after some instance (`install`). Nothing here
//! knows about ballots or acceptors.
//!
//! The rules (see `docs/algorithm.md`):
//! - An op carries the version (instance id) its proposer believed current; applied
//!   against any other version it is ignored (optimistic lock: a node that missed
//!   renewals cannot steal the role). In this register an op is only ever proposed in
//!   the instance its version was read from, so the check is a second line of defence:
//!   the model checker finds the same reachable states with it disabled.
//! - The master's own term runs from when it began proposing the op that made it master
//!   (kept per own op id) for `master_lease`; every other node's view runs from when it
//!   learned the op for the full `lease`.
//! - After a restart, or for an own op whose begin time is unknown, the node does not
//!   believe it is master.

use core::fmt;
use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Member, NodeId, Renewal, Role};
use crate::rand::Rng;
use crate::time::{Duration, Instant};

/// Identifies one of a node's own operations; unique across restarts because the
/// incarnation is stored in the durable record and increased at every restore.
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
pub struct OpId {
    /// The proposer's incarnation (restart count).
    pub incarnation: u32,
    /// Sequence number within the incarnation.
    pub seq: u32,
}

/// An operation of the election state machine: the values Paxos chooses.
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
pub enum Op {
    /// `node` asks to be master, believing `version` is current.
    BeMaster {
        /// The node that wants the role.
        node: NodeId,
        /// The version its proposer saw (`None`: no op applied yet).
        version: Option<u64>,
        /// The lease other nodes grant it, counted from when they learn it.
        lease: Duration,
        /// Distinguishes this op from equal-looking ones.
        id: OpId,
    },
    /// The master `node` gives up the role at `version`, optionally naming a successor.
    Release {
        /// The master releasing.
        node: NodeId,
        /// The version it was master at.
        version: u64,
        /// A candidate the others let go first for a short grace period.
        successor: Option<NodeId>,
        /// Distinguishes this op from equal-looking ones.
        id: OpId,
    },
    /// The master `node` changes the member list by one member, believing `version`
    /// current (the optimistic lock: a second change proposed against the same version
    /// has no effect). It takes effect right after its instance: the next instance is
    /// decided by the new list. See `docs/algorithm.md` §9.
    Reconfigure {
        /// The master proposing the change.
        node: NodeId,
        /// The version it was master at.
        version: u64,
        /// The one member added or removed.
        change: Change,
        /// The digest of the list the change makes (every node records it, so the
        /// register's state is the same everywhere even on a node whose own list is
        /// not the register's; such a node then fetches the list).
        digest: u32,
        /// Distinguishes this op from equal-looking ones.
        id: OpId,
    },
}

/// One membership change: a single member added or removed.
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
pub enum Change {
    /// Add this member (its id must be new).
    Add(Member),
    /// Remove the member with this id (the master itself included: its term ends).
    Remove(NodeId),
    /// Planted fault only (`TwoMemberStep`, test-only build): two members changed in
    /// one step. Exists only in the `tenure-fault` build of this source.
    #[cfg(tenure_fault_injection)]
    Swap {
        /// Removed.
        remove: NodeId,
        /// Added.
        add: Member,
    },
}

impl Op {
    /// The node that proposed the op.
    pub fn node(&self) -> NodeId {
        match *self {
            Op::BeMaster { node, .. } | Op::Release { node, .. } | Op::Reconfigure { node, .. } => {
                node
            }
        }
    }
    /// The op's id (unique per proposing node).
    pub fn id(&self) -> OpId {
        match *self {
            Op::BeMaster { id, .. } | Op::Release { id, .. } | Op::Reconfigure { id, .. } => id,
        }
    }
}

/// The replicated part of the election: what every node agrees on after applying the
/// same instances. It is also the catch-up snapshot and part of the durable record.
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
pub struct ElectionState {
    /// The node the last effective op made master (`None`: never, or released).
    pub master: Option<NodeId>,
    /// The instance of the last effective op (`None`: none yet).
    pub version: Option<u64>,
    /// The lease granted by the last effective BeMaster.
    pub lease: Duration,
    /// The id of the last effective op.
    pub op: Option<OpId>,
    /// The successor named by the last effective release, if any.
    pub successor: Option<NodeId>,
    /// The instance of the op that began the holder's term: its fencing token in
    /// [`Renewal::Lease`]. A [`Op::Reconfigure`] moves `version`, not `term`.
    pub term: Option<u64>,
    /// The instance of the last effective [`Op::Reconfigure`] (`None`: the member list
    /// is the one every node was configured with).
    pub members_version: Option<u64>,
    /// A digest of the member list in force after `members_version` (0 with none), so
    /// a node that installs a snapshot can tell whether its own list is the register's.
    pub members_digest: u32,
}

struct Version(Option<u64>);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "v{v}"),
            None => write!(f, "v-"),
        }
    }
}

/// `BeMaster(n2 at v11 #1.4)`, `Release(n2 at v12 to n3 #1.5)`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::BeMaster {
                node, version, id, ..
            } => write!(
                f,
                "BeMaster(n{node} at {} #{}.{})",
                Version(version),
                id.incarnation,
                id.seq
            ),
            Op::Reconfigure {
                node,
                version,
                change,
                id,
                ..
            } => {
                write!(f, "Reconfigure(n{node} at v{version} ")?;
                match change {
                    Change::Add(m) => write!(f, "add n{}", m.id)?,
                    Change::Remove(n) => write!(f, "remove n{n}")?,
                    #[cfg(tenure_fault_injection)]
                    Change::Swap { remove, add } => write!(f, "swap n{remove} for n{}", add.id)?,
                }
                write!(f, " #{}.{})", id.incarnation, id.seq)
            }
            Op::Release {
                node,
                version,
                successor,
                id,
            } => {
                write!(f, "Release(n{node} at v{version}")?;
                if let Some(s) = successor {
                    write!(f, " to n{s}")?;
                }
                write!(f, " #{}.{})", id.incarnation, id.seq)
            }
        }
    }
}

/// `master=n2 v11 op#1.4`, `master=none v12 op#1.5 successor=n3`.
impl fmt::Display for ElectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.master {
            Some(m) => write!(f, "master=n{m} {}", Version(self.version))?,
            None => write!(f, "master=none {}", Version(self.version))?,
        }
        if let Some(op) = self.op {
            write!(f, " op#{}.{}", op.incarnation, op.seq)?;
        }
        if let Some(s) = self.successor {
            write!(f, " successor=n{s}")?;
        }
        if let Some(m) = self.members_version {
            write!(f, " members@v{m}")?;
        }
        Ok(())
    }
}

/// Own ops whose begin time is remembered. Older ones, if chosen late, apply as already
/// expired (safe).
const BEGINS: usize = 4;

/// The election state machine of one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Election {
    me: NodeId,
    pub(crate) state: ElectionState,
    /// End of the holder's lease in this node's view (for itself: the end of its term).
    pub(crate) expires_at: Instant,
    /// When this node began proposing each of its recent own ops.
    begins: Vec<(OpId, Instant), BEGINS>,
    /// `Some(successor)` while this node is releasing the role.
    pub(crate) releasing: Option<Option<NodeId>>,
    /// When this node will campaign if there is still no live master.
    pub(crate) campaign_at: Option<Instant>,
    /// When the master proposes its next renewal.
    pub(crate) renew_at: Option<Instant>,
    /// After releasing, this node leaves the role to others for a lease.
    quiet_until: Instant,
    /// Restart silence (R6): no campaign before this instant, not even as a named
    /// successor.
    pub(crate) silent_until: Instant,
    pub(crate) incarnation: u32,
    next_seq: u32,
    /// This node's member list is not known to be the register's (a joining node, or
    /// one that could not follow a change): it does not campaign.
    pub(crate) standby: bool,
    /// Test-only fault: apply BeMaster ops whatever their version.
    #[cfg(tenure_fault_injection)]
    pub(crate) ignore_version_check: bool,
}

/// What `evaluate` wants proposed, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    Campaign(Op),
    Renew(Op),
    Release(Op),
}

impl Election {
    pub(crate) fn new(me: NodeId, state: ElectionState, incarnation: u32) -> Self {
        Election {
            me,
            state,
            expires_at: Instant::ZERO,
            begins: Vec::new(),
            releasing: None,
            campaign_at: None,
            renew_at: None,
            quiet_until: Instant::ZERO,
            silent_until: Instant::ZERO,
            incarnation,
            next_seq: 0,
            standby: false,
            #[cfg(tenure_fault_injection)]
            ignore_version_check: false,
        }
    }

    /// The holder whose lease is live at `now` in this node's view.
    pub(crate) fn live_master(&self, now: Instant) -> Option<NodeId> {
        match self.state.master {
            Some(m) if now < self.expires_at => Some(m),
            _ => None,
        }
    }

    fn begin_of(&self, id: OpId) -> Option<Instant> {
        self.begins.iter().find(|(i, _)| *i == id).map(|(_, t)| *t)
    }

    /// When this node began proposing the op that made it holder, if it is the holder
    /// and remembers.
    pub(crate) fn own_begin(&self) -> Option<Instant> {
        match self.state.master {
            Some(m) if m == self.me => self.state.op.and_then(|id| self.begin_of(id)),
            _ => None,
        }
    }

    /// [`Renewal::Lease`]: a round that began at `begin` completed; the own term runs to
    /// at least `until`. A term that already ended stays ended (R9).
    pub(crate) fn extend_own_term(&mut self, now: Instant, until: Instant) {
        if self.live_master(now) == Some(self.me) {
            self.expires_at = self.expires_at.max(until);
        }
    }

    /// [`Renewal::Lease`]: this node guards (or, as a learner, heard renew) the holder
    /// `holder` until `until`: its view of that holder lasts at least as long. Never
    /// for this node's own term (R7: a holder's term comes only from its own begin).
    pub(crate) fn extend_view(&mut self, holder: NodeId, until: Instant) {
        if holder != self.me && self.state.master == Some(holder) {
            self.expires_at = self.expires_at.max(until);
        }
    }

    /// R13: the clock went back to `now`. The own term ends at once, and every begin
    /// time (taken on the clock that is no longer trusted) is forgotten, so an own op
    /// chosen later applies as already expired.
    pub(crate) fn clock_regressed(&mut self, now: Instant) {
        if self.state.master == Some(self.me) {
            self.expires_at = self.expires_at.min(now);
        }
        self.begins.clear();
        self.renew_at = None;
    }

    /// Sets `expires_at` for the current holder, learned at `now` (apply, snapshot or
    /// restart).
    fn start_view<const N: usize>(&mut self, now: Instant, cfg: &Config<N>) {
        self.start_view_aged(now, cfg, Duration::ZERO);
    }

    /// [`start_view`](Self::start_view) for an op that was already `age` old when
    /// learned (R8): others count the holder's view from `now - age`.
    fn start_view_aged<const N: usize>(&mut self, now: Instant, cfg: &Config<N>, age: Duration) {
        self.renew_at = None;
        match self.state.master {
            Some(m) if m == self.me => {
                // SAFETY-OF-PROTOCOL: the term counts from the begin of this very op, which
                // is no later than its first send and so no later than anyone's learn time.
                // Unknown begin (restart, forgotten at release, evicted): already expired.
                match self.state.op.and_then(|id| self.begin_of(id)) {
                    Some(begin) => {
                        self.expires_at = begin + cfg.master_lease();
                        if cfg.renewal == Renewal::Logged {
                            self.renew_at = Some(begin + cfg.renew_interval());
                        }
                    }
                    None => self.expires_at = now,
                }
            }
            Some(_) => self.expires_at = now + self.state.lease.saturating_sub(age),
            None => self.expires_at = now,
        }
    }

    /// Applies the op chosen for `instance`, learned when it was `age` old. Returns
    /// whether it took effect.
    pub(crate) fn apply<const N: usize>(
        &mut self,
        instance: u64,
        op: Op,
        now: Instant,
        cfg: &Config<N>,
        age: Duration,
    ) -> bool {
        match op {
            Op::BeMaster {
                node,
                version,
                lease,
                id,
            } => {
                #[cfg(tenure_fault_injection)]
                let stale = version != self.state.version && !self.ignore_version_check;
                #[cfg(not(tenure_fault_injection))]
                let stale = version != self.state.version;
                if stale {
                    return false; // the proposer had not seen the latest op
                }
                self.state = ElectionState {
                    master: Some(node),
                    version: Some(instance),
                    lease,
                    op: Some(id),
                    successor: None,
                    term: Some(instance),
                    ..self.state
                };
            }
            Op::Release {
                node,
                version,
                successor,
                id,
            } => {
                if Some(version) != self.state.version || self.state.master != Some(node) {
                    return false;
                }
                self.state = ElectionState {
                    master: None,
                    version: Some(instance),
                    op: Some(id),
                    successor,
                    term: None,
                    ..self.state
                };
                if node == self.me {
                    self.releasing = None;
                    self.quiet_until = now + cfg.lease;
                }
            }
            // Applied by the node (crate::members), which owns the member list.
            Op::Reconfigure { .. } => return false,
        }
        self.campaign_at = None;
        self.start_view_aged(now, cfg, age);
        true
    }

    /// An effective [`Op::Reconfigure`] chosen in `instance`, by the holder: the version
    /// moves (so a second change against the same version has no effect), the term and
    /// the view go on unchanged, unless the holder removed itself: then the role is free
    /// at once, as after a release.
    pub(crate) fn apply_reconfigure<const N: usize>(
        &mut self,
        instance: u64,
        id: OpId,
        digest: u32,
        removes_holder: bool,
        now: Instant,
        cfg: &Config<N>,
    ) {
        self.state.version = Some(instance);
        self.state.op = Some(id);
        self.state.members_version = Some(instance);
        self.state.members_digest = digest;
        if removes_holder {
            if self.state.master == Some(self.me) {
                self.releasing = None;
                self.quiet_until = now + cfg.lease;
            }
            self.state.master = None;
            self.state.term = None;
            self.state.successor = None;
            self.campaign_at = None;
            self.start_view(now, cfg);
        }
    }

    /// The holder removes itself from the cluster: its term ends at once (before the
    /// command returns), as for a release, and it forgets every own begin time.
    pub(crate) fn step_down(&mut self, now: Instant, lease: Duration) {
        self.expires_at = self.expires_at.min(now);
        self.renew_at = None;
        self.begins.clear();
        self.quiet_until = self.quiet_until.max(now + lease);
        self.campaign_at = None;
    }

    /// Replaces the state with a snapshot learned at `now`.
    pub(crate) fn install<const N: usize>(
        &mut self,
        state: ElectionState,
        now: Instant,
        cfg: &Config<N>,
    ) {
        self.state = state;
        self.campaign_at = None;
        self.start_view(now, cfg);
    }

    /// After a restart: a stored master other than this node is counted afresh from now;
    /// this node never believes it is master.
    pub(crate) fn restart<const N: usize>(&mut self, now: Instant, cfg: &Config<N>) {
        self.start_view(now, cfg);
    }

    /// Gives up the role at once and forgets every own begin time, so a renewal still in
    /// flight cannot make this node master again when it is chosen.
    pub(crate) fn release(&mut self, now: Instant, successor: Option<NodeId>) {
        self.expires_at = now;
        self.renew_at = None;
        self.begins.clear();
        self.releasing = Some(successor);
    }

    /// No campaign before `until` (unless named successor of a hand-over).
    pub(crate) fn stay_away_until(&mut self, until: Instant) {
        if until > self.quiet_until {
            self.quiet_until = until;
            self.campaign_at = None; // recomputed against the new quiet time
        }
    }

    /// Ask to campaign now (if the role is free and this node may campaign).
    pub(crate) fn campaign_now(&mut self, now: Instant) {
        self.campaign_at = Some(now.max(self.silent_until));
        self.quiet_until = now;
    }

    pub(crate) fn new_op_id(&mut self) -> OpId {
        self.next_seq = self.next_seq.wrapping_add(1);
        OpId {
            incarnation: self.incarnation,
            seq: self.next_seq,
        }
    }

    fn remember_begin(&mut self, id: OpId, now: Instant) {
        if self.begins.is_full() {
            self.begins.remove(0);
        }
        let _ = self.begins.push((id, now));
    }

    fn be_master_op<const N: usize>(&mut self, now: Instant, cfg: &Config<N>) -> Op {
        let id = self.new_op_id();
        // The begin time is taken here, before the op exists anywhere else: it cannot be
        // later than the op's first send.
        self.remember_begin(id, now);
        Op::BeMaster {
            node: self.me,
            version: self.state.version,
            lease: cfg.lease,
            id,
        }
    }

    fn campaign_delay<const N: usize>(
        &self,
        now: Instant,
        cfg: &Config<N>,
        rng: &mut Rng,
    ) -> Instant {
        let jitter = Duration::from_micros(rng.below(cfg.round_timeout.as_micros()));
        let mut delay = cfg
            .priority_step
            .saturating_mul(cfg.priority_rank(self.me))
            .saturating_add(jitter);
        if self.state.master.is_none() {
            match self.state.successor {
                Some(s) if s == self.me => delay = Duration::ZERO,
                Some(_) => delay = delay.saturating_add(cfg.handover_grace),
                None => {}
            }
        }
        let at = (now + delay).max(self.silent_until);
        let named_successor = self.state.master.is_none() && self.state.successor == Some(self.me);
        // A node that released recently stays away, unless it is the named successor of
        // a hand-over: then the others are waiting for it.
        if at < self.quiet_until && !named_successor {
            self.quiet_until + jitter
        } else {
            at
        }
    }

    /// Decides what, if anything, to propose now. `idle` says whether the register can
    /// take a proposal.
    pub(crate) fn evaluate<const N: usize>(
        &mut self,
        now: Instant,
        cfg: &Config<N>,
        rng: &mut Rng,
        idle: bool,
    ) -> Option<Intent> {
        if let Some(successor) = self.releasing {
            if self.state.master != Some(self.me) {
                self.releasing = None; // someone else holds it, or our release took effect
            } else if let (true, Some(version)) = (idle, self.state.version) {
                let id = self.new_op_id();
                return Some(Intent::Release(Op::Release {
                    node: self.me,
                    version,
                    successor,
                    id,
                }));
            } else {
                return None;
            }
        }
        if cfg.role() != Role::Candidate || self.standby {
            self.campaign_at = None;
            return None;
        }
        match self.live_master(now) {
            Some(m) if m == self.me => {
                self.campaign_at = None;
                if cfg.renewal == Renewal::Lease {
                    return None; // renewals are rounds, not ops (crate::lease)
                }
                match self.renew_at {
                    Some(at) if idle && now >= at => {
                        Some(Intent::Renew(self.be_master_op(now, cfg)))
                    }
                    _ => None,
                }
            }
            Some(_) => {
                self.campaign_at = None;
                self.renew_at = None;
                None
            }
            None => {
                // A term that ended (paused past it, or learned its renewal too late)
                // has nothing left to renew.
                self.renew_at = None;
                let at = match self.campaign_at {
                    Some(at) => at,
                    None => {
                        let at = self.campaign_delay(now, cfg, rng);
                        self.campaign_at = Some(at);
                        at
                    }
                };
                if idle && now >= at {
                    self.campaign_at = None;
                    Some(Intent::Campaign(self.be_master_op(now, cfg)))
                } else {
                    None
                }
            }
        }
    }
}

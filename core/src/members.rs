//! Membership changes through the register, one member at a time (`docs/algorithm.md`
//! §9).
//!
//! The master proposes an [`Op::Reconfigure`] with the one member added or removed and
//! the version it was master at; it is chosen like any other op, and every node applies
//! it in instance order. It takes effect right after its instance: the next instance is
//! decided by the new list. The master's term, the voters' guards and the fencing token
//! go on across it; a master that removes itself ends its term at once, like a release.
//! The next change is refused until the term is backed by a round (or, in
//! [`Renewal::Logged`], a renewal) completed under the new list.

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::config::{Member, NodeId, Renewal, Role, MAX_MEMBERS};
use crate::election::{Change, Op};
use crate::event::Event;
use crate::node::{Destination, Node};
use crate::time::Instant;
use crate::wire::{Message, MEMBERS_PER_PART};

/// Why a membership change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MembersError {
    /// Only the master may change the member list.
    NotMaster,
    /// A change is still being chosen, or the master has not yet completed a renewal
    /// under the list the last change made (one member at a time).
    ChangeInProgress,
    /// A member with this id is already in the list.
    DuplicateMember(NodeId),
    /// No member has this id.
    UnknownMember(NodeId),
    /// The change would leave the cluster without a candidate.
    LastCandidate,
    /// The list would exceed this node's capacity (`N`, at most [`MAX_MEMBERS`]).
    OverCapacity {
        /// The members the list may hold.
        capacity: usize,
    },
    /// The previous outputs were not drained.
    Backlog,
}

impl fmt::Display for MembersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembersError::NotMaster => write!(f, "only the master may change the members"),
            MembersError::ChangeInProgress => write!(
                f,
                "a membership change is in progress (one member at a time; the master must \
                 renew under the new list first)"
            ),
            MembersError::DuplicateMember(n) => write!(f, "node {n} is already a member"),
            MembersError::UnknownMember(n) => write!(f, "node {n} is not a member"),
            MembersError::LastCandidate => {
                write!(f, "the change would leave no candidate")
            }
            MembersError::OverCapacity { capacity } => {
                write!(f, "the cluster's capacity is {capacity} members")
            }
            MembersError::Backlog => write!(f, "outputs not drained"),
        }
    }
}

impl core::error::Error for MembersError {}

/// A member list of at most [`MAX_MEMBERS`], fixed size and `Copy`, for the durable
/// record. Encoded as a length and the members. Empty in a record of an older format:
/// the configured list is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemberList {
    len: u8,
    items: [Member; MAX_MEMBERS],
}

impl Default for MemberList {
    fn default() -> Self {
        MemberList {
            len: 0,
            items: [Member::learner(0); MAX_MEMBERS],
        }
    }
}

impl MemberList {
    /// The list (at most [`MAX_MEMBERS`]; longer input is cut, which validated
    /// configurations never give).
    pub fn from_slice(members: &[Member]) -> Self {
        let mut l = MemberList::default();
        for (slot, m) in l.items.iter_mut().zip(members) {
            *slot = *m;
        }
        l.len = members.len().min(MAX_MEMBERS) as u8;
        l
    }
    /// The members.
    pub fn as_slice(&self) -> &[Member] {
        &self.items[..usize::from(self.len).min(MAX_MEMBERS)]
    }
}

impl Serialize for MemberList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.as_slice().len()))?;
        for m in self.as_slice() {
            seq.serialize_element(m)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for MemberList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MemberList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {MAX_MEMBERS} members")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MemberList, A::Error> {
                let mut l = MemberList::default();
                while let Some(m) = seq.next_element::<Member>()? {
                    if usize::from(l.len) == MAX_MEMBERS {
                        return Err(serde::de::Error::invalid_length(MAX_MEMBERS + 1, &self));
                    }
                    l.items[usize::from(l.len)] = m;
                    l.len += 1;
                }
                Ok(l)
            }
        }
        d.deserialize_seq(V)
    }
}

impl postcard::experimental::max_size::MaxSize for MemberList {
    const POSTCARD_MAX_SIZE: usize = 1 + MAX_MEMBERS * Member::POSTCARD_MAX_SIZE;
}

/// What `change` removes and adds from `list`, if it is a valid change of it: an Add of
/// a new id, a Remove of a member that leaves a candidate.
fn changed(list: &[Member], change: Change) -> Option<(Option<NodeId>, Option<Member>)> {
    let leaves_candidate = |gone: NodeId| {
        list.iter()
            .any(|m| m.role == Role::Candidate && m.id != gone)
    };
    let has = |id: NodeId| list.iter().any(|m| m.id == id);
    match change {
        Change::Add(m) if !has(m.id) => Some((None, Some(m))),
        Change::Remove(n) if has(n) && leaves_candidate(n) => Some((Some(n), None)),
        #[cfg(tenure_fault_injection)]
        Change::Swap { remove, add } if has(remove) && !has(add.id) && leaves_candidate(remove) => {
            Some((Some(remove), Some(add)))
        }
        _ => None,
    }
}

/// FNV-1a over each member's id, role and priority, in list order: the register's
/// `members_digest`.
pub(crate) fn digest<'a>(members: impl Iterator<Item = &'a Member>) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for m in members {
        let role = match m.role {
            Role::Candidate => 1,
            Role::Voter => 2,
            Role::Learner => 3,
        };
        for b in [(m.id.0 & 0xff) as u8, (m.id.0 >> 8) as u8, role, m.priority] {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

impl<const N: usize> Node<N> {
    /// The member list in force at this node (the register's, once a change was applied).
    pub fn members(&self) -> &[Member] {
        &self.config.members
    }

    /// Whether this node is waiting to learn that its member list is the register's (a
    /// node started with [`Node::join`], or one that could not follow a change): it
    /// then votes for no one and does not campaign.
    pub fn is_standby(&self) -> bool {
        self.election.standby
    }

    /// Adds `member` to the cluster, through the register (master only). Returns once
    /// the change is proposed; it takes effect when chosen ([`Event::MembersChanged`]).
    /// Start the new member with [`Node::join`] and the new list.
    pub fn add_member(&mut self, member: Member, now: Instant) -> Result<(), MembersError> {
        let now = self.change_allowed(now)?;
        if self.config.member(member.id).is_some() {
            return Err(MembersError::DuplicateMember(member.id));
        }
        let capacity = N.min(MAX_MEMBERS);
        if self.config.members.len() >= capacity {
            return Err(MembersError::OverCapacity { capacity });
        }
        self.propose_change(now, Change::Add(member));
        Ok(())
    }

    /// Removes member `id` from the cluster, through the register (master only). A
    /// master that removes itself stops being master at once (before this call returns)
    /// and the role is free when the change is chosen, as after a release.
    pub fn remove_member(&mut self, id: NodeId, now: Instant) -> Result<(), MembersError> {
        let now = self.change_allowed(now)?;
        let Some(m) = self.config.member(id) else {
            return Err(MembersError::UnknownMember(id));
        };
        let candidates = self
            .config
            .members
            .iter()
            .filter(|m| m.role == Role::Candidate)
            .count();
        if m.role == Role::Candidate && candidates <= 1 {
            return Err(MembersError::LastCandidate);
        }
        if id == self.config.node_id {
            self.election.step_down(now, self.config.lease);
            self.renewer = None;
        }
        self.propose_change(now, Change::Remove(id));
        Ok(())
    }

    /// Test-only (planted fault `TwoMemberStep`): proposes a two-member change in one
    /// step. A correct node applies it as no change; with the fault on it is applied.
    #[cfg(tenure_fault_injection)]
    #[doc(hidden)]
    pub fn swap_member(
        &mut self,
        remove: NodeId,
        add: Member,
        now: Instant,
    ) -> Result<(), MembersError> {
        let now = self.change_allowed(now)?;
        if self.config.member(add.id).is_some() {
            return Err(MembersError::DuplicateMember(add.id));
        }
        if remove == self.config.node_id || self.config.member(remove).is_none() {
            return Err(MembersError::UnknownMember(remove));
        }
        self.propose_change(now, Change::Swap { remove, add });
        Ok(())
    }

    fn change_allowed(&mut self, now: Instant) -> Result<Instant, MembersError> {
        let now = self.advance(now);
        if !self.is_master(now) {
            return Err(MembersError::NotMaster);
        }
        if !self.has_room() {
            return Err(MembersError::Backlog);
        }
        if self.pending_change.is_some()
            || !(self.members_settled() || self.fault(crate::fault::Fault::ChangeWithoutRenewal))
        {
            return Err(MembersError::ChangeInProgress);
        }
        Ok(now)
    }

    /// Whether the master's term is backed by the list in force: its term op was chosen
    /// after the last change, or (lease mode) a renewal round it began after applying
    /// that change completed.
    fn members_settled(&self) -> bool {
        let state = &self.election.state;
        let Some(changed) = state.members_version else {
            return true;
        };
        if state.term.is_some_and(|t| t > changed) {
            return true;
        }
        self.config.renewal == Renewal::Lease
            && matches!(
                (self.members_changed_at, self.last_round_begin),
                (Some(at), Some(begin)) if begin > at
            )
    }

    fn propose_change(&mut self, now: Instant, change: Change) {
        let id = self.election.new_op_id();
        let digest = match changed(&self.config.members, change) {
            Some((removed, added)) => digest(
                self.config
                    .members
                    .iter()
                    .filter(|m| Some(m.id) != removed)
                    .chain(added.iter()),
            ),
            None => 0,
        };
        self.pending_change = Some(Op::Reconfigure {
            node: self.config.node_id,
            version: self.election.state.version.unwrap_or(0),
            change,
            digest,
            id,
        });
        self.stats.member_changes_proposed = self.stats.member_changes_proposed.wrapping_add(1);
        self.step(now);
    }

    /// The pending change, if it can still take effect (the node is still the holder at
    /// the version it was proposed against); a stale one is dropped.
    pub(crate) fn change_to_propose(&mut self) -> Option<Op> {
        let op = self.pending_change?;
        let state = &self.election.state;
        match op {
            Op::Reconfigure { node, version, .. }
                if state.master == Some(node) && state.version == Some(version) =>
            {
                Some(op)
            }
            _ => {
                self.pending_change = None;
                None
            }
        }
    }

    /// Applies the [`Op::Reconfigure`] chosen in `instance`. Returns whether it took
    /// effect: proposed by the holder at the current version, and a single change (a
    /// rule of the op alone, so every node decides alike; the register then records the
    /// op's digest). A node whose own list does not give that digest stands by and
    /// fetches the register's list.
    pub(crate) fn apply_reconfigure(&mut self, instance: u64, op: Op, now: Instant) -> bool {
        let Op::Reconfigure {
            node,
            version,
            change,
            digest: new_digest,
            id,
        } = op
        else {
            return false;
        };
        if self
            .pending_change
            .is_some_and(|p| p.id() == id && p.node() == node)
        {
            self.pending_change = None;
        }
        let state = self.election.state;
        if state.version != Some(version) || state.master != Some(node) {
            return false; // stale: another op came first
        }
        let single = match change {
            Change::Add(_) | Change::Remove(_) => true,
            #[cfg(tenure_fault_injection)]
            Change::Swap { .. } => self.fault(crate::fault::Fault::TwoMemberStep),
        };
        if !single {
            return false; // two members in one step: no effect anywhere
        }
        let (removed, added) = match change {
            Change::Add(m) => (None, Some(m)),
            Change::Remove(n) => (Some(n), None),
            #[cfg(tenure_fault_injection)]
            Change::Swap { remove, add } => (Some(remove), Some(add)),
        };
        let removes_holder = removed.is_some() && removed == state.master;
        if removes_holder {
            // The removed master's guards end with its term (R9).
            self.guards.drop_holder(node);
        }
        self.election.apply_reconfigure(
            instance,
            id,
            new_digest,
            removes_holder,
            now,
            &self.config,
        );
        // This node's new list, if its old one was the register's and the change fits.
        let mut list = heapless::Vec::<Member, N>::new();
        let mut ok =
            self.members_wanted.is_none() && changed(&self.config.members, change).is_some();
        if ok {
            for m in self
                .config
                .members
                .iter()
                .filter(|m| Some(m.id) != removed)
                .chain(added.iter())
            {
                ok &= list.push(*m).is_ok();
            }
            ok &= digest(list.iter()) == new_digest;
        }
        if ok {
            self.config.members = list;
            self.me_index = self.config.index_of(self.config.node_id).unwrap_or(0);
        } else {
            // Not the register's list (or over this node's capacity): keep out of the
            // votes rather than count majorities of another list, and fetch it.
            self.election.standby = true;
            self.members_wanted = Some((instance, new_digest));
            self.members_staged.clear();
            self.members_asked = None;
            self.event(Event::MemberListDiffers {
                version: Some(instance),
                followed: false,
            });
        }
        // Promises of the old list's majority prove nothing about the next change:
        // prepare again under the new list. Open renewal rounds counted old positions.
        if !self.fault(crate::fault::Fault::KeepPreparedAcrossChange) {
            self.proposer.forget_prepared();
        }
        let keep_rounds = self.fault(crate::fault::Fault::KeepRoundsAcrossChange);
        if let Some(r) = self.renewer.as_mut() {
            r.last_voters = crate::ballot::Votes::default(); // positions may have moved
            if !keep_rounds {
                r.drop_rounds();
            }
        }
        self.members_changed_at = Some(now);
        self.stats.member_changes_applied = self.stats.member_changes_applied.wrapping_add(1);
        self.event(Event::MembersChanged {
            version: instance,
            members: self.config.members.len() as u8,
        });
        self.persist();
        true
    }

    /// A snapshot was installed: whether the register's member list is this node's own.
    /// If not, the node stands by (votes for no one, does not campaign) and fetches the
    /// list ([`Message::MembersQuery`]).
    pub(crate) fn check_members_after_install(&mut self) {
        let state = self.election.state;
        let Some(version) = state.members_version else {
            return; // never changed: the configured list is in force
        };
        if digest(self.config.members.iter()) == state.members_digest {
            self.members_wanted = None;
            if self.election.standby
                && self.config.member(self.config.node_id).is_some()
                && !self.is_rejoining()
            {
                self.election.standby = false; // a joining member is in: it may vote
            }
        } else {
            self.election.standby = true;
            if self.members_wanted != Some((version, state.members_digest)) {
                self.members_wanted = Some((version, state.members_digest));
                self.members_staged.clear();
                self.members_asked = None;
            }
        }
    }

    /// Asks `from` for the member list this node is missing, at most once per round
    /// timeout.
    pub(crate) fn ask_members(&mut self, now: Instant, from: NodeId) {
        let Some((version, _)) = self.members_wanted else {
            return;
        };
        if self
            .members_asked
            .is_some_and(|at| now < at + self.config.round_timeout)
        {
            return;
        }
        self.members_asked = Some(now);
        let start = self.members_staged.len() as u8;
        self.send(
            Destination::Node(from),
            Message::MembersQuery { version, start },
        );
    }

    /// Answers a [`Message::MembersQuery`] for the list this node holds.
    pub(crate) fn answer_members(&mut self, to: NodeId, version: u64, start: u8) -> bool {
        if self.election.state.members_version != Some(version) || self.election.standby {
            return false;
        }
        let list = &self.config.members;
        let Some(rest) = list.get(usize::from(start)..).filter(|r| !r.is_empty()) else {
            return false;
        };
        let mut part = [None; MEMBERS_PER_PART];
        for (slot, m) in part.iter_mut().zip(rest) {
            *slot = Some(*m);
        }
        let total = list.len() as u8;
        self.send(
            Destination::Node(to),
            Message::MembersPart {
                version,
                total,
                start,
                part,
            },
        );
        true
    }

    /// Part of the member list this node is fetching.
    pub(crate) fn on_members_part(
        &mut self,
        now: Instant,
        from: NodeId,
        version: u64,
        total: u8,
        start: u8,
        part: &[Option<Member>; MEMBERS_PER_PART],
    ) -> bool {
        let Some((wanted, digest_wanted)) = self.members_wanted else {
            return false;
        };
        if wanted != version || usize::from(start) != self.members_staged.len() {
            return false;
        }
        for m in part.iter().flatten() {
            if self.members_staged.len() == usize::from(total) {
                break;
            }
            if self.members_staged.push(*m).is_err() {
                // Over this node's capacity: it cannot follow the register's list.
                self.members_wanted = None;
                self.event(Event::MemberListDiffers {
                    version: Some(version),
                    followed: false,
                });
                return true;
            }
        }
        if self.members_staged.len() < usize::from(total) {
            self.members_asked = None;
            self.ask_members(now, from);
            return true;
        }
        self.members_wanted = None;
        if digest(self.members_staged.iter()) != digest_wanted {
            self.members_staged.clear(); // not the register's list: ask again later
            self.members_wanted = Some((wanted, digest_wanted));
            return true;
        }
        self.config.members = core::mem::take(&mut self.members_staged);
        self.me_index = self.config.index_of(self.config.node_id).unwrap_or(0);
        // (A rejoining node votes only once the rejoin rule allows it, §10.)
        self.election.standby = self.is_rejoining();
        self.proposer.forget_prepared();
        self.event(Event::MemberListDiffers {
            version: Some(version),
            followed: true,
        });
        self.persist();
        true
    }
}

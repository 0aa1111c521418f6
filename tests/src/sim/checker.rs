//! The checker: invariants evaluated at every event of a run, on real time.
//!
//! It sees what no node can: real time, every node's state, every message sent and every
//! record stored. The world calls it as things happen; it records [`Violation`]s.

use std::collections::BTreeMap;
use std::fmt;

use tenure::{Ballot, ElectionState, Message, Op, Record};

/// Which invariant broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// Two nodes were master at the same real instant.
    TwoMasters,
    /// Two values were chosen in one instance, or a node applied a value other than the
    /// one chosen.
    Agreement,
    /// One ballot carried two different values in one instance.
    BallotReuse,
    /// A term of mastership (on the real-time timeline) began with a fencing token not
    /// strictly above every earlier term's, or one token spanned two separate periods of
    /// mastership.
    FencingToken,
    /// Two nodes map one version to different election states (masters).
    VersionConflict,
    /// A node's version went backwards (in memory, or on its disk).
    VersionRegressed,
    /// A node sent a message promising state its disk did not hold.
    Unpersisted,
    /// No master within the bound after faults stopped, or after the master crashed.
    Liveness,
    /// With faults stopped and a majority connected, the master changed or lapsed.
    Unstable,
    /// A packet did not survive encode and decode unchanged.
    Wire,
    /// A node counted something the call protocol rules out (queue overflow, clock
    /// regression), or queued other sends than its driver executed.
    CallProtocol,
    /// A node handled its timer, did nothing, and asked for the same past deadline
    /// again: a real driver would spin.
    TimerSpin,
    /// A run did not end within its event budget (a timer loop or livelock).
    Runaway,
    /// The same seed gave two different traces.
    Nondeterminism,
    /// Two nodes applied different member lists at the same instance (or decided one
    /// instance with different lists).
    MemberList,
}

impl ViolationKind {
    /// A safety property (as opposed to liveness, hygiene or a driver check).
    pub fn is_safety(self) -> bool {
        matches!(
            self,
            ViolationKind::TwoMasters
                | ViolationKind::FencingToken
                | ViolationKind::Agreement
                | ViolationKind::BallotReuse
                | ViolationKind::VersionConflict
                | ViolationKind::MemberList
        )
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What broke.
    pub kind: ViolationKind,
    /// Real time, microseconds since the run began.
    pub at: u64,
    /// The details.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at real {}: {}",
            self.kind,
            fmt_real(self.at),
            self.detail
        )
    }
}

/// Formats real microseconds as seconds.
pub fn fmt_real(micros: u64) -> String {
    format!("{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
}

/// Most violations kept per run (the first ones matter).
const MAX_VIOLATIONS: usize = 32;

/// Invariants over everything the nodes said and stored.
#[derive(Debug, Default)]
pub struct Checker {
    violations: Vec<Violation>,
    /// The voters (a bit per node index) that decide each instance, as its first voter
    /// or proposer reported them.
    voters: BTreeMap<u64, (usize, u32)>,
    /// The member list each membership change made, as the first node that applied it
    /// reported it.
    lists: BTreeMap<u64, (usize, Vec<tenure::Member>)>,
    /// The value each (instance, ballot) was proposed with.
    proposals: BTreeMap<(u64, Ballot), Op>,
    /// Who accepted each (instance, ballot).
    accepted_by: BTreeMap<(u64, Ballot), u32>,
    /// The value chosen in each instance (a majority accepted it).
    chosen: BTreeMap<u64, Op>,
    /// The election state each version maps to, and the node that first reported it.
    versions: BTreeMap<u64, (usize, ElectionState)>,
    /// Each node's version as last stored on its disk.
    disk_version: Vec<Option<u64>>,
}

impl Checker {
    /// A checker for `n` nodes.
    pub fn new(n: usize) -> Self {
        Checker {
            disk_version: vec![None; n],
            ..Checker::default()
        }
    }

    /// Node `i` holds `members` as the list made by the change chosen in instance
    /// `version` (`None`: the configured list): every node must apply the same list at
    /// the same instance.
    pub fn on_members(
        &mut self,
        at: u64,
        i: usize,
        version: Option<u64>,
        members: &[tenure::Member],
    ) {
        let Some(v) = version else {
            return;
        };
        match self.lists.get(&v) {
            Some((first, known)) if known.as_slice() != members => {
                let detail = format!(
                    "the change of instance {v}: node {} applied {known:?}, node {} {members:?}",
                    first + 1,
                    i + 1
                );
                self.report(ViolationKind::MemberList, at, detail);
            }
            Some(_) => {}
            None => {
                self.lists.insert(v, (i, members.to_vec()));
            }
        }
    }

    /// The violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Records a violation.
    pub fn report(&mut self, kind: ViolationKind, at: u64, detail: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation { kind, at, detail });
        }
    }

    /// How many instances have a known chosen value.
    pub fn chosen_count(&self) -> usize {
        self.chosen.len()
    }

    /// Node `i`, whose member list's voters are `voters` (a bit per node index), sent
    /// `msg` (before it left): tally proposals and acceptances.
    pub fn on_send(&mut self, at: u64, i: usize, voters: u32, msg: &Message) {
        if let Message::Accept { instance, .. } | Message::Accepted { instance, .. } = *msg {
            match self.voters.get(&instance) {
                Some(&(first, known)) if known != voters => self.report(
                    ViolationKind::MemberList,
                    at,
                    format!(
                        "instance {instance} decided by voters {known:#b} at node {}, \
                         {voters:#b} at node {}",
                        first + 1,
                        i + 1
                    ),
                ),
                Some(_) => {}
                None => {
                    self.voters.insert(instance, (i, voters));
                }
            }
        }
        match *msg {
            Message::Accept {
                instance,
                ballot,
                op,
                ..
            } => {
                match self.proposals.get(&(instance, ballot)) {
                    Some(&old) if old != op => self.report(
                        ViolationKind::BallotReuse,
                        at,
                        format!(
                            "node {} proposed {op:?} in instance {instance} under ballot \
                             {ballot:?}, which already carried {old:?}",
                            i + 1
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        self.proposals.insert((instance, ballot), op);
                    }
                }
                // The proposer accepted its own value before the Accept left (the
                // executor refuses an Accept its record does not hold).
                self.accepted(at, i, instance, ballot);
            }
            Message::Accepted { instance, ballot } => self.accepted(at, i, instance, ballot),
            _ => {}
        }
    }

    /// Whether a majority of `instance`'s voters accepted `ballot`'s proposal durably.
    fn durably_chosen(&self, instance: u64, ballot: Ballot) -> bool {
        let voters = self.voters.get(&instance).map_or(0, |v| v.1);
        let held = self
            .accepted_by
            .get(&(instance, ballot))
            .copied()
            .unwrap_or(0);
        (held & voters).count_ones() > voters.count_ones() / 2
    }

    fn accepted(&mut self, at: u64, i: usize, instance: u64, ballot: Ballot) {
        let voters = self.voters.get(&instance).map_or(0, |v| v.1);
        if voters & (1 << i) == 0 {
            return;
        }
        let votes = self.accepted_by.entry((instance, ballot)).or_insert(0);
        *votes |= 1 << i;
        if (*votes & voters).count_ones() < voters.count_ones() / 2 + 1 {
            return;
        }
        let Some(&op) = self.proposals.get(&(instance, ballot)) else {
            return;
        };
        match self.chosen.get(&instance) {
            Some(&old) if old != op => self.report(
                ViolationKind::Agreement,
                at,
                format!(
                    "two values chosen in instance {instance}: {old:?}, then {op:?} \
                     (ballot {ballot:?})"
                ),
            ),
            Some(_) => {}
            None => {
                self.chosen.insert(instance, op);
                if let Some((node, state)) = self.versions.get(&instance).copied() {
                    self.check_applied(at, node, instance, &state, op);
                }
            }
        }
    }

    /// Node `i` lost its record (it rejoins): its disk starts again from nothing.
    pub fn on_wipe(&mut self, i: usize) {
        self.disk_version[i] = None;
    }

    /// Node `i` stored `record`.
    pub fn on_persist(&mut self, at: u64, i: usize, record: &Record) {
        let v = record.election().version;
        if v < self.disk_version[i] {
            self.report(
                ViolationKind::VersionRegressed,
                at,
                format!(
                    "node {} stored version {v:?} after {:?}",
                    i + 1,
                    self.disk_version[i]
                ),
            );
        }
        self.disk_version[i] = v;
    }

    /// Node `i` holds `state` (its version changed to `state.version`).
    pub fn on_version(&mut self, at: u64, i: usize, state: &ElectionState) {
        let Some(v) = state.version else {
            return;
        };
        match self.versions.get(&v) {
            Some((first, known)) if known != state => {
                let first = *first;
                let known = *known;
                self.report(
                    ViolationKind::VersionConflict,
                    at,
                    format!(
                        "version {v}: node {} has {known:?}, node {} has {state:?}",
                        first + 1,
                        i + 1
                    ),
                )
            }
            Some(_) => {}
            None => {
                self.versions.insert(v, (i, *state));
            }
        }
        if let Some(&op) = self.chosen.get(&v) {
            self.check_applied(at, i, v, state, op);
        }
    }

    /// The state at version `v` must be the effect of the op chosen in instance `v`.
    fn check_applied(&mut self, at: u64, i: usize, v: u64, state: &ElectionState, op: Op) {
        let ok = match op {
            Op::BeMaster {
                node, lease, id, ..
            } => state.master == Some(node) && state.op == Some(id) && state.lease == lease,
            Op::Release { id, successor, .. } => {
                state.master.is_none() && state.op == Some(id) && state.successor == successor
            }
            Op::Reconfigure { id, digest, .. } => {
                state.op == Some(id)
                    && state.members_version == Some(v)
                    && state.members_digest == digest
            }
        };
        if !ok {
            self.report(
                ViolationKind::Agreement,
                at,
                format!(
                    "node {} holds {state:?} at version {v}, but instance {v} chose {op:?}",
                    i + 1
                ),
            );
        }
    }

    /// Persist before send: `msg`, about to leave node `i`, may promise only what its
    /// disk holds (the core's own rule, [`Record::covers`], on the simulated disk); a
    /// Commit names a proposal that a majority of the instance's voters hold on disk.
    pub fn check_durable(&mut self, at: u64, i: usize, disk: Option<&Record>, msg: &Message) {
        if let Message::Commit { instance, ballot } = *msg {
            if !self.durably_chosen(instance, ballot) {
                let held = self.accepted_by.get(&(instance, ballot)).copied();
                let voters = self.voters.get(&instance).map_or(0, |v| v.1);
                self.report(
                    ViolationKind::Unpersisted,
                    at,
                    format!(
                        "node {} sent {msg:?} but only nodes {:#b} of voters {voters:#b} \
                         hold that proposal on disk",
                        i + 1,
                        held.unwrap_or(0)
                    ),
                );
            }
            return;
        }
        if Record::covers(disk, msg) {
            return;
        }
        let detail = match disk {
            None => format!("node {} sent {msg:?} with nothing on disk", i + 1),
            Some(disk) => format!(
                "node {} sent {msg:?} but its disk holds instance {}, promised {:?}, \
                 accepted {:?}",
                i + 1,
                disk.instance(),
                disk.promised(),
                disk.accepted()
            ),
        };
        self.report(ViolationKind::Unpersisted, at, detail);
    }
}

//! The lease model: a custom stateright [`Model`] with a logical real-time clock, checking
//! that at most one node believes it is master at any real instant.
//!
//! It runs the unmodified core in either renewal mode ([`Timing::renewal`]); in protocol 2
//! ([`Renewal::Lease`](tenure::Renewal::Lease), the default) the master's `Renew` rounds,
//! the voters' guards and seq high-water marks, the open rounds and begin instants are
//! the nodes' volatile state: a crash loses them all, and the node comes back through
//! `Node::restore` from its last stored record, silent for a lease. Properties:
//!
//! - [`ONE_MASTER`]: never two nodes with `is_master` at the same real instant;
//! - [`ONE_OP_PER_INSTANCE`]: every node that applied instance `i` applied the same op;
//! - [`TOKENS_GROW`]: each period of mastership has a fencing token above every earlier
//!   period's (tokens strictly increase from term to term in real time, and one token
//!   never spans two periods).
//!
//! The planted faults of protocol 2 need more steps than a breadth-first search affords
//! from an election, so each has a tailored start ([`scenario`]): a scripted, reachable
//! [`Prelude`] that leads to where the fault matters.
//!
//! # Time
//!
//! The state holds the real time `now` (µs). Node `i` has a local clock running at a fixed
//! rate `1 - d` or `1 + d` of real time, where `d` is the configured drift bound
//! ([`Timing::drift_ppm`]): `local_i(now) = now · rate_i` (rounded down). Every assignment
//! of slow and fast clocks to the nodes is an initial state, so the search covers the
//! extreme rates in every combination (the worst cases for a lease: a slow master, fast
//! followers).
//!
//! Real time moves by [`LeaseAction::Advance`]: it jumps to the earliest real instant at
//! which some running node's next deadline ([`poll_timeout`](tenure::Node::poll_timeout))
//! is reached on that node's own clock. With [`LeaseOptions::tick`] it may also move by a
//! fixed step, so that messages can arrive between deadlines. Between two such instants no
//! node acts, and a lease can only run out, never start, so checking "at most one master"
//! at these instants is checking it at every instant.
//!
//! Everything else happens at the current real instant, each node reading its own clock:
//! delivering any message in flight (to a running node; any delay, any order), firing a
//! node's due timer (possibly late: a slow process), crashing a node and restoring it from
//! its saved record (with [`LeaseOptions::crashes`]), and commands (with
//! [`LeaseOptions::commands`]: a master may release or hand over once).
//!
//! # Start
//!
//! The search starts from the fresh cluster and, to spend the depth bound on what happens
//! after an election, also from the state right after the first election, reached from the
//! fresh cluster by a prompt, loss-free run of this same model (so it is reachable).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use stateright::{Model, Path, Property};
use tenure::{
    Config, Duration, ElectionState, Executor, Instant, Message, NodeId, Op, Packet, Record,
};

use super::driver::{self, Net};
use super::{
    config, describe_ballot, describe_state, index_of, node_id, Commands, Fault, FirstOnly, Limits,
    NodeKey, Report, TNode, Timing, Wire, CAP,
};

/// Property: at most one node believes it is master at any real instant.
pub const ONE_MASTER: &str = "at most one master at any real instant";
/// Property: every node that applied instance `i` applied the same op there (seen as the
/// election state right after it, and as the op of every `Chosen` sent for `i`).
pub const ONE_OP_PER_INSTANCE: &str = "one term op per instance";
/// Property: each period of mastership (a node believing it is master, from the first
/// instant to the last) has a fencing token strictly higher than every earlier period's,
/// so tokens grow from term to term in real time and one token never spans two periods.
pub const TOKENS_GROW: &str = "fencing tokens grow from period to period";
/// Example wanted: some node believes it is master.
pub const MASTER_ELECTED: &str = "a master is elected";
/// Example wanted: a node becomes master after another one was.
pub const MASTER_CHANGES: &str = "the master changes";
/// Example: a membership change took effect at some node (with [`Membership`] on).
pub const MEMBERS_CHANGE: &str = "a membership change is applied";

/// The lease model's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseOptions {
    /// Cluster size (all candidates).
    pub nodes: usize,
    /// Most nodes down at once.
    pub crashes: usize,
    /// Whether a message may also be delivered more than once.
    pub duplicating: bool,
    /// Which commands masters may get (once per node incarnation).
    pub commands: Commands,
    /// Only these clock-rate assignments (default: every one).
    pub only_rates: Option<Vec<Rate>>,
    /// Also let real time move by this fixed step.
    pub tick: Option<Duration>,
    /// Whether to start from the fresh cluster.
    pub from_fresh: bool,
    /// Whether to start from the cluster right after its first election.
    pub from_elected: bool,
    /// A planted bug, or none ([`Fault::UnderstatedDrift`] is the lease model's own).
    pub fault: Fault,
    /// Node timing (and renewal mode); the clocks drift by `drift_ppm`.
    pub timing: Timing,
    /// A scripted run applied to every start state before the search (its step count
    /// then restarts at zero): to spend the depth bound where a scenario gets
    /// interesting. Empty by default.
    pub prelude: Vec<Prelude>,
    /// A membership change the master may make once (§9).
    pub membership: Membership,
    /// A crashed node may lose its record once and start again with `Node::rejoin`
    /// (§10).
    pub rejoin: bool,
}

/// The membership change of a lease-model run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Membership {
    /// None.
    #[default]
    Off,
    /// One more slot, a node that joins: the master may add it (with
    /// [`Fault::TwoMemberStep`], swap it for another member in one step).
    Add,
    /// The master may remove any member, itself included.
    Remove,
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Membership::Off => "off",
            Membership::Add => "add",
            Membership::Remove => "remove",
        })
    }
}

/// One part of a scripted prelude (see [`LeaseOptions::prelude`]). Every step it takes
/// is a step of the model, so the state it leads to is reachable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prelude {
    /// One step.
    Do(LeaseAction),
    /// Deliver the first message in flight from `.0` to `.1` (0-based).
    Deliver(u8, u8),
    /// Lose every message in flight from `.0` to `.1` (0-based): they are never
    /// delivered.
    Lose(u8, u8),
    /// A prompt run: deliver the first deliverable message in flight, else fire the
    /// lowest due node's timer, else jump to the next deadline if it is not after real
    /// time `until_us`; stop when none applies. Messages on the `lose` links
    /// (`(from, to)`, 0-based) are lost (never delivered: taken out of flight), those on
    /// the `hold` links stay in flight undelivered. A step that would break a property
    /// is not taken: the run stops before it (the search then finds it).
    Run {
        /// The last real instant (µs) the run may reach.
        until_us: u64,
        /// Links whose messages are lost.
        lose: Vec<(u8, u8)>,
        /// Links whose messages are held.
        hold: Vec<(u8, u8)>,
    },
}

impl Prelude {
    /// Every link to and from node `i` of an `n`-node cluster.
    pub fn links_of(i: u8, n: usize) -> Vec<(u8, u8)> {
        (0..n as u8)
            .filter(|&j| j != i)
            .flat_map(|j| [(i, j), (j, i)])
            .collect()
    }
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            nodes: 3,
            crashes: 0,
            duplicating: false,
            commands: Commands::Off,
            only_rates: None,
            tick: None,
            from_fresh: true,
            from_elected: true,
            fault: Fault::None,
            timing: Timing {
                drift_ppm: 100_000,
                round_timeout: Duration::from_millis(15),
                ..Timing::default()
            },
            prelude: Vec::new(),
            membership: Membership::Off,
            rejoin: false,
        }
    }
}

impl LeaseOptions {
    /// A one-line description.
    pub fn describe(&self) -> String {
        format!(
            "nodes={} members={}{} renewal={} lease={} drift={}ppm crashes<={} network={} commands={} tick={} start={}{} fault={}",
            self.nodes,
            self.membership,
            if self.rejoin { " rejoin=on" } else { "" },
            self.timing.renewal,
            self.timing.lease,
            self.timing.drift_ppm,
            self.crashes,
            if self.duplicating {
                "duplicating+unordered"
            } else {
                "unordered"
            },
            self.commands,
            self.tick
                .map_or_else(|| "none".to_string(), |t| t.to_string()),
            super::starts_label(self.from_fresh, self.from_elected),
            if self.prelude.is_empty() {
                String::new()
            } else {
                format!("+prelude({} parts)", self.prelude.len())
            },
            self.fault
        )
    }
}

/// A clock rate at the edge of the drift bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rate {
    /// `1 - d`.
    Slow,
    /// `1 + d`.
    Fast,
}

/// A running node and its fingerprint.
#[derive(Clone)]
pub struct Running {
    /// The core node.
    pub node: TNode,
    /// Whether this node has issued its one command.
    pub commanded: bool,
    /// This incarnation's executor (see the [`driver`] module for what of
    /// it is part of the state).
    pub exec: Executor,
    key: NodeKey,
}

impl Running {
    fn new(node: TNode) -> Self {
        Running {
            node,
            commanded: false,
            exec: Executor::new(),
            key: NodeKey::default(),
        }
    }
}

/// The lease model's network: packets in flight from node `from`; the ops of the
/// `Chosen` messages sent are noted for [`ONE_OP_PER_INSTANCE`].
struct Outbox<'a> {
    from: u8,
    net: &'a mut BTreeSet<(u8, u8, Wire)>,
    chosen: &'a mut Vec<(u64, Op)>,
}

impl Net for Outbox<'_> {
    fn send(&mut self, to: NodeId, packet: &Packet) {
        if let Message::Chosen { instance, op } = packet.message {
            self.chosen.push((instance, op));
        }
        self.net
            .insert((self.from, index_of(to) as u8, Wire(*packet)));
    }
}

impl Running {
    fn identity(&self) -> impl Hash + PartialEq + '_ {
        (self.key, self.commanded, self.exec.durable())
    }
}

impl PartialEq for Running {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Running {}

impl Hash for Running {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

/// One node slot.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The node, `None` while crashed.
    pub running: Option<Arc<Running>>,
    /// What its driver stored.
    pub disk: Option<Record>,
    /// Its clock rate.
    pub rate: Rate,
}

/// The whole system at one real instant. `steps` (the length of the path that first
/// reached it), the `fresh_*` flags and `notes` are left out of equality and hashing.
#[derive(Clone)]
pub struct LeaseState {
    /// Steps from the initial state.
    pub steps: usize,
    /// The properties this step broke (bits: [`ONE_MASTER`] 1, [`ONE_OP_PER_INSTANCE`]
    /// 2, [`TOKENS_GROW`] 4). For [`ONE_MASTER`]: this state has two masters and the one
    /// before did not. Properties are judged on this, so a reported path ends where it
    /// went wrong.
    pub fresh_violation: u8,
    /// What this step broke, readable.
    pub notes: Vec<String>,
    /// Whether [`MASTER_ELECTED`] and [`MASTER_CHANGES`] first hold here.
    pub fresh_examples: (bool, bool),
    /// Real time, µs.
    pub now: u64,
    /// The nodes.
    pub slots: Vec<Slot>,
    /// Messages in flight: `(from, to, packet)` by index.
    pub net: BTreeSet<(u8, u8, Wire)>,
    /// Some node has been master (for [`MASTER_CHANGES`]).
    pub first_master: Option<u8>,
    /// A different node was master later.
    pub changed: bool,
    /// The register's history as observed: for each instance, the election state right
    /// after the op applied there (from the nodes' states and the snapshots sent) or the
    /// op (from the `Chosen` messages sent).
    pub applied: BTreeMap<u64, Applied>,
    /// The highest fencing token of any period of mastership so far.
    pub max_token: Option<u64>,
    /// The one membership change was made.
    pub members_changed: bool,
    /// The one rejoin after a lost record was made.
    pub rejoined: bool,
}

/// What was observed of one instance of the register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Applied {
    /// The election state right after its op, if the op was effective.
    pub state: Option<ElectionState>,
    /// Its op, from a `Chosen` message.
    pub op: Option<Op>,
}

impl LeaseState {
    fn identity(&self) -> impl Hash + PartialEq + '_ {
        (
            self.now,
            &self.slots,
            &self.net,
            self.first_master,
            self.changed,
            &self.applied,
            self.max_token,
            self.members_changed,
            self.rejoined,
        )
    }
}

/// The [`LeaseState::fresh_violation`] bit of each property.
fn bit(property: &str) -> u8 {
    match property {
        ONE_MASTER => 1,
        ONE_OP_PER_INSTANCE => 2,
        TOKENS_GROW => 4,
        _ => 0,
    }
}

impl PartialEq for LeaseState {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for LeaseState {}

impl Hash for LeaseState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

/// One step of the lease model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseAction {
    /// Deliver a message in flight.
    Deliver(u8, u8, Wire),
    /// Fire a node's due timer.
    Fire(u8),
    /// Jump real time to the next deadline.
    Advance,
    /// Move real time by the fixed tick.
    Tick,
    /// Crash a node.
    Crash(u8),
    /// Restore a crashed node from its saved record.
    Recover(u8),
    /// A crashed node lost its record: it starts again with `Node::rejoin` (§10).
    Rejoin(u8),
    /// The master is told to release.
    Release(u8),
    /// The master is told to hand over to the next node.
    HandOver(u8),
    /// Master `.0` changes the membership about node `.1`: adds it (the joining slot),
    /// removes it, or (planted fault) swaps it for the joining slot.
    Reconfigure(u8, u8),
}

/// The lease model.
pub struct LeaseModel {
    /// Its settings.
    pub options: LeaseOptions,
    /// States this many steps from an initial state are checked but not expanded.
    pub depth: usize,
    configs: Vec<Config<CAP>>,
    first: FirstOnly,
}

impl LeaseModel {
    /// Builds the model, bounded to `depth` steps.
    pub fn new(options: LeaseOptions, depth: usize) -> Self {
        let n = options.nodes + usize::from(options.membership == Membership::Add);
        let mut timing = options.timing;
        if options.fault == Fault::UnderstatedDrift {
            timing.drift_ppm = 0;
            timing.guard = Duration::ZERO;
        }
        let members = options.nodes;
        let mut configs: Vec<Config<CAP>> =
            (0..members).map(|i| config(members, i, &timing)).collect();
        if options.membership == Membership::Add {
            assert!(members < CAP, "room for the joining node");
            configs.push(config(members + 1, members, &timing));
        }
        assert!(
            options.nodes <= CAP
                && options.prelude.iter().all(|p| match p {
                    Prelude::Do(_) => true,
                    Prelude::Deliver(f, t) | Prelude::Lose(f, t) => {
                        usize::from(*f) < n && usize::from(*t) < n
                    }
                    Prelude::Run { lose, hold, .. } => lose
                        .iter()
                        .chain(hold)
                        .all(|&(f, t)| usize::from(f) < n && usize::from(t) < n),
                }),
            "prelude links name nodes of the cluster"
        );
        LeaseModel {
            options,
            depth,
            configs,
            first: FirstOnly::default(),
        }
    }

    fn rate_ppm(&self, rate: Rate) -> u64 {
        let d = u64::from(self.options.timing.drift_ppm);
        match rate {
            Rate::Slow => 1_000_000 - d,
            Rate::Fast => 1_000_000 + d,
        }
    }

    /// Node `i`'s clock at the state's real time.
    pub fn local(&self, s: &LeaseState, i: usize) -> Instant {
        let r = self.rate_ppm(s.slots[i].rate);
        Instant::from_micros((u128::from(s.now) * u128::from(r) / 1_000_000) as u64)
    }

    /// The first real instant at which node `i`'s clock reads `at`.
    fn real_at(&self, s: &LeaseState, i: usize, at: Instant) -> u64 {
        let r = u128::from(self.rate_ppm(s.slots[i].rate));
        (u128::from(at.as_micros()) * 1_000_000).div_ceil(r) as u64
    }

    /// The nodes that believe they are master at `s` (0-based), with their tokens.
    pub fn masters_with_tokens(&self, s: &LeaseState) -> Vec<(usize, u64)> {
        (0..s.slots.len())
            .filter_map(|i| {
                let r = s.slots[i].running.as_ref()?;
                let local = self.local(s, i);
                r.node
                    .is_master(local)
                    .then(|| (i, r.node.master(local).map_or(0, |m| m.token)))
            })
            .collect()
    }

    /// The nodes that believe they are master at `s` (0-based).
    pub fn masters(&self, s: &LeaseState) -> Vec<usize> {
        (0..s.slots.len())
            .filter(|&i| {
                s.slots[i]
                    .running
                    .as_ref()
                    .is_some_and(|r| r.node.is_master(self.local(s, i)))
            })
            .collect()
    }

    fn next_deadline(&self, s: &LeaseState) -> Option<u64> {
        (0..s.slots.len())
            .filter_map(|i| {
                let r = s.slots[i].running.as_ref()?;
                let at = self.real_at(s, i, r.node.poll_timeout()?);
                (at > s.now).then_some(at)
            })
            .min()
    }

    /// Drains node `i`'s outputs in order (with [`Fault::DropPersist`], only the record a
    /// node stores as it starts reaches the disk).
    ///
    /// This model checks no durability property (the actor model does), but a message the
    /// executor refuses is a bug in the core, not a behaviour to explore: it panics.
    fn drain(&self, s: &mut LeaseState, i: usize, starting: bool) -> Vec<(u64, Op)> {
        let mut chosen = Vec::new();
        let slot = &mut s.slots[i];
        let Some(running) = slot.running.as_mut().map(Arc::make_mut) else {
            return chosen;
        };
        let stores = starting || self.options.fault != Fault::DropPersist;
        let mut outbox = Outbox {
            from: i as u8,
            net: &mut s.net,
            chosen: &mut chosen,
        };
        let seen = driver::drain(
            &mut running.exec,
            &mut running.node,
            &mut slot.disk,
            stores,
            &mut outbox,
        );
        if let Some(m) = seen.refused {
            panic!(
                "n{}'s executor refused to send {m}: persist-before-send broken",
                i + 1
            );
        }
        running.key = NodeKey::of(&running.node);
        chosen
    }

    /// Slots: the members, and the joining node with [`Membership::Add`].
    fn slot_count(&self) -> usize {
        self.configs.len()
    }

    fn boot(&self, rates: &[Rate]) -> LeaseState {
        let mut s = LeaseState {
            steps: 0,
            fresh_violation: 0,
            notes: Vec::new(),
            fresh_examples: (false, false),
            now: 0,
            slots: rates
                .iter()
                .map(|&rate| Slot {
                    running: None,
                    disk: None,
                    rate,
                })
                .collect(),
            net: BTreeSet::new(),
            first_master: None,
            changed: false,
            applied: BTreeMap::new(),
            max_token: None,
            members_changed: false,
            rejoined: false,
        };
        for i in 0..self.options.nodes {
            let mut node = TNode::first_boot(self.configs[i].clone(), Instant::ZERO)
                .expect("valid configuration");
            self.options.fault.plant(&mut node, i, rates.len(), false);
            s.slots[i].running = Some(Arc::new(Running::new(node)));
            self.drain(&mut s, i, true);
        }
        s
    }

    /// From `s`, a prompt loss-free run until every node knows the same live master.
    fn elect(&self, mut s: LeaseState) -> Option<LeaseState> {
        for _ in 0..10_000 {
            let masters = self.masters(&s);
            let settled = s.net.is_empty()
                && masters.len() == 1
                && (0..s.slots.len()).all(|i| {
                    let never_started = s.slots[i].running.is_none() && s.slots[i].disk.is_none();
                    never_started
                        || s.slots[i].running.as_ref().is_some_and(|r| {
                            r.node.master(self.local(&s, i)).map(|m| index_of(m.node))
                                == Some(masters[0])
                        })
                });
            if settled {
                s.steps = 0;
                return Some(s);
            }
            let action = if let Some(&(f, t, w)) = s.net.iter().next() {
                LeaseAction::Deliver(f, t, w)
            } else if let Some(i) = (0..s.slots.len()).find(|&i| self.due(&s, i)) {
                LeaseAction::Fire(i as u8)
            } else {
                LeaseAction::Advance
            };
            s = self.next_state(&s, action.clone())?;
            if let LeaseAction::Deliver(f, t, w) = action {
                s.net.remove(&(f, t, w)); // once, also on a duplicating network
            }
        }
        None
    }

    fn due(&self, s: &LeaseState, i: usize) -> bool {
        s.slots[i]
            .running
            .as_ref()
            .is_some_and(|r| r.node.poll_timeout().is_some_and(|t| t <= self.local(s, i)))
    }

    /// A step, readable.
    pub fn describe_action(&self, a: &LeaseAction) -> String {
        match a {
            LeaseAction::Deliver(f, t, w) => format!("n{} -> n{}: {:?}", f + 1, t + 1, w),
            LeaseAction::Fire(i) => format!("n{} timer fires", i + 1),
            LeaseAction::Advance => "real time jumps to the next deadline".to_string(),
            LeaseAction::Tick => "real time moves one tick".to_string(),
            LeaseAction::Crash(i) => format!("n{} CRASHES", i + 1),
            LeaseAction::Recover(i) => format!("n{} restarts from its saved record", i + 1),
            LeaseAction::Rejoin(i) => format!("n{} lost its record and rejoins", i + 1),
            LeaseAction::Release(i) => format!("n{} is told to release", i + 1),
            LeaseAction::HandOver(i) => format!(
                "n{} is told to hand over to n{}",
                i + 1,
                node_id((usize::from(*i) + 1) % self.options.nodes).0
            ),
            LeaseAction::Reconfigure(i, t) => match self.options.membership {
                Membership::Add if self.options.fault == Fault::TwoMemberStep => format!(
                    "n{} is told to swap n{} for n{} (two members in one step)",
                    i + 1,
                    t + 1,
                    self.options.nodes + 1
                ),
                Membership::Add => format!("n{} is told to add n{}", i + 1, t + 1),
                _ => format!("n{} is told to remove n{}", i + 1, t + 1),
            },
        }
    }

    /// Every node at state `s`, one line each.
    pub fn describe_state(&self, s: &LeaseState) -> String {
        let mut out = String::new();
        for (i, slot) in s.slots.iter().enumerate() {
            let local = self.local(s, i);
            let _ = write!(
                out,
                "      n{} ({:?} clock {}): ",
                i + 1,
                slot.rate,
                local.as_micros()
            );
            match &slot.running {
                None => out.push_str("crashed"),
                Some(r) => {
                    let n = &r.node;
                    let _ = write!(
                        out,
                        "i{} {} promised {}",
                        n.instance(),
                        describe_state(n.election_state()),
                        describe_ballot(n.record().promised())
                    );
                    if let Some(m) = n.master(local) {
                        if m.node == n.id() {
                            let _ = write!(
                                out,
                                " [IS MASTER until {}]",
                                m.term_end.map_or(0, |t| t.as_micros())
                            );
                        } else {
                            let _ = write!(out, " [sees n{} live]", m.node.0);
                        }
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// A path, readable.
    pub fn describe_path(&self, path: &Path<LeaseState, LeaseAction>) -> String {
        let steps = path.clone().into_vec();
        let mut out = String::new();
        if let Some((first, _)) = steps.first() {
            let _ = writeln!(out, "  initial state (real time {}us):", first.now);
            out.push_str(&self.describe_state(first));
        }
        for k in 1..steps.len() {
            let action = steps[k - 1]
                .1
                .as_ref()
                .expect("every step but the last has one");
            let s = &steps[k].0;
            let _ = writeln!(
                out,
                "  {k:>3}. [real {}us] {}",
                s.now,
                self.describe_action(action)
            );
            if !matches!(action, LeaseAction::Deliver(..)) || k + 1 == steps.len() {
                out.push_str(&self.describe_state(s));
            }
            for note in &s.notes {
                let _ = writeln!(out, "  {note}");
            }
        }
        if let Some((last, _)) = steps.last() {
            let masters = self.masters(last);
            if masters.len() > 1 {
                let names: Vec<String> = masters.iter().map(|i| format!("n{}", i + 1)).collect();
                let _ = writeln!(
                    out,
                    "  VIOLATED {ONE_MASTER}: {} all believe they are master at real time {}us",
                    names.join(", "),
                    last.now
                );
            }
        }
        out
    }
}

impl LeaseModel {
    /// Judges the step from `last` to `s` (which sent the `chosen` ops): sets the
    /// `fresh_*` flags and the notes, and updates the observed history.
    fn observe(&self, last: &LeaseState, s: &mut LeaseState, chosen: &[(u64, Op)]) {
        let mut broken = 0u8;
        let before = (
            self.masters(last).len(),
            last.first_master.is_some(),
            last.changed,
        );
        let masters = self.masters_with_tokens(s);
        for &(m, _) in &masters {
            match s.first_master {
                None => s.first_master = Some(m as u8),
                Some(f) if usize::from(f) != m => s.changed = true,
                Some(_) => {}
            }
        }
        if masters.len() > 1 && before.0 <= 1 {
            broken |= bit(ONE_MASTER);
        }
        s.fresh_examples = (
            s.first_master.is_some() && !before.1,
            s.changed && !before.2,
        );
        // Fencing tokens: a period begins where a node is master and was not (or was,
        // with another token).
        let was = self.masters_with_tokens(last);
        for &(m, token) in &masters {
            if was.contains(&(m, token)) {
                continue; // the same period goes on
            }
            if let Some(high) = s.max_token.filter(|&high| token <= high) {
                broken |= bit(TOKENS_GROW);
                s.notes.push(format!(
                    "VIOLATED {TOKENS_GROW}: n{} begins a period of mastership with token \
                     {token}, and an earlier period had token {high}",
                    m + 1
                ));
            }
            s.max_token = Some(s.max_token.map_or(token, |high| high.max(token)));
        }
        // The register: one op per instance.
        let mut seen: Vec<(u64, Applied, String)> = Vec::new();
        for (i, slot) in s.slots.iter().enumerate() {
            if let Some(r) = &slot.running {
                let state = *r.node.election_state();
                if let Some(v) = state.version {
                    let applied = Applied {
                        state: Some(state),
                        op: None,
                    };
                    seen.push((v, applied, format!("n{} applied", i + 1)));
                }
            }
        }
        for &(from, _, w) in s.net.difference(&last.net) {
            if let Message::Snapshot { state, .. } = w.0.message {
                if let Some(v) = state.version {
                    let applied = Applied {
                        state: Some(state),
                        op: None,
                    };
                    seen.push((v, applied, format!("n{}'s snapshot says", from + 1)));
                }
            }
        }
        for &(v, op) in chosen {
            let applied = Applied {
                state: None,
                op: Some(op),
            };
            seen.push((v, applied, "a Chosen message says".to_string()));
        }
        for (v, new, who) in seen {
            let entry = s.applied.entry(v).or_default();
            let clash = |a: Option<String>, b: Option<String>| match (a, b) {
                (Some(a), Some(b)) if a != b => Some((a, b)),
                _ => None,
            };
            let state = clash(
                entry.state.map(|x| describe_state(&x)),
                new.state.map(|x| describe_state(&x)),
            );
            let op = clash(
                entry.op.map(|x| super::describe_op(&x)),
                new.op.map(|x| super::describe_op(&x)),
            );
            if let Some((old, now)) = state.or(op) {
                broken |= bit(ONE_OP_PER_INSTANCE);
                s.notes.push(format!(
                    "VIOLATED {ONE_OP_PER_INSTANCE}: at instance {v} {who} {now}, \
                     and earlier {old}"
                ));
                continue;
            }
            entry.state = entry.state.or(new.state);
            entry.op = entry.op.or(new.op);
        }
        s.fresh_violation = broken;
    }

    /// Every start state's prelude (see [`LeaseOptions::prelude`]) as a readable trace:
    /// each step taken, each message lost, and the nodes after each part.
    pub fn prelude_traces(&self) -> Vec<String> {
        self.starts()
            .into_iter()
            .map(|s| {
                let start = format!(
                    "  start (real time {}us):\n{}",
                    s.now,
                    self.describe_state(&s)
                );
                let mut log = Some(start);
                let possible = self.run_prelude(s, &mut log).is_some();
                let mut out = log.unwrap_or_default();
                if !possible {
                    out.push_str("  (a step of the prelude is impossible)\n");
                }
                out
            })
            .collect()
    }

    /// The start states before their prelude.
    fn starts(&self) -> Vec<LeaseState> {
        let n = self.slot_count();
        let mut states = Vec::new();
        for mask in 0..(1u32 << n) {
            let rates: Vec<Rate> = (0..n)
                .map(|i| {
                    if mask & (1 << i) != 0 {
                        Rate::Fast
                    } else {
                        Rate::Slow
                    }
                })
                .collect();
            if self
                .options
                .only_rates
                .as_ref()
                .is_some_and(|only| *only != rates)
            {
                continue;
            }
            let fresh = self.boot(&rates);
            if self.options.from_elected {
                states.extend(self.elect(fresh.clone()));
            }
            if self.options.from_fresh {
                states.push(fresh);
            }
        }
        states
    }

    /// Runs the prelude from `s`; `None` if a step of it is impossible. Each step taken
    /// is written to `log` if it is `Some`.
    fn run_prelude(&self, mut s: LeaseState, log: &mut Option<String>) -> Option<LeaseState> {
        let step = |log: &mut Option<String>, next: &LeaseState, action: &LeaseAction| {
            if let Some(out) = log.as_mut() {
                let _ = writeln!(
                    out,
                    "  [real {}us] {}",
                    next.now,
                    self.describe_action(action)
                );
                if !matches!(action, LeaseAction::Deliver(..)) {
                    out.push_str(&self.describe_state(next));
                }
            }
        };
        // The messages in `net` on links `gone` is true of, as lost.
        type InFlight = BTreeSet<(u8, u8, Wire)>;
        let lost = |log: &mut Option<String>, net: &InFlight, gone: &dyn Fn(u8, u8) -> bool| {
            if let Some(out) = log.as_mut() {
                for (f, t, w) in net.iter().filter(|(f, t, _)| gone(*f, *t)) {
                    let _ = writeln!(out, "  LOST n{} -> n{}: {:?}", f + 1, t + 1, w);
                }
            }
        };
        for (k, part) in self.options.prelude.iter().enumerate() {
            if let Some(out) = log.as_mut() {
                let _ = writeln!(out, "  -- prelude part {}: {part:?}", k + 1);
            }
            match part {
                Prelude::Do(action) => {
                    s = self.next_state(&s, action.clone())?;
                    step(log, &s, action);
                }
                Prelude::Deliver(from, to) => {
                    let &(f, t, w) = s.net.iter().find(|(f, t, _)| (f, t) == (from, to))?;
                    let action = LeaseAction::Deliver(f, t, w);
                    s = self.next_state(&s, action.clone())?;
                    s.net.remove(&(f, t, w));
                    step(log, &s, &action);
                }
                Prelude::Lose(from, to) => {
                    lost(log, &s.net, &|f, t| (&f, &t) == (from, to));
                    s.net.retain(|(f, t, _)| (f, t) != (from, to));
                }
                Prelude::Run {
                    until_us,
                    lose,
                    hold,
                } => {
                    // Nodes whose due timer changed nothing when fired (not fired again).
                    let mut idle = BTreeSet::new();
                    for _ in 0..100_000 {
                        lost(log, &s.net, &|f, t| lose.contains(&(f, t)));
                        s.net.retain(|&(f, t, _)| !lose.contains(&(f, t)));
                        let action = if let Some(&(f, t, w)) = s.net.iter().find(|(f, t, _)| {
                            !hold.contains(&(*f, *t)) && s.slots[usize::from(*t)].running.is_some()
                        }) {
                            LeaseAction::Deliver(f, t, w)
                        } else if let Some(i) =
                            (0..s.slots.len()).find(|&i| self.due(&s, i) && !idle.contains(&i))
                        {
                            LeaseAction::Fire(i as u8)
                        } else if self.next_deadline(&s).is_some_and(|t| t <= *until_us) {
                            LeaseAction::Advance
                        } else {
                            break;
                        };
                        let mut next = self.next_state(&s, action.clone())?;
                        if let LeaseAction::Deliver(f, t, w) = action {
                            next.net.remove(&(f, t, w)); // once, also when duplicating
                        }
                        if next.fresh_violation != 0 {
                            if let Some(out) = log.as_mut() {
                                let _ = writeln!(
                                    out,
                                    "  (stops before: {} would break a property)",
                                    self.describe_action(&action)
                                );
                            }
                            break;
                        }
                        step(log, &next, &action);
                        match action {
                            LeaseAction::Fire(i) if next == s => {
                                idle.insert(usize::from(i));
                            }
                            _ => idle.clear(),
                        }
                        s = next;
                    }
                }
            }
        }
        s.steps = 0;
        s.notes.clear();
        s.fresh_examples = (false, false);
        Some(s)
    }
}

impl Model for LeaseModel {
    type State = LeaseState;
    type Action = LeaseAction;

    fn init_states(&self) -> Vec<LeaseState> {
        self.starts()
            .into_iter()
            .filter_map(|s| self.run_prelude(s, &mut None))
            .collect()
    }

    fn actions(&self, s: &LeaseState, actions: &mut Vec<LeaseAction>) {
        if s.steps >= self.depth {
            return;
        }
        for &(f, t, w) in &s.net {
            if s.slots[usize::from(t)].running.is_some() {
                actions.push(LeaseAction::Deliver(f, t, w));
            }
        }
        // (A joining node not started yet is not a crashed one.)
        let crashed = s
            .slots
            .iter()
            .filter(|x| x.running.is_none() && x.disk.is_some())
            .count();
        for (i, slot) in s.slots.iter().enumerate() {
            let i8 = i as u8;
            match &slot.running {
                Some(r) => {
                    if self.due(s, i) {
                        actions.push(LeaseAction::Fire(i8));
                    }
                    if !r.commanded && r.node.is_master(self.local(s, i)) {
                        if self.options.commands.release() {
                            actions.push(LeaseAction::Release(i8));
                        }
                        if self.options.commands.hand_over() {
                            actions.push(LeaseAction::HandOver(i8));
                        }
                    }
                    if crashed < self.options.crashes {
                        actions.push(LeaseAction::Crash(i8));
                    }
                    if !s.members_changed && r.node.is_master(self.local(s, i)) {
                        let n = self.options.nodes;
                        match self.options.membership {
                            Membership::Off => {}
                            Membership::Add if self.options.fault == Fault::TwoMemberStep => {
                                for t in (0..n).filter(|&t| t != i) {
                                    actions.push(LeaseAction::Reconfigure(i8, t as u8));
                                }
                            }
                            Membership::Add => actions.push(LeaseAction::Reconfigure(i8, n as u8)),
                            Membership::Remove => {
                                for t in 0..n {
                                    actions.push(LeaseAction::Reconfigure(i8, t as u8));
                                }
                            }
                        }
                    }
                }
                None if slot.disk.is_some() => {
                    actions.push(LeaseAction::Recover(i8));
                    if self.options.rejoin && !s.rejoined {
                        actions.push(LeaseAction::Rejoin(i8));
                    }
                }
                None => {}
            }
        }
        if self.next_deadline(s).is_some() {
            actions.push(LeaseAction::Advance);
        }
        if self.options.tick.is_some() {
            actions.push(LeaseAction::Tick);
        }
    }

    fn next_state(&self, last: &LeaseState, action: LeaseAction) -> Option<LeaseState> {
        let mut s = last.clone();
        s.steps += 1;
        s.notes.clear();
        let mut chosen = Vec::new();
        let touched = match action {
            LeaseAction::Deliver(f, t, w) => {
                if !self.options.duplicating {
                    s.net.remove(&(f, t, w));
                }
                let i = usize::from(t);
                let now = self.local(&s, i);
                // A dropped message changes nothing the property reads (its counter is
                // not part of the state).
                let _ = s.slots[i]
                    .running
                    .as_mut()
                    .map(Arc::make_mut)?
                    .node
                    .handle_message(now, &w.0);
                Some(i)
            }
            LeaseAction::Fire(i) => {
                let i = usize::from(i);
                let now = self.local(&s, i);
                s.slots[i]
                    .running
                    .as_mut()
                    .map(Arc::make_mut)?
                    .node
                    .handle_timeout(now);
                Some(i)
            }
            LeaseAction::Advance => {
                s.now = self.next_deadline(&s)?;
                None
            }
            LeaseAction::Tick => {
                s.now += self.options.tick?.as_micros();
                None
            }
            LeaseAction::Crash(i) => {
                s.slots[usize::from(i)].running = None;
                None
            }
            LeaseAction::Recover(i) => {
                let i = usize::from(i);
                let now = self.local(&s, i);
                let record = s.slots[i].disk?;
                let mut node =
                    TNode::restore(self.configs[i].clone(), record, now).expect("valid record");
                self.options.fault.plant(&mut node, i, s.slots.len(), true);
                s.slots[i].running = Some(Arc::new(Running::new(node)));
                chosen = self.drain(&mut s, i, true);
                None
            }
            LeaseAction::Rejoin(i) => {
                let i = usize::from(i);
                let now = self.local(&s, i);
                let mut node =
                    TNode::rejoin(self.configs[i].clone(), now).expect("valid configuration");
                self.options.fault.plant_rejoin(&mut node);
                s.rejoined = true;
                s.slots[i].disk = None;
                s.slots[i].running = Some(Arc::new(Running::new(node)));
                chosen = self.drain(&mut s, i, true);
                None
            }
            LeaseAction::Release(i) => {
                let i = usize::from(i);
                let now = self.local(&s, i);
                let r = s.slots[i].running.as_mut().map(Arc::make_mut)?;
                r.commanded = true;
                let _ = r.node.release(now);
                Some(i)
            }
            LeaseAction::Reconfigure(i, t) => {
                let (i, t) = (usize::from(i), usize::from(t));
                let now = self.local(&s, i);
                let joining = self.options.nodes;
                let r = s.slots[i].running.as_mut().map(Arc::make_mut)?;
                let new = tenure::Member::candidate(node_id(joining).0);
                let (result, joins) = match self.options.membership {
                    Membership::Off => return None,
                    Membership::Add if self.options.fault == Fault::TwoMemberStep => (
                        r.node.swap_member(node_id(t), new, now).map_err(|_| ()),
                        Some(t),
                    ),
                    Membership::Add => (r.node.add_member(new, now).map_err(|_| ()), None),
                    Membership::Remove => {
                        (r.node.remove_member(node_id(t), now).map_err(|_| ()), None)
                    }
                };
                result.ok()?;
                s.members_changed = true;
                chosen = self.drain(&mut s, i, false);
                if self.options.membership == Membership::Add {
                    // The joining node starts with the list it joins.
                    let mut config = self.configs[joining].clone();
                    if let Some(out) = joins {
                        config.members.retain(|m| m.id != node_id(out));
                    }
                    let local = self.local(&s, joining);
                    let mut node = TNode::join(config, local).expect("valid configuration");
                    self.options
                        .fault
                        .plant(&mut node, joining, s.slots.len(), false);
                    s.slots[joining].running = Some(Arc::new(Running::new(node)));
                    chosen.extend(self.drain(&mut s, joining, true));
                }
                None
            }
            LeaseAction::HandOver(i) => {
                let i = usize::from(i);
                let now = self.local(&s, i);
                let to = node_id((i + 1) % s.slots.len());
                let r = s.slots[i].running.as_mut().map(Arc::make_mut)?;
                r.commanded = true;
                let _ = r.node.hand_over(now, to);
                Some(i)
            }
        };
        if let Some(i) = touched {
            chosen = self.drain(&mut s, i, false);
        }
        self.observe(last, &mut s, &chosen);
        Some(s)
    }

    fn format_action(&self, action: &LeaseAction) -> String {
        self.describe_action(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::<Self>::always(ONE_MASTER, |m, s| {
                m.first
                    .always(ONE_MASTER, s.fresh_violation & bit(ONE_MASTER) != 0)
            }),
            Property::<Self>::always(ONE_OP_PER_INSTANCE, |m, s| {
                m.first.always(
                    ONE_OP_PER_INSTANCE,
                    s.fresh_violation & bit(ONE_OP_PER_INSTANCE) != 0,
                )
            }),
            Property::<Self>::always(TOKENS_GROW, |m, s| {
                m.first
                    .always(TOKENS_GROW, s.fresh_violation & bit(TOKENS_GROW) != 0)
            }),
            Property::<Self>::sometimes(MASTER_ELECTED, |m, s| {
                m.first.sometimes(MASTER_ELECTED, s.fresh_examples.0)
            }),
            Property::<Self>::sometimes(MASTER_CHANGES, |m, s| {
                m.first.sometimes(MASTER_CHANGES, s.fresh_examples.1)
            }),
            Property::<Self>::sometimes(MEMBERS_CHANGE, |_, s| {
                s.slots.iter().any(|x| {
                    x.running
                        .as_ref()
                        .is_some_and(|r| r.node.election_state().members_version.is_some())
                })
            }),
        ]
    }
}

impl fmt::Debug for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "real {}us, {} in flight", self.now, self.net.len())
    }
}

/// A tailored start for the search that must find a planted fault: the settings (the
/// fault included), and the depth its test searches to.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The settings, prelude and fault included.
    pub options: LeaseOptions,
    /// The depth bound that reaches the counterexample.
    pub depth: usize,
}

/// The tailored start of planted fault `fault`'s test, if it has one.
///
/// Every scenario runs 3 nodes whose first election makes n2 master; n2's clock is slow
/// and the others' fast (the worst case for a lease). No crash, no duplicate, no command
/// during the search unless said. The preludes:
///
/// - [`Fault::NoRestartSilence`]: n2 renews with n1 only (n3 hears nothing and says
///   nothing) until n3's view of n2 is about to expire; then n1 crashes and restarts. A
///   restored n1 that votes at once forgets that it guards n2 and lets n3 win.
/// - [`Fault::ReuseSeq`]: n2 renews with both until real 101 ms; then n3 is cut off and
///   n1's answers are held: n2 begins a round (seq 7, n1 guards n2 from its arrival),
///   and one round timeout later a retry. Only then is n1's answer to the first attempt
///   delivered, and n2 is cut off from both. Correct, the retry is round 8 and the late
///   answer completes round 7 with its own begin; with the fault the retry reuses round
///   7 with the later begin, so the late answer extends n2's term a round timeout past
///   n1's guard, and n3 wins with n1 in between.
/// - [`Fault::DoubleAge`] (from the fresh cluster): n2's campaign op reaches n1 only, n1
///   (which must finish it) carries it forward with twice its age, so views of n2 end at
///   once and n1 is elected; n2 learns its own term, counted from its own begin, later.
pub fn scenario(fault: Fault) -> Option<Scenario> {
    let base = LeaseOptions {
        from_fresh: false,
        only_rates: Some(vec![Rate::Fast, Rate::Slow, Rate::Fast]),
        fault,
        ..LeaseOptions::default()
    };
    let (prelude, depth) = match fault {
        Fault::NoRestartSilence => (
            vec![
                Prelude::Run {
                    until_us: 99_000,
                    lose: Prelude::links_of(2, 3),
                    hold: Vec::new(),
                },
                Prelude::Do(LeaseAction::Crash(0)),
                Prelude::Do(LeaseAction::Recover(0)),
            ],
            9,
        ),
        Fault::RejoinVotesAtOnce | Fault::RejoinForgetsSilence => {
            // As for NoRestartSilence, but n1 loses its record and rejoins.
            return Some(Scenario {
                options: LeaseOptions {
                    rejoin: true,
                    prelude: vec![
                        Prelude::Run {
                            until_us: 99_000,
                            lose: Prelude::links_of(2, 3),
                            hold: Vec::new(),
                        },
                        Prelude::Do(LeaseAction::Crash(0)),
                        Prelude::Do(LeaseAction::Rejoin(0)),
                        // n1 and n3 talk, n2 hears nothing more: n3 campaigns when its
                        // view of n2 ends, while n2's term lasts.
                        Prelude::Run {
                            until_us: 190_000,
                            lose: vec![(0, 1), (1, 0), (2, 1), (1, 2)],
                            hold: Vec::new(),
                        },
                    ],
                    ..base
                },
                depth: 6,
            });
        }
        Fault::ReuseSeq => (
            vec![
                Prelude::Run {
                    until_us: 101_000,
                    lose: Vec::new(),
                    hold: Vec::new(),
                },
                Prelude::Run {
                    until_us: 135_300,
                    lose: vec![(1, 2), (2, 1)],
                    hold: vec![(0, 1)],
                },
                Prelude::Deliver(0, 1),
                Prelude::Run {
                    until_us: 170_000,
                    lose: Prelude::links_of(1, 3),
                    hold: Vec::new(),
                },
            ],
            12,
        ),
        Fault::DoubleAge => {
            let n2 = Prelude::links_of(1, 3);
            let mut alone = n2.clone();
            alone.extend([(0, 2), (2, 0)]);
            return Some(Scenario {
                options: LeaseOptions {
                    from_fresh: true,
                    from_elected: false,
                    prelude: vec![
                        Prelude::Run {
                            until_us: 9_400,
                            lose: Vec::new(),
                            hold: n2.clone(),
                        },
                        Prelude::Deliver(1, 0),
                        Prelude::Deliver(0, 1),
                        Prelude::Deliver(1, 0),
                        Prelude::Lose(1, 2),
                        Prelude::Lose(0, 1),
                        Prelude::Run {
                            until_us: 35_000,
                            lose: alone,
                            hold: Vec::new(),
                        },
                        Prelude::Run {
                            until_us: 72_000,
                            lose: Vec::new(),
                            hold: n2,
                        },
                    ],
                    ..base
                },
                depth: 8,
            });
        }
        Fault::TwoMemberStep => {
            // n2 is master. n1 hears nothing of it (its view runs out a lease after the
            // election) while n3 guards it; n2 swaps n3 for the joining n4 in one step,
            // and only the change reaches n1. Then n4 talks to n1 alone, and n1 to n3. The
            // control (no fault) adds n4 instead: n3, still a member, guards n2 and
            // refuses n1.
            let cut = vec![(0, 1), (1, 0)];
            let mut apart = cut.clone();
            apart.extend([(1, 3), (3, 1), (2, 3), (3, 2)]);
            return Some(Scenario {
                options: LeaseOptions {
                    membership: Membership::Add,
                    only_rates: Some(vec![Rate::Fast, Rate::Slow, Rate::Slow, Rate::Fast]),
                    prelude: vec![
                        Prelude::Run {
                            until_us: SWAP_AT_US,
                            lose: cut.clone(),
                            hold: Vec::new(),
                        },
                        Prelude::Do(LeaseAction::Reconfigure(1, 2)),
                        Prelude::Lose(1, 2),
                        Prelude::Deliver(1, 0),
                        Prelude::Deliver(0, 1),
                        // n2 prepares again under the new list, then commits.
                        Prelude::Deliver(1, 0),
                        Prelude::Deliver(1, 0),
                        Prelude::Run {
                            until_us: 400_000,
                            lose: apart,
                            hold: Vec::new(),
                        },
                    ],
                    ..base
                },
                depth: 6,
            });
        }
        _ => return None,
    };
    Some(Scenario {
        options: LeaseOptions { prelude, ..base },
        depth,
    })
}

/// [`Fault::TwoMemberStep`]'s scenario: when the master proposes the swap (real µs).
pub const SWAP_AT_US: u64 = 80_000;

/// Checks the lease model within `limits`.
pub fn check(options: LeaseOptions, limits: &Limits) -> Report {
    let setup = options.describe();
    super::run(
        LeaseModel::new(options, limits.depth),
        "lease",
        setup,
        limits,
        |m, path| m.describe_path(path),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_drift_within_the_bound_and_deadlines_map_back() {
        let m = LeaseModel::new(LeaseOptions::default(), 3);
        let init = m.init_states();
        assert_eq!(init.len(), 16, "8 rate assignments, fresh and elected");
        let s = &init[0];
        for i in 0..3 {
            let at = Instant::from_micros(123_457);
            let t = m.real_at(s, i, at);
            let mut probe = s.clone();
            probe.now = t;
            assert!(m.local(&probe, i) >= at);
            probe.now = t - 1;
            assert!(m.local(&probe, i) < at);
        }
        let elected = init.iter().filter(|s| m.masters(s).len() == 1).count();
        assert_eq!(elected, 8, "every rate assignment elects a master");
    }
}

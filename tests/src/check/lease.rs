//! The lease model: a custom stateright [`Model`] with a logical real-time clock, checking
//! that at most one node believes it is master at any real instant.
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

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use stateright::{Model, Path, Property};
use tenure::{Config, Duration, Executor, Instant, NodeId, Packet, Record};

use super::driver::{self, Net};
use super::{
    config, describe_ballot, describe_state, index_of, node_id, Commands, Fault, FirstOnly, Limits,
    NodeKey, Report, TNode, Timing, Wire, CAP,
};

/// Property: at most one node believes it is master at any real instant.
pub const ONE_MASTER: &str = "at most one master at any real instant";
/// Example wanted: some node believes it is master.
pub const MASTER_ELECTED: &str = "a master is elected";
/// Example wanted: a node becomes master after another one was.
pub const MASTER_CHANGES: &str = "the master changes";

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
    /// Node timing; the clocks drift by `drift_ppm`.
    pub timing: Timing,
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
        }
    }
}

impl LeaseOptions {
    /// A one-line description.
    pub fn describe(&self) -> String {
        format!(
            "nodes={} lease={} drift={}ppm crashes<={} network={} commands={} tick={} start={} fault={}",
            self.nodes,
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

/// The lease model's network: packets in flight from node `from`.
struct Outbox<'a> {
    from: u8,
    net: &'a mut BTreeSet<(u8, u8, Wire)>,
}

impl Net for Outbox<'_> {
    fn send(&mut self, to: NodeId, packet: &Packet) {
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
/// reached it) and the `fresh_*` flags are left out of equality and hashing.
#[derive(Clone)]
pub struct LeaseState {
    /// Steps from the initial state.
    pub steps: usize,
    /// Whether this state has two masters and the one before did not (properties are
    /// judged on this, so a reported path ends where it went wrong). Left out of equality
    /// and hashing.
    pub fresh_violation: bool,
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
}

impl LeaseState {
    fn identity(&self) -> impl Hash + PartialEq + '_ {
        (
            self.now,
            &self.slots,
            &self.net,
            self.first_master,
            self.changed,
        )
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
    /// The master is told to release.
    Release(u8),
    /// The master is told to hand over to the next node.
    HandOver(u8),
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
        let n = options.nodes;
        let mut timing = options.timing;
        if options.fault == Fault::UnderstatedDrift {
            timing.drift_ppm = 0;
            timing.guard = Duration::ZERO;
        }
        let configs = (0..n).map(|i| config(n, i, &timing)).collect();
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
    fn drain(&self, s: &mut LeaseState, i: usize, starting: bool) {
        let slot = &mut s.slots[i];
        let Some(running) = slot.running.as_mut().map(Arc::make_mut) else {
            return;
        };
        let stores = starting || self.options.fault != Fault::DropPersist;
        let mut outbox = Outbox {
            from: i as u8,
            net: &mut s.net,
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
    }

    fn boot(&self, rates: &[Rate]) -> LeaseState {
        let mut s = LeaseState {
            steps: 0,
            fresh_violation: false,
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
        };
        for i in 0..rates.len() {
            let mut node = TNode::first_boot(self.configs[i].clone(), Instant::ZERO)
                .expect("valid configuration");
            if self.options.fault == Fault::IgnoreVersionCheck && i + 1 == rates.len() {
                node.inject_ignore_version_check(true);
            }
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
                    s.slots[i].running.as_ref().is_some_and(|r| {
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
            s = self.next_state(&s, action)?;
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
            LeaseAction::Release(i) => format!("n{} is told to release", i + 1),
            LeaseAction::HandOver(i) => format!(
                "n{} is told to hand over to n{}",
                i + 1,
                node_id((usize::from(*i) + 1) % self.options.nodes).0
            ),
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

impl Model for LeaseModel {
    type State = LeaseState;
    type Action = LeaseAction;

    fn init_states(&self) -> Vec<LeaseState> {
        let n = self.options.nodes;
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
                if let Some(elected) = self.elect(fresh.clone()) {
                    states.push(elected);
                }
            }
            if self.options.from_fresh {
                states.push(fresh);
            }
        }
        states
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
        let crashed = s.slots.iter().filter(|x| x.running.is_none()).count();
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
                }
                None => actions.push(LeaseAction::Recover(i8)),
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
                if self.options.fault == Fault::IgnoreVersionCheck && i + 1 == s.slots.len() {
                    node.inject_ignore_version_check(true);
                }
                s.slots[i].running = Some(Arc::new(Running::new(node)));
                self.drain(&mut s, i, true);
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
            self.drain(&mut s, i, false);
        }
        let before = (
            self.masters(last).len(),
            last.first_master.is_some(),
            last.changed,
        );
        for m in self.masters(&s) {
            match s.first_master {
                None => s.first_master = Some(m as u8),
                Some(f) if usize::from(f) != m => s.changed = true,
                Some(_) => {}
            }
        }
        s.fresh_violation = self.masters(&s).len() > 1 && before.0 <= 1;
        s.fresh_examples = (
            s.first_master.is_some() && !before.1,
            s.changed && !before.2,
        );
        Some(s)
    }

    fn format_action(&self, action: &LeaseAction) -> String {
        self.describe_action(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::<Self>::always(ONE_MASTER, |m, s| {
                m.first.always(ONE_MASTER, s.fresh_violation)
            }),
            Property::<Self>::sometimes(MASTER_ELECTED, |m, s| {
                m.first.sometimes(MASTER_ELECTED, s.fresh_examples.0)
            }),
            Property::<Self>::sometimes(MASTER_CHANGES, |m, s| {
                m.first.sometimes(MASTER_CHANGES, s.fresh_examples.1)
            }),
        ]
    }
}

impl fmt::Debug for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "real {}us, {} in flight", self.now, self.net.len())
    }
}

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

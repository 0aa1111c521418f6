//! The actor model: each node is the unmodified core wrapped in a stateright
//! [`Actor`], in a lossy, duplicating, unordered network with crashes and recoveries.
//!
//! # The wrapper ([`Peer`])
//!
//! - `on_start` calls [`Node::first_boot`](tenure::Node::first_boot) when nothing was saved,
//!   else [`Node::restore`](tenure::Node::restore) with the saved [`Record`]: a recovering
//!   node gets back exactly what it saved, nothing else.
//! - `on_msg` feeds [`handle_message`](tenure::Node::handle_message); `on_timeout` feeds
//!   [`handle_timeout`](tenure::Node::handle_timeout) (or a command, below). After every
//!   input the wrapper drains every output in order with the node's [`Executor`] and the
//!   shared [`driver`]: a stored record becomes stateright's `save`, a packet one `send`
//!   per destination member; then the timer is armed from
//!   [`poll_timeout`](tenure::Node::poll_timeout).
//! - Commands (with [`ActorOptions::commands`]): while a node is master it has one or two
//!   more timers, "release" and "hand over to the next node"; firing one calls
//!   [`release`](tenure::Node::release) or [`hand_over`](tenure::Node::hand_over). Each
//!   node incarnation issues at most one command, to bound the search.
//!
//! # Time in the actor model
//!
//! stateright has no clock, and the core needs `now`. Each node keeps a logical clock in
//! its actor state, starting at zero at every start (a restarted process gets a fresh
//! monotonic clock). A message is handled at the node's current clock; when the node's
//! timer fires, its clock jumps to the deadline the node asked for (`poll_timeout`), never
//! backwards. Any timer can fire at any moment relative to any message, so the clocks of
//! different nodes are unrelated: this over-approximates every clock rate and every
//! message delay. That is sound for the properties checked here (Paxos agreement, the
//! state machine, durable promises), which must hold whatever the timing. It says nothing
//! about leases, which do depend on bounded clock drift: the [`lease`](super::lease) model
//! checks those.
//!
//! # Network
//!
//! stateright's unordered duplicating network: a sent message stays deliverable any number
//! of times, in any order. With [`ActorOptions::lossy`] any message may also be lost (for
//! safety properties a loss is the same as a message never delivered, so the lossy network
//! adds states, not behaviours). stateright remembers the last message delivered in the
//! network state; the wrapper model [`ActorSystem`] erases it, since it changes nothing but
//! the fingerprint. It also replaces a crashed node's stale state with a fixed placeholder
//! (nothing reads it until recovery replaces it).
//!
//! # Properties
//!
//! An observer history ([`History`]) is updated from every message sent and from every
//! node's state after every step (crashed nodes excepted). Always:
//! - [`AGREEMENT`]: at most one op is chosen per instance: chosen by a majority of
//!   acceptances (an `Accepted` sent, or a saved record holding the proposal: how the
//!   proposer's own acceptance counts, so that only what is on disk counts), or
//!   announced by a `Commit` or `Chosen`; and a ballot never carries two ops in one
//!   instance.
//! - [`SAME_STATE`]: two nodes that decided the same instances hold the same election
//!   state.
//! - [`ONE_OP_PER_VERSION`]: no two nodes apply different operations at the same version.
//! - [`PROMISES_KEPT`]: promises are never contradicted: the ballots a node shows
//!   (`Promise`, `Accept`, `Accepted`, `Reject`; a `Prepare` shows none, it leaves before
//!   the proposer's own promise is written) never decrease over its whole life, crashes
//!   included.
//! - [`PROMISES_DURABLE`]: a ballot a node shows is already in its saved record, and the
//!   executor never had to refuse a message for promising more than the node had asked to
//!   store.
//! - [`COMMITS_DURABLE`]: a `Commit` names a proposal that a majority already holds in
//!   their saved records (the proposer's own acceptance is written before its `Commit`
//!   leaves).
//! - [`VERSION_GROWS`]: a running node's election version never decreases; a restarted
//!   node comes back with at least the version at which it last saw the holder change. (The
//!   core writes its record when the holder changes, not at every renewal it learns: a
//!   restart may forget renewals, which it re-learns, but never whom to wait for.)
//!
//! Sometimes: [`MASTER_CHOSEN`], [`RELEASE_CHOSEN`], [`HANDOVER_DONE`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use stateright::actor::{
    model_timeout, Actor, ActorModel, ActorModelAction, ActorModelState, Envelope, Id,
    LossyNetwork, Network, Out,
};
use stateright::{Model, Path, Property};
use tenure::{
    Ballot, Config, ElectionState, Executor, Instant, Message, NodeId, Op, Packet, Record,
};

use super::driver::{self, Net};
use super::{
    config, describe_ballot, describe_message, describe_op, describe_state, index_of, node_id,
    promise_shown, Commands, Fault, FirstOnly, Limits, NodeKey, Report, TNode, Timing, Wire, CAP,
};

/// Property: at most one op chosen per instance.
pub const AGREEMENT: &str = "agreement per instance";
/// Property: nodes that decided the same instances hold the same election state.
pub const SAME_STATE: &str = "same instance, same state";
/// Property: no two nodes apply different operations at the same version.
pub const ONE_OP_PER_VERSION: &str = "one operation per version";
/// Property: the ballots a node shows never decrease, crashes included.
pub const PROMISES_KEPT: &str = "promises are never contradicted";
/// Property: a ballot a node shows is already in its saved record.
pub const PROMISES_DURABLE: &str = "promises are durable before they are sent";
/// Property: a `Commit` names a proposal a majority holds on disk.
pub const COMMITS_DURABLE: &str = "commits name a durably chosen value";
/// Property: a running node's election version never decreases, and a restarted node keeps
/// at least the version of the last change of holder it applied.
pub const VERSION_GROWS: &str = "the version only grows";
/// Example wanted: some node applies a `BeMaster`.
pub const MASTER_CHOSEN: &str = "a master is chosen";
/// Example wanted: some node applies a `Release`.
pub const RELEASE_CHOSEN: &str = "a release is chosen";
/// Example wanted: the successor named by a hand-over becomes master.
pub const HANDOVER_DONE: &str = "a hand-over completes";

/// The actor model's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActorOptions {
    /// Cluster size (all candidates).
    pub nodes: usize,
    /// Most nodes down at once (stateright's `max_crashes`).
    pub crashes: usize,
    /// Whether the network may lose messages.
    pub lossy: bool,
    /// Whether the network may deliver a message more than once (stateright's
    /// unordered duplicating network; otherwise its unordered non-duplicating one).
    pub duplicating: bool,
    /// Which commands masters may get (see the module docs).
    pub commands: Commands,
    /// Whether to start from the fresh cluster.
    pub from_fresh: bool,
    /// Whether to start also from the cluster right after its first election (see
    /// [`ActorSystem::elected`]).
    pub from_elected: bool,
    /// A planted bug, or none.
    pub fault: Fault,
    /// Node timing.
    pub timing: Timing,
}

impl Default for ActorOptions {
    fn default() -> Self {
        ActorOptions {
            nodes: 3,
            crashes: 1,
            lossy: true,
            duplicating: true,
            commands: Commands::Off,
            from_fresh: true,
            from_elected: true,
            fault: Fault::None,
            timing: Timing::default(),
        }
    }
}

impl ActorOptions {
    /// A one-line description.
    pub fn describe(&self) -> String {
        format!(
            "nodes={} renewal={} crashes<={} network={} commands={} start={} fault={}",
            self.nodes,
            self.timing.renewal,
            self.crashes,
            match (self.lossy, self.duplicating) {
                (true, true) => "lossy+duplicating+unordered",
                (false, true) => "duplicating+unordered",
                (true, false) => "lossy+unordered",
                (false, false) => "unordered",
            },
            self.commands,
            super::starts_label(self.from_fresh, self.from_elected),
            self.fault
        )
    }
}

/// Timers of a wrapped node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The core's own timer ([`poll_timeout`](tenure::Node::poll_timeout)).
    Tick,
    /// The application tells the master to release.
    Release,
    /// The application tells the master to hand over to the next node.
    HandOver,
}

/// One wrapped node.
#[derive(Clone, Debug)]
pub struct Peer {
    /// 0-based index (the stateright [`Id`]); the node id is `index + 1`.
    pub index: usize,
    /// Cluster size.
    pub n: usize,
    /// The node's configuration.
    pub config: Config<CAP>,
    /// A planted bug, or none.
    pub fault: Fault,
    /// Which commands are enabled.
    pub commands: Commands,
}

/// A wrapped node's volatile state (lost at a crash).
#[derive(Clone)]
pub struct PeerState {
    /// The core node.
    pub node: TNode,
    /// The node's logical clock.
    pub clock: Instant,
    /// What this node's driver has stored (mirrors stateright's storage).
    pub disk: Option<Record>,
    /// Whether this incarnation has issued its one command.
    pub commanded: bool,
    /// Observer: a ballot shown before it was durable, `(shown, stored promise)`.
    pub premature: Option<(Ballot, Ballot)>,
    /// Observer: a message the executor refused to send (see [`driver::Drained::refused`]).
    pub refused: Option<Message>,
    /// This incarnation's executor (see the [`driver`] module for what of
    /// it is part of the state).
    pub exec: Executor,
    key: NodeKey,
}

impl PeerState {
    fn identity(&self) -> impl Hash + PartialEq + '_ {
        (
            self.key,
            self.clock,
            self.disk,
            self.commanded,
            self.premature,
            self.refused,
            self.exec.durable().copied(),
        )
    }

    /// One line: clock, instance, election state, lease view, promise, disk.
    pub fn summary(&self) -> String {
        let n = &self.node;
        let mut out = format!(
            "clock {} i{} {} promised {}",
            self.clock.as_micros(),
            n.instance(),
            describe_state(n.election_state()),
            describe_ballot(n.record().promised())
        );
        if n.is_master(self.clock) {
            out.push_str(" [IS MASTER]");
        } else if let Some(m) = n.master(self.clock) {
            let _ = write!(out, " [sees n{} live]", m.node.0);
        }
        match &self.disk {
            Some(r) => {
                let _ = write!(
                    out,
                    " | disk: i{} promised {}",
                    r.instance(),
                    describe_ballot(r.promised())
                );
            }
            None => out.push_str(" | disk: empty"),
        }
        out
    }
}

impl PartialEq for PeerState {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for PeerState {}

impl Hash for PeerState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl fmt::Debug for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

impl Peer {
    fn start(&self, storage: &Option<Record>, o: &mut Out<Self>) -> PeerState {
        let clock = Instant::ZERO;
        let mut node = match storage {
            Some(record) => TNode::restore(self.config.clone(), *record, clock),
            None => TNode::first_boot(self.config.clone(), clock),
        }
        .expect("the checker's configuration and records are valid");
        self.fault
            .plant(&mut node, self.index, self.n, storage.is_some());
        let mut s = PeerState {
            key: NodeKey::default(),
            node,
            clock,
            disk: *storage,
            commanded: false,
            premature: None,
            refused: None,
            exec: Executor::new(),
        };
        self.drain(&mut s, o, true);
        s
    }

    /// Executes every queued output in order (with [`Fault::DropPersist`], only the
    /// record a node stores as it starts reaches the disk), then re-arms the timers.
    fn drain(&self, s: &mut PeerState, o: &mut Out<Self>, starting: bool) {
        let stores = starting || self.fault != Fault::DropPersist;
        let seen = driver::drain(&mut s.exec, &mut s.node, &mut s.disk, stores, o);
        s.premature = s.premature.or(seen.premature);
        s.refused = s.refused.or(seen.refused);
        if s.node.poll_timeout().is_some() {
            o.set_timer(Timer::Tick, model_timeout());
        } else {
            o.cancel_timer(Timer::Tick);
        }
        let armed = !s.commanded && s.node.is_master(s.clock);
        for (enabled, timer) in [
            (self.commands.release(), Timer::Release),
            (self.commands.hand_over(), Timer::HandOver),
        ] {
            if enabled && armed {
                o.set_timer(timer, model_timeout());
            } else if enabled {
                o.cancel_timer(timer);
            }
        }
        s.key = NodeKey::of(&s.node);
    }

    /// The node that a hand-over from this node names.
    pub fn successor(&self) -> NodeId {
        node_id((self.index + 1) % self.n)
    }
}

/// A peer's network is stateright's: a stored record is also saved as the actor's storage.
impl Net for Out<Peer> {
    fn save(&mut self, record: &Record) {
        Out::save(self, *record);
    }

    fn send(&mut self, to: NodeId, packet: &Packet) {
        Out::send(self, Id::from(index_of(to)), Wire(*packet));
    }
}

impl Actor for Peer {
    type Msg = Wire;
    type State = PeerState;
    type Timer = Timer;
    type Random = ();
    type Storage = Record;

    fn on_start(&self, _id: Id, storage: &Option<Record>, o: &mut Out<Self>) -> PeerState {
        self.start(storage, o)
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<PeerState>, _src: Id, msg: Wire, o: &mut Out<Self>) {
        let s = state.to_mut();
        // A dropped message (stale, a duplicate, ...) changes nothing a property reads;
        // the drop is counted in the node's statistics, which are not part of the state.
        let _ = s.node.handle_message(s.clock, &msg.0);
        self.drain(s, o, false);
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<PeerState>, timer: &Timer, o: &mut Out<Self>) {
        let s = state.to_mut();
        match timer {
            Timer::Tick => {
                if let Some(at) = s.node.poll_timeout() {
                    s.clock = s.clock.max(at);
                }
                s.node.handle_timeout(s.clock);
            }
            Timer::Release => {
                s.commanded = true;
                let _ = s.node.release(s.clock);
            }
            Timer::HandOver => {
                s.commanded = true;
                let _ = s.node.hand_over(s.clock, self.successor());
            }
        }
        self.drain(s, o, false);
    }

    fn name(&self) -> String {
        format!("n{}", self.index + 1)
    }
}

/// Static facts the history functions need.
#[derive(Clone, Copy, Debug)]
pub struct Cfg {
    /// Cluster size.
    pub n: usize,
    /// Majority.
    pub quorum: usize,
}

/// What the observer has seen so far (auxiliary state: no node reads it).
///
/// `steps` (the length of the path that first reached the state) and `fresh` are left out
/// of equality and hashing, so a state reached again by another path is the same state.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Steps from the initial state.
    pub steps: usize,
    /// Properties first violated, or first exemplified, by the step that made this state.
    /// Properties are judged on this, so a reported path ends at the step that matters.
    /// Like `steps`, left out of equality and hashing.
    pub fresh: Vec<&'static str>,
    /// The op each `(instance, ballot)` carried in an `Accept`.
    pub values: BTreeMap<(u64, Ballot), Op>,
    /// Who accepted each `(instance, ballot)`, as a bit set of node indices.
    pub votes: BTreeMap<(u64, Ballot), u32>,
    /// The op chosen in each instance.
    pub chosen: BTreeMap<u64, Op>,
    /// Per node: the highest ballot it has shown.
    pub shown: Vec<Ballot>,
    /// The election state after every instance below the key.
    pub after: BTreeMap<u64, ElectionState>,
    /// The election state at each version.
    pub versions: BTreeMap<u64, ElectionState>,
    /// Per node: the highest version it has held since it last started.
    pub max_version: Vec<Option<u64>>,
    /// Per node: the holder it last applied, and the version at which the holder changed.
    pub holder: Vec<(Option<tenure::NodeId>, Option<u64>)>,
    /// The node being restored in the current step, if any.
    pub restarting: Option<usize>,
    /// Some node applied a `BeMaster`.
    pub master_chosen: bool,
    /// Some node applied a `Release`.
    pub release_chosen: bool,
    /// A named successor became master.
    pub handover_done: bool,
    /// The first violation of each property, explained.
    pub violations: BTreeMap<&'static str, String>,
}

impl History {
    fn identity(&self) -> impl Hash + PartialEq + '_ {
        (
            &self.values,
            &self.votes,
            &self.chosen,
            &self.shown,
            &self.after,
            &self.versions,
            &self.max_version,
            &self.holder,
            (self.master_chosen, self.release_chosen, self.handover_done),
            &self.violations,
        )
    }

    fn new(n: usize) -> Self {
        History {
            shown: vec![Ballot::ZERO; n],
            max_version: vec![None; n],
            holder: vec![(None, None); n],
            ..History::default()
        }
    }

    /// The properties violated or exemplified here but not in `before`.
    fn news(&self, before: &History) -> Vec<&'static str> {
        let mut fresh: Vec<&'static str> = self
            .violations
            .keys()
            .filter(|p| !before.violations.contains_key(*p))
            .copied()
            .collect();
        for (now, then, name) in [
            (self.master_chosen, before.master_chosen, MASTER_CHOSEN),
            (self.release_chosen, before.release_chosen, RELEASE_CHOSEN),
            (self.handover_done, before.handover_done, HANDOVER_DONE),
        ] {
            if now && !then {
                fresh.push(name);
            }
        }
        fresh
    }

    fn violate(&mut self, property: &'static str, why: String) {
        self.violations.entry(property).or_insert(why);
    }

    fn choose(&mut self, instance: u64, op: Op, how: String) {
        match self.chosen.get(&instance) {
            None => {
                self.chosen.insert(instance, op);
            }
            Some(prev) if *prev == op => {}
            Some(prev) => {
                let why = format!(
                    "instance {instance}: {} was chosen, then {} ({how})",
                    describe_op(prev),
                    describe_op(&op)
                );
                self.violate(AGREEMENT, why);
            }
        }
    }

    fn vote(&mut self, cfg: &Cfg, instance: u64, ballot: Ballot, voter: usize) {
        let votes = self.votes.entry((instance, ballot)).or_insert(0);
        *votes |= 1 << voter;
        let count = votes.count_ones() as usize;
        if count >= cfg.quorum {
            if let Some(op) = self.values.get(&(instance, ballot)).copied() {
                let how = format!("accepted by a majority under {}", describe_ballot(ballot));
                self.choose(instance, op, how);
            }
        }
    }

    /// Updates the history with one message sent.
    fn on_send(&mut self, cfg: &Cfg, from: usize, msg: &Message) {
        if let Some(b) = promise_shown(msg) {
            if b < self.shown[from] {
                let why = format!(
                    "n{} showed promise {} and later {} in {}",
                    from + 1,
                    describe_ballot(self.shown[from]),
                    describe_ballot(b),
                    describe_message(msg)
                );
                self.violate(PROMISES_KEPT, why);
            }
            self.shown[from] = self.shown[from].max(b);
        }
        match *msg {
            Message::Accept {
                instance,
                ballot,
                op,
                ..
            } => {
                match self.values.get(&(instance, ballot)) {
                    Some(prev) if *prev != op => {
                        let why = format!(
                            "instance {instance} ballot {} carried {} and then {}",
                            describe_ballot(ballot),
                            describe_op(prev),
                            describe_op(&op)
                        );
                        self.violate(AGREEMENT, why);
                    }
                    Some(_) => {}
                    None => {
                        self.values.insert((instance, ballot), op);
                    }
                }
                // (The proposer's own acceptance counts from its saved record: see
                // `observe`.)
            }
            Message::Accepted { instance, ballot } => self.vote(cfg, instance, ballot, from),
            Message::Commit { instance, ballot } => {
                let held = self.votes.get(&(instance, ballot)).copied().unwrap_or(0);
                if (held.count_ones() as usize) < cfg.quorum {
                    let why = format!(
                        "n{}'s Commit of instance {instance} under {} left while only {} \
                         node(s) held that proposal on disk",
                        from + 1,
                        describe_ballot(ballot),
                        held.count_ones()
                    );
                    self.violate(COMMITS_DURABLE, why);
                }
                if let Some(op) = self.values.get(&(instance, ballot)).copied() {
                    self.choose(instance, op, format!("announced by n{}'s Commit", from + 1));
                }
            }
            Message::Chosen { instance, op } => {
                self.choose(instance, op, format!("announced by n{}'s Chosen", from + 1));
            }
            _ => {}
        }
    }

    /// Updates the history with node `i`'s state after a step.
    fn observe(&mut self, cfg: &Cfg, i: usize, s: &PeerState) {
        let own = s.disk.and_then(|d| {
            d.accepted()
                .filter(|p| p.ballot.node == d.node())
                .map(|p| (d.instance(), p))
        });
        if let Some((instance, p)) = own {
            // A proposer's own acceptance (under its own ballot) counts once its record
            // holds it (before its `Accept` leaves). (Voters count by their `Accepted`.)
            self.values.entry((instance, p.ballot)).or_insert(p.op);
            self.vote(cfg, instance, p.ballot, i);
        }
        if let Some((shown, stored)) = s.premature {
            let why = format!(
                "n{} sent promise {} while its saved record held {}",
                i + 1,
                describe_ballot(shown),
                describe_ballot(stored)
            );
            self.violate(PROMISES_DURABLE, why);
        }
        if let Some(m) = &s.refused {
            let why = format!(
                "n{}'s executor refused to send {}: it promised more than the record n{} had \
                 asked to store",
                i + 1,
                describe_message(m),
                i + 1
            );
            self.violate(PROMISES_DURABLE, why);
        }
        let node = &s.node;
        let es = *node.election_state();
        let instance = node.instance();
        match self.after.get(&instance) {
            None => {
                self.after.insert(instance, es);
            }
            Some(prev) if *prev == es => {}
            Some(prev) => {
                let why = format!(
                    "after instance {}: one node held {}, n{} holds {}",
                    instance as i64 - 1,
                    describe_state(prev),
                    i + 1,
                    describe_state(&es)
                );
                self.violate(SAME_STATE, why);
            }
        }
        if let Some(v) = es.version {
            match self.versions.get(&v) {
                None => {
                    self.versions.insert(v, es);
                }
                Some(prev) if *prev == es => {}
                Some(prev) => {
                    let why = format!(
                        "version {v}: one node applied {}, n{} applied {}",
                        describe_state(prev),
                        i + 1,
                        describe_state(&es)
                    );
                    self.violate(ONE_OP_PER_VERSION, why);
                }
            }
        }
        if self.restarting == Some(i) {
            self.restarting = None;
            let (holder, floor) = self.holder[i];
            if es.version < floor {
                let why = format!(
                    "n{} restarted at version {:?}, but it had applied holder {:?} at version {:?}",
                    i + 1,
                    es.version,
                    holder.map(|h| h.0),
                    floor
                );
                self.violate(VERSION_GROWS, why);
            }
            self.max_version[i] = es.version;
        } else if es.version < self.max_version[i] {
            let why = format!(
                "n{} held version {:?} and now holds {:?} without restarting",
                i + 1,
                self.max_version[i],
                es.version
            );
            self.violate(VERSION_GROWS, why);
        }
        if es.master != self.holder[i].0 {
            self.holder[i] = (es.master, es.version);
        }
        self.max_version[i] = self.max_version[i].max(es.version);
        match es.master {
            Some(m) => {
                self.master_chosen = true;
                let named = self
                    .versions
                    .range(..es.version.unwrap_or(0))
                    .any(|(_, s)| s.master.is_none() && s.successor == Some(m));
                if named {
                    self.handover_done = true;
                }
            }
            None if es.version.is_some() => self.release_chosen = true,
            None => {}
        }
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for History {}

impl Hash for History {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

/// The system state the checker explores.
pub type SysState = ActorModelState<Peer, History>;
/// A step of the system.
pub type SysAction = ActorModelAction<Wire, Timer, ()>;

/// stateright's [`ActorModel`] of the wrapped nodes, plus the observer and the
/// canonicalisation described in the module docs.
pub struct ActorSystem {
    /// The actor model proper.
    pub inner: ActorModel<Peer, Cfg, History>,
    /// Its settings.
    pub options: ActorOptions,
    /// States this many steps from the initial state are checked but not expanded.
    pub depth: usize,
    placeholder: Vec<Arc<PeerState>>,
    first: FirstOnly,
}

impl ActorSystem {
    /// Builds the model, bounded to `depth` steps.
    pub fn new(options: ActorOptions, depth: usize) -> Self {
        let n = options.nodes;
        let peers: Vec<Peer> = (0..n)
            .map(|index| {
                let mut timing = options.timing;
                if options.fault == Fault::UnderstatedDrift {
                    timing.drift_ppm = 0;
                    timing.guard = tenure::Duration::ZERO;
                }
                Peer {
                    index,
                    n,
                    config: config(n, index, &timing),
                    fault: options.fault,
                    commands: options.commands,
                }
            })
            .collect();
        let placeholder = peers
            .iter()
            .map(|p| {
                let mut s = p.start(&None, &mut Out::new());
                s.clock = Instant::MAX;
                s.key = NodeKey(0);
                Arc::new(s)
            })
            .collect();
        let inner = ActorModel::new(
            Cfg {
                n,
                quorum: n / 2 + 1,
            },
            History::new(n),
        )
        .actors(peers)
        .init_network(if options.duplicating {
            Network::new_unordered_duplicating([])
        } else {
            Network::new_unordered_nonduplicating([])
        })
        .lossy_network(if options.lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        })
        .max_crashes(options.crashes)
        .record_msg_out(|cfg, history, env: Envelope<&Wire>| {
            let mut h = history.clone();
            h.on_send(cfg, usize::from(env.src), &env.msg.0.message);
            (h != *history).then_some(h)
        });
        ActorSystem {
            inner,
            options,
            depth,
            placeholder,
            first: FirstOnly::default(),
        }
    }

    /// The cluster right after its first election, reached from `start` by a prompt run of
    /// this same model (so it is reachable): every message is delivered once, in order, and
    /// then lost (with a lossy network; otherwise it stays deliverable); when nothing is in
    /// flight, the node with the earliest deadline fires its timer. Stops when every node
    /// knows the same live master. Its history is kept, its step count restarts at zero.
    pub fn elected(&self, start: &SysState) -> Option<SysState> {
        let mut s = start.clone();
        let mut delivered = std::collections::HashSet::new();
        for _ in 0..10_000 {
            if self.settled(&s) {
                s.history.steps = 0;
                s.history.fresh.clear();
                return Some(s);
            }
            let mut actions = Vec::new();
            self.inner.actions(&s, &mut actions);
            let next = actions.into_iter().find(|a| match a {
                ActorModelAction::Deliver { src, dst, msg } => {
                    !delivered.contains(&(*src, *dst, *msg))
                }
                _ => false,
            });
            let action = match next {
                Some(ActorModelAction::Deliver { src, dst, msg }) => {
                    delivered.insert((src, dst, msg));
                    ActorModelAction::Deliver { src, dst, msg }
                }
                _ => {
                    let (_, i) = (0..s.actor_states.len())
                        .filter(|&i| !s.crashed[i])
                        .filter_map(|i| Some((s.actor_states[i].node.poll_timeout()?, i)))
                        .min()?;
                    ActorModelAction::Timeout(Id::from(i), Timer::Tick)
                }
            };
            let dropped = match &action {
                ActorModelAction::Deliver { src, dst, msg }
                    if self.options.lossy && self.options.duplicating =>
                {
                    Some(ActorModelAction::Drop(Envelope {
                        src: *src,
                        dst: *dst,
                        msg: *msg,
                    }))
                }
                _ => None,
            };
            s = self.next_state(&s, action)?;
            if let Some(drop) = dropped {
                s = self.next_state(&s, drop)?;
            }
        }
        None
    }

    fn settled(&self, s: &SysState) -> bool {
        let master = s.actor_states[0].node.election_state().master;
        let Some(m) = master else {
            return false;
        };
        (0..s.actor_states.len()).all(|i| {
            let ps = &s.actor_states[i];
            !s.crashed[i]
                && ps.node.master(ps.clock).map(|v| v.node) == Some(m)
                && (ps.node.id() != m || ps.node.is_master(ps.clock))
        })
    }

    fn settle(&self, state: &mut SysState) {
        if let Network::UnorderedDuplicating(_, last) = &mut state.network {
            *last = None;
        }
        for i in 0..state.actor_states.len() {
            if state.crashed[i] {
                state.actor_states[i] = Arc::clone(&self.placeholder[i]);
            } else {
                let s = Arc::clone(&state.actor_states[i]);
                state.history.observe(&self.inner.cfg, i, &s);
            }
        }
    }

    /// A step, readable.
    pub fn describe_action(&self, action: &SysAction) -> String {
        let name = |id: &Id| format!("n{}", usize::from(*id) + 1);
        match action {
            ActorModelAction::Deliver { src, dst, msg } => {
                format!("{} -> {}: {:?}", name(src), name(dst), msg)
            }
            ActorModelAction::Drop(env) => format!(
                "lost: {} -> {}: {:?}",
                name(&env.src),
                name(&env.dst),
                env.msg
            ),
            ActorModelAction::Timeout(id, Timer::Tick) => format!("{} timer fires", name(id)),
            ActorModelAction::Timeout(id, Timer::Release) => {
                format!("{} is told to release", name(id))
            }
            ActorModelAction::Timeout(id, Timer::HandOver) => format!(
                "{} is told to hand over to n{}",
                name(id),
                self.inner.actors[usize::from(*id)].successor().0
            ),
            ActorModelAction::Crash(id) => format!("{} CRASHES", name(id)),
            ActorModelAction::Recover(id) => {
                format!("{} restarts from its saved record", name(id))
            }
            ActorModelAction::SelectRandom { actor, .. } => format!("{} random", name(actor)),
        }
    }

    /// A path, readable: every step, the node it touched, and the violations at the end.
    pub fn describe_path(&self, path: &Path<SysState, SysAction>) -> String {
        let steps = path.clone().into_vec();
        let mut out = String::new();
        let nodes = |out: &mut String, s: &SysState, only: Option<usize>| {
            for (i, ps) in s.actor_states.iter().enumerate() {
                if only.is_some_and(|o| o != i) {
                    continue;
                }
                if s.crashed[i] {
                    let _ = writeln!(out, "      n{}: crashed", i + 1);
                } else {
                    let _ = writeln!(out, "      n{}: {}", i + 1, ps.summary());
                }
            }
        };
        if let Some((first, _)) = steps.first() {
            let _ = writeln!(out, "  initial state:");
            nodes(&mut out, first, None);
        }
        for k in 1..steps.len() {
            let action = steps[k - 1]
                .1
                .as_ref()
                .expect("every step but the last has one");
            let _ = writeln!(out, "  {k:>3}. {}", self.describe_action(action));
            let touched = match action {
                ActorModelAction::Deliver { dst, .. } => Some(usize::from(*dst)),
                ActorModelAction::Timeout(id, _)
                | ActorModelAction::Crash(id)
                | ActorModelAction::Recover(id) => Some(usize::from(*id)),
                _ => None,
            };
            if touched.is_some() {
                nodes(&mut out, &steps[k].0, touched);
            }
        }
        if let Some((last, _)) = steps.last() {
            let _ = writeln!(out, "  final state:");
            nodes(&mut out, last, None);
            for (p, why) in &last.history.violations {
                let _ = writeln!(out, "  VIOLATED {p}: {why}");
            }
        }
        out
    }
}

impl Model for ActorSystem {
    type State = SysState;
    type Action = SysAction;

    fn init_states(&self) -> Vec<SysState> {
        let mut fresh = self.inner.init_states();
        for s in &mut fresh {
            self.settle(s);
            s.history.fresh = s.history.news(&History::new(self.options.nodes));
        }
        let mut states = Vec::new();
        if self.options.from_elected {
            states.extend(fresh.iter().filter_map(|s| self.elected(s)));
        }
        if self.options.from_fresh {
            states.extend(fresh);
        }
        states
    }

    fn actions(&self, state: &SysState, actions: &mut Vec<SysAction>) {
        if state.history.steps < self.depth {
            self.inner.actions(state, actions);
        }
    }

    fn next_state(&self, last: &SysState, action: SysAction) -> Option<SysState> {
        let restarting = match action {
            ActorModelAction::Recover(id) => Some(usize::from(id)),
            _ => None,
        };
        let mut next = self.inner.next_state(last, action)?;
        next.history.steps = last.history.steps + 1;
        next.history.restarting = restarting;
        self.settle(&mut next);
        next.history.fresh = next.history.news(&last.history);
        Some(next)
    }

    fn format_action(&self, action: &SysAction) -> String {
        self.describe_action(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        fn fresh(s: &SysState, property: &str) -> bool {
            s.history.fresh.contains(&property)
        }
        fn always(m: &ActorSystem, s: &SysState, property: &'static str) -> bool {
            m.first.always(property, fresh(s, property))
        }
        fn sometimes(m: &ActorSystem, s: &SysState, property: &'static str) -> bool {
            m.first.sometimes(property, fresh(s, property))
        }
        let mut p = vec![
            Property::<Self>::always(AGREEMENT, |m, s| always(m, s, AGREEMENT)),
            Property::<Self>::always(SAME_STATE, |m, s| always(m, s, SAME_STATE)),
            Property::<Self>::always(ONE_OP_PER_VERSION, |m, s| always(m, s, ONE_OP_PER_VERSION)),
            Property::<Self>::always(PROMISES_KEPT, |m, s| always(m, s, PROMISES_KEPT)),
            Property::<Self>::always(PROMISES_DURABLE, |m, s| always(m, s, PROMISES_DURABLE)),
            Property::<Self>::always(COMMITS_DURABLE, |m, s| always(m, s, COMMITS_DURABLE)),
            Property::<Self>::always(VERSION_GROWS, |m, s| always(m, s, VERSION_GROWS)),
            Property::<Self>::sometimes(MASTER_CHOSEN, |m, s| sometimes(m, s, MASTER_CHOSEN)),
        ];
        if self.options.commands.any() {
            p.push(Property::<Self>::sometimes(RELEASE_CHOSEN, |m, s| {
                sometimes(m, s, RELEASE_CHOSEN)
            }));
        }
        if self.options.commands.hand_over() {
            p.push(Property::<Self>::sometimes(HANDOVER_DONE, |m, s| {
                sometimes(m, s, HANDOVER_DONE)
            }));
        }
        p
    }
}

/// Checks the actor model within `limits`.
pub fn check(options: ActorOptions, limits: &Limits) -> Report {
    let setup = options.describe();
    super::run(
        ActorSystem::new(options, limits.depth),
        "actor",
        setup,
        limits,
        |m, path| m.describe_path(path),
    )
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in &self.chosen {
            writeln!(f, "chosen i{i}: {}", describe_op(op))?;
        }
        for (p, why) in &self.violations {
            writeln!(f, "VIOLATED {p}: {why}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_state_is_clean() {
        let m = ActorSystem::new(ActorOptions::default(), 3);
        let init = m.init_states();
        assert_eq!(init.len(), 2, "elected and fresh");
        assert!(m.settled(&init[0]));
        assert!(init[0].history.master_chosen);
        assert!(!m.settled(&init[1]));
        for s in &init {
            assert!(s.history.violations.is_empty());
            assert!(s.actor_storages.iter().all(Option::is_some));
            assert_eq!(s.history.steps, 0);
        }
        let mut actions = Vec::new();
        m.actions(&init[1], &mut actions);
        assert!(actions
            .iter()
            .any(|a| matches!(a, ActorModelAction::Timeout(_, Timer::Tick))));
    }
}

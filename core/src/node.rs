//! The node: ties the acceptor, proposer, learner and election together behind a sans-IO
//! interface.

use core::fmt;

use crate::acceptor::{Acceptor, Vote};
use crate::ballot::{Ballot, MAX_SANE_INSTANCE, MAX_SANE_ROUND};
use crate::config::{Config, ConfigError, NodeId, Role};
use crate::election::{Election, ElectionState, Intent, Op};
use crate::event::{Event, TermEnd};
use crate::proposer::Proposer;
use crate::rand::Rng;
use crate::record::{Record, RecordError};
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::timer::{Timer, Timers};
use crate::wire::{Header, Message, Packet, PROTOCOL_VERSION};

/// The most outputs one input (message, timeout or command) can produce.
pub const MAX_OUTPUTS_PER_INPUT: usize = 8;

/// Capacity of the output queue. An input is refused (and counted as
/// [`DropReason::Backlog`]) unless [`MAX_OUTPUTS_PER_INPUT`] slots are free, so the queue
/// can never overflow. Sends to every other member are one output
/// ([`Destination::All`]), so the bound does not grow with the member count.
pub const QUEUE_CAPACITY: usize = MAX_OUTPUTS_PER_INPUT;

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Destination {
    /// One member.
    Node(NodeId),
    /// Every member except this node.
    All,
}

/// What the driver must do, drained in order with [`Node::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Output {
    /// Store this record durably (atomically replacing the previous one) **before**
    /// executing any later output. It is the node's whole durable state as of the
    /// moment it is polled, so storing it also covers every earlier change.
    Persist(Record),
    /// Encode and send this packet.
    Send {
        /// To whom.
        to: Destination,
        /// What (turn it into a frame with [`Node::seal`]).
        packet: Packet,
    },
    /// Tell the application.
    Event(Event),
}

/// The master as one node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MasterView {
    /// The master.
    pub node: NodeId,
    /// Its version (the instance that last made or renewed it): a fencing token.
    pub version: u64,
    /// For the master itself, the end of its term on its own clock; `None` on other
    /// nodes (only the master can be sure of its term).
    pub term_end: Option<Instant>,
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandError {
    /// Only the master may release or hand over.
    NotMaster,
    /// This node's role may not campaign.
    NotCandidate,
    /// A master is live in this node's view.
    MasterAlive(NodeId),
    /// The successor is not another candidate of the cluster.
    InvalidSuccessor(NodeId),
    /// The previous outputs were not drained.
    Backlog,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NotMaster => write!(f, "this node is not master"),
            CommandError::NotCandidate => write!(f, "this node is not a candidate"),
            CommandError::MasterAlive(n) => write!(f, "node {n} is master"),
            CommandError::InvalidSuccessor(n) => {
                write!(f, "node {n} is not another candidate of this cluster")
            }
            CommandError::Backlog => write!(f, "outputs not drained"),
        }
    }
}

impl core::error::Error for CommandError {}

/// Why a node could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StartError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The record does not belong to this node.
    Record(RecordError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Record(e) => write!(f, "unusable record: {e}"),
        }
    }
}

impl core::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

/// A fixed ring of pending outputs. Popped slots are cleared and an empty ring restarts
/// at slot 0, so equal contents always compare (and hash) equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct OutputQueue {
    items: [Option<Pending>; QUEUE_CAPACITY],
    head: usize,
    len: usize,
}

impl OutputQueue {
    fn len(&self) -> usize {
        self.len
    }
    fn push(&mut self, p: Pending) -> bool {
        if self.len == QUEUE_CAPACITY {
            return false;
        }
        self.items[(self.head + self.len) % QUEUE_CAPACITY] = Some(p);
        self.len += 1;
        true
    }
    fn pop(&mut self) -> Option<Pending> {
        if self.len == 0 {
            return None;
        }
        let p = self.items[self.head].take();
        self.len -= 1;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + 1) % QUEUE_CAPACITY
        };
        p
    }
    fn last(&self) -> Option<&Pending> {
        if self.len == 0 {
            return None;
        }
        self.items[(self.head + self.len - 1) % QUEUE_CAPACITY].as_ref()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Pending {
    Persist,
    Send { to: Destination, message: Message },
    Event(Event),
}

/// One member of a Tenure cluster: a sans-IO state machine.
///
/// # Call protocol
///
/// The node never reads a clock, never sends, never stores: the driver does, in this
/// loop.
///
/// 1. **Start** with [`Node::first_boot`] (a brand-new node that never stored a record)
///    or [`Node::restore`] (every later start, from the last stored [`Record`]).
/// 2. **Feed inputs**, each with `now` from a monotonic clock (never earlier than a
///    previous `now`):
///    - [`handle_frame`](Self::handle_frame) for every frame received (it verifies the
///      tag, decodes, and counts what it drops), or [`handle_message`](Self::handle_message)
///      for a packet the driver decoded itself;
///    - [`handle_timeout`](Self::handle_timeout) when `now` reaches
///      [`poll_timeout`](Self::poll_timeout);
///    - commands: [`release`](Self::release), [`hand_over`](Self::hand_over),
///      [`campaign`](Self::campaign).
/// 3. **After every input, drain** [`poll_output`](Self::poll_output) until `None` and
///    execute the outputs **in order**: a [`Output::Persist`] must be durable before any
///    later [`Output::Send`] leaves (a reply may only promise what is on disk). An input
///    given while outputs are still queued is refused and counted.
/// 4. **Re-arm the timer** from [`poll_timeout`](Self::poll_timeout) (it changes after
///    every input).
///
/// Queries ([`master`](Self::master), [`is_master`](Self::is_master),
/// [`version`](Self::version), [`stats`](Self::stats)) are pure and may be asked at any
/// time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node<const N: usize> {
    pub(crate) config: Config<N>,
    pub(crate) me_index: usize,
    /// First undecided instance.
    pub(crate) instance: u64,
    pub(crate) acceptor: Acceptor,
    /// The op chosen in `instance - 1`, if known (to answer a node one behind).
    pub(crate) last_chosen: Option<Op>,
    pub(crate) proposer: Proposer,
    pub(crate) election: Election,
    pub(crate) rng: Rng,
    queue: OutputQueue,
    timers: Timers,
    /// The live master last reported in an event.
    reported: Option<(NodeId, u64)>,
    pub(crate) last_catch_up: Option<(u64, Instant)>,
    now: Instant,
    pub(crate) stats: Stats,
}

impl<const N: usize> Node<N> {
    /// Starts a node that has never stored a record. Its first output is the record to
    /// store. Use this only for a node's very first start: restarting a node from
    /// nothing forgets its promises and can break safety.
    pub fn first_boot(config: Config<N>, now: Instant) -> Result<Self, StartError> {
        config.validate()?;
        let record = Record {
            cluster: config.cluster_id,
            node: config.node_id,
            incarnation: 1,
            instance: 0,
            promised: Ballot::ZERO,
            accepted: None,
            election: ElectionState::default(),
        };
        Ok(Self::start(config, record, now))
    }

    /// Restarts a node from the last record it stored. The node's first output is the
    /// updated record (its incarnation increased): store it before anything else.
    ///
    /// A restored node never believes it is master; a master it knew of is given a
    /// full lease counted from now.
    pub fn restore(config: Config<N>, record: Record, now: Instant) -> Result<Self, StartError> {
        config.validate()?;
        if record.cluster != config.cluster_id {
            return Err(StartError::Record(RecordError::WrongCluster {
                expected: config.cluster_id,
                found: record.cluster,
            }));
        }
        if record.node != config.node_id {
            return Err(StartError::Record(RecordError::WrongNode {
                expected: config.node_id,
                found: record.node,
            }));
        }
        let mut record = record;
        record.incarnation = record.incarnation.saturating_add(1);
        Ok(Self::start(config, record, now))
    }

    fn start(config: Config<N>, record: Record, now: Instant) -> Self {
        let me = config.node_id;
        let me_index = config.index_of(me).unwrap_or(0);
        let seed = config.seed
            ^ (u64::from(me.0) << 48)
            ^ (u64::from(record.incarnation) << 16)
            ^ 0x5445_4E55_5245;
        let mut election = Election::new(me, record.election, record.incarnation);
        election.restart(now, &config);
        let mut node = Node {
            me_index,
            instance: record.instance,
            acceptor: Acceptor {
                promised: record.promised,
                accepted: record.accepted,
            },
            last_chosen: None,
            proposer: Proposer::default(),
            election,
            rng: Rng::new(seed),
            queue: OutputQueue::default(),
            timers: Timers::default(),
            reported: None,
            last_catch_up: None,
            now,
            stats: Stats::default(),
            config,
        };
        // The new incarnation must be durable before any op id of it leaves.
        node.persist();
        node.step(now);
        node
    }

    // ----- inputs -------------------------------------------------------------------

    /// Handles one packet received from the network (for a driver that decoded it
    /// itself; most drivers call [`handle_frame`](Self::handle_frame)). Returns why the
    /// packet was dropped, if it was; every drop is also counted once in
    /// [`Stats::dropped`].
    pub fn handle_message(&mut self, now: Instant, packet: &Packet) -> Result<(), DropReason> {
        let now = self.advance(now);
        if !self.has_room() {
            return Err(self.dropped(DropReason::Backlog));
        }
        self.stats.messages_in += 1;
        let from = packet.header.from;
        let result = match self.check(packet) {
            Ok(from_index) => {
                if self.dispatch(now, from, from_index, packet.message) {
                    Ok(())
                } else {
                    Err(self.dropped(DropReason::Stale))
                }
            }
            Err(reason) => return Err(self.dropped(reason)),
        };
        self.step(now);
        result
    }

    /// Handles one frame as received (datagram, or a frame from a
    /// [`FrameReader`](crate::FrameReader)): checks its size, verifies its tag with the
    /// configured [`Auth`](crate::Auth), decodes it and handles it. Nothing of a frame is
    /// read before its tag verified. Returns why the frame was dropped, if it was; every
    /// drop is also counted once in [`Stats::dropped`].
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Result<(), DropReason> {
        let packet = self.open(frame)?;
        self.handle_message(now, &packet)
    }

    /// Like [`handle_frame`](Self::handle_frame), for a driver that knows which member
    /// the frame came from (by its address): a frame whose header names another member
    /// is dropped as [`DropReason::SourceMismatch`].
    pub fn handle_frame_from(
        &mut self,
        now: Instant,
        from: NodeId,
        frame: &[u8],
    ) -> Result<(), DropReason> {
        let packet = self.open(frame)?;
        let h = packet.header;
        if h.cluster == self.config.cluster_id && h.protocol == PROTOCOL_VERSION && h.from != from {
            self.advance(now);
            return Err(self.dropped(DropReason::SourceMismatch));
        }
        self.handle_message(now, &packet)
    }

    /// Size check, tag and decode.
    fn open(&mut self, frame: &[u8]) -> Result<Packet, DropReason> {
        let largest = if self.config.auth.is_secure() {
            crate::MAX_SEALED_SIZE
        } else {
            crate::MAX_PACKET_SIZE
        };
        if frame.len() > largest {
            return Err(self.dropped(DropReason::Oversized));
        }
        crate::auth::open(frame, &self.config.auth).map_err(|e| {
            self.dropped(match e {
                crate::WireError::BadTag => DropReason::BadTag,
                _ => DropReason::Malformed,
            })
        })
    }

    /// Counts a drop and hands the reason back.
    fn dropped(&mut self, reason: DropReason) -> DropReason {
        self.stats.dropped.add(reason);
        reason
    }

    /// Encodes `packet` (from [`Output::Send`]) and appends the authentication tag of
    /// the configured [`Auth`](crate::Auth); returns the frame length. A buffer of
    /// [`MAX_SEALED_SIZE`](crate::MAX_SEALED_SIZE) bytes always suffices.
    pub fn seal(&self, packet: &Packet, buf: &mut [u8]) -> Result<usize, crate::WireError> {
        crate::auth::seal(packet, &self.config.auth, buf)
    }

    /// Handles the timer set by [`poll_timeout`](Self::poll_timeout). Calling it early or
    /// late is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        if !self.has_room() {
            return; // timers stay due; the driver drains and calls again
        }
        if self.timers.is_due(Timer::Round, now) || self.timers.is_due(Timer::Backoff, now) {
            self.on_proposer_deadline(now);
        }
        self.step(now);
    }

    /// Test-only fault injection: make this node's state machine apply BeMaster ops
    /// whatever their version (the bug the version check prevents). Exists only in the
    /// test-only `tenure-fault` build of this source (`--cfg tenure_fault_injection`),
    /// which nothing a user builds depends on; model checkers and simulators use it to
    /// prove they catch the bug.
    #[cfg(tenure_fault_injection)]
    #[doc(hidden)]
    pub fn inject_ignore_version_check(&mut self, on: bool) {
        self.election.ignore_version_check = on;
    }

    /// Gives up the role now: this node stops being master at once (before this call
    /// returns) and proposes a release so the others may elect a new master without
    /// waiting for the lease to run out.
    pub fn release(&mut self, now: Instant) -> Result<(), CommandError> {
        self.give_up(now, None)
    }

    /// Like [`release`](Self::release), and names `to` as successor: the others let it
    /// campaign first for [`Config::handover_grace`].
    pub fn hand_over(&mut self, now: Instant, to: NodeId) -> Result<(), CommandError> {
        let ok = to != self.config.node_id
            && self
                .config
                .member(to)
                .is_some_and(|m| m.role == Role::Candidate);
        if !ok {
            return Err(CommandError::InvalidSuccessor(to));
        }
        self.give_up(now, Some(to))
    }

    fn give_up(&mut self, now: Instant, to: Option<NodeId>) -> Result<(), CommandError> {
        let now = self.advance(now);
        if !self.is_master(now) {
            return Err(CommandError::NotMaster);
        }
        if !self.has_room() {
            return Err(CommandError::Backlog);
        }
        self.election.release(now, to);
        self.stats.releases += 1;
        self.step(now);
        Ok(())
    }

    /// Campaigns now instead of after the usual random delay, if no master is live.
    pub fn campaign(&mut self, now: Instant) -> Result<(), CommandError> {
        let now = self.advance(now);
        if self.config.role() != Role::Candidate {
            return Err(CommandError::NotCandidate);
        }
        if let Some(m) = self.election.live_master(now) {
            return Err(CommandError::MasterAlive(m));
        }
        if !self.has_room() {
            return Err(CommandError::Backlog);
        }
        self.election.campaign_now(now);
        self.step(now);
        Ok(())
    }

    // ----- outputs ------------------------------------------------------------------

    /// The next output to execute, in order. Drain until `None` after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        Some(match self.queue.pop()? {
            Pending::Persist => Output::Persist(self.record()),
            Pending::Send { to, message } => Output::Send {
                to,
                packet: Packet {
                    header: self.header(),
                    message,
                },
            },
            Pending::Event(e) => Output::Event(e),
        })
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next (`None`: only inputs
    /// can change anything): the earliest entry of [`timers`](Self::timers).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest().map(|(_, at)| at)
    }

    /// The timer table as of the last input: when the node next needs
    /// [`handle_timeout`](Self::handle_timeout), and for what.
    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// Rewrites the timer table from the state; the last thing every input does.
    fn arm_timers(&mut self) {
        let proposer = self.proposer.deadline;
        let backoff = self.proposer.phase == crate::proposer::Phase::Backoff;
        let idle = self.proposer.is_idle();
        let t = &mut self.timers;
        t.set(Timer::Round, proposer.filter(|_| !backoff));
        t.set(Timer::Backoff, proposer.filter(|_| backoff));
        t.set(Timer::Campaign, self.election.campaign_at.filter(|_| idle));
        let master = self.election.live_master(self.now) == Some(self.config.node_id);
        t.set(
            Timer::Renewal,
            self.election.renew_at.filter(|_| idle && master),
        );
        t.set(
            Timer::Expiry,
            self.reported.map(|_| self.election.expires_at),
        );
    }

    // ----- queries ------------------------------------------------------------------

    /// The master in this node's view at `now`, if its lease is live.
    pub fn master(&self, now: Instant) -> Option<MasterView> {
        let node = self.election.live_master(now)?;
        Some(MasterView {
            node,
            version: self.election.state.version.unwrap_or(0),
            term_end: (node == self.config.node_id).then_some(self.election.expires_at),
        })
    }

    /// Whether this node is master at `now`. Act on it only with the version as a
    /// fencing token: a process can pause right after asking.
    pub fn is_master(&self, now: Instant) -> bool {
        self.election.live_master(now) == Some(self.config.node_id)
    }

    /// The version (instance of the last effective election op), `None` before any.
    pub fn version(&self) -> Option<u64> {
        self.election.state.version
    }

    /// The replicated election state (holder, version) regardless of lease.
    pub fn election_state(&self) -> &ElectionState {
        &self.election.state
    }

    /// The first undecided Paxos instance.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.node_id
    }

    /// The configuration.
    pub fn config(&self) -> &Config<N> {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The durable record as of now (what the next [`Output::Persist`] would carry).
    pub fn record(&self) -> Record {
        Record {
            cluster: self.config.cluster_id,
            node: self.config.node_id,
            incarnation: self.election.incarnation,
            instance: self.instance,
            promised: self.acceptor.promised,
            accepted: self.acceptor.accepted,
            election: self.election.state,
        }
    }

    /// The header this node puts on its packets.
    pub fn header(&self) -> Header {
        Header {
            protocol: PROTOCOL_VERSION,
            cluster: self.config.cluster_id,
            from: self.config.node_id,
        }
    }

    // ----- internals ----------------------------------------------------------------

    fn advance(&mut self, now: Instant) -> Instant {
        if now < self.now {
            self.stats.clock_regressions += 1;
        } else {
            self.now = now;
        }
        self.now
    }

    fn has_room(&self) -> bool {
        QUEUE_CAPACITY - self.queue.len() >= MAX_OUTPUTS_PER_INPUT
    }

    fn push(&mut self, p: Pending) {
        if !self.queue.push(p) {
            self.stats.queue_overflows += 1;
        }
    }

    pub(crate) fn persist(&mut self) {
        if self.queue.last() == Some(&Pending::Persist) {
            return; // one record covers both
        }
        self.stats.persists += 1;
        self.push(Pending::Persist);
    }

    pub(crate) fn send(&mut self, to: Destination, message: Message) {
        self.stats.messages_out += 1;
        self.push(Pending::Send { to, message });
    }

    fn event(&mut self, e: Event) {
        self.push(Pending::Event(e));
    }

    /// Validates a packet against the configuration; returns the sender's index.
    fn check(&self, packet: &Packet) -> Result<usize, DropReason> {
        let h = packet.header;
        if h.protocol > PROTOCOL_VERSION {
            return Err(DropReason::NewerProtocol);
        }
        if h.protocol != PROTOCOL_VERSION {
            return Err(DropReason::BadField);
        }
        if h.cluster != self.config.cluster_id {
            return Err(DropReason::WrongCluster);
        }
        let from = h.from;
        let (index, role) = match self.config.index_of(from) {
            Some(i) if from != self.config.node_id => (i, self.config.members[i].role),
            _ => return Err(DropReason::NotMember),
        };
        let ballot_ok =
            |b: Ballot| b.round <= MAX_SANE_ROUND && self.config.member(b.node).is_some();
        let op_ok = |op: &Op, instance: u64| self.op_ok(op, instance);
        let instance = match packet.message {
            Message::Prepare { instance, .. }
            | Message::Promise { instance, .. }
            | Message::Accept { instance, .. }
            | Message::Accepted { instance, .. }
            | Message::Reject { instance, .. }
            | Message::Commit { instance, .. }
            | Message::Chosen { instance, .. } => instance,
            Message::CatchUp { next_instance } | Message::Snapshot { next_instance, .. } => {
                next_instance
            }
        };
        if instance > MAX_SANE_INSTANCE {
            return Err(DropReason::BadField);
        }
        let ok = match packet.message {
            Message::Prepare { ballot, .. } => {
                if role != Role::Candidate || ballot.node != from {
                    return Err(DropReason::NotMember);
                }
                ballot_ok(ballot)
            }
            Message::Accept {
                instance,
                ballot,
                op,
            } => {
                if role != Role::Candidate || ballot.node != from {
                    return Err(DropReason::NotMember);
                }
                ballot_ok(ballot) && op_ok(&op, instance)
            }
            Message::Promise {
                instance,
                ballot,
                accepted,
            } => {
                if !role.votes() {
                    return Err(DropReason::NotMember);
                }
                ballot_ok(ballot)
                    && accepted.is_none_or(|p| ballot_ok(p.ballot) && op_ok(&p.op, instance))
            }
            Message::Accepted { ballot, .. } => {
                if !role.votes() {
                    return Err(DropReason::NotMember);
                }
                ballot_ok(ballot)
            }
            Message::Reject {
                ballot, promised, ..
            } => {
                if !role.votes() {
                    return Err(DropReason::NotMember);
                }
                ballot_ok(ballot) && ballot_ok(promised)
            }
            Message::Commit { ballot, .. } => ballot_ok(ballot),
            Message::Chosen { instance, op } => op_ok(&op, instance),
            Message::CatchUp { .. } => true,
            Message::Snapshot {
                next_instance,
                state,
            } => {
                state.version.is_none_or(|v| v < next_instance)
                    && state.master.is_none_or(|m| self.is_candidate(m))
                    && state.successor.is_none_or(|m| self.is_candidate(m))
                    && (state.master.is_none() || self.lease_ok(state.lease))
            }
        };
        if ok {
            Ok(index)
        } else {
            Err(DropReason::BadField)
        }
    }

    fn is_candidate(&self, id: NodeId) -> bool {
        self.config
            .member(id)
            .is_some_and(|m| m.role == Role::Candidate)
    }

    fn lease_ok(&self, lease: crate::time::Duration) -> bool {
        lease > crate::time::Duration::ZERO && lease <= self.config.lease.saturating_mul(100)
    }

    /// An op makes sense in `instance`: proposed by a candidate, about an earlier
    /// version, with a sane lease.
    fn op_ok(&self, op: &Op, instance: u64) -> bool {
        match *op {
            Op::BeMaster {
                node,
                version,
                lease,
                ..
            } => {
                self.is_candidate(node)
                    && version.is_none_or(|v| v < instance)
                    && self.lease_ok(lease)
            }
            Op::Release {
                node,
                version,
                successor,
                ..
            } => {
                self.is_candidate(node)
                    && version < instance
                    && successor.is_none_or(|s| self.is_candidate(s))
            }
        }
    }

    /// Routes a checked message; returns false when it was stale (nothing to do).
    fn dispatch(&mut self, now: Instant, from: NodeId, from_index: usize, msg: Message) -> bool {
        let votes = self.config.role().votes();
        match msg {
            Message::Prepare { instance, ballot } => {
                self.proposer.see(ballot);
                if instance < self.instance {
                    self.answer_behind(from, instance);
                } else if instance > self.instance {
                    self.request_catch_up(now, from);
                } else if votes {
                    self.vote_prepare(from, instance, ballot);
                }
                true
            }
            Message::Accept {
                instance,
                ballot,
                op,
            } => {
                self.proposer.see(ballot);
                if instance < self.instance {
                    self.answer_behind(from, instance);
                } else if instance > self.instance {
                    self.request_catch_up(now, from);
                } else if votes {
                    self.vote_accept(from, instance, ballot, op);
                } else {
                    // A learner keeps the value so a Commit can name it by ballot.
                    self.acceptor.accepted = Some(crate::acceptor::Proposal { ballot, op });
                }
                true
            }
            Message::Promise {
                instance,
                ballot,
                accepted,
            } => self.on_promise(now, from_index, instance, ballot, accepted),
            Message::Accepted { instance, ballot } => {
                self.on_accepted(now, from_index, instance, ballot)
            }
            Message::Reject {
                instance,
                ballot,
                promised,
            } => self.on_reject(now, from_index, instance, ballot, promised),
            Message::Commit { instance, ballot } => {
                if instance < self.instance {
                    return false;
                }
                match self.acceptor.accepted {
                    Some(p) if instance == self.instance && p.ballot == ballot => {
                        self.learn(now, p.op)
                    }
                    _ => self.request_catch_up(now, from),
                }
                true
            }
            Message::Chosen { instance, op } => {
                if instance < self.instance {
                    return false;
                }
                if instance == self.instance {
                    self.learn(now, op);
                } else {
                    self.request_catch_up(now, from);
                }
                true
            }
            Message::CatchUp { next_instance } => {
                if next_instance >= self.instance {
                    return false;
                }
                self.answer_behind(from, next_instance);
                true
            }
            Message::Snapshot {
                next_instance,
                state,
            } => {
                if next_instance <= self.instance {
                    return false;
                }
                self.install(now, next_instance, state);
                true
            }
        }
    }

    fn vote_prepare(&mut self, from: NodeId, instance: u64, ballot: Ballot) {
        let reply = match self.acceptor.prepare(ballot) {
            Vote::Granted { reply, changed } => {
                if changed {
                    // SAFETY-OF-PROTOCOL: the promise is durable before it is sent.
                    self.persist();
                }
                Message::Promise {
                    instance,
                    ballot,
                    accepted: reply,
                }
            }
            Vote::Refused { promised } => Message::Reject {
                instance,
                ballot,
                promised,
            },
        };
        self.send(Destination::Node(from), reply);
    }

    fn vote_accept(&mut self, from: NodeId, instance: u64, ballot: Ballot, op: Op) {
        let reply = match self.acceptor.accept(ballot, op) {
            Vote::Granted { changed, .. } => {
                if changed {
                    // SAFETY-OF-PROTOCOL: the acceptance is durable before it is sent.
                    self.persist();
                }
                Message::Accepted { instance, ballot }
            }
            Vote::Refused { promised } => Message::Reject {
                instance,
                ballot,
                promised,
            },
        };
        self.send(Destination::Node(from), reply);
    }

    /// After every input: report view changes, let the election propose, re-arm the
    /// timers.
    fn step(&mut self, now: Instant) {
        self.propose_if_due(now);
        self.arm_timers();
    }

    fn propose_if_due(&mut self, now: Instant) {
        self.report_view(now);
        if let Some(intent) =
            self.election
                .evaluate(now, &self.config, &mut self.rng, self.proposer.is_idle())
        {
            let op = match intent {
                Intent::Campaign(op) => {
                    self.stats.elections_started += 1;
                    op
                }
                Intent::Renew(op) => {
                    self.stats.renewals += 1;
                    op
                }
                Intent::Release(op) => op,
            };
            self.propose(now, op);
            self.report_view(now);
            if self.proposer.is_idle() {
                // The proposal completed inside this call (a single voter): schedule the
                // next step (a campaign after a release, say) without proposing again
                // in the same input.
                let _ = self
                    .election
                    .evaluate(now, &self.config, &mut self.rng, false);
            }
        }
    }

    /// Emits events for every change of the live master since the last report.
    fn report_view(&mut self, now: Instant) {
        let me = self.config.node_id;
        let current = self
            .election
            .live_master(now)
            .map(|m| (m, self.election.state.version.unwrap_or(0)));
        let previous = self.reported;
        self.reported = current;
        match (previous, current) {
            (Some((p, _)), Some((c, _))) if p == c => return, // renewal
            (None, None) => return,
            _ => {}
        }
        if let Some((old, version)) = previous {
            let reason = match (current, self.election.state.master) {
                (Some(_), _) => TermEnd::Superseded,
                (None, None) => TermEnd::Released,
                (None, Some(_)) if old == me && self.election.releasing.is_some() => {
                    TermEnd::Released
                }
                (None, Some(m)) if m == old => TermEnd::Expired,
                (None, Some(_)) => TermEnd::Superseded,
            };
            self.event(if old == me {
                Event::TermEnded { version, reason }
            } else {
                Event::MasterLost {
                    node: old,
                    version,
                    reason,
                }
            });
        }
        if let Some((new, version)) = current {
            if new == me {
                self.stats.elections_won += 1;
                self.event(Event::BecameMaster {
                    version,
                    term_end: self.election.expires_at,
                });
            } else {
                self.event(Event::MasterElected { node: new, version });
            }
        }
    }
}

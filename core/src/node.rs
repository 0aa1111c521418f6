//! The node: ties the acceptor, proposer, learner and election together behind a sans-IO
//! interface.

use core::fmt;

use crate::acceptor::{Acceptor, Vote};
use crate::auth::Tags;
use crate::ballot::{Ballot, MAX_SANE_INSTANCE, MAX_SANE_ROUND};
use crate::config::{Config, ConfigError, NodeId, Renewal, Role};
use crate::election::{Election, ElectionState, Intent, Op};
use crate::event::{Event, TermEnd};
use crate::lease::{Guards, RenewStep, Renewer};
use crate::members::MemberList;
use crate::proposer::{Limits, Proposer, Step};
use crate::rand::Rng;
use crate::record::{Record, RecordError};
use crate::stats::{DropReason, Stats};
use crate::time::{Duration, Instant};
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
    /// Store [`Node::record`] durably (atomically replacing the previous one)
    /// **before** executing any later output. The record is the node's whole durable
    /// state as of the moment it is read, so storing it also covers every earlier
    /// change. (The output carries no copy of it: read it with [`Node::record`] when
    /// this output is polled, before the next input.)
    Persist,
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
    /// The fencing token of its term: the instance of the op that began the term. It
    /// stays fixed through the term and is strictly higher in every later term; every
    /// write done as master must carry it.
    pub token: u64,
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
pub(crate) struct OutputQueue {
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
    pub(crate) fn pop(&mut self) -> Option<Pending> {
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
    /// Puts `p` before a trailing [`Pending::Persist`] (else at the end); false when full.
    fn push_before_persist(&mut self, p: Pending) -> bool {
        if self.last() != Some(&Pending::Persist) {
            return self.push(p);
        }
        if self.len == QUEUE_CAPACITY {
            return false;
        }
        self.items[(self.head + self.len - 1) % QUEUE_CAPACITY] = Some(p);
        self.items[(self.head + self.len) % QUEUE_CAPACITY] = Some(Pending::Persist);
        self.len += 1;
        true
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
///    or [`Node::restore`] (every later start, from the last stored [`Record`]); a
///    node joining a running cluster starts with [`Node::join`], one that lost its
///    record with [`Node::rejoin`].
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
    /// Protocol 2, voter side: guards, seq high-water mark, restart silence.
    pub(crate) guards: Guards,
    /// Protocol 2, master side: the renewal rounds of the current term.
    pub(crate) renewer: Option<Renewer>,
    /// The own term was just ended by a clock regression (the event's reason).
    clock_ended: bool,
    /// A membership change this node (as master) is proposing.
    pub(crate) pending_change: Option<Op>,
    /// When this node applied the last membership change (this incarnation).
    pub(crate) members_changed_at: Option<Instant>,
    /// Begin of the latest renewal round a majority completed (lease mode).
    pub(crate) last_round_begin: Option<Instant>,
    /// The register's member list this node must fetch (after a snapshot across a
    /// change it did not apply): the change's instance and the list's digest, the
    /// members received so far, and when it last asked.
    pub(crate) members_wanted: Option<(u64, u32)>,
    pub(crate) members_staged: heapless::Vec<crate::config::Member, N>,
    pub(crate) members_asked: Option<Instant>,
    /// Rejoin after a lost record (§10, durable): 0 when not rejoining, else the first
    /// instance this node may vote in (`rejoin::ASKING` until a majority answered). The
    /// voters that answered (by position), the highest instance among them, when this
    /// node last asked, and the nonce its answers must echo.
    pub(crate) rejoin: u64,
    pub(crate) rejoin_heard: u32,
    pub(crate) rejoin_max: u64,
    pub(crate) rejoin_asked: Option<Instant>,
    pub(crate) rejoin_nonce: u32,
    /// Planted faults (test-only build).
    #[cfg(tenure_fault_injection)]
    pub(crate) faults: crate::fault::Faults,
    pub(crate) queue: OutputQueue,
    timers: Timers,
    /// The live master last reported in an event, and its token.
    reported: Option<(NodeId, u64)>,
    /// The end of the reported master's view as of the last report.
    reported_end: Instant,
    pub(crate) last_catch_up: Option<(u64, Instant)>,
    now: Instant,
    pub(crate) stats: Stats,
    /// The configured keys' tag states, computed once at start.
    tags: TagCache,
}

/// The [`Tags`] of `config.auth`, computed once. A pure function of the configuration
/// (which is compared and hashed with the node), so it takes no part in equality or
/// hashing.
#[derive(Clone, Debug)]
struct TagCache(Tags);

impl PartialEq for TagCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for TagCache {}
impl core::hash::Hash for TagCache {
    fn hash<H: core::hash::Hasher>(&self, _: &mut H) {}
}

impl<const N: usize> Node<N> {
    /// Starts a node that has never stored a record. Its first output is the record to
    /// store. Use this only for a node's very first start: restarting a node from
    /// nothing forgets its promises and can break safety.
    pub fn first_boot(config: Config<N>, now: Instant) -> Result<Self, StartError> {
        Self::fresh(config, now, false, 0, false)
    }

    /// Starts a node that has never stored a record and joins a running cluster: give
    /// it the member list with itself added, and have the master add it
    /// ([`Node::add_member`]). It votes for no one and does not campaign until it has
    /// installed a state at or after the change that added it (whose member list is
    /// its own); it catches up like any node that fell behind.
    pub fn join(config: Config<N>, now: Instant) -> Result<Self, StartError> {
        Self::fresh(config, now, true, 0, false)
    }

    /// Starts a node that lost its record, as a new incarnation (never use
    /// [`Node::first_boot`] for it: it would forget its promises). Its first output is
    /// the record to store. It votes for no one, grants no guard and does not campaign
    /// (it still follows the master and catches up) until it has heard the instances of
    /// a majority of the other voters and learned two more instances decided after the
    /// highest of them (`docs/algorithm.md` §10).
    /// It keeps the restart silence of a restored node too. The rejoin is stored in the
    /// record: a node restored while rejoining goes on rejoining.
    pub fn rejoin(config: Config<N>, now: Instant) -> Result<Self, StartError> {
        Self::fresh(config, now, true, crate::rejoin::ASKING, true)
    }

    /// A node with no stored record: its first record, incarnation 1 at instance 0, with
    /// the configured list, then started (`restored`: keep the restart silence).
    fn fresh(
        config: Config<N>,
        now: Instant,
        standby: bool,
        rejoin: u64,
        restored: bool,
    ) -> Result<Self, StartError> {
        config.validate()?;
        let record = Record {
            cluster: config.cluster_id,
            node: config.node_id,
            incarnation: 1,
            instance: 0,
            promised: Ballot::ZERO,
            accepted: None,
            election: ElectionState::default(),
            members: MemberList::from_slice(&config.members),
            standby,
            rejoin,
        };
        Ok(Self::start(config, record, now, restored))
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
        let mut config = config;
        // The stored list is the register's (an older record has none: the configured
        // list is in force). A configured list that differs is reported, then the
        // register's is followed.
        let stored = record.members.as_slice();
        let differs = !stored.is_empty() && stored != config.members.as_slice();
        if differs {
            match heapless::Vec::from_slice(stored) {
                Ok(list) => config.members = list,
                Err(_) => record.standby = true, // over this node's capacity
            }
        }
        let mut node = Self::start(config, record, now, true);
        if differs {
            node.event(Event::MemberListDiffers {
                version: node.election.state.members_version,
                followed: !record.standby,
            });
        }
        Ok(node)
    }

    fn start(config: Config<N>, record: Record, now: Instant, restored: bool) -> Self {
        let me = config.node_id;
        let me_index = config.index_of(me).unwrap_or(0);
        let seed = config.seed
            ^ (u64::from(me.0) << 48)
            ^ (u64::from(record.incarnation) << 16)
            ^ 0x5445_4E55_5245;
        let mut election = Election::new(me, record.election, record.incarnation);
        election.standby = record.standby;
        let mut guards = Guards::default();
        if restored && config.renewal == Renewal::Lease {
            // R6: a promise given before the crash may have guarded a master this node no
            // longer remembers; after one lease that term is over in real time.
            guards.restarted(now, config.lease);
            election.silent_until = guards.silent_until;
        }
        election.restart(now, &config);
        let mut node = Node {
            me_index,
            instance: record.instance,
            acceptor: Acceptor {
                promised: record.promised,
                accepted: record.accepted,
                // R8: instants are never persisted; the origin is the restore instant.
                accepted_at: now,
                accepted_age: Duration::ZERO,
            },
            last_chosen: None,
            proposer: Proposer::default(),
            election,
            rng: Rng::new(seed),
            guards,
            renewer: None,
            clock_ended: false,
            pending_change: None,
            members_changed_at: None,
            last_round_begin: None,
            members_wanted: None,
            members_staged: heapless::Vec::new(),
            members_asked: None,
            rejoin: record.rejoin,
            rejoin_heard: 0,
            rejoin_max: 0,
            rejoin_asked: None,
            rejoin_nonce: (seed ^ (seed >> 29)) as u32 ^ now.as_micros() as u32,
            #[cfg(tenure_fault_injection)]
            faults: crate::fault::Faults::default(),
            queue: OutputQueue::default(),
            timers: Timers::default(),
            reported: None,
            reported_end: Instant::ZERO,
            last_catch_up: None,
            now,
            stats: Stats::default(),
            tags: TagCache(Tags::new(&config.auth)),
            config,
        };
        if node.election.standby {
            // Still standing by: fetch the register's list again if it is not this one.
            node.check_members_after_install();
        }
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
        self.stats.messages_in = self.stats.messages_in.wrapping_add(1);
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
    /// trusted before its tag verified; a frame whose tag fails but whose first byte names
    /// another protocol version is counted as [`DropReason::OlderProtocol`] or
    /// [`DropReason::NewerProtocol`] (a node of another version, whose tags differ)
    /// rather than [`DropReason::BadTag`]. Returns why the frame was dropped, if it was;
    /// every drop is also counted once in [`Stats::dropped`].
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
        self.tags.0.open(frame).map_err(|e| {
            // A frame whose tag fails but whose first byte (the header's version) names
            // another protocol is most likely from a node of that version, whose tags
            // differ (protocol 4 tagged with BLAKE2s): counted as a version mismatch, so
            // that operators see one. The byte is not authenticated; the frame is dropped
            // either way and nothing else of it is read.
            let e = match e {
                crate::WireError::BadTag if frame.len() > crate::auth::TAG_LEN => {
                    crate::wire::other_version(frame).map_or(e, crate::WireError::Protocol)
                }
                e => e,
            };
            self.dropped(match e {
                crate::WireError::BadTag => DropReason::BadTag,
                crate::WireError::Protocol(v) if v > PROTOCOL_VERSION => DropReason::NewerProtocol,
                crate::WireError::Protocol(_) => DropReason::OlderProtocol,
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
        let n = crate::wire::encode(packet, buf)?;
        self.tags.0.seal_encoded(buf, n)
    }

    /// Handles the timer set by [`poll_timeout`](Self::poll_timeout). Calling it early or
    /// late is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        if !self.has_room() {
            return; // timers stay due; the driver drains and calls again
        }
        if self.timers.is_due(Timer::Round, now) || self.timers.is_due(Timer::Backoff, now) {
            let lim = self.limits();
            let (timed_out, step) = self.proposer.on_deadline(
                now,
                self.instance,
                self.acceptor.promised,
                &lim,
                &mut self.rng,
            );
            if timed_out {
                self.stats.round_timeouts = self.stats.round_timeouts.wrapping_add(1);
            }
            self.drive(now, step);
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
        self.inject_fault(crate::fault::Fault::IgnoreVersionCheck, on);
    }

    /// Test-only: switches planted fault `fault` on or off in this node (see
    /// [`crate::fault`]). Exists only in the test-only `tenure-fault` build.
    #[cfg(tenure_fault_injection)]
    #[doc(hidden)]
    pub fn inject_fault(&mut self, fault: crate::fault::Fault, on: bool) {
        self.faults.set(fault, on);
        match fault {
            crate::fault::Fault::IgnoreVersionCheck => self.election.ignore_version_check = on,
            crate::fault::Fault::NoRestartSilence if on => {
                self.guards.silent_until = Instant::ZERO;
                self.election.silent_until = Instant::ZERO;
                self.election.campaign_at = None;
            }
            crate::fault::Fault::SingleGuardSlot => self.guards.single_slot = on,
            crate::fault::Fault::RejoinVotesAtOnce if on && self.rejoin != 0 => {
                self.rejoin = 0;
                self.election.standby = false;
            }
            crate::fault::Fault::RejoinForgetsSilence if on => {
                self.guards.silent_until = Instant::ZERO;
                self.election.silent_until = Instant::ZERO;
                self.election.campaign_at = None;
            }
            _ => {}
        }
    }

    /// Gives up the role now: this node stops being master at once (before this call
    /// returns) and proposes a release so the others may elect a new master without
    /// waiting for the lease to run out. The release names a likely successor, a
    /// candidate this master heard within its latest renewal round, which campaigns at
    /// once; the others wait [`Config::handover_grace`] for it, as after a
    /// [`hand_over`](Self::hand_over). Use `hand_over` to choose the successor.
    pub fn release(&mut self, now: Instant) -> Result<(), CommandError> {
        let to = self.likely_successor();
        self.give_up(now, to)
    }

    /// The candidate [`release`](Self::release) names: of the voters whose answers
    /// completed this master's latest renewal round (so heard within a round trip), the
    /// one of highest priority, the first in the list on a tie. `None` when there is
    /// none (no round completed yet, or [`Renewal::Logged`]): then every candidate
    /// campaigns after its usual delay.
    pub(crate) fn likely_successor(&self) -> Option<NodeId> {
        let voters = self.renewer.as_ref()?.last_voters;
        let mut best: Option<&crate::config::Member> = None;
        for (i, m) in self.config.members.iter().enumerate() {
            if voters.contains(i)
                && m.id != self.config.node_id
                && m.role == Role::Candidate
                && best.is_none_or(|b| m.priority > b.priority)
            {
                best = Some(m);
            }
        }
        best.map(|m| m.id)
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
        self.renewer = None; // R3: open rounds are dropped on release
        self.stats.releases = self.stats.releases.wrapping_add(1);
        self.step(now);
        Ok(())
    }

    /// Campaigns now instead of after the usual random delay, if no master is live.
    pub fn campaign(&mut self, now: Instant) -> Result<(), CommandError> {
        let now = self.advance(now);
        if self.config.role() != Role::Candidate || self.election.standby {
            // (A standby node votes and campaigns only once its list is the register's.)
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
            Pending::Persist => Output::Persist,
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
        let deadline = self.proposer.deadline();
        let idle = self.proposer.is_idle();
        let master = self.election.live_master(self.now) == Some(self.config.node_id);
        let renewal = match self.config.renewal {
            Renewal::Logged => self.election.renew_at.filter(|_| idle && master),
            Renewal::Lease => self.renewer.as_ref().filter(|_| master).and_then(|r| {
                r.wake_at(
                    self.now,
                    self.config.round_timeout,
                    self.config.try_window(),
                )
            }),
        };
        let t = &mut self.timers;
        t.set(Timer::Round, deadline.filter(|d| !d.1).map(|d| d.0));
        t.set(Timer::Backoff, deadline.filter(|d| d.1).map(|d| d.0));
        t.set(Timer::Campaign, self.election.campaign_at.filter(|_| idle));
        t.set(Timer::Renewal, renewal);
        t.set(
            Timer::Expiry,
            self.reported.map(|_| self.election.expires_at),
        );
    }

    // ----- queries ------------------------------------------------------------------

    /// The master in this node's view at `now`, if its lease is live.
    pub fn master(&self, now: Instant) -> Option<MasterView> {
        if now < self.now {
            return None; // R13: a reading earlier than the last input's proves nothing
        }
        let node = self.election.live_master(now)?;
        Some(MasterView {
            node,
            token: self.token_of(node),
            term_end: (node == self.config.node_id).then_some(self.election.expires_at),
        })
    }

    /// Whether this node is master at `now`. Act on it only with the version as a
    /// fencing token: a process can pause right after asking.
    ///
    /// False for any `now` earlier than the last input's (R13).
    pub fn is_master(&self, now: Instant) -> bool {
        now >= self.now && self.election.live_master(now) == Some(self.config.node_id)
    }

    /// The fencing token of the current master in this node's view (0 when none).
    pub fn master_token(&self) -> u64 {
        self.reported.map_or(0, |(_, token)| token)
    }

    /// The fencing token of the current term of `holder` in this node's view.
    fn token_of(&self, holder: NodeId) -> u64 {
        match (self.config.renewal, self.reported) {
            // Logged: the version when this node first saw the term; renewals move the
            // version, never the token.
            (Renewal::Logged, Some((n, token))) if n == holder => token,
            _ => self
                .election
                .state
                .term
                .or(self.election.state.version)
                .unwrap_or(0),
        }
    }

    /// The version: the instance of the last effective op of the register, `None`
    /// before any. (In [`Renewal::Logged`] every renewal moves it; the fencing token is
    /// [`MasterView::token`].)
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

    /// The durable record as of now (what to store for an [`Output::Persist`]).
    pub fn record(&self) -> Record {
        Record {
            cluster: self.config.cluster_id,
            node: self.config.node_id,
            incarnation: self.election.incarnation,
            instance: self.instance,
            promised: self.acceptor.promised,
            accepted: self.acceptor.accepted,
            election: self.election.state,
            members: MemberList::from_slice(&self.config.members),
            standby: self.election.standby,
            rejoin: self.rejoin,
        }
    }

    /// The header this node puts on its packets.
    pub fn header(&self) -> Header {
        Header {
            protocol: PROTOCOL_VERSION,
            cluster: self.config.cluster_id,
            from: self.config.node_id,
            renewal: self.config.renewal,
        }
    }

    // ----- internals ----------------------------------------------------------------

    /// Takes the clock reading of an input. R13: a reading earlier than the last one
    /// ends this node's own term at once (a clock that jumped forward and back must not
    /// leave a term that lasts as long as the jump) and is then followed.
    pub(crate) fn advance(&mut self, now: Instant) -> Instant {
        if now < self.now {
            self.stats.clock_regressions = self.stats.clock_regressions.wrapping_add(1);
            if self.election.live_master(self.now) == Some(self.config.node_id) {
                self.clock_ended = true;
            }
            self.election.clock_regressed(now);
            self.renewer = None;
        }
        self.now = now;
        now
    }

    pub(crate) fn has_room(&self) -> bool {
        QUEUE_CAPACITY - self.queue.len() >= MAX_OUTPUTS_PER_INPUT
    }

    fn push(&mut self, p: Pending) {
        if !self.queue.push(p) {
            self.stats.queue_overflows = self.stats.queue_overflows.wrapping_add(1);
        }
    }

    pub(crate) fn persist(&mut self) {
        if self.queue.last() == Some(&Pending::Persist) {
            return; // one record covers both
        }
        self.stats.persists = self.stats.persists.wrapping_add(1);
        self.push(Pending::Persist);
    }

    /// Queues a message that reveals nothing this node has not yet stored (a Prepare:
    /// `docs/algorithm.md` §2, "Persist before reply") ahead of a record still waiting
    /// to be written, so it is not held up by that write.
    fn send_ahead(&mut self, to: Destination, message: Message) {
        self.stats.messages_out = self.stats.messages_out.wrapping_add(1);
        if !self
            .queue
            .push_before_persist(Pending::Send { to, message })
        {
            self.stats.queue_overflows = self.stats.queue_overflows.wrapping_add(1);
        }
    }

    pub(crate) fn send(&mut self, to: Destination, message: Message) {
        self.stats.messages_out = self.stats.messages_out.wrapping_add(1);
        self.push(Pending::Send { to, message });
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.push(Pending::Event(e));
    }

    /// Validates a packet against the configuration; returns the sender's index.
    fn check(&self, packet: &Packet) -> Result<usize, DropReason> {
        let h = packet.header;
        if h.protocol != PROTOCOL_VERSION {
            return Err(match h.protocol {
                // Only plausible versions count as another protocol (see wire::decode).
                v if v > PROTOCOL_VERSION && v <= PROTOCOL_VERSION + 8 => DropReason::NewerProtocol,
                v if (1..PROTOCOL_VERSION).contains(&v) => DropReason::OlderProtocol,
                _ => DropReason::BadField,
            });
        }
        if h.cluster != self.config.cluster_id {
            return Err(DropReason::WrongCluster);
        }
        if h.renewal != self.config.renewal {
            return Err(DropReason::WrongRenewal);
        }
        let lease_mode = self.config.renewal == Renewal::Lease;
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
            Message::Renew { term, .. } | Message::Renewed { term, .. } => term,
            Message::MembersQuery { version, .. } | Message::MembersPart { version, .. } => version,
            Message::RejoinReply { instance, .. } => instance,
            Message::RejoinQuery { .. } => 0,
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
                age,
            } => {
                if role != Role::Candidate || ballot.node != from {
                    return Err(DropReason::NotMember);
                }
                ballot_ok(ballot) && op_ok(&op, instance) && (lease_mode || age == Duration::ZERO)
            }
            Message::Renew { ballot, .. } => {
                if role != Role::Candidate || ballot.node != from {
                    return Err(DropReason::NotMember);
                }
                lease_mode && ballot_ok(ballot)
            }
            Message::Renewed { ballot, .. } => {
                if !role.votes() {
                    return Err(DropReason::NotMember);
                }
                lease_mode && ballot_ok(ballot)
            }
            Message::Promise {
                instance,
                ballot,
                accepted,
                ..
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
            Message::CatchUp { .. } | Message::MembersQuery { .. } => true,
            Message::RejoinQuery { .. } => true,
            Message::RejoinReply { promised, .. } => {
                if !role.votes() {
                    return Err(DropReason::NotMember);
                }
                ballot_ok(promised)
            }
            Message::MembersPart {
                total, start, part, ..
            } => {
                usize::from(total) <= crate::config::MAX_MEMBERS
                    && start < total
                    && part.iter().all(|m| m.is_none_or(|m| m.id.0 != 0))
            }
            Message::Snapshot {
                next_instance,
                state,
            } => {
                // Holders are checked against this node's list whenever it is the
                // snapshot's, that is whenever installing it keeps this list in force (a
                // node behind a membership change may not know them): the same list
                // version, the configured list (no change, `None`), or a list of the same
                // digest. (Not by version alone: after a snapshot of this very list under
                // a version, a later one of `None` would otherwise name anyone.)
                let same_list = state.members_version == self.election.state.members_version
                    || state.members_version.is_none()
                    || state.members_digest == crate::members::digest(self.config.members.iter());
                state.version.is_none_or(|v| v < next_instance)
                    && state.term.is_none_or(|t| Some(t) <= state.version)
                    && state
                        .members_version
                        .is_none_or(|m| Some(m) <= state.version)
                    && (!same_list || state.master.is_none_or(|m| self.is_candidate(m)))
                    && (!same_list || state.successor.is_none_or(|m| self.is_candidate(m)))
                    // Of another list, a holder is unknown here, but never id 0 (no
                    // member has it; a member list part naming it is refused too).
                    && state.master.is_none_or(|m| m.0 != 0)
                    && state.successor.is_none_or(|m| m.0 != 0)
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
            Op::Reconfigure { node, version, .. } => self.is_candidate(node) && version < instance,
        }
    }

    /// The proposer's view of the configuration.
    fn limits(&self) -> Limits {
        let lease_mode = self.config.renewal == Renewal::Lease;
        Limits {
            me: self.config.node_id,
            me_index: self.me_index,
            quorum: self.config.quorum(),
            voters: self.config.voter_count(),
            round_timeout: self.config.round_timeout,
            max_backoff: self.config.max_backoff,
            keep_prepared_on_timeout: lease_mode,
            ages: lease_mode,
            double_age: self.fault(crate::fault::Fault::DoubleAge),
        }
    }

    fn lease_mode(&self) -> bool {
        self.config.renewal == Renewal::Lease
    }

    /// Whether planted fault `f` is on (never, outside the test-only build).
    #[allow(unused_variables)]
    pub(crate) fn fault(&self, f: crate::fault::Fault) -> bool {
        #[cfg(tenure_fault_injection)]
        {
            self.faults.on(f)
        }
        #[cfg(not(tenure_fault_injection))]
        {
            false
        }
    }

    /// Carries out what the proposer asked for, feeding our own votes back to it.
    pub(crate) fn drive(&mut self, now: Instant, mut step: Step) {
        let lim = self.limits();
        let instance = self.instance;
        loop {
            step = match step {
                Step::Wait => return,
                Step::Prepare(ballot) => {
                    // R4/R6: our own vote passes the same checks as anyone's; a node that
                    // guards another master (or keeps its restart silence) does not
                    // count itself.
                    if self.refuse_vote(now, lim.me, None) {
                        let promised = self.acceptor.promised;
                        self.proposer.refused(now, promised, &lim, &mut self.rng);
                        return;
                    }
                    let accepted = match self.acceptor.prepare(ballot) {
                        Vote::Granted { reply, .. } => reply,
                        Vote::Refused { .. } => None, // cannot happen: above the promise
                    };
                    let age = self.promise_age(now, accepted);
                    if self.config.quorum() > 1 {
                        // (A single voter has no one to ask: learners never vote.)
                        // A Prepare reveals no vote of ours, so it leaves first, even
                        // ahead of a record still waiting to be written: our write and
                        // the voters' run side by side.
                        self.send_ahead(Destination::All, Message::Prepare { instance, ballot });
                    }
                    // SAFETY-OF-PROTOCOL (§2, "Persist before reply"): our own promise is
                    // durable before anything that counts it leaves (the Accept that a
                    // majority of promises lets out is queued after this record), so a
                    // restart never reuses the ballot for an Accept.
                    if !self.fault(crate::fault::Fault::OwnPromiseLate) {
                        self.persist();
                    }
                    match self.proposer.on_promise(
                        now,
                        lim.me_index,
                        instance,
                        ballot,
                        accepted,
                        age,
                        &lim,
                    ) {
                        Some(next) => next,
                        None => return,
                    }
                }
                Step::Accept { ballot, op, .. } if self.refuse_vote(now, lim.me, Some(&op)) => {
                    let _ = ballot;
                    let promised = self.acceptor.promised;
                    self.proposer.refused(now, promised, &lim, &mut self.rng);
                    return;
                }
                Step::Accept { ballot, op, age } => match self.acceptor.accept(ballot, op) {
                    Vote::Granted { .. } => {
                        self.acceptor.accepted_now(now, age);
                        // SAFETY-OF-PROTOCOL (§2, "Persist before reply", P2): our own
                        // acceptance is durable before the Accept leaves. (Not after it,
                        // beside the voters' writes: a driver that acknowledges outputs
                        // before carrying them out would hand us their Accepted, and so
                        // the role, while our vote is still only in memory.)
                        if !self.fault(crate::fault::Fault::OwnAcceptanceLate) {
                            self.persist();
                        }
                        self.send(
                            Destination::All,
                            Message::Accept {
                                instance,
                                ballot,
                                op,
                                age,
                            },
                        );
                        match self.proposer.on_accepted(lim.me_index, ballot, &lim) {
                            Some(next) => next,
                            None => return,
                        }
                    }
                    Vote::Refused { promised } => {
                        self.proposer.refused(now, promised, &lim, &mut self.rng);
                        return;
                    }
                },
                Step::Chosen { ballot, op } => {
                    self.send(Destination::All, Message::Commit { instance, ballot });
                    let age = self.acceptor.age(now);
                    self.learn(now, op, age);
                    return;
                }
            };
        }
    }

    /// The age a Promise reports for the value this voter accepted (R8; zero in
    /// [`Renewal::Logged`]).
    fn promise_age(&self, now: Instant, accepted: Option<crate::acceptor::Proposal>) -> Duration {
        if accepted.is_some() && self.lease_mode() {
            self.acceptor.age(now)
        } else {
            Duration::ZERO
        }
    }

    /// Starts proposing `op` in the current instance.
    fn propose(&mut self, now: Instant, op: Op) {
        let lim = self.limits();
        let step = self
            .proposer
            .propose(now, op, self.instance, self.acceptor.promised, &lim);
        self.drive(now, step);
    }

    /// R6 and R4 for a vote asked by `from` (a Prepare, or an Accept of `op`): whether it
    /// must be refused (counted; no answer, the proposer times out).
    fn refuse_vote(&mut self, now: Instant, from: NodeId, op: Option<&Op>) -> bool {
        if !self.lease_mode() {
            return false;
        }
        if self.guards.is_silent(now) {
            self.stats.silent_refusals = self.stats.silent_refusals.wrapping_add(1);
            return true;
        }
        let allowed = match op {
            None => self.guards.allows(now, from),
            // The guarded master itself may finish whatever value it found.
            Some(Op::BeMaster { node, .. }) => {
                self.guards.allows(now, *node) || self.guards.allows(now, from)
            }
            // A release or a membership change takes effect only for the holder that
            // proposed it.
            Some(Op::Release { .. } | Op::Reconfigure { .. }) => true,
        };
        if !allowed {
            self.stats.guard_refusals = self.stats.guard_refusals.wrapping_add(1);
        }
        !allowed
    }

    /// Routes a checked message; returns false when it was stale (nothing to do).
    fn dispatch(&mut self, now: Instant, from: NodeId, from_index: usize, msg: Message) -> bool {
        if self.members_wanted.is_some() && !matches!(msg, Message::MembersPart { .. }) {
            self.ask_members(now, from); // still fetching the register's member list
        }
        let votes = self.config.role().votes() && !self.election.standby;
        let lease_mode = self.lease_mode();
        match msg {
            Message::Prepare { instance, ballot } => {
                if !lease_mode {
                    self.proposer.see(ballot);
                }
                if instance < self.instance {
                    self.answer_behind(from, instance);
                } else if instance > self.instance {
                    self.request_catch_up(now, from);
                } else if votes && !self.refuse_vote(now, from, None) {
                    // (Lease mode: a refused Prepare must not cost the guarded master its
                    // prepared ballot, so its ballot is only seen once it is answered.)
                    self.proposer.see(ballot);
                    self.vote_prepare(now, from, instance, ballot);
                }
                true
            }
            Message::Accept {
                instance,
                ballot,
                op,
                age,
            } => {
                if !lease_mode {
                    self.proposer.see(ballot);
                }
                if instance < self.instance {
                    self.answer_behind(from, instance);
                } else if instance > self.instance {
                    self.request_catch_up(now, from);
                } else if !votes {
                    // A learner keeps the value so a Commit can name it by ballot.
                    self.acceptor.accepted = Some(crate::acceptor::Proposal { ballot, op });
                    self.acceptor.accepted_now(now, age);
                } else if !self.refuse_vote(now, from, Some(&op)) {
                    self.proposer.see(ballot);
                    self.vote_accept(now, from, instance, ballot, op, age);
                }
                true
            }
            Message::Promise {
                instance,
                ballot,
                accepted,
                age,
            } => {
                if instance != self.instance {
                    return false;
                }
                let lim = self.limits();
                match self
                    .proposer
                    .on_promise(now, from_index, instance, ballot, accepted, age, &lim)
                {
                    Some(step) => {
                        self.drive(now, step);
                        true
                    }
                    None => false,
                }
            }
            Message::Accepted { instance, ballot } => {
                if instance != self.instance {
                    return false;
                }
                let lim = self.limits();
                match self.proposer.on_accepted(from_index, ballot, &lim) {
                    Some(step) => {
                        self.drive(now, step);
                        true
                    }
                    None => false,
                }
            }
            Message::Reject {
                instance,
                ballot,
                promised,
            } => {
                self.proposer.see(promised);
                let mut used = false;
                if let Some(r) = self.renewer.as_mut() {
                    if r.ballot == Some(ballot) && promised > ballot {
                        // R11: only a Reject with a higher ballot costs the prepared
                        // ballot (seen above); the open rounds are over.
                        r.drop_rounds();
                        used = true;
                    }
                }
                if instance != self.instance {
                    return used;
                }
                let lim = self.limits();
                self.proposer
                    .on_reject(now, from_index, ballot, &lim, &mut self.rng)
                    || used
            }
            Message::Commit { instance, ballot } => {
                if instance < self.instance {
                    return false;
                }
                if lease_mode && self.acceptor.learned_under(ballot) {
                    self.persist(); // R10 (the promise is in every later reply)
                }
                match self.acceptor.accepted {
                    Some(p) if instance == self.instance && p.ballot == ballot => {
                        let age = self.learn_age(now);
                        self.learn(now, p.op, age)
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
                    self.learn(now, op, Duration::ZERO);
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
                self.ask_members(now, from);
                true
            }
            Message::Renew { ballot, term, seq } => self.on_renew(now, from, ballot, term, seq),
            Message::MembersQuery { version, start } => self.answer_members(from, version, start),
            Message::MembersPart {
                version,
                total,
                start,
                part,
            } => self.on_members_part(now, from, version, total, start, &part),
            Message::RejoinQuery { nonce } => self.answer_rejoin(from, nonce),
            Message::RejoinReply {
                nonce,
                instance,
                promised,
            } => self.on_rejoin_reply(now, from_index, nonce, instance, promised),
            Message::Renewed { ballot, term, seq } => {
                let quorum = self.config.quorum();
                let every = self.config.renew_every();
                let Some(r) = self.renewer.as_mut() else {
                    return false;
                };
                match r.on_renewed(from_index, ballot, term, seq, quorum, every) {
                    RenewStep::Completed { begin } => {
                        self.round_completed(now, begin);
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// The age of the value this node accepted in the current instance, when it learns
    /// it was chosen (R8; zero in [`Renewal::Logged`]).
    fn learn_age(&self, now: Instant) -> Duration {
        if self.lease_mode() {
            self.acceptor.age(now)
        } else {
            Duration::ZERO
        }
    }

    /// A renewal round that began at `begin` completed.
    fn round_completed(&mut self, now: Instant, begin: Instant) {
        self.stats.renewals_completed = self.stats.renewals_completed.wrapping_add(1);
        self.last_round_begin = Some(self.last_round_begin.map_or(begin, |b| b.max(begin)));
        self.election
            .extend_own_term(now, begin + self.config.master_lease());
    }

    /// R2: a `Renew` of term `term` under `ballot` from `from` (this node itself for its
    /// own vote). Returns false when it was stale (a replayed or repeated seq).
    fn on_renew(
        &mut self,
        now: Instant,
        from: NodeId,
        ballot: Ballot,
        term: u64,
        seq: u32,
    ) -> bool {
        let me = self.config.node_id;
        let lease = self.config.lease;
        let state = self.election.state;
        if !self.config.role().votes() || self.election.standby {
            // A learner only follows: its view of the master lasts as long.
            if state.version == Some(term) && state.master == Some(from) {
                self.election.extend_view(from, now + lease);
            } else if self.instance <= term && from != me {
                self.request_catch_up(now, from); // (a rejoining node, say)
            }
            return true;
        }
        if self.guards.is_silent(now) {
            self.stats.silent_refusals = self.stats.silent_refusals.wrapping_add(1);
            return true;
        }
        // A Renew also says that `term` was chosen under `ballot`.
        if self.instance == term {
            if let Some(p) = self.acceptor.accepted {
                if p.ballot == ballot {
                    let age = self.learn_age(now);
                    self.learn(now, p.op, age);
                }
            }
        }
        if self.instance <= term {
            if from != me {
                self.request_catch_up(now, from);
            }
            return true;
        }
        // Membership changes by the holder after its term op do not end the term (§9).
        let changed_since = state.term == Some(term)
            && state.master == Some(from)
            && state.members_version.is_some_and(|m| m > term);
        if self.instance > term + 1 && !changed_since {
            // The register moved on: the master is stale. Tell it what it missed.
            self.stats.renews_refused = self.stats.renews_refused.wrapping_add(1);
            if from != me {
                self.answer_behind(from, term + 1);
            }
            return true;
        }
        if self.acceptor.promised > ballot {
            self.stats.renews_refused = self.stats.renews_refused.wrapping_add(1);
            if from != me {
                let promised = self.acceptor.promised;
                self.send(
                    Destination::Node(from),
                    Message::Reject {
                        instance: self.instance,
                        ballot,
                        promised,
                    },
                );
            }
            return true;
        }
        let state = self.election.state;
        if state.term.or(state.version) != Some(term)
            || state.version != Some(self.instance - 1)
            || state.master != Some(from)
            || self.acceptor.accepted.is_some()
        {
            // Not the term this node applied last, or it already accepted something
            // after it (a release of the term, say).
            self.stats.renews_refused = self.stats.renews_refused.wrapping_add(1);
            return true;
        }
        if !self.guards.is_fresh(ballot, term, seq) {
            return false; // R12: a replay, or a repeat, extends nothing
        }
        if !self.guards.add(now, from, now + lease, (ballot, term, seq)) {
            self.stats.renews_refused = self.stats.renews_refused.wrapping_add(1);
            return true;
        }
        if self.acceptor.promised < ballot {
            // SAFETY-OF-PROTOCOL: the raised promise is durable before the answer leaves.
            self.acceptor.promised = ballot;
            self.persist();
        }
        self.election.extend_view(from, now + lease);
        self.stats.renews_answered = self.stats.renews_answered.wrapping_add(1);
        if from != me {
            self.send(
                Destination::Node(from),
                Message::Renewed { ballot, term, seq },
            );
        }
        true
    }

    /// Lease mode, after every input: keeps the renewer in line with this node's own
    /// term and begins the rounds that are due.
    fn renew(&mut self, now: Instant) {
        if !self.is_master(now) {
            // R9: an ended term stays ended. R11: a term that ran out (not released) means
            // this node could not reach a majority; the voters may guard it until a lease
            // after its last Renew, so it stays away until then rather than campaign
            // blind (a deaf master's new term op, accepted but never learned by it, would
            // be finished by the others and cost a lease more).
            if let Some(at) = self.renewer.take().and_then(|r| r.last_begin) {
                if self.election.releasing.is_none()
                    && self.election.state.master == Some(self.config.node_id)
                {
                    self.election.stay_away_until(at + self.config.lease);
                }
            }
            return;
        }
        let state = self.election.state;
        let term = state.term.or(state.version).unwrap_or(0);
        let prepared = self.proposer.prepared_ballot(self.acceptor.promised);
        let fresh = self.renewer.as_ref().is_none_or(|r| r.term != term);
        if fresh {
            let Some(begin) = self.election.own_begin() else {
                self.renewer = None;
                return;
            };
            // The try window counts from the term op's begin until a round completes.
            #[allow(unused_mut)]
            let mut renewer = Renewer::new(term, None, begin, now);
            #[cfg(tenure_fault_injection)]
            {
                renewer.reuse_seq = self.fault(crate::fault::Fault::ReuseSeq);
            }
            self.renewer = Some(renewer);
        }
        let (round_timeout, try_window) = (self.config.round_timeout, self.config.try_window());
        let Some(r) = self.renewer.as_mut() else {
            return;
        };
        if r.stopped {
            return; // the register moved past the term: it runs out
        }
        if prepared != r.ballot {
            // A new prepared ballot (after a prepare-only round): go on under it.
            r.rebase(prepared, now);
        }
        let Some(ballot) = r.ballot else {
            // No usable ballot (we won a duel and a rival's higher ballot was promised
            // since, or a Reject carried one): get one, then renew.
            let lim = self.limits();
            let step = self
                .proposer
                .prepare_only(now, self.instance, self.acceptor.promised, &lim);
            self.drive(now, step);
            return;
        };
        let (failed, step) = r.poll(now, round_timeout, try_window);
        self.stats.renewals_failed = self.stats.renewals_failed.wrapping_add(failed);
        if let RenewStep::Begin { seq } = step {
            self.stats.renewals = self.stats.renewals.wrapping_add(1);
            let me = self.config.node_id;
            // The master's own vote goes through the same checks as everyone's.
            let answered = self.stats.renews_answered;
            self.on_renew(now, me, ballot, term, seq);
            if self.stats.renews_answered > answered {
                let quorum = self.config.quorum();
                let every = self.config.renew_every();
                if let Some(r) = self.renewer.as_mut() {
                    if let RenewStep::Completed { begin } =
                        r.on_renewed(self.me_index, ballot, term, seq, quorum, every)
                    {
                        self.round_completed(now, begin);
                    }
                }
            }
            if self.config.members.len() > 1 {
                self.send(Destination::All, Message::Renew { ballot, term, seq });
            }
        }
    }

    fn vote_prepare(&mut self, now: Instant, from: NodeId, instance: u64, ballot: Ballot) {
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
                    age: self.promise_age(now, reply),
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

    #[allow(clippy::too_many_arguments)]
    fn vote_accept(
        &mut self,
        now: Instant,
        from: NodeId,
        instance: u64,
        ballot: Ballot,
        op: Op,
        age: Duration,
    ) {
        let reply = match self.acceptor.accept(ballot, op) {
            Vote::Granted { changed, .. } => {
                self.acceptor.accepted_now(now, age);
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

    /// After every input: report view changes, let the election propose, renew, and
    /// re-arm the timers.
    pub(crate) fn step(&mut self, now: Instant) {
        if self.rejoin != 0 {
            self.check_rejoin(now);
            self.ask_rejoin(now);
        }
        self.propose_if_due(now);
        if self.lease_mode() {
            self.renew(now);
            self.report_view(now);
        }
        self.arm_timers();
    }

    fn propose_if_due(&mut self, now: Instant) {
        self.report_view(now);
        if self.proposer.is_idle() {
            if let Some(op) = self.change_to_propose() {
                self.propose(now, op);
                self.report_view(now);
                return;
            }
        }
        if let Some(intent) =
            self.election
                .evaluate(now, &self.config, &mut self.rng, self.proposer.is_idle())
        {
            let op = match intent {
                Intent::Campaign(op) => {
                    self.stats.elections_started = self.stats.elections_started.wrapping_add(1);
                    op
                }
                Intent::Renew(op) => {
                    self.stats.renewals = self.stats.renewals.wrapping_add(1);
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

    /// Emits the end of the reported master's term (`current`: the master now, if any).
    fn report_end(&mut self, current: Option<(NodeId, u64)>) {
        let me = self.config.node_id;
        if let Some((old, token)) = self.reported.take() {
            let reason = match (current, self.election.state.master) {
                _ if old == me && self.clock_ended => TermEnd::ClockRegression,
                (Some(_), _) => TermEnd::Superseded,
                (None, None) => TermEnd::Released,
                (None, Some(_)) if old == me && self.election.releasing.is_some() => {
                    TermEnd::Released
                }
                (None, Some(m)) if m == old => TermEnd::Expired,
                (None, Some(_)) => TermEnd::Superseded,
            };
            self.event(if old == me {
                Event::TermEnded { token, reason }
            } else {
                Event::MasterLost {
                    node: old,
                    token,
                    reason,
                }
            });
        }
    }

    /// Emits events for every change of the live master since the last report.
    #[inline(never)] // called from several places: one copy (flash on small parts)
    fn report_view(&mut self, now: Instant) {
        let me = self.config.node_id;
        if self.reported.is_some() && self.reported_end <= now {
            // The view lapsed before this input (a pause, say), even if this input renewed
            // it: report the end, so the next term gets its own report and token (one token
            // never spans two separate periods).
            self.report_end(None);
        }
        let previous = self.reported;
        let current = self
            .election
            .live_master(now)
            .map(|m| (m, self.token_of(m)));
        self.reported_end = self.election.expires_at;
        match (previous, current) {
            (Some(p), Some(c)) if p == c => return, // renewal
            (None, None) => return,
            _ => {}
        }
        self.report_end(current);
        self.reported = current;
        self.clock_ended = false;
        if let Some((new, token)) = current {
            if new == me {
                self.stats.elections_won = self.stats.elections_won.wrapping_add(1);
                self.event(Event::BecameMaster {
                    token,
                    term_end: self.election.expires_at,
                });
            } else {
                self.event(Event::MasterElected { node: new, token });
            }
        }
    }
}

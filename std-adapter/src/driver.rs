//! The driver: runs a [`tenure::Node`] against a [`Transport`], a [`RecordStore`] and a
//! [`Clock`], whatever the runtime.
//!
//! It is written once and bound twice: [`crate::node`] drives it from a tokio task, and
//! the end-to-end tests (`tests/e2e`) drive it from a plain thread with a blocking
//! socket. A binding only has to
//!
//! 1. feed inputs: [`Driver::handle_datagram`] for every datagram received (naming the
//!    member its address belongs to, if any), [`Driver::handle_frame`] for a frame whose
//!    sender is known only from its authenticated header (a firmware's link),
//!    [`Driver::handle_timeout`] when [`Driver::poll_timeout`] is reached, and commands
//!    ([`Driver::release`], [`Driver::hand_over`], [`Driver::campaign`]);
//! 2. re-arm its timer from [`Driver::poll_timeout`] after each of them.
//!
//! Frames go to the core as received: [`tenure::Node::handle_frame_from`] checks their
//! size and tag, decodes them, checks that the header names the member they came from,
//! and says why it dropped one (counted once in [`tenure::Stats::dropped`]); the driver
//! only logs that reason, rate-limited. The one drop of its own is a datagram from an
//! address that is no member's, never shown to the core.
//!
//! After every input the driver publishes the node's view (see [`View`]), then drains the
//! core's outputs with [`tenure::Executor`]: a record is made durable (through the
//! [`RecordStore`]) before any later output, sends are sealed frames handed to the
//! transport by member id, and events are logged, counted and given to the event
//! handler. A send that would promise more than the stored record is refused by the
//! executor ([`tenure::ExecError::Unpersisted`]); the driver then stops the node.

use std::fmt;
use std::io;
use std::sync::Arc;

use tenure::{
    CommandError, DropReason, Effects, Event, Instant, MasterView, NodeId, Packet, Record, TermEnd,
};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{LoadError, OpenError, RecordStore};
use crate::transport::{SendError, Transport};

/// The member capacity of every node this crate runs: any valid configuration fits.
pub const MAX_NODES: usize = tenure::MAX_MEMBERS;

/// The core node type this crate runs.
pub type CoreNode = tenure::Node<MAX_NODES>;

/// The core configuration type this crate runs.
pub type CoreConfig = tenure::Config<MAX_NODES>;

/// The log target of this node's term spans, at debug level (`RUST_LOG=tenure::term=debug`):
/// `term begins` and `term extended` (fields `me`, `token`, `begin_ns`, `end_ns`, on the
/// host's `CLOCK_BOOTTIME`) are written before the view claiming that span is published,
/// so a claim never reaches past the last logged `end_ns`, even in a process killed a
/// moment later; `term over` (same fields and `at_ns`) is written once the view no longer
/// claims the term, which ended no later than `min(end_ns, at_ns)`.
pub const TERM_LOG: &str = "tenure::term";

/// How often at most each kind of dropped traffic or failed send is logged.
const LOG_INTERVAL: tenure::Duration = tenure::Duration::from_secs(10);

/// How long a node may see no master before it warns (then again every
/// 10 s while it lasts): a majority of the voters cannot agree, most often
/// because too few of them are up or reachable.
pub const NO_MASTER_WARNING: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts a node that lost its record ([`StartAs::Rejoin`]).
fn rejoin(config: CoreConfig, now: Instant) -> Result<CoreNode, StartupError> {
    CoreNode::rejoin(config, now).map_err(StartupError::Start)
}

/// A value for a log field: the value, or `none`.
struct OrNone<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrNone<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("none"),
        }
    }
}

/// The name of a [`TermEnd`] in logs.
pub fn term_end_label(reason: TermEnd) -> &'static str {
    match reason {
        TermEnd::Expired => "expired",
        TermEnd::Released => "released",
        TermEnd::Superseded => "superseded",
        TermEnd::ClockRegression => "clock_regression",
    }
}

/// One term of this node as master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Term {
    /// The term's fencing token ([`tenure::MasterView::token`]): fixed for the whole
    /// term, strictly higher in every later term of any node. Every write done as master
    /// must carry it.
    pub token: u64,
    /// When this node learned it was master (its claim starts here).
    pub since: Instant,
    /// When the term ends unless renewed, on this node's clock. The node never claims
    /// the role at or after this instant.
    pub end: Instant,
}

/// The master as one node sees it, published after every input. Instants are on that
/// node's [`Clock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct View {
    /// The node whose view this is.
    pub node: NodeId,
    /// The master whose lease is live in this view.
    pub master: Option<NodeId>,
    /// The fencing token of the master's term, with `master`
    /// ([`tenure::MasterView::token`]).
    pub token: Option<u64>,
    /// The register's version ([`tenure::Node::version`]): the instance of the last
    /// effective op, `None` before any. It is not a fencing token: in
    /// [`tenure::Renewal::Logged`] every renewal moves it; in [`tenure::Renewal::Lease`]
    /// it moves only when the master changes (then it equals the new token).
    pub version: Option<u64>,
    /// This node's current term, when it is the master.
    pub term: Option<Term>,
    /// The input after which the view was taken.
    pub taken_at: Instant,
    /// False once the node stopped (shut down or failed); a crashed node's last view
    /// still says true, and its term, if any, still ends at `term.end`.
    pub running: bool,
}

impl View {
    fn initial(node: NodeId, now: Instant) -> Self {
        View {
            node,
            master: None,
            token: None,
            version: None,
            term: None,
            taken_at: now,
            running: true,
        }
    }

    /// Whether this view claims the role at `at`: only between the moment the node
    /// learned it was master and the end of its term.
    pub fn is_master_at(&self, at: Instant) -> bool {
        self.term.is_some_and(|t| t.since <= at && at < t.end)
    }

    /// The master at `at`: this node only while its term runs (with the term's end),
    /// another node as last seen (without: only the master knows its term).
    pub fn master_at(&self, at: Instant) -> Option<MasterView> {
        let node = self.master?;
        let term_end = if node == self.node {
            if !self.is_master_at(at) {
                return None;
            }
            self.term.map(|t| t.end)
        } else {
            None
        };
        Some(MasterView {
            node,
            token: self.token.unwrap_or(0),
            term_end,
        })
    }
}

/// Why a node could not start.
#[derive(Debug)]
pub enum StartupError {
    /// The data directory could not be created, opened or locked.
    DataDir(OpenError),
    /// A stored record exists but cannot be used.
    Load(LoadError),
    /// The core refused the configuration or the record.
    Start(tenure::StartError),
    /// The first record could not be made durable (or its outputs not executed).
    Driver(DriverError),
    /// The socket could not be bound.
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// The address book file of the data directory is unusable.
    Addresses(crate::addresses::AddressesError),
    /// `--rejoin` ([`StartAs::Rejoin`]) was asked, but the data directory holds a record:
    /// the node restores from it instead (start it without `--rejoin`).
    RejoinWithRecord {
        /// The data directory.
        dir: std::path::PathBuf,
    },
    /// This node's own address is a host name that could not be looked up.
    Resolve {
        /// The `host:port`.
        host: String,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::DataDir(e) => e.fmt(f),
            StartupError::Load(e) => e.fmt(f),
            StartupError::Start(e) => write!(f, "cannot start the node: {e}"),
            StartupError::Driver(e) => e.fmt(f),
            StartupError::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            StartupError::Addresses(e) => e.fmt(f),
            StartupError::RejoinWithRecord { dir } => write!(
                f,
                "--rejoin refused: the data directory {} holds a record, so this node did not lose its state; start it without --rejoin (it restores from the record)",
                dir.display()
            ),
            StartupError::Resolve { host, source } => write!(
                f,
                "cannot look up this node's own address `{host}`: {source}"
            ),
        }
    }
}

impl std::error::Error for StartupError {}

impl From<OpenError> for StartupError {
    fn from(e: OpenError) -> Self {
        StartupError::DataDir(e)
    }
}

impl From<LoadError> for StartupError {
    fn from(e: LoadError) -> Self {
        StartupError::Load(e)
    }
}

/// A record could not be made durable. The node stops: what it was about to send may
/// promise what is not on disk.
#[derive(Debug)]
pub struct PersistError(pub io::Error);

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot make the record durable ({}); the node stops rather than send promises \
             that are not on disk",
            self.0
        )
    }
}

impl std::error::Error for PersistError {}

/// Why a driver stopped its node: the executor stopped on a record that could not be
/// made durable ([`tenure::ExecError::Effects`]), or refused a send that promised more
/// than the stored record ([`tenure::ExecError::Unpersisted`], a bug in the core).
/// Either way, going on could break the protocol's promises.
pub type DriverError = tenure::ExecError<PersistError>;

/// Why a command failed.
#[derive(Debug)]
pub enum CommandFailure {
    /// The core refused it (not master, ...); nothing changed.
    Refused(CommandError),
    /// It was accepted, but its outputs could not be executed: the node must stop.
    Fatal(DriverError),
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandFailure::Refused(e) => write!(f, "refused: {e}"),
            CommandFailure::Fatal(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CommandFailure {}

/// How a node starts when its data directory holds no record (with a record it always
/// restores from it, except [`StartAs::Rejoin`], which is refused then).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StartAs {
    /// A member of the cluster's first list, at its very first start
    /// ([`tenure::Node::first_boot`]).
    #[default]
    FirstBoot,
    /// A new member joining a running cluster ([`tenure::Node::join`]): it stands by
    /// (votes for no one, does not campaign) until the master added it and it caught up.
    Join,
    /// A member whose record was lost (its data directory deleted or replaced): it
    /// starts as a non-voter and votes again only once the recovery rule allows
    /// (`tenure node --rejoin`, [`tenure::Node::rejoin`]).
    Rejoin,
}

/// Receives every event, in order (after it was logged and counted).
pub type EventHandler = Box<dyn FnMut(&Event) + Send>;

/// What is logged at most every [`LOG_INTERVAL`]: a datagram from an unknown address
/// (slot 0), each [`DropReason`] (by its position in [`DropReason::ALL`]), each
/// [`SendError`].
const UNKNOWN_SOURCE_SLOT: usize = 0;
const DROP_SLOT_BASE: usize = 1;
const SEND_SLOT_BASE: usize = DROP_SLOT_BASE + DropReason::ALL.len();
const LOG_SLOTS: usize = SEND_SLOT_BASE + SendError::ALL.len();

fn drop_slot(reason: DropReason) -> usize {
    let index = DropReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0);
    DROP_SLOT_BASE + index
}

/// Remembers, per slot, when it was last logged and how many were not.
#[derive(Debug)]
struct RateLimit {
    next: [Option<Instant>; LOG_SLOTS],
    suppressed: [u64; LOG_SLOTS],
}

impl RateLimit {
    fn new() -> Self {
        RateLimit {
            next: [None; LOG_SLOTS],
            suppressed: [0; LOG_SLOTS],
        }
    }

    /// `Some(suppressed since the last log)` if this slot may be logged now.
    fn allow(&mut self, slot: usize, now: Instant) -> Option<u64> {
        match self.next[slot] {
            Some(next) if now < next => {
                self.suppressed[slot] += 1;
                None
            }
            _ => {
                self.next[slot] = Some(now + LOG_INTERVAL);
                Some(std::mem::take(&mut self.suppressed[slot]))
            }
        }
    }
}

/// What this driver does with the core's outputs ([`tenure::Effects`]): the store, the
/// transport, the counters, the logs and the application's event handler.
struct Io<S, T> {
    me: NodeId,
    /// The instant of the input whose outputs are being executed.
    now: Instant,
    store: S,
    transport: T,
    metrics: Arc<Metrics>,
    on_event: Option<EventHandler>,
    logs: RateLimit,
    /// Members' names, for the log lines that name a master.
    names: Vec<(NodeId, String)>,
}

impl<S, T> Io<S, T> {
    /// The name of member `id`, if it has one.
    fn name_of(&self, id: NodeId) -> Option<&str> {
        self.names
            .iter()
            .find(|(member, _)| *member == id)
            .map(|(_, name)| name.as_str())
    }
}

impl<S: RecordStore, T: Transport> Effects for Io<S, T> {
    type Error = PersistError;

    fn persist(&mut self, record: &Record) -> Result<(), PersistError> {
        let started = std::time::Instant::now();
        // SAFETY-OF-PROTOCOL: durable before any later output is executed (the executor
        // goes on only when this returns `Ok`).
        self.store.store(record).map_err(PersistError)?;
        let took = started.elapsed();
        self.metrics.persisted(took);
        tracing::debug!(
            me = self.me.0,
            version = %OrNone(record.election().version),
            master = %OrNone(record.election().master),
            took_us = took.as_micros(),
            "record stored"
        );
        Ok(())
    }

    fn send(&mut self, to: NodeId, frame: &[u8], _: &Packet) -> Result<(), PersistError> {
        let result = self.transport.send(to, frame);
        self.metrics.sent(result);
        if let Err(e) = result {
            let os_error = self.transport.last_os_error();
            tracing::trace!(me = self.me.0, to = to.0, reason = %e, "send failed");
            if let Some(suppressed) = self.logs.allow(SEND_SLOT_BASE + e.index(), self.now) {
                tracing::warn!(
                    me = self.me.0,
                    to = to.0,
                    reason = %e,
                    error = %OrNone(os_error.map(io::Error::from_raw_os_error)),
                    suppressed,
                    "send failed (counted; the protocol retries)"
                );
            }
        }
        // A failed send never stops the node: the protocol retries.
        Ok(())
    }

    fn event(&mut self, event: &Event) -> Result<(), PersistError> {
        let me = self.me;
        match *event {
            Event::BecameMaster { token, term_end } => tracing::info!(
                me = me.0,
                master = me.0,
                token,
                term_ms = term_end.saturating_duration_since(self.now).as_millis(),
                "became master"
            ),
            Event::TermEnded { token, reason } => tracing::info!(
                me = me.0,
                token,
                reason = %term_end_label(reason),
                "no longer master"
            ),
            Event::MasterElected { node, token } => tracing::info!(
                me = me.0,
                master = node.0,
                master_name = %OrNone(self.name_of(node)),
                token,
                "new master"
            ),
            Event::MasterLost {
                node,
                token,
                reason,
            } => tracing::info!(
                me = me.0,
                master = node.0,
                master_name = %OrNone(self.name_of(node)),
                token,
                reason = %term_end_label(reason),
                "master lost"
            ),
            Event::MembersChanged { version, members } => {
                tracing::info!(me = me.0, version, members, "member list changed")
            }
            Event::MemberListDiffers {
                version,
                followed: true,
            } => tracing::warn!(
                me = me.0,
                ?version,
                "the configured member list differs from the register's; following the register"
            ),
            Event::MemberListDiffers {
                version,
                followed: false,
            } => tracing::warn!(
                me = me.0,
                ?version,
                "this node's member list is not the register's; standing by (no votes) \
                 until it has the register's"
            ),
        }
        if let Some(handler) = self.on_event.as_mut() {
            handler(event);
        }
        Ok(())
    }
}

/// A node, its record store, its transport and its clock: see the [module docs](self).
pub struct Driver<S, T, C> {
    node: CoreNode,
    /// Executes the node's outputs; a new one per start (it remembers what was stored).
    exec: tenure::Executor,
    io: Io<S, T>,
    clock: C,
    view: watch::Sender<View>,
    /// Since when this node has seen no master, and when it warns about it next.
    masterless: Option<(Instant, Instant)>,
}

impl<S, T, C> fmt::Debug for Driver<S, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("node", &self.node.id())
            .field("view", &*self.view.borrow())
            .finish_non_exhaustive()
    }
}

impl<S: RecordStore, T: Transport, C: Clock> Driver<S, T, C> {
    /// Loads the stored record and starts the node from it ([`tenure::Node::restore`]),
    /// or, only when no record was ever stored, as a brand-new node
    /// ([`tenure::Node::first_boot`]); then stores its first record.
    pub fn start(
        config: CoreConfig,
        store: S,
        transport: T,
        clock: C,
    ) -> Result<Self, StartupError> {
        Self::start_as(config, StartAs::FirstBoot, store, transport, clock)
    }

    /// Like [`Driver::start`]; without a record, the node starts as `mode` says. A
    /// record with [`StartAs::Rejoin`] is refused ([`StartupError::RejoinWithRecord`]).
    pub fn start_as(
        config: CoreConfig,
        mode: StartAs,
        mut store: S,
        transport: T,
        clock: C,
    ) -> Result<Self, StartupError> {
        let record = store.load()?;
        let now = clock.now();
        let me = config.node_id;
        let node = match record {
            Some(_) if mode == StartAs::Rejoin => {
                return Err(StartupError::RejoinWithRecord {
                    dir: std::path::PathBuf::new(),
                })
            }
            None if mode == StartAs::Join => {
                tracing::info!(
                    me = me.0,
                    "no record yet: joining a running cluster; standing by (no votes, no campaign) until the master added this node and it caught up"
                );
                CoreNode::join(config, now)
            }
            None if mode == StartAs::Rejoin => {
                tracing::warn!(
                    me = me.0,
                    "no record: rejoining after a lost record; this node votes for no one until the recovery rule lets it (it stands by meanwhile)"
                );
                return rejoin(config, now).and_then(|node| Self::assemble(node, store, transport, clock, now));
            }
            None => {
                tracing::info!(me = me.0, "no record yet: first boot");
                CoreNode::first_boot(config, now)
            }
            Some(record) => {
                tracing::info!(
                    me = me.0,
                    incarnation = record.incarnation(),
                    version = %OrNone(record.election().version),
                    "restoring from the stored record"
                );
                CoreNode::restore(config, record, now)
            }
        }
        .map_err(StartupError::Start)?;
        Self::assemble(node, store, transport, clock, now)
    }

    fn assemble(
        node: CoreNode,
        store: S,
        transport: T,
        clock: C,
        now: Instant,
    ) -> Result<Self, StartupError> {
        let me = node.id();
        let (view, _) = watch::channel(View::initial(me, now));
        let mut driver = Driver {
            node,
            exec: tenure::Executor::new(),
            io: Io {
                me,
                now,
                store,
                transport,
                metrics: Arc::new(Metrics::default()),
                on_event: None,
                logs: RateLimit::new(),
                names: Vec::new(),
            },
            clock,
            view,
            masterless: None,
        };
        driver.after_input(now).map_err(StartupError::Driver)?;
        Ok(driver)
    }

    /// Sets the members' names that the log lines naming a master show (`master_name=`).
    pub fn set_member_names(&mut self, names: Vec<(NodeId, String)>) {
        self.io.names = names;
    }

    /// Sets the handler that receives every event.
    pub fn set_event_handler(&mut self, handler: EventHandler) {
        self.io.on_event = Some(handler);
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.node.id()
    }

    /// The core node, for queries ([`tenure::Node::master`], [`tenure::Node::stats`], ...).
    pub fn node(&self) -> &CoreNode {
        &self.node
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The node's counters, shared with whoever renders them.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.io.metrics)
    }

    /// A receiver of the view published after every input.
    pub fn subscribe(&self) -> watch::Receiver<View> {
        self.view.subscribe()
    }

    /// The view published after the last input.
    pub fn view(&self) -> View {
        *self.view.borrow()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }

    /// Handles one received datagram. `from` is the member whose address it came from
    /// (`None`: no member's; it is dropped unread and counted as an unknown source);
    /// the core drops it if its header names another member. `origin` names its source
    /// in logs.
    pub fn handle_datagram(
        &mut self,
        origin: impl fmt::Display,
        from: Option<NodeId>,
        bytes: &[u8],
    ) -> Result<(), DriverError> {
        let now = self.clock.now();
        self.io.metrics.datagram_in();
        let Some(from) = from else {
            self.io.metrics.unknown_source();
            self.log_drop(
                now,
                UNKNOWN_SOURCE_SLOT,
                "unknown_source",
                &origin,
                bytes.len(),
            );
            return Ok(());
        };
        let handled = self.node.handle_frame_from(now, from, bytes);
        self.handled(now, handled, &origin, Some(from), bytes)
    }

    /// Handles one frame whose sender is known only from its authenticated header (as a
    /// firmware reads its link: the core checks the tag before anything else). `origin`
    /// names its source in logs.
    pub fn handle_frame(
        &mut self,
        origin: impl fmt::Display,
        bytes: &[u8],
    ) -> Result<(), DriverError> {
        let now = self.clock.now();
        self.io.metrics.datagram_in();
        let handled = self.node.handle_frame(now, bytes);
        self.handled(now, handled, &origin, None, bytes)
    }

    /// Logs a drop the core reported, then executes the input's outputs (a dropped
    /// frame may still have moved the node's clock and timers on). `from` is the member
    /// the frame came from, when the binding knows it.
    fn handled(
        &mut self,
        now: Instant,
        handled: Result<(), DropReason>,
        origin: &dyn fmt::Display,
        from: Option<NodeId>,
        bytes: &[u8],
    ) -> Result<(), DriverError> {
        let len = bytes.len();
        if handled.is_ok() || handled.is_err_and(DropReason::is_benign) {
            // Heard from: the frame passed its checks (a late or repeated one too).
            let sender = from.or_else(|| {
                tenure::auth::open(bytes, &self.node.config().auth)
                    .ok()
                    .map(|p| p.header.from)
            });
            if let Some(id) = sender.filter(|n| self.node.config().member(*n).is_some()) {
                self.io.metrics.heard(id, now);
            }
        }
        match handled {
            Ok(()) => {}
            Err(reason) if reason.is_benign() => {
                // Late answers and repeats are part of normal operation, not bad traffic.
                tracing::trace!(me = self.node.id().0, %reason, %origin, len, "dropped a frame");
            }
            Err(
                reason @ (DropReason::WrongRenewal
                | DropReason::OlderProtocol
                | DropReason::NewerProtocol),
            ) => self.log_mixed_cluster(now, reason, origin, from, bytes),
            Err(reason) => self.log_drop(now, drop_slot(reason), reason.label(), origin, len),
        }
        self.after_input(now)
    }

    /// A member speaking another protocol version or renewal mode: a configuration
    /// error of the cluster, logged as such (rate-limited like every drop).
    fn log_mixed_cluster(
        &mut self,
        now: Instant,
        reason: DropReason,
        origin: &dyn fmt::Display,
        from: Option<NodeId>,
        bytes: &[u8],
    ) {
        let me = self.node.id();
        tracing::trace!(me = me.0, %reason, %origin, len = bytes.len(), "dropped a frame");
        let Some(suppressed) = self.io.logs.allow(drop_slot(reason), now) else {
            return;
        };
        let message = mixed_cluster_message(self.node.config(), reason, from, bytes);
        tracing::error!(
            me = me.0,
            reason = %reason.label(),
            %origin,
            suppressed,
            "{message} (counted; logged at most every 10 s)"
        );
    }

    /// Handles the timer of [`poll_timeout`](Self::poll_timeout) (early or late is
    /// harmless).
    pub fn handle_timeout(&mut self) -> Result<(), DriverError> {
        let now = self.clock.now();
        self.node.handle_timeout(now);
        self.after_input(now)
    }

    /// Adds `member` through the register (see [`tenure::Node::add_member`]). The outer
    /// error stops the node; the inner one is the core's refusal.
    pub fn add_member(
        &mut self,
        member: tenure::Member,
    ) -> Result<Result<(), tenure::MembersError>, DriverError> {
        let now = self.clock.now();
        tracing::debug!(
            me = self.node.id().0,
            member = member.id.0,
            "member add asked"
        );
        if let Err(e) = self.node.add_member(member, now) {
            return Ok(Err(e));
        }
        self.after_input(now).map(Ok)
    }

    /// Removes member `id` through the register (see [`tenure::Node::remove_member`]).
    pub fn remove_member(
        &mut self,
        id: NodeId,
    ) -> Result<Result<(), tenure::MembersError>, DriverError> {
        let now = self.clock.now();
        tracing::debug!(me = self.node.id().0, member = id.0, "member removal asked");
        if let Err(e) = self.node.remove_member(id, now) {
            return Ok(Err(e));
        }
        self.after_input(now).map(Ok)
    }

    /// The member that sealed `bytes` with the cluster key, if the cluster has a key, the
    /// frame's tag checks out, and its header names another member of the current list.
    /// Nothing else is read; the frame is not handled. (How a binding learns the address
    /// of a member it has none for: see [`crate::addresses`].)
    pub fn authenticated_sender(&self, bytes: &[u8]) -> Option<NodeId> {
        let config = self.node.config();
        if !config.auth.is_secure() {
            return None;
        }
        let from = tenure::auth::open(bytes, &config.auth).ok()?.header.from;
        (from != config.node_id && self.node.members().iter().any(|m| m.id == from)).then_some(from)
    }

    /// Gives up the role at once (see [`tenure::Node::release`]).
    pub fn release(&mut self) -> Result<(), CommandFailure> {
        let now = self.clock.now();
        tracing::debug!(me = self.node.id().0, "release asked");
        self.node.release(now).map_err(CommandFailure::Refused)?;
        self.after_input(now).map_err(CommandFailure::Fatal)
    }

    /// Gives up the role naming a successor (see [`tenure::Node::hand_over`]).
    pub fn hand_over(&mut self, to: NodeId) -> Result<(), CommandFailure> {
        let now = self.clock.now();
        tracing::debug!(me = self.node.id().0, to = to.0, "hand-over asked");
        self.node
            .hand_over(now, to)
            .map_err(CommandFailure::Refused)?;
        self.after_input(now).map_err(CommandFailure::Fatal)
    }

    /// Campaigns now if no master is live (see [`tenure::Node::campaign`]).
    pub fn campaign(&mut self) -> Result<(), CommandFailure> {
        let now = self.clock.now();
        tracing::debug!(me = self.node.id().0, "campaign asked");
        self.node.campaign(now).map_err(CommandFailure::Refused)?;
        self.after_input(now).map_err(CommandFailure::Fatal)
    }

    /// Publishes a last view (no master, not running). Call it when the node stops on
    /// purpose or after a [`DriverError`]; a crash, by definition, does not.
    pub fn stop(&mut self) {
        let now = self.clock.now();
        self.view.send_replace(View {
            running: false,
            ..View::initial(self.node.id(), now)
        });
    }

    /// After every input: publish the view, then execute the outputs in order.
    fn after_input(&mut self, now: Instant) -> Result<(), DriverError> {
        // SAFETY-OF-PROTOCOL: the view is published before any output of this input
        // leaves. A release (or an expiry) is therefore visible to this node's readers
        // before any other node can learn of it and take the role.
        self.publish(now);
        self.watch_for_no_master(now);
        // Inputs change the counters; outputs do not.
        self.io.metrics.set_core(self.node.stats());
        self.io.now = now;
        self.exec.drain(&mut self.node, &mut self.io)?;
        Ok(())
    }

    fn publish(&mut self, now: Instant) {
        let me = self.node.id();
        let seen = self.node.master(now);
        let previous = *self.view.borrow();
        let term = match seen {
            Some(m) if m.node == me => {
                let end = m.term_end.unwrap_or(now);
                Some(match previous.term {
                    // The same term, running on without a gap (its token never changes).
                    Some(t) if t.end > now && t.token == m.token => {
                        if end > t.end {
                            self.io.metrics.term_extended();
                        }
                        Term { end, ..t }
                    }
                    _ => Term {
                        token: m.token,
                        since: now,
                        end,
                    },
                })
            }
            _ => None,
        };
        let view = View {
            node: me,
            master: seen.map(|m| m.node),
            token: seen.map(|m| m.token),
            version: self.node.version(),
            term,
            taken_at: now,
            running: true,
        };
        if view.master != previous.master {
            self.io.metrics.master_changed();
        }
        // The term's span on the host's clock, logged before the view that claims it is
        // visible (a claim never reaches past the last logged end), and its early end
        // after (the claim stopped no later than that reading).
        if let Some(t) = term.filter(|t| previous.term.map(|p| p.end) != Some(t.end)) {
            let begun = previous.term.map(|p| (p.token, p.since)) != Some((t.token, t.since));
            tracing::debug!(
                target: TERM_LOG,
                me = me.0,
                token = t.token,
                begin_ns = self.clock.boottime_ns(t.since),
                end_ns = self.clock.boottime_ns(t.end),
                "{}",
                if begun { "term begins" } else { "term extended" }
            );
        }
        let over = previous
            .term
            .filter(|p| term.map(|t| (t.token, t.since)) != Some((p.token, p.since)));
        self.view.send_if_modified(|v| {
            let changed = (v.master, v.token, v.version, v.term, v.running)
                != (
                    view.master,
                    view.token,
                    view.version,
                    view.term,
                    view.running,
                );
            *v = view;
            changed
        });
        if let Some(p) = over {
            tracing::debug!(
                target: TERM_LOG,
                me = me.0,
                token = p.token,
                begin_ns = self.clock.boottime_ns(p.since),
                end_ns = self.clock.boottime_ns(p.end),
                at_ns = self.clock.boottime_ns(self.clock.now()),
                "term over"
            );
        }
    }

    /// Warns when no master has been seen for [`NO_MASTER_WARNING`], then every
    /// [`LOG_INTERVAL`], naming the members heard from within the last lease; says when a
    /// master is seen again.
    fn watch_for_no_master(&mut self, now: Instant) {
        let me = self.node.id();
        let master = self.node.master(now).map(|m| m.node);
        match (master, self.masterless) {
            (Some(master), Some((since, next))) => {
                if next > since + crate::clock::to_core(NO_MASTER_WARNING) {
                    // It was warned about.
                    tracing::info!(
                        me = me.0,
                        master = master.0,
                        after_s = now.saturating_duration_since(since).as_millis() as f64 / 1000.0,
                        "a master again"
                    );
                }
                self.masterless = None;
            }
            (Some(_), None) => {}
            (None, None) => {
                self.masterless = Some((now, now + crate::clock::to_core(NO_MASTER_WARNING)));
            }
            (None, Some((since, next))) if now >= next => {
                let lease = self.node.config().lease;
                let recent = |t: Instant| now.saturating_duration_since(t) < lease;
                let heard: Vec<String> = self
                    .node
                    .config()
                    .members
                    .iter()
                    .filter(|m| m.id != me && self.io.metrics.last_heard(m.id).is_some_and(recent))
                    .map(|m| m.id.to_string())
                    .collect();
                let voters = self
                    .node
                    .config()
                    .members
                    .iter()
                    .filter(|m| m.role.votes())
                    .count();
                tracing::warn!(
                    me = me.0,
                    for_s = now.saturating_duration_since(since).as_millis() / 1000,
                    voters,
                    heard = %if heard.is_empty() { "none".to_string() } else { heard.join(",") },
                    "no master: a majority of the voters cannot agree (too few up or \
                     reachable? `heard` lists the members heard from within a lease)"
                );
                self.masterless = Some((since, now + LOG_INTERVAL));
            }
            (None, Some(_)) => {}
        }
    }

    /// Logs one drop (counted already), at most once per [`LOG_INTERVAL`] per slot.
    fn log_drop(
        &mut self,
        now: Instant,
        slot: usize,
        reason: &'static str,
        origin: &dyn fmt::Display,
        len: usize,
    ) {
        let me = self.node.id();
        tracing::trace!(me = me.0, %reason, %origin, len, "dropped a frame");
        if let Some(suppressed) = self.io.logs.allow(slot, now) {
            tracing::warn!(
                me = me.0,
                %reason,
                %origin,
                len,
                suppressed,
                "dropped a frame (counted; logged at most every 10 s per reason)"
            );
        }
    }
}

/// The error a frame of a mixed cluster (another protocol version or renewal mode) is
/// logged with, for example "node 3 runs renewal mode logged, this node lease: a cluster
/// must use one mode; frames refused". `from` is the member the frame came from, if known;
/// otherwise the frame's header names it (it is authentic when the mode differs).
pub fn mixed_cluster_message(
    config: &CoreConfig,
    reason: DropReason,
    from: Option<NodeId>,
    frame: &[u8],
) -> String {
    let header = tenure::auth::open(frame, &config.auth)
        .ok()
        .map(|p| p.header);
    let sender = from
        .or(header.map(|h| h.from))
        .map_or_else(|| "a member".to_string(), |n| format!("node {n}"));
    match reason {
        DropReason::WrongRenewal => {
            let theirs = header.map_or_else(
                || {
                    match config.renewal {
                        tenure::Renewal::Lease => tenure::Renewal::Logged,
                        tenure::Renewal::Logged => tenure::Renewal::Lease,
                    }
                    .to_string()
                },
                |h| h.renewal.to_string(),
            );
            format!(
                "{sender} runs renewal mode {theirs}, this node {}: a cluster must use one \
                 mode; frames refused",
                config.renewal
            )
        }
        _ => {
            // The protocol version is the first byte of every frame, in every version.
            let theirs = frame
                .first()
                .map_or_else(|| "?".to_string(), |v| v.to_string());
            format!(
                "{sender} speaks protocol {theirs}, this node {}: every member of a cluster \
                 must run the same protocol version; frames refused",
                tenure::PROTOCOL_VERSION
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_lets_one_through_per_interval_and_counts_the_rest() {
        let mut r = RateLimit::new();
        let t0 = Instant::from_millis(5);
        assert_eq!(r.allow(3, t0), Some(0));
        assert_eq!(r.allow(3, t0 + tenure::Duration::from_secs(1)), None);
        assert_eq!(r.allow(3, t0 + tenure::Duration::from_secs(2)), None);
        assert_eq!(r.allow(4, t0), Some(0), "slots are independent");
        assert_eq!(r.allow(3, t0 + LOG_INTERVAL), Some(2));
    }

    #[test]
    fn every_drop_reason_and_send_error_has_its_own_log_slot() {
        let mut slots: Vec<usize> = DropReason::ALL.iter().map(|r| drop_slot(*r)).collect();
        slots.push(UNKNOWN_SOURCE_SLOT);
        slots.extend(SendError::ALL.iter().map(|e| SEND_SLOT_BASE + e.index()));
        let mut unique = slots.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), slots.len(), "{slots:?}");
        assert!(slots.iter().all(|s| *s < LOG_SLOTS));
    }

    #[test]
    fn a_view_claims_only_inside_its_term() {
        let view = View {
            node: NodeId(1),
            master: Some(NodeId(1)),
            token: Some(4),
            version: Some(5),
            term: Some(Term {
                token: 4,
                since: Instant::from_millis(10),
                end: Instant::from_millis(20),
            }),
            taken_at: Instant::from_millis(12),
            running: true,
        };
        assert!(!view.is_master_at(Instant::from_millis(9)));
        assert!(view.is_master_at(Instant::from_millis(10)));
        assert!(!view.is_master_at(Instant::from_millis(20)));
        assert_eq!(
            view.master_at(Instant::from_millis(15)),
            Some(MasterView {
                node: NodeId(1),
                token: 4,
                term_end: Some(Instant::from_millis(20)),
            })
        );
        assert_eq!(view.master_at(Instant::from_millis(25)), None);
        let follower = View {
            node: NodeId(2),
            term: None,
            ..view
        };
        assert_eq!(
            follower.master_at(Instant::from_millis(25)),
            Some(MasterView {
                node: NodeId(1),
                token: 4,
                term_end: None,
            })
        );
    }

    #[test]
    fn a_mixed_cluster_is_named_in_its_log_message() {
        let members = [tenure::Member::candidate(1), tenure::Member::candidate(3)];
        let config = CoreConfig::new(7, NodeId(1), &members).unwrap();
        let mut packet = tenure::Packet {
            header: tenure::Header {
                protocol: tenure::PROTOCOL_VERSION,
                cluster: 7,
                from: NodeId(3),
                renewal: tenure::Renewal::Logged,
            },
            message: tenure::Message::CatchUp { next_instance: 1 },
        };
        let mut buf = [0u8; tenure::MAX_SEALED_SIZE];
        let n = tenure::auth::seal(&packet, &config.auth, &mut buf).unwrap();
        assert_eq!(
            mixed_cluster_message(&config, DropReason::WrongRenewal, None, &buf[..n]),
            "node 3 runs renewal mode logged, this node lease: a cluster must use one mode; \
             frames refused"
        );
        packet.header.protocol = 1;
        let n = tenure::auth::seal(&packet, &config.auth, &mut buf).unwrap();
        assert_eq!(
            mixed_cluster_message(
                &config,
                DropReason::OlderProtocol,
                Some(NodeId(3)),
                &buf[..n]
            ),
            format!(
                "node 3 speaks protocol 1, this node {}: every member of a cluster must run \
                 the same protocol version; frames refused",
                tenure::PROTOCOL_VERSION
            )
        );
    }

    /// An in-memory store, a transport whose every send fails with an OS error, a clock
    /// the test moves.
    struct MemStore(Option<Record>);

    impl RecordStore for MemStore {
        fn load(&mut self) -> Result<Option<Record>, LoadError> {
            Ok(self.0)
        }

        fn store(&mut self, record: &Record) -> io::Result<()> {
            self.0 = Some(*record);
            Ok(())
        }
    }

    struct Refusing;

    impl Transport for Refusing {
        fn send(&mut self, _: NodeId, _: &[u8]) -> Result<(), SendError> {
            Err(SendError::Refused)
        }

        fn last_os_error(&self) -> Option<i32> {
            Some(111) // ECONNREFUSED
        }
    }

    #[derive(Clone)]
    struct TestClock(Arc<std::sync::atomic::AtomicU64>);

    impl Clock for TestClock {
        fn now(&self) -> Instant {
            Instant::from_micros(self.0.load(std::sync::atomic::Ordering::Relaxed))
        }
    }

    /// The INFO-level log text that `f` produces.
    fn info_logs_of(f: impl FnOnce()) -> String {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = logs.0.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_send_is_logged_with_its_os_error_and_no_master_is_warned_about() {
        let members = [
            tenure::Member::candidate(1),
            tenure::Member::candidate(2),
            tenure::Member::candidate(3),
        ];
        let config = CoreConfig::new(7, NodeId(1), &members).unwrap();
        let time = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let text = info_logs_of(|| {
            let mut driver =
                Driver::start(config, MemStore(None), Refusing, TestClock(time.clone())).unwrap();
            // Ten seconds of campaigns that never reach anyone.
            for _ in 0..10_000 {
                let Some(next) = driver.poll_timeout() else {
                    break;
                };
                if next.as_micros() > 10_000_000 {
                    break;
                }
                time.store(next.as_micros(), std::sync::atomic::Ordering::Relaxed);
                driver.handle_timeout().unwrap();
            }
            assert!(
                driver
                    .metrics()
                    .counters()
                    .send_failures(SendError::Refused)
                    > 0
            );
        });
        let sent = text
            .lines()
            .find(|l| l.contains("send failed"))
            .unwrap_or_else(|| panic!("no send failure logged:\n{text}"));
        assert!(sent.contains("me=1"), "{sent}");
        assert!(sent.contains("reason=refused"), "{sent}");
        assert!(sent.contains("(os error 111)"), "{sent}");
        let warned = text
            .lines()
            .find(|l| l.contains("no master"))
            .unwrap_or_else(|| panic!("no warning about the missing master:\n{text}"));
        assert!(warned.contains("WARN"), "{warned}");
        assert!(
            warned.contains("me=1 for_s=5 voters=3 heard=none"),
            "{warned}"
        );
    }

    #[test]
    fn log_lines_that_name_a_master_carry_its_name() {
        use tenure::Effects as _;
        let text = info_logs_of(|| {
            let mut io = Io {
                me: NodeId(1),
                now: Instant::from_micros(0),
                store: MemStore(None),
                transport: Refusing,
                metrics: Arc::new(Metrics::default()),
                on_event: None,
                logs: RateLimit::new(),
                names: vec![(NodeId(2), "db-east".to_string())],
            };
            io.event(&Event::MasterElected {
                node: NodeId(2),
                token: 7,
            })
            .unwrap();
            io.event(&Event::MasterLost {
                node: NodeId(3),
                token: 9,
                reason: tenure::TermEnd::Expired,
            })
            .unwrap();
        });
        let elected = text.lines().find(|l| l.contains("new master")).unwrap();
        assert!(
            elected.contains("me=1 master=2 master_name=db-east token=7"),
            "{elected}"
        );
        let lost = text.lines().find(|l| l.contains("master lost")).unwrap();
        assert!(
            lost.contains("master=3 master_name=none token=9 reason=expired"),
            "{lost}"
        );
    }
}

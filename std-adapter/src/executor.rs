//! The executor: runs a [`tenure::Node`] against a [`Transport`], a [`RecordStore`] and a
//! [`Clock`], whatever the runtime.
//!
//! It is written once and bound twice: [`crate::node`] drives it from a tokio task, and
//! the crate's tests drive it from a plain thread with a blocking socket. A binding only
//! has to
//!
//! 1. feed inputs: [`Executor::handle_datagram`] for every datagram received (naming the
//!    member it came from, if any), [`Executor::handle_timeout`] when
//!    [`Executor::poll_timeout`] is reached, and commands ([`Executor::release`],
//!    [`Executor::hand_over`], [`Executor::campaign`]);
//! 2. re-arm its timer from [`Executor::poll_timeout`] after each of them.
//!
//! After every input the executor publishes the node's view (see [`View`]), then drains
//! the core's outputs in order: a `Persist` is made durable before any later `Send`
//! leaves, sends are postcard datagrams (sealed with the configured
//! [`tenure::Auth`], if any) handed to the transport by member id, and events
//! are logged, counted and given to the event handler.

use std::fmt;
use std::io;
use std::sync::Arc;

use tenure::{
    CommandError, Destination, Event, Instant, NodeId, Output, Packet, WireError, MAX_PACKET_SIZE,
    MAX_SEALED_SIZE,
};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::metrics::{AdapterDrop, Metrics};
use crate::store::{LoadError, OpenError, RecordStore};
use crate::transport::{SendError, Transport};

/// The member capacity of every node this crate runs: any valid configuration fits.
pub const MAX_NODES: usize = tenure::MAX_MEMBERS;

/// The core node type this crate runs.
pub type CoreNode = tenure::Node<MAX_NODES>;

/// The core configuration type this crate runs.
pub type CoreConfig = tenure::Config<MAX_NODES>;

/// How often at most each kind of dropped traffic or failed send is logged.
const LOG_INTERVAL: tenure::Duration = tenure::Duration::from_secs(10);

/// One term of this node as master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Term {
    /// The version the term began with: a fencing token (every later master's version is
    /// higher; renewals raise the current version, never lower it).
    pub version: u64,
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
    /// The master's version (its fencing token), with `master`.
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

    /// The master and its version at `at`: this node only while its term runs, another
    /// node as last seen.
    pub fn master_at(&self, at: Instant) -> Option<(NodeId, u64)> {
        let master = self.master?;
        if master == self.node && !self.is_master_at(at) {
            return None;
        }
        Some((master, self.version.unwrap_or(0)))
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
    /// The first record could not be made durable.
    Persist(PersistError),
    /// The socket could not be bound.
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
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
            StartupError::Persist(e) => e.fmt(f),
            StartupError::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
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

/// Why a command failed.
#[derive(Debug)]
pub enum ExecError {
    /// The core refused it (not master, ...); nothing changed.
    Refused(CommandError),
    /// It was accepted but its record could not be stored: the node must stop.
    Persist(PersistError),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Refused(e) => write!(f, "refused: {e}"),
            ExecError::Persist(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ExecError {}

/// Receives every event, in order (after it was logged and counted).
pub type EventHandler = Box<dyn FnMut(&Event) + Send>;

/// Kinds of dropped traffic and failed sends that are logged at most every
/// [`LOG_INTERVAL`].
const LOG_KINDS: usize = SEND_KIND_BASE + SendError::ALL.len();

/// Remembers, per kind, when it was last logged and how many were not.
#[derive(Debug)]
struct RateLimit {
    next: [Option<Instant>; LOG_KINDS],
    suppressed: [u64; LOG_KINDS],
}

impl RateLimit {
    fn new() -> Self {
        RateLimit {
            next: [None; LOG_KINDS],
            suppressed: [0; LOG_KINDS],
        }
    }

    /// `Some(suppressed since the last log)` if this kind may be logged now.
    fn allow(&mut self, kind: usize, now: Instant) -> Option<u64> {
        match self.next[kind] {
            Some(next) if now < next => {
                self.suppressed[kind] += 1;
                None
            }
            _ => {
                self.next[kind] = Some(now + LOG_INTERVAL);
                Some(std::mem::take(&mut self.suppressed[kind]))
            }
        }
    }
}

fn drop_kind(reason: &str) -> usize {
    match reason {
        "unknown_source" => 0,
        "source_mismatch" => 1,
        "oversized" => 2,
        "malformed" => 3,
        "newer_protocol" => 4,
        "wrong_cluster" => 5,
        "not_member" => 6,
        "bad_field" => 7,
        "stale" => 8,
        "bad_tag" => 9,
        _ => 10,
    }
}

const SEND_KIND_BASE: usize = 11;

/// A node, its record store, its transport and its clock: see the [module docs](self).
pub struct Executor<S, T, C> {
    node: CoreNode,
    store: S,
    transport: T,
    clock: C,
    others: Vec<NodeId>,
    metrics: Arc<Metrics>,
    view: watch::Sender<View>,
    on_event: Option<EventHandler>,
    logs: RateLimit,
}

impl<S, T, C> fmt::Debug for Executor<S, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("node", &self.node.id())
            .field("view", &*self.view.borrow())
            .finish_non_exhaustive()
    }
}

impl<S: RecordStore, T: Transport, C: Clock> Executor<S, T, C> {
    /// Loads the stored record and starts the node from it ([`tenure::Node::restore`]),
    /// or, only when no record was ever stored, as a brand-new node
    /// ([`tenure::Node::first_boot`]); then stores its first record.
    pub fn start(
        config: CoreConfig,
        mut store: S,
        transport: T,
        clock: C,
    ) -> Result<Self, StartupError> {
        let record = store.load()?;
        let now = clock.now();
        let me = config.node_id;
        let others = config
            .members
            .iter()
            .map(|m| m.id)
            .filter(|id| *id != me)
            .collect();
        let node = match record {
            None => {
                tracing::info!(node = %me, "no record yet: first boot");
                CoreNode::first_boot(config, now)
            }
            Some(record) => {
                tracing::info!(
                    node = %me,
                    incarnation = record.incarnation(),
                    version = ?record.election().version,
                    "restoring from the stored record"
                );
                CoreNode::restore(config, record, now)
            }
        }
        .map_err(StartupError::Start)?;
        let (view, _) = watch::channel(View::initial(me, now));
        let mut exec = Executor {
            node,
            store,
            transport,
            clock,
            others,
            metrics: Arc::new(Metrics::default()),
            view,
            on_event: None,
            logs: RateLimit::new(),
        };
        exec.after_input(now).map_err(StartupError::Persist)?;
        Ok(exec)
    }

    /// Sets the handler that receives every event.
    pub fn set_event_handler(&mut self, handler: EventHandler) {
        self.on_event = Some(handler);
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
        Arc::clone(&self.metrics)
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

    /// Handles one received datagram. `from` is the member it came from in the
    /// transport's knowledge (`None`: no member; it is dropped unread); `origin` names
    /// its source in logs.
    pub fn handle_datagram(
        &mut self,
        origin: impl fmt::Display,
        from: Option<NodeId>,
        bytes: &[u8],
    ) -> Result<(), PersistError> {
        let now = self.clock.now();
        self.metrics.datagram_in();
        let Some(from) = from else {
            self.adapter_drop(now, AdapterDrop::UnknownSource, &origin, bytes.len());
            return Ok(());
        };
        let auth = &self.node.config().auth;
        let largest = if auth.is_secure() {
            MAX_SEALED_SIZE
        } else {
            MAX_PACKET_SIZE
        };
        if bytes.len() > largest {
            self.adapter_drop(now, AdapterDrop::Oversized, &origin, bytes.len());
            return Ok(());
        }
        // Nothing of the packet is read before its tag (if keys are configured) verified.
        let packet = match tenure::auth::open(bytes, auth) {
            Ok(packet) => packet,
            Err(WireError::BadTag) => {
                self.adapter_drop(now, AdapterDrop::BadTag, &origin, bytes.len());
                return Ok(());
            }
            Err(e) => {
                self.node.note_malformed();
                self.metrics.set_core(self.node.stats());
                self.log_drop(now, "malformed", &origin, &e);
                return Ok(());
            }
        };
        let header = packet.header;
        if header.cluster == self.node.config().cluster_id && header.from != from {
            // The header claims another member than the address it came from: a
            // misconfigured or spoofing sender. (Frame authentication will replace this.)
            self.adapter_drop(now, AdapterDrop::SourceMismatch, &origin, bytes.len());
            return Ok(());
        }
        let before = self.node.stats().dropped;
        self.node.handle_message(now, &packet);
        let after = self.node.stats().dropped;
        if after != before {
            let reason = changed_drop(&before, &after);
            let detail = format!(
                "{} from node {} of cluster {} (protocol {})",
                packet.message.kind(),
                header.from,
                header.cluster,
                header.protocol
            );
            self.log_drop(now, reason, &origin, &detail);
        }
        self.after_input(now)
    }

    /// Handles the timer of [`poll_timeout`](Self::poll_timeout) (early or late is
    /// harmless).
    pub fn handle_timeout(&mut self) -> Result<(), PersistError> {
        let now = self.clock.now();
        self.node.handle_timeout(now);
        self.after_input(now)
    }

    /// Gives up the role at once (see [`tenure::Node::release`]).
    pub fn release(&mut self) -> Result<(), ExecError> {
        let now = self.clock.now();
        self.node.release(now).map_err(ExecError::Refused)?;
        self.after_input(now).map_err(ExecError::Persist)
    }

    /// Gives up the role naming a successor (see [`tenure::Node::hand_over`]).
    pub fn hand_over(&mut self, to: NodeId) -> Result<(), ExecError> {
        let now = self.clock.now();
        self.node.hand_over(now, to).map_err(ExecError::Refused)?;
        self.after_input(now).map_err(ExecError::Persist)
    }

    /// Campaigns now if no master is live (see [`tenure::Node::campaign`]).
    pub fn campaign(&mut self) -> Result<(), ExecError> {
        let now = self.clock.now();
        self.node.campaign(now).map_err(ExecError::Refused)?;
        self.after_input(now).map_err(ExecError::Persist)
    }

    /// Publishes a last view (no master, not running). Call it when the node stops on
    /// purpose or after a [`PersistError`]; a crash, by definition, does not.
    pub fn stop(&mut self) {
        let now = self.clock.now();
        self.view.send_replace(View {
            running: false,
            ..View::initial(self.node.id(), now)
        });
    }

    /// After every input: publish the view, then execute the outputs in order.
    fn after_input(&mut self, now: Instant) -> Result<(), PersistError> {
        // SAFETY-OF-PROTOCOL: the view is published before any output of this input
        // leaves. A release (or an expiry) is therefore visible to this node's readers
        // before any other node can learn of it and take the role.
        self.publish(now);
        // Inputs change the counters; outputs do not.
        self.metrics.set_core(self.node.stats());
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Persist(record) => {
                    let started = std::time::Instant::now();
                    // SAFETY-OF-PROTOCOL: durable before any later output is executed.
                    self.store.store(&record).map_err(PersistError)?;
                    self.metrics.persisted(started.elapsed());
                }
                Output::Send { to, packet } => self.send(now, to, &packet),
                Output::Event(event) => self.deliver(now, &event),
            }
        }
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
                    // A renewal: the same term, running on without a gap.
                    Some(t) if t.end > now => Term { end, ..t },
                    _ => Term {
                        version: m.version,
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
            version: seen.map(|m| m.version),
            term,
            taken_at: now,
            running: true,
        };
        if view.master != previous.master {
            self.metrics.master_changed();
        }
        self.view.send_if_modified(|v| {
            let changed = (v.master, v.version, v.term, v.running)
                != (view.master, view.version, view.term, view.running);
            *v = view;
            changed
        });
    }

    fn send(&mut self, now: Instant, to: Destination, packet: &Packet) {
        let mut buf = [0u8; MAX_SEALED_SIZE];
        // Encodes with postcard and appends the tag of the configured `Auth` (none when
        // insecure: then the datagram is exactly `tenure::encode`'s output).
        let len = match self.node.seal(packet, &mut buf) {
            Ok(len) => len,
            Err(e) => {
                // Cannot happen: the buffer fits the largest packet.
                tracing::error!(error = %e, "cannot encode a packet");
                return;
            }
        };
        let bytes = &buf[..len];
        match to {
            Destination::Node(id) => self.send_one(now, id, bytes),
            Destination::All => {
                for i in 0..self.others.len() {
                    let id = self.others[i];
                    self.send_one(now, id, bytes);
                }
            }
        }
    }

    fn send_one(&mut self, now: Instant, to: NodeId, bytes: &[u8]) {
        let result = self.transport.send(to, bytes);
        self.metrics.sent(result);
        if let Err(e) = result {
            if let Some(suppressed) = self.logs.allow(SEND_KIND_BASE + e.index(), now) {
                tracing::warn!(
                    node = %self.node.id(),
                    %to,
                    reason = %e,
                    suppressed,
                    "send failed (counted; the protocol retries)"
                );
            }
        }
    }

    fn deliver(&mut self, now: Instant, event: &Event) {
        let me = self.node.id();
        match *event {
            Event::BecameMaster { version, term_end } => tracing::info!(
                node = %me,
                version,
                term_ms = term_end.saturating_duration_since(now).as_millis(),
                "became master"
            ),
            Event::TermEnded { version, reason } => {
                tracing::info!(node = %me, version, ?reason, "no longer master")
            }
            Event::MasterElected { node, version } => {
                tracing::info!(node = %me, master = %node, version, "new master")
            }
            Event::MasterLost {
                node,
                version,
                reason,
            } => tracing::info!(node = %me, master = %node, version, ?reason, "master lost"),
        }
        if let Some(handler) = self.on_event.as_mut() {
            handler(event);
        }
    }

    fn adapter_drop(
        &mut self,
        now: Instant,
        reason: AdapterDrop,
        origin: &dyn fmt::Display,
        len: usize,
    ) {
        self.metrics.dropped(reason);
        let name = match reason {
            AdapterDrop::UnknownSource => "unknown_source",
            AdapterDrop::SourceMismatch => "source_mismatch",
            AdapterDrop::Oversized => "oversized",
            AdapterDrop::BadTag => "bad_tag",
        };
        self.log_drop(now, name, origin, &format_args!("{len} bytes"));
    }

    fn log_drop(
        &mut self,
        now: Instant,
        reason: &str,
        origin: &dyn fmt::Display,
        detail: &dyn fmt::Display,
    ) {
        let me = self.node.id();
        tracing::trace!(node = %me, reason, %origin, %detail, "dropped a datagram");
        if matches!(reason, "stale") {
            // Late answers and repeats are part of normal operation, not bad traffic.
            return;
        }
        if let Some(suppressed) = self.logs.allow(drop_kind(reason), now) {
            tracing::warn!(
                node = %me,
                reason,
                %origin,
                %detail,
                suppressed,
                "dropped a datagram (counted; logged at most every 10 s per reason)"
            );
        }
    }
}

/// The reason whose counter grew.
fn changed_drop(before: &tenure::Drops, after: &tenure::Drops) -> &'static str {
    if after.malformed != before.malformed {
        "malformed"
    } else if after.bad_tag != before.bad_tag {
        "bad_tag"
    } else if after.newer_protocol != before.newer_protocol {
        "newer_protocol"
    } else if after.wrong_cluster != before.wrong_cluster {
        "wrong_cluster"
    } else if after.not_member != before.not_member {
        "not_member"
    } else if after.bad_field != before.bad_field {
        "bad_field"
    } else if after.stale != before.stale {
        "stale"
    } else if after.backlog != before.backlog {
        "backlog"
    } else {
        "other"
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
        assert_eq!(r.allow(4, t0), Some(0), "kinds are independent");
        assert_eq!(r.allow(3, t0 + LOG_INTERVAL), Some(2));
    }

    #[test]
    fn a_view_claims_only_inside_its_term() {
        let view = View {
            node: NodeId(1),
            master: Some(NodeId(1)),
            version: Some(4),
            term: Some(Term {
                version: 3,
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
            Some((NodeId(1), 4))
        );
        assert_eq!(view.master_at(Instant::from_millis(25)), None);
    }
}

//! The tokio binding: one driver task per node, and the [`Handle`] applications use.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenure::{
    CommandError, Event, MasterView, Member, MembersError, NodeId, Role, MAX_SEALED_SIZE,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::clock::{Clock, TokioClock};
use crate::config::{Identity, NodeConfig};
use crate::driver::{CommandFailure, Driver, DriverError, StartAs, StartupError, View};
use crate::gateway::{GatewayTransport, Inbound, Links};
use crate::metrics::{render_info, Counters, Gauges, Health, InfoLabels, Metrics};
use crate::store::{FileStore, RecordStore};
use crate::transport::{LiveBook, UdpTransport};

/// How long before the end of a term [`Handle::run_while_master`] drops its work at the
/// latest, to absorb timer and scheduling lateness.
pub const CANCEL_MARGIN: Duration = Duration::from_millis(10);

/// How often at most [`Handle::run_while_master`] looks at the clock while its work
/// runs: tokio's timers stop while the host is suspended ([`TokioClock`] does not), so a
/// resumed master's work is dropped this soon at the latest.
pub const SUSPEND_CHECK: Duration = Duration::from_millis(20);

/// The default grace of [`Handle::run_while_master`] is the lease divided by this: 200 ms
/// of a 1 s lease.
pub const DEFAULT_GRACE_DIVISOR: u32 = 5;

/// Events buffered per [`Handle::events`] receiver before the slowest one lags.
const EVENT_BUFFER: usize = 64;

type Reply<T> = oneshot::Sender<T>;

enum Command {
    Release {
        successor: Option<NodeId>,
        reply: Reply<Result<(), HandleError>>,
    },
    Campaign {
        reply: Reply<Result<(), HandleError>>,
    },
    Shutdown {
        reply: Reply<()>,
    },
    AddMember {
        member: Member,
        addr: SocketAddr,
        reply: Reply<Result<(), MembersFailure>>,
    },
    RemoveMember {
        id: NodeId,
        reply: Reply<Result<(), MembersFailure>>,
    },
}

/// Why [`Handle::add_member`] or [`Handle::remove_member`] failed.
#[derive(Debug)]
pub enum MembersFailure {
    /// The core refused the change; nothing changed. [`MembersError::NotMaster`]: ask
    /// the master ([`Handle::master`] names it).
    Refused(MembersError),
    /// Another member of the current list already has this address.
    DuplicateAddress {
        /// The address.
        addr: SocketAddr,
        /// The member at it.
        member: NodeId,
    },
    /// The change was proposed, and this node did not see it chosen within
    /// [`MEMBERS_WAIT_LEASES`] leases (the master lost its quorum, or its term): look at
    /// [`Handle::members`] before trying again.
    NotChosen,
    /// The new member's address could not be stored in the address book
    /// ([`crate::addresses`]); nothing was proposed.
    AddressBook(String),
    /// The node is not running.
    Stopped,
}

impl fmt::Display for MembersFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembersFailure::Refused(e) => write!(f, "refused: {e}"),
            MembersFailure::DuplicateAddress { addr, member } => {
                write!(f, "refused: node {member} is already at {addr}")
            }
            MembersFailure::NotChosen => write!(
                f,
                "the change was proposed but not seen chosen in time; list the members before trying again"
            ),
            MembersFailure::AddressBook(e) => {
                write!(f, "cannot store the new member's address: {e}")
            }
            MembersFailure::Stopped => write!(f, "the node is not running"),
        }
    }
}

impl std::error::Error for MembersFailure {}

/// How many leases [`Handle::add_member`] and [`Handle::remove_member`] wait for the
/// change to be chosen.
pub const MEMBERS_WAIT_LEASES: u32 = 4;

/// One member as [`Handle::members`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its campaign priority.
    pub priority: u8,
    /// Its UDP address in this node's address book (`None`: not known yet; see
    /// [`crate::addresses`]).
    pub addr: Option<SocketAddr>,
    /// How long ago this node last heard from it (`None`: not since this node started;
    /// for this node itself, always `None`).
    pub last_contact: Option<Duration>,
    /// Whether it is this node.
    pub this_node: bool,
}

/// The member list in force at a node and how it got it: what [`Handle::members`]
/// returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    /// The list in force (the register's, once a change was applied), in list order.
    pub members: Vec<MemberInfo>,
    /// The instance of the register's last membership change (`None`: the first list
    /// is in force).
    pub version: Option<u64>,
    /// Whether the list in force differs from this node's configuration file (it follows
    /// the register's; the file is out of date, which is expected after changes).
    pub configured_differs: bool,
    /// Whether this node stands by: it votes for no one and does not campaign (a
    /// joining node before it is in, a rejoining one before the recovery rule lets it,
    /// or a node that cannot follow the register's list).
    pub standby: bool,
    /// Whether this node was started to rejoin after a lost record and still stands by.
    pub rejoining: bool,
}

/// What the driver task publishes of the member list after every input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MembersView {
    list: Vec<Member>,
    version: Option<u64>,
    standby: bool,
    rejoining: bool,
}

/// Why a [`Handle`] call failed.
#[derive(Debug)]
pub enum HandleError {
    /// The core refused the command; nothing changed.
    Refused(CommandError),
    /// The node is not running (shut down, crashed or failed).
    Stopped,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::Refused(e) => write!(f, "refused: {e}"),
            HandleError::Stopped => write!(f, "the node is not running"),
        }
    }
}

impl std::error::Error for HandleError {}

/// Why a node's task ended.
#[derive(Debug)]
pub enum NodeError {
    /// The driver stopped the node: a record could not be made durable, or the core
    /// asked to send what was not stored (see [`DriverError`]).
    Driver(DriverError),
    /// The task was aborted ([`Handle::abort`]) or panicked.
    Aborted,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Driver(e) => e.fmt(f),
            NodeError::Aborted => write!(f, "the node's task was aborted"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Why [`Handle::run_while_master`] did not return the future's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotMaster {
    /// The term ended (or was about to) before the future finished; the future was
    /// dropped. Carries the term's fencing token.
    TermEnded(u64),
    /// The node stopped (before or during the term).
    Stopped,
}

impl fmt::Display for NotMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotMaster::TermEnded(token) => {
                write!(f, "the term with fencing token {token} ended")
            }
            NotMaster::Stopped => write!(f, "the node stopped"),
        }
    }
}

impl std::error::Error for NotMaster {}

/// The master as [`Handle::master_info`] reports it: who it is and where to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterInfo {
    /// The master.
    pub node: NodeId,
    /// Its term's fencing token.
    pub token: u64,
    /// Its `name` in the configuration, if any.
    pub name: Option<String>,
    /// Its `advertise` address in the configuration, if any: where its service is
    /// reached (what a follower forwards requests to).
    pub advertise: Option<String>,
    /// Its Tenure UDP address, as last resolved.
    pub addr: Option<SocketAddr>,
}

struct Shared {
    id: NodeId,
    identities: Vec<Identity>,
    peers: Arc<LiveBook>,
    lease: tenure::Duration,
    renewal: tenure::Renewal,
    local: SocketAddr,
    clock: TokioClock,
    metrics: Arc<Metrics>,
    /// The member list in force, published by the driver task.
    members: watch::Receiver<MembersView>,
    /// The list of the configuration file.
    configured: Vec<Member>,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    task: Mutex<Option<JoinHandle<Result<(), NodeError>>>>,
    /// The grace of [`Handle::run_while_master`], in microseconds.
    grace_us: AtomicU64,
    /// What a release, hand-over or shutdown asks of running leader work.
    step_down: watch::Sender<StepDown>,
    /// How many `run_while_master` works are running (started and not yet dropped).
    working: watch::Sender<usize>,
}

/// What a release, hand-over or shutdown asks of the leader work that is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepDown {
    /// Nothing: work may start and run.
    No,
    /// Stop (the cancellation token is cancelled); no new work starts.
    Cancel,
    /// The grace is over: drop the work now.
    Drop,
}

tokio::task_local! {
    /// Set while leader work of this node runs (inside `run_while_master`): a release or
    /// shutdown asked from within the work does not wait for the work to stop.
    static IN_WORK: NodeId;
}

/// Counts one running work; declared before the work, so the work is dropped first.
struct Working<'a>(&'a watch::Sender<usize>);

impl<'a> Working<'a> {
    fn new(count: &'a watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Working(count)
    }
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// What [`Handle::run_while_master`] hands its work: the term's fencing token, the
/// term's deadline, and the signal to stop.
///
/// The timeline of one term on this node's clock, with `end` the term's end (it moves on
/// with every renewal; see [`Handle::run_while_master`]):
///
/// 1. the work starts only while `now < end - grace`;
/// 2. it is told to stop ([`Leadership::cancelled`]) at `end - grace`, or at once on a
///    release, hand-over or shutdown asked through the [`Handle`];
/// 3. it is dropped `grace` after it was told, and never later than
///    `end -` [`CANCEL_MARGIN`], unless it returned first;
/// 4. the term ends at `end`: this node no longer claims the role;
/// 5. no other node can become master before `end` in real time (docs/algorithm.md §3
///    and §8.10: every voter that granted the term guards it for a full lease on its own
///    clock, and the term is shortened by the drift bound and a guard).
#[derive(Clone, Debug)]
pub struct Leadership {
    token: u64,
    since: tenure::Instant,
    grace: Duration,
    cancel: CancellationToken,
    view: watch::Receiver<View>,
    clock: TokioClock,
}

impl Leadership {
    /// The term's fencing token ([`crate::Term::token`], the `token` of `/status`, the
    /// `tenure_token` gauge): fixed for the whole term, strictly higher in every later
    /// term. Pass it with every write the work does, so a deposed master's is refused.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The end of the term as this node knows it now, on tokio's clock: it moves on with
    /// every renewal, and is now or past once the term is over. The work is dropped
    /// [`CANCEL_MARGIN`] before it at the latest.
    pub fn deadline(&self) -> Instant {
        self.clock.deadline(self.end())
    }

    /// What is left of the term now (zero once it is over).
    pub fn remaining(&self) -> Duration {
        crate::clock::from_core(self.end().saturating_duration_since(self.clock.now()))
    }

    /// The grace: how long the work may go on after it was told to stop.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Completes when the work must stop: `grace` before the term's end, or at once when
    /// the role is given up through the [`Handle`] (release, hand-over, shutdown) or the
    /// term ended early. Finish or roll back what is in flight, then return.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Whether the work was told to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The cancellation token itself, to hand to tasks the work spawns (they are not
    /// dropped with the work: they must stop on it).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn end(&self) -> tenure::Instant {
        let view = self.view.borrow();
        match view.term {
            Some(t) if view.running && t.since == self.since => t.end,
            _ => self.clock.now(),
        }
    }
}

/// Controls one running node; cheap to clone. Modelled on Kubernetes' leader election,
/// etcd's `concurrency.Election` and Curator's `LeaderLatch`.
///
/// Dropping every handle shuts the node down as [`Handle::shutdown`] does.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    view: watch::Receiver<View>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("node", &self.shared.id)
            .field("view", &*self.view.borrow())
            .finish()
    }
}

/// A random seed for the core's jitter: different per node and per start.
fn fresh_seed(id: NodeId) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::clock::host_monotonic_ns());
    h.write_u32(std::process::id());
    h.write_u16(id.0);
    h.finish()
}

/// Starts a node: looks up the members' host names, opens (and locks) its data
/// directory, loads its record, binds its UDP socket and spawns its driver task on the
/// current tokio runtime.
///
/// A data directory without a record is refused ([`crate::store::LoadError::NoRecord`])
/// unless [`NodeConfig::first_boot`] is set or the directory holds the marker file
/// [`crate::store::FIRST_BOOT_FILE`]: a node that ran before and lost its record would
/// forget its promises.
pub async fn start(mut config: NodeConfig) -> Result<Handle, StartupError> {
    for warning in config.resolve().await? {
        tracing::warn!(me = config.core.node_id.0, "{warning}");
    }
    let socket = tokio::net::UdpSocket::bind(config.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
    start_on(config, socket)
}

/// Like [`start`], on a socket bound by the caller (for example to an ephemeral port).
/// The socket's local address must be the node's member address. Members given by host
/// name and not resolved yet ([`NodeConfig::resolve`]) are looked up in the background.
pub fn start_on(
    mut config: NodeConfig,
    socket: tokio::net::UdpSocket,
) -> Result<Handle, StartupError> {
    let local = socket.local_addr().map_err(|source| StartupError::Bind {
        addr: config.listen,
        source,
    })?;
    config.core.seed = fresh_seed(config.core.node_id);
    let id = config.core.node_id;
    if !config.core.auth.is_secure() {
        tracing::warn!(
            me = id.0,
            "FRAMES ARE NOT AUTHENTICATED: anyone who can send a datagram to {} can pose as a \
             member and make any node master. Set a cluster `key` unless this network is closed.",
            config.listen
        );
    }
    for warning in &config.warnings {
        tracing::warn!(me = id.0, "{warning}");
    }
    let lease = config.core.lease;
    let renewal = config.core.renewal;
    let configured: Vec<Member> = config.core.members.to_vec();
    let start_as = config.start_as;
    // A joining or rejoining node has no record by definition.
    let store = TokioStore(
        FileStore::open(&config.data_dir)?
            .with_first_boot(config.first_boot || start_as != StartAs::FirstBoot),
    );
    // Addresses of members added while the cluster ran (the configuration wins).
    for (member, addr) in
        crate::addresses::load(&config.data_dir).map_err(StartupError::Addresses)?
    {
        match config.peers.address_of(member) {
            None if config.peers.host_of(member).is_none() => {
                config.peers.set_address(member, addr);
            }
            Some(given) if given != addr => tracing::warn!(
                me = id.0,
                member = member.0,
                configured = %given,
                stored = %addr,
                "the address book and the configuration give a member different addresses; \
                 using the configuration's"
            ),
            _ => {}
        }
    }
    // For the start-up summary: the data directory as resolved, every member.
    let data_dir = std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone());
    let members = config
        .core
        .members
        .iter()
        .map(|m| {
            let role = match m.role {
                tenure::Role::Candidate => "candidate",
                tenure::Role::Voter => "voter",
                tenure::Role::Learner => "learner",
            };
            match config.peers.address_of(m.id) {
                Some(addr) => format!("{}={addr}/{role}", m.id),
                None => format!("{}=?/{role}", m.id),
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let drift_ppm = config.core.drift_ppm;
    let secure = config.core.auth.is_secure();
    // The others recognise this node's datagrams by its member address.
    let own = config.peers.address_of(config.core.node_id);
    let own_port = own.map(|a| a.port()).or_else(|| {
        config
            .peers
            .host_of(id)
            .and_then(|h| crate::config::MemberAddr::parse(h).ok())
            .map(|a| a.port())
    });
    if own_port.is_some_and(|port| port != local.port()) {
        return Err(StartupError::Bind {
            addr: local,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the socket is bound to {local}, but this node's member address is {}",
                    config
                        .peers
                        .host_of(id)
                        .map(str::to_string)
                        .or(own.map(|a| a.to_string()))
                        .unwrap_or_default()
                ),
            ),
        });
    }
    let socket = Arc::new(socket);
    let peers = Arc::new(LiveBook::new(id, config.peers));
    for (member, _) in peers.snapshot().hosts() {
        if peers.address_of(*member).is_none() {
            peers.send_failed(*member); // looked up at once by the task below
        }
    }
    let links = if config.serial.is_empty() {
        None
    } else {
        Some(
            Links::bind(
                config.core.node_id,
                &config.serial,
                Arc::new(peers.snapshot()),
            )
            .map_err(|source| StartupError::Bind {
                addr: local,
                source,
            })?,
        )
    };
    let transport = GatewayTransport {
        udp: UdpTransport::new(Arc::clone(&socket), Arc::clone(&peers)),
        links: links.as_ref().map(Links::sender),
    };
    let clock = TokioClock::start();
    let data_dir_given = config.data_dir.clone();
    let mut driver =
        Driver::start_as(config.core, start_as, store, transport, clock).map_err(|e| match e {
            StartupError::RejoinWithRecord { .. } => StartupError::RejoinWithRecord {
                dir: data_dir.clone(),
            },
            e => e,
        })?;
    driver.set_member_names(
        config
            .identities
            .iter()
            .filter_map(|i| i.name.clone().map(|name| (i.id, name)))
            .collect(),
    );
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let sink = events.clone();
    driver.set_event_handler(Box::new(move |e| {
        let _ = sink.send(*e);
    }));
    let view = driver.subscribe();
    let metrics = driver.metrics();
    let (commands, rx) = mpsc::channel(16);
    // Looks host names up again while the book is in use (returns at once without any).
    tokio::spawn(LiveBook::keep_fresh(Arc::downgrade(&peers)));
    let (members_tx, members_rx) = watch::channel(members_view(driver.node()));
    let task = tokio::spawn(drive(
        driver,
        socket,
        Arc::clone(&peers),
        links,
        rx,
        Book {
            dir: data_dir_given,
            members: members_tx,
        },
    ));
    let identity = config.identities.iter().find(|i| i.id == id);
    tracing::info!(
        me = id.0,
        name = %identity.and_then(|i| i.name.as_deref()).unwrap_or(""),
        advertise = %identity.and_then(|i| i.advertise.as_deref()).unwrap_or(""),
        %local,
        data_dir = %data_dir.display(),
        members = %members,
        lease = %crate::clock::format_duration(crate::clock::from_core(lease)),
        renewal = %renewal,
        drift_ppm,
        auth = %if secure { "key" } else { "insecure" },
        "node started"
    );
    Ok(Handle {
        shared: Arc::new(Shared {
            id,
            identities: config.identities,
            peers,
            lease,
            renewal,
            local,
            clock,
            metrics,
            members: members_rx,
            configured,
            commands,
            events,
            task: Mutex::new(Some(task)),
            grace_us: AtomicU64::new(lease.as_micros() / u64::from(DEFAULT_GRACE_DIVISOR)),
            step_down: watch::channel(StepDown::No).0,
            working: watch::channel(0).0,
        }),
        view,
    })
}

type TokioDriver = Driver<TokioStore, GatewayTransport, TokioClock>;

/// The file store, told to tokio: its `fsync`s block the driver task (nothing of this
/// node may proceed before the record is durable) but not the runtime's other tasks.
#[derive(Debug)]
pub struct TokioStore(pub FileStore);

impl RecordStore for TokioStore {
    fn load(&mut self) -> Result<Option<tenure::Record>, crate::store::LoadError> {
        self.0.load()
    }

    fn store(&mut self, record: &tenure::Record) -> std::io::Result<()> {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            // Hands this worker's other tasks to another thread for the duration.
            tokio::task::block_in_place(|| self.0.store(record))
        } else {
            self.0.store(record)
        }
    }
}

/// A command waiting for this node to no longer hold the role in the replicated state.
struct Waiter {
    deadline: tenure::Instant,
    reply: Reply<Result<(), HandleError>>,
}

/// A membership command waiting for its change to be applied here.
struct MemberWaiter {
    deadline: tenure::Instant,
    id: NodeId,
    /// Waiting for `id` to be in the list (an add) or out of it (a removal).
    present: bool,
    reply: Reply<Result<(), MembersFailure>>,
}

/// The member list as the driver task publishes it.
fn members_view(node: &crate::driver::CoreNode) -> MembersView {
    MembersView {
        list: node.members().to_vec(),
        version: node.election_state().members_version,
        standby: node.is_standby(),
        rejoining: node.is_rejoining(),
    }
}

/// Where the driver task keeps the address book, and where it publishes the list.
struct Book {
    dir: std::path::PathBuf,
    members: watch::Sender<MembersView>,
}

impl Book {
    /// Stores the addresses of the current members (see [`crate::addresses`]).
    fn save(&self, peers: &LiveBook, list: &[Member]) -> std::io::Result<()> {
        let book = peers.snapshot();
        let entries: Vec<(NodeId, SocketAddr)> = list
            .iter()
            .filter_map(|m| book.address_of(m.id).map(|a| (m.id, a)))
            .collect();
        let path = self.dir.join(crate::addresses::ADDRESSES_FILE);
        let unchanged = std::fs::read_to_string(&path)
            .is_ok_and(|text| text == crate::addresses::render(&entries));
        if unchanged {
            return Ok(());
        }
        crate::addresses::store(&self.dir, &entries)
    }
}

/// Starts an add: checks the address, stores it, proposes. `Ok(None)`: proposed, wait.
fn begin_add(
    driver: &mut TokioDriver,
    peers: &LiveBook,
    book: &Book,
    member: Member,
    addr: SocketAddr,
) -> Result<Result<(), MembersFailure>, DriverError> {
    let me = driver.id();
    let list = driver.node().members().to_vec();
    let known = list.iter().any(|m| m.id == member.id);
    if !known && driver.node().is_master(driver.clock().now()) {
        let holder = list
            .iter()
            .map(|m| m.id)
            .find(|id| peers.address_of(*id).is_some_and(|a| same_addr(a, addr)));
        if let Some(holder) = holder {
            return Ok(Err(MembersFailure::DuplicateAddress {
                addr,
                member: holder,
            }));
        }
    }
    // The master can reach the new member the moment the change is chosen: its address
    // is in the book (and on disk) before the change is proposed. Not for a known id:
    // the core refuses it, and its address stays as it is.
    let before = peers.snapshot();
    if !known {
        peers.update(|b| {
            // Removed members that held the address no longer do.
            let stale: Vec<NodeId> = b
                .entries()
                .iter()
                .filter(|(id, a)| same_addr(*a, addr) && !list.iter().any(|m| m.id == *id))
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                b.remove(id);
            }
            b.set_address(member.id, addr);
        });
        let mut with_new = list.clone();
        with_new.push(member);
        if let Err(e) = book.save(peers, &with_new) {
            peers.update(|b| *b = before);
            return Ok(Err(MembersFailure::AddressBook(e.to_string())));
        }
    }
    match driver.add_member(member)? {
        Ok(()) => {
            tracing::info!(
                me = me.0,
                member = member.id.0,
                %addr,
                role = %role_label(member.role),
                "member add proposed"
            );
            Ok(Ok(()))
        }
        Err(e) => {
            if !known {
                peers.update(|b| *b = before);
                let _ = book.save(peers, &list);
            }
            Ok(Err(MembersFailure::Refused(e)))
        }
    }
}

/// Whether two addresses are the same (an IPv4-mapped IPv6 address is its IPv4 one).
fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    canonical(a) == canonical(b)
}

/// The name of a role in logs, `/members` and the configuration file.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Candidate => "candidate",
        Role::Voter => "voter",
        Role::Learner => "learner",
    }
}

/// The driver task: one `select!` over commands, the socket and the core's timer.
async fn drive(
    mut driver: TokioDriver,
    socket: Arc<tokio::net::UdpSocket>,
    peers: Arc<LiveBook>,
    links: Option<Links>,
    mut commands: mpsc::Receiver<Command>,
    book: Book,
) -> Result<(), NodeError> {
    let me = driver.id();
    // Serial links (a gateway's): their relay tasks live as long as this task.
    let mut link_tasks = tokio::task::JoinSet::new();
    let (local_tx, mut inbound) = mpsc::channel::<Inbound>(64);
    let has_links = links.is_some();
    if let Some(links) = links {
        links.spawn(&mut link_tasks, local_tx);
    }
    let clock = *driver.clock();
    let lease = driver.node().config().lease;
    // One byte more than the largest packet, so an oversized datagram shows as such
    // instead of arriving silently truncated.
    let mut buf = [0u8; MAX_SEALED_SIZE + 1];
    let mut waiters: Vec<Waiter> = Vec::new();
    let mut member_waiters: Vec<MemberWaiter> = Vec::new();
    // Announces this node at once (see `crate::addresses`), in a cluster with a key.
    let announce = driver.node().config().auth.is_secure();
    let mut next_hello = tokio::time::Instant::now();
    let mut shutdown: Option<(tenure::Instant, Option<Reply<()>>)> = None;
    let result = loop {
        // The member list: published when it changed (the address book follows it).
        let list = driver.node().members();
        let changed = {
            let published = book.members.borrow();
            published.list != list
                || published.version != driver.node().election_state().members_version
                || published.standby != driver.node().is_standby()
                || published.rejoining != driver.node().is_rejoining()
        };
        if changed {
            let view = members_view(driver.node());
            let old = book.members.borrow().clone();
            if old.list != view.list {
                if let Err(e) = book.save(&peers, list) {
                    tracing::warn!(me = me.0, error = %e, "cannot store the address book");
                }
                next_hello = tokio::time::Instant::now(); // new members hear of this node
            }
            if old.rejoining && !view.rejoining {
                tracing::info!(
                    me = me.0,
                    "rejoin complete: the recovery rule lets this node vote again"
                );
            } else if old.standby && !view.standby {
                tracing::info!(
                    me = me.0,
                    "this node has the register's member list: it votes now"
                );
            } else if !old.standby && view.standby {
                tracing::warn!(
                    me = me.0,
                    "this node stands by: it votes for no one for now"
                );
            }
            book.members.send_replace(view);
        }
        let now = clock.now();
        let mut i = 0;
        while i < member_waiters.len() {
            let w = &member_waiters[i];
            let present = driver.node().members().iter().any(|m| m.id == w.id);
            if present == w.present || now >= w.deadline {
                let w = member_waiters.swap_remove(i);
                let _ = w.reply.send(if present == w.present {
                    Ok(())
                } else {
                    Err(MembersFailure::NotChosen)
                });
            } else {
                i += 1;
            }
        }
        // Released: the replicated state no longer names this node (or a lease passed).
        let released = driver.node().election_state().master != Some(me);
        let mut i = 0;
        while i < waiters.len() {
            if released || now >= waiters[i].deadline {
                let _ = waiters.swap_remove(i).reply.send(Ok(()));
            } else {
                i += 1;
            }
        }
        if let Some((deadline, _)) = &shutdown {
            if released || now >= *deadline {
                break Ok(());
            }
        }
        let wake = [
            driver.poll_timeout(),
            waiters.iter().map(|w| w.deadline).min(),
            member_waiters.iter().map(|w| w.deadline).min(),
            shutdown.as_ref().map(|(d, _)| *d),
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep = tokio::time::sleep_until(wake.map_or_else(
            || clock.deadline(tenure::Instant::MAX),
            |t| clock.deadline(t),
        ));
        let step = tokio::select! {
            command = commands.recv(), if shutdown.is_none() => match command {
                Some(Command::Release { successor, reply }) => {
                    let r = match successor {
                        None => driver.release(),
                        Some(to) => driver.hand_over(to),
                    };
                    match r {
                        Ok(()) => {
                            waiters.push(Waiter { deadline: clock.now() + lease, reply });
                            Ok(())
                        }
                        Err(CommandFailure::Refused(e)) => {
                            let _ = reply.send(Err(HandleError::Refused(e)));
                            Ok(())
                        }
                        Err(CommandFailure::Fatal(e)) => Err(e),
                    }
                }
                Some(Command::Campaign { reply }) => match driver.campaign() {
                    Ok(()) => {
                        let _ = reply.send(Ok(()));
                        Ok(())
                    }
                    Err(CommandFailure::Refused(e)) => {
                        let _ = reply.send(Err(HandleError::Refused(e)));
                        Ok(())
                    }
                    Err(CommandFailure::Fatal(e)) => Err(e),
                },
                Some(Command::AddMember { member, addr, reply }) => {
                    match begin_add(&mut driver, &peers, &book, member, addr) {
                        Ok(Ok(())) => {
                            member_waiters.push(MemberWaiter {
                                deadline: clock.now() + lease.saturating_mul(u64::from(MEMBERS_WAIT_LEASES)),
                                id: member.id,
                                present: true,
                                reply,
                            });
                            Ok(())
                        }
                        Ok(Err(e)) => {
                            let _ = reply.send(Err(e));
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Some(Command::RemoveMember { id, reply }) => match driver.remove_member(id) {
                    Ok(Ok(())) => {
                        tracing::info!(me = me.0, member = id.0, "member removal proposed");
                        member_waiters.push(MemberWaiter {
                            deadline: clock.now() + lease.saturating_mul(u64::from(MEMBERS_WAIT_LEASES)),
                            id,
                            present: false,
                            reply,
                        });
                        Ok(())
                    }
                    Ok(Err(e)) => {
                        let _ = reply.send(Err(MembersFailure::Refused(e)));
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Some(Command::Shutdown { reply }) => begin_shutdown(&mut driver, &mut shutdown, Some(reply), lease),
                None => begin_shutdown(&mut driver, &mut shutdown, None, lease),
            },
            () = tokio::time::sleep_until(next_hello), if announce => {
                send_hellos(&driver, &socket, &peers);
                next_hello = tokio::time::Instant::now() + crate::addresses::HELLO_EVERY;
                Ok(())
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) if crate::addresses::is_hello(&buf[..len]) => {
                    on_hello(&driver, &peers, &book, from, &buf[..len]);
                    Ok(())
                }
                Ok((len, from)) => {
                    let mut member = peers.member_at(from);
                    if member.is_none() {
                        member = learn_address(&driver, &peers, &book, from, &buf[..len]);
                    }
                    if member.is_none() {
                        peers.unknown_source(); // a member given by name may have moved
                    }
                    driver.handle_datagram(from, member, &buf[..len])
                }
                Err(e) => {
                    driver.metrics().recv_error();
                    tracing::debug!(me = me.0, error = %e, "receive error (counted)");
                    Ok(())
                }
            },
            Some((from, frame)) = inbound.recv(), if has_links => {
                driver.handle_datagram(format_args!("serial link of node {from}"), Some(from), &frame)
            }
            () = sleep, if wake.is_some() => driver.handle_timeout(),
        };
        if let Err(e) = step {
            tracing::error!(me = me.0, error = %e, "stopping");
            break Err(NodeError::Driver(e));
        }
    };
    link_tasks.abort_all();
    driver.stop();
    for w in waiters {
        let _ = w.reply.send(Err(HandleError::Stopped));
    }
    for w in member_waiters {
        let _ = w.reply.send(Err(MembersFailure::Stopped));
    }
    if let Some((_, Some(reply))) = shutdown {
        let _ = reply.send(());
    }
    tracing::info!(me = me.0, "node stopped");
    result
}

/// A datagram from an address that is no member's: if it is sealed with the cluster key
/// by a member of the current list this node has no address for, that member is at
/// `from` (see [`crate::addresses`]). A known address is never replaced.
fn learn_address(
    driver: &TokioDriver,
    peers: &LiveBook,
    book: &Book,
    from: SocketAddr,
    bytes: &[u8],
) -> Option<NodeId> {
    // Nothing to learn (the usual case): the datagram is dropped unread.
    let book_now = peers.snapshot();
    let missing = driver.node().members().iter().any(|m| {
        m.id != driver.id()
            && book_now.address_of(m.id).is_none()
            && book_now.host_of(m.id).is_none()
    });
    if !missing {
        return None;
    }
    let id = driver.authenticated_sender(bytes)?;
    learn(driver, peers, book, id, from).then_some(id)
}

/// Records that member `id` (authenticated) is at `from`, unless the book has an
/// address (or a host name) for it already. Returns whether it was learned.
fn learn(
    driver: &TokioDriver,
    peers: &LiveBook,
    book: &Book,
    id: NodeId,
    from: SocketAddr,
) -> bool {
    let known = peers.update(|b| {
        let known = b.address_of(id).is_some() || b.host_of(id).is_some();
        if !known {
            b.set_address(id, from);
        }
        known
    });
    if known {
        return false; // from another address than the member's: dropped, counted
    }
    driver.metrics().address_learned();
    tracing::info!(
        me = driver.id().0,
        member = id.0,
        addr = %from,
        "learned a member's address from its authenticated datagram"
    );
    if let Err(e) = book.save(peers, driver.node().members()) {
        tracing::warn!(me = driver.id().0, error = %e, "cannot store the address book");
    }
    true
}

/// A hello (see [`crate::addresses`]): learns the sender's address if it is a member of
/// the current list without one. Never given to the core.
fn on_hello(driver: &TokioDriver, peers: &LiveBook, book: &Book, from: SocketAddr, bytes: &[u8]) {
    let config = driver.node().config();
    let Some(id) = crate::addresses::open_hello(bytes, &config.auth, config.cluster_id) else {
        driver.metrics().unknown_source();
        tracing::debug!(me = driver.id().0, %from, "dropped a hello that does not verify (counted)");
        return;
    };
    let member = driver.node().members().iter().any(|m| m.id == id) && id != driver.id();
    if !member {
        return;
    }
    if peers.member_at(from) == Some(id) || learn(driver, peers, book, id, from) {
        driver.metrics().heard(id, driver.clock().now());
    } else {
        driver.metrics().unknown_source();
        tracing::debug!(
            me = driver.id().0,
            member = id.0,
            %from,
            "dropped a hello from another address than the member's (counted)"
        );
    }
}

/// Sends this node's hello to every other member it has an address for.
fn send_hellos(driver: &TokioDriver, socket: &tokio::net::UdpSocket, peers: &LiveBook) {
    let config = driver.node().config();
    let nonce = crate::clock::host_monotonic_ns() ^ (u64::from(std::process::id()) << 32);
    let Some(hello) = crate::addresses::hello(&config.auth, config.cluster_id, driver.id(), nonce)
    else {
        return;
    };
    for m in driver
        .node()
        .members()
        .iter()
        .filter(|m| m.id != driver.id())
    {
        if let Some(addr) = peers.address_of(m.id) {
            let _ = socket.try_send_to(&hello, addr);
        }
    }
}

fn begin_shutdown(
    driver: &mut TokioDriver,
    shutdown: &mut Option<(tenure::Instant, Option<Reply<()>>)>,
    reply: Option<Reply<()>>,
    lease: tenure::Duration,
) -> Result<(), DriverError> {
    let now = driver.clock().now();
    // Hold on until the release is chosen (so the others need not wait out the lease),
    // or a lease at most.
    let deadline = match driver.release() {
        Ok(()) => now + lease,
        Err(CommandFailure::Refused(_)) => now,
        Err(CommandFailure::Fatal(e)) => return Err(e),
    };
    *shutdown = Some((deadline, reply));
    Ok(())
}

impl Handle {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// The UDP address the node is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// The configured lease.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.shared.lease.as_micros())
    }

    /// The configured renewal mode.
    pub fn renewal(&self) -> tenure::Renewal {
        self.shared.renewal
    }

    /// The node's clock (to convert the instants of a [`View`]).
    pub fn clock(&self) -> TokioClock {
        self.shared.clock
    }

    /// The master in this node's view now, with its term's fencing token and, when
    /// it is this node, the end of its term (on [`Handle::clock`]). Once the node's task
    /// is gone (crashed), only a term of its own that has not ended yet is reported:
    /// nothing updates its view of the others any more.
    pub fn master(&self) -> Option<MasterView> {
        let now = self.shared.clock.now();
        let crashed = self.view.has_changed().is_err();
        self.view
            .borrow()
            .master_at(now)
            .filter(|m| !crashed || m.node == self.shared.id)
    }

    /// Like [`Handle::master`], with the master's `name` and `advertise` address from
    /// the configuration: who the master is and where to reach it (for a follower that
    /// forwards requests).
    pub fn master_info(&self) -> Option<MasterInfo> {
        self.master().map(|m| {
            let identity = self.identity(m.node);
            MasterInfo {
                node: m.node,
                token: m.token,
                name: identity.and_then(|i| i.name.clone()),
                advertise: identity.and_then(|i| i.advertise.clone()),
                addr: self.shared.peers.address_of(m.node),
            }
        })
    }

    /// Member `id`'s name and advertised address from the configuration, if it has
    /// either (to label the nodes named by [`Handle::events`]).
    pub fn identity(&self, id: NodeId) -> Option<&Identity> {
        self.shared.identities.iter().find(|i| i.id == id)
    }

    /// Whether this node is master now. Never true at or after the end of its term;
    /// act on it only with [`Handle::master`]'s token as a fencing token, because the
    /// process may pause right after asking.
    pub fn is_master(&self) -> bool {
        self.is_master_at(Instant::now())
    }

    /// Whether this node claimed the role at `at`, on the host's monotonic clock: the
    /// way to compare several nodes at one instant.
    pub fn is_master_at(&self, at: Instant) -> bool {
        self.view
            .borrow()
            .is_master_at(self.shared.clock.instant(at))
    }

    /// The current view (instants on [`Handle::clock`]).
    pub fn view(&self) -> View {
        *self.view.borrow()
    }

    /// A receiver notified whenever the view changes (master, token, version, term).
    pub fn watch(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    /// Every event from now on, in order (a slow receiver loses the oldest).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Counters of this node.
    pub fn counters(&self) -> Counters {
        self.shared.metrics.counters()
    }

    /// Every metric, in the Prometheus text format.
    pub fn metrics(&self) -> String {
        let now = self.shared.clock.now();
        let view = self.view();
        let mut text = self.shared.metrics.render(&Gauges {
            is_master: view.is_master_at(now),
            master: view.master_at(now).map(|m| m.node.0),
            token: view.master_at(now).map(|m| m.token),
            version: view.version,
        });
        let labels = |id: NodeId| {
            let identity = self.identity(id);
            InfoLabels {
                node: id.0,
                name: identity.and_then(|i| i.name.as_deref()),
                advertise: identity.and_then(|i| i.advertise.as_deref()),
            }
        };
        let master = view.master_at(now).map(|m| labels(m.node));
        text.push_str(&render_info(&labels(self.shared.id), master.as_ref()));
        text
    }

    /// Whether the node runs and has a quorum in view (see [`Health`]), now.
    pub fn health(&self) -> Health {
        let now = self.shared.clock.now();
        let crashed = self.view.has_changed().is_err();
        let running = self.view.borrow().running && !crashed;
        let master = self.master().map(|m| m.node.0);
        let metrics = &self.shared.metrics;
        let window = self.shared.lease;
        let members = self.shared.members.borrow().clone();
        let me = self.shared.id;
        let voters: Vec<&Member> = members.list.iter().filter(|m| m.role.votes()).collect();
        let votes = !members.standby && voters.iter().any(|m| m.id == me);
        let voters_heard = (voters.iter())
            .filter(|m| {
                m.id != me
                    && metrics
                        .last_heard(m.id)
                        .is_some_and(|t| now.saturating_duration_since(t) <= window)
            })
            .count()
            + usize::from(votes);
        let quorum = voters.len() / 2 + 1;
        let quorum_in_view = running && (master.is_some() || voters_heard >= quorum);
        Health {
            healthy: running && quorum_in_view,
            running,
            quorum_in_view,
            master,
            voters_heard,
            voters: voters.len(),
            quorum,
        }
    }

    /// The member list in force at this node, with each member's address and last
    /// contact, and how the list stands (see [`Members`]).
    ///
    /// ```no_run
    /// # fn example(node: tenure_tokio::Handle) {
    /// let members = node.members();
    /// for m in &members.members {
    ///     println!("node {} ({:?}) at {:?}, heard {:?} ago", m.id, m.role, m.addr, m.last_contact);
    /// }
    /// if members.standby {
    ///     println!("this node stands by (votes for no one)");
    /// }
    /// # }
    /// ```
    pub fn members(&self) -> Members {
        let view = self.shared.members.borrow().clone();
        let now = self.shared.clock.now();
        let me = self.shared.id;
        let book = self.shared.peers.snapshot();
        let members = view
            .list
            .iter()
            .map(|m| MemberInfo {
                id: m.id,
                role: m.role,
                priority: m.priority,
                addr: book.address_of(m.id),
                last_contact: (m.id != me)
                    .then(|| self.shared.metrics.last_heard(m.id))
                    .flatten()
                    .map(|t| crate::clock::from_core(now.saturating_duration_since(t))),
                this_node: m.id == me,
            })
            .collect();
        Members {
            members,
            version: view.version,
            configured_differs: view.list != self.shared.configured,
            standby: view.standby,
            rejoining: view.rejoining,
        }
    }

    /// Adds member `id` at UDP address `addr` with `role`, through the register: only
    /// the master may (on another node this fails with
    /// [`MembersError::NotMaster`]; [`Handle::master`] names the master). The address
    /// is checked against the other members' and stored in this node's address book
    /// before the change is proposed; the call returns once the change is applied here
    /// (the new list is in force), or fails after [`MEMBERS_WAIT_LEASES`] leases.
    ///
    /// Then start the new node with a configuration listing every member, itself
    /// included, and `tenure node --join` ([`crate::StartAs::Join`]): it stands by until
    /// it has caught up, then votes. The other members learn its address from its first
    /// authenticated datagram ([`crate::addresses`]).
    ///
    /// One member at a time: a second change is refused
    /// ([`MembersError::ChangeInProgress`]) until the master renewed its term under the
    /// new list (about one renewal interval).
    ///
    /// ```no_run
    /// # async fn example(node: tenure_tokio::Handle) -> Result<(), Box<dyn std::error::Error>> {
    /// use tenure::{NodeId, Role};
    /// node.add_member(NodeId(4), "127.0.0.1:7003".parse()?, Role::Candidate).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_member(
        &self,
        id: NodeId,
        addr: SocketAddr,
        role: Role,
    ) -> Result<(), MembersFailure> {
        let member = Member {
            id,
            role,
            priority: 0,
        };
        self.members_command(|reply| Command::AddMember {
            member,
            addr,
            reply,
        })
        .await
    }

    /// Removes member `id` through the register (master only, like
    /// [`Handle::add_member`]); returns once the change is applied here. Removing the
    /// master itself ends its term at once (leader work of [`Handle::run_while_master`]
    /// is told to stop and dropped first, as for a release), and the others elect a new
    /// master as soon as the change is chosen. Refused for the last candidate.
    /// Stop the removed node's process afterwards: it hears nothing more.
    ///
    /// ```no_run
    /// # async fn example(node: tenure_tokio::Handle) -> Result<(), tenure_tokio::MembersFailure> {
    /// node.remove_member(tenure::NodeId(2)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove_member(&self, id: NodeId) -> Result<(), MembersFailure> {
        let itself = id == self.shared.id && self.is_master();
        if itself {
            self.step_down().await;
        }
        let result = self
            .members_command(|reply| Command::RemoveMember { id, reply })
            .await;
        if itself {
            self.shared.step_down.send_replace(StepDown::No);
        }
        result
    }

    async fn members_command(
        &self,
        make: impl FnOnce(Reply<Result<(), MembersFailure>>) -> Command,
    ) -> Result<(), MembersFailure> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| MembersFailure::Stopped)?;
        rx.await.map_err(|_| MembersFailure::Stopped)?
    }

    async fn command<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, HandleError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| HandleError::Stopped)?;
        rx.await.map_err(|_| HandleError::Stopped)
    }

    /// Gives up the role. Leader work of [`Handle::run_while_master`] is told to stop
    /// first and dropped within its grace (at once when there is none); then this node
    /// stops being master before the release takes effect (its view says so at once).
    /// The call returns when the cluster chose the release, or after one lease at most.
    /// Refused unless this node is master.
    pub async fn release(&self) -> Result<(), HandleError> {
        self.step_down().await;
        let result = self
            .command(|reply| Command::Release {
                successor: None,
                reply,
            })
            .await;
        self.shared.step_down.send_replace(StepDown::No);
        result?
    }

    /// Like [`Handle::release`], naming `to` as the successor: the others let it
    /// campaign first.
    pub async fn hand_over(&self, to: NodeId) -> Result<(), HandleError> {
        self.step_down().await;
        let result = self
            .command(|reply| Command::Release {
                successor: Some(to),
                reply,
            })
            .await;
        self.shared.step_down.send_replace(StepDown::No);
        result?
    }

    /// Tells running leader work to stop, waits for it to return (one grace at most),
    /// then has whatever is left dropped and waits for that (one more grace at most, for
    /// a task that is not being polled). No new work starts until the caller resets
    /// `step_down`.
    async fn step_down(&self) {
        if IN_WORK
            .try_with(|id| *id == self.shared.id)
            .unwrap_or(false)
        {
            // Asked by the work itself: it is stopping already, and waiting for it to
            // return would wait for this very call. Its term ends with the release, and
            // it is dropped then.
            self.shared.step_down.send_replace(StepDown::Cancel);
            return;
        }
        let grace = self.grace();
        let mut working = self.shared.working.subscribe();
        self.shared.step_down.send_replace(StepDown::Cancel);
        let done = |working: &mut watch::Receiver<usize>| {
            let working = working.clone();
            async move {
                let mut working = working;
                let _ = working.wait_for(|n| *n == 0).await;
            }
        };
        if tokio::time::timeout(grace, done(&mut working))
            .await
            .is_ok()
        {
            return;
        }
        self.shared.step_down.send_replace(StepDown::Drop);
        if tokio::time::timeout(grace, done(&mut working))
            .await
            .is_err()
        {
            tracing::warn!(
                me = self.shared.id.0,
                "leader work was told to stop and then to drop, and is still running: its \
                 task is not being polled; giving up the role anyway"
            );
        }
    }

    /// Campaigns at once instead of after the usual random delay, if no master is live.
    pub async fn campaign(&self) -> Result<(), HandleError> {
        self.command(|reply| Command::Campaign { reply }).await?
    }

    /// Stops the node: leader work of [`Handle::run_while_master`] is told to stop and
    /// dropped within its grace, then the node releases the role if it holds it (waiting
    /// until the cluster chose the release, one lease at most) and ends its task. Returns
    /// how the task ended.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.step_down().await;
        // No work starts again on this node.
        self.shared.step_down.send_replace(StepDown::Drop);
        let _ = self.command(|reply| Command::Shutdown { reply }).await;
        self.join().await
    }

    /// Ends the node's task at once, like a crash: no release, nothing more is sent or
    /// stored. Its last view stays as it was, so a term it held still ends at
    /// `term.end`. The data directory is unlocked when this returns.
    pub async fn abort(&self) {
        let task = self.take_task();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Waits until the node's task ends.
    pub async fn join(&self) -> Result<(), NodeError> {
        match self.take_task() {
            Some(task) => task.await.unwrap_or(Err(NodeError::Aborted)),
            None => Ok(()),
        }
    }

    fn take_task(&self) -> Option<JoinHandle<Result<(), NodeError>>> {
        self.shared
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The grace of [`Handle::run_while_master`]: how long leader work may go on after it
    /// was told to stop. By default a fifth of the lease ([`DEFAULT_GRACE_DIVISOR`]).
    pub fn grace(&self) -> Duration {
        Duration::from_micros(self.shared.grace_us.load(Ordering::Relaxed))
    }

    /// Sets the grace for work started from now on, at most half the lease (a longer one
    /// is cut to that). A longer grace gives the work more time to wind down, and starts
    /// it only in terms with more than the grace left; [`Handle::release`],
    /// [`Handle::hand_over`] and [`Handle::shutdown`] wait that much longer for it.
    pub fn set_grace(&self, grace: Duration) {
        let max = self.shared.lease.as_micros() / 2;
        let micros = u64::try_from(grace.as_micros())
            .unwrap_or(u64::MAX)
            .min(max);
        self.shared.grace_us.store(micros, Ordering::Relaxed);
    }

    /// Waits until this node is master, then runs `work(leadership)` while it stays
    /// master, and returns the work's output if it finishes first. [`Leadership`] carries
    /// the term's fencing token (pass it with every write), the term's deadline, and a
    /// cancellation signal; returns [`NotMaster::Stopped`] at once, every time, once the
    /// node has stopped, so a loop around this call must end on it.
    ///
    /// # The timeline of a term
    ///
    /// On this node's clock, with `end` the term's end (every renewal moves it on) and
    /// `grace` [`Handle::grace`] (a fifth of the lease unless set):
    ///
    /// - the work starts only while `now < end - grace` (and never while a release or a
    ///   shutdown is under way);
    /// - **told to stop** (the token of [`Leadership::cancelled`] is cancelled): at
    ///   `end - grace` when renewals did not come in time; at once when this node is asked
    ///   to give up the role through the handle ([`Handle::release`],
    ///   [`Handle::hand_over`], [`Handle::shutdown`]: they wait for the work first);
    /// - **dropped** (unless it returned first): `grace` after it was told, and never
    ///   later than `end -` [`CANCEL_MARGIN`]; a release through the handle waits for the
    ///   drop before the role is given up;
    /// - **the term ends** at `end`: this node no longer claims the role (earlier on a
    ///   release, which ends the term before anything is sent);
    /// - **the next master can start** only after `end` in real time: the voters that
    ///   granted this term guard it for a full lease on their own clocks, and `end` is
    ///   shortened by the drift bound and a guard (docs/algorithm.md §3 "Clock drift",
    ///   §8.10). After a release, only once the release is chosen, which is after the
    ///   work was dropped.
    ///
    /// A term can also end without warning: the node's task crashed or failed, a clock
    /// regression, or the core applied another node's op (docs/algorithm.md §8.3). The
    /// work is then told and dropped at once, when its task next runs after the new view
    /// was published (the view is published before any message of that input leaves; the
    /// drop may come after they left). The cancellation token is cancelled before every
    /// drop. Timers can fire late on a loaded host: a
    /// drop later than `end` is possible in principle, and the fencing token is what
    /// makes such a late write harmless.
    ///
    /// The clock is read at least every [`SUSPEND_CHECK`], so work resumed after the host
    /// was suspended past the term's end is dropped that soon.
    ///
    /// ```no_run
    /// use tenure_tokio::{Leadership, NotMaster};
    ///
    /// async fn lead(term: Leadership) {
    ///     // e.g. UPDATE jobs SET owner = me, token = term.token() WHERE token < term.token()
    ///     println!("leading with fencing token {}", term.token());
    ///     term.cancelled().await; // then finish what is in flight, within term.grace()
    /// }
    ///
    /// # async fn example(handle: tenure_tokio::Handle) {
    /// loop {
    ///     match handle.run_while_master(lead).await {
    ///         Ok(()) => println!("the work stopped when told"),
    ///         Err(NotMaster::TermEnded(token)) => println!("term {token} ended"),
    ///         Err(NotMaster::Stopped) => break, // it would return at once, forever
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn run_while_master<F, Fut>(&self, work: F) -> Result<Fut::Output, NotMaster>
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future,
    {
        let clock = self.shared.clock;
        let me = self.shared.id;
        let grace_std = self.grace();
        let grace = crate::clock::to_core(grace_std);
        let margin = crate::clock::to_core(CANCEL_MARGIN);
        let before = |t: tenure::Instant, d: tenure::Duration| {
            tenure::Instant::from_micros(t.as_micros().saturating_sub(d.as_micros()))
        };
        let mut view = self.view.clone();
        let mut step = self.shared.step_down.subscribe();
        // Wait for a term with more than the grace left in it.
        let term = loop {
            if view.has_changed().is_err() {
                return Err(NotMaster::Stopped); // the task is gone (crashed)
            }
            let current = *view.borrow_and_update();
            let stepping = *step.borrow_and_update() != StepDown::No;
            let now = clock.now();
            match current.term {
                _ if !current.running => return Err(NotMaster::Stopped),
                Some(t) if !stepping && t.since <= now && now < before(t.end, grace) => break t,
                _ => {}
            }
            let expiry = current.term.map(|t| t.end);
            tokio::select! {
                changed = view.changed() => if changed.is_err() { return Err(NotMaster::Stopped) },
                _ = step.changed() => {}
                () = tokio::time::sleep_until(clock.deadline(expiry.unwrap_or(tenure::Instant::MAX))), if expiry.is_some() => {}
            }
        };
        let token = term.token;
        let cancel = CancellationToken::new();
        // Drop order on return: `_cancel_first` (cancels), then the work, then `_working`.
        let _working = Working::new(&self.shared.working);
        tracing::debug!(me = me.0, token, "leader work starts");
        let work = IN_WORK.scope(
            me,
            work(Leadership {
                token,
                since: term.since,
                grace: grace_std,
                cancel: cancel.clone(),
                view: self.view.clone(),
                clock,
            }),
        );
        tokio::pin!(work);
        let _cancel_first = cancel.clone().drop_guard();
        let mut end = term.end;
        // Once told to stop: the instant it is dropped at the latest.
        let mut drop_by: Option<tenure::Instant> = None;
        loop {
            let now = clock.now();
            let last = before(end, margin);
            let drop_at = drop_by.map_or(last, |d| d.min(last));
            let asked = *step.borrow_and_update();
            if now >= drop_at || asked == StepDown::Drop {
                cancel.cancel();
                tracing::debug!(me = me.0, token, "leader work dropped");
                return Err(NotMaster::TermEnded(token));
            }
            if drop_by.is_none() && (now >= before(end, grace) || asked == StepDown::Cancel) {
                cancel.cancel();
                drop_by = Some(now + grace);
                tracing::debug!(
                    me = me.0,
                    token,
                    grace_ms = grace.as_millis(),
                    "leader work told to stop"
                );
                continue;
            }
            let next = if drop_by.is_some() {
                drop_at
            } else {
                before(end, grace)
            };
            let wake_at = clock
                .deadline(next)
                .min(tokio::time::Instant::now() + SUSPEND_CHECK);
            tokio::select! {
                biased;
                changed = view.changed() => {
                    if changed.is_err() {
                        cancel.cancel();
                        tracing::debug!(me = me.0, token, "leader work dropped: the node's task is gone");
                        return Err(NotMaster::Stopped);
                    }
                    let current = *view.borrow_and_update();
                    match current.term {
                        Some(t) if current.running && t.since == term.since => end = t.end,
                        _ => {
                            cancel.cancel();
                            tracing::debug!(me = me.0, token, "leader work dropped: the term ended");
                            return Err(NotMaster::TermEnded(token));
                        }
                    }
                }
                _ = step.changed() => {} // looks at the request again
                () = tokio::time::sleep_until(wake_at) => {} // looks at the clock again
                output = &mut work => {
                    tracing::debug!(me = me.0, token, "leader work returned");
                    return Ok(output);
                }
            }
        }
    }
}

//! Datagram transports, keyed by member id.
//!
//! The driver never sees an address: it hands encoded packets to a [`Transport`] by
//! [`NodeId`], and the binding tells it which member a received datagram came from (or
//! that it came from no member). A UDP binding resolves ids with an [`AddressBook`]; a
//! byte-stream binding (COBS frames over serial links, relayed by a gateway) can resolve
//! them by link or route instead, and authenticate frames before naming the sender.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use tenure::NodeId;

/// Sends one encoded packet to one member.
///
/// Delivery is best effort, like a datagram: a lost packet is recovered by the protocol's
/// retries. A failure is counted by the driver and never stops the node.
pub trait Transport {
    /// Sends `packet` (one whole encoded [`tenure::Packet`]) to member `to`, never this node.
    fn send(&mut self, to: NodeId, packet: &[u8]) -> Result<(), SendError>;

    /// The OS error code (`errno`) of the last failed [`Transport::send`], if it had one:
    /// logged with the failure.
    fn last_os_error(&self) -> Option<i32> {
        None
    }
}

/// Why a send failed. Every variant is counted separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendError {
    /// The peer's port is closed (ICMP port unreachable reported on this socket).
    Refused,
    /// No route to the peer's host or network.
    Unreachable,
    /// The host refused the send (EPERM/EACCES, typically a firewall rule).
    PermissionDenied,
    /// The socket's send buffer is full; the datagram was dropped.
    WouldBlock,
    /// The transport has no address for this member.
    UnknownMember,
    /// Any other error.
    Other,
}

impl SendError {
    /// Every variant, in the order of [`SendError::label`]s in metrics.
    pub const ALL: [SendError; 6] = [
        SendError::Refused,
        SendError::Unreachable,
        SendError::PermissionDenied,
        SendError::WouldBlock,
        SendError::UnknownMember,
        SendError::Other,
    ];

    /// Classifies an I/O error.
    pub fn from_io(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => SendError::Refused,
            io::ErrorKind::PermissionDenied => SendError::PermissionDenied,
            io::ErrorKind::WouldBlock => SendError::WouldBlock,
            io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => SendError::Unreachable,
            _ => match e.raw_os_error() {
                Some(1 | 13) => SendError::PermissionDenied, // EPERM, EACCES
                Some(101 | 113) => SendError::Unreachable,   // ENETUNREACH, EHOSTUNREACH
                _ => SendError::Other,
            },
        }
    }

    /// A short name for logs and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            SendError::Refused => "refused",
            SendError::Unreachable => "unreachable",
            SendError::PermissionDenied => "permission_denied",
            SendError::WouldBlock => "would_block",
            SendError::UnknownMember => "unknown_member",
            SendError::Other => "other",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            SendError::Refused => 0,
            SendError::Unreachable => 1,
            SendError::PermissionDenied => 2,
            SendError::WouldBlock => 3,
            SendError::UnknownMember => 4,
            SendError::Other => 5,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl std::error::Error for SendError {}

/// Every member's UDP address: resolves ids for sending, and source addresses of
/// received datagrams to members.
///
/// A member may be given by host name (`db-1.example:7001`): its name is kept beside
/// the address it resolved to last, and a member whose name has not resolved yet has a
/// name and no address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressBook {
    entries: Vec<(NodeId, SocketAddr)>,
    hosts: Vec<(NodeId, String)>,
}

impl AddressBook {
    /// A book of `(member, address)` pairs.
    pub fn new(entries: impl IntoIterator<Item = (NodeId, SocketAddr)>) -> Self {
        AddressBook {
            entries: entries.into_iter().collect(),
            hosts: Vec::new(),
        }
    }

    /// The address of member `id`.
    pub fn address_of(&self, id: NodeId) -> Option<SocketAddr> {
        self.entries.iter().find(|(n, _)| *n == id).map(|(_, a)| *a)
    }

    /// The member whose address is `addr`, if any. Datagrams from anywhere else are
    /// dropped unread.
    pub fn member_at(&self, addr: SocketAddr) -> Option<NodeId> {
        let addr = canonical(addr);
        self.entries
            .iter()
            .find(|(_, a)| canonical(*a) == addr)
            .map(|(n, _)| *n)
    }

    /// Every `(member, address)` pair (members whose name has not resolved are missing).
    pub fn entries(&self) -> &[(NodeId, SocketAddr)] {
        &self.entries
    }

    /// Sets (or replaces) the address of member `id`.
    pub fn set_address(&mut self, id: NodeId, addr: SocketAddr) {
        match self.entries.iter_mut().find(|(n, _)| *n == id) {
            Some(entry) => entry.1 = addr,
            None => self.entries.push((id, addr)),
        }
    }

    /// Forgets member `id`'s address (and name).
    pub fn remove(&mut self, id: NodeId) {
        self.entries.retain(|(n, _)| *n != id);
        self.hosts.retain(|(n, _)| *n != id);
    }

    /// Names member `id` by `host:port`, resolved by the running node at start and again
    /// when sends fail (and every [`RESOLVE_EVERY`]).
    pub fn set_host(&mut self, id: NodeId, host: impl Into<String>) {
        let host = host.into();
        match self.hosts.iter_mut().find(|(n, _)| *n == id) {
            Some(entry) => entry.1 = host,
            None => self.hosts.push((id, host)),
        }
    }

    /// The `host:port` member `id` was given by, if it was given by name.
    pub fn host_of(&self, id: NodeId) -> Option<&str> {
        self.hosts
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, h)| h.as_str())
    }

    /// Every `(member, host:port)` pair of the members given by name.
    pub fn hosts(&self) -> &[(NodeId, String)] {
        &self.hosts
    }
}

/// IPv4-mapped IPv6 addresses compare equal to their IPv4 form.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// How often a running node looks up its members' host names again, even when every
/// send succeeds (a datagram to an address nobody uses any more usually fails silently).
pub const RESOLVE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The shortest time between two look-ups of one name prompted by failed sends.
pub const RESOLVE_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How long one look-up may take before it counts as failed.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Picks the address to use among a name's addresses: the first IPv4 one if any (so a
/// name such as `localhost` gives every node the same family), else the first.
pub fn pick_address(addrs: impl IntoIterator<Item = SocketAddr>) -> Option<SocketAddr> {
    let all: Vec<SocketAddr> = addrs.into_iter().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or_else(|| all.first())
        .copied()
}

/// Looks `host:port` up once (bounded by [`RESOLVE_TIMEOUT`]).
pub async fn resolve(host: &str) -> io::Result<SocketAddr> {
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(host))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the look-up timed out"))??;
    pick_address(found)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name has no address"))
}

/// The address book of a running node: shared by its transport and its receive loop,
/// and updated when a member's host name resolves to a new address.
#[derive(Debug)]
pub struct LiveBook {
    book: RwLock<AddressBook>,
    me: NodeId,
    /// Members whose sends failed since their last look-up.
    stale: Mutex<Vec<NodeId>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Drop for LiveBook {
    fn drop(&mut self) {
        // Lets the resolver task see that the book is gone.
        self.wake.notify_one();
    }
}

impl LiveBook {
    /// A live book for node `me`, starting from `book`.
    pub fn new(me: NodeId, book: AddressBook) -> Self {
        LiveBook {
            book: RwLock::new(book),
            me,
            stale: Mutex::new(Vec::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, AddressBook> {
        self.book.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The address of member `id` now.
    pub fn address_of(&self, id: NodeId) -> Option<SocketAddr> {
        self.read().address_of(id)
    }

    /// The member whose address is `addr` now.
    pub fn member_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.read().member_at(addr)
    }

    /// A copy of the book as it is now.
    pub fn snapshot(&self) -> AddressBook {
        self.read().clone()
    }

    /// Changes the book now.
    pub fn update<R>(&self, f: impl FnOnce(&mut AddressBook) -> R) -> R {
        f(&mut self.book.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// Notes that a send to `id` failed: if it is given by name, its name is looked up
    /// again (at most every [`RESOLVE_AT_MOST_EVERY`]). Never blocks.
    pub fn send_failed(&self, id: NodeId) {
        if self.read().host_of(id).is_none() {
            return;
        }
        let mut stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        if !stale.contains(&id) {
            stale.push(id);
        }
        drop(stale);
        self.wake.notify_one();
    }

    /// Notes a datagram from an address that is no member's: a member given by name may
    /// have moved, so every name is looked up again (at most every
    /// [`RESOLVE_AT_MOST_EVERY`], however many such datagrams arrive). Never blocks.
    pub fn unknown_source(&self) {
        let book = self.read();
        if book.hosts().is_empty() {
            return;
        }
        let ids: Vec<NodeId> = book.hosts().iter().map(|(id, _)| *id).collect();
        drop(book);
        let mut stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if !stale.contains(&id) {
                stale.push(id);
            }
        }
        drop(stale);
        self.wake.notify_one();
    }

    /// Looks up the names of `ids` (every named member when `None`) and records the
    /// addresses that changed. Returns the members whose address changed.
    pub async fn refresh(&self, ids: Option<&[NodeId]>) -> Vec<NodeId> {
        let hosts: Vec<(NodeId, String)> = self
            .read()
            .hosts()
            .iter()
            .filter(|(id, _)| ids.is_none_or(|ids| ids.contains(id)))
            .cloned()
            .collect();
        let mut changed = Vec::new();
        for (id, host) in hosts {
            match resolve(&host).await {
                Ok(addr) => {
                    let old = self.read().address_of(id);
                    if old != Some(addr) {
                        self.book
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .set_address(id, addr);
                        changed.push(id);
                        match old {
                            Some(old) => tracing::info!(
                                me = self.me.0, member = id.0, %host, %old, new = %addr,
                                "member address changed"
                            ),
                            None => tracing::info!(
                                me = self.me.0, member = id.0, %host, %addr,
                                "member address resolved"
                            ),
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    me = self.me.0, member = id.0, %host, error = %e,
                    "cannot resolve member address (keeping the last one, trying again)"
                ),
            }
        }
        changed
    }

    /// Keeps the named members' addresses fresh for as long as `book` is in use: looks
    /// every name up every [`RESOLVE_EVERY`], and a member's name soon after a send to
    /// it failed (at most every [`RESOLVE_AT_MOST_EVERY`]). Ends when the book is
    /// dropped. Nothing to do (returns at once) if no member is given by name.
    pub async fn keep_fresh(book: std::sync::Weak<LiveBook>) {
        let wake = match book.upgrade() {
            Some(live) if !live.read().hosts().is_empty() => Arc::clone(&live.wake),
            _ => return,
        };
        let mut next_all = tokio::time::Instant::now() + RESOLVE_EVERY;
        loop {
            let woken = tokio::select! {
                () = wake.notified() => true,
                () = tokio::time::sleep_until(next_all) => false,
            };
            let Some(live) = book.upgrade() else { return };
            if woken {
                let ids =
                    std::mem::take(&mut *live.stale.lock().unwrap_or_else(|e| e.into_inner()));
                live.refresh(Some(&ids)).await;
            } else {
                live.refresh(None).await;
                next_all = tokio::time::Instant::now() + RESOLVE_EVERY;
            }
            drop(live);
            // Bounds the look-ups that failing sends cause.
            tokio::time::sleep(RESOLVE_AT_MOST_EVERY).await;
        }
    }
}

/// The tokio UDP binding of [`Transport`]: non-blocking `try_send_to`, so a send never
/// waits (a full socket buffer drops the datagram and counts it, as a network would).
/// A failed send to a member given by host name has its name looked up again.
#[derive(Clone, Debug)]
pub struct UdpTransport {
    socket: Arc<tokio::net::UdpSocket>,
    peers: Arc<LiveBook>,
    pub(crate) last_os_error: Option<i32>,
}

impl UdpTransport {
    /// A transport sending from `socket` to the members of `peers`.
    pub fn new(socket: Arc<tokio::net::UdpSocket>, peers: Arc<LiveBook>) -> Self {
        UdpTransport {
            socket,
            peers,
            last_os_error: None,
        }
    }
}

impl Transport for UdpTransport {
    fn send(&mut self, to: NodeId, packet: &[u8]) -> Result<(), SendError> {
        self.last_os_error = None;
        let Some(addr) = self.peers.address_of(to) else {
            self.peers.send_failed(to);
            return Err(SendError::UnknownMember);
        };
        match self.socket.try_send_to(packet, addr) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.last_os_error = e.raw_os_error();
                let e = SendError::from_io(&e);
                if e != SendError::WouldBlock {
                    self.peers.send_failed(to);
                }
                Err(e)
            }
        }
    }

    fn last_os_error(&self) -> Option<i32> {
        self.last_os_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_book_resolves_both_ways() {
        let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        let book = AddressBook::new([(NodeId(1), a), (NodeId(2), b)]);
        assert_eq!(book.address_of(NodeId(2)), Some(b));
        assert_eq!(book.address_of(NodeId(3)), None);
        assert_eq!(book.member_at(a), Some(NodeId(1)));
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:7002".parse().unwrap();
        assert_eq!(book.member_at(mapped), Some(NodeId(2)));
        assert_eq!(book.member_at("127.0.0.1:9".parse().unwrap()), None);
    }

    #[test]
    fn ipv4_is_preferred_among_a_names_addresses() {
        let v6: SocketAddr = "[::1]:7001".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        assert_eq!(pick_address([v6, v4]), Some(v4));
        assert_eq!(pick_address([v6]), Some(v6));
        assert_eq!(pick_address([]), None);
    }

    /// A member given by name: an address that stopped working is replaced by the one
    /// its name resolves to once a send fails.
    #[test]
    fn a_failed_send_looks_the_name_up_again() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = peer.local_addr().unwrap().port();
            // Recorded at a closed port; the name `localhost:PORT` says where it is now.
            let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let old = closed.local_addr().unwrap();
            drop(closed);
            let mut book = AddressBook::new([(NodeId(2), old)]);
            book.set_host(NodeId(2), format!("localhost:{port}"));
            let live = Arc::new(LiveBook::new(NodeId(1), book));
            let task = tokio::spawn(LiveBook::keep_fresh(Arc::downgrade(&live)));
            let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let mut transport = UdpTransport::new(socket, Arc::clone(&live));
            let mut buf = [0u8; 8];
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                loop {
                    // The first sends go to the closed port (refused, or lost).
                    let _ = transport.send(NodeId(2), b"hello");
                    live.send_failed(NodeId(2));
                    tokio::select! {
                        r = peer.recv_from(&mut buf) => break r.unwrap().0,
                        () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
                    }
                }
            })
            .await
            .expect("the name was not looked up again");
            assert_eq!(&buf[..got], b"hello");
            assert_eq!(
                live.address_of(NodeId(2)),
                Some(SocketAddr::from(([127, 0, 0, 1], port)))
            );
            drop(transport);
            drop(live);
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .expect("the resolver ends with its book")
                .unwrap();
        });
    }

    #[test]
    fn io_errors_are_classified() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(SendError::from_io(&e), SendError::Refused);
        assert_eq!(
            SendError::from_io(&io::Error::from_raw_os_error(1)),
            SendError::PermissionDenied
        );
        assert_eq!(
            SendError::from_io(&io::Error::from_raw_os_error(101)),
            SendError::Unreachable
        );
    }

    /// A datagram from an unknown address has every name looked up again.
    #[test]
    fn an_unknown_source_looks_every_name_up_again() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let old: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let mut book = AddressBook::new([(NodeId(2), old)]);
            book.set_host(NodeId(2), "localhost:7002");
            let live = Arc::new(LiveBook::new(NodeId(1), book));
            let _task = tokio::spawn(LiveBook::keep_fresh(Arc::downgrade(&live)));
            live.unknown_source();
            let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                while live.address_of(NodeId(2)) == Some(old) {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            })
            .await;
            assert!(found.is_ok(), "not looked up again");
            assert_eq!(
                live.address_of(NodeId(2)),
                Some("127.0.0.1:7002".parse().unwrap())
            );
            assert_eq!(
                live.member_at("127.0.0.1:7002".parse().unwrap()),
                Some(NodeId(2))
            );
        });
    }
}

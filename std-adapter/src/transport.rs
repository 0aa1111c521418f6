//! Datagram transports, keyed by member id.
//!
//! The driver never sees an address: it hands encoded packets to a [`Transport`] by
//! [`NodeId`], and the binding tells it which member a received datagram came from (or
//! that it came from no member). A UDP binding resolves ids with an [`AddressBook`]; a
//! byte-stream binding (COBS frames over serial links, relayed by a gateway) can resolve
//! them by link or route instead, and authenticate frames before naming the sender.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tenure::NodeId;

/// Sends one encoded packet to one member.
///
/// Delivery is best effort, like a datagram: a lost packet is recovered by the protocol's
/// retries. A failure is counted by the driver and never stops the node.
pub trait Transport {
    /// Sends `packet` (one whole encoded [`tenure::Packet`]) to member `to`, never this node.
    fn send(&mut self, to: NodeId, packet: &[u8]) -> Result<(), SendError>;
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressBook {
    entries: Vec<(NodeId, SocketAddr)>,
}

impl AddressBook {
    /// A book of `(member, address)` pairs.
    pub fn new(entries: impl IntoIterator<Item = (NodeId, SocketAddr)>) -> Self {
        AddressBook {
            entries: entries.into_iter().collect(),
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

    /// Every `(member, address)` pair.
    pub fn entries(&self) -> &[(NodeId, SocketAddr)] {
        &self.entries
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

/// The tokio UDP binding of [`Transport`]: non-blocking `try_send_to`, so a send never
/// waits (a full socket buffer drops the datagram and counts it, as a network would).
#[derive(Clone, Debug)]
pub struct UdpTransport {
    socket: Arc<tokio::net::UdpSocket>,
    peers: Arc<AddressBook>,
}

impl UdpTransport {
    /// A transport sending from `socket` to the members of `peers`.
    pub fn new(socket: Arc<tokio::net::UdpSocket>, peers: Arc<AddressBook>) -> Self {
        UdpTransport { socket, peers }
    }
}

impl Transport for UdpTransport {
    fn send(&mut self, to: NodeId, packet: &[u8]) -> Result<(), SendError> {
        let addr = self.peers.address_of(to).ok_or(SendError::UnknownMember)?;
        match self.socket.try_send_to(packet, addr) {
            Ok(_) => Ok(()),
            Err(e) => Err(SendError::from_io(&e)),
        }
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
}

//! The Ethernet link (feature `eth`): the same UDP datagrams as `tenure
//! node`, through embassy-net (smoltcp) over the board's LAN9118
//! ([`crate::lan9118`]).
//!
//! Every member has a UDP address (`peers=ID@IP:PORT,...`, the `addr` of
//! each `[[members]]` entry in a `tenure node` configuration); a datagram is
//! one sealed packet (`Node::seal`: postcard packet, SipHash tag when a key
//! is set), sent from this node's own address to the member's, with no
//! envelope: the destination address says who it is for, and a datagram
//! counts only if its source address is a member's (as `tenure node` checks).
//! This node's address is `ip=A.B.C.D/PREFIX`, static, with its port from
//! its own `peers=` entry.
//!
//! One socket receives; each other member has a send-only socket bound to
//! the same port. smoltcp holds a socket's queue while the address at its
//! head waits for ARP, so one socket per destination keeps a member that is
//! down (no ARP answer) from holding back packets to the others. A full send
//! queue drops the packet and counts it, as a datagram network would.

use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use core::task::{Context, Poll, Waker};

use embassy_executor::Spawner;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources};
use heapless::Vec;

use crate::board::LAN9118_BASE;
use crate::cmdline::{number, CmdlineError, Settings, BROADCAST, MAX_MEMBERS};
use crate::lan9118::{self, Lan9118};
use crate::semihosting;

/// What the command line says about the network (`ip=`, `peers=`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetSettings {
    /// This node's address and prefix length.
    pub ip: Option<(Ipv4Address, u8)>,
    /// Every member's UDP address, this node's included.
    pub peers: Vec<(u16, Ipv4Address, u16), MAX_MEMBERS>,
}

/// `a.b.c.d` as an address.
fn ipv4(s: &str) -> Option<Ipv4Address> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        *octet = u8::try_from(number(parts.next()?)?).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Address::from(octets))
}

impl NetSettings {
    /// Takes `name=value` if it is a network key: `None` if it is not one.
    pub fn parse_key(&mut self, name: &str, value: &str) -> Option<Result<(), CmdlineError>> {
        let bad = Err(CmdlineError::BadAddress);
        match name {
            "ip" => {
                let parsed = value.split_once('/').and_then(|(ip, prefix)| {
                    let prefix = u8::try_from(number(prefix)?).ok().filter(|p| *p <= 32)?;
                    Some((ipv4(ip)?, prefix))
                });
                Some(match parsed {
                    Some(ip) => {
                        self.ip = Some(ip);
                        Ok(())
                    }
                    None => bad,
                })
            }
            "peers" => {
                self.peers.clear();
                for entry in value.split(',').filter(|e| !e.is_empty()) {
                    let parsed = entry.split_once('@').and_then(|(id, addr)| {
                        let id = u16::try_from(number(id)?).ok()?;
                        let (ip, port) = addr.split_once(':')?;
                        let port = u16::try_from(number(port)?).ok().filter(|p| *p != 0)?;
                        Some((id, ipv4(ip)?, port))
                    });
                    let Some(peer) = parsed else {
                        return Some(bad);
                    };
                    if self.peers.iter().any(|p| p.0 == peer.0) || self.peers.push(peer).is_err() {
                        return Some(Err(CmdlineError::BadMembers));
                    }
                }
                Some(Ok(()))
            }
            _ => None,
        }
    }

    /// Checks the network keys against the member list: `ip=` given, one
    /// address for every member and none for anyone else, this node's own
    /// entry on `ip=`.
    pub fn check(&self, id: u16, members: &[u16]) -> Result<(), CmdlineError> {
        let (ip, _) = self.ip.ok_or(CmdlineError::MissingAddress)?;
        let complete = self.peers.len() == members.len()
            && members.iter().all(|m| self.peers.iter().any(|p| p.0 == *m));
        if !complete {
            return Err(CmdlineError::MissingAddress);
        }
        match self.peers.iter().find(|p| p.0 == id) {
            Some(own) if own.1 == ip => Ok(()),
            _ => Err(CmdlineError::BadAddress),
        }
    }
}

/// Datagram counters (the frame counters are [`lan9118::STATS`]).
struct UdpStats {
    /// Datagrams from a member's address, handed to the node.
    received: AtomicU32,
    /// Datagrams from an address that is no member's.
    not_member: AtomicU32,
    /// Datagrams longer than the receive buffer.
    too_long: AtomicU32,
    /// Sends dropped because the member's queue was full.
    send_full: AtomicU32,
    /// Sends refused by the stack (no route, too large, unknown member).
    send_errors: AtomicU32,
}

static UDP: UdpStats = UdpStats {
    received: AtomicU32::new(0),
    not_member: AtomicU32::new(0),
    too_long: AtomicU32::new(0),
    send_full: AtomicU32::new(0),
    send_errors: AtomicU32::new(0),
};

fn count(counter: &AtomicU32) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Sockets: the node's one receiving socket and one send socket per member.
const SOCKETS: usize = MAX_MEMBERS;
/// Receive queue: datagrams and bytes (a burst from every member at once,
/// several rounds deep).
const RX_PACKETS: usize = 16;
const RX_BYTES: usize = 2048;
/// Send queue per member.
const TX_PACKETS: usize = 4;
const TX_BYTES: usize = 2 * tenure::MAX_SEALED_SIZE;
/// Largest datagram accepted: a sealed packet (anything longer is not one).
const MAX_DATAGRAM: usize = tenure::MAX_SEALED_SIZE;

/// A member's send socket.
struct Peer {
    id: u16,
    addr: IpEndpoint,
    socket: UdpSocket<'static>,
}

/// Everything the link side uses, created once by [`start`].
struct Net {
    recv: UdpSocket<'static>,
    peers: Vec<Peer, { MAX_MEMBERS - 1 }>,
    /// Every member's address, for checking a datagram's source.
    members: Vec<(u16, IpEndpoint), MAX_MEMBERS>,
}

/// Set once by [`start`], before the node task runs.
static NET: AtomicPtr<Net> = AtomicPtr::new(core::ptr::null_mut());

fn net() -> &'static Net {
    let net = NET.load(Ordering::Acquire);
    if net.is_null() {
        error!("network used before it was started");
        semihosting::exit(7);
    }
    // SAFETY: `net` came from a `&'static mut Net` (a singleton) in `start`,
    // which is never used again; everything here is shared immutably and
    // only from tasks of the one thread-mode executor (`UdpSocket` methods
    // take `&self`; interrupt handlers never touch the stack).
    unsafe { &*net }
}

/// Runs the IP stack (receive, ARP, transmit).
#[embassy_executor::task]
async fn stack_task(mut runner: embassy_net::Runner<'static, Lan9118>) {
    runner.run().await
}

/// Brings up the controller and the IP stack with this node's static
/// address and opens the sockets. Exits with code 7 if the controller is
/// missing or does not answer.
pub fn start(spawner: Spawner, settings: &Settings, seed: u64) {
    let ns = &settings.net;
    let dev = match Lan9118::new(LAN9118_BASE) {
        Ok(dev) => dev,
        Err(e) => {
            error!("Ethernet: {}", e);
            semihosting::exit(7);
        }
    };
    let mac = dev.mac();
    // `cmdline::parse` checked both (`NetSettings::check`).
    let Some((ip, prefix)) = ns.ip else {
        semihosting::exit(2);
    };
    let Some(own) = ns.peers.iter().find(|p| p.0 == settings.id) else {
        semihosting::exit(2);
    };
    let config = embassy_net::Config::ipv4_static(embassy_net::StaticConfigV4 {
        address: Ipv4Cidr::new(ip, prefix),
        gateway: None,
        dns_servers: Vec::new(),
    });
    let resources = cortex_m::singleton!(: StackResources<{ SOCKETS }> = StackResources::new())
        .expect("the network starts once");
    let (stack, runner) = embassy_net::new(dev, config, resources, seed);
    spawner.spawn(stack_task(runner).expect("stack task spawned once"));

    let rx_meta =
        cortex_m::singleton!(: [PacketMetadata; RX_PACKETS] = [PacketMetadata::EMPTY; RX_PACKETS])
            .expect("once");
    let rx_buf = cortex_m::singleton!(: [u8; RX_BYTES] = [0; RX_BYTES]).expect("once");
    let mut recv = UdpSocket::new(stack, rx_meta, rx_buf, &mut [], &mut []);
    if recv.bind(own.2).is_err() {
        error!("cannot bind UDP port {}", own.2);
        semihosting::exit(2);
    }

    let tx_meta = cortex_m::singleton!(: [[PacketMetadata; TX_PACKETS]; MAX_MEMBERS - 1] =
        [[PacketMetadata::EMPTY; TX_PACKETS]; MAX_MEMBERS - 1])
    .expect("once");
    let tx_buf = cortex_m::singleton!(: [[u8; TX_BYTES]; MAX_MEMBERS - 1] =
        [[0; TX_BYTES]; MAX_MEMBERS - 1])
    .expect("once");
    let mut peers = Vec::new();
    let mut members = Vec::new();
    let mut bufs = tx_meta.iter_mut().zip(tx_buf.iter_mut());
    for &(id, peer_ip, port) in &ns.peers {
        let addr = IpEndpoint::new(IpAddress::Ipv4(peer_ip), port);
        // Cannot fail: at most MAX_MEMBERS entries (`cmdline::parse`).
        let _ = members.push((id, addr));
        if id == settings.id {
            continue;
        }
        let Some((meta, buf)) = bufs.next() else {
            continue;
        };
        let mut socket = UdpSocket::new(stack, &mut [], &mut [], meta, buf);
        // Sent from the node's own port, as `tenure node` expects. The
        // receiving socket was added first, so it gets every datagram.
        if socket.bind(own.2).is_err() {
            error!("cannot bind UDP port {}", own.2);
            semihosting::exit(2);
        }
        let _ = peers.push(Peer { id, addr, socket });
    }
    let net = cortex_m::singleton!(: Net = Net { recv, peers, members }).expect("once");
    NET.store(net, Ordering::Release);
    info!(
        "Ethernet up: mac {}:{}:{}:{}:{}:{} (hex), port {}",
        Hex(mac[0]),
        Hex(mac[1]),
        Hex(mac[2]),
        Hex(mac[3]),
        Hex(mac[4]),
        Hex(mac[5]),
        own.2
    );
}

/// A byte as two hex digits in logs.
struct Hex(u8);

#[cfg(not(feature = "defmt"))]
impl crate::fmt::Show for Hex {
    fn show(&self) {
        let digit = |n: u8| b"0123456789abcdef"[usize::from(n & 0xF)];
        crate::fmt::put(&[digit(self.0 >> 4), digit(self.0)]);
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Hex {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=u8:02x}", self.0);
    }
}

/// A datagram carries no envelope: it came to this node's own address, so
/// it is for this node. Returns it whole, addressed to every node (which
/// this node accepts).
pub fn open_envelope(datagram: &[u8]) -> Option<(u16, &[u8])> {
    Some((BROADCAST, datagram))
}

/// The sending side: each packet goes at once to its member's send socket.
pub struct Sender {
    net: &'static Net,
}

impl Sender {
    /// A sender to the members [`start`] opened sockets for (the argument,
    /// every other member, is the same list).
    pub fn new(_others: impl IntoIterator<Item = u16>) -> Self {
        Self { net: net() }
    }

    /// Queues the sealed packet for member `to`; a full queue drops it
    /// (counted).
    pub fn send(&mut self, to: u16, sealed: &[u8]) {
        let Some(peer) = self.net.peers.iter().find(|p| p.id == to) else {
            count(&UDP.send_errors);
            return;
        };
        // Never waits: the node's outputs are not held up by one member.
        let mut cx = Context::from_waker(Waker::noop());
        match peer.socket.poll_send_to(sealed, peer.addr, &mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => count(&UDP.send_errors),
            Poll::Pending => count(&UDP.send_full),
        }
    }

    /// Nothing is held back: sends are queued as they come.
    pub fn flush(&mut self) {}
}

/// The receiving side.
pub struct Receiver {
    net: &'static Net,
    buf: [u8; MAX_DATAGRAM],
}

impl Receiver {
    /// A receiver on the node's socket.
    pub fn new() -> Self {
        Self {
            net: net(),
            buf: [0; MAX_DATAGRAM],
        }
    }

    /// Waits for the next datagram. `None` for one that was dropped here
    /// (counted: not from a member, or too long). Cancel-safe: a datagram is
    /// only taken when the call completes.
    pub async fn next_frame(&mut self) -> Option<Result<&[u8], tenure::WireError>> {
        match self.net.recv.recv_from(&mut self.buf).await {
            Ok((n, meta)) => {
                if !self.net.members.iter().any(|m| m.1 == meta.endpoint) {
                    count(&UDP.not_member);
                    return None;
                }
                count(&UDP.received);
                self.buf.get(..n).map(Ok)
            }
            Err(_) => {
                count(&UDP.too_long);
                None
            }
        }
    }
}

/// One `EVENT net` line: the driver's frame counters and the datagram
/// counters.
pub fn report_stats(at_us: u64) {
    let f = &lan9118::STATS;
    let n = |c: &AtomicU32| c.load(Ordering::Relaxed);
    event!(
        "EVENT net rx_frames={} rx_errors={} wrong_mac={} short={} too_long={} bad_type={} storm={} overrun={} tx_frames={} tx_dropped={} udp_in={} not_member={} udp_too_long={} send_full={} send_errors={} at_us={}",
        n(&f.rx_frames),
        n(&f.rx_errors),
        n(&f.wrong_mac),
        n(&f.short),
        n(&f.too_long),
        n(&f.bad_type),
        n(&f.storm),
        n(&f.overrun),
        n(&f.tx_frames),
        n(&f.tx_dropped),
        n(&UDP.received),
        n(&UDP.not_member),
        n(&UDP.too_long),
        n(&UDP.send_full),
        n(&UDP.send_errors),
        at_us
    );
}

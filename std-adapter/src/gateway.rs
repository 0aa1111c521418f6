//! The gateway: members behind COBS-framed byte streams (serial links), relayed by the
//! one tokio node that owns their links.
//!
//! A microcontroller member speaks over a byte stream (a UART; under QEMU a TCP
//! connection to the UART's chardev). Each frame is COBS-encoded and ends with a zero
//! byte; its payload is an envelope — the destination `to` (u16, little-endian; `0xFFFF`
//! = every member) — followed by the packet sealed by the core (`Node::seal`).
//!
//! # Addressing: a UDP proxy address per serial member
//!
//! One tokio node, the *gateway*, owns the links: a member with `serial = "host:port"`
//! in the gateway's configuration is reached over that stream. Every serial member also
//! has an ordinary UDP `addr` in every node's member list; the gateway binds that
//! address (a *proxy socket*) and relays:
//!
//! - a datagram arriving at the proxy socket of member S from a UDP member goes to S's
//!   link, enveloped with `to = S`;
//! - a frame from S's link addressed to the gateway goes to the gateway's own core; to
//!   another serial member, to that member's link; to a UDP member, is sent from S's
//!   proxy socket (so the receiver sees it come from S's member address, and its
//!   source check holds); `0xFFFF` goes to all of these.
//!
//! No other node needs to know that S is a microcontroller, no UDP datagram carries an
//! envelope, and the firmware's envelope is unchanged. Authentication is end to end:
//! the gateway never opens a relayed packet (the cluster key's tag is checked by the
//! receiver).
//!
//! Each link is a TCP client that reconnects with backoff (100 ms doubling to 1 s)
//! whenever the connection drops, for example when QEMU restarts. Frames queued while a
//! link is down are dropped, as a lossy network would: the protocol retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenure::{NodeId, MAX_SEALED_SIZE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::transport::{AddressBook, SendError, Transport, UdpTransport};

/// The envelope's destination meaning every member.
pub const BROADCAST: u16 = 0xFFFF;

/// The largest envelope payload: `to` plus a sealed packet.
const MAX_PAYLOAD: usize = 2 + MAX_SEALED_SIZE;
/// The largest COBS frame of a payload, terminator included.
const MAX_FRAME: usize = MAX_PAYLOAD + MAX_PAYLOAD / 254 + 2;
/// Frames queued per link before new ones are dropped.
const QUEUE: usize = 64;

/// One serial member as the gateway sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SerialMember {
    /// The member.
    pub id: NodeId,
    /// The stream to connect to (for QEMU, the UART chardev's TCP server).
    pub stream: SocketAddr,
}

/// A frame received from a link for this node's own core: the link's member and the
/// sealed packet.
pub type Inbound = (NodeId, Vec<u8>);

/// The gateway's links, ready to run: their senders (for the transport) and their
/// sockets (for the relay tasks).
pub struct Links {
    me: NodeId,
    peers: Arc<AddressBook>,
    senders: Arc<HashMap<NodeId, mpsc::Sender<Vec<u8>>>>,
    pending: Vec<(SerialMember, Arc<UdpSocket>, mpsc::Receiver<Vec<u8>>)>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("me", &self.me)
            .field("members", &self.senders.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Links {
    /// Binds the proxy socket of every serial member (at its member address in
    /// `peers`). Must run inside a tokio runtime.
    pub fn bind(
        me: NodeId,
        members: &[SerialMember],
        peers: Arc<AddressBook>,
    ) -> std::io::Result<Links> {
        let mut senders = HashMap::new();
        let mut pending = Vec::new();
        for m in members {
            let addr = peers.address_of(m.id).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("serial member {} has no member address", m.id),
                )
            })?;
            let socket = std::net::UdpSocket::bind(addr).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("proxy socket of member {}: {addr}: {e}", m.id),
                )
            })?;
            socket.set_nonblocking(true)?;
            let socket = Arc::new(UdpSocket::from_std(socket)?);
            let (tx, rx) = mpsc::channel(QUEUE);
            senders.insert(m.id, tx);
            pending.push((*m, socket, rx));
        }
        Ok(Links {
            me,
            peers,
            senders: Arc::new(senders),
            pending,
        })
    }

    /// Whether `id` is reached over one of these links.
    pub fn has(&self, id: NodeId) -> bool {
        self.senders.contains_key(&id)
    }

    /// A handle that queues frames for the links (used by [`GatewayTransport`]).
    pub fn sender(&self) -> LinkSender {
        LinkSender {
            senders: Arc::clone(&self.senders),
        }
    }

    /// Spawns one relay task per link into `tasks`; frames for this node go to `local`.
    /// The tasks end when `tasks` is dropped (so aborting the node ends its links).
    pub fn spawn(self, tasks: &mut JoinSet<()>, local: mpsc::Sender<Inbound>) {
        for (member, socket, rx) in self.pending {
            let relay = Relay {
                me: self.me,
                member,
                proxy: socket,
                peers: Arc::clone(&self.peers),
                links: Arc::clone(&self.senders),
                local: local.clone(),
            };
            tasks.spawn(relay.run(rx));
        }
    }
}

/// Queues enveloped frames for the links.
#[derive(Clone, Debug)]
pub struct LinkSender {
    senders: Arc<HashMap<NodeId, mpsc::Sender<Vec<u8>>>>,
}

impl LinkSender {
    /// Queues `packet` for member `to`'s link, enveloped with `to`.
    pub fn send(&self, to: NodeId, packet: &[u8]) -> Result<(), SendError> {
        let tx = self.senders.get(&to).ok_or(SendError::UnknownMember)?;
        tx.try_send(envelope(to.0, packet))
            .map_err(|_| SendError::WouldBlock)
    }
}

/// The gateway's transport: serial members over their links, the others over UDP.
#[derive(Clone, Debug)]
pub struct GatewayTransport {
    /// The UDP members.
    pub udp: UdpTransport,
    /// The serial members.
    pub links: Option<LinkSender>,
}

impl Transport for GatewayTransport {
    fn send(&mut self, to: NodeId, packet: &[u8]) -> Result<(), SendError> {
        match &self.links {
            Some(links) if links.senders.contains_key(&to) => {
                // Queued for a link: no OS error to report, whatever UDP saw before.
                self.udp.last_os_error = None;
                links.send(to, packet)
            }
            _ => self.udp.send(to, packet),
        }
    }

    fn last_os_error(&self) -> Option<i32> {
        self.udp.last_os_error()
    }
}

/// `to` (LE) followed by `packet`.
pub fn envelope(to: u16, packet: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + packet.len());
    v.extend_from_slice(&to.to_le_bytes());
    v.extend_from_slice(packet);
    v
}

struct Relay {
    me: NodeId,
    member: SerialMember,
    proxy: Arc<UdpSocket>,
    peers: Arc<AddressBook>,
    links: Arc<HashMap<NodeId, mpsc::Sender<Vec<u8>>>>,
    local: mpsc::Sender<Inbound>,
}

impl Relay {
    async fn run(self, mut outgoing: mpsc::Receiver<Vec<u8>>) {
        let id = self.member.id;
        let mut backoff = Duration::from_millis(100);
        let mut was_up = false;
        loop {
            // Frames queued while down are stale: drop them.
            while outgoing.try_recv().is_ok() {}
            let stream = tokio::select! {
                s = TcpStream::connect(self.member.stream) => s,
                // Datagrams for a member whose link is down are lost.
                _ = self.discard_proxy() => continue,
            };
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    if was_up {
                        tracing::debug!(me = self.me.0, member = id.0, error = %e, "link: connect failed");
                    }
                    self.sleep_discarding(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tracing::info!(me = self.me.0, member = id.0, stream = %self.member.stream, "link up");
            was_up = true;
            backoff = Duration::from_millis(100);
            let reason = self.serve(stream, &mut outgoing).await;
            tracing::info!(me = self.me.0, member = id.0, %reason, "link down; reconnecting");
        }
    }

    async fn discard_proxy(&self) {
        let mut buf = [0u8; MAX_SEALED_SIZE + 1];
        let _ = self.proxy.recv_from(&mut buf).await;
    }

    async fn sleep_discarding(&self, d: Duration) {
        let sleep = tokio::time::sleep(d);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return,
                () = self.discard_proxy() => {}
            }
        }
    }

    async fn serve(&self, stream: TcpStream, outgoing: &mut mpsc::Receiver<Vec<u8>>) -> String {
        let (mut rd, mut wr) = stream.into_split();
        let mut reader = tenure::FrameReader::<MAX_FRAME>::new();
        let mut inbuf = [0u8; 4096];
        let mut dgram = [0u8; MAX_SEALED_SIZE + 1];
        let mut out = [0u8; MAX_FRAME];
        // Frames to write: from this node's core, other links, and the proxy socket.
        loop {
            tokio::select! {
                read = rd.read(&mut inbuf) => {
                    let n = match read {
                        Ok(0) => return "closed".into(),
                        Ok(n) => n,
                        Err(e) => return e.to_string(),
                    };
                    for &b in &inbuf[..n] {
                        if let Some(Ok(payload)) = reader.push(b) {
                            self.route(payload);
                        }
                    }
                }
                frame = outgoing.recv() => {
                    let Some(payload) = frame else { return "stopped".into() };
                    let Ok(len) = tenure::frame(&payload, &mut out) else { continue };
                    if let Err(e) = wr.write_all(&out[..len]).await {
                        return e.to_string();
                    }
                }
                got = self.proxy.recv_from(&mut dgram) => {
                    // From a UDP member to this serial member.
                    let Ok((len, from)) = got else { continue };
                    if len > MAX_SEALED_SIZE || self.peers.member_at(from).is_none() {
                        continue;
                    }
                    let payload = envelope(self.member.id.0, &dgram[..len]);
                    let Ok(flen) = tenure::frame(&payload, &mut out) else { continue };
                    if let Err(e) = wr.write_all(&out[..flen]).await {
                        return e.to_string();
                    }
                }
            }
        }
    }

    /// Delivers one frame read from this link.
    fn route(&self, payload: &[u8]) {
        if payload.len() < 2 {
            return;
        }
        let to = u16::from_le_bytes([payload[0], payload[1]]);
        let packet = &payload[2..];
        let from = self.member.id;
        let to_local = |relay: &Relay| {
            let _ = relay.local.try_send((from, packet.to_vec()));
        };
        let to_member = |relay: &Relay, id: NodeId| {
            if id == from {
                return;
            }
            if let Some(tx) = relay.links.get(&id) {
                let _ = tx.try_send(envelope(id.0, packet));
            } else if let Some(addr) = relay.peers.address_of(id) {
                let _ = relay.proxy.try_send_to(packet, addr);
            }
        };
        if to == BROADCAST {
            to_local(self);
            for &(id, _) in self.peers.entries() {
                if id != self.me {
                    to_member(self, id);
                }
            }
        } else if to == self.me.0 {
            to_local(self);
        } else {
            to_member(self, NodeId(to));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_little_endian_destination_then_packet() {
        assert_eq!(envelope(0x0102, &[9, 8]), vec![0x02, 0x01, 9, 8]);
        assert_eq!(envelope(BROADCAST, &[]), vec![0xFF, 0xFF]);
    }
}

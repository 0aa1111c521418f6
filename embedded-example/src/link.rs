//! The frame link on UART1: COBS frames, each ended by a 0x00 byte.
//!
//! A frame's payload is an envelope: the destination node id as two bytes,
//! little-endian (`0xFFFF`: every node), then one packet as the core encodes
//! it (`tenure::encode`). The same envelope travels both ways, so the far end
//! of the link can be a plain bus that copies every frame to every node (a
//! node drops frames addressed to another) or a router that reads the first
//! two bytes.
//!
//! Receive is interrupt driven ([`crate::uart`]); [`Receiver`] cuts the
//! byte stream into frames. Transmit writes the frame out directly (QEMU
//! takes a byte at once; a real board at 115200 baud spends ~87 µs a byte);
//! [`Sender`] puts a packet for every other node on the link once, as one
//! envelope to `0xFFFF`.

use heapless::Vec;

use crate::board::{CmsdkUart, Irq, UART1_BASE};
use crate::cmdline::{BROADCAST, MAX_MEMBERS};
use crate::uart::{ByteReader, Port, RxQueue};

/// Bytes buffered between the interrupt and the reader.
const RX_BUFFER: usize = 256;

static RX: RxQueue<RX_BUFFER> = RxQueue::new();
const PORT: Port = Port {
    uart: CmsdkUart::at(UART1_BASE),
    irq: Irq::Uart1Rx,
};

/// Enables UART1 and its receive interrupt.
pub fn init() {
    RX.enable(PORT);
}

/// UART1 receive interrupt.
pub fn on_rx_interrupt() {
    RX.on_interrupt(PORT.uart);
}

/// Writes one encoded frame (which must end with its 0x00 delimiter).
fn send_frame(frame: &[u8]) {
    PORT.uart.write_all(frame);
}

/// Bytes of the envelope before the sealed packet.
pub const ADDRESS_LEN: usize = 2;
/// Largest envelope: the address and the largest sealed packet.
pub const MAX_ENVELOPE: usize = ADDRESS_LEN + tenure::MAX_SEALED_SIZE;
/// Largest COBS-encoded envelope without its delimiter.
pub const MAX_ENCODED: usize = MAX_ENVELOPE + MAX_ENVELOPE / 254 + 1;
/// Largest frame on the wire, delimiter included.
pub const MAX_FRAME: usize = MAX_ENCODED + 1;

/// The sending side. The core's [`tenure::Executor`] hands a send to every
/// member over as one send per member id, each with the same sealed packet;
/// written out one by one, that would put the packet on a shared link once
/// per member. The sender therefore holds each packet back until a different
/// one (or [`flush`](Self::flush)) comes: a run of one packet for every other
/// member leaves as a single envelope to [`BROADCAST`] the moment the run is
/// complete, anything else as one envelope per destination, in the order
/// given. (Where only one other member exists, an envelope to it and one to
/// [`BROADCAST`] reach the same node.)
pub struct Sender {
    /// The held envelope: room for the address, then the sealed packet.
    envelope: [u8; MAX_ENVELOPE],
    /// Length of the held sealed packet.
    len: usize,
    /// The members the held packet is for so far; empty when nothing is held.
    to: Vec<u16, MAX_MEMBERS>,
    /// Every member except this node: who a [`BROADCAST`] reaches.
    others: Vec<u16, MAX_MEMBERS>,
}

impl Sender {
    /// A sender for a node whose fellow members are `others`.
    pub fn new(others: impl IntoIterator<Item = u16>) -> Self {
        let mut list = Vec::new();
        for id in others {
            // Cannot fail: the configuration holds at most MAX_MEMBERS.
            let _ = list.push(id);
        }
        Self {
            envelope: [0; MAX_ENVELOPE],
            len: 0,
            to: Vec::new(),
            others: list,
        }
    }

    /// Sends the sealed packet `sealed` to member `to` (possibly a little
    /// later: see the type's docs; at the latest on the next
    /// [`flush`](Self::flush)).
    pub fn send(&mut self, to: u16, sealed: &[u8]) {
        let joins = !self.to.is_empty() && self.held() == sealed && !self.to.contains(&to);
        if !joins {
            self.flush();
            let Some(slot) = self
                .envelope
                .get_mut(ADDRESS_LEN..ADDRESS_LEN + sealed.len())
            else {
                warn!("packet too large to send");
                return;
            };
            slot.copy_from_slice(sealed);
            self.len = sealed.len();
        }
        if self.to.push(to).is_err() {
            // Cannot happen (distinct members, this node not among them);
            // if it did, the packet still reaches everyone it was for.
            self.flush();
            self.put(to);
            return;
        }
        if self.to.len() == self.others.len() && self.others.iter().all(|id| self.to.contains(id)) {
            self.put(BROADCAST);
            self.to.clear();
        }
    }

    /// Writes out the held packet, one envelope per member it is for. Call it
    /// before any other output takes effect, so that the link sees the
    /// packets in the order the node emitted them.
    pub fn flush(&mut self) {
        for i in 0..self.to.len() {
            self.put(self.to[i]);
        }
        self.to.clear();
    }

    /// The held sealed packet.
    fn held(&self) -> &[u8] {
        &self.envelope[ADDRESS_LEN..ADDRESS_LEN + self.len]
    }

    /// Frames the held packet in an envelope to `to` and writes it out.
    fn put(&mut self, to: u16) {
        self.envelope[..ADDRESS_LEN].copy_from_slice(&to.to_le_bytes());
        let mut frame = [0u8; MAX_FRAME];
        // Cannot fail: `frame` is sized for the largest envelope.
        if let Ok(n) = tenure::frame(&self.envelope[..ADDRESS_LEN + self.len], &mut frame) {
            send_frame(&frame[..n]);
        }
    }
}

/// Splits an envelope into its destination and the sealed packet; `None` if
/// it is too short to hold an address.
pub fn open_envelope(envelope: &[u8]) -> Option<(u16, &[u8])> {
    let (address, sealed) = envelope.split_at_checked(ADDRESS_LEN)?;
    Some((u16::from_le_bytes([address[0], address[1]]), sealed))
}

/// The receiving side: cuts the bytes from the interrupt into envelopes with
/// the core's COBS [`tenure::FrameReader`].
pub struct Receiver {
    frames: tenure::FrameReader<MAX_ENCODED>,
    bytes: ByteReader<RX_BUFFER>,
}

impl Receiver {
    /// A receiver with nothing received yet.
    pub const fn new() -> Self {
        Self {
            frames: tenure::FrameReader::new(),
            bytes: ByteReader::new(&RX, PORT),
        }
    }

    /// Waits for the next frame delimiter and returns the envelope it ended
    /// (COBS-decoded), an error for a broken or oversized frame, or `None`
    /// for an empty frame. Cancel-safe: partial frames stay in `self`.
    pub async fn next_frame(&mut self) -> Option<Result<&[u8], tenure::WireError>> {
        loop {
            let byte = self.bytes.next().await;
            if byte == 0 {
                return self.frames.push(0);
            }
            // A non-zero byte never completes a frame.
            let _ = self.frames.push(byte);
        }
    }
}

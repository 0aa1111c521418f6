//! The frame link on UART1: COBS frames, each ended by a 0x00 byte.
//!
//! A frame's payload is an envelope: the destination node id as two bytes,
//! little-endian (`0xFFFF`: every node), then one packet as the core encodes
//! it (`tenure::encode`). The same envelope travels both ways, so the far end
//! of the link can be a plain bus that copies every frame to every node (a
//! node drops frames addressed to another) or a router that reads the first
//! two bytes.
//!
//! Receive is interrupt driven ([`crate::serial`]); [`Receiver`] cuts the
//! byte stream into frames. Transmit writes the frame out directly (QEMU
//! takes a byte at once; a real board at 115200 baud spends ~87 µs a byte).

use crate::board::{CmsdkUart, Irq, UART1_BASE};
use crate::serial::{ByteReader, Port, RxQueue};

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

/// Sends one encoded frame (which must end with its 0x00 delimiter).
pub fn send_frame(frame: &[u8]) {
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

/// Sends one envelope: `to` and the sealed packet `fill` writes into the
/// buffer it is given (returning its length).
pub fn send<E>(to: u16, fill: impl FnOnce(&mut [u8]) -> Result<usize, E>) -> Result<(), E> {
    let mut envelope = [0u8; MAX_ENVELOPE];
    envelope[..ADDRESS_LEN].copy_from_slice(&to.to_le_bytes());
    let len = fill(&mut envelope[ADDRESS_LEN..])?;
    let mut frame = [0u8; MAX_FRAME];
    // Cannot fail: `frame` is sized for the largest envelope.
    if let Ok(n) = tenure::frame(&envelope[..ADDRESS_LEN + len], &mut frame) {
        send_frame(&frame[..n]);
    }
    Ok(())
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

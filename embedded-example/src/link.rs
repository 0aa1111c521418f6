//! The frame link on UART1: COBS frames, each ended by a 0x00 byte.
//!
//! A frame's payload is an envelope: the destination node id as two bytes,
//! little-endian (`0xFFFF`: every node), then one packet as the core encodes
//! it (`tenure::encode`). The same envelope travels both ways, so the far end
//! of the link can be a plain bus that copies every frame to every node (a
//! node drops frames addressed to another) or a router that reads the first
//! two bytes.
//!
//! Receive is interrupt driven: the UART1 RX interrupt moves bytes into a
//! static pipe, and [`Receiver`] cuts the byte stream into frames. When the
//! pipe is full the interrupt is switched off and the byte stays in the UART;
//! under QEMU that pushes back on the TCP socket instead of losing data.
//! Transmit writes the frame out directly (QEMU takes a byte at once; a real
//! board at 115200 baud spends ~87 µs a byte).

use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::peripheral::NVIC;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;

use crate::board::{CmsdkUart, Irq, UART1_BASE};

/// Bytes buffered between the interrupt and the reader.
const RX_BUFFER: usize = 256;

static RX: Pipe<CriticalSectionRawMutex, RX_BUFFER> = Pipe::new();
/// Set by the interrupt when it stopped receiving because `RX` was full.
static RX_PAUSED: AtomicBool = AtomicBool::new(false);

fn uart() -> CmsdkUart {
    CmsdkUart::at(UART1_BASE)
}

/// Enables UART1 and its receive interrupt.
pub fn init() {
    let uart = uart();
    uart.enable();
    uart.set_rx_interrupt(true);
    // SAFETY: the handler only touches the lock-free pipe and UART1.
    unsafe { NVIC::unmask(Irq::Uart1Rx) };
}

/// UART1 receive interrupt: drain the UART into the pipe.
pub fn on_uart1_rx_interrupt() {
    let uart = uart();
    uart.clear_rx_interrupt();
    while uart.rx_full() {
        if RX.free_capacity() == 0 {
            uart.set_rx_interrupt(false);
            RX_PAUSED.store(true, Ordering::Release);
            return;
        }
        if let Some(byte) = uart.try_read_byte() {
            // Cannot fail: there is room, and only this handler writes.
            let _ = RX.try_write(&[byte]);
        }
    }
}

/// Sends one encoded frame (which must end with its 0x00 delimiter).
pub fn send_frame(frame: &[u8]) {
    uart().write_all(frame);
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
    chunk: [u8; 32],
    chunk_pos: usize,
    chunk_len: usize,
}

impl Receiver {
    /// A receiver with nothing received yet.
    pub const fn new() -> Self {
        Self {
            frames: tenure::FrameReader::new(),
            chunk: [0; 32],
            chunk_pos: 0,
            chunk_len: 0,
        }
    }

    async fn next_byte(&mut self) -> u8 {
        if self.chunk_pos == self.chunk_len {
            self.chunk_len = RX.read(&mut self.chunk).await;
            self.chunk_pos = 0;
            if RX_PAUSED.swap(false, Ordering::AcqRel) {
                uart().set_rx_interrupt(true);
                // The byte left waiting in the UART raised no interrupt while
                // they were off: run the handler to pick it up.
                NVIC::pend(Irq::Uart1Rx);
            }
        }
        let byte = self.chunk[self.chunk_pos];
        self.chunk_pos += 1;
        byte
    }

    /// Waits for the next frame delimiter and returns the envelope it ended
    /// (COBS-decoded), an error for a broken or oversized frame, or `None`
    /// for an empty frame. Cancel-safe: partial frames stay in `self`.
    pub async fn next_frame(&mut self) -> Option<Result<&[u8], tenure::WireError>> {
        loop {
            let byte = self.next_byte().await;
            if byte == 0 {
                return self.frames.push(0);
            }
            // A non-zero byte never completes a frame.
            let _ = self.frames.push(byte);
        }
    }
}

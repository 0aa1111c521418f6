//! The frame link on UART1: COBS frames, each ended by a 0x00 byte.
//!
//! Receive is interrupt driven: the UART1 RX interrupt moves bytes into a
//! static pipe, and [`FrameReader`] cuts the byte stream into frames. When the
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

/// Cuts the received byte stream into frames of at most `N` bytes.
pub struct FrameReader<const N: usize> {
    frame: [u8; N],
    len: usize,
    /// The frame being received outgrew `frame`; skip to the next delimiter.
    overflowed: bool,
    chunk: [u8; 32],
    chunk_pos: usize,
    chunk_len: usize,
    /// Frames dropped because they were longer than `N`.
    pub oversized: u32,
}

impl<const N: usize> FrameReader<N> {
    /// A reader with nothing received yet.
    pub const fn new() -> Self {
        Self {
            frame: [0; N],
            len: 0,
            overflowed: false,
            chunk: [0; 32],
            chunk_pos: 0,
            chunk_len: 0,
            oversized: 0,
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

    /// Waits for the next frame and returns its bytes, delimiter included
    /// (the form COBS decoders take). Empty frames are skipped.
    pub async fn next(&mut self) -> &mut [u8] {
        loop {
            let byte = self.next_byte().await;
            if byte != 0 {
                if self.len < N {
                    self.frame[self.len] = byte;
                    self.len += 1;
                } else {
                    self.overflowed = true;
                }
                continue;
            }
            let len = core::mem::take(&mut self.len);
            if core::mem::take(&mut self.overflowed) {
                self.oversized += 1;
                continue;
            }
            if len == 0 || len == N {
                // No room left for the delimiter: too long as well.
                if len == N {
                    self.oversized += 1;
                }
                continue;
            }
            self.frame[len] = 0;
            return &mut self.frame[..=len];
        }
    }
}

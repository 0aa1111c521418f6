//! Interrupt-driven receive for a CMSDK UART.
//!
//! The RX interrupt moves bytes into a static pipe; a task reads them. When
//! the pipe is full the interrupt is switched off and the byte stays in the
//! UART; under QEMU that pushes back on the chardev (the TCP socket or
//! stdin) instead of losing data, and the reader switches it back on.

use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::peripheral::NVIC;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;

use crate::board::{CmsdkUart, Irq};

/// The receive side of one UART: `N` bytes of buffer. It holds no
/// addresses, so a static one is all zeros and costs no flash.
pub struct RxQueue<const N: usize> {
    pipe: Pipe<CriticalSectionRawMutex, N>,
    /// Set by the interrupt when it stopped receiving because `pipe` was full.
    paused: AtomicBool,
}

/// A UART and its receive interrupt line.
#[derive(Clone, Copy, Debug)]
pub struct Port {
    /// The UART.
    pub uart: CmsdkUart,
    /// Its receive interrupt.
    pub irq: Irq,
}

impl<const N: usize> RxQueue<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            pipe: Pipe::new(),
            paused: AtomicBool::new(false),
        }
    }

    /// Enables the port's UART and its receive interrupt.
    pub fn enable(&self, port: Port) {
        port.uart.enable();
        port.uart.set_rx_interrupt(true);
        // SAFETY: the handler only touches the pipe (lock-free for a single
        // writer) and its own UART.
        unsafe { NVIC::unmask(port.irq) };
    }

    /// The receive interrupt handler: drain the UART into the pipe.
    pub fn on_interrupt(&self, uart: CmsdkUart) {
        // Acknowledge first: a byte arriving after this raises it again.
        uart.clear_rx_interrupt();
        while uart.rx_full() {
            if self.pipe.free_capacity() == 0 {
                uart.set_rx_interrupt(false);
                self.paused.store(true, Ordering::Release);
                return;
            }
            if let Some(byte) = uart.try_read_byte() {
                // Cannot fail: there is room, and only this handler writes.
                let _ = self.pipe.try_write(&[byte]);
            }
        }
    }

    /// Waits for received bytes and copies up to `buf.len()` of them.
    /// Cancel-safe: bytes are only taken when the call completes.
    pub async fn read(&self, port: Port, buf: &mut [u8]) -> usize {
        let n = self.pipe.read(buf).await;
        if self.paused.swap(false, Ordering::AcqRel) {
            port.uart.set_rx_interrupt(true);
            // The byte left waiting in the UART raised no interrupt while
            // they were off: run the handler to pick it up.
            NVIC::pend(port.irq);
        }
        n
    }
}

/// Hands out received bytes one by one from small chunks.
pub struct ByteReader<const N: usize> {
    queue: &'static RxQueue<N>,
    port: Port,
    chunk: [u8; 32],
    pos: usize,
    len: usize,
}

impl<const N: usize> ByteReader<N> {
    /// A reader of `queue`, which `port` fills.
    pub const fn new(queue: &'static RxQueue<N>, port: Port) -> Self {
        Self {
            queue,
            port,
            chunk: [0; 32],
            pos: 0,
            len: 0,
        }
    }

    /// The next received byte. Cancel-safe.
    pub async fn next(&mut self) -> u8 {
        if self.pos == self.len {
            self.len = self.queue.read(self.port, &mut self.chunk).await;
            self.pos = 0;
        }
        let byte = self.chunk[self.pos];
        self.pos += 1;
        byte
    }
}

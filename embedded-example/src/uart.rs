//! Interrupt-driven receive for a CMSDK UART.
//!
//! The RX interrupt moves bytes into a static ring; a task reads them. When
//! the ring is full the interrupt is switched off and the byte stays in the
//! UART; under QEMU that pushes back on the chardev (the TCP socket or
//! stdin) instead of losing data, and the reader switches it back on.

use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use cortex_m::peripheral::NVIC;
use embassy_sync::waitqueue::AtomicWaker;

use crate::board::{CmsdkUart, Irq};

/// The receive side of one UART: a ring of `N` bytes (a power of two) that
/// the interrupt fills and one reader empties. It holds no addresses, so a
/// static one is all zeros and costs no flash. The work is done by
/// [`Ring`]'s functions over the ring as a slice, compiled once for every
/// `N`.
pub struct RxQueue<const N: usize> {
    ring: [AtomicU8; N],
    state: Ring,
}

/// The counters, the waker and the pause flag of an [`RxQueue`].
struct Ring {
    /// Bytes the interrupt has put in, ever (wrapping); only it writes this.
    head: AtomicUsize,
    /// Bytes the reader has taken, ever (wrapping); only it writes this.
    tail: AtomicUsize,
    /// The reader waiting for a byte.
    waker: AtomicWaker,
    /// Set by the interrupt when it stopped receiving because the ring was full.
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
        assert!(N.is_power_of_two());
        Self {
            ring: [const { AtomicU8::new(0) }; N],
            state: Ring {
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
                waker: AtomicWaker::new(),
                paused: AtomicBool::new(false),
            },
        }
    }

    /// Enables the port's UART and its receive interrupt.
    pub fn enable(&self, port: Port) {
        port.uart.enable();
        port.uart.set_rx_interrupt(true);
        // SAFETY: the handler only touches the ring (one writer, one reader)
        // and its own UART.
        unsafe { NVIC::unmask(port.irq) };
    }

    /// The receive interrupt handler: drain the UART into the ring.
    pub fn on_interrupt(&self, uart: CmsdkUart) {
        self.state.fill(&self.ring, uart);
    }

    /// Waits for the next received byte. Cancel-safe: a byte is only taken
    /// when the call completes. One reader per queue.
    pub async fn next(&self, port: Port) -> u8 {
        poll_fn(|cx| self.state.take(&self.ring, port, cx)).await
    }
}

impl Ring {
    #[inline(never)]
    fn fill(&self, ring: &[AtomicU8], uart: CmsdkUart) {
        // Acknowledge first: a byte arriving after this raises it again.
        uart.clear_rx_interrupt();
        while uart.rx_full() {
            let head = self.head.load(Ordering::Relaxed);
            if head.wrapping_sub(self.tail.load(Ordering::Acquire)) >= ring.len() {
                uart.set_rx_interrupt(false);
                self.paused.store(true, Ordering::Release);
                break;
            }
            let Some(byte) = uart.try_read_byte() else {
                break;
            };
            ring[head & (ring.len() - 1)].store(byte, Ordering::Relaxed);
            self.head.store(head.wrapping_add(1), Ordering::Release);
        }
        self.waker.wake();
    }

    #[inline(never)]
    fn take(&self, ring: &[AtomicU8], port: Port, cx: &mut Context<'_>) -> Poll<u8> {
        let tail = self.tail.load(Ordering::Relaxed);
        if self.head.load(Ordering::Acquire) == tail {
            self.waker.register(cx.waker());
            // A byte that came in before the registration woke no one.
            if self.head.load(Ordering::Acquire) == tail {
                return Poll::Pending;
            }
        }
        let byte = ring[tail & (ring.len() - 1)].load(Ordering::Relaxed);
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        if self.paused.swap(false, Ordering::AcqRel) {
            port.uart.set_rx_interrupt(true);
            // The byte left waiting in the UART raised no interrupt while
            // they were off: run the handler to pick it up.
            NVIC::pend(port.irq);
        }
        Poll::Ready(byte)
    }
}

/// Hands out the bytes of one queue, which `port` fills.
pub struct ByteReader<const N: usize> {
    queue: &'static RxQueue<N>,
    port: Port,
}

impl<const N: usize> ByteReader<N> {
    /// A reader of `queue`, which `port` fills.
    pub const fn new(queue: &'static RxQueue<N>, port: Port) -> Self {
        Self { queue, port }
    }

    /// The next received byte. Cancel-safe.
    pub async fn next(&mut self) -> u8 {
        self.queue.next(self.port).await
    }
}

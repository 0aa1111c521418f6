//! The MPS2 AN386 board as QEMU models it (`hw/arm/mps2.c`, AN386 is the
//! Cortex-M4 build of the AN385 FPGA image): clock, CMSDK APB UARTs and the
//! interrupt lines we use. Everything else here is board-independent.

use core::ptr::{read_volatile, write_volatile};

use cortex_m::interrupt::InterruptNumber;

/// The FPGA's main clock, which drives the CPU, SysTick (processor clock
/// source) and the APB UARTs.
pub const SYSCLK_HZ: u32 = 25_000_000;

/// Baud rate of both UARTs. QEMU ignores it, a real board does not.
pub const BAUD: u32 = 115_200;

/// UART0: human-readable text logs.
pub const UART0_BASE: usize = 0x4000_4000;
/// UART1: the frame link to the other nodes.
#[cfg(not(feature = "eth"))]
pub const UART1_BASE: usize = 0x4000_5000;

/// The LAN9118 Ethernet controller's register block (`hw/arm/mps2.c`).
#[cfg(feature = "eth")]
pub const LAN9118_BASE: usize = 0x4020_0000;

/// External interrupt numbers (NVIC lines) of the UARTs we use: on the AN385
/// and AN386 UART n raises RX on line 2n and TX on line 2n+1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Irq {
    /// UART0 receive (console commands).
    Uart0Rx = 0,
    /// UART1 receive (frames).
    #[cfg(not(feature = "eth"))]
    Uart1Rx = 2,
    /// The LAN9118 Ethernet controller (`hw/arm/mps2.c`: line 13 on the
    /// AN385/AN386 images).
    #[cfg(feature = "eth")]
    Ethernet = 13,
}

// SAFETY: the discriminants are valid external interrupt numbers of this board.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

// Register offsets of the CMSDK APB UART (ARM DDI0479C, 4.3).
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTSTATUS: usize = 0x0c;
const BAUDDIV: usize = 0x10;

// With defmt and Ethernet, nothing writes to a UART.
#[cfg_attr(all(feature = "defmt", feature = "eth"), allow(dead_code))]
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_RX_INT_EN: u32 = 1 << 3;
const INT_RX: u32 = 1 << 1;

/// A CMSDK APB UART: a one-byte transmit and a one-byte receive buffer.
#[derive(Clone, Copy, Debug)]
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// The UART whose registers start at `base`.
    pub const fn at(base: usize) -> Self {
        Self { base }
    }

    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base` is one of this board's UART register blocks and
        // `offset` one of its registers; reads have no side effect we rely on
        // being ordered other than through the volatile access itself.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Sets the baud rate and enables transmit and receive (no interrupts).
    pub fn enable(self) {
        self.write(BAUDDIV, SYSCLK_HZ / BAUD);
        self.write(CTRL, CTRL_TX_EN | CTRL_RX_EN);
    }

    /// Sends one byte, waiting while the transmit buffer is full.
    #[cfg_attr(all(feature = "defmt", feature = "eth"), allow(dead_code))]
    pub fn write_byte(self, byte: u8) {
        while self.read(STATE) & STATE_TX_FULL != 0 {}
        self.write(DATA, u32::from(byte));
    }

    /// Sends all of `bytes`.
    #[cfg_attr(all(feature = "defmt", feature = "eth"), allow(dead_code))]
    pub fn write_all(self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }

    /// Takes the received byte, if there is one.
    pub fn try_read_byte(self) -> Option<u8> {
        if self.read(STATE) & STATE_RX_FULL != 0 {
            Some(self.read(DATA) as u8)
        } else {
            None
        }
    }

    /// Whether a received byte waits in the receive buffer.
    pub fn rx_full(self) -> bool {
        self.read(STATE) & STATE_RX_FULL != 0
    }

    /// Turns the receive interrupt on or off.
    pub fn set_rx_interrupt(self, on: bool) {
        let ctrl = self.read(CTRL);
        let ctrl = if on {
            ctrl | CTRL_RX_INT_EN
        } else {
            ctrl & !CTRL_RX_INT_EN
        };
        self.write(CTRL, ctrl);
    }

    /// Acknowledges the receive interrupt. Do this before draining the
    /// buffer: a byte arriving after it raises the interrupt again.
    pub fn clear_rx_interrupt(self) {
        self.write(INTSTATUS, INT_RX);
    }
}

/// The text console on UART0 as a `core::fmt::Write`, for a debug build's
/// panic message (text lines go through `fmt::put`). Only thread-mode code
/// writes to UART0 (interrupt handlers never log), so lines do not interleave.
#[cfg(all(
    not(feature = "defmt"),
    any(debug_assertions, feature = "panic-message")
))]
pub struct Console;

#[cfg(all(
    not(feature = "defmt"),
    any(debug_assertions, feature = "panic-message")
))]
impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        CmsdkUart::at(UART0_BASE).write_all(s.as_bytes());
        Ok(())
    }
}

/// External interrupts on the AN385/AN386 FPGA image (QEMU `num-irq`).
const IRQ_COUNT: usize = 32;

unsafe extern "C" {
    /// cortex-m-rt's trampoline into [`DefaultHandler`], which receives the
    /// interrupt number.
    fn DefaultHandler();
}

/// The external-interrupt part of the vector table: every line goes to
/// `DefaultHandler`, which dispatches on the number. cortex-m-rt's generic
/// table has 240 entries (960 bytes of flash) for the same effect.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); IRQ_COUNT] = [DefaultHandler; IRQ_COUNT];

/// Every external interrupt lands here; `irqn` is its number.
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irqn: i16) {
    #[cfg(not(feature = "eth"))]
    if irqn == Irq::Uart1Rx as i16 {
        crate::link::on_rx_interrupt();
        return;
    }
    #[cfg(feature = "eth")]
    if irqn == Irq::Ethernet as i16 {
        crate::lan9118::on_interrupt(LAN9118_BASE);
        return;
    }
    if irqn == Irq::Uart0Rx as i16 {
        crate::console::on_rx_interrupt();
    }
}

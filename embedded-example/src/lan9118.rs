//! An `embassy-net-driver` for the SMSC LAN9118 Ethernet controller, as
//! QEMU's `mps2-an385`/`mps2-an386` boards emulate it (the FPGA images carry a
//! LAN9220, software compatible with the LAN9118 except for checksum offload).
//!
//! The controller is driven through its register FIFO interface only: frames
//! are copied word by word through the RX and TX data FIFO ports, their
//! lengths come from the RX status FIFO, and the receive interrupt (RX status
//! FIFO level) wakes the network task. There is no DMA.
//!
//! Register facts are from the *SMSC LAN9118 High Performance Single-Chip
//! 10/100 Non-PCI Ethernet Controller* datasheet, revision 1.5 (07-11-08):
//! chapter 5 "Register Description" (its direct address register map
//! for offsets and reset values, §5.3 "System Control and Status Registers"
//! for their bits, §5.4 "MAC Control and Status Registers" for the indirect
//! MAC registers, §5.5 "PHY Registers" for the PHY's basic status), §3.12
//! "TX Data Path Operation" (§3.12.2 "TX Command Format", TX command 'A' and
//! 'B') and §3.13 "RX Data Path Operation" (§3.13.3 "RX Status Format"). Each
//! constant below names its register (as the datasheet names it, under the
//! section given) and bits. Where the emulation differs from silicon (QEMU's
//! `hw/net/lan9118.c`), the comment says so.
//!
//! What the driver drops before the IP stack sees it, each counted in
//! [`STATS`]: frames with the MAC's error flag, frames that failed the
//! destination address filter (the MAC runs in receive-all mode, so filter
//! failures reach the driver flagged instead of vanishing uncounted), frames
//! shorter than the smallest ARP or IPv4/UDP frame or than their IPv4 header
//! says, frames too long for the buffer, frames of another EtherType or IP
//! protocol than ARP and UDP over IPv4, broadcasts that are not ARP, and ARP
//! broadcasts beyond a rate limit (a broadcast storm costs a bounded amount
//! of work). Nothing on the wire can make it panic: every length is checked
//! before it indexes a buffer.

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Context;

use cortex_m::peripheral::NVIC;
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

use crate::board::Irq;

// --- Direct address registers (chapter 5, direct address register map) ---

/// RX Data FIFO port (0x00-0x1C, any address in the range reads the FIFO).
const RX_DATA_FIFO: usize = 0x00;
/// TX Data FIFO port (0x20-0x3C).
const TX_DATA_FIFO: usize = 0x20;
/// RX Status FIFO port: reading pops one status word.
const RX_STATUS_FIFO: usize = 0x40;
/// Chip ID and revision (ID_REV, §5.3): bits 31:16 are the chip id, 0x0118.
const ID_REV: usize = 0x50;
/// Interrupt configuration (IRQ_CFG, §5.3).
const IRQ_CFG: usize = 0x54;
/// Interrupt status (INT_STS, §5.3): write 1 to clear a bit.
const INT_STS: usize = 0x58;
/// Interrupt enable (INT_EN, §5.3).
const INT_EN: usize = 0x5C;
/// Byte order test (BYTE_TEST, §5.3): always reads 0x8765_4321.
const BYTE_TEST: usize = 0x64;
/// Receive configuration (RX_CFG, §5.3).
const RX_CFG: usize = 0x6C;
/// Transmit configuration (TX_CFG, §5.3).
const TX_CFG: usize = 0x70;
/// Hardware configuration (HW_CFG, §5.3).
const HW_CFG: usize = 0x74;
/// RX FIFO information (RX_FIFO_INF, §5.3).
const RX_FIFO_INF: usize = 0x7C;
/// TX FIFO information (TX_FIFO_INF, §5.3).
const TX_FIFO_INF: usize = 0x80;
/// Power management control (PMT_CTRL, §5.3).
const PMT_CTRL: usize = 0x84;
/// Receiver dropped frames counter (RX_DROP, §5.3): frames lost for lack
/// of FIFO room; cleared on read. (QEMU always reads 0.)
const RX_DROP: usize = 0xA0;
/// MAC CSR synchronizer command (MAC_CSR_CMD, §5.3).
const MAC_CSR_CMD: usize = 0xA4;
/// MAC CSR synchronizer data (MAC_CSR_DATA, §5.3).
const MAC_CSR_DATA: usize = 0xA8;

/// BYTE_TEST's fixed value.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;
/// ID_REV chip id field of a LAN9118.
const CHIP_ID_9118: u32 = 0x0118;
/// ID_REV chip id field of a LAN9220 (what an MPS2 FPGA board carries).
const CHIP_ID_9220: u32 = 0x9220;

/// IRQ_CFG bit 8 IRQ_EN: the IRQ pin follows INT_STS & INT_EN.
const IRQ_CFG_IRQ_EN: u32 = 1 << 8;
/// IRQ_CFG bit 4 IRQ_POL: active high.
const IRQ_CFG_IRQ_POL: u32 = 1 << 4;
/// IRQ_CFG bit 0 IRQ_TYPE: push-pull output (open drain otherwise).
const IRQ_CFG_IRQ_TYPE: u32 = 1 << 0;

/// INT_STS/INT_EN bit 3 RSFL: RX status FIFO level above FIFO_INT's RX
/// status level (0 after reset, so: at least one frame waiting).
const INT_RSFL: u32 = 1 << 3;
/// INT_STS/INT_EN bit 6 RXDF: a received frame was dropped (RX_DROP
/// counted it); the interrupt wakes the task, which adds RX_DROP to
/// [`STATS`].
const INT_RXDF: u32 = 1 << 6;

/// HW_CFG bit 0 SRST: soft reset; reads 1 until the reset has completed.
const HW_CFG_SRST: u32 = 1 << 0;
/// PMT_CTRL bit 0 READY: the device is ready to be accessed.
const PMT_CTRL_READY: u32 = 1 << 0;

/// TX_CFG bit 1 TX_ON: enable the transmitter.
const TX_CFG_TX_ON: u32 = 1 << 1;
/// TX_CFG bit 2 TXSAO: TX status allow overrun. The driver never reads TX
/// status; without this bit a full TX status FIFO stops transmission.
const TX_CFG_TXSAO: u32 = 1 << 2;

/// RX_FIFO_INF bits 23:16 RXSUSED: RX status FIFO used space (frames).
const RX_FIFO_INF_RXSUSED_SHIFT: u32 = 16;
/// TX_FIFO_INF bits 15:0 TDFREE: TX data FIFO free space in bytes.
const TX_FIFO_INF_TDFREE_MASK: u32 = 0xFFFF;

/// MAC_CSR_CMD bit 31 CSR Busy: set to start, reads 1 until done.
const MAC_CSR_BUSY: u32 = 1 << 31;
/// MAC_CSR_CMD bit 30 R/nW: 1 reads the MAC register.
const MAC_CSR_READ: u32 = 1 << 30;

// --- MAC registers (§5.4, index in MAC_CSR_CMD bits 7:0) ---

/// MAC control register (MAC_CR, §5.4).
const MAC_CR: u32 = 1;
/// MAC address high: bytes 4 and 5 in bits 15:0 (ADDRH, §5.4).
const MAC_ADDRH: u32 = 2;
/// MAC address low: bytes 0..=3 in bits 31:0 (ADDRL, §5.4).
const MAC_ADDRL: u32 = 3;
/// MII access (MII_ACC, §5.4): PHY address 15:11, register 10:6, bit 1
/// MIIWnR, bit 0 MIIBZY.
const MAC_MII_ACC: u32 = 6;
/// MII data (MII_DATA, §5.4).
const MAC_MII_DATA: u32 = 7;

/// MAC_CR bit 31 RXALL: receive all frames, filter failures flagged in the
/// RX status instead of discarded.
const MAC_CR_RXALL: u32 = 1 << 31;
/// MAC_CR bit 20 FDPX: full duplex.
const MAC_CR_FDPX: u32 = 1 << 20;
/// MAC_CR bit 3 TXEN: transmitter enable.
const MAC_CR_TXEN: u32 = 1 << 3;
/// MAC_CR bit 2 RXEN: receiver enable.
const MAC_CR_RXEN: u32 = 1 << 2;

/// The internal PHY's MII address (§5.5: the internal PHY is at address 1).
const PHY_ADDR: u32 = 1;
/// PHY basic status register (§5.5).
const PHY_BSR: u32 = 1;
/// PHY basic status bit 2: link up.
const PHY_BSR_LINK: u32 = 1 << 2;
/// MII_ACC bit 0 MIIBZY: written 1 to start an access, reads 0 when done.
const MII_BUSY: u32 = 1 << 0;

// --- TX command words (§3.12.2, TX command 'A' and 'B') ---

/// Command A bit 13: first segment of the frame.
const TX_CMD_A_FIRST: u32 = 1 << 13;
/// Command A bit 12: last segment of the frame.
const TX_CMD_A_LAST: u32 = 1 << 12;
/// Command A bits 10:0 buffer size; command B bits 10:0 frame length, bits
/// 31:16 a packet tag (returned in the TX status).
const TX_LEN_MASK: u32 = 0x7FF;

// --- RX status word (§3.13.3, "RX Status Format") ---

/// Bit 30: the frame failed the destination address filter.
const RX_STS_FILTER_FAIL: u32 = 1 << 30;
/// Bits 29:16: frame length in bytes, the 4-byte CRC included.
const RX_STS_LEN_SHIFT: u32 = 16;
const RX_STS_LEN_MASK: u32 = 0x3FFF;
/// Bit 15: error status (OR of runt, too long, collision, CRC error).
const RX_STS_ERROR: u32 = 1 << 15;

/// The frame check sequence the MAC leaves at the end of each frame.
const CRC_LEN: usize = 4;

/// Ethernet header: destination, source, EtherType.
const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
/// The IPv4 protocol number of UDP.
const IP_PROTO_UDP: u8 = 17;
/// The shortest frame the node has a use for: an ARP packet (28 bytes) or an
/// IPv4 header (20) and a UDP header (8) after the Ethernet header.
pub const MIN_FRAME: usize = ETH_HEADER + 28;

/// Largest frame the driver handles (header included, CRC excluded): the
/// minimum datagram every IPv4 host must accept (576 bytes) after the
/// Ethernet header, or a frame holding the largest sealed packet if that
/// is more. The node's datagrams are far smaller; a longer frame is dropped
/// and counted, never truncated.
pub const MAX_FRAME: usize = {
    let sealed = ETH_HEADER + 20 + 8 + tenure::MAX_SEALED_SIZE;
    let floor = ETH_HEADER + 576;
    let n = if sealed > floor { sealed } else { floor };
    // Whole FIFO words.
    (n + 3) & !3
};

/// Broadcast frames accepted per [`STORM_WINDOW_US`]; the rest of a window's
/// broadcasts are dropped and counted as a storm. A node sees a handful of
/// ARP broadcasts per second in normal operation.
const STORM_LIMIT: u32 = 32;
/// The broadcast rate limit's window.
const STORM_WINDOW_US: u64 = 100_000;

/// Frame counters, readable from any task (the network task updates them).
pub struct Stats {
    /// Frames handed to the IP stack.
    pub rx_frames: AtomicU32,
    /// Frames the MAC flagged with an error (CRC, runt, too long, collision).
    pub rx_errors: AtomicU32,
    /// Frames that failed the destination MAC address filter.
    pub wrong_mac: AtomicU32,
    /// Frames shorter than [`MIN_FRAME`], and IPv4 packets cut off before
    /// the length their header gives.
    pub short: AtomicU32,
    /// Frames longer than [`MAX_FRAME`].
    pub too_long: AtomicU32,
    /// Frames of an EtherType other than IPv4 and ARP, broadcasts that are
    /// not ARP, and IPv4 packets that are not UDP (or not IPv4 at all).
    pub bad_type: AtomicU32,
    /// Broadcasts over the rate limit.
    pub storm: AtomicU32,
    /// Frames the controller lost for lack of FIFO room (RX_DROP).
    pub overrun: AtomicU32,
    /// Frames sent.
    pub tx_frames: AtomicU32,
    /// Frames not sent: the TX FIFO stayed full, or the frame was too long.
    pub tx_dropped: AtomicU32,
}

/// The driver's counters.
pub static STATS: Stats = Stats {
    rx_frames: AtomicU32::new(0),
    rx_errors: AtomicU32::new(0),
    wrong_mac: AtomicU32::new(0),
    short: AtomicU32::new(0),
    too_long: AtomicU32::new(0),
    bad_type: AtomicU32::new(0),
    storm: AtomicU32::new(0),
    overrun: AtomicU32::new(0),
    tx_frames: AtomicU32::new(0),
    tx_dropped: AtomicU32::new(0),
};

fn count(counter: &AtomicU32) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Woken by the interrupt when frames are waiting.
static RX_WAKER: AtomicWaker = AtomicWaker::new();

/// Why the controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InitError {
    /// BYTE_TEST did not read back its fixed value: no controller at this
    /// address, or the bus is misconfigured.
    NoDevice,
    /// ID_REV names another chip.
    UnknownChip,
    /// The soft reset or a MAC/PHY register access did not complete.
    Timeout,
}

#[cfg(not(feature = "defmt"))]
impl crate::fmt::Show for InitError {
    fn show(&self) {
        crate::fmt::put(match self {
            Self::NoDevice => b"no LAN9118 (BYTE_TEST mismatch)",
            Self::UnknownChip => b"not a LAN9118 (ID_REV)",
            Self::Timeout => b"LAN9118 did not answer (reset, MAC or PHY)",
        });
    }
}

/// Polls of a busy bit before giving up (each is one slow bus access).
const SPIN_LIMIT: u32 = 100_000;

/// The controller's register block.
#[derive(Clone, Copy, Debug)]
struct Regs {
    base: usize,
}

impl Regs {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base` is the controller's register block (board.rs) and
        // `offset` one of its registers.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn spin_until(self, mut done: impl FnMut(Self) -> bool) -> Result<(), InitError> {
        for _ in 0..SPIN_LIMIT {
            if done(self) {
                return Ok(());
            }
        }
        Err(InitError::Timeout)
    }

    /// Reads MAC register `index` through MAC_CSR_CMD/MAC_CSR_DATA.
    fn mac_read(self, index: u32) -> Result<u32, InitError> {
        self.write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
        self.spin_until(|r| r.read(MAC_CSR_CMD) & MAC_CSR_BUSY == 0)?;
        Ok(self.read(MAC_CSR_DATA))
    }

    /// Writes MAC register `index`.
    fn mac_write(self, index: u32, value: u32) -> Result<(), InitError> {
        self.write(MAC_CSR_DATA, value);
        self.write(MAC_CSR_CMD, MAC_CSR_BUSY | index);
        self.spin_until(|r| r.read(MAC_CSR_CMD) & MAC_CSR_BUSY == 0)
    }

    /// Reads PHY register `reg` through MII_ACC/MII_DATA.
    fn phy_read(self, reg: u32) -> Result<u32, InitError> {
        self.mac_write(MAC_MII_ACC, (PHY_ADDR << 11) | (reg << 6) | MII_BUSY)?;
        for _ in 0..SPIN_LIMIT {
            if self.mac_read(MAC_MII_ACC)? & MII_BUSY == 0 {
                return Ok(self.mac_read(MAC_MII_DATA)? & 0xFFFF);
            }
        }
        Err(InitError::Timeout)
    }

    /// Frames waiting in the RX status FIFO.
    fn frames_waiting(self) -> u32 {
        (self.read(RX_FIFO_INF) >> RX_FIFO_INF_RXSUSED_SHIFT) & 0xFF
    }

    /// Adds the controller's dropped-frame counter to [`STATS`].
    fn collect_drops(self) {
        let dropped = self.read(RX_DROP);
        if dropped != 0 {
            STATS.overrun.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

/// The receive side: one frame's buffer and the broadcast rate window.
struct Rx {
    buf: [u8; MAX_FRAME],
    /// Start of the current broadcast rate window (µs) and broadcasts in it.
    storm_window: u64,
    storm_count: u32,
}

impl Rx {
    /// Pops the next frame into `buf`; its length if it is one to hand to
    /// the IP stack, `None` if it was dropped (and counted).
    fn pop_frame(&mut self, regs: Regs, now_us: u64) -> Option<usize> {
        let status = regs.read(RX_STATUS_FIFO);
        let len = ((status >> RX_STS_LEN_SHIFT) & RX_STS_LEN_MASK) as usize;
        // The frame's data, CRC included, in whole words: always read out
        // all of it, so the data FIFO stays in step with the status FIFO.
        for i in 0..len.div_ceil(4) {
            let word = regs.read(RX_DATA_FIFO).to_le_bytes();
            if let Some(slot) = self.buf.get_mut(i * 4..i * 4 + 4) {
                slot.copy_from_slice(&word);
            }
        }
        let frame = len.saturating_sub(CRC_LEN);
        let drop = |counter: &AtomicU32| {
            count(counter);
            None
        };
        if status & RX_STS_ERROR != 0 {
            return drop(&STATS.rx_errors);
        }
        if status & RX_STS_FILTER_FAIL != 0 {
            return drop(&STATS.wrong_mac);
        }
        if frame < MIN_FRAME {
            return drop(&STATS.short);
        }
        if frame > MAX_FRAME {
            return drop(&STATS.too_long);
        }
        let ethertype = u16::from_be_bytes([self.buf[12], self.buf[13]]);
        let broadcast = self.buf[..6] == [0xFF; 6];
        match ethertype {
            ETHERTYPE_ARP => {}
            ETHERTYPE_IPV4 if !broadcast => {
                // The MAC (or the emulator) pads short frames to 60 bytes, so
                // a cut-off packet is found by its header: the IPv4 total
                // length must fit in the frame. Only UDP is spoken here.
                let version_ihl = self.buf[ETH_HEADER];
                let total = usize::from(u16::from_be_bytes([
                    self.buf[ETH_HEADER + 2],
                    self.buf[ETH_HEADER + 3],
                ]));
                let protocol = self.buf[ETH_HEADER + 9];
                if version_ihl >> 4 != 4 || version_ihl & 0xF < 5 || protocol != IP_PROTO_UDP {
                    return drop(&STATS.bad_type);
                }
                if ETH_HEADER + total > frame || total < 20 + 8 {
                    return drop(&STATS.short);
                }
            }
            _ => return drop(&STATS.bad_type),
        }
        if broadcast {
            if now_us.wrapping_sub(self.storm_window) >= STORM_WINDOW_US {
                self.storm_window = now_us;
                self.storm_count = 0;
            }
            self.storm_count += 1;
            if self.storm_count > STORM_LIMIT {
                return drop(&STATS.storm);
            }
        }
        count(&STATS.rx_frames);
        Some(frame)
    }
}

/// The transmit side: one frame's buffer and the packet tag.
struct Tx {
    buf: [u8; MAX_FRAME],
    tag: u16,
}

impl Tx {
    /// Writes the first `len` bytes of `buf` into the TX data FIFO as one
    /// single-segment frame (the MAC pads short frames and adds the CRC).
    fn push_frame(&mut self, regs: Regs, len: usize) {
        // Command A, command B and the data words (§3.12.5: TDFREE counts
        // bytes of the TX data FIFO).
        let needed = (len.div_ceil(4) + 2) * 4;
        let room =
            regs.spin_until(|r| (r.read(TX_FIFO_INF) & TX_FIFO_INF_TDFREE_MASK) as usize >= needed);
        let Some(data) = self.buf.get(..len) else {
            count(&STATS.tx_dropped);
            return;
        };
        if room.is_err() {
            count(&STATS.tx_dropped);
            return;
        }
        self.tag = self.tag.wrapping_add(1);
        let len32 = len as u32 & TX_LEN_MASK;
        regs.write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len32);
        regs.write(TX_DATA_FIFO, u32::from(self.tag) << 16 | len32);
        for chunk in data.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            regs.write(TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        count(&STATS.tx_frames);
    }
}

/// The controller with one receive and one transmit buffer: an
/// [`embassy_net_driver::Driver`].
pub struct Lan9118 {
    regs: Regs,
    mac: [u8; 6],
    rx: Rx,
    tx: Tx,
}

impl Lan9118 {
    /// Resets and configures the controller at `base`: MAC receive-all mode
    /// with hardware filter results, transmitter and receiver on, receive
    /// interrupt on the board's line. The MAC address is the one the
    /// controller loaded at reset (from its EEPROM; QEMU: `-nic ...,mac=`).
    pub fn new(base: usize) -> Result<Self, InitError> {
        let regs = Regs { base };
        if regs.read(BYTE_TEST) != BYTE_TEST_VALUE {
            return Err(InitError::NoDevice);
        }
        let chip = regs.read(ID_REV) >> 16;
        if chip != CHIP_ID_9118 && chip != CHIP_ID_9220 {
            return Err(InitError::UnknownChip);
        }
        regs.write(HW_CFG, HW_CFG_SRST);
        regs.spin_until(|r| r.read(HW_CFG) & HW_CFG_SRST == 0)?;
        regs.spin_until(|r| r.read(PMT_CTRL) & PMT_CTRL_READY != 0)?;

        let [a, b, c, d] = regs.mac_read(MAC_ADDRL)?.to_le_bytes();
        let [e, f, _, _] = regs.mac_read(MAC_ADDRH)?.to_le_bytes();

        // Wait (bounded) for the PHY to report a link, as after a cable is
        // plugged in; QEMU's link is up from the start.
        let _ = regs.spin_until(|r| r.phy_read(PHY_BSR).is_ok_and(|s| s & PHY_BSR_LINK != 0));

        // 4-byte end alignment, no offset (RX_CFG reset value); TX on,
        // status overrun allowed.
        regs.write(RX_CFG, 0);
        regs.write(TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        regs.mac_write(
            MAC_CR,
            MAC_CR_RXALL | MAC_CR_FDPX | MAC_CR_TXEN | MAC_CR_RXEN,
        )?;

        regs.write(INT_STS, u32::MAX);
        regs.write(INT_EN, INT_RSFL | INT_RXDF);
        regs.write(IRQ_CFG, IRQ_CFG_IRQ_EN | IRQ_CFG_IRQ_POL | IRQ_CFG_IRQ_TYPE);
        // SAFETY: the handler only touches the controller's INT_STS and an
        // atomic waker.
        unsafe { NVIC::unmask(Irq::Ethernet) };
        Ok(Self {
            regs,
            mac: [a, b, c, d, e, f],
            rx: Rx {
                buf: [0; MAX_FRAME],
                storm_window: 0,
                storm_count: 0,
            },
            tx: Tx {
                buf: [0; MAX_FRAME],
                tag: 0,
            },
        })
    }

    /// The station address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
}

/// The Ethernet interrupt: acknowledges it and wakes the network task, which
/// empties the FIFOs.
pub fn on_interrupt(base: usize) {
    // SAFETY: `base` is the controller's register block; INT_STS is
    // write-one-to-clear, so this touches nothing the task relies on.
    unsafe {
        let status = read_volatile((base + INT_STS) as *const u32);
        write_volatile((base + INT_STS) as *mut u32, status);
    }
    RX_WAKER.wake();
}

/// Hands out the frame in the receive buffer.
pub struct RxToken<'a> {
    frame: &'a mut [u8],
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Sends one frame through the TX data FIFO.
pub struct TxToken<'a> {
    regs: Regs,
    tx: &'a mut Tx,
}

impl embassy_net_driver::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // The stack never asks for more than the MTU (`capabilities`); if it
        // did, the frame would be built short and is not sent (counted).
        let fits = len <= MAX_FRAME;
        let r = f(&mut self.tx.buf[..len.min(MAX_FRAME)]);
        if fits {
            self.tx.push_frame(self.regs, len);
        } else {
            count(&STATS.tx_dropped);
        }
        r
    }
}

fn now_us() -> u64 {
    embassy_time::Instant::now().as_micros()
}

/// Frames looked at per call before yielding to other tasks.
const RX_BATCH: u32 = 16;

impl embassy_net_driver::Driver for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, cx: &mut Context) -> Option<(RxToken<'_>, TxToken<'_>)> {
        // Register before looking, so a frame arriving in between wakes us.
        RX_WAKER.register(cx.waker());
        self.regs.collect_drops();
        let now = now_us();
        for _ in 0..RX_BATCH {
            if self.regs.frames_waiting() == 0 {
                return None;
            }
            if let Some(len) = self.rx.pop_frame(self.regs, now) {
                let rx = RxToken {
                    frame: &mut self.rx.buf[..len],
                };
                let tx = TxToken {
                    regs: self.regs,
                    tx: &mut self.tx,
                };
                return Some((rx, tx));
            }
        }
        // A run of dropped frames (a flood): let other tasks run, then come
        // back for the rest.
        cx.waker().wake_by_ref();
        None
    }

    fn transmit(&mut self, _cx: &mut Context) -> Option<TxToken<'_>> {
        Some(TxToken {
            regs: self.regs,
            tx: &mut self.tx,
        })
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        // Checked once at start-up (`new`); the emulated link never drops.
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

//! Commands typed on UART0 (under QEMU: the node's standard input), one per
//! line: `release`, `handover N`, `campaign`, `stats`. Each is answered with
//! one line, `EVENT command name=<name> result=ok` or
//! `EVENT command name=<name> result=refused reason=<why>`; a line that is no
//! command gets `EVENT command name=unknown result=refused reason=unknown`.

use crate::board::{CmsdkUart, Irq, UART0_BASE};
use crate::uart::{ByteReader, Port, RxQueue};

const RX_BUFFER: usize = 64;
/// Longest command line accepted; longer lines are refused whole.
const MAX_LINE: usize = 32;

static RX: RxQueue<RX_BUFFER> = RxQueue::new();
const PORT: Port = Port {
    uart: CmsdkUart::at(UART0_BASE),
    irq: Irq::Uart0Rx,
};

/// Enables UART0's receive interrupt (transmit is already on for logs).
pub fn init() {
    RX.enable(PORT);
}

/// UART0 receive interrupt.
pub fn on_rx_interrupt() {
    RX.on_interrupt(PORT.uart);
}

/// A command for the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Give up mastership now (`Node::release`).
    Release,
    /// Give up mastership in favour of this node (`Node::hand_over`).
    HandOver(u16),
    /// Campaign now if no master is live (`Node::campaign`).
    Campaign,
    /// Print the counters now.
    Stats,
}

impl Command {
    /// The command's name in `EVENT command` lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::HandOver(_) => "handover",
            Self::Campaign => "campaign",
            Self::Stats => "stats",
        }
    }

    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_ascii_whitespace();
        let command = match (words.next()?, words.next()) {
            ("release", None) => Self::Release,
            ("campaign", None) => Self::Campaign,
            ("stats", None) => Self::Stats,
            ("handover", Some(id)) => {
                Self::HandOver(u16::try_from(crate::cmdline::number(id)?).ok()?)
            }
            _ => return None,
        };
        words.next().is_none().then_some(command)
    }
}

/// Assembles lines from UART0 and parses them.
pub struct CommandReader {
    bytes: ByteReader<RX_BUFFER>,
    line: [u8; MAX_LINE],
    len: usize,
    too_long: bool,
}

impl CommandReader {
    /// A reader with no partial line.
    pub const fn new() -> Self {
        Self {
            bytes: ByteReader::new(&RX, PORT),
            line: [0; MAX_LINE],
            len: 0,
            too_long: false,
        }
    }

    /// The next non-empty line as a command, or `None` if it is not one.
    /// Cancel-safe: a partial line stays in `self`.
    pub async fn next(&mut self) -> Option<Command> {
        loop {
            let byte = self.bytes.next().await;
            if byte != b'\n' && byte != b'\r' {
                if self.len < MAX_LINE {
                    self.line[self.len] = byte;
                    self.len += 1;
                } else {
                    self.too_long = true;
                }
                continue;
            }
            let len = core::mem::take(&mut self.len);
            if core::mem::take(&mut self.too_long) {
                return None;
            }
            let line = crate::cmdline::ascii(&self.line[..len]).unwrap_or("?");
            if line.trim_ascii().is_empty() {
                continue;
            }
            return Command::parse(line);
        }
    }
}

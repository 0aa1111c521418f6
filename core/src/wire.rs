//! The wire format: one [`Message`] enum behind a [`Header`], in postcard's encoding
//! (read and written by a hand codec that gives postcard's bytes and errors).
//!
//! Every datagram or frame is one [`Packet`]. [`decode`] treats its input as hostile: it
//! returns an error for anything it cannot read and never panics. Semantic checks
//! (cluster id, membership, sane ballots) happen in [`Node::handle_message`], which drops
//! and counts what fails them.
//!
//! For byte streams (UARTs, TCP), frames are COBS-encoded and end with a zero byte:
//! [`frame`] writes one, [`FrameReader`] splits a stream back into frames.
//!
//! Packets normally travel sealed (with an authentication tag): see [`crate::auth`].
//!
//! [`Node::handle_message`]: crate::Node::handle_message

use core::fmt;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::acceptor::Proposal;
use crate::ballot::Ballot;
use crate::config::{Member, NodeId, Renewal};
use crate::election::{ElectionState, Op};
use crate::time::Duration;

/// The protocol version this build speaks: 5 (lease renewals, membership changes
/// through the register, rejoin after a lost record, and SipHash-2-4-128 frame tags,
/// which replaced protocol 4's keyed BLAKE2s; see `docs/algorithm.md`).
/// Packets of any other version are dropped ([`WireError::Protocol`]) before the rest is
/// read: a mixed cluster is refused, never run.
pub const PROTOCOL_VERSION: u8 = 5;

/// Sent with every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// The sender's [`PROTOCOL_VERSION`].
    pub protocol: u8,
    /// The sender's cluster id.
    pub cluster: u32,
    /// The sender.
    pub from: NodeId,
    /// The sender's renewal mode: members of one cluster must agree.
    pub renewal: Renewal,
}

/// Every message of the protocol. `instance` is the Paxos instance a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message {
    /// Phase 1a: asks voters to promise `ballot`.
    Prepare {
        /// Instance.
        instance: u64,
        /// Ballot asked for.
        ballot: Ballot,
    },
    /// Phase 1b: promised, with the proposal accepted so far in this instance.
    Promise {
        /// Instance.
        instance: u64,
        /// Ballot promised.
        ballot: Ballot,
        /// The highest proposal this voter accepted in the instance.
        accepted: Option<Proposal>,
        /// How long ago `accepted` was first sent, as far as this voter can tell (its
        /// own time since it accepted, plus the age it arrived with). Zero in
        /// [`Renewal::Logged`].
        age: Duration,
    },
    /// Phase 2a: asks voters to accept `op` under `ballot`.
    Accept {
        /// Instance.
        instance: u64,
        /// Ballot.
        ballot: Ballot,
        /// The value.
        op: Op,
        /// For a value carried forward from a Promise: its age (see
        /// [`Message::Promise`]) plus the proposer's time since it received that Promise.
        /// Zero for a fresh op and in [`Renewal::Logged`].
        age: Duration,
    },
    /// Phase 2b: accepted.
    Accepted {
        /// Instance.
        instance: u64,
        /// Ballot accepted.
        ballot: Ballot,
    },
    /// A Prepare or Accept refused, carrying the higher promise.
    Reject {
        /// Instance.
        instance: u64,
        /// The refused ballot.
        ballot: Ballot,
        /// The voter's promise.
        promised: Ballot,
    },
    /// The proposal accepted under `ballot` in `instance` is chosen.
    Commit {
        /// Instance.
        instance: u64,
        /// Ballot whose proposal was chosen.
        ballot: Ballot,
    },
    /// The op chosen in `instance` (answer to a node that is one instance behind).
    Chosen {
        /// Instance.
        instance: u64,
        /// The chosen op.
        op: Op,
    },
    /// "I am at `next_instance`; send me what I miss."
    CatchUp {
        /// The sender's first undecided instance.
        next_instance: u64,
    },
    /// The election state after every instance below `next_instance`.
    Snapshot {
        /// First undecided instance.
        next_instance: u64,
        /// The state.
        state: ElectionState,
    },
    /// [`Renewal::Lease`]: the master asks voters to guard its term for one more lease.
    /// Also says that instance `term` was chosen under `ballot`.
    Renew {
        /// The master's prepared ballot.
        ballot: Ballot,
        /// The instance of the op that began the term (its fencing token).
        term: u64,
        /// The round: strictly increasing per ballot.
        seq: u32,
    },
    /// [`Renewal::Lease`]: the answer to a [`Message::Renew`], echoing it; the voter now
    /// guards the master for a lease on its own clock.
    Renewed {
        /// Echoed.
        ballot: Ballot,
        /// Echoed.
        term: u64,
        /// Echoed.
        seq: u32,
    },
    /// "Send me the member list the change chosen in `version` made, from position
    /// `start`" (a node that installed a snapshot across a change it did not apply).
    MembersQuery {
        /// The instance of the change.
        version: u64,
        /// The first position wanted.
        start: u8,
    },
    /// Part of the member list the change chosen in `version` made.
    MembersPart {
        /// The instance of the change.
        version: u64,
        /// Members in the whole list.
        total: u8,
        /// The position of `part[0]`.
        start: u8,
        /// Up to [`MEMBERS_PER_PART`] members, in list order.
        part: [Option<Member>; MEMBERS_PER_PART],
    },
    /// "What instance are you at, and what is your promise?" (a node rejoining after a
    /// lost record, `docs/algorithm.md` §10).
    RejoinQuery {
        /// Echoed by the answer.
        nonce: u32,
    },
    /// A voting member's answer to a [`Message::RejoinQuery`].
    RejoinReply {
        /// The query's.
        nonce: u32,
        /// The sender's first undecided instance.
        instance: u64,
        /// The sender's promise.
        promised: Ballot,
    },
}

/// Members carried by one [`Message::MembersPart`].
pub const MEMBERS_PER_PART: usize = 4;

impl Message {
    /// The message's kind, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Reject { .. } => "reject",
            Message::Commit { .. } => "commit",
            Message::Chosen { .. } => "chosen",
            Message::CatchUp { .. } => "catch_up",
            Message::Snapshot { .. } => "snapshot",
            Message::Renew { .. } => "renew",
            Message::Renewed { .. } => "renewed",
            Message::MembersQuery { .. } => "members_query",
            Message::MembersPart { .. } => "members_part",
            Message::RejoinQuery { .. } => "rejoin_query",
            Message::RejoinReply { .. } => "rejoin_reply",
        }
    }
}

/// One line per message, for logs and traces: `Accept(i12 b3.n2 BeMaster(n2 at v11 #1.4))`.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Prepare { instance, ballot } => write!(f, "Prepare(i{instance} b{ballot})"),
            Message::Promise {
                instance,
                ballot,
                accepted,
                age,
            } => {
                write!(f, "Promise(i{instance} b{ballot} accepted ")?;
                match accepted {
                    Some(p) if *age > Duration::ZERO => {
                        write!(f, "{}:{} age {age})", p.ballot, p.op)
                    }
                    Some(p) => write!(f, "{}:{})", p.ballot, p.op),
                    None => write!(f, "-)"),
                }
            }
            Message::Accept {
                instance,
                ballot,
                op,
                age,
            } => {
                write!(f, "Accept(i{instance} b{ballot} {op}")?;
                if *age > Duration::ZERO {
                    write!(f, " age {age}")?;
                }
                write!(f, ")")
            }
            Message::Accepted { instance, ballot } => write!(f, "Accepted(i{instance} b{ballot})"),
            Message::Reject {
                instance,
                ballot,
                promised,
            } => write!(f, "Reject(i{instance} b{ballot} promised {promised})"),
            Message::Commit { instance, ballot } => write!(f, "Commit(i{instance} b{ballot})"),
            Message::Chosen { instance, op } => write!(f, "Chosen(i{instance} {op})"),
            Message::CatchUp { next_instance } => write!(f, "CatchUp(next i{next_instance})"),
            Message::Snapshot {
                next_instance,
                state,
            } => write!(f, "Snapshot(next i{next_instance} {state})"),
            Message::Renew { ballot, term, seq } => {
                write!(f, "Renew(b{ballot} term i{term} seq {seq})")
            }
            Message::Renewed { ballot, term, seq } => {
                write!(f, "Renewed(b{ballot} term i{term} seq {seq})")
            }
            Message::MembersQuery { version, start } => {
                write!(f, "MembersQuery(v{version} from {start})")
            }
            Message::MembersPart {
                version,
                total,
                start,
                part,
            } => {
                write!(f, "MembersPart(v{version} {start}/{total}")?;
                for m in part.iter().flatten() {
                    write!(f, " n{}", m.id)?;
                }
                write!(f, ")")
            }
            // (No formatting of their own: small parts feel every format string.)
            Message::RejoinQuery { .. } | Message::RejoinReply { .. } => f.write_str(self.kind()),
        }
    }
}

/// A header and a message: the unit that travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Packet {
    /// Who sent it, in which cluster, speaking which protocol.
    pub header: Header,
    /// What it says.
    pub message: Message,
}

/// The largest encoded [`Packet`], in bytes: a buffer this long always suffices.
pub const MAX_PACKET_SIZE: usize = Packet::POSTCARD_MAX_SIZE;

/// The largest COBS frame of a sealed packet (with its tag), including the terminating
/// zero byte.
pub const MAX_FRAME_SIZE: usize = MAX_STREAM_FRAME + 1;

/// The largest COBS-encoded sealed packet without its terminator.
pub const MAX_STREAM_FRAME: usize =
    crate::auth::MAX_SEALED_SIZE + crate::auth::MAX_SEALED_SIZE / 254 + 1;

/// Why bytes could not be turned into a packet, or a packet into bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// The input is longer than any valid packet.
    TooLarge,
    /// The input ends in the middle of a packet.
    Truncated,
    /// The input is not a valid packet.
    Malformed,
    /// A valid packet followed by extra bytes.
    TrailingBytes,
    /// A stream frame overran the reader's buffer before its terminator.
    FrameTooLong,
    /// The frame's authentication tag is missing or does not verify.
    BadTag,
    /// The packet speaks another protocol version (the first byte of every packet).
    Protocol(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::BufferTooSmall => "output buffer too small",
            WireError::TooLarge => "input longer than the largest packet",
            WireError::Truncated => "input ends inside a packet",
            WireError::Malformed => "input is not a valid packet",
            WireError::TrailingBytes => "extra bytes after the packet",
            WireError::FrameTooLong => "stream frame too long",
            WireError::BadTag => "authentication tag missing or wrong",
            WireError::Protocol(v) => {
                return write!(
                    f,
                    "protocol version {v}, this build speaks {PROTOCOL_VERSION} only"
                )
            }
        })
    }
}

impl core::error::Error for WireError {}

/// Encodes `packet` into `buf`; returns the number of bytes written. The bytes are
/// postcard's encoding of the [`Packet`], written by a hand codec (the same bytes, tested
/// against postcard).
pub fn encode(packet: &Packet, buf: &mut [u8]) -> Result<usize, WireError> {
    crate::codec::encode(&packet.header, &packet.message, buf)
}

/// Decodes one packet that fills `bytes` exactly.
pub fn decode(bytes: &[u8]) -> Result<Packet, WireError> {
    if bytes.len() > MAX_PACKET_SIZE {
        return Err(WireError::TooLarge);
    }
    // The version comes first (postcard writes a u8 as one byte): nothing after it is
    // read in another version's layout.
    if let Some(v) = other_version(bytes) {
        return Err(WireError::Protocol(v));
    }
    let (packet, rest) = crate::codec::take(bytes)?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes);
    }
    Ok(packet)
}

/// The protocol version `bytes` (a packet, or a sealed frame) names in its first byte,
/// when that is another plausible version: protocol 1 to this one's predecessor, or a
/// few future ones. Any other first byte is just malformed.
pub(crate) fn other_version(bytes: &[u8]) -> Option<u8> {
    match bytes.first() {
        Some(&v) if v != PROTOCOL_VERSION && (1..=PROTOCOL_VERSION + 8).contains(&v) => Some(v),
        _ => None,
    }
}

/// COBS-encodes `bytes` (a sealed packet) into `buf` and appends the zero terminator;
/// returns the frame length. `buf` needs `bytes.len() + bytes.len() / 254 + 2` bytes.
pub fn frame(bytes: &[u8], buf: &mut [u8]) -> Result<usize, WireError> {
    if buf.len() < bytes.len() + bytes.len() / 254 + 2 {
        return Err(WireError::BufferTooSmall);
    }
    let mut code_at = 0;
    let mut out = 1;
    let mut code = 1u8;
    for &b in bytes {
        if b == 0 {
            buf[code_at] = code;
            code_at = out;
            out += 1;
            code = 1;
        } else {
            buf[out] = b;
            out += 1;
            code += 1;
            if code == 0xFF {
                buf[code_at] = code;
                code_at = out;
                out += 1;
                code = 1;
            }
        }
    }
    buf[code_at] = code;
    buf[out] = 0;
    Ok(out + 1)
}

/// Splits a COBS-framed byte stream into frames, byte by byte, with a fixed buffer.
/// Each complete frame is handed back decoded from COBS, ready for
/// [`open`](crate::auth::open) or [`Node::handle_frame`](crate::Node::handle_frame).
///
/// A frame longer than the buffer is discarded up to its terminator and reported once as
/// [`WireError::FrameTooLong`]; empty frames (a lone zero, used to resynchronise) are
/// skipped.
#[derive(Clone, Debug)]
pub struct FrameReader<const CAP: usize = MAX_STREAM_FRAME> {
    buf: [u8; CAP],
    len: usize,
    overflowed: bool,
}

impl<const CAP: usize> Default for FrameReader<CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAP: usize> FrameReader<CAP> {
    /// An empty reader.
    pub const fn new() -> Self {
        FrameReader {
            buf: [0; CAP],
            len: 0,
            overflowed: false,
        }
    }

    /// Feeds one byte; returns the frame's bytes when it completes one.
    pub fn push(&mut self, byte: u8) -> Option<Result<&[u8], WireError>> {
        if byte != 0 {
            if self.len < CAP {
                self.buf[self.len] = byte;
                self.len += 1;
            } else {
                self.overflowed = true;
            }
            return None;
        }
        let len = core::mem::replace(&mut self.len, 0);
        if core::mem::replace(&mut self.overflowed, false) {
            return Some(Err(WireError::FrameTooLong));
        }
        if len == 0 {
            return None;
        }
        match cobs_decode_in_place(&mut self.buf[..len]) {
            Some(n) => Some(Ok(&self.buf[..n])),
            None => Some(Err(WireError::Malformed)),
        }
    }
}

/// COBS decoding of a frame without its terminator, in place; `None` if malformed.
fn cobs_decode_in_place(buf: &mut [u8]) -> Option<usize> {
    let (mut read, mut write) = (0usize, 0usize);
    while read < buf.len() {
        let code = buf[read] as usize;
        // A zero inside a frame, or a block running past the end.
        if code == 0 || read + code > buf.len() {
            return None;
        }
        read += 1;
        for _ in 1..code {
            buf[write] = buf[read];
            write += 1;
            read += 1;
        }
        if code != 0xFF && read < buf.len() {
            buf[write] = 0;
            write += 1;
        }
    }
    Some(write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::OpId;
    use crate::time::Duration;

    fn sample() -> Packet {
        Packet {
            header: Header {
                protocol: PROTOCOL_VERSION,
                cluster: 7,
                from: NodeId(2),
                renewal: crate::Renewal::Lease,
            },
            message: Message::Accept {
                instance: 300,
                ballot: Ballot {
                    round: 5,
                    node: NodeId(2),
                },
                op: Op::BeMaster {
                    node: NodeId(2),
                    version: Some(299),
                    lease: Duration::from_secs(1),
                    id: OpId {
                        incarnation: 3,
                        seq: 9,
                    },
                },
                age: Duration::from_millis(120),
            },
        }
    }

    #[test]
    fn round_trip_and_errors() {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        let n = encode(&sample(), &mut buf).unwrap();
        assert_eq!(decode(&buf[..n]), Ok(sample()));
        assert_eq!(decode(&buf[..n - 1]), Err(WireError::Truncated));
        assert_eq!(decode(&[]), Err(WireError::Truncated));
        let mut long = [0u8; MAX_PACKET_SIZE + 1];
        long[..n].copy_from_slice(&buf[..n]);
        assert_eq!(decode(&long), Err(WireError::TooLarge));
        assert_eq!(decode(&long[..n + 1]), Err(WireError::TrailingBytes));
        assert_eq!(
            encode(&sample(), &mut [0u8; 4]),
            Err(WireError::BufferTooSmall)
        );
        // An unknown message tag (after protocol, cluster and sender: one byte each here).
        let mut bad = buf;
        bad[3] = 0x7f;
        assert!(decode(&bad[..n]).is_err());
    }

    fn framed(buf: &mut [u8]) -> usize {
        let mut packet = [0u8; MAX_PACKET_SIZE];
        let n = encode(&sample(), &mut packet).unwrap();
        frame(&packet[..n], buf).unwrap()
    }

    #[test]
    fn frames_split_a_stream_and_survive_garbage() {
        let mut stream = [0u8; 3 * MAX_FRAME_SIZE];
        let mut at = 0;
        stream[at] = 0; // leading resync zero
        at += 1;
        at += framed(&mut stream[at..]);
        for b in [1u8, 9, 3, 0] {
            // garbage frame: its code byte runs past the end
            stream[at] = b;
            at += 1;
        }
        at += framed(&mut stream[at..]);
        let mut reader: FrameReader = FrameReader::new();
        let mut ok = 0;
        let mut bad = 0;
        for &b in &stream[..at] {
            match reader.push(b) {
                Some(Ok(bytes)) => {
                    assert_eq!(decode(bytes), Ok(sample()));
                    ok += 1
                }
                Some(Err(_)) => bad += 1,
                None => {}
            }
        }
        assert_eq!((ok, bad), (2, 1));
    }

    #[test]
    fn cobs_round_trips_zeros_and_long_runs() {
        let mut input = [0u8; 600];
        for (i, b) in input.iter_mut().enumerate() {
            *b = if i % 97 == 0 { 0 } else { (i % 251) as u8 + 1 };
        }
        for len in [0, 1, 253, 254, 255, 300, 600] {
            let mut out = [0u8; 700];
            let n = frame(&input[..len], &mut out).unwrap();
            assert_eq!(out[n - 1], 0);
            assert!(!out[..n - 1].contains(&0));
            let m = cobs_decode_in_place(&mut out[..n - 1]).unwrap();
            assert_eq!(&out[..m], &input[..len], "len {len}");
        }
    }

    #[test]
    fn an_overlong_frame_is_reported_once_and_the_next_one_read() {
        let mut reader: FrameReader<16> = FrameReader::new();
        for _ in 0..40 {
            assert_eq!(reader.push(0x55), None);
        }
        assert_eq!(reader.push(0), Some(Err(WireError::FrameTooLong)));
        let mut buf = [0u8; MAX_FRAME_SIZE];
        let n = framed(&mut buf);
        for &b in &buf[..n - 1] {
            assert_eq!(reader.push(b), None);
        }
        // The 16-byte reader is too small for this frame; a big one reads it.
        assert_eq!(reader.push(0), Some(Err(WireError::FrameTooLong)));
        let mut big: FrameReader = FrameReader::new();
        for &b in &buf[..n - 1] {
            assert_eq!(big.push(b), None);
        }
        assert_eq!(big.push(0).map(|r| r.map(decode)), Some(Ok(Ok(sample()))));
    }
}

//! The durable record: everything a node must find again after a crash.
//!
//! One struct, stored atomically by the driver whenever the node emits
//! [`Output::Persist`](crate::Output::Persist). It holds the acceptor's promise and
//! accepted proposal (Paxos safety), the instance and election state (so a restarted node
//! keeps the version history), and the incarnation (so own op ids never repeat across
//! restarts).
//!
//! [`Record::encode`] writes a self-checking byte form (magic, format version, a body in
//! postcard's encoding written by the hand codec of `codec.rs`, CRC-32); [`Record::decode`] refuses anything truncated, corrupted or foreign with
//! a specific [`RecordError`].

use core::fmt;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::acceptor::Proposal;
use crate::ballot::Ballot;
use crate::config::NodeId;
use crate::election::ElectionState;
use crate::members::MemberList;
use crate::wire::Message;

/// A node's durable state. Opaque: store it with [`Record::encode`], load it with
/// [`Record::decode`], and hand it to [`Node::restore`](crate::Node::restore).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Record {
    pub(crate) cluster: u32,
    pub(crate) node: NodeId,
    pub(crate) incarnation: u32,
    pub(crate) instance: u64,
    pub(crate) promised: Ballot,
    pub(crate) accepted: Option<Proposal>,
    pub(crate) election: ElectionState,
    /// The member list in force (the register's); empty when read from a format 1 or 2
    /// record: the configured list.
    pub(crate) members: MemberList,
    /// The node votes for no one until its list is known to be the register's (a
    /// joining node, say).
    pub(crate) standby: bool,
    /// A node rejoining after a lost record (`docs/algorithm.md` §10): 0 when not
    /// rejoining; `u64::MAX` while it has not yet heard a majority's instances; else
    /// the first instance it may vote in.
    pub(crate) rejoin: u64,
}

/// "TNR" and the format. Format 4 adds the rejoin bound; format 3 (read with no rejoin
/// in progress) added the member list in force and the register's membership fields. Formats 2 (protocol 2) and 1 (protocol 1) are read too, with the
/// configured list in force: they hold the same durable Paxos state (promise,
/// acceptance, instance, register, incarnation), and a node restored from one keeps the
/// restart silence like any other.
const MAGIC: [u8; 4] = *b"TNR\x04";
/// The oldest format still read.
const OLDEST_FORMAT: u8 = 1;
const CRC_LEN: usize = 4;

/// The largest encoded record, in bytes.
pub const MAX_RECORD_SIZE: usize = MAGIC.len() + Record::POSTCARD_MAX_SIZE + CRC_LEN;

impl Record {
    /// The cluster the record belongs to.
    pub fn cluster(&self) -> u32 {
        self.cluster
    }
    /// The node the record belongs to.
    pub fn node(&self) -> NodeId {
        self.node
    }
    /// How many times the node has been restored from a record.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }
    /// The first undecided instance.
    pub fn instance(&self) -> u64 {
        self.instance
    }
    /// The election state (master, version) as of the record.
    pub fn election(&self) -> &ElectionState {
        &self.election
    }
    /// The highest ballot promised (for tests and diagnostics).
    pub fn promised(&self) -> Ballot {
        self.promised
    }
    /// The proposal accepted in the current instance (for tests and diagnostics).
    pub fn accepted(&self) -> Option<Proposal> {
        self.accepted
    }
    /// The member list stored with the record (empty in a format 1 or 2 record: the
    /// configured list was in force).
    pub fn members(&self) -> &[crate::config::Member] {
        self.members.as_slice()
    }

    /// The persist-before-send rule: whether `message` promises no more than `stored`
    /// (the last record a node stored; `None`: nothing yet) holds. A promise or
    /// acceptance must be durable before the message that carries it leaves (a proposer's
    /// Prepare carries none, its Accept its own acceptance). Learning
    /// is never written before it is acted on, so a stored instance may lag behind the
    /// message's.
    pub fn covers(stored: Option<&Record>, message: &Message) -> bool {
        let Some(disk) = stored else {
            return !matches!(
                message,
                Message::Promise { .. } | Message::Accept { .. } | Message::Accepted { .. }
            );
        };
        match *message {
            // A Prepare reveals no vote of the sender's: it may leave before the
            // sender's own promise is written (`docs/algorithm.md` §2).
            Message::Prepare { .. } => true,
            Message::Promise {
                instance,
                ballot,
                accepted,
                ..
            } => {
                disk.promised >= ballot && (disk.instance != instance || disk.accepted == accepted)
            }
            // An Accept reveals the sender's own acceptance of its proposal.
            Message::Accept {
                instance,
                ballot,
                op,
                ..
            } => {
                disk.instance > instance
                    || (disk.instance == instance && disk.accepted == Some(Proposal { ballot, op }))
            }
            Message::Accepted { instance, ballot } => {
                disk.instance > instance
                    || (disk.instance == instance
                        && disk.accepted.map(|p| p.ballot) == Some(ballot))
            }
            // A renewal answer promises the ballot (raised durably if it was lower).
            Message::Renewed { ballot, .. } => disk.promised >= ballot,
            _ => true,
        }
    }

    /// Writes the record into `buf`; returns the length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, RecordError> {
        if buf.len() < MAGIC.len() + CRC_LEN {
            return Err(RecordError::BufferTooSmall);
        }
        buf[..MAGIC.len()].copy_from_slice(&MAGIC);
        let body_len = {
            let end = buf.len() - CRC_LEN;
            crate::codec::encode_record(self, &mut buf[MAGIC.len()..end])
                .map_err(|_| RecordError::BufferTooSmall)?
        };
        let end = MAGIC.len() + body_len;
        let crc = crc32(&buf[..end]);
        buf[end..end + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
        Ok(end + CRC_LEN)
    }

    /// Reads a record written by [`Record::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        if bytes.is_empty() {
            return Err(RecordError::Empty);
        }
        if bytes.len() < MAGIC.len() + CRC_LEN {
            return Err(RecordError::Truncated);
        }
        if bytes[..3] != MAGIC[..3] {
            return Err(RecordError::NotARecord);
        }
        if !(OLDEST_FORMAT..=MAGIC[3]).contains(&bytes[3]) {
            return Err(RecordError::UnknownFormat(bytes[3]));
        }
        let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32(body) != stored {
            return Err(RecordError::Corrupt);
        }
        let body = &body[MAGIC.len()..];
        let (record, rest) =
            crate::codec::take_record(body, bytes[3]).map_err(|_| RecordError::Corrupt)?;
        if rest != 0 {
            return Err(RecordError::Corrupt);
        }
        Ok(record)
    }
}

/// Why a stored record could not be read or used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordError {
    /// Zero bytes: an empty file is not a record (and not "no record").
    Empty,
    /// Shorter than the smallest record: a torn or truncated write.
    Truncated,
    /// Does not start with the record magic.
    NotARecord,
    /// A record format this build does not know.
    UnknownFormat(u8),
    /// The checksum does not match, or the body does not parse.
    Corrupt,
    /// The output buffer is too small (use [`MAX_RECORD_SIZE`]).
    BufferTooSmall,
    /// The record belongs to another cluster.
    WrongCluster {
        /// The configured cluster.
        expected: u32,
        /// The record's cluster.
        found: u32,
    },
    /// The record belongs to another node.
    WrongNode {
        /// The configured node.
        expected: NodeId,
        /// The record's node.
        found: NodeId,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Empty => write!(f, "record is empty"),
            RecordError::Truncated => write!(f, "record is truncated"),
            RecordError::NotARecord => write!(f, "not a Tenure record (bad magic)"),
            RecordError::UnknownFormat(v) => write!(
                f,
                "record format {v} is not one this build reads ({OLDEST_FORMAT}..={}); \
                 it was written by another version of Tenure",
                MAGIC[3]
            ),
            RecordError::Corrupt => write!(f, "record is corrupt (checksum or body mismatch)"),
            RecordError::BufferTooSmall => write!(f, "buffer too small for the record"),
            RecordError::WrongCluster { expected, found } => write!(
                f,
                "record belongs to cluster {found}, this node is configured for cluster {expected}"
            ),
            RecordError::WrongNode { expected, found } => write!(
                f,
                "record belongs to node {found}, this node is configured as node {expected}"
            ),
        }
    }
}

impl core::error::Error for RecordError {}

/// CRC-32 (IEEE 802.3, reflected) by half-bytes: a 16-entry table (64 bytes of flash)
/// and two lookups per byte, four times fewer steps than bit by bit; a 256-entry table
/// would halve the steps again for 1 KiB of flash, which small parts feel more than a
/// record write that happens only when a promise or acceptance changes.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        crc = (crc >> 4) ^ CRC_NIBBLES[(crc & 0xF) as usize];
        crc = (crc >> 4) ^ CRC_NIBBLES[(crc & 0xF) as usize];
    }
    !crc
}

/// `CRC_NIBBLES[n]` is the CRC register after shifting the nibble `n` through it.
const CRC_NIBBLES: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut n = 0;
    while n < 16 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 4 {
            let mask = (c & 1).wrapping_neg();
            c = (c >> 1) ^ (0xEDB8_8320 & mask);
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::{Op, OpId};

    // Formats 1 and 2, to write old bodies.
    /// Formats 1 and 2: the same fields, without the member list and the register's
    /// membership fields.
    #[derive(Serialize)]
    struct OldRecord {
        cluster: u32,
        node: NodeId,
        incarnation: u32,
        instance: u64,
        promised: Ballot,
        accepted: Option<OldProposal>,
        election: OldElection,
    }

    #[derive(Serialize)]
    struct OldProposal {
        ballot: Ballot,
        op: OldOp,
    }

    /// Formats 1 and 2 knew two ops; their encoding is a prefix of today's `Op`.
    #[derive(Serialize)]
    #[allow(dead_code)] // (the test writes a release)
    enum OldOp {
        BeMaster {
            node: NodeId,
            version: Option<u64>,
            lease: crate::time::Duration,
            id: OpId,
        },
        Release {
            node: NodeId,
            version: u64,
            successor: Option<NodeId>,
            id: OpId,
        },
    }

    #[derive(Serialize)]
    struct OldElection {
        master: Option<NodeId>,
        version: Option<u64>,
        lease: crate::time::Duration,
        op: Option<OpId>,
        successor: Option<NodeId>,
    }

    fn sample() -> Record {
        Record {
            cluster: 9,
            node: NodeId(3),
            incarnation: 2,
            instance: 41,
            promised: Ballot {
                round: 4,
                node: NodeId(1),
            },
            accepted: None,
            election: ElectionState {
                master: Some(NodeId(1)),
                version: Some(40),
                term: Some(40),
                ..ElectionState::default()
            },
            members: MemberList::from_slice(&[
                crate::config::Member::candidate(1),
                crate::config::Member::candidate(3),
            ]),
            standby: false,
            rejoin: 0,
        }
    }

    /// `sample()` as a format 1 or 2 body (no member list).
    fn old_sample_body() -> OldRecord {
        OldRecord {
            cluster: 9,
            node: NodeId(3),
            incarnation: 2,
            instance: 41,
            promised: Ballot {
                round: 4,
                node: NodeId(1),
            },
            accepted: Some(OldProposal {
                ballot: Ballot {
                    round: 4,
                    node: NodeId(1),
                },
                op: OldOp::Release {
                    node: NodeId(1),
                    version: 40,
                    successor: None,
                    id: OpId::default(),
                },
            }),
            election: OldElection {
                master: Some(NodeId(1)),
                version: Some(40),
                lease: crate::time::Duration::ZERO,
                op: None,
                successor: None,
            },
        }
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn crc_by_half_bytes_equals_crc_bit_by_bit() {
        fn bitwise(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    let mask = (crc & 1).wrapping_neg();
                    crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
                }
            }
            !crc
        }
        let mut bytes = [0u8; 300];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(89) ^ (i >> 3) as u8;
        }
        for len in 0..bytes.len() {
            assert_eq!(crc32(&bytes[..len]), bitwise(&bytes[..len]), "length {len}");
        }
    }

    #[test]
    fn format_1_2_and_3_records_are_read_and_a_future_one_refused() {
        let mut buf = [0u8; MAX_RECORD_SIZE];
        let n = sample().encode(&mut buf).unwrap();
        assert_eq!(buf[3], 4, "this build writes format 4");
        assert_eq!(Record::decode(&buf[..n]), Ok(sample()));
        // Format 3: format 4 without the rejoin bound (its last byte, 0 here).
        let mut three = buf;
        three[3] = 3;
        let crc = crc32(&three[..n - CRC_LEN - 1]);
        three[n - CRC_LEN - 1..n - 1].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Record::decode(&three[..n - 1]), Ok(sample()));
        let rejoining = Record {
            rejoin: u64::MAX,
            ..sample()
        };
        let m = rejoining.encode(&mut buf).unwrap();
        assert_eq!(Record::decode(&buf[..m]), Ok(rejoining));
        let old = |v: u8| {
            let mut b = [0u8; MAX_RECORD_SIZE];
            b[..4].copy_from_slice(b"TNR\x00");
            b[3] = v;
            let len = 4 + postcard::to_slice(&old_sample_body(), &mut b[4..])
                .unwrap()
                .len();
            let crc = crc32(&b[..len]);
            b[len..len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
            Record::decode(&b[..len + CRC_LEN])
        };
        for v in [1, 2] {
            let r = old(v).unwrap();
            assert!(r.members().is_empty(), "format {v}: the configured list");
            assert_eq!(r.election.term, Some(40));
            assert_eq!(r.election.members_version, None);
            assert!(matches!(
                r.accepted.map(|p| p.op),
                Some(Op::Release { version: 40, .. })
            ));
        }
        assert_eq!(old(5), Err(RecordError::UnknownFormat(5)));
        assert_eq!(old(0), Err(RecordError::UnknownFormat(0)));
    }

    #[test]
    fn round_trip_and_every_corruption_is_refused() {
        let mut buf = [0u8; MAX_RECORD_SIZE];
        let n = sample().encode(&mut buf).unwrap();
        assert_eq!(Record::decode(&buf[..n]), Ok(sample()));
        assert_eq!(Record::decode(&[]), Err(RecordError::Empty));
        assert_eq!(Record::decode(&buf[..3]), Err(RecordError::Truncated));
        for cut in 4..n {
            assert!(Record::decode(&buf[..cut]).is_err(), "truncated at {cut}");
        }
        for i in 0..n {
            for bit in 0..8 {
                let mut bad = buf;
                bad[i] ^= 1 << bit;
                assert!(
                    Record::decode(&bad[..n]).is_err(),
                    "bit {bit} of byte {i} flipped went unnoticed"
                );
            }
        }
        let mut other = buf;
        other[3] = 9;
        assert_eq!(
            Record::decode(&other[..n]),
            Err(RecordError::UnknownFormat(9))
        );
        assert_eq!(
            sample().encode(&mut [0u8; 6]),
            Err(RecordError::BufferTooSmall)
        );
    }
}

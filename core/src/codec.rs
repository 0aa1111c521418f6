//! The wire codec, by hand: the bytes postcard writes for a [`Packet`], read and written
//! without serde.
//!
//! The format is postcard's (see `wire.rs`), byte for byte: a `u8` as itself, every
//! other integer as a LEB128 varint, an enum as its variant index (a varint) followed by
//! its fields, an `Option` as `0` or `1` followed by the value, a struct as its fields in
//! order. Decoding accepts exactly what postcard accepts and fails the same way: running
//! out of bytes is [`WireError::Truncated`], everything else (an overlong varint, a
//! varint too large for its type, an unknown variant, an option byte other than 0 or 1)
//! is [`WireError::Malformed`]. The tests check both directions against postcard itself
//! on random packets and on random and mutated bytes.
//!
//! Why by hand: serde's generic visitor machinery made postcard decoding the largest
//! single cost of a renewal round; the dozen message kinds are few enough to write out.

use crate::acceptor::Proposal;
use crate::ballot::Ballot;
use crate::config::{Member, NodeId, Renewal, Role, MAX_MEMBERS};
use crate::election::{Change, ElectionState, Op, OpId};
use crate::members::MemberList;
use crate::record::Record;
use crate::time::Duration;
use crate::wire::{Header, Message, Packet, WireError};

/// Writes into a slice; running out of room is [`WireError::BufferTooSmall`].
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    #[inline]
    fn byte(&mut self, b: u8) -> Result<(), WireError> {
        let slot = self.buf.get_mut(self.at).ok_or(WireError::BufferTooSmall)?;
        *slot = b;
        self.at += 1;
        Ok(())
    }

    #[inline]
    fn varint(&mut self, mut v: u64) -> Result<(), WireError> {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80)?;
            v >>= 7;
        }
        self.byte(v as u8)
    }

    #[inline]
    fn flag(&mut self, some: bool) -> Result<(), WireError> {
        self.byte(u8::from(some))
    }

    fn node(&mut self, n: NodeId) -> Result<(), WireError> {
        self.varint(u64::from(n.0))
    }

    fn ballot(&mut self, b: &Ballot) -> Result<(), WireError> {
        self.varint(b.round)?;
        self.node(b.node)
    }

    fn op_id(&mut self, id: &OpId) -> Result<(), WireError> {
        self.varint(u64::from(id.incarnation))?;
        self.varint(u64::from(id.seq))
    }

    fn opt_node(&mut self, n: Option<NodeId>) -> Result<(), WireError> {
        self.flag(n.is_some())?;
        match n {
            Some(n) => self.node(n),
            None => Ok(()),
        }
    }

    fn opt_u64(&mut self, v: Option<u64>) -> Result<(), WireError> {
        self.flag(v.is_some())?;
        match v {
            Some(v) => self.varint(v),
            None => Ok(()),
        }
    }

    fn op(&mut self, op: &Op) -> Result<(), WireError> {
        match *op {
            Op::BeMaster {
                node,
                version,
                lease,
                id,
            } => {
                self.varint(0)?;
                self.node(node)?;
                self.opt_u64(version)?;
                self.varint(lease.as_micros())?;
                self.op_id(&id)
            }
            Op::Release {
                node,
                version,
                successor,
                id,
            } => {
                self.varint(1)?;
                self.node(node)?;
                self.varint(version)?;
                self.opt_node(successor)?;
                self.op_id(&id)
            }
            Op::Reconfigure {
                node,
                version,
                change,
                digest,
                id,
            } => {
                self.varint(2)?;
                self.node(node)?;
                self.varint(version)?;
                match change {
                    Change::Add(m) => {
                        self.varint(0)?;
                        self.member(&m)?;
                    }
                    Change::Remove(n) => {
                        self.varint(1)?;
                        self.node(n)?;
                    }
                    #[cfg(tenure_fault_injection)]
                    Change::Swap { remove, add } => {
                        self.varint(2)?;
                        self.node(remove)?;
                        self.member(&add)?;
                    }
                }
                self.varint(u64::from(digest))?;
                self.op_id(&id)
            }
        }
    }

    fn member(&mut self, m: &Member) -> Result<(), WireError> {
        self.node(m.id)?;
        self.varint(match m.role {
            Role::Candidate => 0,
            Role::Voter => 1,
            Role::Learner => 2,
        })?;
        self.byte(m.priority)
    }

    fn accepted(&mut self, accepted: &Option<Proposal>) -> Result<(), WireError> {
        self.flag(accepted.is_some())?;
        match accepted {
            Some(p) => {
                self.ballot(&p.ballot)?;
                self.op(&p.op)
            }
            None => Ok(()),
        }
    }

    fn election(&mut self, state: &ElectionState) -> Result<(), WireError> {
        self.opt_node(state.master)?;
        self.opt_u64(state.version)?;
        self.varint(state.lease.as_micros())?;
        self.flag(state.op.is_some())?;
        if let Some(id) = &state.op {
            self.op_id(id)?;
        }
        self.opt_node(state.successor)?;
        self.opt_u64(state.term)?;
        self.opt_u64(state.members_version)?;
        self.varint(u64::from(state.members_digest))
    }

    fn record(&mut self, r: &Record) -> Result<(), WireError> {
        self.varint(u64::from(r.cluster))?;
        self.node(r.node)?;
        self.varint(u64::from(r.incarnation))?;
        self.varint(r.instance)?;
        self.ballot(&r.promised)?;
        self.accepted(&r.accepted)?;
        self.election(&r.election)?;
        let members = r.members.as_slice();
        self.varint(members.len() as u64)?;
        for m in members {
            self.member(m)?;
        }
        self.flag(r.standby)?;
        self.varint(r.rejoin)
    }

    fn header(&mut self, h: &Header) -> Result<(), WireError> {
        self.byte(h.protocol)?;
        self.varint(u64::from(h.cluster))?;
        self.node(h.from)?;
        self.varint(match h.renewal {
            Renewal::Lease => 0,
            Renewal::Logged => 1,
        })
    }

    fn message(&mut self, m: &Message) -> Result<(), WireError> {
        match m {
            Message::Prepare { instance, ballot } => {
                self.varint(0)?;
                self.varint(*instance)?;
                self.ballot(ballot)
            }
            Message::Promise {
                instance,
                ballot,
                accepted,
                age,
            } => {
                self.varint(1)?;
                self.varint(*instance)?;
                self.ballot(ballot)?;
                self.accepted(accepted)?;
                self.varint(age.as_micros())
            }
            Message::Accept {
                instance,
                ballot,
                op,
                age,
            } => {
                self.varint(2)?;
                self.varint(*instance)?;
                self.ballot(ballot)?;
                self.op(op)?;
                self.varint(age.as_micros())
            }
            Message::Accepted { instance, ballot } => {
                self.varint(3)?;
                self.varint(*instance)?;
                self.ballot(ballot)
            }
            Message::Reject {
                instance,
                ballot,
                promised,
            } => {
                self.varint(4)?;
                self.varint(*instance)?;
                self.ballot(ballot)?;
                self.ballot(promised)
            }
            Message::Commit { instance, ballot } => {
                self.varint(5)?;
                self.varint(*instance)?;
                self.ballot(ballot)
            }
            Message::Chosen { instance, op } => {
                self.varint(6)?;
                self.varint(*instance)?;
                self.op(op)
            }
            Message::CatchUp { next_instance } => {
                self.varint(7)?;
                self.varint(*next_instance)
            }
            Message::Snapshot {
                next_instance,
                state,
            } => {
                self.varint(8)?;
                self.varint(*next_instance)?;
                self.election(state)
            }
            Message::Renew { ballot, term, seq } => {
                self.varint(9)?;
                self.ballot(ballot)?;
                self.varint(*term)?;
                self.varint(u64::from(*seq))
            }
            Message::Renewed { ballot, term, seq } => {
                self.varint(10)?;
                self.ballot(ballot)?;
                self.varint(*term)?;
                self.varint(u64::from(*seq))
            }
            Message::MembersQuery { version, start } => {
                self.varint(11)?;
                self.varint(*version)?;
                self.byte(*start)
            }
            Message::MembersPart {
                version,
                total,
                start,
                part,
            } => {
                self.varint(12)?;
                self.varint(*version)?;
                self.byte(*total)?;
                self.byte(*start)?;
                for m in part {
                    self.flag(m.is_some())?;
                    if let Some(m) = m {
                        self.member(m)?;
                    }
                }
                Ok(())
            }
            Message::RejoinQuery { nonce } => {
                self.varint(13)?;
                self.varint(u64::from(*nonce))
            }
            Message::RejoinReply {
                nonce,
                instance,
                promised,
            } => {
                self.varint(14)?;
                self.varint(u64::from(*nonce))?;
                self.varint(*instance)?;
                self.ballot(promised)
            }
        }
    }
}

/// Encodes `header` and `message` (a [`Packet`]'s two parts) into `buf`; returns the
/// length. Same bytes as `postcard::to_slice(&Packet { header, message }, buf)`.
pub(crate) fn encode(
    header: &Header,
    message: &Message,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let mut w = Writer { buf, at: 0 };
    w.header(header)?;
    w.message(message)?;
    Ok(w.at)
}

/// Encodes a [`Record`]'s body (what follows the magic) into `buf`; returns the length.
/// Same bytes as `postcard::to_slice(record, buf)`.
pub(crate) fn encode_record(record: &Record, buf: &mut [u8]) -> Result<usize, WireError> {
    let mut w = Writer { buf, at: 0 };
    w.record(record)?;
    Ok(w.at)
}

/// Reads from a slice; running out of bytes is [`WireError::Truncated`].
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, WireError> {
        let b = *self.bytes.get(self.at).ok_or(WireError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    /// postcard's varint: at most `MAX` bytes, the last of which may carry at most
    /// `LAST` (the bits left of the type); overlong encodings of small values pass.
    #[inline]
    fn varint<const MAX: usize, const LAST: u8>(&mut self) -> Result<u64, WireError> {
        // Most fields are below 128: one byte, no loop.
        match self.bytes.get(self.at) {
            Some(&b) if b < 0x80 => {
                self.at += 1;
                Ok(u64::from(b))
            }
            _ => self.long_varint::<MAX, LAST>(),
        }
    }

    #[inline(never)]
    fn long_varint<const MAX: usize, const LAST: u8>(&mut self) -> Result<u64, WireError> {
        let mut out = 0u64;
        for i in 0..MAX {
            let b = self.byte()?;
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == MAX - 1 && b > LAST {
                    return Err(WireError::Malformed);
                }
                return Ok(out);
            }
        }
        Err(WireError::Malformed)
    }

    #[inline]
    fn u16(&mut self) -> Result<u16, WireError> {
        // Three bytes, the last carrying 2 bits: the value fits.
        Ok(self.varint::<3, 0b11>()? as u16)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(self.varint::<5, 0b1111>()? as u32)
    }

    #[inline]
    fn u64(&mut self) -> Result<u64, WireError> {
        self.varint::<10, 0b1>()
    }

    #[inline]
    fn flag(&mut self) -> Result<bool, WireError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed),
        }
    }

    #[inline]
    fn node(&mut self) -> Result<NodeId, WireError> {
        self.u16().map(NodeId)
    }

    #[inline]
    fn ballot(&mut self) -> Result<Ballot, WireError> {
        Ok(Ballot {
            round: self.u64()?,
            node: self.node()?,
        })
    }

    fn duration(&mut self) -> Result<Duration, WireError> {
        self.u64().map(Duration::from_micros)
    }

    fn op_id(&mut self) -> Result<OpId, WireError> {
        Ok(OpId {
            incarnation: self.u32()?,
            seq: self.u32()?,
        })
    }

    fn opt_node(&mut self) -> Result<Option<NodeId>, WireError> {
        Ok(if self.flag()? {
            Some(self.node()?)
        } else {
            None
        })
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, WireError> {
        Ok(if self.flag()? {
            Some(self.u64()?)
        } else {
            None
        })
    }

    fn op(&mut self) -> Result<Op, WireError> {
        Ok(match self.u32()? {
            0 => Op::BeMaster {
                node: self.node()?,
                version: self.opt_u64()?,
                lease: self.duration()?,
                id: self.op_id()?,
            },
            1 => Op::Release {
                node: self.node()?,
                version: self.u64()?,
                successor: self.opt_node()?,
                id: self.op_id()?,
            },
            2 => Op::Reconfigure {
                node: self.node()?,
                version: self.u64()?,
                change: match self.u32()? {
                    0 => Change::Add(self.member()?),
                    1 => Change::Remove(self.node()?),
                    #[cfg(tenure_fault_injection)]
                    2 => Change::Swap {
                        remove: self.node()?,
                        add: self.member()?,
                    },
                    _ => return Err(WireError::Malformed),
                },
                digest: self.u32()?,
                id: self.op_id()?,
            },
            _ => return Err(WireError::Malformed),
        })
    }

    fn member(&mut self) -> Result<Member, WireError> {
        Ok(Member {
            id: self.node()?,
            role: match self.u32()? {
                0 => Role::Candidate,
                1 => Role::Voter,
                2 => Role::Learner,
                _ => return Err(WireError::Malformed),
            },
            priority: self.byte()?,
        })
    }

    fn opt_member(&mut self) -> Result<Option<Member>, WireError> {
        Ok(if self.flag()? {
            Some(self.member()?)
        } else {
            None
        })
    }

    fn accepted(&mut self) -> Result<Option<Proposal>, WireError> {
        Ok(if self.flag()? {
            Some(Proposal {
                ballot: self.ballot()?,
                op: self.op()?,
            })
        } else {
            None
        })
    }

    fn election(&mut self) -> Result<ElectionState, WireError> {
        self.election_of(true)
    }

    /// The election state; `current` false for a record of format 1 or 2, which had
    /// neither the term nor the membership fields.
    fn election_of(&mut self, current: bool) -> Result<ElectionState, WireError> {
        let master = self.opt_node()?;
        let version = self.opt_u64()?;
        let lease = self.duration()?;
        let op = if self.flag()? {
            Some(self.op_id()?)
        } else {
            None
        };
        let successor = self.opt_node()?;
        let (term, members_version, members_digest) = if current {
            (self.opt_u64()?, self.opt_u64()?, self.u32()?)
        } else {
            // Before membership changes every effective op with a holder began (or,
            // logged, renewed) its term.
            (master.and(version), None, 0)
        };
        Ok(ElectionState {
            master,
            version,
            lease,
            op,
            successor,
            term,
            members_version,
            members_digest,
        })
    }

    /// A record body of `format`. Formats 1 and 2 have today's fields up to the
    /// election state, which had neither the term nor the membership fields, and no
    /// member list (the configured one is in force) nor standby flag; format 3 had no
    /// rejoin bound (none in progress).
    fn record(&mut self, format: u8) -> Result<Record, WireError> {
        let current = format >= 3;
        let cluster = self.u32()?;
        let node = self.node()?;
        let incarnation = self.u32()?;
        let instance = self.u64()?;
        let promised = self.ballot()?;
        let accepted = self.accepted()?;
        if !current && accepted.is_some_and(|p| matches!(p.op, Op::Reconfigure { .. })) {
            return Err(WireError::Malformed); // those formats had two ops
        }
        let election = self.election_of(current)?;
        let mut members = MemberList::default();
        let mut standby = false;
        let mut rejoin = 0;
        if current {
            // As `MemberList`'s serde visitor: a member past the capacity is read,
            // then refused.
            let len = self.u64()?;
            let mut list = [Member::learner(0); MAX_MEMBERS];
            let mut count = 0;
            while count < len {
                let m = self.member()?;
                let slot = list.get_mut(count as usize).ok_or(WireError::Malformed)?;
                *slot = m;
                count += 1;
            }
            members = MemberList::from_slice(&list[..count as usize]);
            standby = self.flag()?;
            if format >= 4 {
                rejoin = self.u64()?;
            }
        }
        Ok(Record {
            cluster,
            node,
            incarnation,
            instance,
            promised,
            accepted,
            election,
            members,
            standby,
            rejoin,
        })
    }

    fn header(&mut self) -> Result<Header, WireError> {
        Ok(Header {
            protocol: self.byte()?,
            cluster: self.u32()?,
            from: self.node()?,
            renewal: match self.u32()? {
                0 => Renewal::Lease,
                1 => Renewal::Logged,
                _ => return Err(WireError::Malformed),
            },
        })
    }

    fn message(&mut self) -> Result<Message, WireError> {
        Ok(match self.u32()? {
            0 => Message::Prepare {
                instance: self.u64()?,
                ballot: self.ballot()?,
            },
            1 => Message::Promise {
                instance: self.u64()?,
                ballot: self.ballot()?,
                accepted: self.accepted()?,
                age: self.duration()?,
            },
            2 => Message::Accept {
                instance: self.u64()?,
                ballot: self.ballot()?,
                op: self.op()?,
                age: self.duration()?,
            },
            3 => Message::Accepted {
                instance: self.u64()?,
                ballot: self.ballot()?,
            },
            4 => Message::Reject {
                instance: self.u64()?,
                ballot: self.ballot()?,
                promised: self.ballot()?,
            },
            5 => Message::Commit {
                instance: self.u64()?,
                ballot: self.ballot()?,
            },
            6 => Message::Chosen {
                instance: self.u64()?,
                op: self.op()?,
            },
            7 => Message::CatchUp {
                next_instance: self.u64()?,
            },
            8 => Message::Snapshot {
                next_instance: self.u64()?,
                state: self.election()?,
            },
            9 => Message::Renew {
                ballot: self.ballot()?,
                term: self.u64()?,
                seq: self.u32()?,
            },
            10 => Message::Renewed {
                ballot: self.ballot()?,
                term: self.u64()?,
                seq: self.u32()?,
            },
            11 => Message::MembersQuery {
                version: self.u64()?,
                start: self.byte()?,
            },
            12 => Message::MembersPart {
                version: self.u64()?,
                total: self.byte()?,
                start: self.byte()?,
                part: [
                    self.opt_member()?,
                    self.opt_member()?,
                    self.opt_member()?,
                    self.opt_member()?,
                ],
            },
            13 => Message::RejoinQuery { nonce: self.u32()? },
            14 => Message::RejoinReply {
                nonce: self.u32()?,
                instance: self.u64()?,
                promised: self.ballot()?,
            },
            _ => return Err(WireError::Malformed),
        })
    }
}

/// Reads one packet from the start of `bytes`; returns it and the bytes left after it.
/// Same result as `postcard::take_from_bytes::<Packet>(bytes)` (errors mapped as in
/// `wire.rs`).
pub(crate) fn take(bytes: &[u8]) -> Result<(Packet, &[u8]), WireError> {
    let mut r = Reader { bytes, at: 0 };
    let header = r.header()?;
    let message = r.message()?;
    Ok((Packet { header, message }, &bytes[r.at..]))
}

/// Reads one record body of `format` from the start of `bytes`; returns it and the
/// number of bytes left after it. Accepts and refuses what
/// `postcard::take_from_bytes::<Record>` does (format 4; formats 1 to 3 are read as
/// `Reader::record` says).
pub(crate) fn take_record(bytes: &[u8], format: u8) -> Result<(Record, usize), WireError> {
    let mut r = Reader { bytes, at: 0 };
    let record = r.record(format)?;
    Ok((record, bytes.len() - r.at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MAX_PACKET_SIZE;

    /// A small deterministic generator (splitmix64).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// Values near the varint boundaries and the extremes, often.
        fn u64(&mut self) -> u64 {
            match self.below(6) {
                0 => self.below(4),
                1 => (1u64 << (7 * self.below(10)))
                    .wrapping_add(self.below(3))
                    .wrapping_sub(1),
                2 => u64::MAX - self.below(3),
                3 => self.below(1 << 20),
                _ => self.next() >> self.below(64),
            }
        }
        fn u32(&mut self) -> u32 {
            self.u64() as u32
        }
        fn u16(&mut self) -> u16 {
            self.u64() as u16
        }
        fn ballot(&mut self) -> Ballot {
            Ballot {
                round: self.u64(),
                node: NodeId(self.u16()),
            }
        }
        fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
            (self.below(2) == 0).then(|| f(self))
        }
        fn id(&mut self) -> OpId {
            OpId {
                incarnation: self.u32(),
                seq: self.u32(),
            }
        }
        fn member(&mut self) -> Member {
            Member {
                id: NodeId(self.u16()),
                role: [Role::Candidate, Role::Voter, Role::Learner][self.below(3) as usize],
                priority: self.u64() as u8,
            }
        }
        fn op(&mut self) -> Op {
            if self.below(3) == 0 {
                return Op::Reconfigure {
                    node: NodeId(self.u16()),
                    version: self.u64(),
                    change: if self.below(2) == 0 {
                        Change::Add(self.member())
                    } else {
                        Change::Remove(NodeId(self.u16()))
                    },
                    digest: self.u32(),
                    id: self.id(),
                };
            }
            if self.below(2) == 0 {
                Op::BeMaster {
                    node: NodeId(self.u16()),
                    version: self.opt(Self::u64),
                    lease: Duration::from_micros(self.u64()),
                    id: self.id(),
                }
            } else {
                Op::Release {
                    node: NodeId(self.u16()),
                    version: self.u64(),
                    successor: self.opt(|g| NodeId(g.u16())),
                    id: self.id(),
                }
            }
        }
        fn state(&mut self) -> ElectionState {
            ElectionState {
                master: self.opt(|g| NodeId(g.u16())),
                version: self.opt(Self::u64),
                lease: Duration::from_micros(self.u64()),
                op: self.opt(Self::id),
                successor: self.opt(|g| NodeId(g.u16())),
                term: self.opt(Self::u64),
                members_version: self.opt(Self::u64),
                members_digest: self.u32(),
            }
        }
        fn record(&mut self) -> Record {
            Record {
                cluster: self.u32(),
                node: NodeId(self.u16()),
                incarnation: self.u32(),
                instance: self.u64(),
                promised: self.ballot(),
                accepted: self.opt(|g| Proposal {
                    ballot: g.ballot(),
                    op: g.op(),
                }),
                election: self.state(),
                members: {
                    let list: std::vec::Vec<Member> = (0..self.below(MAX_MEMBERS as u64 + 1))
                        .map(|_| self.member())
                        .collect();
                    MemberList::from_slice(&list)
                },
                standby: self.below(2) == 0,
                rejoin: match self.below(3) {
                    0 => 0,
                    1 => u64::MAX,
                    _ => self.u64(),
                },
            }
        }
        fn packet(&mut self) -> Packet {
            let message = match self.below(15) {
                0 => Message::Prepare {
                    instance: self.u64(),
                    ballot: self.ballot(),
                },
                1 => Message::Promise {
                    instance: self.u64(),
                    ballot: self.ballot(),
                    accepted: self.opt(|g| Proposal {
                        ballot: g.ballot(),
                        op: g.op(),
                    }),
                    age: Duration::from_micros(self.u64()),
                },
                2 => Message::Accept {
                    instance: self.u64(),
                    ballot: self.ballot(),
                    op: self.op(),
                    age: Duration::from_micros(self.u64()),
                },
                3 => Message::Accepted {
                    instance: self.u64(),
                    ballot: self.ballot(),
                },
                4 => Message::Reject {
                    instance: self.u64(),
                    ballot: self.ballot(),
                    promised: self.ballot(),
                },
                5 => Message::Commit {
                    instance: self.u64(),
                    ballot: self.ballot(),
                },
                6 => Message::Chosen {
                    instance: self.u64(),
                    op: self.op(),
                },
                7 => Message::CatchUp {
                    next_instance: self.u64(),
                },
                8 => Message::Snapshot {
                    next_instance: self.u64(),
                    state: self.state(),
                },
                9 => Message::Renew {
                    ballot: self.ballot(),
                    term: self.u64(),
                    seq: self.u32(),
                },
                11 => Message::MembersQuery {
                    version: self.u64(),
                    start: self.u64() as u8,
                },
                12 => Message::MembersPart {
                    version: self.u64(),
                    total: self.u64() as u8,
                    start: self.u64() as u8,
                    part: [
                        self.opt(Self::member),
                        self.opt(Self::member),
                        self.opt(Self::member),
                        self.opt(Self::member),
                    ],
                },
                13 => Message::RejoinQuery { nonce: self.u32() },
                14 => Message::RejoinReply {
                    nonce: self.u32(),
                    instance: self.u64(),
                    promised: self.ballot(),
                },
                _ => Message::Renewed {
                    ballot: self.ballot(),
                    term: self.u64(),
                    seq: self.u32(),
                },
            };
            Packet {
                header: Header {
                    protocol: self.u64() as u8,
                    cluster: self.u32(),
                    from: NodeId(self.u16()),
                    renewal: if self.below(2) == 0 {
                        Renewal::Lease
                    } else {
                        Renewal::Logged
                    },
                },
                message,
            }
        }
    }

    fn postcard_take(bytes: &[u8]) -> Result<(Packet, usize), WireError> {
        postcard::take_from_bytes::<Packet>(bytes)
            .map(|(p, rest)| (p, rest.len()))
            .map_err(|e| match e {
                postcard::Error::DeserializeUnexpectedEnd => WireError::Truncated,
                _ => WireError::Malformed,
            })
    }

    fn hand_take(bytes: &[u8]) -> Result<(Packet, usize), WireError> {
        take(bytes).map(|(p, rest)| (p, rest.len()))
    }

    #[test]
    fn encodes_the_bytes_postcard_writes() {
        let mut g = Gen(1);
        for case in 0..20_000 {
            let p = g.packet();
            let mut a = [0u8; MAX_PACKET_SIZE];
            let mut b = [0u8; MAX_PACKET_SIZE];
            let n = encode(&p.header, &p.message, &mut a).unwrap();
            let m = postcard::to_slice(&p, &mut b).unwrap().len();
            assert_eq!(&a[..n], &b[..m], "case {case}: {p:?}");
            assert_eq!(hand_take(&a[..n]), Ok((p, 0)), "case {case}");
            // Every buffer too short is refused, never overrun.
            for short in [0, n / 2, n - 1] {
                assert_eq!(
                    encode(&p.header, &p.message, &mut a[..short]),
                    Err(WireError::BufferTooSmall)
                );
            }
        }
    }

    #[test]
    fn decodes_random_and_mutated_bytes_as_postcard_does() {
        let mut g = Gen(2);
        let mut buf = [0u8; MAX_PACKET_SIZE + 8];
        let mut accepted = 0;
        for case in 0..200_000 {
            let len = if g.below(2) == 0 {
                // A valid packet, then mutated: a byte changed, cut, or extended.
                let p = g.packet();
                let mut n = encode(&p.header, &p.message, &mut buf).unwrap();
                for _ in 0..=g.below(3) {
                    match g.below(4) {
                        0 if n > 0 => buf[g.below(n as u64) as usize] = g.next() as u8,
                        1 if n > 0 => buf[g.below(n as u64) as usize] ^= 0x80,
                        2 => n = g.below(n as u64 + 1) as usize,
                        _ if n < buf.len() => {
                            buf[n] = g.next() as u8;
                            n += 1;
                        }
                        _ => {}
                    }
                }
                n
            } else {
                // Random bytes, mostly small values (valid variant and option bytes).
                let n = g.below(buf.len() as u64) as usize;
                for b in &mut buf[..n] {
                    *b = match g.below(3) {
                        0 => g.below(3) as u8,
                        1 => g.below(12) as u8,
                        _ => g.next() as u8,
                    };
                }
                n
            };
            let want = postcard_take(&buf[..len]);
            accepted += usize::from(want.is_ok());
            assert_eq!(
                hand_take(&buf[..len]),
                want,
                "case {case}: {:?}",
                &buf[..len]
            );
        }
        assert!(
            accepted > 10_000,
            "too few valid inputs to mean much: {accepted}"
        );
    }

    fn postcard_take_record(bytes: &[u8]) -> Result<(Record, usize), WireError> {
        postcard::take_from_bytes::<Record>(bytes)
            .map(|(r, rest)| (r, rest.len()))
            .map_err(|e| match e {
                postcard::Error::DeserializeUnexpectedEnd => WireError::Truncated,
                _ => WireError::Malformed,
            })
    }

    #[test]
    fn encodes_records_as_postcard_does() {
        use postcard::experimental::max_size::MaxSize;
        let mut g = Gen(3);
        for case in 0..20_000 {
            let r = g.record();
            let mut a = [0u8; Record::POSTCARD_MAX_SIZE];
            let mut b = [0u8; Record::POSTCARD_MAX_SIZE];
            let n = encode_record(&r, &mut a).unwrap();
            let m = postcard::to_slice(&r, &mut b).unwrap().len();
            assert_eq!(&a[..n], &b[..m], "case {case}: {r:?}");
            assert_eq!(take_record(&a[..n], 4), Ok((r, 0)), "case {case}");
            for short in [0, n / 2, n - 1] {
                assert_eq!(
                    encode_record(&r, &mut a[..short]),
                    Err(WireError::BufferTooSmall)
                );
            }
        }
    }

    #[test]
    fn decodes_random_and_mutated_record_bodies_as_postcard_does() {
        use postcard::experimental::max_size::MaxSize;
        let mut g = Gen(4);
        let mut buf = [0u8; Record::POSTCARD_MAX_SIZE + 8];
        let mut accepted = 0;
        for case in 0..200_000 {
            let len = if g.below(2) == 0 {
                let r = g.record();
                let mut n = encode_record(&r, &mut buf).unwrap();
                for _ in 0..=g.below(3) {
                    match g.below(4) {
                        0 if n > 0 => buf[g.below(n as u64) as usize] = g.next() as u8,
                        1 if n > 0 => buf[g.below(n as u64) as usize] ^= 0x80,
                        2 => n = g.below(n as u64 + 1) as usize,
                        _ if n < buf.len() => {
                            buf[n] = g.next() as u8;
                            n += 1;
                        }
                        _ => {}
                    }
                }
                n
            } else {
                let n = g.below(buf.len() as u64) as usize;
                for b in &mut buf[..n] {
                    *b = match g.below(3) {
                        0 => g.below(3) as u8,
                        1 => g.below(12) as u8,
                        _ => g.next() as u8,
                    };
                }
                n
            };
            let want = postcard_take_record(&buf[..len]);
            accepted += usize::from(want.is_ok());
            assert_eq!(
                take_record(&buf[..len], 4),
                want,
                "case {case}: {:?}",
                &buf[..len]
            );
        }
        assert!(
            accepted > 10_000,
            "too few valid inputs to mean much: {accepted}"
        );
    }

    #[test]
    fn overlong_and_oversized_varints_follow_postcard() {
        // Header: protocol 2, then cluster varints of every kind.
        for cluster in [
            &[0x80, 0x00][..],                  // overlong zero: accepted
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F],    // u32::MAX
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x10],    // too large for a u32
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0], // too long
            &[0x80],                            // cut
        ] {
            let mut bytes = [0u8; 16];
            bytes[0] = 2;
            bytes[1..1 + cluster.len()].copy_from_slice(cluster);
            let n = 1 + cluster.len();
            // from = 1, renewal = 0, CatchUp(3)
            bytes[n..n + 4].copy_from_slice(&[1, 0, 7, 3]);
            for len in [n, n + 4] {
                assert_eq!(
                    hand_take(&bytes[..len]),
                    postcard_take(&bytes[..len]),
                    "{cluster:?}"
                );
            }
        }
    }
}

//! The simulator's driver of one node: the [`Effects`] its [`Executor`] runs, keeping
//! only what is the simulator's own.
//!
//! The executor persists, seals and fans out sends, and hands out events, in order, and
//! refuses a send that promises more than was stored. The driver adds the virtual disk
//! (with its read-back check), the network, the checker's hooks, the trace, and the
//! faults of the faulty phase: a crash between two outputs (the rest is lost) or right
//! after a send is an [`Effects`] error that stops the drain, after which the world
//! crashes the node. With [`Plant::SendBeforePersist`] the driver reports every record
//! stored at once but writes it to the disk only after the input's sends: the disk lags
//! what was sent, which the checker's persist-before-send check (on the disk, not on the
//! executor's belief) catches, and a crash in between loses it.
//!
//! The executor calls [`Effects::send`] once per destination; the driver needs the
//! send as one output (one crash point before it and one after it, one trace line, one
//! checker call, in the order the simulator always drew them). It groups the calls back:
//! a call continues the previous send if it carries the same packet to the next member
//! of a fan-out to all. The core sends to one member only in reply to the input's
//! sender, so two sends to one member each never look like a fan-out; the world checks
//! after every drain that the sends it saw are the sends the node counted.

use std::hash::Hash;

use tenure::{Effects, Event, ExecError, Executor, NodeId, Packet, Record, MAX_RECORD_SIZE};

use super::show::{fmt_ballot, fmt_op, fmt_state};
use super::{fmt_msg, Plant, SimNode, ViolationKind, World};

/// Why the driver stopped a drain: the world crashes the node.
#[derive(Debug)]
pub(super) struct Crash {
    /// What the trace says about it.
    pub(super) why: &'static str,
    /// How long the node stays down.
    pub(super) down: u64,
}

/// A send whose fan-out may not be complete yet.
struct Fanout {
    packet: Packet,
    /// The first destination.
    first: NodeId,
    /// The slot of the last destination.
    last: usize,
    /// Destinations so far.
    count: usize,
    /// The destinations so far are the first ones of a fan-out to all.
    to_all: bool,
}

/// Node `i`'s driver for one drain.
pub(super) struct Driver<'w> {
    world: &'w mut World,
    i: usize,
    /// The faulty phase: crashes between outputs and after sends.
    faulty: bool,
    /// [`Plant::SendBeforePersist`], and this input both persists and sends.
    reordered: bool,
    /// Outputs begun in this drain.
    begun: usize,
    /// The last output begun was a persist.
    previous_persist: bool,
    open: Option<Fanout>,
    /// [`Plant::SendBeforePersist`]: records reported stored, written after the sends.
    deferred: Vec<Record>,
    /// Send outputs seen in this drain.
    sends: u64,
    /// The node's other members, as slot indices in its member-list order (a fan-out to
    /// all goes to them in this order).
    order: Vec<usize>,
    /// The voters of the node's member list, a bit per slot index.
    voters: u32,
}

impl<'w> Driver<'w> {
    /// The driver of node `i` for one drain; `reordered`: the planted reordering moves
    /// a persist of this input after its sends.
    pub(super) fn new(world: &'w mut World, i: usize, reordered: bool, node: &SimNode) -> Self {
        let faulty = world.phase == super::Phase::Chaos;
        let slot = |id: NodeId| world.slots.iter().position(|s| s.id == id);
        let order = node
            .members()
            .iter()
            .filter(|m| m.id != node.id())
            .filter_map(|m| slot(m.id))
            .collect();
        let voters = node
            .members()
            .iter()
            .filter(|m| m.role.votes())
            .filter_map(|m| slot(m.id))
            .fold(0u32, |acc, k| acc | 1 << k);
        Driver {
            world,
            i,
            faulty,
            reordered,
            begun: 0,
            previous_persist: false,
            open: None,
            deferred: Vec::new(),
            sends: 0,
            order,
            voters,
        }
    }

    /// Drains `node` through `exec`; returns how many sends it saw, and the crash that
    /// stopped it, if any.
    pub(super) fn run(mut self, exec: &mut Executor, node: &mut SimNode) -> (u64, Option<Crash>) {
        loop {
            let refused = match exec.drain(node, &mut self) {
                Ok(_) => break,
                Err(ExecError::Effects(crash)) => return (self.sends, Some(crash)),
                Err(ExecError::Unpersisted(message)) => (
                    ViolationKind::Unpersisted,
                    format!(
                        "node {} asked to send {message:?}, which its disk does not hold \
                         (the executor refused it)",
                        self.i + 1
                    ),
                ),
                Err(ExecError::Encode(e)) => (
                    ViolationKind::Wire,
                    format!("node {}: cannot seal a packet: {e}", self.i + 1),
                ),
            };
            // A refused send is one output, not sent; the drain goes on after it.
            if let Err(crash) = self.close() {
                return (self.sends, Some(crash));
            }
            self.sends += 1;
            self.world.violation(refused.0, refused.1);
        }
        let rest = self.close().and_then(|()| self.write_deferred());
        (self.sends, rest.err())
    }

    /// Before each output but the first of a drain: maybe crash, the rest is lost.
    fn begin(&mut self, send: bool, persist: bool) -> Result<(), Crash> {
        if self.begun > 0 && self.faulty {
            let mid = self.world.params.crash_mid_ppm;
            // Just after a persist, before the send it guards, is the interesting point.
            let ppm = if self.previous_persist && send {
                mid.saturating_mul(10)
            } else {
                mid
            };
            if self.world.rng.chance_ppm(ppm) {
                self.world.stats.mid_drain_crashes += 1;
                return Err(Crash {
                    why: "between two outputs; the rest is lost",
                    down: self.world.downtime(),
                });
            }
        }
        self.begun += 1;
        self.previous_persist = persist;
        self.world.outputs_executed += 1;
        Ok(())
    }

    /// Ends the open send, if any: its trace line, then maybe a crash right after it.
    fn close(&mut self) -> Result<(), Crash> {
        let Some(sent) = self.open.take() else {
            return Ok(());
        };
        let id = self.world.slots[self.i].id;
        let everyone = sent.to_all && sent.count == self.order.len();
        self.world.note(|| {
            let dest = if everyone {
                "all".to_string()
            } else {
                format!("n{}", sent.first)
            };
            format!("n{id}   -> {dest} {}", fmt_msg(&sent.packet.message))
        });
        if self.faulty {
            // With the planted reordering, a crash here loses the records not written.
            let ppm = if self.reordered {
                300_000
            } else {
                self.world.params.crash_after_send_ppm
            };
            if self.world.rng.chance_ppm(ppm) {
                self.world.stats.after_send_crashes += 1;
                return Err(Crash {
                    why: "right after a send",
                    down: self.world.downtime(),
                });
            }
        }
        Ok(())
    }

    /// [`Plant::SendBeforePersist`]: the records, after the sends.
    fn write_deferred(&mut self) -> Result<(), Crash> {
        for record in std::mem::take(&mut self.deferred) {
            self.begin(false, true)?;
            self.store(&record);
        }
        Ok(())
    }

    /// Writes `record` to the virtual disk.
    fn store(&mut self, record: &Record) {
        let w = &mut *self.world;
        // The disk holds bytes: what a restart reads back must be what was stored.
        let mut buf = [0u8; MAX_RECORD_SIZE];
        let stored = record
            .encode(&mut buf)
            .and_then(|len| Record::decode(&buf[..len]));
        if stored != Ok(*record) {
            w.violation(
                ViolationKind::Wire,
                format!("record {record:?} reads back as {stored:?}"),
            );
        }
        w.slots[self.i].disk = Some(*record);
        w.records_written += 1;
        w.checker.on_persist(w.now, self.i, record);
        record.hash(&mut w.hash);
        let id = w.slots[self.i].id;
        w.note(|| {
            format!(
                "n{id}   persist instance {} promised {} accepted {} state {}",
                record.instance(),
                fmt_ballot(record.promised()),
                record.accepted().map_or("-".into(), |p| format!(
                    "{}:{}",
                    fmt_ballot(p.ballot),
                    fmt_op(&p.op)
                )),
                fmt_state(record.election())
            )
        });
    }

    /// The slot index of member `id`.
    fn index(&self, id: NodeId) -> Option<usize> {
        self.world.slots.iter().position(|s| s.id == id)
    }

    /// The slot after slot `j` (or the first, for `None`) in a fan-out to all: every
    /// other node, in member order.
    fn after(&self, j: Option<usize>) -> Option<usize> {
        match j {
            None => self.order.first().copied(),
            Some(j) => {
                let at = self.order.iter().position(|&k| k == j)?;
                self.order.get(at + 1).copied()
            }
        }
    }
}

impl Effects for Driver<'_> {
    type Error = Crash;

    fn persist(&mut self, record: &Record) -> Result<(), Crash> {
        self.close()?;
        if self.world.opts.plant == Plant::SendBeforePersist {
            // The planted bug: "stored" now, written after this input's sends.
            self.deferred.push(*record);
            return Ok(());
        }
        self.begin(false, true)?;
        self.store(record);
        Ok(())
    }

    fn send(&mut self, to: NodeId, frame: &[u8], packet: &Packet) -> Result<(), Crash> {
        let j = self.index(to);
        let continues = self.open.as_ref().is_some_and(|f| {
            f.to_all && f.packet == *packet && j.is_some() && j == self.after(Some(f.last))
        });
        if continues {
            if let (Some(f), Some(j)) = (self.open.as_mut(), j) {
                f.count += 1;
                f.last = j;
            }
        } else {
            // A new output.
            self.close()?;
            self.begin(true, false)?;
            self.sends += 1;
            let (i, w) = (self.i, &mut *self.world);
            if w.opts.durability_check {
                // Persist before send, on what the disk holds (not what the executor was
                // told): how a driver that stores late is caught.
                let disk = w.slots[i].disk;
                w.checker
                    .check_durable(w.now, i, disk.as_ref(), &packet.message);
            }
            w.checker.on_send(w.now, i, self.voters, &packet.message);
            let body = if w.params.auth {
                &frame[..frame.len().saturating_sub(tenure::auth::TAG_LEN)]
            } else {
                frame
            };
            if tenure::decode(body) != Ok(*packet) {
                w.violation(
                    ViolationKind::Wire,
                    format!("{packet:?} does not survive encode and decode"),
                );
            }
            self.open = Some(Fanout {
                packet: *packet,
                first: to,
                last: j.unwrap_or(usize::MAX),
                count: 1,
                to_all: j.is_some() && j == self.after(None),
            });
        }
        if let Some(j) = j {
            let answer = matches!(packet.message, tenure::Message::Renewed { .. });
            self.world.transmit(self.i, j, frame, answer);
        }
        Ok(())
    }

    fn event(&mut self, e: &Event) -> Result<(), Crash> {
        self.close()?;
        self.begin(false, false)?;
        let (i, w) = (self.i, &mut *self.world);
        e.hash(&mut w.hash);
        let id = w.slots[i].id;
        w.note(|| format!("n{id}   event {e:?}"));
        if let Event::BecameMaster { .. } = e {
            if w.opts.plant == Plant::LeaseFromSuccess {
                let local = w.slots[i].clock.local(w.now);
                w.slots[i].belief_until = Some(local + w.opts.lease);
            }
        }
        Ok(())
    }
}

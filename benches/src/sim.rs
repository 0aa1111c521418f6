//! A deterministic, single-threaded, in-memory network in virtual time.
//!
//! The simulator knows nothing about the protocols: it hands each node its
//! timer calls and the encoded bytes addressed to it, and carries the encoded
//! bytes each node sends to their destination after a fixed one-way delay.
//! Every message crosses it as bytes produced by the library's own codec.
//!
//! Once warmed up, the simulator itself does not allocate: message buffers
//! come from a pool and go back to it after delivery, and the event queue
//! keeps its capacity. So the allocations counted around a round are the
//! library's (and its codec's), not the harness's.

use std::collections::VecDeque;
use tenure::TagKey;

/// Virtual time, in nanoseconds.
pub type Nanos = u64;

/// One millisecond of virtual time.
pub const MS: Nanos = 1_000_000;

/// The settings shared by every contender.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Number of nodes.
    pub nodes: usize,
    /// One-way network delay of every message.
    pub delay: Nanos,
    /// Heartbeat period: raft-rs's tick (with `heartbeat_tick = 1`) and
    /// OmniPaxos's tick (with `election_tick_timeout = 1`). Tenure renews on
    /// its own schedule, derived from its lease (`Config::renew_interval`).
    pub period: Nanos,
    /// The timing setting that guards safety, in periods: raft-rs's election
    /// timeout (`election_tick`) and Tenure's lease.
    pub guard_periods: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            nodes: 5,
            delay: MS,
            period: 50 * MS,
            guard_periods: 10,
        }
    }
}

impl Params {
    /// The safety-guarding setting in virtual nanoseconds.
    pub fn guard(&self) -> Nanos {
        self.period * self.guard_periods
    }
}

/// Where a node puts the messages it sends.
pub struct Outbox<'a> {
    pool: &'a mut Vec<Vec<u8>>,
    queued: &'a mut Vec<(usize, Vec<u8>)>,
    /// Set by [`Sealed`]: every message gets this key's tag appended.
    seal: Option<&'a TagKey>,
}

impl Outbox<'_> {
    /// Sends one message to node `to`; `encode` writes its bytes into an
    /// empty buffer.
    pub fn send(&mut self, to: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        encode(&mut buf);
        if let Some(key) = self.seal {
            let tag = key.tag(&buf);
            buf.extend_from_slice(&tag);
        }
        self.queued.push((to, buf));
    }

    /// The same outbox, tagging every message with `key`.
    pub fn sealed<'b>(&'b mut self, key: &'b TagKey) -> Outbox<'b> {
        Outbox {
            pool: &mut *self.pool,
            queued: &mut *self.queued,
            seal: Some(key),
        }
    }
}

/// One contender, driven through its public API.
///
/// Nodes are numbered `0..nodes`. Each implementation owns a whole cluster.
pub trait Protocol: Sized {
    /// Library name, as printed in the report.
    const NAME: &'static str;
    /// Builds a fresh cluster; `seed` varies what the library lets vary
    /// (timer phases, randomness).
    fn build(params: &Params, seed: u64) -> Self;
    /// Number of nodes.
    fn len(&self) -> usize;
    /// Called once per node at time 0, right after `build`, to execute what
    /// a freshly started node has to do before any input.
    fn on_start(&mut self, _node: usize, _out: &mut Outbox<'_>) {}
    /// `true` if the cluster has no node.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The node's next timer deadline, if any.
    fn next_timer(&self, node: usize) -> Option<Nanos>;
    /// Fires the node's timer(s) due at `now`. After this, `next_timer` must
    /// be later than `now`.
    fn on_timer(&mut self, node: usize, now: Nanos, out: &mut Outbox<'_>);
    /// Decodes and handles one message, then sends what the node has to send.
    fn on_message(&mut self, node: usize, now: Nanos, msg: &[u8], out: &mut Outbox<'_>);
    /// Whom `node` believes to be the leader/master at `now`, if anyone.
    fn leader_of(&self, node: usize, now: Nanos) -> Option<usize>;
    /// `true` if `node` itself holds the leadership at `now` (can act as
    /// leader).
    fn is_leader(&self, node: usize, now: Nanos) -> bool;
    /// Writes the library required to be durable so far, all nodes
    /// together (kept in memory here; each is a synced write in production).
    fn durable_writes(&self) -> u64 {
        0
    }
    /// Length of one steady-state round: the interval at which the leader
    /// renews (heartbeat period, BLE round, Tenure's renewal interval).
    fn round_period(params: &Params) -> Nanos {
        params.period
    }
    /// The name of [`Sealed<Self>`] in the report.
    const SEALED_NAME: &'static str = "(sealed)";
    /// One node's state as the library defines it.
    type Node;
    /// Gives up everything but the nodes themselves (drivers' buffers, the
    /// stand-in for disk where it lives outside the node).
    fn into_nodes(self) -> Vec<Self::Node>;
    /// Name of the library's timing setting that failover is measured
    /// against (the one that guards safety, where there is one).
    const GUARD: &'static str;
    /// That setting's value under `params`.
    fn guard(params: &Params) -> Nanos;
}

struct Event {
    at: Nanos,
    to: usize,
    buf: Vec<u8>,
}

/// Which timers fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timers {
    /// Every live node's.
    All,
    /// Only this node's (the others' timer calls are withheld).
    Only(usize),
}

/// Counters of the traffic the simulator carried.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    /// Messages sent.
    pub messages: u64,
    /// Encoded bytes sent.
    pub bytes: u64,
}

/// The simulated network plus the cluster.
pub struct Sim<P: Protocol> {
    /// The cluster under test.
    pub proto: P,
    /// Current virtual time.
    pub now: Nanos,
    params: Params,
    /// Messages in flight. Every message takes the same delay, so sending
    /// order is delivery order and a FIFO is a time-ordered queue.
    queue: VecDeque<Event>,
    /// Each node's timer as it last armed it (`poll`ed after its last
    /// input, as a real driver does).
    timer: Vec<Option<Nanos>>,
    pool: Vec<Vec<u8>>,
    queued: Vec<(usize, Vec<u8>)>,
    down: Vec<bool>,
    /// Which timers fire.
    pub timers: Timers,
    /// Traffic carried so far.
    pub traffic: Traffic,
}

impl<P: Protocol> Sim<P> {
    /// A fresh cluster at time 0.
    pub fn new(params: &Params, seed: u64) -> Self {
        let proto = P::build(params, seed);
        let n = proto.len();
        let mut sim = Sim {
            proto,
            now: 0,
            params: *params,
            queue: VecDeque::with_capacity(1024),
            timer: vec![None; n],
            pool: (0..256).map(|_| Vec::with_capacity(512)).collect(),
            queued: Vec::with_capacity(256),
            down: vec![false; n],
            timers: Timers::All,
            traffic: Traffic::default(),
        };
        for i in 0..n {
            let mut out = Outbox {
                pool: &mut sim.pool,
                queued: &mut sim.queued,
                seal: None,
            };
            sim.proto.on_start(i, &mut out);
            sim.timer[i] = sim.proto.next_timer(i);
        }
        sim.flush(0);
        sim
    }

    /// The parameters the cluster was built with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Stops a node: it gets no more timer calls or messages, and what was
    /// in flight to it is lost.
    pub fn stop(&mut self, node: usize) {
        self.down[node] = true;
    }

    /// `true` if the node was stopped.
    pub fn is_down(&self, node: usize) -> bool {
        self.down[node]
    }

    fn next_timer(&self) -> Option<(Nanos, usize)> {
        let mut best: Option<(Nanos, usize)> = None;
        for i in 0..self.proto.len() {
            if self.down[i] {
                continue;
            }
            if let Timers::Only(only) = self.timers {
                if only != i {
                    continue;
                }
            }
            if let Some(t) = self.timer[i] {
                let t = t.max(self.now);
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, i));
                }
            }
        }
        best
    }

    fn flush(&mut self, from_time: Nanos) {
        let at = from_time + self.params.delay;
        for (to, buf) in self.queued.drain(..) {
            self.traffic.messages += 1;
            self.traffic.bytes += buf.len() as u64;
            self.queue.push_back(Event { at, to, buf });
        }
    }

    /// Runs one event (a message delivery or a timer call) if one is due
    /// before `until`. Messages due at the same instant as a timer go first.
    pub fn step(&mut self, until: Nanos) -> bool {
        let msg_at = self.queue.front().map(|e| e.at);
        let timer = self.next_timer();
        let take_msg = match (msg_at, timer) {
            (Some(m), Some((t, _))) => m <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if take_msg {
            let at = msg_at.unwrap_or(0);
            if at >= until {
                return false;
            }
            let ev = self.queue.pop_front().expect("peeked");
            self.now = at;
            if !self.down[ev.to] {
                let mut out = Outbox {
                    pool: &mut self.pool,
                    queued: &mut self.queued,
                    seal: None,
                };
                self.proto.on_message(ev.to, at, &ev.buf, &mut out);
                self.timer[ev.to] = self.proto.next_timer(ev.to);
            }
            self.pool.push(ev.buf);
        } else {
            let (at, node) = timer.expect("some");
            if at >= until {
                return false;
            }
            self.now = at;
            let mut out = Outbox {
                pool: &mut self.pool,
                queued: &mut self.queued,
                seal: None,
            };
            self.proto.on_timer(node, at, &mut out);
            self.timer[node] = self.proto.next_timer(node);
            if let Some(next) = self.timer[node] {
                assert!(next > at, "{}: timer did not move forward", P::NAME);
            }
        }
        self.flush(self.now);
        true
    }

    /// Runs every event due before `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Nanos) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds (checked after every event) or `limit` is
    /// reached; returns the time it first held.
    pub fn run_until_cond(
        &mut self,
        limit: Nanos,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<Nanos> {
        if done(self) {
            return Some(self.now);
        }
        while self.step(limit) {
            if done(self) {
                return Some(self.now);
            }
        }
        None
    }

    /// The leader every live node agrees on, if there is one and it holds
    /// the leadership itself.
    pub fn agreed_leader(&self) -> Option<usize> {
        let mut agreed = None;
        for i in 0..self.proto.len() {
            if self.down[i] {
                continue;
            }
            let l = self.proto.leader_of(i, self.now)?;
            if *agreed.get_or_insert(l) != l {
                return None;
            }
        }
        let l = agreed?;
        (!self.down[l] && self.proto.is_leader(l, self.now)).then_some(l)
    }
}

impl<P: Protocol> Sim<P> {
    /// Gives up the network and keeps the cluster.
    pub fn into_proto(self) -> P {
        self.proto
    }
}

/// Small deterministic generator for timer phases.
pub fn splitmix(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The cluster key of every sealed contender (Tenure's `Auth::key`, and the
/// [`Sealed`] wrapper's).
pub const BENCH_KEY: [u8; 32] = [0x5a; 32];

/// A contender whose every message carries the tag Tenure puts on its
/// frames (SipHash-2-4-128 over the encoded bytes, with the same
/// [`TagKey`] code), verified before the library sees the bytes: so that
/// authentication is compared like for like. raft-rs and OmniPaxos have no
/// message authentication of their own.
pub struct Sealed<P> {
    inner: P,
    key: TagKey,
}

impl<P: Protocol> Protocol for Sealed<P> {
    const NAME: &'static str = P::SEALED_NAME;
    const GUARD: &'static str = P::GUARD;

    fn guard(params: &Params) -> Nanos {
        P::guard(params)
    }
    fn build(params: &Params, seed: u64) -> Self {
        Sealed {
            inner: P::build(params, seed),
            key: TagKey::new(&tenure::Key(BENCH_KEY)),
        }
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn on_start(&mut self, node: usize, out: &mut Outbox<'_>) {
        self.inner.on_start(node, &mut out.sealed(&self.key));
    }
    fn next_timer(&self, node: usize) -> Option<Nanos> {
        self.inner.next_timer(node)
    }
    fn on_timer(&mut self, node: usize, now: Nanos, out: &mut Outbox<'_>) {
        self.inner.on_timer(node, now, &mut out.sealed(&self.key));
    }
    fn on_message(&mut self, node: usize, now: Nanos, msg: &[u8], out: &mut Outbox<'_>) {
        let cut = msg
            .len()
            .checked_sub(tenure::auth::TAG_LEN)
            .expect("no tag");
        let (body, tag) = msg.split_at(cut);
        assert!(self.key.verify(body, tag), "{}: bad tag", Self::NAME);
        self.inner
            .on_message(node, now, body, &mut out.sealed(&self.key));
    }
    fn leader_of(&self, node: usize, now: Nanos) -> Option<usize> {
        self.inner.leader_of(node, now)
    }
    fn is_leader(&self, node: usize, now: Nanos) -> bool {
        self.inner.is_leader(node, now)
    }
    fn durable_writes(&self) -> u64 {
        self.inner.durable_writes()
    }
    fn round_period(params: &Params) -> Nanos {
        P::round_period(params)
    }
    type Node = P::Node;
    fn into_nodes(self) -> Vec<Self::Node> {
        self.inner.into_nodes()
    }
}

/// The harness alone: leader 0 sends a 4-byte ping to every other node each
/// period and each answers with one byte; no codec, no state, no allocation.
/// Its cost per message is what the simulator itself adds to every
/// contender's (queue, buffer pool, copy, timer polls).
pub struct Null {
    next: [Nanos; 5],
    period: Nanos,
}

impl Protocol for Null {
    const NAME: &'static str = "harness (null protocol)";
    const GUARD: &'static str = "period";
    fn guard(p: &Params) -> Nanos {
        p.period
    }
    fn build(p: &Params, _seed: u64) -> Self {
        Null {
            next: [p.period; 5],
            period: p.period,
        }
    }
    fn len(&self) -> usize {
        5
    }
    fn next_timer(&self, node: usize) -> Option<Nanos> {
        Some(self.next[node])
    }
    fn on_timer(&mut self, node: usize, _now: Nanos, out: &mut Outbox<'_>) {
        self.next[node] += self.period;
        if node == 0 {
            for to in 1..5 {
                out.send(to, |b| b.extend_from_slice(&[1, 2, 3, 4]));
            }
        }
    }
    fn on_message(&mut self, node: usize, _now: Nanos, msg: &[u8], out: &mut Outbox<'_>) {
        if node != 0 && msg.len() == 4 {
            out.send(0, |b| b.push(9));
        }
    }
    fn leader_of(&self, _node: usize, _now: Nanos) -> Option<usize> {
        Some(0)
    }
    fn is_leader(&self, node: usize, _now: Nanos) -> bool {
        node == 0
    }
    type Node = ();
    fn into_nodes(self) -> Vec<()> {
        vec![(); 5]
    }
}

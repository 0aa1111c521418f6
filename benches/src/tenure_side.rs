//! Tenure, driven through its public API only: `Node::first_boot`,
//! `handle_frame` / `handle_timeout`, `tenure::Executor::drain` after every
//! input (it persists, seals and fans out sends, hands out events, in order,
//! and checks persist-before-send), and `poll_timeout` to re-arm the timer.
//!
//! Settings: `Config::new` defaults (drift bound 1 %, guard 10 ms, round
//! timeout 50 ms, backoff up to 50 ms, priority step 100 ms) with
//! `lease = Params::guard()` (the same value as raft's election timeout) and a
//! different seed per node and trial. Every member is a candidate of equal
//! priority. Tenure renews on its own schedule, so one round here is one
//! renewal interval: in lease mode (protocol 2, the default) a `Renew` round
//! every `Config::renew_every` (a sixth of the lease), nothing written; in
//! logged mode (`TenureCluster<_, true>`, the seed's and PhxPaxos's way) a
//! `BeMaster` chosen through Multi-Paxos every `Config::renew_interval` (a
//! third of the master's term), written by every voter.
//!
//! Every persisted record is encoded with `Record::encode` (what a real
//! driver writes: magic, body, CRC-32) into the node's store buffer, which is
//! then handed to a null store (`std::hint::black_box`): the benchmark counts
//! everything a driver pays except the storage device itself.
//!
//! `TenureCluster<false>` (the one in the table) sends plain packets
//! (`Auth::Insecure`: a frame is the packet's encoding), like raft-rs and
//! OmniPaxos, which have no message authentication of their own.
//! `TenureCluster<true>` sets a cluster key and sends sealed frames (keyed
//! SipHash-2-4-128 tags, the same key and tag as the [`crate::sim::Sealed`] peers).

use crate::sim::{Nanos, Outbox, Params, Protocol};
use std::convert::Infallible;
use tenure::{
    Auth, Config, Duration, Effects, Event, Executor, Instant, Member, Node, NodeId, Packet,
    Record, Renewal, MAX_RECORD_SIZE,
};

/// Member capacity of the benchmark's nodes.
pub const CAP: usize = 5;

/// A Tenure cluster; `SEALED` selects authenticated frames, `LOGGED` the
/// logged renewal ([`Renewal::Logged`]) instead of lease rounds.
pub struct TenureCluster<const SEALED: bool = false, const LOGGED: bool = false> {
    nodes: Vec<Node<CAP>>,
    /// One executor per node (nodes are never restarted here).
    execs: Vec<Executor>,
    /// Each node's store: the last encoded record.
    disk: Vec<[u8; MAX_RECORD_SIZE]>,
    writes: u64,
}

/// What the benchmark does with one node's outputs: records go to memory,
/// frames to the simulated network, events nowhere.
struct Io<'a, 'o> {
    disk: &'a mut [u8; MAX_RECORD_SIZE],
    writes: &'a mut u64,
    out: &'a mut Outbox<'o>,
}

impl Effects for Io<'_, '_> {
    type Error = Infallible;

    fn persist(&mut self, record: &Record) -> Result<(), Infallible> {
        let n = record.encode(self.disk).expect("record fits");
        std::hint::black_box(&self.disk[..n]); // the null store
        *self.writes += 1;
        Ok(())
    }

    fn send(&mut self, to: NodeId, frame: &[u8], _: &Packet) -> Result<(), Infallible> {
        self.out
            .send(usize::from(to.0) - 1, |b| b.extend_from_slice(frame));
        Ok(())
    }

    fn event(&mut self, _: &Event) -> Result<(), Infallible> {
        Ok(())
    }
}

fn instant(now: Nanos) -> Instant {
    Instant::from_micros(now / 1_000)
}

fn config(params: &Params, id: u16, seed: u64, sealed: bool, logged: bool) -> Config<CAP> {
    let members: [Member; CAP] = core::array::from_fn(|i| Member::candidate(i as u16 + 1));
    let mut cfg = Config::new(7, NodeId(id), &members[..params.nodes]).expect("tenure config");
    cfg.lease = Duration::from_micros(params.guard() / 1_000);
    cfg.seed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(id));
    if sealed {
        cfg.auth = Auth::key(crate::sim::BENCH_KEY);
    }
    if logged {
        cfg.renewal = Renewal::Logged;
    }
    cfg
}

impl<const SEALED: bool, const LOGGED: bool> TenureCluster<SEALED, LOGGED> {
    /// Node `i` (0-based), for inspection.
    pub fn node(&self, i: usize) -> &Node<CAP> {
        &self.nodes[i]
    }

    /// Executes the node's outputs in order.
    fn drain(&mut self, i: usize, out: &mut Outbox<'_>) {
        let mut io = Io {
            disk: &mut self.disk[i],
            writes: &mut self.writes,
            out,
        };
        if let Err(e) = self.execs[i].drain(&mut self.nodes[i], &mut io) {
            panic!("tenure node {}: {e}", i + 1);
        }
    }
}

impl<const SEALED: bool, const LOGGED: bool> Protocol for TenureCluster<SEALED, LOGGED> {
    const NAME: &'static str = match (SEALED, LOGGED) {
        (false, false) => "Tenure",
        (true, false) => "Tenure (sealed)",
        (false, true) => "Tenure --renewal logged",
        (true, true) => "Tenure --renewal logged (sealed)",
    };
    const GUARD: &'static str = "lease";

    fn guard(params: &Params) -> Nanos {
        params.guard()
    }

    fn round_period(params: &Params) -> Nanos {
        let config = config(params, 1, 0, SEALED, LOGGED);
        let period = if LOGGED {
            config.renew_interval()
        } else {
            config.renew_every()
        };
        period.as_micros() * 1_000
    }

    fn build(params: &Params, seed: u64) -> Self {
        TenureCluster {
            nodes: (1..=params.nodes as u16)
                .map(|id| {
                    Node::first_boot(config(params, id, seed, SEALED, LOGGED), Instant::ZERO)
                        .expect("tenure node")
                })
                .collect(),
            execs: vec![Executor::new(); params.nodes],
            disk: vec![[0; MAX_RECORD_SIZE]; params.nodes],
            writes: 0,
        }
    }

    fn on_start(&mut self, node: usize, out: &mut Outbox<'_>) {
        // A first boot's first output is its record to store.
        self.drain(node, out);
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn next_timer(&self, node: usize) -> Option<Nanos> {
        self.nodes[node]
            .poll_timeout()
            .map(|t| t.as_micros() * 1_000)
    }

    fn on_timer(&mut self, node: usize, now: Nanos, out: &mut Outbox<'_>) {
        self.nodes[node].handle_timeout(instant(now));
        self.drain(node, out);
    }

    fn on_message(&mut self, node: usize, now: Nanos, msg: &[u8], out: &mut Outbox<'_>) {
        // A dropped frame (a late answer, say) is counted in the node's stats.
        let _ = self.nodes[node].handle_frame(instant(now), msg);
        self.drain(node, out);
    }

    fn durable_writes(&self) -> u64 {
        self.writes
    }

    fn leader_of(&self, node: usize, now: Nanos) -> Option<usize> {
        self.nodes[node]
            .master(instant(now))
            .map(|m| usize::from(m.node.0) - 1)
    }

    fn is_leader(&self, node: usize, now: Nanos) -> bool {
        self.nodes[node].is_master(instant(now))
    }

    type Node = Node<CAP>;

    fn into_nodes(self) -> Vec<Self::Node> {
        self.nodes
    }
}

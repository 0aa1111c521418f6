//! raft-rs 0.7 (protobuf codec), driven through `RawNode`.
//!
//! Settings: `heartbeat_tick = 1` with one tick per period (a heartbeat every
//! period), `election_tick = guard_periods` (the election timeout is the
//! guard), `check_quorum = true` (what keeps a raft leader's lease alive),
//! `pre_vote = false`. Storage is raft's own `MemStorage`; the logger is a
//! discarding slog logger. Every message is encoded with protobuf
//! (`write_to_vec`) and decoded with `parse_from_bytes` on the receiving side.

use crate::sim::{splitmix, Nanos, Outbox, Params, Protocol};
use protobuf::Message as _;
use raft::prelude::*;
use raft::storage::MemStorage;
use raft::StateRole;

/// A raft-rs cluster.
pub struct RaftCluster {
    nodes: Vec<RawNode<MemStorage>>,
    next_tick: Vec<Nanos>,
    period: Nanos,
    writes: u64,
}

impl RaftCluster {
    /// Handles the node's `Ready` the way raft-rs documents it: send
    /// messages, persist entries and hard state, advance, send the light
    /// ready's messages, advance apply.
    fn drain(&mut self, i: usize, out: &mut Outbox<'_>) {
        let rn = &mut self.nodes[i];
        if !rn.has_ready() {
            return;
        }
        let mut rd = rn.ready();
        if rd.must_sync() {
            // Entries, or a term/vote change: raft requires a synced write.
            self.writes += 1;
        }
        send_all(rd.take_messages(), out);
        if !rd.snapshot().is_empty() {
            rn.mut_store()
                .wl()
                .apply_snapshot(rd.snapshot().clone())
                .expect("apply snapshot");
        }
        if !rd.entries().is_empty() {
            rn.mut_store().wl().append(rd.entries()).expect("append");
        }
        if let Some(hs) = rd.hs() {
            rn.mut_store().wl().set_hardstate(hs.clone());
        }
        send_all(rd.take_persisted_messages(), out);
        let mut light = rn.advance(rd);
        if let Some(commit) = light.commit_index() {
            rn.mut_store().wl().mut_hard_state().set_commit(commit);
        }
        send_all(light.take_messages(), out);
        rn.advance_apply();
    }
}

fn send_all(msgs: Vec<Message>, out: &mut Outbox<'_>) {
    for m in msgs {
        let to = (m.to - 1) as usize;
        out.send(to, |buf| m.write_to_vec(buf).expect("protobuf encode"));
    }
}

impl Protocol for RaftCluster {
    const NAME: &'static str = "raft-rs";
    const SEALED_NAME: &'static str = "raft-rs (sealed)";
    const GUARD: &'static str = "election timeout";

    fn guard(params: &Params) -> Nanos {
        params.guard()
    }

    fn build(params: &Params, seed: u64) -> Self {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let voters: Vec<u64> = (1..=params.nodes as u64).collect();
        let mut rng = seed;
        let nodes = (1..=params.nodes as u64)
            .map(|id| {
                let cfg = Config {
                    id,
                    heartbeat_tick: 1,
                    election_tick: params.guard_periods as usize,
                    check_quorum: true,
                    pre_vote: false,
                    ..Default::default()
                };
                let store =
                    MemStorage::new_with_conf_state(ConfState::from((voters.clone(), vec![])));
                RawNode::new(&cfg, store, &logger).expect("raft node")
            })
            .collect();
        // Each node's tick clock starts at its own phase within a period.
        let next_tick = (0..params.nodes)
            .map(|_| 1 + splitmix(&mut rng) % params.period)
            .collect();
        RaftCluster {
            nodes,
            next_tick,
            period: params.period,
            writes: 0,
        }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn next_timer(&self, node: usize) -> Option<Nanos> {
        Some(self.next_tick[node])
    }

    fn on_timer(&mut self, node: usize, now: Nanos, out: &mut Outbox<'_>) {
        while self.next_tick[node] <= now {
            self.next_tick[node] += self.period;
            self.nodes[node].tick();
        }
        self.drain(node, out);
    }

    fn on_message(&mut self, node: usize, _now: Nanos, msg: &[u8], out: &mut Outbox<'_>) {
        let m = Message::parse_from_bytes(msg).expect("protobuf decode");
        // Errors are raft's way to drop a message (e.g. from a removed peer).
        let _ = self.nodes[node].step(m);
        self.drain(node, out);
    }

    fn durable_writes(&self) -> u64 {
        self.writes
    }

    fn leader_of(&self, node: usize, _now: Nanos) -> Option<usize> {
        match self.nodes[node].raft.leader_id {
            0 => None,
            id => Some((id - 1) as usize),
        }
    }

    fn is_leader(&self, node: usize, _now: Nanos) -> bool {
        self.nodes[node].raft.state == StateRole::Leader
    }

    type Node = RawNode<MemStorage>;

    fn into_nodes(self) -> Vec<Self::Node> {
        self.nodes
    }
}

//! OmniPaxos 0.2.4, driven through `OmniPaxos` with `omnipaxos_storage`'s
//! `MemoryStorage`.
//!
//! Settings: one `tick()` per period with `election_tick_timeout = 1`, so
//! every period each node closes its Ballot Leader Election (BLE) heartbeat
//! round and opens the next one. BLE is all-to-all: every node sends a
//! heartbeat request to every other node each round. `buffer_size = 32`
//! (the default pre-allocates ~20 MB of outgoing buffer per node); other
//! settings are the library's defaults. OmniPaxos ships no wire codec, only
//! serde derives (feature `serde`); messages are encoded with bincode 1
//! (`serialize_into` a reused buffer) and decoded with `bincode::deserialize`.
//! The storage wrapper counts the writes OmniPaxos makes (`durable_writes`).

use crate::sim::{splitmix, Nanos, Outbox, Params, Protocol};
use omnipaxos::ballot_leader_election::Ballot;
use omnipaxos::messages::Message;
use omnipaxos::storage::{Entry, NoSnapshot, StopSign, Storage, StorageOp, StorageResult};
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::rc::Rc;

/// The (unused) log entry type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Value(pub u64);

impl Entry for Value {
    type Snapshot = NoSnapshot;
}

/// `MemoryStorage` plus a count of the writes OmniPaxos asks of it (each
/// would have to be durable with a persistent storage).
pub struct CountingStorage {
    inner: MemoryStorage<Value>,
    writes: Rc<Cell<u64>>,
}

impl CountingStorage {
    fn wrote(&self) {
        self.writes.set(self.writes.get() + 1);
    }
}

impl Storage<Value> for CountingStorage {
    fn write_atomically(&mut self, ops: Vec<StorageOp<Value>>) -> StorageResult<()> {
        self.wrote();
        self.inner.write_atomically(ops)
    }
    fn append_entry(&mut self, entry: Value) -> StorageResult<()> {
        self.wrote();
        self.inner.append_entry(entry)
    }
    fn append_entries(&mut self, entries: Vec<Value>) -> StorageResult<()> {
        self.wrote();
        self.inner.append_entries(entries)
    }
    fn append_on_prefix(&mut self, from_idx: usize, entries: Vec<Value>) -> StorageResult<()> {
        self.wrote();
        self.inner.append_on_prefix(from_idx, entries)
    }
    fn set_promise(&mut self, n_prom: Ballot) -> StorageResult<()> {
        self.wrote();
        self.inner.set_promise(n_prom)
    }
    fn set_decided_idx(&mut self, ld: usize) -> StorageResult<()> {
        self.wrote();
        self.inner.set_decided_idx(ld)
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.inner.get_decided_idx()
    }
    fn set_accepted_round(&mut self, na: Ballot) -> StorageResult<()> {
        self.wrote();
        self.inner.set_accepted_round(na)
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_accepted_round()
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<Value>> {
        self.inner.get_entries(from, to)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.inner.get_log_len()
    }
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<Value>> {
        self.inner.get_suffix(from)
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_promise()
    }
    fn set_stopsign(&mut self, s: Option<StopSign>) -> StorageResult<()> {
        self.wrote();
        self.inner.set_stopsign(s)
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.inner.get_stopsign()
    }
    fn trim(&mut self, idx: usize) -> StorageResult<()> {
        self.wrote();
        self.inner.trim(idx)
    }
    fn set_compacted_idx(&mut self, idx: usize) -> StorageResult<()> {
        self.wrote();
        self.inner.set_compacted_idx(idx)
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.inner.get_compacted_idx()
    }
    fn set_snapshot(&mut self, snapshot: Option<NoSnapshot>) -> StorageResult<()> {
        self.wrote();
        self.inner.set_snapshot(snapshot)
    }
    fn get_snapshot(&self) -> StorageResult<Option<NoSnapshot>> {
        self.inner.get_snapshot()
    }
}

type OmniNode = OmniPaxos<Value, CountingStorage>;

/// An OmniPaxos cluster.
pub struct OmniCluster {
    nodes: Vec<OmniNode>,
    next_tick: Vec<Nanos>,
    period: Nanos,
    outgoing: Vec<Message<Value>>,
    writes: Rc<Cell<u64>>,
}

impl OmniCluster {
    fn drain(&mut self, i: usize, out: &mut Outbox<'_>) {
        self.nodes[i].take_outgoing_messages(&mut self.outgoing);
        for m in self.outgoing.drain(..) {
            let to = (m.get_receiver() - 1) as usize;
            out.send(to, |buf| {
                bincode::serialize_into(buf, &m).expect("bincode encode")
            });
        }
    }
}

impl Protocol for OmniCluster {
    const NAME: &'static str = "OmniPaxos";
    const SEALED_NAME: &'static str = "OmniPaxos (sealed)";
    // OmniPaxos has no lease: its safety does not depend on timing. Its
    // failover is driven by the BLE round (one tick here).
    const GUARD: &'static str = "BLE round";

    fn guard(params: &Params) -> Nanos {
        params.period
    }

    fn build(params: &Params, seed: u64) -> Self {
        let nodes_ids: Vec<u64> = (1..=params.nodes as u64).collect();
        let writes = Rc::new(Cell::new(0));
        let nodes = nodes_ids
            .iter()
            .map(|&pid| {
                let cfg = OmniPaxosConfig {
                    cluster_config: ClusterConfig {
                        configuration_id: 1,
                        nodes: nodes_ids.clone(),
                        flexible_quorum: None,
                    },
                    server_config: ServerConfig {
                        pid,
                        election_tick_timeout: 1,
                        buffer_size: 32,
                        ..Default::default()
                    },
                };
                cfg.build(CountingStorage {
                    inner: MemoryStorage::default(),
                    writes: writes.clone(),
                })
                .expect("omnipaxos node")
            })
            .collect();
        let mut rng = seed ^ 0x5eed;
        let next_tick = (0..params.nodes)
            .map(|_| 1 + splitmix(&mut rng) % params.period)
            .collect();
        OmniCluster {
            nodes,
            next_tick,
            period: params.period,
            outgoing: Vec::new(),
            writes,
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
        let m: Message<Value> = bincode::deserialize(msg).expect("bincode decode");
        self.nodes[node].handle_incoming(m);
        self.drain(node, out);
    }

    fn durable_writes(&self) -> u64 {
        self.writes.get()
    }

    fn leader_of(&self, node: usize, _now: Nanos) -> Option<usize> {
        self.nodes[node]
            .get_current_leader()
            .map(|(pid, _)| (pid - 1) as usize)
    }

    fn is_leader(&self, node: usize, _now: Nanos) -> bool {
        let n = &self.nodes[node];
        n.get_current_leader() == Some((n.get_pid(), true))
    }

    type Node = OmniNode;

    fn into_nodes(self) -> Vec<Self::Node> {
        self.nodes
    }
}

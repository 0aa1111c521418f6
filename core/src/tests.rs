//! Whole-node tests on virtual time: a small cluster helper that carries encoded packets
//! between nodes, checks persist-before-send on every output, and checks that at most one
//! node is master after every event.

use std::vec;
use std::vec::Vec;

use crate::rand::Rng;
use crate::*;

const LEASE_MS: u64 = 1_000;

/// The test cluster's effects for one node: its disk, and what it sent.
struct Io<'a> {
    disk: &'a mut Option<Record>,
    frames: Vec<(NodeId, Vec<u8>)>,
    events: Vec<Event>,
}

impl Effects for Io<'_> {
    type Error = core::convert::Infallible;
    fn persist(&mut self, record: &Record) -> Result<(), Self::Error> {
        *self.disk = Some(*record);
        Ok(())
    }
    fn send(&mut self, to: NodeId, frame: &[u8], _: &Packet) -> Result<(), Self::Error> {
        self.frames.push((to, frame.to_vec()));
        Ok(())
    }
    fn event(&mut self, event: &Event) -> Result<(), Self::Error> {
        self.events.push(*event);
        Ok(())
    }
}

/// A cluster on virtual time with a simple network.
struct Cluster {
    configs: Vec<Config<5>>,
    nodes: Vec<Option<Node<5>>>,
    execs: Vec<Executor>,
    disks: Vec<Option<Record>>,
    now: Instant,
    /// (deliver at, sequence, to, from, bytes)
    net: Vec<(Instant, u64, usize, usize, Vec<u8>)>,
    seq: u64,
    rng: Rng,
    delay: Duration,
    jitter: Duration,
    loss_pct: u64,
    dup_pct: u64,
    /// `cut[from][to]`: messages from `from` to `to` are lost.
    cut: [[bool; 5]; 5],
    events: Vec<(Instant, usize, Event)>,
    /// (when, node, version): every version change a node made.
    learned: Vec<(Instant, usize, u64)>,
    /// Agreement: the holder every node recorded for each version.
    holders: std::collections::BTreeMap<u64, Option<NodeId>>,
    /// Every frame sent: (from, to, bytes), for replay tests.
    recorded: Vec<(usize, usize, Vec<u8>)>,
    max_outputs_seen: usize,
}

impl Cluster {
    fn new(n: usize, seed: u64) -> Self {
        let members: Vec<Member> = (1..=n as u16).map(Member::candidate).collect();
        Self::with_members(&members, seed)
    }

    /// A cluster running the seed's renewal ([`Renewal::Logged`]).
    fn logged(n: usize, seed: u64) -> Self {
        let members: Vec<Member> = (1..=n as u16).map(Member::candidate).collect();
        Self::with_mode(&members, seed, Renewal::Logged)
    }

    fn with_members(members: &[Member], seed: u64) -> Self {
        Self::with_mode(members, seed, Renewal::Lease)
    }

    fn with_mode(members: &[Member], seed: u64, renewal: Renewal) -> Self {
        let n = members.len();
        let configs: Vec<Config<5>> = members
            .iter()
            .map(|m| {
                let mut c = Config::new(7, m.id, members).unwrap();
                c.lease = Duration::from_millis(LEASE_MS);
                c.seed = seed.wrapping_mul(31).wrapping_add(u64::from(m.id.0));
                c.auth = Auth::key([7; 32]);
                c.renewal = renewal;
                c
            })
            .collect();
        let mut cluster = Cluster {
            nodes: configs
                .iter()
                .map(|c| Some(Node::first_boot(c.clone(), Instant::ZERO).unwrap()))
                .collect(),
            configs,
            execs: vec![Executor::new(); n],
            disks: vec![None; n],
            now: Instant::ZERO,
            net: Vec::new(),
            seq: 0,
            rng: Rng::new(seed),
            delay: Duration::from_millis(2),
            jitter: Duration::ZERO,
            loss_pct: 0,
            dup_pct: 0,
            cut: [[false; 5]; 5],
            events: Vec::new(),
            learned: Vec::new(),
            holders: Default::default(),
            recorded: Vec::new(),
            max_outputs_seen: 0,
        };
        for i in 0..n {
            cluster.drain(i);
        }
        cluster
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    fn node(&self, i: usize) -> &Node<5> {
        self.nodes[i].as_ref().expect("node is down")
    }

    fn index(&self, id: NodeId) -> usize {
        usize::from(id.0) - 1
    }

    /// Executes node `i`'s outputs in order through the shared executor (which checks
    /// persist-before-send on every frame; see `docs/algorithm.md`, "Persist before
    /// send").
    fn drain(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let mut io = Io {
            disk: &mut self.disks[i],
            frames: Vec::new(),
            events: Vec::new(),
        };
        let count = match self.execs[i].drain(node, &mut io) {
            Ok(count) => count,
            Err(e) => panic!("node {i}: {e:?}"),
        };
        let Io { frames, events, .. } = io;
        for e in events {
            self.events.push((self.now, i, e));
        }
        for (to, bytes) in frames {
            let j = self.index(to);
            self.transmit(i, j, &bytes);
        }
        self.max_outputs_seen = self.max_outputs_seen.max(count);
        assert!(
            count <= MAX_OUTPUTS_PER_INPUT + 1,
            "{count} outputs from one input"
        );
        if let Some(node) = &self.nodes[i] {
            assert_eq!(node.stats().queue_overflows, 0);
            if let Some(v) = node.version() {
                let last = self.learned.iter().rev().find(|l| l.1 == i).map(|l| l.2);
                if last != Some(v) {
                    self.learned.push((self.now, i, v));
                }
                let holder = node.election_state().master;
                let agreed = *self.holders.entry(v).or_insert(holder);
                assert_eq!(agreed, holder, "node {i} disagrees about version {v}");
            }
        }
    }

    fn transmit(&mut self, from: usize, to: usize, bytes: &[u8]) {
        self.recorded.push((from, to, bytes.to_vec()));
        if self.cut[from][to] || self.rng.below(100) < self.loss_pct {
            return;
        }
        let copies = if self.rng.below(100) < self.dup_pct {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let extra = Duration::from_micros(self.rng.below(self.jitter.as_micros() + 1));
            self.seq += 1;
            self.net.push((
                self.now + self.delay + extra,
                self.seq,
                to,
                from,
                bytes.to_vec(),
            ));
        }
    }

    fn next_timer(&self) -> Option<(Instant, usize)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref()?.poll_timeout().map(|t| (t, i)))
            .min()
    }

    /// Runs one event (a delivery or a timer); returns false if there is none.
    fn step(&mut self) -> bool {
        let msg = self
            .net
            .iter()
            .enumerate()
            .min_by_key(|(_, m)| (m.0, m.1))
            .map(|(k, m)| (m.0, k));
        let timer = self.next_timer();
        match (msg, timer) {
            (Some((t, k)), timer) if timer.is_none_or(|(tt, _)| t <= tt) => {
                let (at, _, to, _, bytes) = self.net.swap_remove(k);
                self.now = self.now.max(at);
                // (A member added before its node started is not there yet.)
                if let Some(node) = self.nodes.get_mut(to).and_then(Option::as_mut) {
                    let _ = node.handle_frame(self.now, &bytes); // drops are counted
                    self.drain(to);
                }
            }
            (_, Some((t, i))) => {
                self.now = self.now.max(t);
                self.nodes[i].as_mut().unwrap().handle_timeout(self.now);
                self.drain(i);
            }
            _ => return false,
        }
        self.assert_one_master();
        true
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..2_000_000 {
            let next = self
                .net
                .iter()
                .map(|m| m.0)
                .chain(self.next_timer().map(|t| t.0))
                .min();
            match next {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
        self.assert_one_master();
    }

    fn run_until(&mut self, limit: Duration, mut f: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if f(self) {
                return true;
            }
            let before = self.now;
            if !self.step() {
                self.now = end;
            }
            if self.now > end {
                self.now = before.max(end);
            }
        }
        f(self)
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.n())
            .filter(|&i| {
                self.nodes[i]
                    .as_ref()
                    .is_some_and(|n| n.is_master(self.now))
            })
            .collect()
    }

    fn assert_one_master(&self) {
        let m = self.masters();
        assert!(m.len() <= 1, "two masters at {}: {m:?}", self.now);
    }

    fn wait_master(&mut self, limit: Duration) -> usize {
        assert!(
            self.run_until(limit, |c| c.masters().len() == 1),
            "no master within {limit}"
        );
        self.masters()[0]
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
        self.net.retain(|m| m.2 != i);
    }

    fn restart(&mut self, i: usize) {
        let record = self.disks[i].expect("restart without a record");
        self.nodes[i] = Some(Node::restore(self.configs[i].clone(), record, self.now).unwrap());
        self.execs[i] = Executor::new();
        self.drain(i);
    }

    fn isolate(&mut self, i: usize, cut: bool) {
        for j in 0..5 {
            self.cut[i][j] = cut;
            self.cut[j][i] = cut;
        }
    }

    fn events_of(&self, i: usize) -> Vec<Event> {
        self.events
            .iter()
            .filter(|e| e.1 == i)
            .map(|e| e.2)
            .collect()
    }
}

fn lease() -> Duration {
    Duration::from_millis(LEASE_MS)
}

#[test]
fn first_election_three_and_five_nodes() {
    for n in [3, 5] {
        for seed in 0..20 {
            let mut c = Cluster::new(n, seed);
            let m = c.wait_master(lease());
            // Every node learns who it is.
            assert!(c.run_until(lease(), |c| (0..n).all(|i| c
                .node(i)
                .master(c.now)
                .map(|v| v.node)
                == Some(NodeId(m as u16 + 1)))));
            assert!(c
                .events_of(m)
                .iter()
                .any(|e| matches!(e, Event::BecameMaster { .. })));
        }
    }
}

/// `docs/algorithm.md` §8 (protocol 2): renewals keep a healthy master, move no version,
/// write nothing, and cost `2 (N - 1)` messages a round.
#[test]
fn lease_renewals_keep_the_master_and_write_nothing() {
    for n in [3usize, 5] {
        let mut c = Cluster::new(n, 1);
        let m = c.wait_master(lease());
        c.run_for(lease());
        let v0 = c.node(m).version();
        let persists0: Vec<u32> = (0..n).map(|i| c.node(i).stats().persists).collect();
        let out0: u64 = (0..n)
            .map(|i| u64::from(c.node(i).stats().messages_out))
            .sum();
        let sent0 = c.recorded.len();
        let rounds0 = c.node(m).stats().renewals_completed;
        for _ in 0..20 {
            c.run_for(lease() / 2);
            assert_eq!(c.masters(), vec![m], "master changed while healthy");
        }
        assert_eq!(c.node(m).version(), v0, "a renewal moved the register");
        let rounds = u64::from(c.node(m).stats().renewals_completed - rounds0);
        assert!(
            rounds >= 55,
            "only {rounds} rounds in 10 leases (one per sixth)"
        );
        for (i, before) in persists0.iter().enumerate() {
            assert_eq!(
                c.node(i).stats().persists,
                *before,
                "node {i} wrote during renewals"
            );
        }
        let frames = (c.recorded.len() - sent0) as u64;
        assert_eq!(frames, rounds * 2 * (n as u64 - 1), "frames per round");
        let outputs: u64 = (0..n)
            .map(|i| u64::from(c.node(i).stats().messages_out))
            .sum::<u64>()
            - out0;
        assert_eq!(
            outputs,
            rounds * n as u64,
            "one Renew and n-1 answers per round"
        );
    }
}

#[test]
fn logged_renewal_keeps_the_master_and_increases_the_version() {
    let mut c = Cluster::logged(3, 1);
    let m = c.wait_master(lease());
    let v0 = c.node(m).version().unwrap();
    let persists0: Vec<u32> = (0..3).map(|i| c.node(i).stats().persists).collect();
    for _ in 0..20 {
        c.run_for(lease() / 2);
        assert_eq!(c.masters(), vec![m], "master changed while healthy");
    }
    let v1 = c.node(m).version().unwrap();
    assert!(v1 >= v0 + 20, "only {} renewals in 10 leases", v1 - v0);
    // One durable write per node per renewal: the vote. Learning writes nothing.
    for (i, before) in persists0.iter().enumerate() {
        let writes = u64::from(c.node(i).stats().persists - before);
        // +1: a renewal already in flight when counting started.
        let renewals = v1 - v0 + 1;
        assert!(
            writes <= renewals,
            "node {i}: {writes} writes for {renewals} renewals"
        );
    }
    assert!(!c
        .events_of(m)
        .iter()
        .any(|e| matches!(e, Event::TermEnded { .. })));
    // A renewal costs one Accept round: followers never see a Prepare after the first.
    let prepares = c.node(m).stats().round_timeouts;
    assert_eq!(prepares, 0);
}

impl core::ops::Div<u64> for Duration {
    type Output = Duration;
    fn div(self, k: u64) -> Duration {
        Duration::from_micros(self.as_micros() / k)
    }
}

#[test]
fn crashed_master_is_replaced_only_after_its_lease_ended_everywhere() {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed);
        let old = c.wait_master(lease());
        c.run_for(lease() * 2);
        let version = c.node(old).version().unwrap();
        c.crash(old);
        let crash_at = c.now;
        let new = c.wait_master(lease() * 3);
        assert_ne!(new, old);
        let elected_at = c.now;
        // Every other node's view of the old master ran `lease` from when it learned
        // the old master's last version; the new master may only exist after all of them.
        for i in (0..5).filter(|&i| i != old) {
            let learned = c
                .learned
                .iter()
                .find(|l| l.1 == i && l.2 == version)
                .unwrap_or_else(|| {
                    panic!(
                        "node {i} never learned version {version}: {:?} {:?}",
                        c.learned, c.events
                    )
                })
                .0;
            assert!(
                elected_at >= learned + lease(),
                "seed {seed}: node {new} master at {elected_at}, node {i} learned the old term at {learned}"
            );
        }
        // Fast failover: about one lease plus a round, well under two leases.
        let failover = elected_at - crash_at;
        assert!(failover <= lease() + lease() / 2, "failover {failover}");
    }
}

impl core::ops::Mul<u64> for Duration {
    type Output = Duration;
    fn mul(self, k: u64) -> Duration {
        self.saturating_mul(k)
    }
}

#[test]
fn stale_node_c_cannot_steal_the_role() {
    // The seed's NodeC: C hears nothing for a while, its view of A expires, it proposes
    // BeMaster with the version it last saw. That version is stale: no effect.
    for seed in 0..10 {
        let mut c = Cluster::new(3, seed);
        let a = c.wait_master(lease());
        let node_c = (a + 1) % 3;
        c.run_for(lease());
        // C stops hearing anyone, but its own messages still go out.
        for j in 0..3 {
            c.cut[j][node_c] = true;
        }
        c.run_for(lease() * 3);
        assert!(
            c.node(node_c).stats().elections_started > 0,
            "C never tried"
        );
        for j in 0..3 {
            c.cut[j][node_c] = false;
        }
        c.run_for(lease() * 2);
        assert_eq!(c.masters(), vec![a], "seed {seed}: the master changed");
        assert!(!c
            .events_of(a)
            .iter()
            .any(|e| matches!(e, Event::TermEnded { .. })));
        assert_eq!(c.node(node_c).version(), c.node(a).version());
    }
}

#[test]
fn a_chosen_stale_be_master_is_a_no_op() {
    // Directly at the state machine: an op whose version is not current is ignored.
    let mut c = Cluster::logged(3, 3);
    let a = c.wait_master(lease());
    c.run_for(lease());
    let node = c.nodes[(a + 1) % 3].as_mut().unwrap();
    let before = *node.election_state();
    let stale = Op::BeMaster {
        node: NodeId(((a + 2) % 3) as u16 + 1),
        version: Some(before.version.unwrap() - 1),
        lease: lease(),
        id: OpId::default(),
    };
    let now = c.now;
    let instance = node.instance();
    node.learn(now, stale, Duration::ZERO);
    assert_eq!(node.election_state().master, before.master);
    assert_eq!(node.election_state().version, before.version);
    assert_eq!(node.instance(), instance + 1);
}

#[test]
fn restart_of_master_and_follower_from_their_records() {
    for seed in 0..10 {
        let mut c = Cluster::new(3, seed);
        let m = c.wait_master(lease());
        c.run_for(lease());
        let f = (m + 1) % 3;
        // A follower restarts: it keeps the version history and counts the lease afresh.
        let v = c.disks[f].unwrap().election().version;
        c.crash(f);
        c.restart(f);
        assert!(c.node(f).version() >= v);
        assert!(v.is_some());
        assert_eq!(
            c.node(f).master(c.now).map(|v| v.node),
            Some(NodeId(m as u16 + 1))
        );
        assert_eq!(c.disks[f].unwrap().incarnation(), 2);
        c.run_for(lease());
        assert_eq!(c.masters(), vec![m]);
        // The master restarts: it is not master right away, whatever its record says.
        let v = c.disks[m].unwrap().election().version;
        c.crash(m);
        c.restart(m);
        assert!(!c.node(m).is_master(c.now));
        assert!(c.node(m).version() >= v);
        let next = c.wait_master(lease() * 3);
        assert!(c.node(next).version() > v);
    }
}

#[test]
fn release_hands_the_role_over_at_once() {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed);
        let m = c.wait_master(lease());
        c.run_for(lease());
        let now = c.now;
        let token = c.node(m).master_token();
        c.nodes[m].as_mut().unwrap().release(now).unwrap();
        assert!(!c.node(m).is_master(now), "still master after release");
        c.drain(m);
        assert!(c.events_of(m).contains(&Event::TermEnded {
            token,
            reason: TermEnd::Released
        }));
        let released_at = c.now;
        let next = c.wait_master(lease());
        assert_ne!(next, m, "the releasing node took the role back");
        // Far sooner than a lease (PhxPaxos: one to two leases).
        assert!(
            c.now - released_at < lease() / 4,
            "took {}",
            c.now - released_at
        );
    }
}

#[test]
fn release_names_the_highest_priority_voter_heard_in_the_latest_round() {
    for seed in 0..10 {
        // Node 4 (index 3) is preferred among the followers; node 5 wants the role most,
        // so it is the first master.
        let mut members: Vec<Member> = (1..=5).map(Member::candidate).collect();
        members[3].priority = 5;
        members[4].priority = 9;
        let mut c = Cluster::with_members(&members, seed);
        let m = c.wait_master(lease());
        c.run_for(lease());
        assert_eq!(m, 4, "seed {seed}: the preferred node campaigns first");
        let now = c.now;
        c.nodes[m].as_mut().unwrap().release(now).unwrap();
        assert_eq!(c.node(m).election.releasing, Some(Some(NodeId(4))));
        c.drain(m);
        let next = c.wait_master(lease());
        assert_eq!(next, 3, "seed {seed}: the release named node 4");
        assert!(c.now - now < lease() / 4);
    }
}

#[test]
fn a_release_whose_successor_is_gone_still_fails_over() {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed);
        let m = c.wait_master(lease());
        c.run_for(lease());
        let now = c.now;
        let to = c.node(m).likely_successor();
        let Some(to) = to else {
            panic!("seed {seed}: no successor to name")
        };
        c.nodes[m].as_mut().unwrap().release(now).unwrap();
        c.drain(m);
        // The named successor dies before it can campaign.
        c.crash(usize::from(to.0) - 1);
        let next = c.wait_master(lease());
        assert_ne!(next, m);
        assert_ne!(NodeId(next as u16 + 1), to);
        // The others waited the hand-over grace for it, then campaigned as usual.
        assert!(c.now - now < lease() / 2, "took {}", c.now - now);
    }
}

#[test]
fn hand_over_goes_to_the_named_successor() {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed);
        let m = c.wait_master(lease());
        c.run_for(lease());
        let to = (m + 3) % 5;
        let now = c.now;
        assert_eq!(
            c.nodes[m]
                .as_mut()
                .unwrap()
                .hand_over(now, NodeId(m as u16 + 1)),
            Err(CommandError::InvalidSuccessor(NodeId(m as u16 + 1)))
        );
        c.nodes[m]
            .as_mut()
            .unwrap()
            .hand_over(now, NodeId(to as u16 + 1))
            .unwrap();
        c.drain(m);
        let next = c.wait_master(lease());
        assert_eq!(next, to, "seed {seed}");
        assert!(c.now - now < lease() / 4);
    }
}

#[test]
fn a_renewal_in_flight_at_release_does_not_make_the_node_master_again() {
    let mut c = Cluster::logged(3, 5);
    let m = c.wait_master(lease());
    // Run until the master has a renewal in flight (its Accept sent, not yet chosen).
    assert!(c.run_until(lease() * 2, |c| {
        c.node(m).proposer.own().is_some() && c.node(m).is_master(c.now)
    }));
    let now = c.now;
    c.nodes[m].as_mut().unwrap().release(now).unwrap();
    c.drain(m);
    // The renewal is chosen after the release: the node must stay not-master.
    let v = c.node(m).version();
    c.run_until(lease() / 2, |c| c.node(m).version() != v);
    assert!(c.node(m).version() != v, "renewal never chosen");
    assert!(!c.node(m).is_master(c.now));
    // The release is re-proposed at the new version and someone else takes over.
    let next = c.wait_master(lease());
    assert_ne!(next, m);
    assert!(c.now - now < lease() / 2);
}

#[test]
fn loss_duplication_reordering_and_delay_keep_one_master() {
    for seed in 0..20 {
        let mut c = Cluster::new(5, seed);
        c.loss_pct = 20;
        c.dup_pct = 10;
        c.jitter = Duration::from_millis(20);
        let first = c.wait_master(lease() * 5);
        c.run_for(lease() * 10);
        // Still a master at the end (renewals survive 20 % loss), never two at once.
        let _ = first;
        assert!(
            c.run_until(lease() * 3, |c| c.masters().len() == 1),
            "seed {seed}"
        );
    }
}

#[test]
fn a_node_away_for_many_instances_catches_up() {
    let mut c = Cluster::logged(3, 9);
    let m = c.wait_master(lease());
    let away = (m + 1) % 3;
    c.isolate(away, true);
    c.run_for(lease() * 20);
    let gap = c.node(m).instance() - c.node(away).instance();
    assert!(gap > 30, "only {gap} instances behind");
    c.isolate(away, false);
    assert!(c.run_until(lease(), |c| c.node(away).instance() + 1
        >= c.node(m).instance()
        && c.node(away).master(c.now).map(|v| v.node) == Some(NodeId(m as u16 + 1))));
    assert!(c.node(away).stats().snapshots_installed >= 1);
    assert_eq!(c.masters(), vec![m]);
}

#[test]
fn malformed_bytes_and_hostile_messages_are_dropped_and_counted() {
    let mut c = Cluster::new(3, 4);
    let m = c.wait_master(lease());
    c.run_for(lease());
    let victim = (m + 1) % 3;
    let mut rng = Rng::new(99);
    // Random bytes never panic the decoder.
    for len in 0..200 {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = decode(&bytes);
    }
    let now = c.now;
    let node = c.nodes[victim].as_mut().unwrap();
    let before = *node.election_state();
    let header = node.header();
    let good_ballot = Ballot {
        round: 1_000,
        node: NodeId(m as u16 + 1),
    };
    let prepare = Message::Prepare {
        instance: node.instance(),
        ballot: good_ballot,
    };
    let cases = [
        (
            Header {
                cluster: 8,
                from: NodeId(m as u16 + 1),
                ..header
            },
            prepare,
            DropReason::WrongCluster,
        ),
        (
            Header {
                from: NodeId(77),
                ..header
            },
            prepare,
            DropReason::NotMember,
        ),
        (
            Header {
                from: node.id(),
                ..header
            },
            prepare,
            DropReason::NotMember,
        ),
        (
            Header {
                protocol: PROTOCOL_VERSION + 1,
                from: NodeId(m as u16 + 1),
                ..header
            },
            prepare,
            DropReason::NewerProtocol,
        ),
        (
            Header {
                from: NodeId(m as u16 + 1),
                ..header
            },
            Message::Prepare {
                instance: node.instance(),
                ballot: Ballot {
                    round: u64::MAX,
                    node: NodeId(m as u16 + 1),
                },
            },
            DropReason::BadField,
        ),
        (
            Header {
                from: NodeId(m as u16 + 1),
                ..header
            },
            Message::Accept {
                instance: node.instance(),
                ballot: good_ballot,
                op: Op::BeMaster {
                    node: NodeId(1),
                    version: Some(u64::MAX),
                    lease: lease(),
                    id: OpId::default(),
                },
                age: Duration::ZERO,
            },
            DropReason::BadField,
        ),
        (
            Header {
                from: NodeId(m as u16 + 1),
                ..header
            },
            Message::Accept {
                instance: node.instance(),
                ballot: good_ballot,
                op: Op::BeMaster {
                    node: NodeId(1),
                    version: None,
                    lease: Duration::MAX,
                    id: OpId::default(),
                },
                age: Duration::ZERO,
            },
            DropReason::BadField,
        ),
        (
            // A Prepare whose ballot claims another proposer.
            Header {
                from: NodeId(m as u16 + 1),
                ..header
            },
            Message::Prepare {
                instance: node.instance(),
                ballot: Ballot {
                    round: 5,
                    node: node.id(),
                },
            },
            DropReason::NotMember,
        ),
    ];
    for (h, msg, reason) in cases {
        let drops = node.stats().dropped;
        let result = node.handle_message(
            now,
            &Packet {
                header: h,
                message: msg,
            },
        );
        assert_eq!(result, Err(reason), "{msg:?} from {h:?}");
        let mut expected = drops;
        expected.add(reason);
        assert_eq!(node.stats().dropped, expected, "{msg:?} from {h:?}");
        assert!(
            node.poll_output().is_none(),
            "a dropped message produced output"
        );
    }
    assert_eq!(*node.election_state(), before);
    // The cluster carries on.
    c.run_for(lease() * 2);
    assert_eq!(c.masters(), vec![m]);
}

#[test]
fn dueling_proposers_converge() {
    for seed in 0..20 {
        let mut c = Cluster::new(5, seed);
        c.jitter = Duration::from_millis(3);
        // Everyone campaigns at the same instant.
        let now = c.now;
        for i in 0..5 {
            let _ = c.nodes[i].as_mut().unwrap().campaign(now);
            c.drain(i);
        }
        c.wait_master(lease() * 2);
    }
}

#[test]
fn the_output_queue_never_overflows_and_backlog_is_refused() {
    // Every scenario above asserts queue_overflows == 0 after each input and at most
    // MAX_OUTPUTS_PER_INPUT outputs per input; here, a long hostile mix.
    let mut c = Cluster::new(5, 11);
    c.loss_pct = 10;
    c.dup_pct = 30;
    c.jitter = Duration::from_millis(50);
    for round in 0..20u64 {
        c.run_for(lease());
        let i = (round % 5) as usize;
        if round % 3 == 0 {
            c.crash(i);
            c.restart(i);
        }
        let now = c.now;
        if let Some(n) = c.nodes[i].as_mut() {
            let _ = n.release(now);
        }
        c.drain(i);
    }
    assert!(c.max_outputs_seen <= MAX_OUTPUTS_PER_INPUT);
    // A driver that does not drain gets its inputs refused and counted, never lost silently.
    let m = c.wait_master(lease() * 3);
    let f = (m + 1) % 5;
    let now = c.now;
    let node = c.nodes[f].as_mut().unwrap();
    let packet = Packet {
        header: Header {
            from: NodeId(m as u16 + 1),
            ..node.header()
        },
        message: Message::CatchUp { next_instance: 0 },
    };
    let mut refused = 0;
    let before = node.stats().dropped.backlog;
    for _ in 0..20 {
        if node.handle_message(now, &packet) == Err(DropReason::Backlog) {
            refused += 1;
        }
    }
    // Each refusal is returned and counted once.
    assert_eq!(node.stats().dropped.backlog - before, refused);
    assert!(refused > 0, "an undrained queue never refused input");
    assert_eq!(node.stats().queue_overflows, 0);
}

#[test]
fn learners_and_voters_never_campaign_but_follow() {
    let members = [
        Member::candidate(1),
        Member::voter(2),
        Member::voter(3),
        Member::learner(4),
    ];
    let mut c = Cluster::with_members(&members, 2);
    let m = c.wait_master(lease());
    assert_eq!(m, 0);
    c.run_for(lease() * 3);
    assert_eq!(c.node(3).master(c.now).map(|v| v.node), Some(NodeId(1)));
    for i in 1..4 {
        assert_eq!(c.node(i).stats().elections_started, 0);
        assert_eq!(
            c.nodes[i].as_mut().unwrap().campaign(c.now),
            Err(CommandError::NotCandidate)
        );
    }
}

#[test]
fn priority_prefers_the_preferred_node_without_harming_liveness() {
    let members = [
        Member::candidate(1),
        Member::candidate(2).with_priority(5),
        Member::candidate(3),
    ];
    for seed in 0..10 {
        let mut c = Cluster::with_members(&members, seed);
        assert_eq!(c.wait_master(lease()), 1, "seed {seed}");
        // Preferred node down: another still takes over.
        c.crash(1);
        let next = c.wait_master(lease() * 3);
        assert_ne!(next, 1);
    }
}

#[test]
fn node_with_its_queue_fits_the_memory_budget() {
    use core::mem::size_of_val as s;
    let members = [
        Member::candidate(1),
        Member::candidate(2),
        Member::candidate(3),
    ];
    let mut config = Config::new(7, NodeId(1), &members).unwrap();
    config.auth = Auth::key([1; 32]);
    let n = Node::<5>::first_boot(config, Instant::ZERO).unwrap();
    let size = core::mem::size_of::<Node<5>>();
    // Where the bytes are (the private fields of `node.rs` are the rest: the key's tag
    // states, the timers, the last report, the clock).
    let fields = [
        ("config", s(&n.config)),
        ("acceptor", s(&n.acceptor)),
        ("last_chosen", s(&n.last_chosen)),
        ("proposer", s(&n.proposer)),
        ("election", s(&n.election)),
        ("guards", s(&n.guards)),
        ("renewer", s(&n.renewer)),
        ("pending_change", s(&n.pending_change)),
        ("members_wanted, _staged, _asked", {
            s(&n.members_wanted) + s(&n.members_staged) + s(&n.members_asked)
        }),
        ("rejoin, _heard, _max, _asked, _nonce", {
            s(&n.rejoin)
                + s(&n.rejoin_heard)
                + s(&n.rejoin_max)
                + s(&n.rejoin_asked)
                + s(&n.rejoin_nonce)
        }),
        ("queue", s(&n.queue)),
        ("stats", s(&n.stats)),
    ];
    let named: usize = fields.iter().map(|f| f.1).sum();
    for (name, bytes) in fields {
        std::println!("{name:>32} {bytes:5} B");
    }
    std::println!("{:>32} {:5} B", "the rest", size - named);
    std::println!("size_of::<Node<5>>() = {size} bytes");
    // 2312 before membership changes, 2568 with them (the pending change, the list
    // being fetched, the bigger register state); then the BLAKE2s state of the tag
    // keys (-24 B) and 32-bit counters (-128 B); +40 B for the rejoin (its bound, the
    // voters heard, their highest instance, when it last asked, its nonce); SipHash's
    // key state instead of BLAKE2s's (32 B per key instead of 48); then the voters of
    // the latest renewal round, the release's successor hint (+8 B).
    assert!(size <= 2440, "Node<5> is {size} bytes");
}

#[test]
fn restore_refuses_another_nodes_record() {
    let c = Cluster::new(3, 1);
    let record = c.disks[0].unwrap();
    let err = Node::restore(c.configs[1].clone(), record, c.now).unwrap_err();
    assert_eq!(
        err,
        StartError::Record(RecordError::WrongNode {
            expected: NodeId(2),
            found: NodeId(1)
        })
    );
}

#[test]
fn replaying_recorded_traffic_cannot_make_a_second_master() {
    // Record a session with crashes, restarts and releases; then keep the cluster running
    // while an attacker replays recorded frames (they carry valid tags) to their original
    // destination or to any node, including frames from before a node restarted.
    for seed in 0..8 {
        let mut c = Cluster::new(3, seed);
        c.jitter = Duration::from_millis(5);
        for round in 0..6u64 {
            c.run_for(lease());
            let i = (round % 3) as usize;
            if round % 2 == 0 {
                c.crash(i);
                c.run_for(lease() / 4);
                c.restart(i);
            } else {
                let now = c.now;
                if let Some(n) = c.nodes[i].as_mut() {
                    let _ = n.release(now);
                }
                c.drain(i);
            }
        }
        let recorded = core::mem::take(&mut c.recorded);
        assert!(recorded.len() > 100);
        let mut rng = Rng::new(seed ^ 0xfeed);
        for _ in 0..400 {
            let (_, to, bytes) = &recorded[rng.below(recorded.len() as u64) as usize];
            let to = if rng.below(2) == 0 {
                *to
            } else {
                rng.below(3) as usize
            };
            c.seq += 1;
            let at = c.now + Duration::from_micros(rng.below(5_000));
            c.net.push((at, c.seq, to, to, bytes.clone()));
            c.run_for(Duration::from_millis(5));
        }
        // Safety was checked after every event; agreement per version on every change.
        // And the cluster still works: a master exists after the replay stops.
        c.wait_master(lease() * 3);
    }
}

#[test]
fn wire_sizes_are_small() {
    std::println!(
        "MAX_PACKET_SIZE={MAX_PACKET_SIZE} MAX_SEALED_SIZE={MAX_SEALED_SIZE} MAX_FRAME_SIZE={MAX_FRAME_SIZE} MAX_RECORD_SIZE={MAX_RECORD_SIZE}"
    );
    const _: () = assert!(MAX_PACKET_SIZE <= 128 && MAX_RECORD_SIZE <= 336);
}

#[test]
fn a_network_slower_than_the_round_timeout_still_elects() {
    // Round trips of 70-90 ms against a 50 ms round timeout: phases first time out, then
    // the timeout stretches until one completes.
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed);
        c.delay = Duration::from_millis(35);
        c.jitter = Duration::from_millis(10);
        c.wait_master(lease() * 3);
        let m = c.masters()[0];
        c.run_for(lease() * 3);
        assert_eq!(c.masters(), vec![m], "seed {seed}: the master did not hold");
    }
}

#[test]
fn a_hand_over_to_a_node_that_released_recently_still_goes_to_it() {
    let mut c = Cluster::new(3, 21);
    let a = c.wait_master(lease());
    c.run_for(lease() / 2);
    // a hands over to b; b then hands straight back to a, which released moments ago.
    let b = (a + 1) % 3;
    let now = c.now;
    c.nodes[a]
        .as_mut()
        .unwrap()
        .hand_over(now, NodeId(b as u16 + 1))
        .unwrap();
    c.drain(a);
    assert_eq!(c.wait_master(lease()), b);
    c.run_for(lease() / 4);
    let now = c.now;
    c.nodes[b]
        .as_mut()
        .unwrap()
        .hand_over(now, NodeId(a as u16 + 1))
        .unwrap();
    c.drain(b);
    assert_eq!(
        c.wait_master(lease()),
        a,
        "the named successor was kept out by its quiet time"
    );
}

#[test]
fn fuzz_instance_overflow_is_refused() {
    // Found by the `hostile` fuzz target: a snapshot at instance u64::MAX, then a commit
    // there, made `learn` overflow the instance counter.
    let mut c = Cluster::new(3, 1);
    c.run_for(lease());
    let now = c.now;
    let node = c.nodes[0].as_mut().unwrap();
    let header = node.header();
    let from = |id: u16| Header {
        from: NodeId(id),
        ..header
    };
    let snapshot = Message::Snapshot {
        next_instance: u64::MAX,
        state: ElectionState {
            lease: Duration::from_secs(100),
            ..ElectionState::default()
        },
    };
    let before = node.instance();
    let result = node.handle_message(
        now,
        &Packet {
            header: from(3),
            message: snapshot,
        },
    );
    assert_eq!(result, Err(DropReason::BadField));
    assert_eq!(node.stats().dropped.bad_field, 1);
    assert_eq!(node.instance(), before);
    for message in [
        Message::Chosen {
            instance: u64::MAX,
            op: Op::Release {
                node: NodeId(2),
                version: 1,
                successor: None,
                id: OpId::default(),
            },
        },
        Message::Commit {
            instance: u64::MAX,
            ballot: Ballot {
                round: 1,
                node: NodeId(1),
            },
        },
        Message::CatchUp {
            next_instance: u64::MAX,
        },
    ] {
        let result = node.handle_message(
            now,
            &Packet {
                header: from(2),
                message,
            },
        );
        assert_eq!(result, Err(DropReason::BadField), "{message}");
    }
    assert_eq!(node.stats().dropped.bad_field, 4);
    assert_eq!(node.instance(), before);
}

#[test]
fn messages_print_in_one_readable_line() {
    let op = Op::BeMaster {
        node: NodeId(2),
        version: Some(11),
        lease: lease(),
        id: OpId {
            incarnation: 1,
            seq: 4,
        },
    };
    let m = Message::Accept {
        instance: 12,
        ballot: Ballot {
            round: 3,
            node: NodeId(2),
        },
        op,
        age: Duration::ZERO,
    };
    assert_eq!(
        std::format!("{m}"),
        "Accept(i12 b3.n2 BeMaster(n2 at v11 #1.4))"
    );
    let r = Message::Renew {
        ballot: Ballot {
            round: 3,
            node: NodeId(2),
        },
        term: 11,
        seq: 7,
    };
    assert_eq!(std::format!("{r}"), "Renew(b3.n2 term i11 seq 7)");
    let s = ElectionState {
        master: None,
        version: Some(12),
        successor: Some(NodeId(3)),
        ..ElectionState::default()
    };
    assert_eq!(std::format!("{s}"), "master=none v12 successor=n3");
}

// ----- protocol 2 rules (docs/algorithm.md §8) -----------------------------------------

/// R13 (`docs/algorithm.md` §8.7): one reading from the future, then the true time. The
/// node's own term ends at the regression; it never holds a term as long as the jump, and
/// there are never two masters (the cluster asserts it after every event).
#[test]
fn a_clock_reading_from_the_future_then_the_truth_never_gives_two_masters() {
    for renewal in [Renewal::Lease, Renewal::Logged] {
        let members: Vec<Member> = (1..=3).map(Member::candidate).collect();
        let mut c = Cluster::with_mode(&members, 4, renewal);
        let m = c.wait_master(lease());
        c.run_for(lease() / 2);
        // One input with a reading 10 leases ahead.
        let future = c.now + lease() * 10;
        c.nodes[m].as_mut().unwrap().handle_timeout(future);
        c.drain(m);
        // The true time again: a regression.
        let now = c.now;
        c.nodes[m].as_mut().unwrap().handle_timeout(now);
        c.drain(m);
        let node = c.node(m);
        assert_eq!(node.stats().clock_regressions, 1);
        assert!(
            !node.is_master(now),
            "{renewal}: still master after its clock went back"
        );
        let before_jump = future.checked_sub(Duration::from_millis(1)).unwrap();
        assert!(
            !node.is_master(before_jump),
            "{renewal}: the jump left a term"
        );
        // The rest of the cluster elects a master; never two at once (checked per event).
        c.run_for(lease() * 3);
        assert_eq!(c.masters().len(), 1, "{renewal}");
    }
}

/// R13: `is_master(now)` is false for any `now` earlier than the last input's.
#[test]
fn is_master_is_false_for_a_reading_earlier_than_the_last_input() {
    let mut c = Cluster::new(3, 2);
    let m = c.wait_master(lease());
    let now = c.now;
    assert!(c.node(m).is_master(now));
    let earlier = now.checked_sub(Duration::from_micros(1)).unwrap();
    assert!(!c.node(m).is_master(earlier));
    assert!(c.node(m).master(earlier).is_none());
}

/// R6 (`docs/algorithm.md` §8.5): a restored node refuses every vote for one lease after
/// its restart, and votes again after.
#[test]
fn a_restored_voter_keeps_silent_for_one_lease() {
    let mut c = Cluster::new(3, 6);
    let m = c.wait_master(lease());
    c.run_for(lease());
    let f = (m + 1) % 3;
    c.crash(f);
    c.restart(f);
    let restarted = c.now;
    c.run_for(lease() / 2);
    let silent = c.node(f).stats().silent_refusals;
    assert!(silent > 0, "a restored voter answered renewals at once");
    assert_eq!(c.node(f).stats().renews_answered, 0);
    assert_eq!(
        c.masters(),
        vec![m],
        "the master lost its role to one silent voter"
    );
    c.run_for(lease());
    assert!(c.now > restarted + lease());
    assert!(c.node(f).stats().renews_answered > 0, "silent for ever");
}

/// R6's cost, as the docs say: in a 3-node cluster with one node down, a restart of
/// another leaves no majority that may vote for one lease.
#[test]
fn restart_silence_costs_a_three_node_cluster_one_lease() {
    let mut c = Cluster::new(3, 8);
    let m = c.wait_master(lease());
    let down = (m + 1) % 3;
    let other = (m + 2) % 3;
    c.crash(down);
    c.crash(m);
    c.crash(other);
    c.restart(other);
    c.restart(m);
    let restarted = c.now;
    let elected = c.run_until(lease() * 3, |c| c.masters().len() == 1);
    assert!(elected, "no master after three leases");
    assert!(
        c.now >= restarted + lease(),
        "elected {} after the restarts: inside the silence",
        c.now - restarted
    );
}

/// R4 (`docs/algorithm.md` §8.3): while a master renews, every voter guards it: another
/// candidate's Prepare is refused and the master keeps its role.
#[test]
fn guards_refuse_a_rival_campaign_while_the_master_renews() {
    let mut c = Cluster::new(3, 3);
    let m = c.wait_master(lease());
    c.run_for(lease());
    let rival = (m + 1) % 3;
    // The rival loses its view (pretend it missed everything) and campaigns.
    let now = c.now;
    {
        let node = c.nodes[rival].as_mut().unwrap();
        node.election.expires_at = now;
        node.guards = crate::lease::Guards::default();
        let _ = node.campaign(now);
    }
    c.drain(rival);
    c.run_for(lease());
    let third = 3 - m - rival;
    assert!(
        c.node(third).stats().guard_refusals > 0,
        "the third node helped the rival"
    );
    assert_eq!(c.masters(), vec![m]);
}

/// R11 (`docs/algorithm.md` §8.6): a master that can send but hears nothing stops trying
/// after `try_window`, and the others have a new master within about
/// `lease + try_window + round_timeout` of the cut.
#[test]
fn a_deaf_master_is_replaced_within_lease_plus_try_window() {
    let mut worst = Duration::ZERO;
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed);
        let m = c.wait_master(lease());
        c.run_for(lease());
        let cut_at = c.now;
        for j in 0..5 {
            c.cut[j][m] = true; // m hears nothing, still sends
        }
        let cfg = c.configs[m].clone();
        let bound = cfg.lease + cfg.try_window() + cfg.round_timeout;
        let replaced = c.run_until(lease() * 3, |c| c.masters().iter().any(|&x| x != m));
        assert!(replaced, "seed {seed}: no new master within three leases");
        let took = c.now - cut_at;
        worst = worst.max(took);
        assert!(
            took <= bound + lease() / 5,
            "seed {seed}: {took} to replace a deaf master (bound {bound})"
        );
    }
    std::println!("deaf master replaced within {worst} at worst (10 seeds)");
}

/// Elects a master in `c`; returns a follower and a `CatchUp` from the master to it, in
/// the follower's own header otherwise.
fn a_follower_and_a_catch_up_from_its_master(c: &mut Cluster) -> (usize, Packet) {
    let m = c.wait_master(lease());
    let f = (m + 1) % 3;
    let packet = Packet {
        header: Header {
            from: NodeId(m as u16 + 1),
            ..c.node(f).header()
        },
        message: Message::CatchUp { next_instance: 0 },
    };
    (f, packet)
}

/// R14 (`docs/algorithm.md` §8.9): a node of the other renewal mode is refused on every frame, with its own reason.
#[test]
fn a_node_of_the_other_renewal_mode_is_refused() {
    let mut c = Cluster::new(3, 1);
    let (f, packet) = a_follower_and_a_catch_up_from_its_master(&mut c);
    let now = c.now;
    let node = c.nodes[f].as_mut().unwrap();
    let packet = Packet {
        header: Header {
            renewal: Renewal::Logged,
            ..packet.header
        },
        ..packet
    };
    assert_eq!(
        node.handle_message(now, &packet),
        Err(DropReason::WrongRenewal)
    );
    let old = Packet {
        header: Header {
            protocol: 1,
            renewal: node.header().renewal,
            ..packet.header
        },
        ..packet
    };
    assert_eq!(
        node.handle_message(now, &old),
        Err(DropReason::OlderProtocol)
    );
    assert_eq!(node.stats().dropped.wrong_renewal, 1);
    assert_eq!(node.stats().dropped.older_protocol, 1);
}

/// A frame of another protocol version whose tag does not verify (an older node's tags
/// differ: protocol 4 tagged with BLAKE2s) is counted as that version, not as a bad tag.
#[test]
fn a_frame_of_another_version_with_a_foreign_tag_counts_as_that_version() {
    let mut c = Cluster::new(3, 1);
    let (f, packet) = a_follower_and_a_catch_up_from_its_master(&mut c);
    let now = c.now;
    let node = c.nodes[f].as_mut().unwrap();
    let mut buf = [0u8; MAX_SEALED_SIZE];
    let n = auth::seal(&packet, &Auth::key([7; 32]), &mut buf).unwrap();
    // The authentic frame opens (the node finds it stale: it is caught up).
    assert_eq!(node.handle_frame(now, &buf[..n]), Err(DropReason::Stale));
    // The frame as a node of `version` would send it: its version byte, and a tag that
    // this build's key state does not give.
    let frame = |version: u8| {
        let mut f = buf[..n].to_vec();
        f[0] = version;
        for b in &mut f[n - auth::TAG_LEN..] {
            *b ^= 0x5c;
        }
        f
    };
    let before = node.stats().dropped;
    for (version, want) in [
        (PROTOCOL_VERSION - 1, DropReason::OlderProtocol),
        (1, DropReason::OlderProtocol),
        (PROTOCOL_VERSION + 1, DropReason::NewerProtocol),
        // This version with a wrong tag, or a first byte that is no plausible version.
        (PROTOCOL_VERSION, DropReason::BadTag),
        (0, DropReason::BadTag),
        (PROTOCOL_VERSION + 9, DropReason::BadTag),
        (0xC0, DropReason::BadTag),
    ] {
        assert_eq!(
            node.handle_frame(now, &frame(version)),
            Err(want),
            "{version}"
        );
    }
    // A frame no longer than a tag is a bad tag whatever its first byte.
    let short = frame(PROTOCOL_VERSION - 1);
    assert_eq!(
        node.handle_frame(now, &short[..auth::TAG_LEN]),
        Err(DropReason::BadTag)
    );
    let d = node.stats().dropped;
    assert_eq!(d.older_protocol - before.older_protocol, 2);
    assert_eq!(d.newer_protocol - before.newer_protocol, 1);
    assert_eq!(d.bad_tag - before.bad_tag, 5);
}

// ----- membership changes (docs/algorithm.md §9) ---------------------------------------

impl Cluster {
    /// Starts node `id` with [`Node::join`] and the current list plus itself (the list
    /// as it is, once the change that added it was applied).
    fn join(&mut self, member: Member) -> usize {
        let i = self.n();
        let master = self.masters().first().copied().unwrap_or(0);
        let mut list: Vec<Member> = self.node(master).members().to_vec();
        if !list.iter().any(|m| m.id == member.id) {
            list.push(member);
        }
        let mut c = Config::new(7, member.id, &list).unwrap();
        c.lease = Duration::from_millis(LEASE_MS);
        c.seed = 1000 + u64::from(member.id.0);
        c.auth = Auth::key([7; 32]);
        c.renewal = self.configs[0].renewal;
        self.nodes
            .push(Some(Node::join(c.clone(), self.now).unwrap()));
        self.configs.push(c);
        self.execs.push(Executor::new());
        self.disks.push(None);
        self.drain(i);
        i
    }

    fn with_master<T>(&mut self, f: impl FnOnce(&mut Node<5>, Instant) -> T) -> T {
        let m = self.masters()[0];
        let now = self.now;
        let out = f(self.nodes[m].as_mut().unwrap(), now);
        self.drain(m);
        out
    }

    /// Every live member (a removed node hears nothing more) has the same list at the
    /// same instance.
    fn lists_agree(&self) -> bool {
        let live: Vec<&Node<5>> = self
            .nodes
            .iter()
            .flatten()
            .filter(|n| n.members().iter().any(|m| m.id == n.id()))
            .collect();
        live.windows(2)
            .all(|w| w[0].members() == w[1].members() && w[0].instance() == w[1].instance())
    }
}

#[test]
fn a_member_is_added_to_three_and_one_removed_from_four_one_at_a_time() {
    for renewal in [Renewal::Lease, Renewal::Logged] {
        for seed in 0..5 {
            let members: Vec<Member> = (1..=3).map(Member::candidate).collect();
            let mut c = Cluster::with_mode(&members, seed, renewal);
            let m = c.wait_master(lease() * 3);
            let token = c.node(m).master_token();
            let four = c.join(Member::candidate(4));
            assert!(c.node(four).is_standby());
            c.with_master(|n, now| n.add_member(Member::candidate(4), now))
                .unwrap();
            // One change at a time: the next is refused until this one is settled.
            assert_eq!(
                c.with_master(|n, now| n.add_member(Member::candidate(5), now)),
                Err(MembersError::ChangeInProgress)
            );
            c.run_for(lease());
            assert!(c.lists_agree(), "seed {seed} {renewal}");
            assert_eq!(c.node(four).members().len(), 4);
            assert!(!c.node(four).is_standby(), "the new member was let in");
            // The term and (lease mode) its token go on across the change.
            assert_eq!(c.masters(), vec![m], "seed {seed}");
            if renewal == Renewal::Lease {
                assert_eq!(c.node(m).master_token(), token);
            }
            // The new member votes: with one old member down, 3 of 4 still elect.
            let other = (0..3).find(|&i| i != m).unwrap();
            c.crash(other);
            c.run_for(lease());
            assert_eq!(
                c.masters(),
                vec![m],
                "seed {seed}: still master with 3 of 4"
            );
            // Remove the crashed one: back to 3 members, majority 2.
            let gone = c.configs[other].node_id;
            let removed = c.with_master(|n, now| n.remove_member(gone, now));
            assert_eq!(removed, Ok(()), "seed {seed}");
            c.run_for(lease());
            assert!(c.lists_agree());
            for n in c.nodes.iter().flatten() {
                assert_eq!(n.members().len(), 3);
                assert!(n.members().iter().all(|x| x.id != gone));
            }
            assert_eq!(c.masters(), vec![m]);
            // And the 3 left elect after the master dies.
            c.crash(m);
            let next = c.wait_master(lease() * 3);
            assert_ne!(next, m);
        }
    }
}

/// A new member started only after the change that added it was chosen: in lease mode no
/// op follows, only renewals, and a renewal tells it that it is behind.
#[test]
fn a_member_started_after_the_change_that_added_it_catches_up_and_votes() {
    for renewal in [Renewal::Lease, Renewal::Logged] {
        for seed in 0..3 {
            let members: Vec<Member> = (1..=3).map(Member::candidate).collect();
            let mut c = Cluster::with_mode(&members, seed, renewal);
            let m = c.wait_master(lease() * 3);
            c.with_master(|n, now| n.add_member(Member::candidate(4), now))
                .unwrap();
            c.run_for(lease());
            assert_eq!(c.node(m).members().len(), 4, "seed {seed} {renewal}");
            let four = c.join(Member::candidate(4));
            assert!(c.node(four).is_standby());
            c.run_for(lease());
            assert!(
                !c.node(four).is_standby(),
                "seed {seed} {renewal}: still standing by"
            );
            assert!(c.lists_agree(), "seed {seed} {renewal}");
        }
    }
}

#[test]
fn membership_commands_refuse_what_would_break_the_rules() {
    let mut c = Cluster::with_members(
        &[Member::candidate(1), Member::voter(2), Member::voter(3)],
        1,
    );
    assert_eq!(c.wait_master(lease() * 3), 0);
    let now = c.now;
    let follower = c.nodes[1].as_mut().unwrap();
    assert_eq!(
        follower.add_member(Member::candidate(4), now),
        Err(MembersError::NotMaster)
    );
    assert_eq!(
        c.with_master(|n, now| n.add_member(Member::voter(2), now)),
        Err(MembersError::DuplicateMember(NodeId(2)))
    );
    assert_eq!(
        c.with_master(|n, now| n.remove_member(NodeId(9), now)),
        Err(MembersError::UnknownMember(NodeId(9)))
    );
    assert_eq!(
        c.with_master(|n, now| n.remove_member(NodeId(1), now)),
        Err(MembersError::LastCandidate)
    );
    // Capacity: Node<5> holds 5 members; the sixth is refused with an error.
    for id in [4, 5] {
        c.join(Member::learner(id));
        c.with_master(|n, now| n.add_member(Member::learner(id), now))
            .unwrap();
        c.run_for(lease());
    }
    assert_eq!(c.node(0).members().len(), 5);
    assert_eq!(
        c.with_master(|n, now| n.add_member(Member::learner(6), now)),
        Err(MembersError::OverCapacity { capacity: 5 })
    );
    assert!(c.lists_agree());
}

#[test]
fn a_master_that_removes_itself_stops_at_once_and_the_others_take_over_without_a_lease() {
    for seed in 0..5 {
        let mut c = Cluster::new(4, seed);
        let m = c.wait_master(lease() * 3);
        let me = c.configs[m].node_id;
        c.with_master(|n, now| n.remove_member(me, now)).unwrap();
        assert!(
            !c.node(m).is_master(c.now),
            "the term ended before the call returned"
        );
        let t0 = c.now;
        let next = c.wait_master(lease() * 2);
        assert_ne!(next, m);
        assert!(
            c.now - t0 < lease().mul_ratio(1, 2),
            "seed {seed}: took {}",
            c.now - t0
        );
        c.run_for(lease().mul_ratio(1, 10)); // the commit reaches everyone
        assert!(c.lists_agree());
        assert_eq!(c.node(next).members().len(), 3);
        assert!(matches!(
            c.events_of(m).last(),
            Some(Event::MembersChanged { members: 3, .. })
        ));
    }
}

#[test]
fn a_restored_node_follows_the_stored_list_and_says_the_configured_one_differs() {
    let mut c = Cluster::new(3, 3);
    c.wait_master(lease() * 3);
    c.join(Member::candidate(4));
    c.with_master(|n, now| n.add_member(Member::candidate(4), now))
        .unwrap();
    c.run_for(lease());
    assert!(c.lists_agree());
    // Node 2 restarts with its old configuration (3 members): the record wins.
    c.crash(1);
    c.restart(1);
    assert_eq!(c.node(1).members().len(), 4);
    assert!(c
        .events_of(1)
        .iter()
        .any(|e| matches!(e, Event::MemberListDiffers { followed: true, .. })));
    c.run_for(lease() * 2);
    assert!(c.lists_agree());
}

#[test]
fn a_member_that_missed_a_change_fetches_the_list_after_a_snapshot_and_votes_again() {
    for seed in 0..5 {
        let mut c = Cluster::new(3, seed);
        let m = c.wait_master(lease() * 3);
        let away = (0..3).find(|&i| i != m).unwrap();
        c.crash(away);
        c.join(Member::candidate(4));
        c.with_master(|n, now| n.add_member(Member::candidate(4), now))
            .unwrap();
        c.run_for(lease());
        // More instances, so the node that was away is more than one behind.
        c.with_master(|n, now| n.release(now)).unwrap();
        c.wait_master(lease() * 3);
        c.run_for(lease());
        c.restart(away);
        c.run_for(lease() * 3);
        let n = c.node(away);
        assert_eq!(n.members().len(), 4, "seed {seed}");
        assert!(!n.is_standby(), "seed {seed}: it votes again");
        assert!(c.lists_agree(), "seed {seed}");
        // It counts: with the master down, the three left (it among them) are the
        // majority of four that must elect.
        let master = c.masters()[0];
        if master != away {
            c.crash(master);
            c.wait_master(lease() * 4);
        }
    }
}

// ----- rejoin after a lost record (docs/algorithm.md §10) -------------------------------

impl Cluster {
    /// Node `i` loses its record and starts again with [`Node::rejoin`].
    fn wipe_and_rejoin(&mut self, i: usize) {
        self.crash(i);
        self.disks[i] = None;
        self.nodes[i] = Some(Node::rejoin(self.configs[i].clone(), self.now).unwrap());
        self.execs[i] = Executor::new();
        self.drain(i);
    }

    /// The master releases and a new one is elected: two more instances decided.
    fn two_more_instances(&mut self) {
        let before = self.node(self.masters()[0]).instance();
        self.with_master(|n, now| n.release(now)).unwrap();
        assert!(self.run_until(lease() * 4, |c| c
            .masters()
            .first()
            .is_some_and(|&m| c.node(m).instance() >= before + 2)));
    }
}

#[test]
fn a_rejoined_node_stands_by_until_the_rule_then_votes() {
    for renewal in [Renewal::Lease, Renewal::Logged] {
        for seed in 0..4 {
            let mut c = Cluster::with_mode(
                &(1..=3).map(Member::candidate).collect::<Vec<_>>(),
                seed,
                renewal,
            );
            let m = c.wait_master(lease() * 3);
            c.two_more_instances();
            let m2 = c.masters()[0];
            let r = (0..3).find(|&i| i != m2).unwrap();
            c.wipe_and_rejoin(r);
            assert_eq!(c.disks[r].map(|d| d.incarnation()), Some(1), "stored first");
            assert!(c.node(r).is_rejoining() && c.node(r).is_standby());
            if renewal == Renewal::Lease {
                // Renewals decide no instance: it follows the master and catches up,
                // but votes for no one.
                c.run_for(lease() * 2);
                let n = c.node(r);
                assert!(n.is_rejoining(), "seed {seed}: no instance decided since");
                assert_eq!(n.master(c.now).map(|v| v.node), Some(c.configs[m2].node_id));
                assert_eq!(n.stats().renews_answered, 0);
                // It is no part of a majority yet: with the third node down, no master.
                let third = (0..3).find(|&i| i != m2 && i != r).unwrap();
                c.crash(third);
                c.with_master(|n, now| n.release(now)).unwrap();
                c.run_for(lease() * 4);
                assert!(c.masters().is_empty(), "seed {seed}: the rejoiner voted");
                c.restart(third);
                c.wait_master(lease() * 4);
            }
            let _ = m;
            c.two_more_instances();
            c.run_for(lease() * 2);
            assert!(
                !c.node(r).is_rejoining(),
                "seed {seed} {renewal}: the rule allows it"
            );
            assert!(!c.node(r).is_standby());
            // Now it counts: with one of the others down, it and the other elect.
            let master = c.masters()[0];
            let down = (0..3).find(|&i| i != r && i != master).unwrap();
            c.crash(down);
            c.crash(master);
            c.restart(master);
            c.wait_master(lease() * 6);
        }
    }
}

#[test]
fn a_node_that_crashes_while_rejoining_restarts_rejoining() {
    let mut c = Cluster::new(3, 3);
    let m = c.wait_master(lease() * 3);
    let r = (0..3).find(|&i| i != m).unwrap();
    c.wipe_and_rejoin(r);
    c.run_for(lease());
    let stored = c.disks[r].unwrap();
    c.crash(r);
    c.restart(r);
    assert!(c.node(r).is_rejoining(), "the rejoin is durable");
    assert_eq!(c.node(r).record().incarnation(), stored.incarnation() + 1);
    c.run_for(lease() * 2);
    assert!(c.node(r).is_rejoining());
    c.two_more_instances();
    c.two_more_instances();
    c.run_for(lease());
    assert!(!c.node(r).is_rejoining());
    c.crash(r);
    c.restart(r);
    assert!(!c.node(r).is_rejoining(), "and so is its end");
}

#[test]
fn hostile_rejoin_replies_are_dropped_or_counted_once() {
    let mut c = Cluster::new(3, 5);
    let m = c.wait_master(lease() * 3);
    let r = (0..3).find(|&i| i != m).unwrap();
    // Node r is cut off, so only forged replies reach it.
    c.isolate(r, true);
    c.wipe_and_rejoin(r);
    let now = c.now;
    let nonce = c.node(r).rejoin_nonce;
    let from = c.configs[m].node_id;
    let header = Header {
        from,
        ..c.node(m).header()
    };
    let send = |c: &mut Cluster, message: Message| {
        let node = c.nodes[r].as_mut().unwrap();
        let out = node.handle_message(now, &Packet { header, message });
        c.drain(r);
        out
    };
    let reply = |nonce, instance, round| Message::RejoinReply {
        nonce,
        instance,
        promised: Ballot { round, node: from },
    };
    assert_eq!(
        send(&mut c, reply(nonce, u64::MAX - 3, 1)),
        Err(DropReason::BadField),
        "an instance past the sane bound"
    );
    assert_eq!(
        send(&mut c, reply(nonce, 5, u64::MAX)),
        Err(DropReason::BadField),
        "a round past the sane bound"
    );
    assert_eq!(
        send(&mut c, reply(nonce ^ 1, 5, 1)),
        Err(DropReason::Stale),
        "another query's answer"
    );
    assert_eq!(send(&mut c, reply(nonce, 5, 7)), Ok(()));
    assert_eq!(
        send(&mut c, reply(nonce, 9, 7)),
        Err(DropReason::Stale),
        "one answer per voter"
    );
    let n = c.node(r);
    assert_eq!(n.stats().dropped.bad_field, 2);
    assert!(n.is_rejoining());
    assert_eq!(
        n.rejoin,
        crate::rejoin::ASKING,
        "one voter is not a majority of the others"
    );
    // The second voter's answer completes the majority: vote from 5 + 3 on, and rounds
    // above the promise reported.
    let other = (0..3).find(|&i| i != m && i != r).unwrap();
    let from2 = c.configs[other].node_id;
    let message = reply(nonce, 2, 1);
    let node = c.nodes[r].as_mut().unwrap();
    let packet = Packet {
        header: Header {
            from: from2,
            ..header
        },
        message,
    };
    assert_eq!(node.handle_message(now, &packet), Ok(()));
    c.drain(r);
    let n = c.node(r);
    assert_eq!(n.rejoin, 8);
    assert_eq!(n.record().promised().round, 7);
    assert_eq!(c.disks[r].unwrap().rejoin, 8, "the bound is stored");
}

#[test]
fn a_rejoining_node_removed_and_added_again_follows_the_rule() {
    let mut c = Cluster::new(3, 11);
    let m = c.wait_master(lease() * 3);
    let r = (0..3).find(|&i| i != m).unwrap();
    c.wipe_and_rejoin(r);
    c.run_for(lease());
    let bound = c.node(r).rejoin;
    assert!(
        bound != crate::rejoin::ASKING && bound != 0,
        "it heard a majority"
    );
    let id = c.configs[r].node_id;
    c.with_master(|n, now| n.remove_member(id, now)).unwrap();
    c.run_for(lease());
    c.with_master(|n, now| n.add_member(Member::candidate(id.0), now))
        .unwrap();
    c.run_for(lease());
    // Back in the list (fetched: it never heard of its removal), still standing by.
    let n = c.node(r);
    assert!(n.members().iter().any(|x| x.id == id) && n.is_rejoining());
    assert!(c.lists_agree());
    c.two_more_instances();
    c.run_for(lease());
    assert!(!c.node(r).is_rejoining(), "the rule lets it in");
    // It counts: with the third node down, the master and it still elect.
    let third = (0..3)
        .find(|&i| i != r && !c.masters().contains(&i))
        .unwrap();
    c.crash(third);
    c.with_master(|n, now| n.release(now)).unwrap();
    c.wait_master(lease() * 4);
}

#[test]
fn a_release_after_failover_and_a_dropped_round_still_names_a_successor() {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed);
        let m = c.wait_master(lease());
        c.run_for(lease());
        c.crash(m);
        let m2 = c.wait_master(lease() * 3);
        c.restart(m);
        c.run_for(lease());
        // A Reject with a higher ballot ends the open rounds (R11); the voters heard
        // stay the release's hint.
        c.nodes[m2]
            .as_mut()
            .unwrap()
            .renewer
            .as_mut()
            .unwrap()
            .drop_rounds();
        let Some(to) = c.node(m2).likely_successor() else {
            panic!("seed {seed}: no successor named");
        };
        let now = c.now;
        c.nodes[m2].as_mut().unwrap().release(now).unwrap();
        c.drain(m2);
        let next = c.wait_master(lease());
        assert_eq!(NodeId(next as u16 + 1), to, "seed {seed}");
    }
}

/// A snapshot of this node's own list under a version, then one of the configured list
/// (version `None`) naming a holder outside it: the second is checked against the list
/// this node holds, and refused (fuzz `hostile` found the node naming a non-member).
#[test]
fn a_snapshot_of_the_held_list_after_one_of_another_names_only_its_members() {
    let members = [
        Member::candidate(1),
        Member::candidate(2),
        Member::candidate(3),
    ];
    let mut config = Config::new(7, NodeId(1), &members).unwrap();
    config.renewal = Renewal::Logged;
    let mut node = Node::<3>::first_boot(config, Instant::ZERO).unwrap();
    while node.poll_output().is_some() {}
    let header = Header {
        from: NodeId(3),
        ..node.header()
    };
    let from = |message| Packet { header, message };
    let other = from(Message::Snapshot {
        next_instance: 63,
        state: ElectionState {
            master: Some(NodeId(3)),
            version: Some(0),
            lease: Duration::from_secs(1),
            op: None,
            successor: None,
            term: None,
            members_version: Some(0),
            members_digest: 0,
        },
    });
    // The digest is the configured list's (the fuzzer found it): this node keeps its
    // list, now under version 0, and does not stand by.
    let mut other = other;
    if let Message::Snapshot { state, .. } = &mut other.message {
        state.members_digest = crate::members::digest(members.iter());
    }
    assert_eq!(node.handle_message(Instant::ZERO, &other), Ok(()));
    assert!(!node.is_standby());
    while node.poll_output().is_some() {}
    let held = from(Message::Snapshot {
        next_instance: 126,
        state: ElectionState {
            master: Some(NodeId(4)),
            version: Some(1),
            lease: Duration::from_secs(100),
            op: None,
            successor: Some(NodeId(2)),
            term: None,
            members_version: None,
            members_digest: 3_139_744,
        },
    });
    assert_eq!(
        node.handle_message(Instant::ZERO, &held),
        Err(DropReason::BadField)
    );
    assert_eq!(node.master(Instant::ZERO).map(|m| m.node), Some(NodeId(3)));
}

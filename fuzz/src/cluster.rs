//! `cluster`: three authenticated nodes on one virtual clock, driven by an arbitrary
//! sequence of network faults, timer firings, crashes, restarts and commands, with the
//! simulator's invariants checked after every step (see `core/src/tests.rs`).
//!
//! The driver follows the call protocol of `tenure::Node`: after every input it drains
//! the node's outputs through its `tenure::Executor` (which seals and fans out sends and
//! refuses, as a found bug, any send that promises more than was stored) and carries them
//! out in order. A node may be *held* (a slow disk or a stalled driver): its outputs then
//! stay unexecuted until an `Exec` step, and a crash loses them. In *pipelined* scenarios
//! a held node's outputs are drained at once into a driver-side FIFO (so the node keeps
//! taking input) and still carried out in order later: a driver that acknowledges
//! outputs immediately but fsyncs and sends asynchronously.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use arbitrary::{Arbitrary, Unstructured};
use tenure::{
    Auth, Config, DropReason, Duration, Effects, ElectionState, Event, Executor, Header, Instant,
    Member, Node, NodeId, Packet, Record, Renewal, MAX_RECORD_SIZE,
};

/// Nodes in the cluster.
pub const NODES: usize = 3;
/// Most steps taken from one input.
pub const MAX_STEPS: usize = 1024;
/// Most frames in flight; later sends are lost (a full network queue).
pub const MAX_IN_FLIGHT: usize = 64;
/// Sent frames remembered for replay.
pub const HISTORY: usize = 64;
/// Most natural ticks one `Run` step takes.
pub const MAX_RUN: u8 = 64;
/// Most natural ticks per input.
pub const MAX_TICKS: usize = 2048;

/// One step of a scenario. Every index is taken modulo what exists.
///
/// Encoded as one tag byte (modulo the variant count) and one byte per field, so short
/// inputs hold many steps and a mutated byte changes one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Deliver the k-th in-flight frame.
    Deliver(u8),
    /// Lose the k-th in-flight frame.
    Drop(u8),
    /// Copy the k-th in-flight frame (it will arrive twice).
    Duplicate(u8),
    /// Deliver a copy of the k-th in-flight frame to another node as well.
    Redirect(u8, u8),
    /// Queue a copy of the k-th in-flight frame with one byte changed.
    Mutate(u8, u8, u8),
    /// Queue a copy of the k-th in-flight frame cut to a length.
    Truncate(u8, u8),
    /// Queue a frame sent earlier (replay attack), to any node.
    Replay(u8, u8),
    /// Advance the clock by whole milliseconds.
    Advance(u8),
    /// Advance the clock by 20 ms units (up to 5.1 s: several leases).
    Sleep(u8),
    /// Advance the clock by microseconds (lease edges).
    Nudge(u8),
    /// Move the clock to node i's timer and fire it (or fire it early when none is due).
    Timeout(u8),
    /// One natural event: deliver the oldest frame, or else fire the earliest timer.
    Tick,
    /// Up to `MAX_RUN` natural events.
    Run(u8),
    /// Crash node i: its unexecuted outputs are lost.
    Crash(u8),
    /// Restart node i (if down) from its last persisted record.
    Restart(u8),
    /// Crash and restart node i at once.
    Reboot(u8),
    /// Toggle whether node i's outputs wait for `Exec`.
    Hold(u8),
    /// Execute up to n of node i's pending outputs.
    Exec(u8, u8),
    /// `release` on node i.
    Release(u8),
    /// `hand_over` from node i to node id j (0..=3: 0 is not a member).
    HandOver(u8, u8),
    /// `campaign` on node i.
    Campaign(u8),
}

macro_rules! steps {
    ($($tag:literal => $name:ident $(($($f:ident),*))?,)*) => {
        impl<'a> Arbitrary<'a> for Step {
            fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
                let tag = u8::arbitrary(u)? % STEP_KINDS;
                Ok(match tag {
                    $($tag => Step::$name $(($({ let $f = u8::arbitrary(u)?; $f }),*))?,)*
                    _ => unreachable!(),
                })
            }
        }

        impl Step {
            /// The bytes `Step::arbitrary` reads back as this step.
            pub fn encode(&self, out: &mut Vec<u8>) {
                match *self {
                    $(Step::$name $(($($f),*))? => {
                        out.push($tag);
                        $($(out.push($f);)*)?
                    })*
                }
            }
        }
    };
}

/// Number of `Step` variants.
pub const STEP_KINDS: u8 = 21;

steps! {
    0 => Deliver(k),
    1 => Drop(k),
    2 => Duplicate(k),
    3 => Redirect(k, to),
    4 => Mutate(k, at, x),
    5 => Truncate(k, len),
    6 => Replay(h, to),
    7 => Advance(ms),
    8 => Sleep(x),
    9 => Nudge(us),
    10 => Timeout(i),
    11 => Tick,
    12 => Run(n),
    13 => Crash(i),
    14 => Restart(i),
    15 => Reboot(i),
    16 => Hold(i),
    17 => Exec(i, n),
    18 => Release(i),
    19 => HandOver(i, to),
    20 => Campaign(i),
}

/// Self-test only (`--features planted-amnesia`): the driver "optimises" its disk writes
/// and skips every record that does not advance the instance, so a node that crashes
/// forgets the promises and votes it made in its current instance (the classic Paxos
/// amnesia bug). The executor's persist-before-send check cannot see it (the driver says
/// the record was stored), and the local checks that would flag it at once (records and
/// versions that go back) are off, so only the cluster-wide invariants (one master at a
/// time, agreement per version) are left to catch it, which proves they can.
pub const PLANTED_AMNESIA: bool = cfg!(feature = "planted-amnesia");

/// A frame on the network.
#[derive(Clone, Debug)]
struct Frame {
    to: usize,
    bytes: Vec<u8>,
}

/// One output the executor handed to the driver, not yet carried out.
#[derive(Clone, Debug)]
enum Effect {
    Persist(Box<Record>),
    /// One sealed frame for these nodes (indices), in order.
    Send {
        to: Vec<usize>,
        frame: Vec<u8>,
    },
    Event,
}

/// What the executor of node `i` hands its outputs to: the node's driver FIFO. Each output
/// becomes one entry, so `Exec(i, n)` carries out `n` outputs, as a driver does.
struct Io<'a> {
    i: usize,
    /// The node's own header, which every packet it sends must carry.
    header: Header,
    fifo: &'a mut VecDeque<Effect>,
}

impl Effects for Io<'_> {
    type Error = Infallible;

    fn persist(&mut self, record: &Record) -> Result<(), Infallible> {
        self.fifo.push_back(Effect::Persist(Box::new(*record)));
        Ok(())
    }

    fn send(&mut self, to: NodeId, frame: &[u8], packet: &Packet) -> Result<(), Infallible> {
        let i = self.i;
        assert_eq!(packet.header, self.header, "node {i} sent a foreign header");
        assert!(
            to != self.header.from && usize::from(to.0) <= NODES && to.0 > 0,
            "node {i} sent to {to:?}"
        );
        let j = usize::from(to.0) - 1;
        // The executor hands one output's frame to its members in ascending order: one
        // entry. (Two outputs with the same frame to ascending members would also make
        // one; carrying those out together is harmless.)
        if let Some(Effect::Send { to, frame: last }) = self.fifo.back_mut() {
            if last.as_slice() == frame && to.last().is_some_and(|&k| k < j) {
                to.push(j);
                return Ok(());
            }
        }
        self.fifo.push_back(Effect::Send {
            to: vec![j],
            frame: frame.to_vec(),
        });
        Ok(())
    }

    fn event(&mut self, _: &Event) -> Result<(), Infallible> {
        self.fifo.push_back(Effect::Event);
        Ok(())
    }
}

struct Slot {
    node: Option<Node<NODES>>,
    /// The node's executor (a new one at every restart).
    exec: Executor,
    disk: Option<Record>,
    /// Outputs drained from the node but not yet carried out (held node).
    fifo: VecDeque<Effect>,
    held: bool,
    /// Version and instance last seen on this node (reset at restart from the record).
    version: Option<u64>,
    instance: u64,
}

/// The harness.
pub struct Cluster {
    configs: Vec<Config<NODES>>,
    slots: Vec<Slot>,
    now: Instant,
    net: Vec<Frame>,
    history: VecDeque<Frame>,
    pipelined: bool,
    /// Agreement: the election state every node had at each version, over all time.
    states: BTreeMap<u64, ElectionState>,
    ticks: usize,
    /// Scenario statistics (for the seed generator and the self-test).
    pub stats: Coverage,
}

/// What a scenario reached.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coverage {
    /// Steps run.
    pub steps: usize,
    /// Frames handed to a live node.
    pub frames_delivered: usize,
    /// The highest version any node reached.
    pub max_version: u64,
    /// Invariant checks that found a master (one after every step and `Run` tick).
    pub masters_seen: usize,
    /// Nodes restarted.
    pub restarts: usize,
    /// `release` calls that succeeded.
    pub releases_ok: usize,
    /// `hand_over` calls that succeeded.
    pub hand_overs_ok: usize,
    /// Frames dropped for a bad tag (mutated, truncated).
    pub bad_tags: u64,
}

impl Cluster {
    /// A fresh cluster in lease mode; `seed` varies the nodes' jitter.
    pub fn new(seed: u8, pipelined: bool) -> Self {
        Self::with_renewal(seed, pipelined, Renewal::Lease)
    }

    /// A fresh cluster whose nodes renew the `renewal` way.
    pub fn with_renewal(seed: u8, pipelined: bool, renewal: Renewal) -> Self {
        let members = [
            Member::candidate(1),
            Member::candidate(2),
            Member::candidate(3),
        ];
        let configs: Vec<Config<NODES>> = (1..=NODES as u16)
            .map(|id| {
                let mut c = Config::new(7, NodeId(id), &members).expect("valid config");
                c.seed = u64::from(seed).wrapping_mul(0x9E37_79B9) ^ u64::from(id);
                c.auth = Auth::key(crate::KEY);
                c.renewal = renewal;
                c
            })
            .collect();
        let slots = configs
            .iter()
            .map(|c| Slot {
                node: Some(Node::first_boot(c.clone(), Instant::ZERO).expect("first boot")),
                exec: Executor::new(),
                disk: None,
                fifo: VecDeque::new(),
                held: false,
                version: None,
                instance: 0,
            })
            .collect();
        let mut cluster = Cluster {
            configs,
            slots,
            now: Instant::ZERO,
            net: Vec::new(),
            history: VecDeque::new(),
            pipelined,
            states: BTreeMap::new(),
            ticks: 0,
            stats: Coverage::default(),
        };
        cluster.settle();
        cluster
    }

    /// The last record each node persisted.
    pub fn records(&self) -> Vec<Record> {
        self.slots.iter().filter_map(|s| s.disk).collect()
    }

    /// The most recently sent frames (oldest first).
    pub fn sent(&self) -> Vec<Vec<u8>> {
        self.history.iter().map(|f| f.bytes.clone()).collect()
    }

    /// One line about the cluster's state (for `examples/explain.rs`).
    pub fn summary(&self) -> String {
        let mut out = format!("t={} in-flight={}", self.now, self.net.len());
        for (i, s) in self.slots.iter().enumerate() {
            match &s.node {
                None => out += &format!(" | n{}: down", i + 1),
                Some(n) => {
                    out += &format!(
                        " | n{}: inst {} v{:?} master {:?}{}{}",
                        i + 1,
                        n.instance(),
                        n.version(),
                        n.master(self.now).map(|m| m.node.0),
                        if s.held { " held" } else { "" },
                        if s.fifo.is_empty() {
                            String::new()
                        } else {
                            format!(" fifo {}", s.fifo.len())
                        },
                    );
                }
            }
        }
        out
    }

    fn live(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }

    /// Carries out one output of node `i`.
    fn execute(&mut self, i: usize, effect: Effect) {
        match effect {
            Effect::Persist(record) => {
                if PLANTED_AMNESIA {
                    if self.slots[i]
                        .disk
                        .is_some_and(|d| d.instance() == record.instance())
                    {
                        return;
                    }
                } else {
                    self.check_record(i, &record);
                }
                self.slots[i].disk = Some(*record);
            }
            Effect::Send { to, frame } => {
                for j in to {
                    let f = Frame {
                        to: j,
                        bytes: frame.clone(),
                    };
                    if self.history.len() == HISTORY {
                        self.history.pop_front();
                    }
                    self.history.push_back(f.clone());
                    self.enqueue(f);
                }
            }
            Effect::Event => {}
        }
    }

    fn enqueue(&mut self, f: Frame) {
        if self.net.len() < MAX_IN_FLIGHT {
            self.net.push(f);
        }
    }

    /// A new record of node `i` never goes back on the one it replaces, and survives its
    /// byte form.
    fn check_record(&self, i: usize, r: &Record) {
        let me = &self.configs[i];
        assert_eq!((r.cluster(), r.node()), (me.cluster_id, me.node_id));
        let mut buf = [0u8; MAX_RECORD_SIZE];
        let n = r.encode(&mut buf).expect("a record fits MAX_RECORD_SIZE");
        assert_eq!(Record::decode(&buf[..n]), Ok(*r));
        if let Some(old) = &self.slots[i].disk {
            assert!(
                r.promised() >= old.promised(),
                "node {i}: stored promise went back: {old:?} -> {r:?}"
            );
            assert!(
                r.instance() >= old.instance(),
                "node {i}: stored instance went back"
            );
            assert!(
                r.incarnation() >= old.incarnation(),
                "node {i}: incarnation went back"
            );
            assert!(
                r.election().version >= old.election().version,
                "node {i}: stored version went back: {old:?} -> {r:?}"
            );
        }
    }

    /// Drains node `i`'s outputs through its executor into its FIFO. A send that
    /// promises more than the node stored is a found bug.
    fn pull(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let mut io = Io {
            i,
            header: node.header(),
            fifo: &mut slot.fifo,
        };
        if let Err(e) = slot.exec.drain(node, &mut io) {
            panic!("node {i}: {e}");
        }
    }

    /// Carries out up to `n` of node `i`'s drained outputs, oldest first.
    fn carry_out(&mut self, i: usize, n: usize) {
        for _ in 0..n {
            match self.slots[i].fifo.pop_front() {
                Some(effect) => self.execute(i, effect),
                None => break,
            }
        }
    }

    /// The driver's part after every input: execute what may be executed.
    fn settle(&mut self) {
        for i in 0..NODES {
            if !self.live(i) {
                continue;
            }
            if !self.slots[i].held {
                self.pull(i);
                self.carry_out(i, usize::MAX);
            } else if self.pipelined {
                self.pull(i);
                // A stalled driver cannot buffer forever: bound it.
                assert!(self.slots[i].fifo.len() <= 100_000);
            }
        }
        self.check();
    }

    /// The invariants, after every step.
    fn check(&mut self) {
        let now = self.now;
        let masters: Vec<usize> = (0..NODES)
            .filter(|&i| {
                self.slots[i]
                    .node
                    .as_ref()
                    .is_some_and(|n| n.is_master(now))
            })
            .collect();
        assert!(masters.len() <= 1, "two masters at {now}: {masters:?}");
        if !masters.is_empty() {
            self.stats.masters_seen += 1;
        }
        for i in 0..NODES {
            let Some(node) = self.slots[i].node.as_ref() else {
                continue;
            };
            assert_eq!(
                node.stats().queue_overflows,
                0,
                "node {i}: output queue overflowed"
            );
            let version = node.version();
            let state = *node.election_state();
            assert_eq!(state.version, version);
            assert!(
                PLANTED_AMNESIA || version >= self.slots[i].version,
                "node {i}: version went back from {:?} to {version:?}",
                self.slots[i].version
            );
            assert!(
                PLANTED_AMNESIA || node.instance() >= self.slots[i].instance,
                "node {i}: instance went back"
            );
            if let Some(v) = version {
                assert!(
                    v < node.instance(),
                    "node {i}: version {v} not below its instance"
                );
                let agreed = *self.states.entry(v).or_insert(state);
                assert_eq!(agreed, state, "node {i} disagrees about version {v}");
                self.stats.max_version = self.stats.max_version.max(v);
            }
            if let Some(m) = node.master(now) {
                assert_eq!(Some(m.node), state.master);
                assert_eq!(m.term_end.is_some(), m.node == node.id());
            }
            let instance = node.instance();
            self.slots[i].version = version;
            self.slots[i].instance = instance;
        }
    }

    fn index(&self, k: u8) -> Option<usize> {
        (!self.net.is_empty()).then(|| usize::from(k) % self.net.len())
    }

    /// Node `i`, if it is up and takes input. A driver that is not pipelined hands its
    /// node no input while outputs it drained wait in the FIFO (after an `Exec` that
    /// carried out only some): as the node itself refuses all input while outputs wait
    /// in its own queue.
    fn accepting(&mut self, i: usize) -> Option<&mut Node<NODES>> {
        let slot = &mut self.slots[i];
        if !self.pipelined && !slot.fifo.is_empty() {
            return None;
        }
        slot.node.as_mut()
    }

    fn deliver(&mut self, f: Frame) {
        if !self.live(f.to) {
            return;
        }
        self.stats.frames_delivered += 1;
        let now = self.now;
        let result = self.accepting(f.to).map(|n| n.handle_frame(now, &f.bytes));
        if result == Some(Err(DropReason::BadTag)) {
            self.stats.bad_tags += 1;
        }
    }

    fn fire(&mut self, i: usize) {
        let now = self.now;
        if let Some(node) = self.slots[i].node.as_ref() {
            let t = node.poll_timeout().unwrap_or(now).max(now);
            self.now = t;
            if let Some(node) = self.accepting(i) {
                node.handle_timeout(t);
            }
        }
    }

    /// One natural event; false when there is none.
    fn tick(&mut self) -> bool {
        if self.ticks >= MAX_TICKS {
            return false;
        }
        self.ticks += 1;
        if !self.net.is_empty() {
            let f = self.net.remove(0);
            self.deliver(f);
            return true;
        }
        let next = (0..NODES)
            .filter_map(|i| Some((self.slots[i].node.as_ref()?.poll_timeout()?, i)))
            .min();
        match next {
            Some((_, i)) => {
                self.fire(i);
                true
            }
            None => false,
        }
    }

    fn crash(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.fifo.clear();
        slot.held = false;
    }

    fn restart(&mut self, i: usize) {
        if self.live(i) {
            return;
        }
        let config = self.configs[i].clone();
        let node = match self.slots[i].disk {
            Some(record) => {
                let node =
                    Node::restore(config, record, self.now).expect("restore from own record");
                assert!(
                    node.version() >= record.election().version,
                    "node {i}: restored version below its record"
                );
                assert_eq!(node.instance(), record.instance());
                assert!(
                    !node.is_master(self.now),
                    "node {i} is master right after restart"
                );
                node
            }
            // It never stored a record, so it never sent anything: a first boot is sound.
            None => Node::first_boot(config, self.now).expect("first boot"),
        };
        let slot = &mut self.slots[i];
        slot.version = node.version();
        slot.instance = node.instance();
        slot.node = Some(node);
        slot.exec = Executor::new();
        self.stats.restarts += 1;
    }

    /// Runs one step and checks the invariants.
    pub fn step(&mut self, step: Step) {
        self.stats.steps += 1;
        let now = self.now;
        let node_at = |i: u8| usize::from(i) % NODES;
        match step {
            Step::Deliver(k) => {
                if let Some(k) = self.index(k) {
                    let f = self.net.remove(k);
                    self.deliver(f);
                }
            }
            Step::Drop(k) => {
                if let Some(k) = self.index(k) {
                    self.net.remove(k);
                }
            }
            Step::Duplicate(k) => {
                if let Some(k) = self.index(k) {
                    let f = self.net[k].clone();
                    self.enqueue(f);
                }
            }
            Step::Redirect(k, to) => {
                if let Some(k) = self.index(k) {
                    let mut f = self.net[k].clone();
                    f.to = node_at(to);
                    self.deliver(f);
                }
            }
            Step::Mutate(k, at, x) => {
                if let Some(k) = self.index(k) {
                    let mut f = self.net[k].clone();
                    if !f.bytes.is_empty() {
                        let at = usize::from(at) % f.bytes.len();
                        f.bytes[at] ^= x.max(1);
                        self.enqueue(f);
                    }
                }
            }
            Step::Truncate(k, len) => {
                if let Some(k) = self.index(k) {
                    let mut f = self.net[k].clone();
                    f.bytes.truncate(usize::from(len) % f.bytes.len().max(1));
                    self.enqueue(f);
                }
            }
            Step::Replay(h, to) => {
                if !self.history.is_empty() {
                    let mut f = self.history[usize::from(h) % self.history.len()].clone();
                    if to & 0x80 == 0 {
                        f.to = node_at(to); // else: to its original destination
                    }
                    self.enqueue(f);
                }
            }
            Step::Advance(ms) => self.now = now + Duration::from_millis(u64::from(ms)),
            Step::Sleep(x) => self.now = now + Duration::from_millis(20 * u64::from(x)),
            Step::Nudge(us) => self.now = now + Duration::from_micros(u64::from(us)),
            Step::Timeout(i) => self.fire(node_at(i)),
            Step::Tick => {
                self.tick();
            }
            Step::Run(n) => {
                for _ in 0..n.min(MAX_RUN) {
                    if !self.tick() {
                        break;
                    }
                    self.settle();
                }
            }
            Step::Crash(i) => self.crash(node_at(i)),
            Step::Restart(i) => self.restart(node_at(i)),
            Step::Reboot(i) => {
                self.crash(node_at(i));
                self.restart(node_at(i));
            }
            Step::Hold(i) => {
                let slot = &mut self.slots[node_at(i)];
                slot.held = !slot.held;
            }
            Step::Exec(i, n) => {
                let i = node_at(i);
                self.pull(i);
                self.carry_out(i, usize::from(n));
            }
            Step::Release(i) => {
                if let Some(node) = self.accepting(node_at(i)) {
                    if node.release(now).is_ok() {
                        assert!(!node.is_master(now), "still master after release");
                        self.stats.releases_ok += 1;
                    }
                }
            }
            Step::HandOver(i, to) => {
                if let Some(node) = self.accepting(node_at(i)) {
                    if node.hand_over(now, NodeId(u16::from(to % 4))).is_ok() {
                        assert!(!node.is_master(now), "still master after hand-over");
                        self.stats.hand_overs_ok += 1;
                    }
                }
            }
            Step::Campaign(i) => {
                if let Some(node) = self.accepting(node_at(i)) {
                    let _ = node.campaign(now);
                }
            }
        }
        self.settle();
    }
}

/// Encodes a lease-mode scenario for [`run`].
pub fn encode(seed: u8, pipelined: bool, steps: &[Step]) -> Vec<u8> {
    encode_with(seed, pipelined, Renewal::Lease, steps)
}

/// Encodes a scenario for [`run`]: the seed byte, a flags byte (bit 0 pipelined
/// drivers, bit 1 [`Renewal::Logged`]), then the steps.
pub fn encode_with(seed: u8, pipelined: bool, renewal: Renewal, steps: &[Step]) -> Vec<u8> {
    let flags = u8::from(pipelined) | u8::from(renewal == Renewal::Logged) << 1;
    let mut out = vec![seed, flags];
    for s in steps {
        s.encode(&mut out);
    }
    out
}

/// The flags byte: (pipelined, renewal). Inputs written before protocol 2 had 0 or 1
/// there, so they run in lease mode.
fn flags(flags: u8) -> (bool, Renewal) {
    let renewal = if flags & 2 != 0 {
        Renewal::Logged
    } else {
        Renewal::Lease
    };
    (flags & 1 != 0, renewal)
}

/// The renewal mode `data` runs in (see [`encode_with`]).
pub fn renewal_of(data: &[u8]) -> Renewal {
    flags(data.get(1).copied().unwrap_or(0)).1
}

/// The scenario `data` encodes: (seed, pipelined, steps), as [`run`] reads it; the
/// mode is [`renewal_of`].
pub fn scenario(data: &[u8]) -> (u8, bool, Vec<Step>) {
    let mut u = Unstructured::new(data);
    let seed: u8 = u.arbitrary().unwrap_or(0);
    let (pipelined, _) = flags(u.arbitrary().unwrap_or(0));
    let mut steps = Vec::new();
    while !u.is_empty() && steps.len() < MAX_STEPS {
        match Step::arbitrary(&mut u) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    (seed, pipelined, steps)
}

/// Decodes a scenario from `data` and runs it: a seed byte, a flags byte, then steps.
pub fn run(data: &[u8]) -> Cluster {
    let mut u = Unstructured::new(data);
    let seed: u8 = u.arbitrary().unwrap_or(0);
    let (pipelined, renewal) = flags(u.arbitrary().unwrap_or(0));
    let mut cluster = Cluster::with_renewal(seed, pipelined, renewal);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        match Step::arbitrary(&mut u) {
            Ok(step) => cluster.step(step),
            Err(_) => break,
        }
    }
    cluster
}

/// The whole target.
pub fn check(data: &[u8]) {
    run(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_steps() -> Vec<Step> {
        let mut v = Vec::new();
        for tag in 0..STEP_KINDS {
            let bytes = [tag, 1, 2, 3];
            v.push(Step::arbitrary(&mut Unstructured::new(&bytes)).unwrap());
        }
        v
    }

    #[test]
    fn steps_encode_to_what_they_decode_from() {
        let steps = all_steps();
        assert_eq!(steps.len(), usize::from(STEP_KINDS));
        let bytes = encode(9, true, &steps);
        let mut u = Unstructured::new(&bytes);
        assert_eq!(u8::arbitrary(&mut u).unwrap(), 9);
        assert!(bool::arbitrary(&mut u).unwrap());
        for s in &steps {
            assert_eq!(Step::arbitrary(&mut u).unwrap(), *s);
        }
        assert!(u.is_empty());
        // Every variant is reachable, each with its own tag.
        let mut kinds: Vec<_> = steps.iter().map(std::mem::discriminant).collect();
        kinds.dedup();
        assert_eq!(kinds.len(), steps.len());
    }

    fn selftest_input() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/selftest/planted-amnesia-two-masters"
        );
        std::fs::read(path).unwrap()
    }

    /// The committed self-test input: with the planted driver bug it makes two masters.
    #[cfg(feature = "planted-amnesia")]
    #[test]
    #[should_panic(expected = "two masters")]
    fn the_planted_amnesia_bug_is_caught() {
        run(&selftest_input());
    }

    /// The same input is harmless with a correct driver.
    #[cfg(not(feature = "planted-amnesia"))]
    #[test]
    fn the_selftest_input_passes_without_the_plant() {
        run(&selftest_input());
    }

    /// A send the executor refuses (here: the record before it was lost on the way, a
    /// driver bug) is a found bug, not a silent drop.
    #[test]
    #[should_panic(expected = "persist-before-send")]
    fn a_send_the_executor_refuses_is_a_found_bug() {
        let mut c = Cluster::new(0, false);
        c.step(Step::Hold(0));
        c.step(Step::Campaign(0)); // held: its Prepare (ahead of its record), the record
        let now = c.now;
        let node = c.slots[0].node.as_mut().unwrap();
        crate::lose_the_promise_and_answer(node, now);
        c.step(Step::Exec(0, 8));
    }

    #[test]
    fn a_plain_run_elects_one_master_and_keeps_it() {
        // Lease mode: renewals go through Renew rounds, the register stays at the
        // term's op.
        let c = run(&encode(0, false, &[Step::Run(64); 8]));
        assert!(c.stats.masters_seen > 100, "{:?}", c.stats);
        assert!(c.stats.max_version < 5, "{:?}", c.stats);
        // Logged mode: every renewal is a chosen op, the version climbs.
        let c = run(&encode_with(0, false, Renewal::Logged, &[Step::Run(64); 8]));
        assert!(c.stats.masters_seen > 100, "{:?}", c.stats);
        assert!(c.stats.max_version > 20, "{:?}", c.stats);
    }

    #[test]
    fn the_flags_byte_chooses_the_mode() {
        assert_eq!(renewal_of(&encode(0, true, &[])), Renewal::Lease);
        let logged = encode_with(0, true, Renewal::Logged, &[]);
        assert_eq!(renewal_of(&logged), Renewal::Logged);
        assert!(scenario(&logged).1, "pipelined flag lost");
        let c = run(&encode_with(2, false, Renewal::Logged, &[Step::Run(64)]));
        assert!(c.configs.iter().all(|c| c.renewal == Renewal::Logged));
    }

    #[test]
    fn every_step_kind_runs_on_a_live_cluster() {
        let mut steps = vec![Step::Run(64); 3];
        for _ in 0..4 {
            steps.extend(all_steps());
            steps.push(Step::Run(64));
        }
        for pipelined in [false, true] {
            for renewal in [Renewal::Lease, Renewal::Logged] {
                run(&encode_with(1, pipelined, renewal, &steps));
            }
        }
    }
}

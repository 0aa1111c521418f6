//! Exhaustive, bounded model checking of the unmodified core with [stateright].
//!
//! Two models, both driving real [`tenure::Node`]s through their public sans-IO API:
//!
//! - [`actor`]: every node is wrapped in a stateright [`Actor`](stateright::actor::Actor).
//!   The network loses, duplicates and reorders messages; up to a minority of nodes crash and
//!   recover from exactly what they saved. It checks the Paxos and state-machine properties,
//!   which do not depend on time.
//! - [`lease`]: a custom [`Model`](stateright::Model) with a logical real-time clock and one
//!   drifting local clock per node. It checks the lease property, "at most one node believes
//!   it is master at any real instant", which does depend on time.
//!
//! Both explore every interleaving breadth-first up to a depth bound (a number of steps from
//! the initial states), so a counterexample found is a shortest one and a clean run means
//! "no violation within that many steps". That holds with one checker thread (the default);
//! with more, stateright's search is only roughly breadth-first, and a state first reached
//! by a longer path is expanded less deep. Each state costs a few kB (the frontier holds
//! whole states), so [`Limits::max_states`] is the memory bound.
//!
//! # State identity
//!
//! A [`Node`] carries statistics counters (messages in, drops, ...) that no
//! decision reads. Hashed as they are, every re-delivery of a duplicate would make a new state
//! and the search would never close. [`NodeKey`] fingerprints a node from its `Debug` form with
//! the counters cut off, so two nodes that differ only in counters are one state. The
//! fingerprint is 64 bits, like stateright's own state fingerprints.
//!
//! # Faults the checker must catch
//!
//! [`Fault`] plants a bug either in the driver ([`Fault::DropPersist`]: the saved record lags),
//! in the configuration ([`Fault::UnderstatedDrift`]) or in the core through its test-only
//! hooks ([`Fault::IgnoreVersionCheck`] and protocol 2's [`Fault::NoRestartSilence`],
//! [`Fault::SingleGuardSlot`], [`Fault::ReuseSeq`], [`Fault::DoubleAge`], which exist only in
//! the `tenure-fault` build of the core's source that this crate uses). The tests in
//! `tests/tests/check.rs` assert what each one yields.
//!
//! # One driver
//!
//! Both models execute a node's outputs through [`tenure::Executor`], as every other driver
//! does, with the effects of [`driver`]: the models keep only what is their own (where a
//! record is stored, where a packet goes, the planted driver fault).

pub mod actor;
pub mod driver;
pub mod lease;

use std::collections::hash_map::DefaultHasher;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use tenure::{
    Ballot, Config, Duration, ElectionState, Member, Message, Node, NodeId, Op, Packet, Renewal,
    MAX_PACKET_SIZE,
};

/// Member capacity of the checked nodes (`Node<CAP>`): the checker handles 1 to `CAP` nodes.
pub const CAP: usize = 5;

/// The node type under check.
pub type TNode = Node<CAP>;

/// Cluster id used by every checked node.
pub const CLUSTER: u32 = 0x7e2e;

/// A bug planted on purpose, to show that the checker finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Fault {
    /// No fault: the unmodified core and a correct driver.
    #[default]
    None,
    /// The driver stores only the record a node emits when it starts, and drops every later
    /// [`Output::Persist`](tenure::Output::Persist): after a crash the node comes back with a
    /// record that lags behind what it promised.
    DropPersist,
    /// The last node's state machine applies `BeMaster` whatever its version, through the
    /// core's test-only `Node::inject_ignore_version_check`.
    IgnoreVersionCheck,
    /// Lease model only: the nodes are configured with no drift bound and no guard
    /// (`drift_ppm = 0`, `guard = 0`) while their clocks really drift.
    UnderstatedDrift,
    /// Every restored node votes at once: no restart silence (R6), planted with
    /// [`tenure::fault::Fault::NoRestartSilence`] right after `Node::restore`.
    NoRestartSilence,
    /// Every node keeps one guard slot, overwritten by the latest holder (R4).
    SingleGuardSlot,
    /// Every node's retried renewal round reuses its seq and counts answers to the
    /// earlier attempt for the retry's later begin (R3).
    ReuseSeq,
    /// Every node overstates a carried value's age twice (R8).
    DoubleAge,
    /// Lease model with a membership change: every node applies a two-member change (a
    /// member swapped for the joining node) in one step (§9).
    TwoMemberStep,
    /// Lease model with a rejoin: the rejoining node votes at once, with no rule and no
    /// silence, as a node started over a lost record with `first_boot` would (§10).
    RejoinVotesAtOnce,
    /// Lease model with a rejoin: the rejoining node keeps no silence (§10).
    RejoinForgetsSilence,
    /// Every proposer writes its own promise only with its next record, after its Accept
    /// left (§2, "Persist before reply").
    OwnPromiseLate,
    /// Every proposer writes its own acceptance only with its next record, after its
    /// Accept left (§2, "Persist before reply").
    OwnAcceptanceLate,
}

impl Fault {
    /// Every fault, `None` first.
    pub const ALL: [Fault; 13] = [
        Fault::None,
        Fault::DropPersist,
        Fault::IgnoreVersionCheck,
        Fault::UnderstatedDrift,
        Fault::NoRestartSilence,
        Fault::SingleGuardSlot,
        Fault::ReuseSeq,
        Fault::DoubleAge,
        Fault::TwoMemberStep,
        Fault::RejoinVotesAtOnce,
        Fault::RejoinForgetsSilence,
        Fault::OwnPromiseLate,
        Fault::OwnAcceptanceLate,
    ];

    /// The kebab-case name (`--fault` of `tenure-check`).
    pub const fn label(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::DropPersist => "drop-persist",
            Fault::IgnoreVersionCheck => "ignore-version-check",
            Fault::UnderstatedDrift => "understated-drift",
            Fault::NoRestartSilence => "no-restart-silence",
            Fault::SingleGuardSlot => "single-guard-slot",
            Fault::ReuseSeq => "reuse-seq",
            Fault::DoubleAge => "double-age",
            Fault::TwoMemberStep => "two-member-step",
            Fault::RejoinVotesAtOnce => "rejoin-votes-at-once",
            Fault::RejoinForgetsSilence => "rejoin-forgets-silence",
            Fault::OwnPromiseLate => "own-promise-late",
            Fault::OwnAcceptanceLate => "own-acceptance-late",
        }
    }

    /// Switches this fault's core hook on in `node`, node `index` of `n`, right after it
    /// started (`restored`: from its record). The driver's and the configuration's faults
    /// have no hook; [`Fault::IgnoreVersionCheck`] goes to the last node only, the
    /// protocol 2 faults to every node ([`Fault::NoRestartSilence`] only acts at a restore).
    pub fn plant(self, node: &mut TNode, index: usize, n: usize, restored: bool) {
        use tenure::fault::Fault as Core;
        let core = match self {
            Fault::IgnoreVersionCheck if index + 1 == n => Core::IgnoreVersionCheck,
            Fault::NoRestartSilence if restored => Core::NoRestartSilence,
            Fault::SingleGuardSlot => Core::SingleGuardSlot,
            Fault::ReuseSeq => Core::ReuseSeq,
            Fault::DoubleAge => Core::DoubleAge,
            Fault::TwoMemberStep => Core::TwoMemberStep,
            Fault::OwnPromiseLate => Core::OwnPromiseLate,
            Fault::OwnAcceptanceLate => Core::OwnAcceptanceLate,
            _ => return,
        };
        node.inject_fault(core, true);
    }
}

impl Fault {
    /// Switches a rejoin fault's core hook on in `node`, right after `Node::rejoin`.
    pub fn plant_rejoin(self, node: &mut TNode) {
        use tenure::fault::Fault as Core;
        match self {
            Fault::RejoinVotesAtOnce => {
                // Votes at once, as a node started over a lost record with `first_boot`
                // would: no rejoin rule, no silence.
                node.inject_fault(Core::RejoinVotesAtOnce, true);
                node.inject_fault(Core::RejoinForgetsSilence, true);
            }
            Fault::RejoinForgetsSilence => node.inject_fault(Core::RejoinForgetsSilence, true),
            _ => {}
        }
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.label() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.label()).collect();
                format!("unknown fault {s:?} ({})", names.join(", "))
            })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Which application commands a master may receive (each node incarnation takes at most
/// one, to bound the search).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Commands {
    /// None.
    #[default]
    Off,
    /// [`Node::release`](tenure::Node::release).
    Release,
    /// [`Node::hand_over`](tenure::Node::hand_over) to the next node.
    HandOver,
    /// Either.
    Both,
}

impl Commands {
    /// Whether releases may be commanded.
    pub fn release(self) -> bool {
        matches!(self, Commands::Release | Commands::Both)
    }
    /// Whether hand-overs may be commanded.
    pub fn hand_over(self) -> bool {
        matches!(self, Commands::HandOver | Commands::Both)
    }
    /// Whether any command may be given.
    pub fn any(self) -> bool {
        self != Commands::Off
    }
}

impl FromStr for Commands {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Commands::Off),
            "release" => Ok(Commands::Release),
            "hand-over" => Ok(Commands::HandOver),
            "both" => Ok(Commands::Both),
            _ => Err(format!(
                "unknown commands {s:?} (off, release, hand-over, both)"
            )),
        }
    }
}

impl fmt::Display for Commands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Commands::Off => "off",
            Commands::Release => "release",
            Commands::HandOver => "hand-over",
            Commands::Both => "both",
        })
    }
}

/// The timing given to every node's [`Config`]. Small numbers keep traces readable; only
/// their ratios matter to the checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    /// [`Config::lease`].
    pub lease: Duration,
    /// [`Config::drift_ppm`]; the lease model also drives the clocks at `1 ± drift`.
    pub drift_ppm: u32,
    /// [`Config::guard`].
    pub guard: Duration,
    /// [`Config::round_timeout`].
    pub round_timeout: Duration,
    /// [`Config::max_backoff`].
    pub max_backoff: Duration,
    /// [`Config::priority_step`].
    pub priority_step: Duration,
    /// [`Config::handover_grace`].
    pub handover_grace: Duration,
    /// [`Config::renewal`] (default [`Renewal::Lease`], protocol 2).
    pub renewal: Renewal,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease: Duration::from_millis(100),
            drift_ppm: 10_000,
            guard: Duration::from_millis(1),
            round_timeout: Duration::from_millis(20),
            max_backoff: Duration::from_millis(10),
            priority_step: Duration::from_millis(10),
            handover_grace: Duration::from_millis(20),
            renewal: Renewal::Lease,
        }
    }
}

/// The configuration of node `index` (0-based; its [`NodeId`] is `index + 1`) in a cluster of
/// `n` candidates.
pub fn config(n: usize, index: usize, timing: &Timing) -> Config<CAP> {
    assert!((1..=CAP).contains(&n), "1 to {CAP} nodes");
    let members: Vec<Member> = (1..=n as u16).map(Member::candidate).collect();
    let mut c = Config::new(CLUSTER, node_id(index), &members).expect("member list fits");
    c.lease = timing.lease;
    c.drift_ppm = timing.drift_ppm;
    c.guard = timing.guard;
    c.round_timeout = timing.round_timeout;
    c.max_backoff = timing.max_backoff;
    c.priority_step = timing.priority_step;
    c.handover_grace = timing.handover_grace;
    c.renewal = timing.renewal;
    c.seed = 0x5eed + index as u64;
    c.validate()
        .expect("checker timing must be a valid configuration");
    c
}

/// The [`NodeId`] of node `index` (0-based).
pub fn node_id(index: usize) -> NodeId {
    NodeId(index as u16 + 1)
}

/// The 0-based index of node `id`.
pub fn index_of(id: NodeId) -> usize {
    usize::from(id.0) - 1
}

/// A node's fingerprint without its statistics counters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeKey(pub u64);

impl NodeKey {
    /// Fingerprints `node`: its `Debug` form, streamed into a hasher, up to the `stats`
    /// field (the last one).
    pub fn of(node: &TNode) -> NodeKey {
        struct Feed {
            hasher: DefaultHasher,
            done: bool,
        }
        impl fmt::Write for Feed {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                // Derived `Debug` writes each field name as one piece.
                if s == "stats" {
                    self.done = true;
                }
                if !self.done {
                    self.hasher.write(s.as_bytes());
                }
                Ok(())
            }
        }
        let mut feed = Feed {
            hasher: DefaultHasher::new(),
            done: false,
        };
        write!(feed, "{node:?}").expect("formatting into a hasher cannot fail");
        NodeKey(feed.hasher.finish())
    }
}

/// A packet as it travels in a model. Ordered by its encoding (stateright sorts actions).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wire(pub Packet);

impl Wire {
    fn bytes(&self) -> ([u8; MAX_PACKET_SIZE], usize) {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        let len = tenure::encode(&self.0, &mut buf).expect("a packet always fits");
        (buf, len)
    }
}

impl Ord for Wire {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, la) = self.bytes();
        let (b, lb) = other.bytes();
        a[..la].cmp(&b[..lb])
    }
}

impl PartialOrd for Wire {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_message(&self.0.message))
    }
}

/// Which start states a search begins from, for the settings line.
pub fn starts_label(fresh: bool, elected: bool) -> &'static str {
    match (fresh, elected) {
        (true, true) => "fresh+elected",
        (true, false) => "fresh",
        (false, true) => "elected",
        (false, false) => "none",
    }
}

/// `round.node`, e.g. `3.n2` (the core's `Display`).
pub fn describe_ballot(b: Ballot) -> String {
    b.to_string()
}

/// One op, compactly (the core's `Display`).
pub fn describe_op(op: &Op) -> String {
    op.to_string()
}

/// The replicated election state, compactly (the core's `Display`).
pub fn describe_state(s: &ElectionState) -> String {
    s.to_string()
}

/// One message, compactly (the core's `Display`).
pub fn describe_message(m: &Message) -> String {
    m.to_string()
}

/// its Prepare or Accept leaves), so per sender they never decrease.
pub fn promise_shown(m: &Message) -> Option<Ballot> {
    match *m {
        // (A Prepare shows no promise of the sender's: it leaves before the proposer's
        // own promise is written.)
        Message::Promise { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Accepted { ballot, .. } => Some(ballot),
        Message::Reject { promised, .. } => Some(promised),
        _ => None,
    }
}

/// One property the search found an example or a counterexample for.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// The property's name.
    pub property: &'static str,
    /// Whether a discovery is a violation (an `always` property) or an example
    /// (a `sometimes` property).
    pub violation: bool,
    /// Steps from the initial state.
    pub steps: usize,
    /// The path, readable.
    pub trace: String,
}

/// What one bounded search found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Which model.
    pub model: &'static str,
    /// A one-line description of the configuration.
    pub setup: String,
    /// Distinct states explored.
    pub states: usize,
    /// States generated, repeats included.
    pub generated: usize,
    /// Deepest level (steps from an initial state) reached.
    pub depth: usize,
    /// Wall-clock time of the search.
    pub elapsed: std::time::Duration,
    /// Whether every state within the depth bound was explored (no time-out, no early stop).
    pub exhaustive: bool,
    /// Violations (counterexamples to `always` properties) and examples found.
    pub discoveries: Vec<Discovery>,
    /// `sometimes` properties for which no example was found.
    pub missing_examples: Vec<&'static str>,
}

impl Report {
    /// The violations found.
    pub fn violations(&self) -> impl Iterator<Item = &Discovery> {
        self.discoveries.iter().filter(|d| d.violation)
    }

    /// Whether `property` has a counterexample.
    pub fn violated(&self, property: &str) -> bool {
        self.violations().any(|d| d.property == property)
    }

    /// Whether `property` has an example.
    pub fn example(&self, property: &str) -> bool {
        self.discoveries
            .iter()
            .any(|d| !d.violation && d.property == property)
    }

    /// A summary line.
    pub fn summary(&self) -> String {
        format!(
            "{} model [{}]: {} states ({} generated), depth {}, {:.1?}, {}",
            self.model,
            self.setup,
            self.states,
            self.generated,
            self.depth,
            self.elapsed,
            if self.exhaustive {
                "exhaustive within the bound"
            } else {
                "NOT exhaustive (time-out, state cap, or stopped at a discovery)"
            }
        )
    }
}

/// Remembers which properties already have a discovery, so that each is reported once, at
/// the first state the breadth-first search finds: a shortest path with one checker thread.
/// (stateright itself keeps the last discovery, the deepest.)
#[derive(Default)]
pub(crate) struct FirstOnly(std::sync::Mutex<std::collections::BTreeSet<&'static str>>);

impl FirstOnly {
    /// Whether `property` holds at a state, given whether it is `violated` there: a
    /// violation counts only the first time.
    pub(crate) fn always(&self, property: &'static str, violated: bool) -> bool {
        !(violated && self.0.lock().expect("not poisoned").insert(property))
    }

    /// Whether a state is an example of `property`, given whether it `shows` it: only the
    /// first one counts.
    pub(crate) fn sometimes(&self, property: &'static str, shows: bool) -> bool {
        shows && self.0.lock().expect("not poisoned").insert(property)
    }
}

/// Search limits shared by both models.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Steps from an initial state.
    pub depth: usize,
    /// Checker threads (1 for an exact breadth-first search; see the module docs).
    pub threads: usize,
    /// Give up after this long (the report then says "not exhaustive").
    pub timeout: Option<std::time::Duration>,
    /// Stop at the first violation.
    pub stop_at_first_violation: bool,
    /// Stop once this property has a discovery.
    pub stop_on: Option<&'static str>,
    /// Stop after generating about this many states (a memory bound: a few kB each).
    pub max_states: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth: 6,
            threads: 1,
            timeout: None,
            stop_at_first_violation: false,
            stop_on: None,
            max_states: None,
        }
    }
}

/// Runs a breadth-first search of `model` within `limits` and collects a [`Report`].
pub(crate) fn run<M>(
    model: M,
    name: &'static str,
    setup: String,
    limits: &Limits,
    describe: impl Fn(&M, &stateright::Path<M::State, M::Action>) -> String,
) -> Report
where
    M: stateright::Model + Send + Sync + 'static,
    M::State: Clone + Hash + PartialEq + fmt::Debug + Send + Sync + 'static,
    M::Action: Clone + PartialEq + fmt::Debug + Send + Sync + 'static,
{
    use stateright::{Checker, Expectation, HasDiscoveries};
    let properties = model.properties();
    let mut builder = model
        .checker()
        .threads(limits.threads.max(1))
        .target_max_depth(limits.depth + 2);
    if let Some(t) = limits.timeout {
        builder = builder.timeout(t);
    }
    if let Some(n) = limits.max_states {
        builder = builder.target_state_count(n);
    }
    if let Some(p) = limits.stop_on {
        builder = builder.finish_when(HasDiscoveries::AnyOf([p].into_iter().collect()));
    } else if limits.stop_at_first_violation {
        builder = builder.finish_when(HasDiscoveries::AnyFailures);
    }
    let start = std::time::Instant::now();
    let checker = builder.spawn_bfs().join();
    let elapsed = start.elapsed();
    let timed_out = limits
        .timeout
        .is_some_and(|t| elapsed + std::time::Duration::from_millis(50) >= t);
    let found = checker.discoveries();
    let stopped_early = limits.stop_on.is_some_and(|p| found.contains_key(p))
        || limits.stop_at_first_violation
            && properties
                .iter()
                .any(|p| p.expectation == Expectation::Always && found.contains_key(p.name));
    let mut discoveries = Vec::new();
    let mut missing_examples = Vec::new();
    for p in &properties {
        let violation = p.expectation != Expectation::Sometimes;
        match found.get(p.name) {
            Some(path) => discoveries.push(Discovery {
                property: p.name,
                violation,
                steps: path.clone().into_actions().len(),
                trace: describe(checker.model(), path),
            }),
            None if !violation => missing_examples.push(p.name),
            None => {}
        }
    }
    Report {
        model: name,
        setup,
        states: checker.unique_state_count(),
        generated: checker.state_count(),
        depth: checker.max_depth().saturating_sub(1).min(limits.depth),
        elapsed,
        // With every property discovered, stateright stops before the bound.
        exhaustive: !timed_out
            && !stopped_early
            && found.len() < properties.len()
            && limits.max_states.is_none_or(|n| checker.state_count() < n),
        discoveries,
        missing_examples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure::{DropReason, Header, Instant, PROTOCOL_VERSION};

    #[test]
    fn node_key_ignores_counters_only() {
        let a = TNode::first_boot(config(3, 0, &Timing::default()), Instant::ZERO).unwrap();
        let mut b = a.clone();
        assert_eq!(
            b.handle_frame(Instant::ZERO, &[PROTOCOL_VERSION, 0xff, 0xff]),
            Err(DropReason::Malformed)
        );
        assert_eq!(b.stats().dropped.total(), 1);
        assert_ne!(a, b);
        assert_eq!(NodeKey::of(&a), NodeKey::of(&b));
        let mut c = a.clone();
        c.handle_timeout(Instant::from_millis(1_000));
        assert_ne!(NodeKey::of(&a), NodeKey::of(&c));
        assert!(format!("{a:?}").contains(", stats: Stats"));
    }

    #[test]
    fn wire_order_is_total_and_consistent() {
        let p = |round| {
            Wire(Packet {
                header: Header {
                    protocol: PROTOCOL_VERSION,
                    cluster: CLUSTER,
                    from: NodeId(1),
                    renewal: tenure::Renewal::Lease,
                },
                message: Message::Prepare {
                    instance: 0,
                    ballot: Ballot {
                        round,
                        node: NodeId(1),
                    },
                },
            })
        };
        assert_eq!(p(1).cmp(&p(1)), std::cmp::Ordering::Equal);
        assert_ne!(p(1).cmp(&p(2)), std::cmp::Ordering::Equal);
        assert_eq!(format!("{:?}", p(3)), "Prepare(i0 b3.n1)");
    }
}

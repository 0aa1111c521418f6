//! One simulated world: a cluster driven on virtual real time from a seed.
//!
//! The world is the driver of every node (each node's outputs go through its
//! `tenure::Executor` into the simulator's effects, `driver`, which may plant a fault in
//! executing them), the network between them (per-link delays, loss, duplication,
//! reordering, partitions), the nodes' clocks and disks, and the fault schedule. Its
//! [`Checker`] sees every event.
//!
//! A run has three phases:
//! 1. **Faults** for [`SimOptions::duration`]: crashes (also between two outputs and
//!    right after a send), restarts, partitions and heals, pauses, loss changes,
//!    releases, hand-overs and campaigns, drawn by the seed; one run in four also
//!    delays many `Renewed` answers by one to three round timeouts (answers that arrive
//!    after the master retried their round).
//! 2. **Calm**: every partition heals, loss stops, pauses end, crashed nodes restart (a
//!    minority may stay down). A master must appear within [`SimOptions`]-derived bound;
//!    then it must stay master while healthy.
//! 3. **Failover**: the master is crashed; another node must become master within the
//!    bound. The time it takes is the failover time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use tenure::fault::Fault;
use tenure::{
    Config, DropReason, Duration, Executor, Instant, Member, Node, NodeId, Record, Renewal, Role,
};

use super::checker::{fmt_real, Checker, Violation, ViolationKind};
use super::clock::Clock;
use super::options::{Plant, Probe, SimOptions, LOGGED_ONE_IN};
use super::rng::{SimRng, TraceHash};
use super::MAX_NODES;

mod calm;
mod driver;
mod faults;
mod show;

use driver::{Crash, Driver};
pub use show::fmt_msg;
use show::fmt_set;

/// A node as simulated.
pub type SimNode = Node<MAX_NODES>;

const CLUSTER_ID: u32 = 0x7E_4E00;
/// Events one run may process before it is declared a runaway.
const MAX_EVENTS: u64 = 20_000_000;
/// Timer firings of one node at one real instant before it is declared a timer loop.
const MAX_SAME_INSTANT_TIMERS: u32 = 1_000;
/// With [`Plant::RestartWithoutRecord`], the rate of crashes right after a send.
const AMNESIA_CRASH_PPM: u32 = 30_000;
/// How soon a driver fires again a deadline that is already past (a timer tick).
const TIMER_TICK: u64 = 1_000;
/// One run in this many delays many `Renewed` answers by one to three round timeouts
/// during the faulty phase.
const LATE_ANSWERS_ONE_IN: u64 = 4;

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Real time simulated, microseconds.
    pub simulated: u64,
    /// Events processed (deliveries, timers, faults, commands).
    pub events: u64,
    /// Times a node became master (`BecameMaster` events).
    pub elections: u64,
    /// Releases and hand-overs accepted by a master.
    pub releases: u64,
    /// Membership changes a master accepted (proposed).
    pub member_changes: u64,
    /// Nodes whose record was wiped, started again with `Node::rejoin`.
    pub rejoins: u64,
    /// Rejoined nodes the rule let vote again.
    pub rejoins_done: u64,
    /// Crashes, all causes.
    pub crashes: u64,
    /// Crashes between two outputs of one input.
    pub mid_drain_crashes: u64,
    /// Crashes right after a send.
    pub after_send_crashes: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Pauses started.
    pub pauses: u64,
    /// Datagrams handed to the network.
    pub datagrams: u64,
    /// Instances with a known chosen value.
    pub instances: u64,
    /// From the calm phase start to the first master, microseconds.
    pub calm_to_master: Option<u64>,
    /// Master crash to another node's `is_master`, with faults stopped, microseconds.
    pub failover: Option<u64>,
    /// The same, for master crashes during the faulty phase.
    pub chaos_failovers: Vec<u64>,
    /// Datagrams (frames, one per destination) sent in the steady window of the calm
    /// phase.
    pub steady_datagrams: u64,
    /// Renewals the master completed in the steady window: rounds a majority answered
    /// ([`Renewal::Lease`]), or renewals chosen and applied ([`Renewal::Logged`]).
    pub steady_renewals: u64,
    /// Records persisted by all nodes in the steady window.
    pub steady_writes: u64,
    /// The lease, microseconds (to express times as multiples of it).
    pub lease: u64,
    /// The renewal mode of this run.
    pub renewal: Renewal,
    /// What the calm phase did to the steady master (`failover` measures from it).
    pub probe: Probe,
    /// Real time spent in the lossy stretch, microseconds.
    pub lossy_micros: u64,
    /// Times the master lost its role during the lossy stretch.
    pub lossy_losses: u64,
    /// `lease + try_window + round_timeout`, microseconds.
    pub deaf_bound: u64,
}

/// The outcome of one seed.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Hash of everything that happened, in order: equal for equal seeds.
    pub trace_hash: u64,
    /// What broke, first first.
    pub violations: Vec<Violation>,
    /// What was measured.
    pub stats: RunStats,
    /// The readable trace, when asked for.
    pub trace: Option<Vec<String>>,
}

/// Runs `seed` under `opts`; `trace` asks for a readable event trace.
pub fn run_seed(opts: &SimOptions, seed: u64, trace: bool) -> RunReport {
    World::new(opts.clone(), seed, trace).run()
}

/// Bytes on the wire.
#[derive(Debug)]
struct Frame {
    from: usize,
    bytes: Vec<u8>,
    /// Truncated or bit-flipped on the way: the node must refuse it.
    damaged: bool,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        frame: Frame,
    },
    Boot {
        node: usize,
    },
    Restart {
        node: usize,
        incarnation: u32,
    },
    PauseEnd {
        node: usize,
        generation: u64,
    },
    Heal {
        generation: u64,
    },
    Chaos,
    /// Planted fault `ChangeWithoutRenewal` only: the master tries the next membership
    /// change soon after one.
    ChangeMembers,
    CalmStart,
    LivenessDeadline,
    SteadyMark,
    ProbeCrash,
    FailoverDeadline,
    LossyEnd,
    LeaseBoundary {
        node: usize,
    },
    End,
}

struct Scheduled {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

enum Input<'a> {
    Packet(&'a Frame),
    Timeout,
    Release,
    HandOver(NodeId),
    Campaign,
    AddMember(Member),
    RemoveMember(NodeId),
    /// Planted fault `TwoMemberStep` only: two members in one step.
    SwapMember(NodeId, Member),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Chaos,
    Calm,
    Steady {
        master: usize,
    },
    /// The lossy stretch: loss on every link, role losses counted.
    Lossy,
    Failover {
        old: usize,
        since: u64,
    },
    After,
}

struct Link {
    base: u64,
    jitter: u64,
}

struct Slot {
    id: NodeId,
    config: Config<MAX_NODES>,
    /// Boxed: the driver takes it out of its slot for every drain.
    node: Option<Box<SimNode>>,
    /// Executes the node's outputs; a new one for every start.
    exec: Executor,
    disk: Option<Record>,
    clock: Clock,
    /// Starts so far (first boot included).
    starts: u32,
    /// Crash count, so a stale restart event is ignored.
    incarnation: u32,
    paused: bool,
    pause_generation: u64,
    inbox: Vec<Frame>,
    /// The version last observed in memory (this incarnation).
    seen_version: Option<u64>,
    /// The faulty driver's belief that this node is master, until this local instant.
    belief_until: Option<Instant>,
    /// Real time of the lease-boundary check last scheduled.
    boundary: Option<u64>,
    /// Counter violations already reported.
    counters_reported: bool,
    /// Timer firings at the same real instant in a row.
    timer_streak: (u64, u32),
    /// A deadline the node asked for again after handling it without doing anything,
    /// and the real time before which it is not fired again (a driver's timer tick).
    spin_floor: Option<(Instant, u64)>,
    /// A timer spin was already reported for this node.
    spin_reported: bool,
    elections: u64,
    /// The node's persist and send counts (`Stats::persists`, `Stats::messages_out`) when
    /// its outputs were last drained: the difference is what the next drain executes.
    drained: (u64, u64),
    /// The driver saw other sends than the node counted, and it was reported.
    sends_reported: bool,
    /// `Stats::renewals_completed` last observed (this incarnation).
    seen_completed: u64,
    /// A spare slot: not a member until the master adds it; its first start joins.
    spare: bool,
    /// The record was wiped: the next start rejoins.
    wiped: bool,
}

/// The counters at the start of the steady window.
struct SteadyMark {
    datagrams: u64,
    writes: u64,
    /// The master's `Stats::renewals_completed`.
    completed: u64,
    /// [`Renewal::Logged`]: renewals the master applied since.
    applied: u64,
}

/// Per-run parameters drawn from the seed.
struct Params {
    loss_ppm: u32,
    max_loss_ppm: u32,
    dup_ppm: u32,
    /// Messages given an extra delay of up to `tail_max` (reordering).
    tail_ppm: u32,
    tail_max: u64,
    /// `Renewed` answers (each copy) delayed by `late_min..=late_max` on top of the
    /// link delay: late answers to rounds the master has retried since (R3).
    late_ppm: u32,
    late_min: u64,
    late_max: u64,
    /// Damaged copies of packets (truncated: they never decode; with authentication,
    /// also bit-flipped: the tag must reject them).
    garbage_ppm: u32,
    /// Frames are sealed with a cluster key (`Node::seal` / `Node::handle_frame`).
    auth: bool,
    mean_gap: u64,
    crash_mid_ppm: u32,
    crash_after_send_ppm: u32,
}

struct World {
    opts: SimOptions,
    seed: u64,
    rng: SimRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    slots: Vec<Slot>,
    links: Vec<Link>,
    /// `cut[from * n + to]`: messages from `from` to `to` are lost.
    cut: Vec<bool>,
    partition_generation: u64,
    params: Params,
    lease: u64,
    chaos_end: u64,
    hard_end: u64,
    phase: Phase,
    checker: Checker,
    stats: RunStats,
    hash: TraceHash,
    trace: Option<Vec<String>>,
    /// The master crashed during the faulty phase, and when.
    chaos_failover: Option<(usize, u64)>,
    /// The set of masters last reported as a violation (to report each overlap once).
    reported_masters: u32,
    steady_mark: Option<SteadyMark>,
    /// Outputs executed so far (all nodes).
    outputs_executed: u64,
    /// The set of masters, and since when (real) it has been that set.
    masters_since: (u32, u64),
    finished: bool,
    /// The renewal mode of every node in this run.
    renewal: Renewal,
    /// Records written to the disks so far (all nodes).
    records_written: u64,
    /// The fencing token of each node's current period of mastership (as of the last
    /// event), `None` while not master.
    term_token: Vec<Option<u64>>,
    /// The highest token of any period of mastership begun so far: token, node, real
    /// time it began.
    max_token: Option<(u64, usize, u64)>,
    /// A `LivenessDeadline` before this real time is stale.
    liveness_due: u64,
    /// When the faults (or the lossy stretch) last stopped.
    settle_from: u64,
    /// The lossy stretch has run.
    lossy_done: bool,
    /// Calm phase: releases given to let a rejoined node in, and when the last was.
    let_in: (u32, u64),
    /// Random choices of the late answers ([`Params::late_ppm`]), apart from `rng`.
    aux: SimRng,
    /// The master being watched in the lossy stretch.
    lossy_master: Option<usize>,
    /// Membership changes in this run, and their random choices (a stream of their own,
    /// so that runs without them replay as before).
    members_on: bool,
    /// Wiped records and rejoins in this run, and their random choices (a stream of
    /// their own, so the rest of a seed's schedule is the same until the first wipe).
    rejoins_on: bool,
    rrng: SimRng,
    mrng: SimRng,
    /// Members at the start (the spare slots come after them).
    base_n: usize,
}

impl World {
    fn new(opts: SimOptions, seed: u64, trace: bool) -> Self {
        let n = opts.nodes;
        let mut rng = SimRng::new(seed.wrapping_mul(0x9E37_79B9).wrapping_add(n as u64));
        let lease = opts.lease.as_micros();

        // Roles and priorities.
        let mut members: Vec<Member> = (1..=n as u16).map(Member::candidate).collect();
        if opts.roles {
            if n >= 5 {
                match rng.below(10) {
                    0..=1 => members[n - 1] = Member::voter(n as u16),
                    2 => members[n - 1] = Member::learner(n as u16),
                    _ => {}
                }
            }
            if rng.chance(1, 4) {
                for m in members.iter_mut().filter(|m| m.role == Role::Candidate) {
                    m.priority = rng.below(3) as u8;
                }
            }
        }
        let renewal = opts
            .renewal
            .unwrap_or(if seed % LOGGED_ONE_IN == LOGGED_ONE_IN - 1 {
                Renewal::Logged
            } else {
                Renewal::Lease
            });
        let auth = rng.chance(1, 4);
        let key: [u8; tenure::auth::KEY_LEN] = core::array::from_fn(|_| rng.next_u64() as u8);
        let guard = match rng.below(4) {
            0 => Duration::ZERO,
            1 => Duration::from_millis(1),
            _ => Duration::from_millis(10),
        };
        // Clock rates: uniform within the error bound, or at its extremes.
        let err = i64::from(opts.clock_error());
        let extremes = rng.chance(1, 2);
        let slots: Vec<Slot> = members
            .iter()
            .map(|m| {
                let mut config = Config::new(CLUSTER_ID, m.id, &members).expect("members fit");
                config.lease = opts.lease;
                config.drift_ppm = opts.drift_ppm;
                config.round_timeout = opts.round_timeout;
                config.guard = guard;
                config.renewal = renewal;
                if auth {
                    config.auth = tenure::Auth::key(key);
                }
                let rate = if extremes {
                    if rng.chance(1, 2) {
                        err
                    } else {
                        -err
                    }
                } else {
                    rng.range(0, 2 * err as u64) as i64 - err
                };
                Slot {
                    id: m.id,
                    config,
                    node: None,
                    exec: Executor::new(),
                    disk: None,
                    clock: Clock::new(rng.below(1 << 40), rate),
                    starts: 0,
                    incarnation: 0,
                    paused: false,
                    pause_generation: 0,
                    inbox: Vec::new(),
                    seen_version: None,
                    belief_until: None,
                    boundary: None,
                    counters_reported: false,
                    timer_streak: (u64::MAX, 0),
                    spin_floor: None,
                    spin_reported: false,
                    elections: 0,
                    drained: (0, 0),
                    sends_reported: false,
                    seen_completed: 0,
                    spare: false,
                    wiped: false,
                }
            })
            .collect();

        let max_delay = opts.max_delay.as_micros().max(1);
        let links: Vec<Link> = (0..n * n)
            .map(|_| Link {
                base: rng.range(max_delay / 20 + 1, max_delay),
                jitter: rng.range(0, max_delay),
            })
            .collect();
        let max_loss_ppm = opts.loss_pct * 10_000;
        let round = opts.round_timeout.as_micros();
        let params = Params {
            loss_ppm: rng.range(0, u64::from(max_loss_ppm)) as u32,
            max_loss_ppm,
            dup_ppm: rng.range(0, u64::from(opts.dup_pct) * 10_000) as u32,
            // Half the runs reorder a little; one in eight delays a fifth of the
            // messages by up to three round timeouts (late answers to retried rounds).
            tail_ppm: match rng.below(8) {
                0 => rng.range(50_000, 200_000) as u32,
                1..=4 => rng.range(0, 20_000) as u32,
                _ => 0,
            },
            tail_max: rng.range(round / 2, 3 * round),
            late_ppm: 0,
            late_min: round,
            late_max: 3 * round,
            garbage_ppm: if rng.chance(1, 4) { 2_000 } else { 0 },
            mean_gap: rng.range(lease / 5, 2 * lease),
            crash_mid_ppm: if opts.crashes {
                [0, 0, 500, 3_000][rng.index(4)]
            } else {
                0
            },
            auth,
            crash_after_send_ppm: if opts.crashes
                && rng.chance(u64::from(opts.crash_after_send_pct), 100)
            {
                rng.range(1_000, 20_000) as u32
            } else {
                0
            },
        };
        let mut params = params;
        // Drawn from a stream of its own, so that the runs without late answers are the
        // runs they were before late answers existed (their seeds replay as before).
        let mut aux = SimRng::new(seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x1A7E);
        if aux.chance(1, LATE_ANSWERS_ONE_IN) {
            params.late_ppm = aux.range(300_000, 1_000_000) as u32;
        }
        if opts.plant == Plant::RestartWithoutRecord {
            // Amnesia matters when a node forgets a vote it just gave: crash voters
            // right after their replies, in every run.
            params.crash_after_send_ppm = params.crash_after_send_ppm.max(AMNESIA_CRASH_PPM);
        }

        // Membership changes in half the runs (drawn apart from `rng`): spare slots, each
        // a node the master may add once; its links are drawn apart too.
        let mut mrng = SimRng::new(seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x3E3B);
        let members_on =
            opts.fault.is_some_and(is_members_fault) || opts.members && mrng.chance(1, 2);
        let mut rrng = SimRng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x4E10);
        let rejoins_on =
            opts.fault.is_some_and(is_rejoin_fault) || opts.rejoins && rrng.chance(1, 2);
        let spares = if members_on {
            (MAX_NODES - n).min(2)
        } else {
            0
        };
        let mut slots = slots;
        let mut links = links;
        let mut cut_n = n;
        if spares > 0 {
            let total = n + spares;
            let mut grid = Vec::with_capacity(total * total);
            for from in 0..total {
                for to in 0..total {
                    grid.push(if from < n && to < n {
                        Link {
                            base: links[from * n + to].base,
                            jitter: links[from * n + to].jitter,
                        }
                    } else {
                        Link {
                            base: mrng.range(max_delay / 20 + 1, max_delay),
                            jitter: mrng.range(0, max_delay),
                        }
                    });
                }
            }
            links = grid;
            cut_n = total;
            for k in 0..spares {
                let id = NodeId((n + k + 1) as u16);
                let mut list = members.clone();
                list.push(Member::candidate(id.0));
                let mut config = slots[0].config.clone();
                config.node_id = id;
                config.members.clear();
                for m in list {
                    config.members.push(m).expect("spares fit");
                }
                let rate = mrng.range(0, 2 * err as u64) as i64 - err;
                slots.push(Slot {
                    id,
                    config,
                    node: None,
                    exec: Executor::new(),
                    disk: None,
                    clock: Clock::new(mrng.below(1 << 40), rate),
                    starts: 0,
                    incarnation: 0,
                    paused: false,
                    pause_generation: 0,
                    inbox: Vec::new(),
                    seen_version: None,
                    belief_until: None,
                    boundary: None,
                    counters_reported: false,
                    timer_streak: (u64::MAX, 0),
                    spin_floor: None,
                    spin_reported: false,
                    elections: 0,
                    drained: (0, 0),
                    sends_reported: false,
                    seen_completed: 0,
                    spare: true,
                    wiped: false,
                });
            }
        }
        let boot_window = lease / 2;
        let chaos_end = boot_window + opts.duration.as_micros();
        let mut world = World {
            seed,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slots,
            links,
            cut: vec![false; cut_n * cut_n],
            partition_generation: 0,
            params,
            lease,
            chaos_end,
            hard_end: u64::MAX,
            phase: Phase::Chaos,
            checker: Checker::new(cut_n),
            stats: RunStats {
                nodes: n,
                lease,
                renewal,
                probe: opts.probe,
                ..RunStats::default()
            },
            hash: TraceHash::default(),
            trace: trace.then(Vec::new),
            chaos_failover: None,
            reported_masters: 0,
            steady_mark: None,
            outputs_executed: 0,
            masters_since: (0, 0),
            finished: false,
            renewal,
            records_written: 0,
            term_token: vec![None; cut_n],
            max_token: None,
            liveness_due: 0,
            settle_from: chaos_end,
            lossy_done: false,
            let_in: (0, 0),
            lossy_master: None,
            members_on,
            rejoins_on,
            rrng,
            mrng,
            base_n: n,
            aux,
            opts,
        };
        // Calm phase: a master, a steady window, a failover, and the aftermath.
        world.hard_end = chaos_end
            + world.liveness_bound()
            + world.failover_bound()
            + 6 * lease
            + 100 * round
            + if world.opts.lossy.as_micros() > 0 {
                world.opts.lossy.as_micros() + world.liveness_bound() + 2 * lease
            } else {
                0
            };
        if world.trace.is_some() {
            world.describe();
        }
        for i in 0..n {
            // (Spare slots start only when added.)
            let at = world.rng.range(0, boot_window);
            world.schedule(at, Ev::Boot { node: i });
        }
        let first_op = boot_window + world.rng.range(0, world.params.mean_gap);
        world.schedule(first_op, Ev::Chaos);
        world.schedule(chaos_end, Ev::CalmStart);
        world
    }

    fn n(&self) -> usize {
        self.slots.len()
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = self.trace.as_mut() {
            t.push(format!("{:>12}  {}", fmt_real(self.now), line()));
        }
    }

    fn violation(&mut self, kind: ViolationKind, detail: String) {
        self.note(|| format!("!!! VIOLATION {kind:?}: {detail}"));
        self.checker.report(kind, self.now, detail);
    }

    fn describe(&mut self) {
        let p = &self.params;
        let line = format!(
            "seed {} | {} nodes, lease {}, drift bound {} ppm, clock error {} ppm, guard {}, \
             loss {} ppm (max {}), dup {} ppm, tail {} ppm up to {}us, late Renewed {} ppm \
             by {}..={}us, crash-mid {} ppm, \
             crash-after-send {} ppm, authenticated frames {}, plant {}, renewal {}, \
             core fault {}",
            self.seed,
            self.n(),
            self.opts.lease,
            self.opts.drift_ppm,
            self.opts.clock_error(),
            self.slots[0].config.guard,
            p.loss_ppm,
            p.max_loss_ppm,
            p.dup_ppm,
            p.tail_ppm,
            p.tail_max,
            p.late_ppm,
            p.late_min,
            p.late_max,
            p.crash_mid_ppm,
            p.crash_after_send_ppm,
            p.auth,
            self.opts.plant,
            self.renewal,
            self.opts.fault.map_or("none", |f| f.label())
        );
        self.note(|| line);
        for i in 0..self.n() {
            let s = &self.slots[i];
            let Some(&m) = s.config.member(s.id) else {
                continue;
            };
            let line = format!(
                "node {}: {:?} priority {}, clock rate {:+} ppm, offset {}us",
                s.id, m.role, m.priority, s.clock.rate_ppm, s.clock.offset
            );
            self.note(|| line);
        }
    }

    // ----- the event loop -------------------------------------------------------------

    fn run(mut self) -> RunReport {
        let mut processed = 0u64;
        while !self.finished {
            if processed == MAX_EVENTS {
                self.violation(
                    ViolationKind::Runaway,
                    format!("{MAX_EVENTS} events without reaching the end of the run"),
                );
                break;
            }
            let queued = self.queue.peek().map(|s| s.at);
            let timer = self.next_timer();
            let take_timer = match (queued, timer) {
                (Some(q), Some((t, _))) => t < q,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (None, None) => break,
            };
            let at = if take_timer {
                timer.map(|t| t.0)
            } else {
                queued
            };
            let at = at.unwrap_or(self.now);
            if at > self.hard_end {
                break;
            }
            self.now = self.now.max(at);
            processed += 1;
            if take_timer {
                let i = timer.map(|t| t.1).unwrap_or(0);
                self.fire_timer(i);
            } else if let Some(s) = self.queue.pop() {
                self.handle(s.ev);
            }
            self.after_event();
        }
        self.finish(processed)
    }

    fn next_timer(&self) -> Option<(u64, usize)> {
        let mut best: Option<(u64, usize)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.paused {
                continue;
            }
            let Some(t) = s.node.as_ref().and_then(|n| n.poll_timeout()) else {
                continue;
            };
            let mut at = s.clock.real_at(t).max(self.now);
            if let Some((deadline, floor)) = s.spin_floor {
                if deadline == t {
                    at = at.max(floor);
                }
            }
            if best.is_none_or(|b| at < b.0) {
                best = Some((at, i));
            }
        }
        best
    }

    fn fire_timer(&mut self, i: usize) {
        let streak = &mut self.slots[i].timer_streak;
        if streak.0 == self.now {
            streak.1 += 1;
        } else {
            *streak = (self.now, 1);
        }
        if streak.1 > MAX_SAME_INSTANT_TIMERS {
            self.violation(
                ViolationKind::Runaway,
                format!(
                    "node {}: timer due again {MAX_SAME_INSTANT_TIMERS} times at one instant",
                    i + 1
                ),
            );
            self.finished = true;
            return;
        }
        let before = self.slots[i].node.as_ref().and_then(|n| n.poll_timeout());
        let outputs = self.outputs_executed;
        let _ = self.input(i, Input::Timeout);
        // A node that handled its timer, did nothing, and asks for the same past
        // deadline again would make a real driver spin on a hot loop.
        let local = self.slots[i].clock.local(self.now);
        let after = self.slots[i].node.as_ref().and_then(|n| n.poll_timeout());
        if let Some(t) = after.filter(|&t| Some(t) == before && t <= local) {
            if outputs == self.outputs_executed {
                self.slots[i].spin_floor = Some((t, self.now + TIMER_TICK));
                if !self.slots[i].spin_reported {
                    self.slots[i].spin_reported = true;
                    let id = self.slots[i].id;
                    self.violation(
                        ViolationKind::TimerSpin,
                        format!(
                            "node {id}: handle_timeout at local {} did nothing and \
                             poll_timeout still returns the past deadline {} (a driver \
                             would spin; the simulator now fires it once per {})",
                            local.as_micros(),
                            t.as_micros(),
                            Duration::from_micros(TIMER_TICK)
                        ),
                    );
                }
            }
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, frame } => self.deliver(to, frame),
            Ev::Boot { node } => self.start(node),
            Ev::Restart { node, incarnation } => {
                if self.slots[node].node.is_none() && self.slots[node].incarnation == incarnation {
                    self.start(node);
                }
            }
            Ev::PauseEnd { node, generation } => {
                if self.slots[node].pause_generation == generation {
                    self.resume(node);
                }
            }
            Ev::Heal { generation } => {
                if generation == self.partition_generation {
                    self.heal();
                }
            }
            Ev::Chaos => self.chaos(),
            Ev::ChangeMembers => {
                if self.phase == Phase::Chaos && self.now < self.chaos_end {
                    self.change_members();
                }
            }
            Ev::CalmStart => self.calm_start(),
            // (Moved on by each release that lets a rejoined node in.)
            Ev::LivenessDeadline if self.now < self.liveness_due => {}
            Ev::LivenessDeadline => {
                if self.phase == Phase::Calm && !self.timing_holds() {
                    self.note(|| "no master, but round trips exceed the round timeout".into());
                    self.finished = true;
                } else if self.phase == Phase::Calm {
                    let bound = self.liveness_bound();
                    self.violation(
                        ViolationKind::Liveness,
                        format!(
                            "no master {} after faults stopped with a majority up and connected",
                            Duration::from_micros(bound)
                        ),
                    );
                    self.finished = true;
                }
            }
            Ev::SteadyMark => self.steady_mark(),
            Ev::LossyEnd => self.lossy_end(),
            Ev::ProbeCrash => self.probe_crash(),
            Ev::FailoverDeadline => {
                if matches!(self.phase, Phase::Failover { .. }) && !self.timing_holds() {
                    self.finished = true;
                } else if let Phase::Failover { old, .. } = self.phase {
                    let bound = self.failover_bound();
                    self.violation(
                        ViolationKind::Liveness,
                        format!(
                            "no new master {} after master {} crashed (faults stopped)",
                            Duration::from_micros(bound),
                            old + 1
                        ),
                    );
                    self.finished = true;
                }
            }
            Ev::LeaseBoundary { node } => {
                // The checks after this event run at the last instant of the term.
                if self.slots[node].boundary == Some(self.now) && self.is_master_now(node) {
                    let id = self.slots[node].id;
                    self.note(|| format!("n{id} last instant of its term (check)"));
                }
            }
            Ev::End => self.finished = true,
        }
    }

    // ----- nodes ------------------------------------------------------------------------

    fn start(&mut self, i: usize) {
        let seed = self.seed;
        let s = &mut self.slots[i];
        s.starts += 1;
        let mut config = s.config.clone();
        config.seed = seed
            .wrapping_mul(0x100_0000_01B3)
            .wrapping_add(u64::from(s.id.0) << 32)
            .wrapping_add(u64::from(s.starts));
        let amnesia = self.opts.plant == Plant::RestartWithoutRecord;
        // A rebooted machine's monotonic clock starts from a new origin.
        if s.starts > 1 {
            s.clock.offset = self.rng.below(1 << 40);
        }
        let local = s.clock.local(self.now);
        let (wiped, me) = (s.wiped && s.disk.is_none(), s.id);
        if wiped {
            // Rejoin with the list in force, if it holds this node (a node removed
            // meanwhile keeps its own, and stands by).
            if let Some(list) = self.current_list().filter(|l| l.iter().any(|m| m.id == me)) {
                config.members.clear();
                for m in list {
                    config.members.push(m).expect("lists fit");
                }
            }
        }
        let s = &mut self.slots[i];
        let (node, how) = match s.disk {
            None if s.wiped => (SimNode::rejoin(config, local), "rejoin"),
            Some(record) if !amnesia => (SimNode::restore(config, record, local), "restore"),
            None if s.spare => (SimNode::join(config, local), "join"),
            _ => (SimNode::first_boot(config, local), "first boot"),
        };
        let mut node = node.expect("valid configuration and record");
        if let Some(fault) = self.opts.fault {
            // The silence is what a restore sets up: the fault clears it right after.
            let at_rejoin = matches!(
                fault,
                Fault::RejoinVotesAtOnce | Fault::RejoinForgetsSilence
            );
            if (fault != Fault::NoRestartSilence || how == "restore")
                && (!at_rejoin || how == "rejoin")
            {
                node.inject_fault(fault, true);
            }
        }
        s.seen_version = node.version();
        s.seen_completed = 0;
        s.node = Some(Box::new(node));
        s.exec = Executor::new();
        s.drained = (0, 0);
        s.paused = false;
        s.inbox.clear();
        s.belief_until = None;
        s.boundary = None;
        let id = s.id;
        let starts = s.starts;
        self.note(|| format!("n{id} starts ({how}, start {starts})"));
        self.hash.write_u8(1);
        self.hash.write_usize(i);
        self.drain(i);
        if self.slots[i].node.is_some() {
            self.observe(i);
        }
    }

    /// The member list of the live node furthest on that is not standing by.
    fn current_list(&self) -> Option<Vec<Member>> {
        self.slots
            .iter()
            .filter_map(|s| s.node.as_deref())
            .filter(|n| !n.is_standby())
            .max_by_key(|n| n.instance())
            .map(|n| n.members().to_vec())
    }

    /// Node `i` crashes and loses its record; it restarts with `Node::rejoin`.
    pub(super) fn wipe(&mut self, i: usize, restart_after: u64) {
        self.crash(i, "record lost", Some(restart_after));
        let s = &mut self.slots[i];
        if s.disk.take().is_some() || s.wiped {
            s.wiped = true;
            self.stats.rejoins += 1;
        }
        self.checker.on_wipe(i);
    }

    fn crash(&mut self, i: usize, why: &str, restart_after: Option<u64>) {
        let local = self.slots[i].clock.local(self.now);
        let was_master = self.is_master_now(i);
        let s = &mut self.slots[i];
        let Some(node) = s.node.take() else {
            return;
        };
        s.elections += u64::from(node.stats().elections_won);
        s.incarnation += 1;
        s.paused = false;
        s.inbox.clear();
        s.belief_until = None;
        s.boundary = None;
        let incarnation = s.incarnation;
        let id = s.id;
        self.stats.crashes += 1;
        self.note(|| format!("n{id} CRASH ({why}) at local {}", local.as_micros()));
        self.hash.write_u8(2);
        self.hash.write_usize(i);
        if was_master && self.phase == Phase::Chaos && self.chaos_failover.is_none() {
            self.chaos_failover = Some((i, self.now));
        }
        if let Some(after) = restart_after {
            self.schedule(
                self.now + after,
                Ev::Restart {
                    node: i,
                    incarnation,
                },
            );
        }
    }

    fn deliver(&mut self, to: usize, frame: Frame) {
        let n = self.n();
        if self.slots[to].node.is_none() || self.cut[frame.from * n + to] {
            return;
        }
        if self.slots[to].paused {
            self.slots[to].inbox.push(frame);
            return;
        }
        let _ = self.input(to, Input::Packet(&frame));
    }

    fn resume(&mut self, i: usize) {
        self.slots[i].paused = false;
        let id = self.slots[i].id;
        self.note(|| format!("n{id} resumes"));
        let inbox = std::mem::take(&mut self.slots[i].inbox);
        for frame in inbox {
            if self.slots[i].node.is_none() {
                break; // crashed while catching up: the rest is lost with it
            }
            let _ = self.input(i, Input::Packet(&frame));
        }
    }

    /// Feeds one input to node `i` on its own clock, then executes its outputs.
    fn input(&mut self, i: usize, input: Input<'_>) -> Result<(), String> {
        let local = self.slots[i].clock.local(self.now);
        let Some(node) = self.slots[i].node.as_mut() else {
            return Ok(());
        };
        let mut shown = None;
        let mut took_damaged = None;
        let result = match input {
            Input::Packet(frame) => {
                let Frame { from, bytes, .. } = frame;
                let sender = NodeId(*from as u16 + 1); // members are 1..=n, in slot order
                let before = *node.stats();
                let handled = node.handle_frame_from(local, sender, bytes);
                let after = node.stats();
                let refusals = [
                    (
                        "renew refused",
                        after.renews_refused - before.renews_refused,
                    ),
                    ("silent", after.silent_refusals - before.silent_refusals),
                    ("guarded", after.guard_refusals - before.guard_refusals),
                ];
                // Refused as bytes (as opposed to read as a packet, then dropped). A
                // version mismatch is one too: judged from the first byte alone, also
                // when the tag failed (a flipped bit there can name another version).
                let refused = matches!(
                    handled,
                    Err(DropReason::Oversized
                        | DropReason::Malformed
                        | DropReason::BadTag
                        | DropReason::OlderProtocol
                        | DropReason::NewerProtocol)
                );
                if frame.damaged && !refused {
                    took_damaged = Some(*from);
                }
                if self.trace.is_some() {
                    shown = match handled {
                        Err(reason) if refused => {
                            Some(format!("<- n{} frame refused ({reason})", from + 1))
                        }
                        _ => tenure::auth::open(bytes, &node.config().auth)
                            .ok()
                            .map(|p| {
                                let mut line = format!("<- n{} {}", from + 1, fmt_msg(&p.message));
                                for (what, _) in refusals.iter().filter(|r| r.1 > 0) {
                                    let _ = write!(line, " [{what}]");
                                }
                                line
                            }),
                    };
                }
                self.hash.write_u8(3);
                self.hash.write(bytes);
                Ok(())
            }
            Input::Timeout => {
                node.handle_timeout(local);
                self.hash.write_u8(4);
                if self.trace.is_some() {
                    shown = Some("timer".into());
                }
                Ok(())
            }
            Input::Release => {
                let r = node.release(local);
                shown = Some(format!("command release -> {r:?}"));
                self.hash.write_u8(5);
                r.map_err(|e| e.to_string())
            }
            Input::HandOver(to) => {
                let r = node.hand_over(local, to);
                shown = Some(format!("command hand_over(n{to}) -> {r:?}"));
                self.hash.write_u8(6);
                r.map_err(|e| e.to_string())
            }
            Input::Campaign => {
                let r = node.campaign(local);
                shown = Some(format!("command campaign -> {r:?}"));
                self.hash.write_u8(7);
                r.map_err(|e| e.to_string())
            }
            Input::AddMember(m) => {
                let r = node.add_member(m, local);
                shown = Some(format!("command add_member(n{}) -> {r:?}", m.id));
                self.hash.write_u8(8);
                r.map_err(|e| e.to_string())
            }
            Input::RemoveMember(id) => {
                let r = node.remove_member(id, local);
                shown = Some(format!("command remove_member(n{id}) -> {r:?}"));
                self.hash.write_u8(9);
                r.map_err(|e| e.to_string())
            }
            Input::SwapMember(out, m) => {
                let r = node.swap_member(out, m, local);
                shown = Some(format!(
                    "command swap_member(n{out} for n{}) -> {r:?}",
                    m.id
                ));
                self.hash.write_u8(10);
                r.map_err(|e| e.to_string())
            }
        };
        self.hash.write_u64(self.now);
        self.hash.write_usize(i);
        if let Some(from) = took_damaged {
            self.violation(
                ViolationKind::Wire,
                format!(
                    "node {} took a damaged frame from node {} for a packet",
                    i + 1,
                    from + 1
                ),
            );
        }
        if let Some(line) = shown {
            let id = self.slots[i].id;
            self.note(|| format!("n{id} @{} {line}", local.as_micros()));
        }
        self.drain(i);
        if self.slots[i].node.is_some() {
            self.observe(i);
        }
        result
    }

    /// Executes node `i`'s outputs in order through its executor and the simulator's
    /// driver (which may crash it at chosen points).
    fn drain(&mut self, i: usize) {
        let Some(mut node) = self.slots[i].node.take() else {
            return;
        };
        let mut exec = std::mem::take(&mut self.slots[i].exec);
        let stats = *node.stats();
        let (persisted, sent) = self.slots[i].drained;
        let (persists, sends) = (
            u64::from(stats.persists) - persisted,
            u64::from(stats.messages_out) - sent,
        );
        // The planted reordering crashes often after a send of an input that persists.
        let reordered = self.opts.plant == Plant::SendBeforePersist && persists > 0 && sends > 0;
        let (seen, crash) = Driver::new(self, i, reordered, &node).run(&mut exec, &mut node);
        let s = &mut self.slots[i];
        s.drained = (u64::from(stats.persists), u64::from(stats.messages_out));
        s.node = Some(node);
        s.exec = exec;
        if let Some(Crash { why, down }) = crash {
            self.crash(i, why, Some(down));
            return;
        }
        // The driver groups the executor's calls, one per destination, back into sends
        // (see `driver`); a lone node's sends have no destination: it sees none.
        if self.n() > 1
            && stats.queue_overflows == 0
            && seen != sends
            && !std::mem::replace(&mut self.slots[i].sends_reported, true)
        {
            let id = self.slots[i].id;
            self.violation(
                ViolationKind::CallProtocol,
                format!(
                    "node {id} queued {sends} sends, the simulator's driver saw {seen} \
                     (it groups a fan-out by packet and member order)"
                ),
            );
        }
    }

    /// Hands one frame to the network; `answer` marks a `Renewed` (which may be late,
    /// [`Params::late_ppm`]).
    fn transmit(&mut self, from: usize, to: usize, bytes: &[u8], answer: bool) {
        let n = self.n();
        self.stats.datagrams += 1;
        if self.cut[from * n + to] || self.rng.chance_ppm(self.params.loss_ppm) {
            return;
        }
        let copies = if self.rng.chance_ppm(self.params.dup_ppm) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.link_delay(from, to);
            if answer && self.aux.chance_ppm(self.params.late_ppm) {
                delay += self.aux.range(self.params.late_min, self.params.late_max);
            }
            self.schedule(
                self.now + delay,
                Ev::Deliver {
                    to,
                    frame: Frame {
                        from,
                        bytes: bytes.to_vec(),
                        damaged: false,
                    },
                },
            );
        }
        if self.rng.chance_ppm(self.params.garbage_ppm) && bytes.len() > 1 {
            let damaged = if self.params.auth && self.rng.chance(1, 2) {
                // A flipped bit: only the tag stands between it and the node.
                let mut copy = bytes.to_vec();
                let bit = self.rng.below(copy.len() as u64 * 8);
                copy[(bit / 8) as usize] ^= 1 << (bit % 8);
                copy
            } else {
                // A truncated copy: a strict prefix of a packet never decodes.
                let cut_at = self.rng.range(0, bytes.len() as u64 - 1) as usize;
                bytes[..cut_at].to_vec()
            };
            let delay = self.link_delay(from, to);
            self.schedule(
                self.now + delay,
                Ev::Deliver {
                    to,
                    frame: Frame {
                        from,
                        bytes: damaged,
                        damaged: true,
                    },
                },
            );
        }
    }

    fn link_delay(&mut self, from: usize, to: usize) -> u64 {
        let link = &self.links[from * self.n() + to];
        let (base, jitter) = (link.base, link.jitter);
        let mut d = base + self.rng.range(0, jitter);
        if self.rng.chance_ppm(self.params.tail_ppm) {
            d += self.rng.range(0, self.params.tail_max);
        }
        d.max(1)
    }

    /// After every input: invariants about node `i` alone.
    fn observe(&mut self, i: usize) {
        let local = self.slots[i].clock.local(self.now);
        let Some(node) = self.slots[i].node.as_ref() else {
            return;
        };
        let state = *node.election_state();
        let version = node.version();
        if self.slots[i].wiped && !node.is_rejoining() && self.slots[i].disk.is_some() {
            self.slots[i].wiped = false;
            self.stats.rejoins_done += 1; // the rule let it vote again
        }
        let Some(node) = self.slots[i].node.as_ref() else {
            return;
        };
        if !node.is_standby() {
            // (A standby node knows its list is not the register's yet.)
            self.checker
                .on_members(self.now, i, state.members_version, node.members());
        }
        let stats = *node.stats();
        let view = node.master(local);
        let is_master = node.is_master(local);
        node.hash(&mut self.hash);
        let id = self.slots[i].id;

        if (stats.queue_overflows > 0 || stats.clock_regressions > 0)
            && !self.slots[i].counters_reported
        {
            self.slots[i].counters_reported = true;
            self.violation(
                ViolationKind::CallProtocol,
                format!(
                    "node {id}: {} queue overflows, {} clock regressions",
                    stats.queue_overflows, stats.clock_regressions
                ),
            );
        }
        let seen = self.slots[i].seen_version;
        if version < seen {
            self.violation(
                ViolationKind::VersionRegressed,
                format!("node {id}: version {version:?} after {seen:?}"),
            );
        }
        if version != seen {
            self.slots[i].seen_version = version;
            self.checker.on_version(self.now, i, &state);
            if let Some(mark) = self.steady_mark.as_mut() {
                if self.phase == (Phase::Steady { master: i }) && state.master == Some(id) {
                    mark.applied += 1;
                }
            }
            if self.opts.plant == Plant::LeaseFromSuccess
                && self.renewal == Renewal::Logged
                && state.master == Some(id)
                && self.slots[i].belief_until.is_some()
            {
                // The faulty driver: "my renewal succeeded, I am master for a lease".
                self.slots[i].belief_until = Some(local + self.opts.lease);
            }
        }

        if u64::from(stats.renewals_completed) != self.slots[i].seen_completed {
            self.slots[i].seen_completed = u64::from(stats.renewals_completed);
            if self.opts.plant == Plant::LeaseFromSuccess
                && self.renewal == Renewal::Lease
                && self.slots[i].belief_until.is_some()
            {
                // The faulty driver: "my renewal round completed, I am master for a
                // lease" (from the completion, not the round's begin).
                self.slots[i].belief_until = Some(local + self.opts.lease);
            }
        }

        // Schedule a check at the last instant of this node's term.
        let end = match self.opts.plant {
            Plant::LeaseFromSuccess => self.slots[i].belief_until.filter(|&b| local < b),
            _ => view.filter(|_| is_master).and_then(|v| v.term_end),
        };
        if let Some(end) = end {
            let last = self.slots[i].clock.real_at(end).saturating_sub(1);
            if last >= self.now && self.slots[i].boundary != Some(last) {
                self.slots[i].boundary = Some(last);
                self.schedule(last, Ev::LeaseBoundary { node: i });
            }
        }
    }

    /// Whether node `i` is master at the current real instant, as its driver sees it.
    fn is_master_now(&self, i: usize) -> bool {
        let s = &self.slots[i];
        let Some(node) = s.node.as_ref() else {
            return false;
        };
        let local = s.clock.local(self.now);
        match self.opts.plant {
            Plant::LeaseFromSuccess => s.belief_until.is_some_and(|b| local < b),
            _ => node.is_master(local),
        }
    }

    fn masters(&self) -> u32 {
        (0..self.n())
            .filter(|&i| self.is_master_now(i))
            .fold(0, |acc, i| acc | 1 << i)
    }

    /// After every event: invariants across nodes, and the progress of the phases.
    fn after_event(&mut self) {
        let masters = self.masters();
        if masters != self.masters_since.0 {
            self.masters_since = (masters, self.now);
        }
        self.check_tokens(masters);
        if masters.count_ones() > 1 {
            if masters != self.reported_masters {
                self.reported_masters = masters;
                let detail = self.describe_masters(masters);
                self.violation(ViolationKind::TwoMasters, detail);
            }
        } else {
            self.reported_masters = 0;
        }
        if let Some((old, since)) = self.chaos_failover {
            if masters & !(1 << old) != 0 {
                self.stats.chaos_failovers.push(self.now - since);
                self.chaos_failover = None;
            }
        }
        match self.phase {
            // A master whose term began before the faults stopped may still lapse (its
            // renewal was failing); judge stability only after a settling time.
            Phase::Calm if masters.count_ones() == 1 && self.now >= self.calm_settled() => {
                let m = masters.trailing_zeros() as usize;
                let since = self.masters_since.1;
                if self.stats.calm_to_master.is_none() {
                    self.stats.calm_to_master = Some(since.saturating_sub(self.chaos_end));
                }
                if self.rejoining() != 0 && self.let_in.0 < 8 {
                    // A rejoined node votes only after two more instances (§10): the
                    // operator has the master release to let it in, once per lease.
                    if self.let_in.0 == 0 || self.now >= self.let_in.1 + self.lease {
                        self.let_in = (self.let_in.0 + 1, self.now);
                        let _ = self.input(m, Input::Release);
                        let bound = self.liveness_bound();
                        self.liveness_due = self.now + bound;
                        self.schedule(self.now + bound, Ev::LivenessDeadline);
                    }
                    return;
                }
                if self.opts.lossy.as_micros() > 0 && !self.lossy_done {
                    self.lossy_start(m);
                    return;
                }
                self.phase = Phase::Steady { master: m };
                self.note(|| format!("calm: n{} is master", m + 1));
                let settle = self.now + self.lease / 2;
                let probe = self.now + self.rng.range(self.lease, 2 * self.lease);
                self.schedule(settle, Ev::SteadyMark);
                self.schedule(probe, Ev::ProbeCrash);
            }
            Phase::Steady { master } if masters != 1 << master && self.timing_holds() => {
                let detail = format!(
                    "master n{} changed or lapsed with faults stopped and a majority \
                     connected (masters now {})",
                    master + 1,
                    fmt_set(masters)
                );
                self.violation(ViolationKind::Unstable, detail);
                self.finished = true;
            }
            Phase::Lossy => self.lossy_watch(masters),
            Phase::Failover { old, since } if masters & !(1 << old) != 0 => {
                self.stats.failover = Some(self.now - since);
                self.phase = Phase::After;
                let took = self.now - since;
                self.note(|| format!("failover took {}", Duration::from_micros(took)));
                let lease = self.lease;
                if self.opts.probe == Probe::Deaf {
                    // The deaf master hears again a little later (it is no master now).
                    let generation = self.partition_generation;
                    self.schedule(self.now + lease / 2, Ev::Heal { generation });
                }
                self.schedule(
                    self.now + lease / 2,
                    Ev::Restart {
                        node: old,
                        incarnation: self.slots[old].incarnation,
                    },
                );
                self.schedule(self.now + 2 * lease, Ev::End);
            }
            _ => {}
        }
    }

    /// The fencing-token checks on the real-time timeline, after every event: a node
    /// that becomes master (or whose token changes while it is) begins a period whose
    /// token must be strictly above every earlier period's, so one token never spans two
    /// separate periods of mastership.
    fn check_tokens(&mut self, masters: u32) {
        for i in 0..self.n() {
            if masters & (1 << i) == 0 {
                self.term_token[i] = None;
                continue;
            }
            let s = &self.slots[i];
            let local = s.clock.local(self.now);
            // A master in the faulty driver's belief only has no view to read a token from.
            let Some(token) = s
                .node
                .as_ref()
                .and_then(|n| n.master(local))
                .filter(|v| v.node == s.id)
                .map(|v| v.token)
            else {
                continue;
            };
            if self.term_token[i] == Some(token) {
                continue;
            }
            let id = s.id;
            let earlier = self.term_token[i];
            if let Some((max, j, since)) = self.max_token {
                if token <= max {
                    let what = if earlier.is_some() {
                        "changed its token while master"
                    } else {
                        "began a period of mastership"
                    };
                    self.violation(
                        ViolationKind::FencingToken,
                        format!(
                            "n{id} {what} with token {token} (before: {earlier:?}), not above \
                             token {max} of the period n{} began at real {}",
                            j + 1,
                            fmt_real(since)
                        ),
                    );
                }
            }
            self.term_token[i] = Some(token);
            if self.max_token.is_none_or(|(max, _, _)| token > max) {
                self.max_token = Some((token, i, self.now));
            }
        }
    }

    fn describe_masters(&self, masters: u32) -> String {
        let mut s = String::from("masters at once:");
        for i in (0..self.n()).filter(|&i| masters & (1 << i) != 0) {
            let slot = &self.slots[i];
            let local = slot.clock.local(self.now);
            let node = slot.node.as_ref();
            let end = match self.opts.plant {
                Plant::LeaseFromSuccess => slot.belief_until,
                _ => node.and_then(|n| n.master(local)).and_then(|v| v.term_end),
            };
            let _ = write!(
                s,
                " n{} (version {:?}, clock rate {:+} ppm, term ends local {} = real {})",
                slot.id,
                node.and_then(|n| n.version()),
                slot.clock.rate_ppm,
                end.map_or(0, |e| e.as_micros()),
                end.map_or("?".into(), |e| fmt_real(slot.clock.real_at(e)))
            );
        }
        s
    }

    fn finish(mut self, processed: u64) -> RunReport {
        self.stats.simulated = self.now;
        self.stats.deaf_bound = self.deaf_bound();
        self.stats.events = processed;
        self.stats.instances = self.checker.chosen_count() as u64;
        self.stats.elections = self
            .slots
            .iter()
            .map(|s| {
                s.elections
                    + s.node
                        .as_ref()
                        .map_or(0, |n| u64::from(n.stats().elections_won))
            })
            .sum();
        if !self.finished && self.checker.violations().is_empty() {
            self.violation(
                ViolationKind::Runaway,
                "the run ended without reaching its last phase".to_string(),
            );
        }
        RunReport {
            seed: self.seed,
            trace_hash: self.hash.finish(),
            violations: self.checker.violations().to_vec(),
            stats: self.stats,
            trace: self.trace,
        }
    }
}

/// Whether `f` is one of the rejoin rule's planted faults (runs then always rejoin).
/// The planted faults of the membership rules (§9): their runs always change members.
fn is_members_fault(f: Fault) -> bool {
    matches!(
        f,
        Fault::TwoMemberStep
            | Fault::KeepPreparedAcrossChange
            | Fault::KeepRoundsAcrossChange
            | Fault::ChangeWithoutRenewal
    )
}

fn is_rejoin_fault(f: Fault) -> bool {
    matches!(
        f,
        Fault::RejoinVotesAtOnce
            | Fault::RejoinForgetsSilence
            | Fault::RejoinOldBallot
            | Fault::RejoinOneInstance
    )
}

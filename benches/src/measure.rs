//! The measurements, generic over [`Protocol`]: every contender is measured
//! by the same code, on the same simulated network, with the same settings.

use crate::alloc;
use crate::sim::{splitmix, Nanos, Params, Protocol, Sim, Timers};

/// The calling thread's CPU time in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`): unlike the
/// wall clock it does not run while the thread waits for a core, so on a shared machine
/// other processes change it only through caches. Every time in the report is measured
/// with it.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux and
    // the BSDs provide.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A started CPU-time measurement.
struct Instant(u64);

impl Instant {
    fn now() -> Self {
        Instant(thread_cpu_ns())
    }
    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(thread_cpu_ns() - self.0)
    }
}

/// Cost of steady-state rounds (one period each).
#[derive(Clone, Copy, Debug, Default)]
pub struct Round {
    /// CPU nanoseconds per round (the thread's CPU time).
    pub ns: f64,
    /// Heap allocations per round.
    pub allocs: f64,
    /// Encoded bytes on the wire per round.
    pub bytes: f64,
    /// Messages per round.
    pub msgs: f64,
    /// Durable (synced) writes per round, all nodes together.
    pub writes: f64,
}

/// A cluster that has elected its leader and runs in steady state.
pub struct Steady<P: Protocol> {
    /// The simulation.
    pub sim: Sim<P>,
    /// The leader's index.
    pub leader: usize,
    /// Length of one round.
    pub period: Nanos,
}

/// Builds a cluster, elects a leader, and lets it settle for two guard
/// intervals. Panics if no leader is agreed within 100 guard intervals.
pub fn steady<P: Protocol>(params: &Params, seed: u64) -> Steady<P> {
    let mut sim = Sim::<P>::new(params, seed);
    let limit = 100 * params.guard();
    sim.run_until_cond(limit, |s| s.agreed_leader().is_some())
        .unwrap_or_else(|| panic!("{}: no leader within {limit} ns", P::NAME));
    let settle = sim.now + 2 * params.guard();
    sim.run_until(settle);
    let leader = sim
        .agreed_leader()
        .unwrap_or_else(|| panic!("{}: leadership not stable", P::NAME));
    Steady {
        sim,
        leader,
        period: P::round_period(params),
    }
}

impl<P: Protocol> Steady<P> {
    /// A steady cluster in which only the leader's timer fires from now on
    /// (the leader's renewal/heartbeat round and nothing else).
    pub fn leader_only(params: &Params, seed: u64) -> Self {
        let mut s = steady::<P>(params, seed);
        s.sim.timers = Timers::Only(s.leader);
        // Let one round pass in the new mode before anything is measured.
        s.run_rounds(4);
        s
    }

    /// Runs `k` periods.
    pub fn run_rounds(&mut self, k: usize) {
        for _ in 0..k {
            let t = self.sim.now + self.period;
            self.sim.run_until(t);
        }
    }

    /// Runs and measures `k` periods.
    pub fn measure(&mut self, k: usize) -> Round {
        let tr0 = self.sim.traffic;
        let w0 = self.sim.proto.durable_writes();
        let a0 = alloc::allocations();
        let t0 = Instant::now();
        self.run_rounds(k);
        let ns = t0.elapsed().as_nanos() as f64;
        let allocs = (alloc::allocations() - a0) as f64;
        let tr = self.sim.traffic;
        assert_eq!(
            self.sim.agreed_leader(),
            Some(self.leader),
            "{}: leadership changed during steady rounds",
            P::NAME
        );
        let k = k as f64;
        Round {
            ns: ns / k,
            allocs: allocs / k,
            bytes: (tr.bytes - tr0.bytes) as f64 / k,
            msgs: (tr.messages - tr0.messages) as f64 / k,
            writes: (self.sim.proto.durable_writes() - w0) as f64 / k,
        }
    }
}

/// A steady cluster of some contender, measured batch by batch so that the
/// report can interleave contenders (noise then hits all of them alike).
pub trait RoundBench {
    /// Library name.
    fn name(&self) -> &'static str;
    /// Measures `k` more rounds.
    fn batch(&mut self, k: usize) -> Round;
}

impl<P: Protocol> RoundBench for Steady<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }
    fn batch(&mut self, k: usize) -> Round {
        self.measure(k)
    }
}

/// One trial of a timed scenario.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Virtual time the scenario took.
    pub virt: Nanos,
    /// CPU nanoseconds spent simulating it.
    pub cpu: f64,
    /// Heap allocations made meanwhile.
    pub allocs: u64,
    /// Messages sent meanwhile.
    pub msgs: u64,
}

/// Summary of repeated trials.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trials {
    /// Mean virtual time.
    pub virt_mean: f64,
    /// Largest virtual time seen.
    pub virt_max: Nanos,
    /// Median CPU nanoseconds of simulating one trial.
    pub cpu_median: f64,
    /// Mean heap allocations per trial.
    pub allocs_mean: f64,
    /// Mean messages per trial.
    pub msgs_mean: f64,
}

/// Summarizes trials.
pub fn summarize(samples: &[Sample]) -> Trials {
    let n = samples.len() as f64;
    let mut cpu: Vec<f64> = samples.iter().map(|s| s.cpu).collect();
    cpu.sort_by(f64::total_cmp);
    Trials {
        virt_mean: samples.iter().map(|s| s.virt as f64).sum::<f64>() / n,
        virt_max: samples.iter().map(|s| s.virt).max().unwrap_or(0),
        cpu_median: cpu.get(cpu.len() / 2).copied().unwrap_or(0.0),
        allocs_mean: samples.iter().map(|s| s.allocs as f64).sum::<f64>() / n,
        msgs_mean: samples.iter().map(|s| s.msgs as f64).sum::<f64>() / n,
    }
}

/// Election from a fresh cluster (built at time 0, construction not timed)
/// until every node knows the same leader and that leader holds the
/// leadership.
pub fn election_trial<P: Protocol>(params: &Params, seed: u64) -> Sample {
    let limit = 100 * params.guard();
    let mut sim = Sim::<P>::new(params, seed);
    let a0 = alloc::allocations();
    let t0 = Instant::now();
    let at = sim
        .run_until_cond(limit, |s| s.agreed_leader().is_some())
        .unwrap_or_else(|| panic!("{}: no leader elected", P::NAME));
    Sample {
        virt: at,
        cpu: t0.elapsed().as_nanos() as f64,
        allocs: alloc::allocations() - a0,
        msgs: sim.traffic.messages,
    }
}

/// Failover: in a steady cluster the leader stops at a random point of a
/// round; measured is the virtual time until every live node knows the
/// same new leader and that leader holds the leadership.
pub fn failover_trial<P: Protocol>(params: &Params, seed: u64) -> Sample {
    let limit = 100 * params.guard();
    let mut st = steady::<P>(params, seed);
    let mut rng = seed ^ 0xfa11;
    let stop_at = st.sim.now + splitmix(&mut rng) % P::round_period(params);
    st.sim.run_until(stop_at);
    let old = st.sim.agreed_leader().expect("leader before failover");
    st.sim.stop(old);
    let m0 = st.sim.traffic.messages;
    let a0 = alloc::allocations();
    let t0 = Instant::now();
    let at = st
        .sim
        .run_until_cond(stop_at + limit, |s| {
            s.agreed_leader().is_some_and(|l| l != old)
        })
        .unwrap_or_else(|| panic!("{}: no failover", P::NAME));
    Sample {
        virt: at - stop_at,
        cpu: t0.elapsed().as_nanos() as f64,
        allocs: alloc::allocations() - a0,
        msgs: st.sim.traffic.messages - m0,
    }
}

/// `trials` elections (seeds `0..trials`).
pub fn election<P: Protocol>(params: &Params, trials: u64) -> Trials {
    let samples: Vec<_> = (0..trials)
        .map(|s| election_trial::<P>(params, s))
        .collect();
    summarize(&samples)
}

/// `trials` failovers (seeds `0..trials`).
pub fn failover<P: Protocol>(params: &Params, trials: u64) -> Trials {
    let samples: Vec<_> = (0..trials)
        .map(|s| failover_trial::<P>(params, s))
        .collect();
    summarize(&samples)
}

/// Bytes of state per node in steady state: `size_of` the node type plus
/// the heap the node owns (measured by dropping the nodes and seeing how
/// many live heap bytes go away, less the vector that held them).
pub fn state_bytes<P: Protocol>(params: &Params) -> (usize, f64) {
    let mut st = steady::<P>(params, 7);
    st.run_rounds(100);
    let nodes = st.sim.into_proto().into_nodes();
    let n = nodes.len();
    let holder = nodes.capacity() * std::mem::size_of::<P::Node>();
    let before = alloc::live_bytes();
    drop(nodes);
    let freed = before - alloc::live_bytes() - holder as i64;
    (std::mem::size_of::<P::Node>(), freed as f64 / n as f64)
}

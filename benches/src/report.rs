//! Gathers every measure for each contender and formats the table.

use crate::measure::{self, Round, RoundBench, Sample, Steady, Trials};
use crate::sim::{Params, Protocol};

/// Everything measured for one contender.
#[derive(Clone, Debug)]
pub struct Column {
    /// Library name.
    pub name: &'static str,
    /// Name of the setting failover is measured against.
    pub guard_name: &'static str,
    /// Its value, in virtual nanoseconds.
    pub guard_ns: u64,
    /// Length of one steady-state round (renewal / heartbeat interval).
    pub period_ns: u64,
    /// Leader-only renewal round (median time over batches).
    pub leader: Round,
    /// Whole-cluster period (median time over batches).
    pub cluster: Round,
    /// Leader-only round: time of the fastest batch (least disturbed by
    /// other processes).
    pub leader_fastest_ns: f64,
    /// Election from a fresh cluster.
    pub election: Trials,
    /// Failover after the leader stops.
    pub failover: Trials,
    /// `size_of` a node and heap bytes per node.
    pub state: (usize, f64),
}

/// How much work to do.
#[derive(Clone, Copy, Debug)]
pub struct Effort {
    /// Interleaved batches of steady rounds per contender and mode.
    pub batches: usize,
    /// Rounds per batch.
    pub rounds: usize,
    /// Election and failover trials.
    pub trials: u64,
}

impl Effort {
    /// The effort of a real run (a few seconds per contender).
    pub const FULL: Effort = Effort {
        batches: 31,
        rounds: 5000,
        trials: 50,
    };
    /// A smoke run (fractions of a second).
    pub const QUICK: Effort = Effort {
        batches: 5,
        rounds: 300,
        trials: 5,
    };
}

/// Measures `size_of` a node and its heap bytes.
type StateFn = fn(&Params) -> (usize, f64);

/// One contender, ready to be measured: its steady clusters for the round
/// measures, and its trial functions.
pub struct Contender {
    name: &'static str,
    guard_name: &'static str,
    guard_ns: u64,
    period_ns: u64,
    leader: Box<dyn RoundBench>,
    cluster: Box<dyn RoundBench>,
    election: Option<fn(&Params, u64) -> Sample>,
    failover: Option<fn(&Params, u64) -> Sample>,
    state: Option<StateFn>,
}

/// Prepares contender `P`.
pub fn contender<P: Protocol + 'static>(params: &Params) -> Contender {
    Contender {
        name: P::NAME,
        guard_name: P::GUARD,
        guard_ns: P::guard(params),
        period_ns: P::round_period(params),
        leader: Box::new(Steady::<P>::leader_only(params, 1)),
        cluster: Box::new(measure::steady::<P>(params, 1)),
        election: Some(measure::election_trial::<P>),
        failover: Some(measure::failover_trial::<P>),
        state: Some(measure::state_bytes::<P>),
    }
}

/// Prepares contender `P` for the round measures only (no election,
/// failover or state trials: the sealed variants, whose trials would repeat
/// the plain ones').
pub fn rounds_only<P: Protocol + 'static>(params: &Params) -> Contender {
    Contender {
        election: None,
        failover: None,
        state: None,
        ..contender::<P>(params)
    }
}

fn median_round(batches: &[Round]) -> Round {
    let n = batches.len() as f64;
    let mut ns: Vec<f64> = batches.iter().map(|r| r.ns).collect();
    ns.sort_by(f64::total_cmp);
    Round {
        ns: ns[ns.len() / 2],
        allocs: batches.iter().map(|r| r.allocs).sum::<f64>() / n,
        bytes: batches.iter().map(|r| r.bytes).sum::<f64>() / n,
        msgs: batches.iter().map(|r| r.msgs).sum::<f64>() / n,
        writes: batches.iter().map(|r| r.writes).sum::<f64>() / n,
    }
}

/// Measures every contender. Everything timed (by the thread's CPU clock) is
/// interleaved (batch by batch, trial by trial), so that noise from other
/// processes hits all contenders alike; medians are reported.
///
/// `harness` (the [`Null`](crate::sim::Null) protocol's leader-only round)
/// is measured in the same interleaving; its median round comes back with
/// the columns.
pub fn measure_all(
    contenders: &mut [Contender],
    params: &Params,
    effort: Effort,
    harness: &mut dyn RoundBench,
) -> (Vec<Column>, Round) {
    let n = contenders.len();
    // Warm up caches and branch predictors of every contender first.
    for c in contenders.iter_mut() {
        c.leader.batch(effort.rounds / 4 + 1);
        c.cluster.batch(effort.rounds / 4 + 1);
    }
    harness.batch(effort.rounds / 4 + 1);
    let mut leader: Vec<Vec<Round>> = vec![Vec::new(); n];
    let mut cluster: Vec<Vec<Round>> = vec![Vec::new(); n];
    let mut null: Vec<Round> = Vec::new();
    for _ in 0..effort.batches {
        for (i, c) in contenders.iter_mut().enumerate() {
            leader[i].push(c.leader.batch(effort.rounds));
        }
        null.push(harness.batch(effort.rounds));
        for (i, c) in contenders.iter_mut().enumerate() {
            cluster[i].push(c.cluster.batch(effort.rounds));
        }
    }
    let mut elections: Vec<Vec<Sample>> = vec![Vec::new(); n];
    let mut failovers: Vec<Vec<Sample>> = vec![Vec::new(); n];
    for seed in 0..effort.trials {
        for (i, c) in contenders.iter().enumerate() {
            if let Some(f) = c.election {
                elections[i].push(f(params, seed));
            }
        }
        for (i, c) in contenders.iter().enumerate() {
            if let Some(f) = c.failover {
                failovers[i].push(f(params, seed));
            }
        }
    }
    let cols = contenders
        .iter()
        .enumerate()
        .map(|(i, c)| Column {
            name: c.name,
            guard_name: c.guard_name,
            guard_ns: c.guard_ns,
            period_ns: c.period_ns,
            leader: median_round(&leader[i]),
            leader_fastest_ns: leader[i].iter().map(|r| r.ns).fold(f64::INFINITY, f64::min),
            cluster: median_round(&cluster[i]),
            election: measure::summarize(&elections[i]),
            failover: measure::summarize(&failovers[i]),
            state: c.state.map_or((0, 0.0), |f| f(params)),
        })
        .collect();
    (cols, median_round(&null))
}

fn us(ns: f64) -> String {
    format!("{:.2}", ns / 1e3)
}

fn ms(ns: f64) -> String {
    format!("{:.1}", ns / 1e6)
}

/// A count: whole numbers without decimals, others with two.
pub fn num(x: f64) -> String {
    if (x - x.round()).abs() < 0.005 {
        format!("{}", x.round())
    } else {
        format!("{x:.2}")
    }
}

/// `other / tenure` as a ratio string (how many times Tenure is cheaper);
/// for zero Tenure values, says so.
fn ratio(tenure: Option<f64>, raft: f64) -> String {
    match tenure {
        None => "—".into(),
        Some(t) if t == 0.0 && raft == 0.0 => "equal (0)".into(),
        Some(0.0) => format!("0 vs {}", num(raft)),
        Some(t) if raft == 0.0 => format!("{} vs 0", num(t)),
        Some(t) => format!("{:.2}x", raft / t),
    }
}

fn throughput(r: &Round) -> f64 {
    r.msgs / (r.ns / 1e9)
}

/// The table, in Markdown. `tenure` is `None` until the Tenure side exists.
/// The ratio column is raft-rs ÷ Tenure: above 1 means Tenure needs less
/// (for throughput: Tenure ÷ raft-rs, above 1 means Tenure handles more).
pub fn table(tenure: Option<&Column>, raft: &Column, omni: &Column) -> String {
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&Column) -> String, r: String| {
        rows.push([
            label.to_string(),
            tenure.map(f).unwrap_or_else(|| "—".into()),
            f(raft),
            f(omni),
            r,
        ]);
    };
    let t = |f: &dyn Fn(&Column) -> f64| tenure.map(f);

    row(
        "1. renewal round, leader only (µs)",
        &|c| us(c.leader.ns),
        ratio(t(&|c| c.leader.ns), raft.leader.ns),
    );
    row(
        "1b. renewal period, whole cluster (µs)",
        &|c| us(c.cluster.ns),
        ratio(t(&|c| c.cluster.ns), raft.cluster.ns),
    );
    let per_s = |c: &Column, x: f64| x * 1e9 / c.period_ns as f64;
    row(
        "1c. CPU per second of steady leadership, whole cluster (µs/s)",
        &|c| format!("{:.1}", per_s(c, c.cluster.ns) / 1e3),
        ratio(t(&|c| per_s(c, c.cluster.ns)), per_s(raft, raft.cluster.ns)),
    );
    row(
        "2. election from fresh, virtual (ms, mean / max)",
        &|c| {
            format!(
                "{} / {}",
                ms(c.election.virt_mean),
                ms(c.election.virt_max as f64)
            )
        },
        ratio(t(&|c| c.election.virt_mean), raft.election.virt_mean),
    );
    row(
        "2b. election from fresh, CPU (µs, median)",
        &|c| us(c.election.cpu_median),
        ratio(t(&|c| c.election.cpu_median), raft.election.cpu_median),
    );
    row(
        "3. failover, virtual (ms, mean / max)",
        &|c| {
            format!(
                "{} / {}",
                ms(c.failover.virt_mean),
                ms(c.failover.virt_max as f64)
            )
        },
        ratio(t(&|c| c.failover.virt_mean), raft.failover.virt_mean),
    );
    row(
        "3b. failover ÷ own guard setting (mean)",
        &|c| {
            format!(
                "{:.2} x {} ({} ms)",
                c.failover.virt_mean / c.guard_ns as f64,
                c.guard_name,
                ms(c.guard_ns as f64)
            )
        },
        "—".into(),
    );
    row(
        "4. heap allocations per renewal round, leader only",
        &|c| num(c.leader.allocs),
        ratio(t(&|c| c.leader.allocs), raft.leader.allocs),
    );
    row(
        "4b. heap allocations per period, whole cluster",
        &|c| num(c.cluster.allocs),
        ratio(t(&|c| c.cluster.allocs), raft.cluster.allocs),
    );
    row(
        "5. wire bytes per renewal round, leader only",
        &|c| num(c.leader.bytes),
        ratio(t(&|c| c.leader.bytes), raft.leader.bytes),
    );
    row(
        "5b. messages per renewal round, leader only",
        &|c| num(c.leader.msgs),
        ratio(t(&|c| c.leader.msgs), raft.leader.msgs),
    );
    row(
        "5c. wire bytes per period, whole cluster",
        &|c| num(c.cluster.bytes),
        ratio(t(&|c| c.cluster.bytes), raft.cluster.bytes),
    );
    row(
        "5d. wire bytes per second of steady leadership, whole cluster",
        &|c| format!("{:.0}", per_s(c, c.cluster.bytes)),
        ratio(
            t(&|c| per_s(c, c.cluster.bytes)),
            per_s(raft, raft.cluster.bytes),
        ),
    );
    row(
        "5e. durable writes per renewal round, all nodes (fsyncs in production)",
        &|c| num(c.leader.writes),
        ratio(t(&|c| c.leader.writes), raft.leader.writes),
    );
    row(
        "5f. state bytes per node (size_of + heap)",
        &|c| format!("{} + {:.0}", c.state.0, c.state.1),
        ratio(
            t(&|c| c.state.0 as f64 + c.state.1),
            raft.state.0 as f64 + raft.state.1,
        ),
    );
    row(
        "6. messages handled per second per core",
        &|c| format!("{:.0}", throughput(&c.leader)),
        match tenure {
            Some(tc) => format!("{:.2}x", throughput(&tc.leader) / throughput(&raft.leader)),
            None => "—".into(),
        },
    );

    let mut s = String::new();
    s.push_str("| measure | Tenure | raft-rs | OmniPaxos | ratio raft-rs ÷ Tenure |\n");
    s.push_str("|---|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r[0], r[1], r[2], r[3], r[4]
        ));
    }
    s
}

/// The harness's own cost per message (the null protocol's round time ÷
/// its messages).
pub fn harness_ns_per_msg(null: &Round) -> f64 {
    null.ns / null.msgs
}

/// A round's time less the harness's share (its cost per message times the
/// round's messages).
pub fn net_ns(r: &Round, harness_per_msg: f64) -> f64 {
    r.ns - harness_per_msg * r.msgs
}

/// The per-renewal table: each contender's leader-only round, with every
/// cost, the time less the harness, and the ratio to `base` (raft-rs in the
/// same mode: plain rows against plain raft-rs, sealed rows against sealed
/// raft-rs), with and without the harness.
pub fn renewal_table(rows: &[(&Column, &Column)], harness_per_msg: f64) -> String {
    let mut s = String::new();
    s.push_str(
        "| per renewal round, leader only | messages | bytes | durable writes (all nodes) \
         | allocations | CPU µs | CPU µs less harness | raft-rs ÷ this | less harness |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (c, base) in rows {
        let net = net_ns(&c.leader, harness_per_msg);
        let base_net = net_ns(&base.leader, harness_per_msg);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2}x | {:.2}x |\n",
            c.name,
            num(c.leader.msgs),
            num(c.leader.bytes),
            num(c.leader.writes),
            num(c.leader.allocs),
            us(c.leader.ns),
            us(net),
            base.leader.ns / c.leader.ns,
            base_net / net,
        ));
    }
    s
}

/// The report's last line: `renewal_speedup_vs_raft=<X>
/// renewal_speedup_vs_omni=<Y> sealed_speedup_vs_raft=<Z> bytes_per_round=<B>
/// writes_per_round=<W> allocations_per_renewal=<A>`: Tenure's leader-only
/// lease round against raft-rs's and OmniPaxos's heartbeat rounds (times
/// include the harness), sealed Tenure against sealed raft-rs, and Tenure's
/// bytes, durable writes (all nodes) and allocations per round.
pub fn last_line(
    tenure: &Column,
    raft: &Column,
    omni: &Column,
    tenure_sealed: &Column,
    raft_sealed: &Column,
) -> String {
    format!(
        "renewal_speedup_vs_raft={:.2} renewal_speedup_vs_omni={:.2} sealed_speedup_vs_raft={:.2} \
         bytes_per_round={} writes_per_round={} allocations_per_renewal={}",
        raft.leader.ns / tenure.leader.ns,
        omni.leader.ns / tenure.leader.ns,
        raft_sealed.leader.ns / tenure_sealed.leader.ns,
        num(tenure.leader.bytes),
        num(tenure.leader.writes),
        num(tenure.leader.allocs)
    )
}

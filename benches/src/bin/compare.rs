//! Prints the comparison table of Tenure, raft-rs and OmniPaxos.
//!
//! `cargo run --release --manifest-path benches/Cargo.toml --bin compare`
//! (add `-- --quick` for a smoke run). Its last line is
//! `renewal_speedup_vs_raft=<X> allocations_per_renewal=<N>`.

use tenure_benches::alloc::CountingAlloc;
use tenure_benches::omni_side::OmniCluster;
use tenure_benches::raft_side::RaftCluster;
use tenure_benches::report::{self, Effort};
use tenure_benches::sim::{Params, Protocol, MS};
use tenure_benches::tenure_side::TenureCluster;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let effort = if quick { Effort::QUICK } else { Effort::FULL };
    let params = Params::default();
    println!(
        "settings: {} nodes, one-way delay {} ms, renewal/heartbeat period {} ms, \
         guard (raft election timeout, Tenure lease) {} ms; {} batches x {} rounds, {} trials",
        params.nodes,
        params.delay / MS,
        params.period / MS,
        params.guard() / MS,
        effort.batches,
        effort.rounds,
        effort.trials
    );
    println!(
        "Tenure renews every {:.1} ms (lease rounds, a sixth of the lease; Tenure-logged \
         every {:.1} ms, a third of its term); raft-rs and OmniPaxos heartbeat every {} ms",
        <TenureCluster>::round_period(&params) as f64 / MS as f64,
        <TenureCluster<false, true>>::round_period(&params) as f64 / MS as f64,
        params.period / MS
    );
    let mut contenders = vec![
        report::contender::<TenureCluster>(&params),
        report::contender::<RaftCluster>(&params),
        report::contender::<OmniCluster>(&params),
        report::contender::<TenureCluster<true>>(&params),
        report::contender::<TenureCluster<false, true>>(&params),
    ];
    let cols = report::measure_all(&mut contenders, &params, effort);
    drop(contenders);
    let (tenure, raft, omni, sealed, logged) = (&cols[0], &cols[1], &cols[2], &cols[3], &cols[4]);
    print!("{}", report::table(Some(tenure), raft, omni));
    println!(
        "OmniPaxos whole-cluster BLE round per period: {:.2} µs, {} messages",
        omni.cluster.ns / 1e3,
        omni.cluster.msgs
    );
    println!(
        "row 1 from the fastest batch instead of the median: Tenure {:.2} µs, raft-rs {:.2} µs, \
         OmniPaxos {:.2} µs; raft-rs ÷ Tenure {:.2}x",
        tenure.leader_fastest_ns / 1e3,
        raft.leader_fastest_ns / 1e3,
        omni.leader_fastest_ns / 1e3,
        raft.leader_fastest_ns / tenure.leader_fastest_ns
    );
    println!(
        "Tenure with authenticated frames (BLAKE2s tags, not in the table): renewal round \
         {:.2} µs leader only ({:.2}x raft-rs), {} bytes and {} messages per round, \
         {} allocations",
        sealed.leader.ns / 1e3,
        raft.leader.ns / sealed.leader.ns,
        report::num(sealed.leader.bytes),
        report::num(sealed.leader.msgs),
        report::num(sealed.leader.allocs)
    );
    println!("per renewal (leader-only round; messages, bytes, durable writes of all nodes, CPU):");
    for c in [tenure, logged, raft, omni] {
        println!(
            "  {:<14} {:>5} messages {:>7} bytes {:>5} durable writes {:>8.2} µs",
            c.name,
            report::num(c.leader.msgs),
            report::num(c.leader.bytes),
            report::num(c.leader.writes),
            c.leader.ns / 1e3
        );
    }
    println!("{}", report::last_line(tenure, raft));
}

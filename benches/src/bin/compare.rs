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
        "Tenure renews every {:.1} ms (a third of its term); raft-rs and OmniPaxos \
         heartbeat every {} ms",
        TenureCluster::round_period(&params) as f64 / MS as f64,
        params.period / MS
    );
    let mut pairs = vec![
        report::round_pair::<TenureCluster>(&params),
        report::round_pair::<RaftCluster>(&params),
        report::round_pair::<OmniCluster>(&params),
    ];
    let rounds = report::measure_rounds(&mut pairs, effort);
    drop(pairs);
    let tenure = report::column::<TenureCluster>(&params, effort, rounds[0]);
    let raft = report::column::<RaftCluster>(&params, effort, rounds[1]);
    let omni = report::column::<OmniCluster>(&params, effort, rounds[2]);
    print!("{}", report::table(Some(&tenure), &raft, &omni));
    println!(
        "OmniPaxos whole-cluster BLE round per period: {:.2} µs, {} messages",
        omni.cluster.ns / 1e3,
        omni.cluster.msgs
    );
    println!("{}", report::last_line(&tenure, &raft));
}

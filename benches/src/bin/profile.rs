//! Runs one contender's leader-only rounds for a while, for `perf record`:
//! `cargo run --release --manifest-path benches/Cargo.toml --bin profile -- [tenure|sealed|logged|raft|omni|raft-sealed|omni-sealed|null] [rounds]`.
//! Under `valgrind --tool=callgrind` the difference of two round counts gives
//! instructions per round, which the machine's load does not change.

use tenure_benches::alloc::CountingAlloc;
use tenure_benches::measure::Steady;
use tenure_benches::omni_side::OmniCluster;
use tenure_benches::raft_side::RaftCluster;
use tenure_benches::sim::{Null, Params, Protocol, Sealed};
use tenure_benches::tenure_side::TenureCluster;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn run<P: Protocol>(rounds: usize) {
    let mut st = Steady::<P>::leader_only(&Params::default(), 1);
    let r = st.measure(rounds);
    println!("{}: {:.0} ns per round, {} messages", P::NAME, r.ns, r.msgs);
}

/// Tenure's rounds in batches of `rounds`, alternating with raft-rs's and
/// OmniPaxos's (as `compare` interleaves them): per-batch times.
fn mix(rounds: usize) {
    let p = Params::default();
    let mut t = Steady::<TenureCluster>::leader_only(&p, 1);
    let mut r = Steady::<RaftCluster>::leader_only(&p, 1);
    let mut o = Steady::<OmniCluster>::leader_only(&p, 1);
    for _ in 0..8 {
        let a = t.measure(rounds).ns;
        let a2 = t.measure(rounds).ns;
        let b = r.measure(rounds).ns;
        let c = o.measure(rounds).ns;
        println!("tenure {a:.0} then {a2:.0}, raft {b:.0}, omni {c:.0}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("tenure", String::as_str);
    let rounds = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(200_000);
    match which {
        "tenure" => run::<TenureCluster>(rounds),
        "sealed" => run::<TenureCluster<true>>(rounds),
        "logged" => run::<TenureCluster<false, true>>(rounds),
        "raft" => run::<RaftCluster>(rounds),
        "omni" => run::<OmniCluster>(rounds),
        "raft-sealed" => run::<Sealed<RaftCluster>>(rounds),
        "omni-sealed" => run::<Sealed<OmniCluster>>(rounds),
        "null" => run::<Null>(rounds),
        "mix" => mix(rounds),
        other => {
            eprintln!("profile: unknown contender {other:?}");
            std::process::exit(2);
        }
    }
}

//! Divan benches of one steady-state round per contender (the same rounds
//! the `compare` report measures; see that binary for ratios).
//!
//! `cargo bench --manifest-path benches/Cargo.toml`

use tenure_benches::alloc::CountingAlloc;
use tenure_benches::measure::{self, Steady};
use tenure_benches::omni_side::OmniCluster;
use tenure_benches::raft_side::RaftCluster;
use tenure_benches::sim::{Params, Protocol};
use tenure_benches::tenure_side::TenureCluster;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    divan::main();
}

fn leader_round<P: Protocol>(bencher: divan::Bencher) {
    let mut st = Steady::<P>::leader_only(&Params::default(), 1);
    bencher.bench_local(|| st.run_rounds(1));
}

fn cluster_round<P: Protocol>(bencher: divan::Bencher) {
    let mut st = measure::steady::<P>(&Params::default(), 1);
    bencher.bench_local(|| st.run_rounds(1));
}

#[divan::bench(types = [TenureCluster, RaftCluster, OmniCluster])]
fn renewal_round_leader_only<P: Protocol>(bencher: divan::Bencher) {
    leader_round::<P>(bencher);
}

#[divan::bench(types = [TenureCluster, RaftCluster, OmniCluster])]
fn renewal_period_whole_cluster<P: Protocol>(bencher: divan::Bencher) {
    cluster_round::<P>(bencher);
}

#[divan::bench(types = [TenureCluster, RaftCluster, OmniCluster], sample_count = 20)]
fn election_from_fresh<P: Protocol>(bencher: divan::Bencher) {
    let params = Params::default();
    bencher
        .with_inputs(|| tenure_benches::sim::Sim::<P>::new(&params, 3))
        .bench_local_values(|mut sim| {
            sim.run_until_cond(100 * params.guard(), |s| s.agreed_leader().is_some())
                .expect("leader")
        });
}

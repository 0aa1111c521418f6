//! Prints the comparison table of Tenure, raft-rs and OmniPaxos.
//!
//! `cargo run --release --manifest-path benches/Cargo.toml --bin compare`
//! (`-- --quick` for a smoke run, `-- --help` for what is measured). Its last
//! line is `renewal_speedup_vs_raft=<X> renewal_speedup_vs_omni=<Y>
//! sealed_speedup_vs_raft=<Z> bytes_per_round=<B> writes_per_round=<W>
//! allocations_per_renewal=<A>`.

use tenure_benches::alloc::CountingAlloc;
use tenure_benches::measure::Steady;
use tenure_benches::omni_side::OmniCluster;
use tenure_benches::raft_side::RaftCluster;
use tenure_benches::report::{self, Effort};
use tenure_benches::sim::{Null, Params, Protocol, Sealed, MS};
use tenure_benches::tenure_side::TenureCluster;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const HELP: &str = "\
compare: Tenure against raft-rs and OmniPaxos, in one run of one binary

USAGE:
    cargo run --release --manifest-path benches/Cargo.toml --bin compare [-- OPTIONS]

OPTIONS:
    --quick    smoke run: the same rows, fewer batches and trials (less precise)
    --help     this text

What runs (all in one process, interleaved batch by batch, medians reported):
    Tenure                   lease renewals (protocol 2, the default Renewal::Lease)
    Tenure --renewal logged  the PhxPaxos-style renewal (a BeMaster chosen through
                             Multi-Paxos and written by every voter each renewal)
    raft-rs 0.7              heartbeat rounds (protobuf codec, MemStorage)
    OmniPaxos 0.2.4          BLE rounds (bincode over its serde derives)
    ... (sealed)             the same with every message tagged: Tenure with its own
                             Auth::key frames, raft-rs and OmniPaxos with the same
                             SipHash-2-4-128 tag over their encoded bytes, verified before
                             their decoder sees them
    harness (null protocol)  the simulator alone: its cost per message is printed, and
                             every ratio is also given with it taken out

Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time: waiting for
a core on a shared machine is not counted. Every cost a driver pays is inside the timed
rounds: decode, handling, output draining, encode, tags, and for Tenure each record
encoded with Record::encode and handed to a null store. 5 nodes, 1 ms one-way delay,
500 ms safety setting (raft-rs election timeout, Tenure lease). For load-independent
figures, count instructions: benches/instructions.sh (valgrind).
The last line is machine-readable:
    renewal_speedup_vs_raft renewal_speedup_vs_omni sealed_speedup_vs_raft
    bytes_per_round writes_per_round allocations_per_renewal
";

fn main() {
    let mut quick = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--quick" => quick = true,
            "--help" | "-h" => {
                print!("{HELP}");
                return;
            }
            other => {
                eprintln!("compare: unknown option {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
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
        "Tenure renews every {:.1} ms (lease rounds, a sixth of the lease; Tenure --renewal \
         logged every {:.1} ms, a third of its term); raft-rs and OmniPaxos heartbeat every {} ms",
        <TenureCluster>::round_period(&params) as f64 / MS as f64,
        <TenureCluster<false, true>>::round_period(&params) as f64 / MS as f64,
        params.period / MS
    );
    let mut contenders = vec![
        report::contender::<TenureCluster>(&params),
        report::contender::<RaftCluster>(&params),
        report::contender::<OmniCluster>(&params),
        report::rounds_only::<TenureCluster<true>>(&params),
        report::rounds_only::<Sealed<RaftCluster>>(&params),
        report::rounds_only::<Sealed<OmniCluster>>(&params),
        report::rounds_only::<TenureCluster<false, true>>(&params),
    ];
    let mut harness = Steady::<Null>::leader_only(&params, 0);
    let (cols, null) = report::measure_all(&mut contenders, &params, effort, &mut harness);
    drop(contenders);
    let [tenure, raft, omni, t_sealed, r_sealed, o_sealed, logged] = &cols[..] else {
        unreachable!("seven contenders")
    };
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
    let h = report::harness_ns_per_msg(&null);
    println!(
        "harness (null protocol): {:.1} ns per message ({:.0} ns per round of {} messages), \
         included in every time above and below",
        h,
        null.ns,
        report::num(null.msgs)
    );
    println!(
        "messages handled per second per core, less harness (decode + handle + encode): \
         Tenure {:.0}, raft-rs {:.0}, OmniPaxos {:.0}",
        tenure.leader.msgs / (report::net_ns(&tenure.leader, h) / 1e9),
        raft.leader.msgs / (report::net_ns(&raft.leader, h) / 1e9),
        omni.leader.msgs / (report::net_ns(&omni.leader, h) / 1e9),
    );
    print!(
        "{}",
        report::renewal_table(
            &[
                (tenure, raft),
                (logged, raft),
                (raft, raft),
                (omni, raft),
                (t_sealed, r_sealed),
                (r_sealed, r_sealed),
                (o_sealed, r_sealed),
            ],
            h
        )
    );
    println!(
        "sealed Tenure against unsealed raft-rs: {:.2}x ({:.2}x less harness); \
         unsealed Tenure against OmniPaxos: {:.2}x ({:.2}x less harness)",
        raft.leader.ns / t_sealed.leader.ns,
        report::net_ns(&raft.leader, h) / report::net_ns(&t_sealed.leader, h),
        omni.leader.ns / tenure.leader.ns,
        report::net_ns(&omni.leader, h) / report::net_ns(&tenure.leader, h),
    );
    println!(
        "{}",
        report::last_line(tenure, raft, omni, t_sealed, r_sealed)
    );
}

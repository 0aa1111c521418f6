//! Checks of the harness itself (never of timings): the simulator does not
//! allocate in steady state, so allocation counts belong to the libraries;
//! and every contender elects, renews and fails over.

use tenure_benches::alloc::{self, CountingAlloc};
use tenure_benches::measure::{self, Steady};
use tenure_benches::omni_side::OmniCluster;
use tenure_benches::raft_side::RaftCluster;
use tenure_benches::sim::{Null, Params, Protocol, Sealed, Sim};
use tenure_benches::tenure_side::TenureCluster;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn simulator_does_not_allocate_in_steady_state() {
    let params = Params::default();
    let mut sim = Sim::<Null>::new(&params, 0);
    sim.run_until(10 * params.period);
    let before = alloc::allocations();
    sim.run_until(1000 * params.period);
    assert_eq!(alloc::allocations() - before, 0);
    assert_eq!(sim.traffic.messages, 8 * 999);
}

#[test]
fn null_rounds_count_messages_and_bytes() {
    let params = Params::default();
    let mut st = Steady::<Null>::leader_only(&params, 0);
    let r = st.measure(100);
    assert_eq!(r.msgs, 8.0);
    assert_eq!(r.bytes, 4.0 * 4.0 + 4.0);
    assert_eq!(r.allocs, 0.0);
}

fn smoke<P: Protocol>() {
    let params = Params::default();
    let mut st = Steady::<P>::leader_only(&params, 1);
    let r = st.measure(20);
    assert!(r.msgs >= 8.0, "{}: {r:?}", P::NAME);
    assert!(r.bytes > 0.0);
    let e = measure::election::<P>(&params, 2);
    assert!(e.virt_mean > 0.0);
    let f = measure::failover::<P>(&params, 2);
    assert!(f.virt_mean > 0.0);
    let (size, heap) = measure::state_bytes::<P>(&params);
    assert!(size > 0 && heap >= 0.0);
}

#[test]
fn raft_side_works() {
    smoke::<RaftCluster>();
}

#[test]
fn omnipaxos_side_works() {
    smoke::<OmniCluster>();
}

#[test]
fn tenure_side_works() {
    smoke::<TenureCluster>();
}

#[test]
fn tenure_sealed_side_works() {
    smoke::<TenureCluster<true>>();
}

#[test]
fn raft_sealed_side_works() {
    smoke::<Sealed<RaftCluster>>();
}

#[test]
fn omnipaxos_sealed_side_works() {
    smoke::<Sealed<OmniCluster>>();
}

#[test]
fn tenure_logged_side_works() {
    smoke::<TenureCluster<false, true>>();
}

#[test]
fn sealed_messages_carry_a_tag_each() {
    let params = Params::default();
    let plain = Steady::<RaftCluster>::leader_only(&params, 1).measure(20);
    let sealed = Steady::<Sealed<RaftCluster>>::leader_only(&params, 1).measure(20);
    assert_eq!(plain.msgs, sealed.msgs);
    assert_eq!(
        sealed.bytes - plain.bytes,
        plain.msgs * tenure::auth::TAG_LEN as f64
    );
}

#[test]
fn tenure_renewal_rounds_do_not_allocate() {
    let params = Params::default();
    for timers in [true, false] {
        let mut st = if timers {
            measure::steady::<TenureCluster>(&params, 3)
        } else {
            Steady::<TenureCluster>::leader_only(&params, 3)
        };
        st.run_rounds(10);
        let r = st.measure(500);
        assert_eq!(r.allocs, 0.0, "{r:?}");
        assert!(r.msgs > 0.0);
    }
}

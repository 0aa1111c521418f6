use std::time::Instant;
use tenure_benches::sim::{Nanos, Outbox, Params, Protocol, Sim};
struct Null { next: [Nanos; 5], period: Nanos }
impl Protocol for Null {
    const NAME: &'static str = "null";
    const GUARD: &'static str = "period";
    fn guard(p: &Params) -> Nanos { p.period }
    fn build(p: &Params, _seed: u64) -> Self { Null { next: [p.period; 5], period: p.period } }
    fn len(&self) -> usize { 5 }
    fn next_timer(&self, node: usize) -> Option<Nanos> { Some(self.next[node]) }
    fn on_timer(&mut self, node: usize, _now: Nanos, out: &mut Outbox<'_>) {
        self.next[node] += self.period;
        if node == 0 { for to in 1..5 { out.send(to, |b| b.extend_from_slice(&[1u8; 12])); } }
    }
    fn on_message(&mut self, node: usize, _now: Nanos, msg: &[u8], out: &mut Outbox<'_>) {
        if node != 0 && msg.len() == 12 { out.send(0, |b| b.extend_from_slice(&[2u8; 12])); }
        if node == 0 && msg[0] == 2 { out.send(std::hint::black_box(1), |b| b.extend_from_slice(&[3u8; 12])); }
    }
    fn leader_of(&self, _node: usize, _now: Nanos) -> Option<usize> { Some(0) }
    fn is_leader(&self, node: usize, _now: Nanos) -> bool { node == 0 }
    type Node = ();
    fn into_nodes(self) -> Vec<()> { vec![] }
}
fn main() {
    let p = Params::default();
    let mut sim = Sim::<Null>::new(&p, 0);
    sim.timers = tenure_benches::sim::Timers::Only(0);
    sim.run_until(100 * p.period);
    for _ in 0..5 {
        let m0 = sim.traffic.messages;
        let t0 = Instant::now();
        for _ in 0..100000 { let t = sim.now + p.period; sim.run_until(t); }
        let ns = t0.elapsed().as_nanos() as f64 / 100000.0;
        let msgs = (sim.traffic.messages - m0) as f64 / 100000.0;
        println!("null round {ns:.0} ns, {msgs} msgs, {:.0} ns/msg", ns / msgs);
    }
}

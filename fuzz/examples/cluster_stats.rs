//! What a `cluster` corpus reaches: `cargo run --release --example cluster_stats -- <dir>`.

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: cluster_stats <corpus dir>");
    let (mut n, mut master, mut restart, mut release, mut hand_over, mut bad_tag) =
        (0, 0, 0, 0, 0, 0);
    let (mut pipelined, mut max_version, mut steps) = (0, 0, 0);
    for e in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let (_, p, _) = tenure_fuzz::cluster::scenario(&bytes);
        let s = tenure_fuzz::cluster::run(&bytes).stats;
        n += 1;
        master += usize::from(s.masters_seen > 0);
        restart += usize::from(s.restarts > 0);
        release += usize::from(s.releases_ok > 0);
        hand_over += usize::from(s.hand_overs_ok > 0);
        bad_tag += usize::from(s.bad_tags > 0);
        pipelined += usize::from(p);
        max_version = max_version.max(s.max_version);
        steps += s.steps;
    }
    println!(
        "{n} inputs, {} steps on average: a master in {master}, a restart in {restart}, \
         a release in {release}, a hand-over in {hand_over}, a refused frame in {bad_tag}, \
         pipelined {pipelined}; highest version {max_version}",
        steps / n.max(1)
    );
}

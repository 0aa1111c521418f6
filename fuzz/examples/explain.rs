//! Prints what a `cluster` input does, step by step, and where it fails:
//! `cargo run --release --example explain -- <file>...` (from fuzz/).

use tenure_fuzz::cluster::{scenario, Cluster};

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (seed, pipelined, steps) = scenario(&bytes);
        println!(
            "{path}: seed {seed}, pipelined {pipelined}, {} steps",
            steps.len()
        );
        let mut cluster =
            Cluster::with_renewal(seed, pipelined, tenure_fuzz::cluster::renewal_of(&bytes));
        for (k, step) in steps.iter().enumerate() {
            println!("  {k:3} {step:?}");
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cluster.step(*step)));
            if r.is_err() {
                println!("  -> invariant violated at step {k}");
                std::process::exit(1);
            }
            println!("      {}", cluster.summary());
        }
        println!("  -> ok: {:?}", cluster.stats);
    }
}

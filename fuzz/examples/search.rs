//! A bounded random search for a `cluster` input that fails, for use where cargo-fuzz
//! is not installed: `cargo run --release --example search [--features planted-amnesia]
//! -- SECONDS [OUT] [TEXT]`. Inputs are a random seed byte and flags byte followed by
//! random steps (xorshift, fixed start); the first input whose run panics (with a
//! message containing TEXT, if given) is written to OUT (default `search-found`) and the
//! search stops. At most 10 million inputs.

use std::panic;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let out = args.next().unwrap_or_else(|| "search-found".into());
    let text = args.next().unwrap_or_default();
    let end = Instant::now() + Duration::from_secs(secs);
    panic::set_hook(Box::new(|_| {}));
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in 0..10_000_000u64 {
        if Instant::now() >= end {
            println!("nothing found in {n} inputs, {secs}s");
            return;
        }
        let len = 8 + (next() % 120) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| (next() >> 24) as u8).collect();
        let Err(payload) = panic::catch_unwind(|| tenure_fuzz::cluster::run(&bytes)) else {
            continue;
        };
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        if message.contains(&text) {
            let _ = panic::take_hook();
            std::fs::write(&out, &bytes).expect("write the input");
            println!("input {n} ({len} bytes) fails: {message}; written to {out}");
            let r = panic::catch_unwind(|| tenure_fuzz::cluster::run(&bytes));
            println!("again: {}", if r.is_err() { "fails" } else { "passes" });
            return;
        }
    }
    println!("nothing found in 10 million inputs");
}

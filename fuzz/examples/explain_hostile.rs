//! Prints the packets a `hostile` input sends to the node under test, then runs it:
//! `cargo run --release --example explain_hostile -- <file>...` (from fuzz/).

fn main() {
    std::env::set_var("TENURE_FUZZ_TRACE", "1");
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        println!("{path}:");
        println!("  -> {:?}", tenure_fuzz::hostile::run(&bytes));
    }
}

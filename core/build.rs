//! Declares the cfg that only the test-only `tenure-fault` package sets (its fault
//! hooks); this package never sets it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tenure_fault_injection)");
}

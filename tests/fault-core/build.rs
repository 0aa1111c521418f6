//! Compiles the core with its fault hooks (see Cargo.toml).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tenure_fault_injection)");
    println!("cargo::rustc-check-cfg=cfg(feature, values(\"defmt\"))");
    println!("cargo::rustc-cfg=tenure_fault_injection");
}

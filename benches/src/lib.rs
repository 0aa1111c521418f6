//! Side-by-side benchmarks of Tenure against raft-rs and OmniPaxos.
//!
//! Every contender implements [`sim::Protocol`] through its public API only;
//! [`measure`] runs the same measurements for all of them on the same
//! simulated network ([`sim::Sim`]: in memory, virtual time, fixed one-way
//! delay, every message encoded and decoded by the library's own codec).
//! The `compare` binary prints the comparison table.
//!
//! To add a contender: implement [`sim::Protocol`] in a module of its own
//! (as [`tenure_side`], [`raft_side`] and [`omni_side`] do) and add
//! `report::contender::<YourCluster>(&params)` in `src/bin/compare.rs`.

pub mod alloc;
pub mod measure;
pub mod omni_side;
pub mod raft_side;
pub mod report;
pub mod sim;
pub mod tenure_side;

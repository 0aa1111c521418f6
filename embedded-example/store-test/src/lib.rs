//! Host tests of the firmware's record store, `../src/store.rs`, built here
//! as it is, over a RAM NOR flash that can lose power in the middle of a
//! program or erase operation.

#[path = "../../src/store.rs"]
pub mod store;

#[cfg(test)]
mod tests;

//! Tests for Tenure that need `std`: the deterministic simulator and the model checker.

pub mod check;
pub mod sim;

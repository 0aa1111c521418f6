//! The deterministic simulator (see issue: simulation).

//! The deterministic simulator: seeded worlds that try to break the election, and a
//! checker that watches every event.
//!
//! A run is a pure function of its [`SimOptions`] and seed: real time is virtual and
//! jumps to the next event, every node reads only its own drifting clock, messages
//! travel as encoded bytes through a lossy, duplicating, reordering, partitionable
//! network, and nodes crash (between any two outputs too), restart from the last record
//! their driver completed, and pause. [`run_seed`] runs one seed; [`sweep`] runs many
//! and summarises them; the `tenure-sim` binary wraps both.
//!
//! ```
//! use tenure_tests::sim::{run_seed, SimOptions};
//! use tenure::Duration;
//!
//! let opts = SimOptions { nodes: 3, duration: Duration::from_secs(3), ..SimOptions::default() };
//! let report = run_seed(&opts, 7, false);
//! assert!(report.violations.iter().all(|v| !v.kind.is_safety()), "{:?}", report.violations);
//! assert!(report.stats.failover.is_some()); // the master was crashed and replaced
//! // Same seed, same run.
//! assert_eq!(run_seed(&opts, 7, false).trace_hash, report.trace_hash);
//! ```

mod checker;
mod clock;
mod options;
mod rng;
mod sweep;
mod world;

pub use checker::{fmt_real, Checker, Violation, ViolationKind};
pub use clock::Clock;
pub use options::{
    parse_duration, parse_fault, Cli, Plant, Probe, SimOptions, LOGGED_ONE_IN, USAGE,
};
pub use rng::{SimRng, TraceHash};
pub use sweep::{sweep, ModeFigures, Progress, Summary};
pub use world::{fmt_msg, run_seed, RunReport, RunStats, SimNode};

/// The largest cluster the simulator builds (the nodes' member capacity).
pub const MAX_NODES: usize = 7;

//! Tenure: master election among a set of nodes with Multi-Paxos and leases; the set
//! changes one member at a time through the register.
//!
//! The crate is `no_std`, allocates nothing, and does no I/O: a [`Node`] consumes
//! messages, clock readings and commands, and emits messages, timers, durable records and
//! events. The same logic therefore runs in a tokio server, on a microcontroller, and in a
//! deterministic simulation.
//!
//! # The event loop
//!
//! ```
//! use tenure::{Config, Effects, Event, Executor, Instant, Member, Node, NodeId, Packet, Record};
//!
//! /// What this driver does with one node's outputs: a disk, a network, the application.
//! struct Io<'a> {
//!     me: NodeId,
//!     disk: &'a mut Option<Record>,
//!     in_flight: &'a mut Vec<(usize, Vec<u8>)>,
//! }
//!
//! impl Effects for Io<'_> {
//!     type Error = core::convert::Infallible;
//!     fn persist(&mut self, record: &Record) -> Result<(), Self::Error> {
//!         *self.disk = Some(*record); // write and fsync here
//!         Ok(())
//!     }
//!     fn send(&mut self, to: NodeId, frame: &[u8], _: &Packet) -> Result<(), Self::Error> {
//!         self.in_flight.push((usize::from(to.0 - 1), frame.to_vec())); // sealed bytes
//!         Ok(())
//!     }
//!     fn event(&mut self, event: &Event) -> Result<(), Self::Error> {
//!         if let Event::BecameMaster { token, .. } = event {
//!             println!("node {} is master, fencing token {token}", self.me);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let members = [Member::candidate(1), Member::candidate(2), Member::candidate(3)];
//! // Three nodes in one process, a perfect network, and a virtual clock.
//! let mut nodes: Vec<Node<3>> = (1..=3)
//!     .map(|id| {
//!         let mut config = Config::new(42, NodeId(id), &members).unwrap();
//!         config.seed = u64::from(id); // different jitter per node
//!         config.auth = tenure::Auth::key([0x5a; 32]); // pre-shared cluster key
//!         Node::first_boot(config, Instant::ZERO).unwrap()
//!     })
//!     .collect();
//! // One executor per node: it persists, seals and fans out sends, hands out events, in
//! // order, and refuses any send that promises more than was stored.
//! let mut execs = vec![Executor::new(); 3];
//! let mut disk = vec![None; 3];
//! let mut in_flight = Vec::new();
//! let mut now = Instant::ZERO;
//!
//! for _ in 0..1000 {
//!     // 1. After every input, drain the node's outputs through its executor.
//!     for (i, node) in nodes.iter_mut().enumerate() {
//!         let me = node.id();
//!         let mut io = Io { me, disk: &mut disk[i], in_flight: &mut in_flight };
//!         execs[i].drain(node, &mut io).unwrap();
//!     }
//!     // 2. Deliver what was sent; feed received bytes as inputs.
//!     if let Some((to, bytes)) = in_flight.pop() {
//!         // Verifies the tag, decodes, handles; a drop says why (and is counted).
//!         let _ = nodes[to].handle_frame(now, &bytes);
//!         continue;
//!     }
//!     // 3. Nothing in flight: jump to the earliest timer and fire it.
//!     let next = nodes.iter().filter_map(|n| n.poll_timeout()).min().unwrap();
//!     now = now.max(next);
//!     for node in nodes.iter_mut() {
//!         if node.poll_timeout().is_some_and(|t| t <= now) {
//!             node.handle_timeout(now);
//!         }
//!     }
//! }
//! // Exactly one node believes it is master, and everyone agrees which.
//! let masters: Vec<_> = nodes.iter().filter(|n| n.is_master(now)).collect();
//! assert_eq!(masters.len(), 1);
//! let master = masters[0].id();
//! assert!(nodes.iter().all(|n| n.master(now).map(|m| m.node) == Some(master)));
//! ```
//!
//! # Where to look
//! - [`time`]: the core's own [`Instant`] and [`Duration`].
//! - [`wire`]: [`Message`], [`encode`], [`decode`], COBS framing.
//! - [`auth`]: SipHash-2-4-128 tags on every frame, key rotation.
//! - [`config`]: [`Config`], [`Member`], [`Config::validate`].
//! - [`Node`]: the call protocol; [`Output`], [`Event`], [`Record`].
//! - [`exec`]: [`Executor`], the one way to execute outputs, over [`Effects`] or
//!   [`AsyncEffects`].
//! - [`timer`]: the timer table behind [`Node::poll_timeout`].
//!
//! The algorithm and its safety argument are in `docs/algorithm.md` of the repository.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod acceptor;
pub mod auth;
mod ballot;
mod codec;
pub mod config;
mod election;
mod event;
pub mod exec;
#[cfg(tenure_fault_injection)]
pub mod fault;
#[cfg(not(tenure_fault_injection))]
mod fault;
mod learner;
mod lease;
mod members;
mod node;
mod proposer;
mod rand;
mod record;
mod rejoin;
mod siphash;
mod stats;
pub mod time;
pub mod timer;
pub mod wire;

#[cfg(test)]
mod tests;

/// Whether this build of the core has the test-only fault hooks. Always `false` in the
/// `tenure` crate; only the simulator's and model checker's `tenure-fault` build of the
/// same source sets it. Binaries print it so anyone can check.
pub const FAULT_HOOKS: bool = cfg!(tenure_fault_injection);

pub use acceptor::Proposal;
pub use auth::{Auth, Key, TagKey, MAX_SEALED_SIZE};
pub use ballot::Ballot;
pub use config::{Config, ConfigError, Member, NodeId, Renewal, Role, MAX_MEMBERS};
pub use election::{Change, ElectionState, Op, OpId};
pub use event::{Event, TermEnd};
pub use exec::{AsyncEffects, Effects, ExecError, Executor};
pub use members::{MemberList, MembersError};
pub use node::{
    CommandError, Destination, MasterView, Node, Output, StartError, MAX_OUTPUTS_PER_INPUT,
    QUEUE_CAPACITY,
};
pub use record::{Record, RecordError, MAX_RECORD_SIZE};
pub use stats::{DropReason, Drops, Stats};
pub use time::{Duration, Instant};
pub use timer::{Timer, Timers};
pub use wire::{
    decode, encode, frame, FrameReader, Header, Message, Packet, WireError, MAX_FRAME_SIZE,
    MAX_PACKET_SIZE, PROTOCOL_VERSION,
};

//! Tenure: master election among a fixed set of nodes with Multi-Paxos and leases.
//!
//! The crate is `no_std`, allocates nothing, and does no I/O: a [`Node`] consumes
//! messages, clock readings and commands, and emits messages, timers, durable records and
//! events. The same logic therefore runs in a tokio server, on a microcontroller, and in a
//! deterministic simulation.
//!
//! # The event loop
//!
//! ```
//! use tenure::{Config, Destination, Event, Instant, Member, Node, NodeId, Output};
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
//! let mut disk = vec![None; 3];
//! let mut in_flight = Vec::new();
//! let mut now = Instant::ZERO;
//!
//! for _ in 0..1000 {
//!     // 1. Drain every node's outputs in order: persist before anything after it.
//!     for (i, node) in nodes.iter_mut().enumerate() {
//!         while let Some(output) = node.poll_output() {
//!             match output {
//!                 Output::Persist(record) => disk[i] = Some(record), // fsync here
//!                 Output::Send { to, packet } => {
//!                     let mut buf = [0u8; tenure::MAX_SEALED_SIZE];
//!                     let len = node.seal(&packet, &mut buf).unwrap(); // encode + tag
//!                     for j in 0..3u16 {
//!                         let dest = NodeId(j + 1);
//!                         if dest != node.id() && (to == Destination::All || to == Destination::Node(dest)) {
//!                             in_flight.push((usize::from(j), buf[..len].to_vec()));
//!                         }
//!                     }
//!                 }
//!                 Output::Event(Event::BecameMaster { version, .. }) => {
//!                     println!("node {} is master, fencing token {version}", node.id());
//!                 }
//!                 Output::Event(_) => {}
//!             }
//!         }
//!     }
//!     // 2. Deliver what was sent; feed received bytes as inputs.
//!     if let Some((to, bytes)) = in_flight.pop() {
//!         nodes[to].handle_frame(now, &bytes); // verify tag, decode, handle
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
//! - [`auth`]: keyed BLAKE2s tags on every frame, key rotation.
//! - [`config`]: [`Config`], [`Member`], [`Config::validate`].
//! - [`Node`]: the call protocol; [`Output`], [`Event`], [`Record`].
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
pub mod config;
mod election;
mod event;
mod learner;
mod node;
mod proposer;
mod rand;
mod record;
mod stats;
pub mod time;
pub mod wire;

#[cfg(test)]
mod tests;

pub use acceptor::Proposal;
pub use auth::{Auth, Key, MAX_SEALED_SIZE};
pub use ballot::Ballot;
pub use config::{Config, ConfigError, Member, NodeId, Role, MAX_MEMBERS};
pub use election::{ElectionState, Op, OpId};
pub use event::{Event, TermEnd};
pub use node::{
    CommandError, Destination, MasterView, Node, Output, StartError, MAX_OUTPUTS_PER_INPUT,
    QUEUE_CAPACITY,
};
pub use record::{Record, RecordError, MAX_RECORD_SIZE};
pub use stats::{DropReason, Drops, Stats};
pub use time::{Duration, Instant};
pub use wire::{
    decode, encode, frame, FrameReader, Header, Message, Packet, WireError, MAX_FRAME_SIZE,
    MAX_PACKET_SIZE, PROTOCOL_VERSION,
};

//! Tokio adapter for Tenure: real nodes over UDP, durable on disk.
//!
//! A service embeds a node with [`start`] and steers it through its [`Handle`], in the
//! conventions of Kubernetes' leader election, etcd's `concurrency.Election` and
//! Curator's `LeaderLatch`:
//!
//! ```no_run
//! use tenure_tokio::{start, NodeConfig, NotMaster};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = NodeConfig::load("node.toml".as_ref())?;
//! let node = start(config).await?;
//!
//! // Queries, answered at the current instant (never "master" after the term's end).
//! if let Some(m) = node.master() {
//!     println!("master is node {} (fencing token {})", m.node, m.token);
//! }
//! let _ = node.is_master();
//!
//! // React to changes.
//! let mut view = node.watch();
//! view.changed().await?;
//!
//! // Do work only while master: it is told to stop a grace before the term ends, and
//! // dropped before the term ends (see `Handle::run_while_master` for the timeline).
//! let leader = tokio::spawn({
//!     let node = node.clone();
//!     async move {
//!         // Err(Stopped) comes back at once once the node stopped: end the loop on it.
//!         while !matches!(
//!             node.run_while_master(|term| async move {
//!                 println!("leading with fencing token {}", term.token());
//!                 term.cancelled().await;
//!             })
//!             .await,
//!             Err(NotMaster::Stopped)
//!         ) {}
//!     }
//! });
//!
//! tokio::signal::ctrl_c().await?;
//! node.shutdown().await?; // tells the work to stop, then releases the role if held
//! leader.await?;
//! # Ok(()) }
//! ```
//!
//! # How it is built
//!
//! - [`driver`]: the part that feeds the core its inputs (frames, timers, commands) and
//!   has the core's [`tenure::Executor`] execute its outputs (persist in order, then
//!   send; deliver events), written once against three small traits: [`Transport`]
//!   (datagrams to a member id), [`RecordStore`] (one durable record) and [`Clock`]
//!   (monotonic time).
//! - [`node`]: the tokio binding: a driver task per node with `tokio::select!` over the
//!   UDP socket, `sleep_until(poll_timeout)` and a command channel, and the [`Handle`].
//!   The end-to-end tests (`tests/e2e`) bind the same [`Driver`] a second time, to a
//!   plain thread and a blocking socket.
//! - [`store::FileStore`]: the record in a file, replaced by write, `fsync`, rename,
//!   `fsync` of the directory; a record that exists but is damaged stops start-up, and
//!   so does a missing one unless the first start is declared
//!   ([`NodeConfig::first_boot`], the `first-boot` marker file).
//! - [`gateway`]: members behind COBS-framed serial links (microcontrollers), relayed
//!   by a gateway node that owns their links.
//! - [`config`]: the TOML configuration file (members by IP or host name, with an
//!   optional `name` and `advertise` address; the key inline or in a `key_file`);
//!   every bad value names its field and line.
//! - [`metrics`]: counters, rendered in the Prometheus text format; [`admin`] serves
//!   them, a JSON `/status`, `/healthz` and `/members`, and the commands `POST /release`,
//!   `POST /hand-over`, `POST /members` and `DELETE /members/ID` (hyper; a token from a
//!   file unless the address is loopback).
//! - Membership changes: [`Handle::add_member`], [`Handle::remove_member`] and
//!   [`Handle::members`] (the core's commands, one member at a time, with the adapter's
//!   address checks); [`addresses`]: each node's address book in its data directory,
//!   and how the members learn a new member's address (hellos sealed with the cluster
//!   key). A new member starts with [`StartAs::Join`] (`tenure node --join`), one that
//!   lost its record with [`StartAs::Rejoin`] (`tenure node --rejoin`).
//! - [`clock`]: leases are measured on `CLOCK_BOOTTIME`, which counts a suspend of the
//!   host (`CLOCK_MONOTONIC` does not).
//!
//! # The fencing token
//!
//! One number, everywhere: [`MasterView::token`] ([`Handle::master`]), [`Term::token`]
//! ([`Handle::view`]), [`Leadership::token`] of the work [`Handle::run_while_master`] runs, the
//! `token` field of `/status` and the `tenure_token` gauge of `/metrics`. It is fixed
//! for a whole term, and strictly higher in every later term. The register's `version`
//! (`/status` `version`, `tenure_version`, [`View::version`]) is another number: the
//! instance of the last effective op. In the default renewal mode, lease, it moves only
//! when the master changes; in logged mode every renewal moves it. Never use it as a
//! fencing token.

pub mod addresses;
pub mod admin;
pub mod clock;
pub mod config;
pub mod driver;
pub mod gateway;
pub mod metrics;
pub mod node;
pub mod store;
pub mod transport;

pub use clock::{Clock, TokioClock};
pub use config::{ConfigFileError, Identity, NodeConfig};
pub use driver::{
    CommandFailure, Driver, DriverError, StartAs, StartupError, Term, View, MAX_NODES,
};
pub use metrics::{Counters, Health};
pub use node::{
    start, start_on, Handle, HandleError, Leadership, MasterInfo, MemberInfo, Members,
    MembersFailure, NodeError, NotMaster,
};
pub use store::{FileStore, RecordStore};
/// The master as a node sees it: what [`Handle::master`] returns.
pub use tenure::MasterView;
/// The cancellation token of [`Leadership::cancellation_token`] (from `tokio-util`).
pub use tokio_util::sync::CancellationToken;
pub use transport::{AddressBook, SendError, Transport};

//! The output executor: the one place that turns a node's [`Output`](crate::Output)s into actions.
//!
//! Every driver (a tokio server, a firmware, a simulator, a model checker, a fuzz
//! target, a benchmark) does the same after each input: drain
//! [`Node::poll_output`] and, in order,
//!
//! 1. make each [`Output::Persist`](crate::Output::Persist) durable before anything after it;
//! 2. seal each [`Output::Send`](crate::Output::Send) into a frame (the configured [`Auth`](crate::Auth)) and
//!    hand it to every member it is for, by member id;
//! 3. hand each [`Output::Event`](crate::Output::Event) to the application.
//!
//! [`Executor`] does exactly that, over a small trait the driver implements with what is
//! truly its own (a disk or flash, sockets, a log): [`Effects`] for drivers that may
//! block, [`AsyncEffects`] for drivers whose storage or network is async (embassy's
//! flash, say). On the way it checks the **persist-before-send rule** on every frame,
//! once for every driver: a message that promises more than the last record the driver
//! stored is not sent ([`ExecError::Unpersisted`]; it would be a bug in the core, and
//! refusing is the safe way to fail).
//!
//! ```
//! use tenure::{Config, Effects, Event, Executor, Instant, Member, Node, NodeId, Packet, Record};
//!
//! struct Io {
//!     disk: Option<Record>,
//!     wire: Vec<(NodeId, Vec<u8>)>,
//! }
//!
//! impl Effects for Io {
//!     type Error = core::convert::Infallible;
//!     fn persist(&mut self, record: &Record) -> Result<(), Self::Error> {
//!         self.disk = Some(*record); // a real driver writes and syncs here
//!         Ok(())
//!     }
//!     fn send(&mut self, to: NodeId, frame: &[u8], _: &Packet) -> Result<(), Self::Error> {
//!         self.wire.push((to, frame.to_vec()));
//!         Ok(())
//!     }
//!     fn event(&mut self, _: &Event) -> Result<(), Self::Error> {
//!         Ok(())
//!     }
//! }
//!
//! let members = [Member::candidate(1), Member::candidate(2), Member::candidate(3)];
//! let config = Config::<3>::new(7, NodeId(1), &members).unwrap();
//! let mut node = Node::first_boot(config, Instant::ZERO).unwrap();
//! let mut exec = Executor::new();
//! let mut io = Io { disk: None, wire: Vec::new() };
//! exec.drain(&mut node, &mut io).unwrap(); // the first record
//! assert!(io.disk.is_some());
//! ```

use crate::auth::MAX_SEALED_SIZE;
use crate::config::NodeId;
use crate::event::Event;
use crate::node::{Destination, Node, Pending};
use crate::record::Record;
use crate::wire::{Message, Packet, WireError};

/// What a blocking driver does with a node's outputs.
///
/// A method that returns an error stops [`Executor::drain`] at once; the outputs after
/// it stay queued in the node. A driver whose store failed must stop the node (what it
/// was about to send may promise what is not durable); a driver that cannot send should
/// count it and return `Ok` (the protocol retries).
pub trait Effects {
    /// What stops the drain.
    type Error;
    /// Stores `record` durably, atomically replacing the previous one; returns only once
    /// it is durable.
    fn persist(&mut self, record: &Record) -> Result<(), Self::Error>;
    /// Sends a sealed `frame` to member `to`. `packet` is what the frame carries, for
    /// logs and checks; the frame is what goes on the wire.
    fn send(&mut self, to: NodeId, frame: &[u8], packet: &Packet) -> Result<(), Self::Error>;
    /// Hands an event to the application.
    fn event(&mut self, event: &Event) -> Result<(), Self::Error>;
}

/// What an async driver does with a node's outputs: [`Effects`] with async storage and
/// network.
#[allow(async_fn_in_trait)] // drivers are single-task: no Send bound to promise
pub trait AsyncEffects {
    /// What stops the drain.
    type Error;
    /// Stores `record` durably, atomically replacing the previous one.
    async fn persist(&mut self, record: &Record) -> Result<(), Self::Error>;
    /// Sends a sealed `frame` to member `to` (see [`Effects::send`]).
    async fn send(&mut self, to: NodeId, frame: &[u8], packet: &Packet) -> Result<(), Self::Error>;
    /// Hands an event to the application.
    fn event(&mut self, event: &Event) -> Result<(), Self::Error>;
}

/// Why [`Executor::drain`] stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExecError<E> {
    /// The driver's effect failed.
    Effects(E),
    /// The core asked to send a message that promises more than the last stored record
    /// (a bug in the core, or a driver that fed a node outputs of another): not sent.
    Unpersisted(Message),
    /// A packet could not be sealed (cannot happen with the core's own packets).
    Encode(WireError),
}

impl<E: core::fmt::Display> core::fmt::Display for ExecError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExecError::Effects(e) => e.fmt(f),
            ExecError::Unpersisted(m) => write!(
                f,
                "refused to send {m}: it promises more than the stored record \
                 (persist-before-send)"
            ),
            ExecError::Encode(e) => write!(f, "cannot seal a packet: {e}"),
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> core::error::Error for ExecError<E> {}

/// One output, ready to execute.
enum Action {
    Persist(Record),
    /// The sealed frame is in the executor's buffer, `len` bytes.
    Send {
        to: Destination,
        packet: Packet,
        len: usize,
    },
    Event(Event),
}

/// Executes a node's outputs in order: see the [module docs](self). Keep one per node
/// and make a new one when the node is restarted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Executor {
    /// The last record the driver stored through this executor.
    durable: Option<Record>,
    buf: [u8; MAX_SEALED_SIZE],
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor {
    /// An executor that has stored nothing yet.
    pub const fn new() -> Self {
        Executor {
            durable: None,
            buf: [0; MAX_SEALED_SIZE],
        }
    }

    /// The last record stored through this executor.
    pub fn durable(&self) -> Option<&Record> {
        self.durable.as_ref()
    }

    /// Drains `node`'s outputs into `fx`, in order; returns how many outputs were
    /// executed. Call it after every input.
    pub fn drain<const N: usize, F: Effects>(
        &mut self,
        node: &mut Node<N>,
        fx: &mut F,
    ) -> Result<usize, ExecError<F::Error>> {
        let mut done = 0;
        while let Some(action) = self.next(node)? {
            match action {
                Action::Persist(record) => {
                    fx.persist(&record).map_err(ExecError::Effects)?;
                    self.durable = Some(record);
                }
                Action::Send { to, packet, len } => {
                    for id in node.config().destinations(to) {
                        fx.send(id, &self.buf[..len], &packet)
                            .map_err(ExecError::Effects)?;
                    }
                }
                Action::Event(event) => fx.event(&event).map_err(ExecError::Effects)?,
            }
            done += 1;
        }
        Ok(done)
    }

    /// [`drain`](Self::drain) for an async driver.
    pub async fn drain_async<const N: usize, F: AsyncEffects>(
        &mut self,
        node: &mut Node<N>,
        fx: &mut F,
    ) -> Result<usize, ExecError<F::Error>> {
        let mut done = 0;
        while let Some(action) = self.next(node)? {
            match action {
                Action::Persist(record) => {
                    fx.persist(&record).await.map_err(ExecError::Effects)?;
                    self.durable = Some(record);
                }
                Action::Send { to, packet, len } => {
                    for id in node.config().destinations(to) {
                        fx.send(id, &self.buf[..len], &packet)
                            .await
                            .map_err(ExecError::Effects)?;
                    }
                }
                Action::Event(event) => fx.event(&event).map_err(ExecError::Effects)?,
            }
            done += 1;
        }
        Ok(done)
    }

    /// Takes the next output off the node's queue, checks it and seals it: no
    /// intermediate [`Output`](crate::Output) is built, and the record is read once,
    /// here.
    fn next<const N: usize, E>(
        &mut self,
        node: &mut Node<N>,
    ) -> Result<Option<Action>, ExecError<E>> {
        Ok(Some(match node.queue.pop() {
            None => return Ok(None),
            Some(Pending::Persist) => Action::Persist(node.record()),
            Some(Pending::Send { to, message }) => {
                // SAFETY-OF-PROTOCOL: nothing leaves that promises more than is durable.
                if !Record::covers(self.durable.as_ref(), &message) {
                    return Err(ExecError::Unpersisted(message));
                }
                let packet = Packet {
                    header: node.header(),
                    message,
                };
                let len = node
                    .seal(&packet, &mut self.buf)
                    .map_err(ExecError::Encode)?;
                Action::Send { to, packet, len }
            }
            Some(Pending::Event(event)) => Action::Event(event),
        }))
    }
}

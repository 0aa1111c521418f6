//! The one driver of both models: [`tenure::Executor`] over a model's storage and network.
//!
//! After every input a model calls [`drain`]. The executor executes the node's outputs in
//! order and checks persist-before-send; this module's [`Effects`] keeps only what is the
//! model's own:
//!
//! - **Storage.** A record goes to the model's `disk` (and, through [`Net::save`], to
//!   stateright's actor storage), unless the [`Fault::DropPersist`](super::Fault::DropPersist)
//!   fault is on (`stores == false`): then the driver tells the executor the record is
//!   stored while its disk keeps the older one. The executor's own check compares against
//!   what it was told, so it does not catch that fault; the models' properties do (the
//!   actor model's `promises are durable before they are sent` at once, and its
//!   `promises are never contradicted` after a crash).
//! - **Network.** Each destination member gets the packet through [`Net::send`] (a model's
//!   network carries packets, not frames: they sort and print better, and with the
//!   checkers' configuration a frame is just the packet's encoding).
//! - **Observation.** The first ballot shown to the network beyond the promise on the
//!   model's disk is reported back ([`Drained::premature`]), and so is a message the
//!   executor refused to send ([`Drained::refused`]).
//!
//! # The executor in a model's state
//!
//! A model keeps one [`Executor`] per node incarnation, next to the node, and a fresh one
//! when the node restarts. What the executor remembers, the last record it was told to
//! store, decides whether it lets a message go, so it is part of the state's equality and
//! hash; its frame buffer is scratch space and is not. With a correct driver that record is
//! the disk's, so it adds no states; with [`Fault::DropPersist`](super::Fault::DropPersist)
//! it is what the node last asked to store, which in every configuration tried when the
//! models moved to the executor added no states either (the counts stayed those of the
//! driver that had none).

use std::convert::Infallible;

use tenure::{Ballot, Effects, Event, ExecError, Executor, Message, NodeId, Packet, Record};

use super::{promise_shown, TNode};

/// Where a model's packets go, and where its stored records are mirrored.
pub trait Net {
    /// Mirrors a stored record into storage the model keeps besides its disk (stateright's
    /// actor storage). Nothing by default.
    fn save(&mut self, _record: &Record) {}

    /// Puts `packet`, from the drained node to member `to`, in flight.
    fn send(&mut self, to: NodeId, packet: &Packet);
}

/// What one [`drain`] saw, besides what it did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// The first ballot sent that the disk's promise did not cover, `(shown, stored)`.
    pub premature: Option<(Ballot, Ballot)>,
    /// The first message the executor refused to send: it promised more than the last
    /// record the node asked to store (a persist-before-send bug in the core).
    pub refused: Option<Message>,
}

/// The models' [`Effects`].
struct ModelEffects<'a, N> {
    disk: &'a mut Option<Record>,
    stores: bool,
    net: &'a mut N,
    premature: Option<(Ballot, Ballot)>,
}

impl<N: Net> Effects for ModelEffects<'_, N> {
    type Error = Infallible;

    fn persist(&mut self, record: &Record) -> Result<(), Infallible> {
        if self.stores {
            *self.disk = Some(*record);
            self.net.save(record);
        }
        Ok(())
    }

    fn send(&mut self, to: NodeId, _frame: &[u8], packet: &Packet) -> Result<(), Infallible> {
        if let Some(shown) = promise_shown(&packet.message) {
            let stored = self.disk.map_or(Ballot::ZERO, |r| r.promised());
            if shown > stored && self.premature.is_none() {
                self.premature = Some((shown, stored));
            }
        }
        self.net.send(to, packet);
        Ok(())
    }

    fn event(&mut self, _: &Event) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Executes every output `node` has queued, in order, through `exec`: records go to `disk`
/// (and [`Net::save`]) when `stores`, else nowhere (the planted fault); packets go to
/// `net`, once per destination member. A message the executor refuses is not sent; the
/// drain goes on with the outputs after it, and the first one refused is reported.
pub fn drain<N: Net>(
    exec: &mut Executor,
    node: &mut TNode,
    disk: &mut Option<Record>,
    stores: bool,
    net: &mut N,
) -> Drained {
    let mut fx = ModelEffects {
        disk,
        stores,
        net,
        premature: None,
    };
    let mut refused = None;
    loop {
        match exec.drain(node, &mut fx) {
            Ok(_) => break,
            Err(ExecError::Unpersisted(message)) => {
                refused = refused.or(Some(message));
            }
            Err(ExecError::Encode(e)) => panic!("a core packet cannot be sealed: {e}"),
            Err(ExecError::Effects(never)) => match never {},
        }
    }
    Drained {
        premature: fx.premature,
        refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{config, Timing};
    use tenure::Instant;

    #[derive(Default)]
    struct Wire {
        saved: usize,
        sent: Vec<(NodeId, Message)>,
    }

    impl Net for Wire {
        fn save(&mut self, _: &Record) {
            self.saved += 1;
        }
        fn send(&mut self, to: NodeId, packet: &Packet) {
            self.sent.push((to, packet.message));
        }
    }

    /// Node 2 answers node 1's Prepare with a Promise.
    fn answer_as_node_2(node: &mut TNode, instance: u64, ballot: tenure::Ballot) {
        let promise = Packet {
            header: tenure::Header {
                from: NodeId(2),
                ..node.header()
            },
            message: Message::Promise {
                instance,
                ballot,
                accepted: None,
                age: tenure::Duration::ZERO,
            },
        };
        node.handle_message(Instant::ZERO, &promise).unwrap();
    }

    /// Boots node 1 of 3, makes it campaign (its Prepare leaves, then its promise is
    /// stored) and answers its Prepare with node 2's Promise: it stores its acceptance,
    /// then sends its Accept. `stores` is what the driver does with every record after
    /// the first.
    fn campaign(stores: bool) -> (Option<Record>, Wire, Drained) {
        let mut node = TNode::first_boot(config(3, 0, &Timing::default()), Instant::ZERO).unwrap();
        let mut exec = Executor::new();
        let mut disk = None;
        let mut wire = Wire::default();
        let boot = drain(&mut exec, &mut node, &mut disk, true, &mut wire);
        assert_eq!(boot, Drained::default());
        assert_eq!(wire.saved, 1, "the first record");
        node.campaign(Instant::ZERO).unwrap();
        let mut d = drain(&mut exec, &mut node, &mut disk, stores, &mut wire);
        let Some(&(_, Message::Prepare { instance, ballot })) = wire.sent.first() else {
            panic!("a campaign starts with a Prepare: {:?}", wire.sent);
        };
        answer_as_node_2(&mut node, instance, ballot);
        let later = drain(&mut exec, &mut node, &mut disk, stores, &mut wire);
        d.premature = d.premature.or(later.premature);
        d.refused = d.refused.or(later.refused);
        (disk, wire, d)
    }

    #[test]
    fn a_correct_driver_stores_the_promise_before_the_accept_leaves() {
        let (disk, wire, d) = campaign(true);
        assert_eq!(d, Drained::default());
        assert_eq!(
            wire.saved, 3,
            "the first record, the promise, the acceptance"
        );
        let to: Vec<NodeId> = wire.sent.iter().map(|(to, _)| *to).collect();
        assert_eq!(to, [NodeId(2), NodeId(3), NodeId(2), NodeId(3)]);
        let Message::Accept { ballot, .. } = wire.sent[2].1 else {
            panic!(
                "a majority of promises lets the Accept out: {:?}",
                wire.sent[2].1
            );
        };
        let disk = disk.unwrap();
        assert_eq!(disk.promised(), ballot);
        assert_eq!(disk.accepted().map(|p| p.ballot), Some(ballot));
    }

    #[test]
    fn a_dropped_persist_is_seen_by_the_model_not_refused_by_the_executor() {
        let (disk, wire, d) = campaign(false);
        assert_eq!(wire.saved, 1, "only the first record reached the disk");
        assert_eq!(wire.sent.len(), 4, "the executor was told it was stored");
        assert!(d.refused.is_none());
        let (shown, stored) = d.premature.expect("a promise beyond the disk's");
        assert_eq!(stored, disk.unwrap().promised());
        assert!(shown > stored);
    }

    #[test]
    fn a_send_beyond_what_was_stored_is_refused_and_the_drain_goes_on() {
        let mut node = TNode::first_boot(config(3, 0, &Timing::default()), Instant::ZERO).unwrap();
        let mut disk = None;
        let mut wire = Wire::default();
        drain(&mut Executor::new(), &mut node, &mut disk, true, &mut wire);
        node.campaign(Instant::ZERO).unwrap();
        // The Prepare leaves; the promise's record is lost on the way: the executor
        // never hears of it...
        let Some(tenure::Output::Send { packet, .. }) = node.poll_output() else {
            panic!("a campaign starts with a Prepare");
        };
        let Message::Prepare { instance, ballot } = packet.message else {
            panic!("a campaign starts with a Prepare: {:?}", packet.message);
        };
        let lost = node.poll_output();
        assert_eq!(lost, Some(tenure::Output::Persist));
        answer_as_node_2(&mut node, instance, ballot);
        // ...and so is the acceptance's, written before the Accept it lets out.
        let lost = node.poll_output();
        assert_eq!(lost, Some(tenure::Output::Persist));
        let d = drain(&mut Executor::new(), &mut node, &mut disk, true, &mut wire);
        assert!(
            matches!(d.refused, Some(Message::Accept { .. })),
            "{:?}",
            d.refused
        );
        assert!(wire.sent.is_empty(), "{:?}", wire.sent);
        assert!(node.poll_output().is_none(), "the drain went on to the end");
    }
}

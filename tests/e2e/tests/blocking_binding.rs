//! Checks `docs/algorithm.md` §1 "The promise" and §3 "Release and hand-over" with a
//! second binding of the adapter's `Driver` (written once against small std traits;
//! tokio is one binding of it): a plain `std::thread`, a blocking `UdpSocket` with read
//! timeouts, and `std::time::Instant`, in a few dozen lines, no async runtime. It joins a
//! cluster with two tokio nodes, takes the role, renews and releases it.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use tenure::{NodeId, MAX_SEALED_SIZE};
use tenure_e2e::*;
use tenure_tokio::{AddressBook, Clock, Driver, FileStore, NodeConfig, SendError, Transport, View};
use tokio::sync::watch;
use tokio::time::Instant;

/// `std::time::Instant` as the core's time.
#[derive(Clone, Copy)]
struct StdClock(std::time::Instant);

impl Clock for StdClock {
    fn now(&self) -> tenure::Instant {
        tenure::Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
}

/// A blocking UDP socket as the transport.
struct BlockingUdp {
    socket: UdpSocket,
    peers: AddressBook,
}

impl Transport for BlockingUdp {
    fn send(&mut self, to: NodeId, packet: &[u8]) -> Result<(), SendError> {
        let addr = self.peers.address_of(to).ok_or(SendError::UnknownMember)?;
        self.socket
            .send_to(packet, addr)
            .map(|_| ())
            .map_err(|e| SendError::from_io(&e))
    }
}

enum Command {
    Release,
}

/// The thread-driven node, as the test sees it.
struct ThreadNode {
    clock: StdClock,
    view: watch::Receiver<View>,
    commands: mpsc::Sender<Command>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ThreadNode {
    fn start(config: NodeConfig) -> Self {
        let socket = UdpSocket::bind(config.listen).unwrap();
        let transport = BlockingUdp {
            socket: socket.try_clone().unwrap(),
            peers: config.peers.clone(),
        };
        let store = FileStore::open(&config.data_dir)
            .unwrap()
            .with_first_boot(config.first_boot);
        let clock = StdClock(std::time::Instant::now());
        let mut core = config.core.clone();
        core.seed = 0x5eed;
        let mut driver = Driver::start(core, store, transport, clock).unwrap();
        let view = driver.subscribe();
        let (commands, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let peers = config.peers;
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; MAX_SEALED_SIZE + 1];
            while !stopping.load(Ordering::Relaxed) {
                while let Ok(Command::Release) = rx.try_recv() {
                    let _ = driver.release();
                }
                // Sleep in the socket until the core's timer is due (at most 20 ms, to
                // notice commands and the stop flag).
                let now = clock.now();
                let wait = driver
                    .poll_timeout()
                    .map_or(20_000, |t| t.as_micros().saturating_sub(now.as_micros()))
                    .clamp(500, 20_000);
                socket
                    .set_read_timeout(Some(Duration::from_micros(wait)))
                    .unwrap();
                match socket.recv_from(&mut buf) {
                    Ok((len, from)) => driver
                        .handle_datagram(from, peers.member_at(from), &buf[..len])
                        .unwrap(),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => driver.metrics().recv_error(),
                }
                if driver.poll_timeout().is_some_and(|t| t <= clock.now()) {
                    driver.handle_timeout().unwrap();
                }
            }
            driver.stop();
        });
        ThreadNode {
            clock,
            view,
            commands,
            stop,
            thread: Some(thread),
        }
    }

    fn is_master_at(&self, t: Instant) -> bool {
        let at = t.into_std().saturating_duration_since(self.clock.0);
        self.view
            .borrow()
            .is_master_at(tenure::Instant::from_micros(at.as_micros() as u64))
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for ThreadNode {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_thread_driven_node_joins_tokio_nodes() {
    let _one = one_at_a_time();
    let dir = TempDir::new("blocking");
    let configs = configs(&dir, &candidates(3), LEASE);
    let mut plain = ThreadNode::start(configs[2].clone());
    let three = NodeId(3);
    runtime().block_on(async {
        let tokio_nodes = [start(&configs[0]), start(&configs[1])];
        // Samples all three at one instant; the thread node's view is read through its
        // own clock.
        let masters = |t: Instant| {
            let mut c = claimants(&tokio_nodes, t);
            if plain.is_master_at(t) {
                c.push(three);
            }
            assert!(c.len() <= 1, "two masters at once: {c:?}");
            c.first().copied()
        };
        let first = wait_for(liveness_bound(LEASE), || masters(Instant::now()))
            .await
            .expect("no master");

        // Move the role to the thread node (unless it has it already).
        if first != three {
            tokio_nodes[usize::from(first.0) - 1]
                .hand_over(three)
                .await
                .unwrap();
        }
        let got = wait_for(liveness_bound(LEASE), || {
            (masters(Instant::now()) == Some(three)).then_some(())
        })
        .await;
        assert!(got.is_some(), "the thread node never became master");
        // The tokio nodes follow it, and it renews (they answer its renewal rounds).
        let version = |h: &tenure_tokio::Handle| h.master().filter(|m| m.node == three);
        let seen = wait_for(liveness_bound(LEASE), || {
            tokio_nodes
                .iter()
                .all(|h| version(h).is_some())
                .then_some(())
        })
        .await;
        assert!(seen.is_some(), "the tokio nodes did not learn of node 3");
        let token = version(&tokio_nodes[0]).unwrap().token;
        let answered = |h: &tenure_tokio::Handle| h.counters().core.renews_answered;
        let a1 = answered(&tokio_nodes[0]);
        let renewed = wait_for(LEASE * 3, || {
            masters(Instant::now());
            (version(&tokio_nodes[0]).is_some_and(|m| m.token == token)
                && answered(&tokio_nodes[0]) >= a1 + 2)
                .then_some(())
        })
        .await;
        assert!(renewed.is_some(), "node 3 does not renew");

        // It releases; a tokio node takes over, without waiting for a lease.
        plain.commands.send(Command::Release).unwrap();
        let next = wait_for(liveness_bound(LEASE), || {
            masters(Instant::now()).filter(|m| *m != three)
        })
        .await
        .expect("no tokio master after the release");
        assert_ne!(next, three);
        for h in &tokio_nodes {
            h.shutdown().await.unwrap();
        }
    });
    plain.stop();
    assert!(!plain.view.borrow().running);
}

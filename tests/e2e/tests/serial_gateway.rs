//! Checks `docs/algorithm.md` §3 "The election state machine" (a master behind a serial
//! link renews, everyone follows) and §6 "Hostile networks: authentication and replay"
//! (authentication is end to end: the gateway never opens a relayed frame) for a member
//! behind a COBS-framed byte stream, relayed by the gateway (`tenure_tokio::gateway`),
//! without QEMU: node 3 runs the adapter's `Driver` on a plain thread and speaks the
//! firmware's link format (`to` u16 LE + sealed packet, COBS-framed) over a TCP
//! connection that gateway node 1 opens; node 2 is a plain UDP node that reaches node 3
//! at its proxy address.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tenure::NodeId;
use tenure_e2e::*;
use tenure_tokio::gateway::{envelope, SerialMember, BROADCAST};
use tenure_tokio::{Clock, Driver, FileStore, NodeConfig, SendError, Transport, View};
use tokio::sync::watch;

#[derive(Clone, Copy)]
struct StdClock(std::time::Instant);

impl Clock for StdClock {
    fn now(&self) -> tenure::Instant {
        tenure::Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
}

/// Writes enveloped COBS frames to the link (dropped while it is down).
struct Link(Arc<std::sync::Mutex<Option<TcpStream>>>);

impl Transport for Link {
    fn send(&mut self, to: NodeId, packet: &[u8]) -> Result<(), SendError> {
        let mut out = vec![0u8; 2 * tenure::MAX_SEALED_SIZE + 8];
        let n = tenure::frame(&envelope(to.0, packet), &mut out).map_err(|_| SendError::Other)?;
        let mut link = self.0.lock().unwrap();
        let stream = link.as_mut().ok_or(SendError::Unreachable)?;
        stream
            .write_all(&out[..n])
            .map_err(|e| SendError::from_io(&e))
    }
}

/// Node 3: accepts the gateway's connection, feeds frames for it to the driver.
struct SerialNode {
    view: watch::Receiver<View>,
    /// Set to drop the current connection (the gateway must reconnect).
    hang_up: Arc<AtomicBool>,
    /// Connections accepted so far.
    connections: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SerialNode {
    fn start(config: NodeConfig, listener: TcpListener) -> Self {
        let link = Arc::new(std::sync::Mutex::new(None::<TcpStream>));
        let clock = StdClock(std::time::Instant::now());
        let store = FileStore::open(&config.data_dir)
            .unwrap()
            .with_first_boot(config.first_boot);
        let mut driver =
            Driver::start(config.core.clone(), store, Link(Arc::clone(&link)), clock).unwrap();
        let view = driver.subscribe();
        let stop = Arc::new(AtomicBool::new(false));
        let hang_up = Arc::new(AtomicBool::new(false));
        let (stopping, hanging) = (Arc::clone(&stop), Arc::clone(&hang_up));
        let connections = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let accepted = Arc::clone(&connections);
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let mut reader = tenure::FrameReader::<1024>::new();
            let mut buf = [0u8; 4096];
            while !stopping.load(Ordering::Relaxed) {
                if hanging.swap(false, Ordering::Relaxed) {
                    *link.lock().unwrap() = None;
                }
                let reading = link
                    .lock()
                    .unwrap()
                    .as_ref()
                    .map(|s| s.try_clone().unwrap());
                match reading {
                    None => {
                        if let Ok((s, _)) = listener.accept() {
                            s.set_nonblocking(false).unwrap();
                            s.set_nodelay(true).unwrap();
                            *link.lock().unwrap() = Some(s);
                            accepted.fetch_add(1, Ordering::Relaxed);
                        } else {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                    Some(mut s) => {
                        s.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
                        match s.read(&mut buf) {
                            Ok(0) => *link.lock().unwrap() = None,
                            Ok(n) => {
                                for &b in &buf[..n] {
                                    let Some(Ok(payload)) = reader.push(b) else {
                                        continue;
                                    };
                                    let to = u16::from_le_bytes([payload[0], payload[1]]);
                                    assert!(
                                        to == 3 || to == BROADCAST,
                                        "frame for {to} on 3's link"
                                    );
                                    // Like the firmware: the sender is the one the
                                    // authenticated header names.
                                    driver.handle_frame("link", &payload[2..]).unwrap();
                                }
                            }
                            Err(_) => {}
                        }
                    }
                }
                if driver.poll_timeout().is_some_and(|t| t <= clock.now()) {
                    driver.handle_timeout().unwrap();
                }
            }
            driver.stop();
        });
        SerialNode {
            view,
            hang_up,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    fn master(&self) -> Option<NodeId> {
        self.view.borrow().master
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for SerialNode {
    fn drop(&mut self) {
        self.finish();
    }
}

#[test]
fn a_gateway_relays_a_serial_member() {
    let _one = one_at_a_time();
    let dir = TempDir::new("gateway");
    let mut configs = configs(&dir, &candidates(3), LEASE);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    configs[0].serial = vec![SerialMember {
        id: NodeId(3),
        stream: listener.local_addr().unwrap(),
    }];
    let mut three = SerialNode::start(configs[2].clone(), listener);
    runtime().block_on(async {
        let nodes = [start(&configs[0]), start(&configs[1])];
        let agreed = |nodes: &[tenure_tokio::Handle; 2], three: &SerialNode| {
            let m = nodes[0].master().map(|m| m.node)?;
            (nodes[1].master().map(|m| m.node) == Some(m) && three.master() == Some(m)).then_some(m)
        };
        let first = wait_for(liveness_bound(LEASE), || agreed(&nodes, &three))
            .await
            .expect("the three nodes never agreed on a master");

        // Move the role to the serial member: node 2 must follow it through the proxy.
        if first != NodeId(3) {
            nodes[usize::from(first.0) - 1]
                .hand_over(NodeId(3))
                .await
                .unwrap();
        }
        let on_three = wait_for(liveness_bound(LEASE), || {
            (agreed(&nodes, &three) == Some(NodeId(3))).then_some(())
        })
        .await;
        assert!(on_three.is_some(), "the serial member never led everyone");
        // Node 2 answers node 3's renewal rounds (lease mode: renewals move no version).
        let answered = |h: &tenure_tokio::Handle| h.counters().core.renews_answered;
        let a1 = answered(&nodes[1]);
        let renewed = wait_for(LEASE * 3, || {
            (nodes[1].master().is_some_and(|m| m.node == NodeId(3))
                && answered(&nodes[1]) >= a1 + 2)
                .then_some(())
        })
        .await;
        assert!(renewed.is_some(), "node 2 does not see node 3's renewals");

        // The link drops (QEMU restarting): the gateway reconnects, all agree again.
        three.hang_up.store(true, Ordering::Relaxed);
        let back = wait_for(Duration::from_secs(5), || {
            (three.connections.load(Ordering::Relaxed) >= 2).then_some(())
        })
        .await;
        assert!(back.is_some(), "the gateway did not reconnect");
        // Renewals flow again, and everyone names one master (3, or another after the
        // gap let its lease lapse).
        let a2 = answered(&nodes[1]);
        let again = wait_for(liveness_bound(LEASE) * 2, || {
            agreed(&nodes, &three).filter(|_| answered(&nodes[1]) >= a2 + 2)
        })
        .await;
        assert!(again.is_some(), "no agreement after the link came back");
        for n in &nodes {
            n.shutdown().await.unwrap();
        }
    });
    three.finish();
}

//! Checks `docs/algorithm.md` §1 "The promise" and the failover bound of
//! `design/LEASES.md` under an asymmetric cut, end to end: three real tokio nodes on
//! 127.0.0.1 talk through a forwarding proxy the test controls, and the test cuts the
//! master's inbound traffic: it can still send (its `Renew`s reach the others, who answer
//! and guard it), but hears nothing (every `Renewed`, every vote, is dropped).
//!
//! The master's renewal rounds then fail; it begins none after its try window, so the
//! others' guards run out a lease after the last `Renew` they answered, and they elect a
//! new master: about `lease + try_window + round_timeout` after the cut. The test
//! measures that time over several runs and reports it; it asserts only a generous bound
//! (three leases) and, at every sample (each millisecond, one instant for all nodes),
//! never two masters.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tenure::{Auth, Member, NodeId};
use tenure_e2e::TempDir;
use tenure_tokio::{Handle, NodeConfig};
use tokio::time::Instant;

const NODES: usize = 3;
/// The core's default lease; `try_window` (a third of it) and `round_timeout` (50 ms) are
/// the defaults too.
const LEASE: Duration = Duration::from_secs(1);
/// Cuts measured.
const RUNS: usize = 6;
/// No cut: every frame is forwarded.
const NONE: usize = usize::MAX;
/// The whole test must end within this; every loop is bounded by it too.
const TEST_BOUND: Duration = Duration::from_secs(90);

/// Node `j` believes member `i` lives at `sockets[j][i]`; what arrives there is forwarded
/// to `i`'s own socket from `sockets[i][j]` (where `i` believes `j` lives), unless `i` is
/// the node whose inbound traffic is cut. Stops (threads joined) on drop, also when the
/// test fails.
struct Proxy {
    listen: Vec<SocketAddr>,
    sockets: Vec<Vec<Option<Arc<UdpSocket>>>>,
    /// The node (index) that hears nothing, or [`NONE`].
    cut: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Proxy {
    fn start(listen: Vec<SocketAddr>) -> Self {
        let sockets: Vec<Vec<Option<Arc<UdpSocket>>>> = (0..NODES)
            .map(|j| {
                (0..NODES)
                    .map(|i| {
                        (i != j).then(|| {
                            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                            Arc::new(s)
                        })
                    })
                    .collect()
            })
            .collect();
        let mut proxy = Proxy {
            listen,
            sockets,
            cut: Arc::new(AtomicUsize::new(NONE)),
            dropped: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
        };
        for j in 0..NODES {
            for i in (0..NODES).filter(|i| *i != j) {
                let inbound = Arc::clone(proxy.sockets[j][i].as_ref().unwrap());
                let outbound = Arc::clone(proxy.sockets[i][j].as_ref().unwrap());
                let (from_addr, to_addr) = (proxy.listen[j], proxy.listen[i]);
                let cut = Arc::clone(&proxy.cut);
                let dropped = Arc::clone(&proxy.dropped);
                let stop = Arc::clone(&proxy.stop);
                proxy.threads.push(std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    let end = std::time::Instant::now() + TEST_BOUND;
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < end {
                        let Ok((n, src)) = inbound.recv_from(&mut buf) else {
                            continue; // read timeout: look at `stop` again
                        };
                        if src != from_addr {
                            continue;
                        }
                        if cut.load(Ordering::Relaxed) == i {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let _ = outbound.send_to(&buf[..n], to_addr);
                    }
                }));
            }
        }
        proxy
    }

    fn config(&self, dir: &TempDir, j: usize) -> NodeConfig {
        let pairs: Vec<(Member, SocketAddr)> = (0..NODES)
            .map(|i| {
                let addr = if i == j {
                    self.listen[j]
                } else {
                    self.sockets[j][i].as_ref().unwrap().local_addr().unwrap()
                };
                (Member::candidate(i as u16 + 1), addr)
            })
            .collect();
        let mut c = NodeConfig::new(
            0x7e57,
            NodeId(j as u16 + 1),
            &pairs,
            dir.0.join(format!("node-{}", j + 1)),
        )
        .unwrap();
        c.core.lease = tenure_tokio::clock::to_core(LEASE);
        c.core.auth = Auth::key([0x3c; tenure::auth::KEY_LEN]);
        c.first_boot = true;
        c.validate().unwrap();
        c
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Samples every node at one instant: the claimants (asserted never two).
fn sample(handles: &[Handle]) -> Vec<usize> {
    let t = Instant::now();
    let c: Vec<usize> = (0..NODES).filter(|k| handles[*k].is_master_at(t)).collect();
    assert!(c.len() <= 1, "two masters at once: nodes {c:?} (index)");
    c
}

/// Waits, sampling every millisecond, until one node has claimed the role for a whole
/// lease and every node names it; returns it.
async fn stable_master(handles: &[Handle], end: Instant) -> usize {
    let mut since: Option<(usize, Instant)> = None;
    loop {
        let now = Instant::now();
        assert!(now < end, "no stable master in time");
        let claimants = sample(handles);
        match (&claimants[..], since) {
            (&[m], Some((s, at))) if s == m => {
                let agreed = handles
                    .iter()
                    .all(|h| h.master().map(|v| v.node) == Some(NodeId(m as u16 + 1)));
                if agreed && now - at >= LEASE {
                    return m;
                }
            }
            (&[m], _) => since = Some((m, now)),
            _ => since = None,
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[test]
fn a_master_that_hears_nothing_is_replaced_within_lease_plus_try_window() {
    let started = std::time::Instant::now();
    let dir = TempDir::new("asymmetric");
    let runtime = tenure_e2e::runtime();
    runtime.block_on(async {
        let own: Vec<UdpSocket> = (0..NODES)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let proxy = Proxy::start(own.iter().map(|s| s.local_addr().unwrap()).collect());
        let configs: Vec<NodeConfig> = (0..NODES).map(|j| proxy.config(&dir, j)).collect();
        let core = &configs[0].core;
        let bound = core.lease + core.try_window() + core.round_timeout;
        let bound = Duration::from_micros(bound.as_micros());
        let handles: Vec<Handle> = own
            .into_iter()
            .zip(&configs)
            .map(|(s, c)| {
                s.set_nonblocking(true).unwrap();
                tenure_tokio::start_on(c.clone(), tokio::net::UdpSocket::from_std(s).unwrap())
                    .unwrap()
            })
            .collect();
        let end = Instant::now() + TEST_BOUND - Duration::from_secs(5);
        let mut failovers: Vec<f64> = Vec::new();
        let mut step_downs: Vec<f64> = Vec::new();
        for run in 0..RUNS {
            let m = stable_master(&handles, end).await;
            proxy.cut.store(m, Ordering::Relaxed);
            let cut_at = Instant::now();
            let mut stepped_down: Option<Duration> = None;
            // Until another node claims the role: at most three leases.
            let (new, took) = loop {
                let now = Instant::now();
                let c = sample(&handles);
                if stepped_down.is_none() && !c.contains(&m) {
                    stepped_down = Some(now - cut_at);
                }
                if let [k] = c[..] {
                    if k != m {
                        break (k, now - cut_at);
                    }
                }
                assert!(
                    now - cut_at <= 3 * LEASE,
                    "run {run}: no new master {:?} after cutting node {}'s inbound traffic",
                    now - cut_at,
                    m + 1
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            let stepped_down = stepped_down.unwrap_or(took);
            println!(
                "run {run}: cut node {}'s inbound; it stopped claiming after {:.0} ms; node {} \
                 master after {:.0} ms ({:.2} leases)",
                m + 1,
                stepped_down.as_secs_f64() * 1e3,
                new + 1,
                took.as_secs_f64() * 1e3,
                took.as_secs_f64() / LEASE.as_secs_f64()
            );
            failovers.push(took.as_secs_f64() * 1e3);
            step_downs.push(stepped_down.as_secs_f64() * 1e3);
            // Heal, and let the cut node rejoin before the next run.
            proxy.cut.store(NONE, Ordering::Relaxed);
        }
        let mut sorted = failovers.clone();
        sorted.sort_by(f64::total_cmp);
        let lease_ms = LEASE.as_secs_f64() * 1e3;
        let (p50, max) = (percentile(&sorted, 0.5), sorted[sorted.len() - 1]);
        println!(
            "asymmetric cut, {RUNS} runs, lease {lease_ms:.0} ms: new master after p50 {p50:.0} ms \
             ({:.2} leases), max {max:.0} ms ({:.2} leases); lease + try_window + round_timeout \
             = {:.0} ms ({:.2} leases); the cut master stepped down after at most {:.0} ms; \
             {} frames to it dropped",
            p50 / lease_ms,
            max / lease_ms,
            bound.as_secs_f64() * 1e3,
            bound.as_secs_f64() * 1e3 / lease_ms,
            step_downs.iter().copied().fold(0.0, f64::max),
            proxy.dropped.load(Ordering::Relaxed)
        );
        for h in &handles {
            assert_eq!(h.counters().core.clock_regressions, 0);
            h.shutdown().await.unwrap();
        }
        drop(proxy);
    });
    assert!(
        started.elapsed() < TEST_BOUND,
        "took {:?}",
        started.elapsed()
    );
}

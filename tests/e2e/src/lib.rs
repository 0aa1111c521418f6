//! Helpers for Tenure's end-to-end tests (the files in `tests/`): clusters of real tokio
//! nodes on 127.0.0.1 with real data directories, and ([`netns`], Linux) real networks of
//! namespaces with nftables faults for `tenure node` processes. Safety is checked exactly;
//! liveness with generous bounds.
//!
//! Each test file starts with the section of `docs/algorithm.md` it checks.

#[cfg(target_os = "linux")]
pub mod netns;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tenure::{Member, NodeId};
use tenure_tokio::{Handle, NodeConfig};
use tokio::time::Instant;

/// The lease used by most tests: short, so the suite stays fast.
pub const LEASE: Duration = Duration::from_millis(400);

/// Timing-sensitive tests of one binary run one at a time (the machine is small): hold
/// the guard for the whole test.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A multi-threaded tokio runtime with two workers (the machine has two cores).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory name for test `name`, unique per process and instant (the
    /// directory itself is created by whoever uses it).
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tenure-test-{name}-{}-{}",
            std::process::id(),
            tenure_tokio::clock::host_monotonic_ns()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Free loopback UDP addresses (bound once, then released).
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let sockets: Vec<_> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets.iter().map(|s| s.local_addr().unwrap()).collect()
}

/// Configurations for `members` (all on fresh loopback ports), with `lease`, allowed to
/// start afresh ([`NodeConfig::first_boot`]).
pub fn configs(dir: &TempDir, members: &[Member], lease: Duration) -> Vec<NodeConfig> {
    let addrs = free_addrs(members.len());
    let pairs: Vec<(Member, SocketAddr)> = members.iter().copied().zip(addrs).collect();
    let cluster_id = 0x7e57;
    members
        .iter()
        .map(|m| {
            let mut c = NodeConfig::new(
                cluster_id,
                m.id,
                &pairs,
                dir.0.join(format!("node-{}", m.id)),
            )
            .unwrap();
            c.core.lease = tenure_tokio::clock::to_core(lease);
            // Fresh directories: the nodes' first start.
            c.first_boot = true;
            c.validate().unwrap();
            c
        })
        .collect()
}

/// Members 1..=n, all candidates.
pub fn candidates(n: u16) -> Vec<Member> {
    (1..=n).map(Member::candidate).collect()
}

/// Starts a node on its configured address (must run inside a runtime).
pub fn start(config: &NodeConfig) -> Handle {
    let socket = std::net::UdpSocket::bind(config.listen).unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = tokio::net::UdpSocket::from_std(socket).unwrap();
    tenure_tokio::start_on(config.clone(), socket).unwrap()
}

/// The nodes claiming the role at `t` (one instant of the shared monotonic clock).
pub fn claimants<'a>(handles: impl IntoIterator<Item = &'a Handle>, t: Instant) -> Vec<NodeId> {
    handles
        .into_iter()
        .filter(|h| h.is_master_at(t))
        .map(|h| h.id())
        .collect()
}

/// Polls `f` every millisecond until it returns `Some`, or `timeout` passes.
pub async fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits for one node to be master; checks that never two claim at once meanwhile.
pub async fn wait_master(handles: &[&Handle], timeout: Duration) -> NodeId {
    wait_for(timeout, || {
        let c = claimants(handles.iter().copied(), Instant::now());
        assert!(c.len() <= 1, "two masters at once: {c:?}");
        c.first().copied()
    })
    .await
    .unwrap_or_else(|| panic!("no master within {timeout:?}"))
}

/// A bound on election time that no healthy run should approach: a lease for a stale
/// view to run out, plenty of Paxos rounds, and slack for a loaded machine.
pub fn liveness_bound(lease: Duration) -> Duration {
    lease + Duration::from_secs(3)
}

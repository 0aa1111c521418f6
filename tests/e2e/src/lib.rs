//! Helpers for Tenure's end-to-end tests (the files in `tests/`): clusters of real tokio
//! nodes on 127.0.0.1 with real data directories, and ([`netns`], Linux) real networks of
//! namespaces with nftables faults for `tenure node` processes. Safety is checked exactly;
//! liveness with generous bounds.
//!
//! Each test file starts with the section of `docs/algorithm.md` it checks.

#[cfg(target_os = "linux")]
pub mod netns;

/// Terms of `tenure node` processes from their logs, and the overlap check (exact: a
/// node logs a term's span before its view claims it).
pub mod terms {
    use std::collections::BTreeMap;

    /// One term of one node, from its log (exact; see the module docs).
    #[derive(Clone, Copy, Debug)]
    pub struct Span {
        /// The node (its id).
        pub node: usize,
        /// The term's fencing token.
        pub token: u64,
        /// When the node learned it was master (`CLOCK_BOOTTIME`, ns).
        pub begin: u64,
        /// The last logged end.
        pub end: u64,
        /// When the view stopped claiming it, if logged.
        pub over: Option<u64>,
    }

    impl Span {
        /// The latest instant the node may have claimed the term: the logged end, cut by an
        /// early end and by the death of its process.
        ///
        /// `deaths[id - 1]` are the instants node `id`'s processes were killed.
        pub fn until(&self, deaths: &[Vec<u64>]) -> u64 {
            let death = deaths[self.node - 1]
                .iter()
                .copied()
                .filter(|&d| d >= self.begin)
                .min()
                .unwrap_or(u64::MAX);
            self.end.min(self.over.unwrap_or(u64::MAX)).min(death)
        }
    }

    fn log_field(line: &str, name: &str) -> Option<u64> {
        line.split(&format!(" {name}="))
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// The spans in node `i`'s log (`tenure::term` lines at debug level, see
    /// `tenure_tokio::driver::TERM_LOG`), keyed by begin.
    pub fn parse_log(i: usize, text: &str) -> BTreeMap<u64, Span> {
        let mut spans: BTreeMap<u64, Span> = BTreeMap::new();
        for line in text.lines().filter(|l| l.contains("tenure::term")) {
            let (Some(token), Some(begin), Some(end)) = (
                log_field(line, "token"),
                log_field(line, "begin_ns"),
                log_field(line, "end_ns"),
            ) else {
                continue;
            };
            let span = spans.entry(begin).or_insert(Span {
                node: i,
                token,
                begin,
                end,
                over: None,
            });
            assert_eq!(span.token, token, "node {i}: one term, two tokens: {line}");
            if line.contains("term over") {
                span.over = log_field(line, "at_ns");
            } else {
                span.end = span.end.max(end);
            }
        }
        spans
    }

    /// Pairs of terms of different nodes whose claims (`spans[k]` until `until[k]`) share
    /// an instant; `spans` sorted by begin. Each pair is printed when `print`.
    pub fn count_overlaps(spans: &[Span], until: &[u64], print: bool) -> usize {
        let mut n = 0;
        for a in 0..spans.len() {
            for b in a + 1..spans.len() {
                // Sorted by begin: they overlap when b begins before a's claim ends (and
                // neither claim is empty).
                let (x, y) = (&spans[a], &spans[b]);
                if x.node != y.node
                    && y.begin < until[a]
                    && x.begin < until[a]
                    && y.begin < until[b]
                {
                    n += 1;
                    if print {
                        eprintln!(
                            "OVERLAP: node {} token {} [{}, {}] and node {} token {} [{}, {}]",
                            x.node, x.token, x.begin, until[a], y.node, y.token, y.begin, until[b]
                        );
                    }
                }
            }
        }
        n
    }

    /// [`count_overlaps`], printing each.
    pub fn overlaps(spans: &[Span], until: &[u64]) -> usize {
        count_overlaps(spans, until, true)
    }
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tenure::{Member, NodeId};
use tenure_tokio::{Handle, NodeConfig};
use tokio::time::Instant;

/// The `tenure` binary, built (once per test binary) by the same cargo and profile as
/// the calling test, so it is never a stale one.
pub fn tenure_binary() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        // A test runs as <target>/<profile>/deps/<name>-<hash>.
        let exe = std::env::current_exe().expect("test executable");
        let profile = exe
            .parent()
            .and_then(std::path::Path::parent)
            .expect("target profile directory")
            .to_path_buf();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("workspace root")
            .to_path_buf();
        let mut build =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .current_dir(root)
            .args(["build", "-p", "tenure-tokio", "--bin", "tenure"]);
        if profile.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo to build tenure");
        assert!(status.success(), "building the tenure binary failed");
        let bin = profile.join("tenure");
        assert!(bin.is_file(), "no tenure binary at {}", bin.display());
        bin
    })
}

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

//! Checks `docs/algorithm.md` §1 "The promise" (never two masters at one instant, fencing
//! tokens only grow) on a real network: five `tenure node` processes, each in its own
//! network namespace (`tenure_e2e::netns`), configured by `tenure init-config
//! --addresses`, under kill -9, isolation, a deaf master, minority and majority splits,
//! SIGINT releases, at 0 % and 20 % random loss.
//!
//! How the terms are known exactly: every node logs (`RUST_LOG=tenure::term=debug`) each
//! term's begin and each extension on the host's `CLOCK_BOOTTIME` *before* its view claims
//! the span, and each early end after the view stopped claiming it; every namespace
//! shares that clock. A node's claim is therefore inside `[begin_ns, min(last logged
//! end_ns, over at_ns, the instant its process was reaped)]`: a killed process cannot have
//! claimed a later end than it logged, nor anything after it was reaped. `/status` (polled
//! every 10 ms inside each namespace) must agree: every term it reports is in the log,
//! with a logged end at least as late. Overlaps are counted between those spans of
//! different nodes; the failover of a fault is the begin of the first later term of
//! another node, minus the fault's instant (taken just before the fault is applied).
//!
//! Overlaps, fencing-token regressions and a token held by two nodes fail the test;
//! failover times are printed, never asserted. The short version (default) runs every
//! scenario a few times (CI: under 5 minutes); `TENURE_NETNS_LONG=1` runs the full one
//! (kill -9 every 5 s for 2 minutes, 10 repetitions of the others):
//!
//! ```sh
//! TENURE_NETNS_LONG=1 cargo test --release -p tenure-e2e --test netns -- --nocapture
//! ```
//!
//! Needs root, `ip` and `nft`; skipped with a message otherwise (a failure when `CI` is set).

#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenure_e2e::netns::{skip_or_fail, Faults, Lab};
use tenure_e2e::terms::{count_overlaps, overlaps, parse_log, Span};
use tenure_e2e::TempDir;
use tenure_tokio::clock::host_boottime_ns;

const NODES: usize = 5;
const LEASE: Duration = Duration::from_millis(500);
const PORT: u16 = 7000;
/// Each node's admin port, on 127.0.0.1 inside its own namespace.
const ADMIN: u16 = 9000;
const POLL: Duration = Duration::from_millis(10);
/// The longest wait for a master, anywhere (a bound on the loop, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(15);

fn now_ns() -> u64 {
    host_boottime_ns()
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> std::time::SystemTime {
    let mut t = std::time::SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return t;
    };
    for e in entries.flatten() {
        let path = e.path();
        let m = if path.is_dir() {
            newest(&path)
        } else {
            e.metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
        };
        t = t.max(m);
    }
    t
}

/// The `tenure` binary of this profile (`TENURE_BIN` overrides it). `cargo test
/// --workspace` builds it; when it is missing or older than the sources, it is built
/// here (cargo does not hold its lock while tests run).
fn tenure_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TENURE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("tenure");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sources = ["core/src", "std-adapter/src", "Cargo.lock"]
        .iter()
        .map(|p| {
            let p = root.join(p);
            if p.is_dir() {
                newest(&p)
            } else {
                std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
            }
        })
        .max()
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    if built.is_none_or(|b| b < sources) {
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.args(["build", "-p", "tenure-tokio", "--bin", "tenure"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo build for the tenure binary");
        assert!(status.success(), "cargo build of the tenure binary failed");
    }
    assert!(bin.is_file(), "no binary at {}", bin.display());
    bin
}

/// One `/status` reading of one node.
#[derive(Clone, Copy, Debug)]
struct Sample {
    node: usize,
    /// The node's `boottime_ns`: when the view was read.
    at: u64,
    master: Option<usize>,
    token: Option<u64>,
    begin: Option<u64>,
    end: Option<u64>,
}

/// The raw text of field `name` of a flat JSON object.
fn json_field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let rest = body.split(&format!("\"{name}\":")).nth(1)?;
    rest.split([',', '}']).next().map(str::trim)
}

fn json_u64(body: &str, name: &str) -> Option<u64> {
    json_field(body, name)?.parse().ok()
}

fn parse_status(node: usize, body: &str) -> Option<Sample> {
    Some(Sample {
        node,
        at: json_u64(body, "boottime_ns")?,
        master: json_u64(body, "master").and_then(|m| usize::try_from(m).ok()),
        token: json_u64(body, "token"),
        begin: json_u64(body, "term_begin_ns"),
        end: json_u64(body, "term_end_ns"),
    })
}

fn get_status(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    s.write_all(b"GET /status HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// Every sample, and the latest per node (`None` while the node does not answer).
#[derive(Default)]
struct Polled {
    all: Vec<Sample>,
    latest: [Option<Sample>; NODES],
}

/// A process of this test, killed (SIGKILL) and reaped on drop if still running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fault or the end of one, at an instant of `CLOCK_BOOTTIME`.
#[derive(Clone, Copy, Debug)]
enum Mark {
    /// A fault hit the master `old` at `at`.
    Fault { at: u64, old: usize },
    /// The fault was cleared (or the victim restarted) at `at`.
    Heal { at: u64 },
}

impl Mark {
    fn at(&self) -> u64 {
        match *self {
            Mark::Fault { at, .. } | Mark::Heal { at } => at,
        }
    }
}

/// One scenario's record.
struct Scenario {
    name: String,
    loss: u8,
    start: u64,
    end: u64,
    marks: Vec<Mark>,
    /// Repetitions that found no master to act on within [`PATIENCE`].
    no_master: usize,
}

struct Cluster {
    procs: Vec<Option<Proc>>,
    /// Instants at which each node's processes were reaped.
    deaths: Vec<Vec<u64>>,
    stop: Arc<AtomicBool>,
    pollers: Vec<std::thread::JoinHandle<()>>,
    polled: Arc<Mutex<Polled>>,
    bin: PathBuf,
    cfg: PathBuf,
    kills: usize,
    lab: Arc<Lab>,
    _dir: TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes first, then the pollers; the lab (namespaces) goes after them.
        self.procs.clear();
        self.stop.store(true, Ordering::Relaxed);
        for p in self.pollers.drain(..) {
            let _ = p.join();
        }
    }
}

impl Cluster {
    fn new() -> Cluster {
        let bin = tenure_bin();
        let dir = TempDir::new("netns");
        let cfg = dir.0.join("cfg");
        let lab = Arc::new(Lab::new(NODES));
        let addresses: Vec<String> = (1..=NODES)
            .map(|i| format!("{}:{PORT}", lab.addr(i)))
            .collect();
        let out = Command::new(&bin)
            .args(["init-config", "--addresses", &addresses.join(",")])
            .args(["--lease", &format!("{}ms", LEASE.as_millis())])
            .arg("--out")
            .arg(&cfg)
            .output()
            .expect("run tenure init-config");
        assert!(out.status.success(), "init-config: {out:?}");
        let stop = Arc::new(AtomicBool::new(false));
        let polled = Arc::new(Mutex::new(Polled::default()));
        let pollers = (1..=NODES)
            .map(|i| {
                let (lab, stop, polled) =
                    (Arc::clone(&lab), Arc::clone(&stop), Arc::clone(&polled));
                std::thread::spawn(move || poll(&lab, i, &stop, &polled))
            })
            .collect();
        let mut c = Cluster {
            procs: (0..NODES).map(|_| None).collect(),
            deaths: vec![Vec::new(); NODES],
            stop,
            pollers,
            polled,
            bin,
            cfg,
            kills: 0,
            lab,
            _dir: dir,
        };
        for i in 1..=NODES {
            c.start(i);
        }
        c
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.cfg.join(format!("node{i}.log"))
    }

    /// Starts node `i` from its configuration and data directory, logging its terms.
    fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("open the node's log");
        let child = self
            .lab
            .command(&self.lab.node_ns(i), &self.bin)
            .arg("node")
            .arg("--config")
            .arg(self.cfg.join(format!("node{i}.toml")))
            .args(["--admin", &format!("127.0.0.1:{ADMIN}")])
            .env("RUST_LOG", "warn,tenure::term=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tenure node");
        self.procs[i - 1] = Some(Proc(child));
    }

    /// Sends `signal` to node `i` and reaps it (SIGKILL after 5 s if it has not exited):
    /// returns the instant after the reap.
    fn stop_node(&mut self, i: usize, signal: rustix::process::Signal) -> u64 {
        let Some(mut p) = self.procs[i - 1].take() else {
            return now_ns();
        };
        let pid = i32::try_from(p.0.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .expect("a child's pid");
        let _ = rustix::process::kill_process(pid, signal);
        let limit = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(_)) = p.0.try_wait() {
                break;
            }
            if std::time::Instant::now() > limit {
                let _ = p.0.kill();
                let _ = p.0.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let at = now_ns();
        self.deaths[i - 1].push(at);
        std::mem::forget(p); // reaped already
        at
    }

    /// The master now per the latest readings: a node whose latest (recent) reading says
    /// it is master with a term that has not ended.
    fn master(&self) -> Option<usize> {
        let t = now_ns();
        let polled = self.polled.lock().unwrap();
        polled
            .latest
            .iter()
            .flatten()
            .find(|s| {
                s.master == Some(s.node)
                    && s.end.is_some_and(|e| e > t)
                    && t.saturating_sub(s.at) < ns(POLL * 20)
            })
            .map(|s| s.node)
    }

    /// Waits for a master other than `not`, that every running node names: `None` after
    /// [`PATIENCE`].
    fn wait_master(&self, not: Option<usize>, all_agree: bool) -> Option<usize> {
        let limit = std::time::Instant::now() + PATIENCE;
        while std::time::Instant::now() < limit {
            if let Some(m) = self.master().filter(|&m| Some(m) != not) {
                let agreed = !all_agree || {
                    let polled = self.polled.lock().unwrap();
                    (1..=NODES).all(|i| {
                        self.procs[i - 1].is_none()
                            || polled.latest[i - 1].is_some_and(|s| s.master == Some(m))
                    })
                };
                if agreed {
                    return Some(m);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }
}

/// Polls node `i`'s `/status` every [`POLL`] from a thread inside its namespace.
fn poll(lab: &Lab, i: usize, stop: &AtomicBool, polled: &Mutex<Polled>) {
    lab.enter(&lab.node_ns(i))
        .expect("enter the node's namespace");
    let addr = SocketAddr::from(([127, 0, 0, 1], ADMIN));
    while !stop.load(Ordering::Relaxed) {
        let sample = get_status(addr).and_then(|b| parse_status(i, &b));
        {
            let mut p = polled.lock().unwrap();
            p.latest[i - 1] = sample;
            if let Some(s) = sample {
                p.all.push(s);
            }
        }
        std::thread::sleep(POLL);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No fault (only the scenario's loss) for a while: the base rate of lapses.
    Quiet,
    Kill,
    Isolate,
    Deaf,
    /// The master and one other node on the minority side.
    SplitMinority,
    /// The master and two others on the majority side.
    SplitMajority,
    Sigint,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Quiet => "no-fault",
            Kind::Kill => "kill-9",
            Kind::Isolate => "isolated-master",
            Kind::Deaf => "deaf-master",
            Kind::SplitMinority => "split-master-in-minority",
            Kind::SplitMajority => "split-master-in-majority",
            Kind::Sigint => "sigint-release",
        }
    }
}

/// Other nodes than `m`, in id order.
fn others(m: usize) -> Vec<usize> {
    (1..=NODES).filter(|&i| i != m).collect()
}

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// Runs scenario `kind` at `loss` % for `reps` repetitions (for kills: every 5 s for
/// `kill_for`).
fn run_scenario(
    c: &mut Cluster,
    kind: Kind,
    loss: u8,
    reps: usize,
    kill_for: Duration,
) -> Scenario {
    let base = Faults::loss(loss);
    c.lab.set_faults(&base);
    let mut sc = Scenario {
        name: kind.name().to_string(),
        loss,
        start: 0,
        end: 0,
        marks: Vec::new(),
        no_master: 0,
    };
    if c.wait_master(None, true).is_none() {
        sc.no_master += 1;
    }
    sleep(LEASE / 2);
    sc.start = now_ns();
    let began = std::time::Instant::now();
    let mut rep = 0;
    loop {
        let next = began + Duration::from_secs(5) * u32::try_from(rep + 1).unwrap_or(u32::MAX);
        let done = match kind {
            Kind::Kill => began.elapsed() >= kill_for,
            Kind::Quiet => true,
            _ => rep >= reps,
        };
        if kind == Kind::Quiet {
            sleep(kill_for / 2);
        }
        if done {
            break;
        }
        rep += 1;
        let Some(m) = c.wait_master(None, true) else {
            sc.no_master += 1;
            continue;
        };
        match kind {
            Kind::Quiet => {} // ends above, before any repetition
            Kind::Kill | Kind::Sigint => {
                let at = now_ns();
                let signal = if kind == Kind::Kill {
                    c.kills += 1;
                    rustix::process::Signal::KILL
                } else {
                    rustix::process::Signal::INT
                };
                c.stop_node(m, signal);
                sc.marks.push(Mark::Fault { at, old: m });
                let _ = c.wait_master(Some(m), false);
                c.start(m);
                sc.marks.push(Mark::Heal { at: now_ns() });
            }
            Kind::Isolate | Kind::Deaf | Kind::SplitMinority | Kind::SplitMajority => {
                let o = others(m);
                let faults = match kind {
                    Kind::Isolate => base.clone().isolate(m, NODES),
                    Kind::Deaf => base.clone().deaf(m),
                    Kind::SplitMinority => base.clone().split(&[m, o[rep % 4]], NODES),
                    _ => base
                        .clone()
                        .split(&[m, o[rep % 4], o[(rep + 1) % 4]], NODES),
                };
                let at = now_ns();
                c.lab.set_faults(&faults);
                sc.marks.push(Mark::Fault { at, old: m });
                if kind == Kind::SplitMajority {
                    // The master keeps a quorum: nothing should move. Watch two leases.
                    sleep(LEASE * 2);
                } else {
                    let _ = c.wait_master(Some(m), false);
                    sleep(LEASE); // the new master renews meanwhile
                }
                let at = now_ns();
                c.lab.set_faults(&base);
                sc.marks.push(Mark::Heal { at });
            }
        }
        // Let the cluster settle (the healed node hears the master, renewals go on).
        sleep(LEASE * 2);
        if kind == Kind::Kill {
            let t = std::time::Instant::now();
            if next > t {
                sleep(next - t);
            }
        }
    }
    sc.end = now_ns();
    c.lab.set_faults(&Faults::none());
    sc
}

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The gaps (instants with no claimed term) inside `[from, to]`, from merged spans.
fn gaps(intervals: &[(u64, u64)], from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = intervals
        .iter()
        .copied()
        .filter(|&(b, e)| e > from && b < to)
        .collect();
    iv.sort_unstable();
    let mut out = Vec::new();
    let mut covered = from;
    for (b, e) in iv {
        if b > covered {
            out.push((covered, b));
        }
        covered = covered.max(e);
    }
    if covered < to {
        out.push((covered, to));
    }
    out
}

fn no_deaths() -> Vec<Vec<u64>> {
    vec![Vec::new(); NODES]
}

/// Fencing-token regressions: a later term (`spans` sorted by begin) with a lower token,
/// or another node's term with the same one; a node's view (its samples in time order)
/// going back to a lower token.
fn token_regressions(spans: &[Span], samples: &[Sample], print: bool) -> usize {
    let mut n = 0;
    for w in spans.windows(2) {
        if w[1].token < w[0].token || (w[1].token == w[0].token && w[1].node != w[0].node) {
            n += 1;
            if print {
                eprintln!("TOKEN REGRESSION: {:?} then {:?}", w[0], w[1]);
            }
        }
    }
    let mut last_seen: BTreeMap<usize, u64> = BTreeMap::new();
    for s in samples {
        if let Some(t) = s.token {
            let last = last_seen.entry(s.node).or_insert(0);
            if t < *last {
                n += 1;
                if print {
                    eprintln!(
                        "TOKEN REGRESSION in node {}'s view: {t} after {last}",
                        s.node
                    );
                }
            }
            *last = (*last).max(t);
        }
    }
    n
}

/// Fencing tokens held by two nodes: in the terms, or as the master any view names
/// with that token.
fn two_holders(spans: &[Span], samples: &[Sample], print: bool) -> usize {
    let mut holders: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    for s in spans {
        holders.entry(s.token).or_default().insert(s.node);
    }
    for s in samples {
        if let (Some(t), Some(m)) = (s.token, s.master) {
            holders.entry(t).or_default().insert(m);
        }
    }
    let two: Vec<_> = holders.iter().filter(|(_, h)| h.len() > 1).collect();
    for (t, h) in two.iter().filter(|_| print) {
        eprintln!("TWO HOLDERS of token {t}: nodes {h:?}");
    }
    two.len()
}

/// The checks above catch what they must, on planted records (runs without root).
#[test]
fn the_checks_catch_planted_overlaps_regressions_and_shared_tokens() {
    let span = |node, token, begin, end| Span {
        node,
        token,
        begin,
        end,
        over: None,
    };
    let sample = |node, master, token| Sample {
        node,
        at: 0,
        master: Some(master),
        token: Some(token),
        begin: None,
        end: None,
    };
    let no_deaths = no_deaths();
    let overlaps = |s: &[Span], u: &[u64]| count_overlaps(s, u, false);
    let until = |spans: &[Span], deaths: &[Vec<u64>]| -> Vec<u64> {
        spans.iter().map(|s| s.until(deaths)).collect()
    };
    // A clean hand-over: no finding.
    let clean = [
        span(1, 5, 0, 100),
        span(2, 6, 150, 300),
        span(1, 7, 300, 400),
    ];
    assert_eq!(overlaps(&clean, &until(&clean, &no_deaths)), 0);
    assert_eq!(
        token_regressions(&clean, &[sample(3, 1, 5), sample(3, 2, 6)], false),
        0
    );
    assert_eq!(two_holders(&clean, &[sample(3, 2, 6)], false), 0);
    // Planted overlap: node 2 begins before node 1's logged end.
    let bad = [span(1, 5, 0, 100), span(2, 6, 99, 300)];
    assert_eq!(overlaps(&bad, &until(&bad, &no_deaths)), 1);
    // ... which a kill of node 1 reaped at 90 removes, and one reaped at 120 does not.
    let mut deaths = no_deaths.clone();
    deaths[0].push(90);
    assert_eq!(overlaps(&bad, &until(&bad, &deaths)), 0);
    deaths[0][0] = 120;
    assert_eq!(overlaps(&bad, &until(&bad, &deaths)), 1);
    // A death before the term began does not cut it.
    let later = [span(1, 5, 10, 100), span(2, 6, 99, 300)];
    deaths[0] = vec![5];
    assert_eq!(overlaps(&later, &until(&later, &deaths)), 1);
    // An early end (release) logged as `term over` cuts the claim.
    let released = [
        Span {
            over: Some(50),
            ..span(1, 5, 0, 100)
        },
        span(2, 6, 60, 300),
    ];
    assert_eq!(overlaps(&released, &until(&released, &no_deaths)), 0);
    // A long term covering a later, shorter one of another node.
    let covered = [
        span(1, 5, 0, 1000),
        span(3, 6, 100, 200),
        span(2, 7, 300, 400),
    ];
    assert_eq!(overlaps(&covered, &until(&covered, &no_deaths)), 2);
    // Planted regressions: a later term with a lower token, two nodes with one token, a
    // view going back.
    assert_eq!(
        token_regressions(&[span(1, 6, 0, 10), span(2, 5, 20, 30)], &[], false),
        1
    );
    assert_eq!(
        token_regressions(&[span(1, 6, 0, 10), span(2, 6, 20, 30)], &[], false),
        1
    );
    assert_eq!(
        token_regressions(&[], &[sample(4, 2, 9), sample(4, 1, 8)], false),
        1
    );
    // The same node may resume a term with its token.
    assert_eq!(
        token_regressions(&[span(1, 6, 0, 10), span(1, 6, 20, 30)], &[], false),
        0
    );
    // Planted shared token: in two terms, or a view naming another holder.
    assert_eq!(
        two_holders(&[span(1, 6, 0, 10), span(2, 6, 20, 30)], &[], false),
        1
    );
    assert_eq!(
        two_holders(&[span(1, 6, 0, 10)], &[sample(5, 3, 6)], false),
        1
    );
}

#[test]
fn real_network_faults_never_give_two_masters() {
    if !skip_or_fail("netns") {
        return;
    }
    let long = std::env::var_os("TENURE_NETNS_LONG").is_some_and(|v| v != "0");
    let (reps, kill_for) = if long {
        (10usize, Duration::from_secs(120))
    } else {
        (3, Duration::from_secs(20))
    };
    let started = std::time::Instant::now();
    let mut c = Cluster::new();
    assert!(
        c.wait_master(None, true).is_some(),
        "no master within {PATIENCE:?} of the start"
    );
    let mut scenarios = Vec::new();
    for loss in [0u8, 20] {
        for kind in [
            Kind::Quiet,
            Kind::Kill,
            Kind::Isolate,
            Kind::Deaf,
            Kind::SplitMinority,
            Kind::SplitMajority,
            Kind::Sigint,
        ] {
            let n = match kind {
                Kind::SplitMinority | Kind::SplitMajority => reps.div_ceil(2),
                _ => reps,
            };
            scenarios.push(run_scenario(&mut c, kind, loss, n, kill_for));
        }
    }
    // Stop everything, then read the record.
    for i in 1..=NODES {
        c.stop_node(i, rustix::process::Signal::KILL);
    }
    c.stop.store(true, Ordering::Relaxed);
    for p in c.pollers.drain(..) {
        let _ = p.join();
    }
    let samples = std::mem::take(&mut c.polled.lock().unwrap().all);
    let mut spans: Vec<Span> = Vec::new();
    let mut by_node: Vec<BTreeMap<u64, Span>> = Vec::new();
    for i in 1..=NODES {
        let text = std::fs::read_to_string(c.log_path(i)).unwrap_or_default();
        let parsed = parse_log(i, &text);
        spans.extend(parsed.values().copied());
        by_node.push(parsed);
    }
    spans.sort_by_key(|s| s.begin);
    let deaths = c.deaths.clone();

    // /status agrees with the logs: every reported term is logged, as far at least.
    let mut unlogged = 0;
    for s in &samples {
        if let (Some(b), Some(e)) = (s.begin, s.end) {
            match by_node[s.node - 1].get(&b) {
                Some(span) if span.end >= e && Some(span.token) == s.token => {}
                _ => {
                    unlogged += 1;
                    if unlogged <= 5 {
                        eprintln!("reported but not logged so: {s:?}");
                    }
                }
            }
        }
    }

    let until: Vec<u64> = spans.iter().map(|s| s.until(&deaths)).collect();
    let overlaps = overlaps(&spans, &until);
    // Stronger: a killed master's last logged end, as if it had lived on, never reaches
    // into the next term either (the others wait out the lease they granted, which covers
    // the term the master counted). Only early ends it logged cut its claim here.
    let lived: Vec<u64> = spans.iter().map(|s| s.until(&no_deaths())).collect();
    let overlaps_had_it_lived = count_overlaps(&spans, &lived, false);
    let regressions = token_regressions(&spans, &samples, true);
    let two_holders = two_holders(&spans, &samples, true);

    // Per scenario.
    let lease_ns = ns(LEASE) as f64;
    let intervals: Vec<(u64, u64)> = spans
        .iter()
        .zip(&until)
        .map(|(s, &u)| (s.begin, u))
        .collect();
    let mut kill_failovers: Vec<f64> = Vec::new();
    println!(
        "netns: {NODES} nodes, lease {} ms, {} samples of /status, {} terms, {} kills",
        LEASE.as_millis(),
        samples.len(),
        spans.len(),
        c.kills
    );
    for sc in &scenarios {
        let mut failovers: Vec<f64> = Vec::new();
        let (mut kept, mut none) = (0, 0);
        let fault_times: Vec<u64> = sc
            .marks
            .iter()
            .filter(|m| matches!(m, Mark::Fault { .. }))
            .map(Mark::at)
            .collect();
        for mark in &sc.marks {
            let Mark::Fault { at, old } = *mark else {
                continue;
            };
            let next_fault = fault_times
                .iter()
                .copied()
                .find(|&t| t > at)
                .unwrap_or(sc.end);
            let new = spans
                .iter()
                .find(|s| s.node != old && s.begin >= at && s.begin < next_fault);
            match new {
                Some(s) => failovers.push((s.begin - at) as f64 / lease_ns),
                None if sc.name.contains("majority") => kept += 1,
                None => none += 1,
            }
        }
        failovers.sort_by(f64::total_cmp);
        if sc.name == Kind::Kill.name() {
            kill_failovers.extend(&failovers);
        }
        // Gaps: the first after a fault is the fault's; the first after a heal is the
        // heal's; any other gap no fault caused.
        let (mut after_heal, mut unprovoked) = (0, 0);
        let (mut after_heal_ns, mut unprovoked_ns) = (0u64, 0u64);
        let mut explained: BTreeSet<usize> = BTreeSet::new();
        for (g0, g1) in gaps(&intervals, sc.start, sc.end) {
            let last = sc
                .marks
                .iter()
                .enumerate()
                .rfind(|(_, m)| m.at() <= g0 + 1_000_000);
            match last {
                Some((k, m)) if explained.insert(k) => {
                    if matches!(m, Mark::Heal { .. }) {
                        after_heal += 1;
                        after_heal_ns += g1 - g0;
                        eprintln!(
                            "{} loss={}%: {:.2} leases without a master after a heal",
                            sc.name,
                            sc.loss,
                            (g1 - g0) as f64 / lease_ns
                        );
                    }
                }
                _ => {
                    unprovoked += 1;
                    unprovoked_ns += g1 - g0;
                    eprintln!(
                        "{} loss={}%: {:.2} leases without a master, no fault",
                        sc.name,
                        sc.loss,
                        (g1 - g0) as f64 / lease_ns
                    );
                }
            }
        }
        println!(
            "scenario={} loss={}% faults={} failovers={} kept_master={} no_failover={} no_master_to_act_on={} \
             failover_leases p50={:.2} p90={:.2} p99={:.2} max={:.2} gaps_no_fault={} ({:.2} leases) gaps_after_heal={} ({:.2} leases) span_s={:.1}",
            sc.name,
            sc.loss,
            fault_times.len(),
            failovers.len(),
            kept,
            none,
            sc.no_master,
            pct(&failovers, 50.0),
            pct(&failovers, 90.0),
            pct(&failovers, 99.0),
            failovers.last().copied().unwrap_or(f64::NAN),
            unprovoked,
            unprovoked_ns as f64 / lease_ns,
            after_heal,
            after_heal_ns as f64 / lease_ns,
            (sc.end - sc.start) as f64 / 1e9
        );
    }
    kill_failovers.sort_by(f64::total_cmp);
    println!(
        "netns: overlaps={overlaps} overlaps_had_killed_masters_lived={overlaps_had_it_lived} \
         token_regressions={regressions} two_holders={two_holders}"
    );
    println!(
        "netns: {:?} in all ({})",
        started.elapsed(),
        if long { "long" } else { "short" }
    );
    assert_eq!(unlogged, 0, "/status reported terms the log does not bound");
    assert!(
        spans.len() > scenarios.len(),
        "only {} terms: the test exercised too little",
        spans.len()
    );
    assert!(c.kills > 0, "no kill happened");
    assert_eq!(overlaps, 0, "terms of two nodes overlap");
    assert_eq!(
        overlaps_had_it_lived, 0,
        "a killed master's logged term reaches into the next one"
    );
    assert_eq!(regressions, 0, "fencing tokens went back");
    assert_eq!(two_holders, 0, "fencing tokens with two holders");
    println!(
        "netns overlaps={overlaps} token_regressions={regressions} kills={} failover_p99_over_lease={:.2}",
        c.kills,
        pct(&kill_failovers, 99.0)
    );
}

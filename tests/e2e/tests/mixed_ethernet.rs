//! Checks `docs/algorithm.md` §1 "The promise" and §4 "Restart" on one Ethernet segment
//! with no gateway: three QEMU microcontrollers (the firmware of `embedded-example/`
//! built with `--features eth`, its own LAN9118 driver and smoltcp) and two `tenure node`
//! processes speak the same sealed UDP datagrams to each other.
//!
//! The test builds the segment itself, inside network namespaces it creates and removes
//! ([`tenure_e2e::netns::Lab`]; names carry the test's process id): a bridge in a
//! namespace of its own; each tokio node in its own namespace, joined to the bridge by a
//! veth pair; each QEMU node, run in the bridge's namespace, on a tap device on that
//! bridge (`-nic tap,model=lan9118`). Addresses are 192.0.2.0/24 (documentation range)
//! inside those namespaces only.
//!
//! It then kills the master with SIGKILL again and again (`MIXED_ETH_KILLS`, default 30),
//! QEMU and tokio in turn (the role is first handed over to a node of the kind whose turn
//! it is: from a QEMU master's console, or through a tokio master's admin port on the
//! loopback of its namespace), restarts each killed node from its record (same flash file, same data
//! directory) and checks:
//!
//! - one master at a time: the terms reported by the nodes, stamped on the host's
//!   monotonic clock as their lines arrive, never overlap (beyond the lateness of a line);
//! - agreement: after each failover every live node names the same master;
//! - each failover took at most two leases plus a few round timeouts;
//! - restarts come back from their records (QEMU incarnations rise; a tokio node starts
//!   without a record only once);
//!
//! and prints failover p50/p99/max. Before the cluster starts, a QEMU node with bad
//! network keys must stop with exit code 2. Last, it puts bad input on the wire from a
//! packet socket on the bridge: IPv4 packets cut short, frames for a MAC no node has, a
//! broadcast storm, UDP datagrams from an address that is no member's and forged
//! datagrams from a member's address. Every QEMU node must count them (its `EVENT net`
//! and `EVENT stats` counters), keep running, and the master must keep its role.
//!
//! Needs root, `ip` (iproute2), `nft` (the lab's), `qemu-system-arm`, `python3` (the
//! packet socket) and the `thumbv7em-none-eabihf` target. Without them it prints what is
//! missing and passes, unless `CI` is set. `MIXED_ETH_KEEP=1` keeps the logs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tenure_e2e::netns::{self, Lab};

const CLUSTER: u32 = 4343;
const LEASE: Duration = Duration::from_millis(500);
const ROUND: Duration = Duration::from_millis(100);
const BACKOFF: Duration = Duration::from_millis(200);
/// Tokio node ids, and QEMU node ids.
const TOKIO: [u16; 2] = [1, 2];
const QEMU: [u16; 3] = [3, 4, 5];
/// Terms of different nodes may overlap by this much on the host's clock before it
/// counts as two masters: the lateness of the line that reports a term's end.
const STAMP_TOLERANCE: Duration = Duration::from_millis(50);

/// Node `id`'s address: the [`Lab`]'s `192.0.2.<id>` for tokio nodes (ids 1 and 2 are
/// its nodes 1 and 2), above them for QEMU nodes.
fn ip_of(id: u16) -> String {
    if TOKIO.contains(&id) {
        format!("192.0.2.{id}")
    } else {
        format!("192.0.2.{}", 10 + id)
    }
}

fn port_of(id: u16) -> u16 {
    7000 + id
}

/// Tokio node `id`'s admin port: loopback inside its own namespace.
fn admin_of(id: u16) -> String {
    format!("127.0.0.1:{}", 8000 + id)
}

fn mac_of(id: u16) -> String {
    format!("02:00:00:00:00:{id:02x}")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether everything is here; prints what is missing if not (and fails under `CI`).
fn prerequisites() -> bool {
    let mut missing: Vec<String> = netns::unavailable().into_iter().collect();
    if !runs("qemu-system-arm", &["--version"]) {
        missing.push("qemu-system-arm: apt-get install -y qemu-system-arm".into());
    }
    if !runs("python3", &["--version"]) {
        missing.push("python3: apt-get install -y python3".into());
    }
    let target = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .is_some_and(|o| {
            let root = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&root)
                .join("lib/rustlib/thumbv7em-none-eabihf")
                .is_dir()
        });
    if !target {
        missing.push("the firmware target: rustup target add thumbv7em-none-eabihf".into());
    }
    if missing.is_empty() {
        return true;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "mixed_ethernet: needs:\n  {}", missing.join("\n  "));
    if std::env::var_os("CI").is_some() {
        panic!("CI is set: the mixed Ethernet test must run, but prerequisites are missing");
    }
    let _ = writeln!(
        err,
        "mixed_ethernet: SKIPPED (set CI=1 to make this a failure)"
    );
    false
}

/// Whether this `tenure node` takes `--first-boot` (then a data directory without a
/// record needs it).
fn has_first_boot_flag(tenure: &Path) -> bool {
    Command::new(tenure)
        .args(["node", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--first-boot"))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the Ethernet firmware into its own target directory (the UART build keeps
/// `embedded-example/target`).
fn build_firmware() -> PathBuf {
    let dir = workspace().join("embedded-example");
    let target_dir = dir.join("target/eth-build");
    let status = cargo()
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "--features", "eth", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .status()
        .expect("run cargo to build the firmware");
    assert!(status.success(), "firmware build failed");
    let elf = target_dir.join("thumbv7em-none-eabihf/release/tenure-embedded-example");
    assert!(elf.is_file(), "no firmware at {}", elf.display());
    elf
}

/// Builds the `tenure` binary (a process of its own per tokio node, so it can be killed
/// with SIGKILL), in the workspace's target directory and this test's profile (cargo
/// holds no lock on it while tests run; the library is already built).
fn build_tenure() -> PathBuf {
    let root = workspace();
    // This test binary is `<target>/<profile>/deps/mixed_ethernet-<hash>`.
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target directory");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let mut cmd = cargo();
    cmd.current_dir(&root)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "-p", "tenure-tokio", "--bin", "tenure"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo to build tenure");
    assert!(status.success(), "tenure build failed");
    let bin = profile_dir.join("tenure");
    assert!(bin.is_file(), "no binary at {}", bin.display());
    bin
}

/// Turns IPv6 off in namespace `ns`: its multicast chatter would mix with the bad input.
fn no_ipv6(lab: &Lab, ns: &str) {
    for setting in [
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ] {
        let _ = lab
            .command(ns, "sysctl")
            .args(["-q", "-w", setting])
            .status();
    }
}

/// The segment (a [`Lab`]: a namespace per tokio node, joined by veths to a bridge in a
/// namespace of its own) and a tap on the bridge per QEMU node.
struct Segment {
    lab: Lab,
    taps: HashMap<u16, String>,
}

impl Segment {
    fn create() -> Segment {
        let lab = Lab::new(TOKIO.len());
        no_ipv6(&lab, &lab.bridge_ns());
        for i in 1..=TOKIO.len() {
            no_ipv6(&lab, &lab.node_ns(i));
        }
        let taps = QEMU
            .iter()
            .map(|&id| (id, lab.add_tap(usize::from(id))))
            .collect();
        Segment { lab, taps }
    }

    /// The namespace of tokio node `id`.
    fn node_ns(&self, id: u16) -> String {
        self.lab.node_ns(usize::from(id))
    }
}

/// One mastership interval on the host's clock.
#[derive(Clone, Copy, Debug)]
struct Term {
    node: u16,
    start: Instant,
    end: Option<Instant>,
}

/// Everything the nodes reported, stamped on the host's monotonic clock.
#[derive(Default)]
struct Observed {
    terms: Vec<Term>,
    /// The master each node names (`None`: it knows of none).
    names: HashMap<u16, Option<u16>>,
    /// How many times each node reported it started.
    starts: HashMap<u16, u32>,
    /// Each QEMU node's incarnation at every start (its record's, one higher each time).
    incarnations: HashMap<u16, Vec<u64>>,
    /// How many times each tokio node started with no record.
    first_boots: HashMap<u16, u32>,
    /// The last `EVENT net` and `EVENT stats` lines of each QEMU node and how many.
    net: HashMap<u16, (u32, String)>,
    stats: HashMap<u16, (u32, String)>,
}

impl Observed {
    fn begin(&mut self, node: u16, at: Instant) {
        self.end(node, at);
        self.terms.push(Term {
            node,
            start: at,
            end: None,
        });
        self.names.insert(node, Some(node));
    }

    fn end(&mut self, node: u16, at: Instant) {
        for t in self
            .terms
            .iter_mut()
            .filter(|t| t.node == node && t.end.is_none())
        {
            t.end = Some(at);
        }
    }

    /// The first term begun by someone other than `not` at or after `after`.
    fn first_term_after(&self, after: Instant, not: u16) -> Option<Term> {
        self.terms
            .iter()
            .filter(|t| t.node != not && t.start >= after)
            .min_by_key(|t| t.start)
            .copied()
    }

    /// The largest overlap between terms of different nodes.
    fn worst_overlap(&self, now: Instant) -> Option<(Duration, Term, Term)> {
        let mut worst: Option<(Duration, Term, Term)> = None;
        for (i, a) in self.terms.iter().enumerate() {
            for b in &self.terms[i + 1..] {
                if a.node == b.node {
                    continue;
                }
                let end = a.end.unwrap_or(now).min(b.end.unwrap_or(now));
                let start = a.start.max(b.start);
                if end > start && worst.is_none_or(|(d, _, _)| end - start > d) {
                    worst = Some((end - start, *a, *b));
                }
            }
        }
        worst
    }
}

/// `key=value` out of a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn num(line: &str, key: &str) -> u64 {
    field(line, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Parses one line of node `id` (a QEMU `EVENT` line or a `tenure node` log line).
fn observe(obs: &Mutex<Observed>, id: u16, line: &str) {
    let at = Instant::now();
    let mut o = lock(obs);
    if let Some(event) = line.strip_prefix("EVENT ") {
        let kind = event.split_whitespace().next().unwrap_or("");
        match kind {
            "became_master" => o.begin(id, at),
            "term_ended" => o.end(id, at),
            "master" => {
                let node = field(event, "node").and_then(|n| n.parse().ok());
                o.names.insert(id, node);
            }
            "master_lost" => {
                o.names.insert(id, None);
            }
            "start" => {
                *o.starts.entry(id).or_default() += 1;
                let incarnation = num(event, "incarnation");
                o.incarnations.entry(id).or_default().push(incarnation);
            }
            "net" => {
                let e = o.net.entry(id).or_default();
                *e = (e.0 + 1, event.to_string());
            }
            "stats" => {
                let e = o.stats.entry(id).or_default();
                *e = (e.0 + 1, event.to_string());
            }
            _ => {}
        }
        return;
    }
    // tracing's text format: `<time>  INFO <target>: <message> key=value ...`.
    if line.contains("became master") {
        o.begin(id, at);
    } else if line.contains("no longer master") {
        o.end(id, at);
    } else if line.contains("new master") {
        let node = field(line, "master").and_then(|n| n.parse().ok());
        o.names.insert(id, node);
    } else if line.contains("master lost") {
        o.names.insert(id, None);
    } else if line.contains("node started") {
        *o.starts.entry(id).or_default() += 1;
    } else if line.contains("first boot") {
        *o.first_boots.entry(id).or_default() += 1;
    }
}

struct Proc {
    id: u16,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// When the running child was started.
    since: Instant,
}

/// CPU time used so far by process `pid` (user + system), from `/proc`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// The running cluster; kills every child when dropped (also on a failed assertion),
/// before the segment goes.
struct Cluster {
    dir: PathBuf,
    tenure: PathBuf,
    key: String,
    procs: Vec<Proc>,
    obs: Arc<Mutex<Observed>>,
    seg: Segment,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::env::var_os("MIXED_ETH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {}", self.dir.display());
        }
    }
}

fn peers() -> String {
    TOKIO
        .iter()
        .chain(&QEMU)
        .map(|&id| format!("{id}@{}:{}", ip_of(id), port_of(id)))
        .collect::<Vec<_>>()
        .join(",")
}

impl Cluster {
    fn is_qemu(id: u16) -> bool {
        QEMU.contains(&id)
    }

    fn write_tokio_config(&self, id: u16) -> PathBuf {
        let mut toml = format!(
            "cluster_id = {CLUSTER}\nnode_id = {id}\ndata_dir = \"data-{id}\"\n\
             lease = \"{}ms\"\nround_timeout = \"{}ms\"\nmax_backoff = \"{}ms\"\nkey = \"{}\"\n",
            LEASE.as_millis(),
            ROUND.as_millis(),
            BACKOFF.as_millis(),
            self.key
        );
        for m in TOKIO.iter().chain(&QEMU) {
            toml.push_str(&format!(
                "\n[[members]]\nid = {m}\naddr = \"{}:{}\"\n",
                ip_of(*m),
                port_of(*m)
            ));
        }
        let path = self.dir.join(format!("node{id}.toml"));
        std::fs::write(&path, toml).expect("write config");
        path
    }

    /// Starts (or restarts) node `id` and a thread that reads its lines.
    fn start(&mut self, id: u16) {
        let log = self.dir.join(format!("node{id}.log"));
        let mut cmd;
        if Self::is_qemu(id) {
            // The first start only: a restart must come back from the record in flash.
            let first = lock(&self.obs).starts.get(&id).copied().unwrap_or(0) == 0;
            let append = format!(
                "id={id} members=1,2,3,4,5 cluster={CLUSTER} key={} lease_ms={} round_ms={} \
                 backoff_ms={} ip={}/24 peers={}{}",
                self.key,
                LEASE.as_millis(),
                ROUND.as_millis(),
                BACKOFF.as_millis(),
                ip_of(id),
                peers(),
                if first { " first_boot" } else { "" }
            );
            let nic = format!(
                "tap,ifname={},script=no,downscript=no,model=lan9118,mac={}",
                self.seg.taps[&id],
                mac_of(id)
            );
            cmd = self
                .seg
                .lab
                .command(&self.seg.lab.bridge_ns(), "qemu-system-arm");
            cmd.args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
                .args(["-nographic", "-monitor", "none"])
                .args(["-semihosting-config", "enable=on,target=native"])
                .args(["-serial", "stdio", "-nic", &nic])
                // Relative, in `dir`: QEMU hands "<kernel> <append>" to the firmware.
                .args(["-kernel", "firmware.elf", "-append", &append]);
        } else {
            let config = self.write_tokio_config(id);
            cmd = self.seg.lab.command(&self.seg.node_ns(id), &self.tenure);
            cmd.arg("node")
                .arg("--config")
                .arg(config)
                .arg("--admin")
                .arg(admin_of(id))
                .env("RUST_LOG", "info");
            // The first start only: a restart must come back from the record on disk.
            let first = lock(&self.obs).starts.get(&id).copied().unwrap_or(0) == 0;
            if first && has_first_boot_flag(&self.tenure) {
                cmd.arg("--first-boot");
            }
        }
        let mut child = cmd
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let obs = Arc::clone(&self.obs);
            let log = log.clone();
            std::thread::spawn(move || {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .ok();
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    observe(&obs, id, &line);
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                }
            });
        }
        let p = self.procs.iter_mut().find(|p| p.id == id).expect("node");
        p.child = Some(child);
        p.since = Instant::now();
        p.stdin = stdin;
    }

    fn kill(&mut self, id: u16) -> Instant {
        let p = self.procs.iter_mut().find(|p| p.id == id).expect("node");
        let mut child = p.child.take().expect("running");
        let at = Instant::now();
        let _ = child.kill();
        let _ = child.wait();
        p.stdin = None;
        let mut o = lock(&self.obs);
        o.end(id, at);
        o.names.remove(&id);
        at
    }

    fn live(&self) -> Vec<u16> {
        self.procs
            .iter()
            .filter(|p| p.child.is_some())
            .map(|p| p.id)
            .collect()
    }

    /// Node `id` has exited on its own (a crash or a halt).
    fn exited(&mut self) -> Option<(u16, String)> {
        for p in &mut self.procs {
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Some((p.id, status.to_string()));
                }
            }
        }
        None
    }

    /// Asks master `from` to hand its role to `to`: a QEMU node through its console, a
    /// tokio node through its admin port (loopback inside its namespace). Best effort:
    /// the caller checks whether the role moved.
    fn hand_over(&mut self, from: u16, to: u16) {
        if Self::is_qemu(from) {
            self.console(from, &format!("handover {to}"));
            return;
        }
        let _ = self
            .seg
            .lab
            .command(&self.seg.node_ns(from), &self.tenure)
            .args(["hand-over", "--admin", &admin_of(from)])
            .args(["--to", &to.to_string(), "--timeout", "2s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn console(&mut self, id: u16, line: &str) {
        let p = self.procs.iter_mut().find(|p| p.id == id).expect("node");
        if let Some(stdin) = p.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// The master every live node names, once they all name the same live master.
    fn wait_agreement(&mut self, within: Duration) -> Option<u16> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some((id, status)) = self.exited() {
                panic!("node {id} exited on its own: {status}");
            }
            let live = self.live();
            let o = lock(&self.obs);
            let named: Vec<Option<u16>> = live
                .iter()
                .map(|id| o.names.get(id).copied().flatten())
                .collect();
            if let Some(Some(m)) = named.first() {
                let holds = o.terms.iter().any(|t| t.node == *m && t.end.is_none());
                if holds && live.contains(m) && named.iter().all(|n| *n == Some(*m)) {
                    return Some(*m);
                }
            }
            drop(o);
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn wait_started(&self, id: u16, starts: u32, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if lock(&self.obs).starts.get(&id).copied().unwrap_or(0) > starts {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Asks every QEMU node for its counters: the `EVENT stats` and `EVENT net` lines.
    fn counters(&mut self) -> HashMap<u16, (String, String)> {
        let before: HashMap<u16, u32> = {
            let o = lock(&self.obs);
            QEMU.iter()
                .map(|id| (*id, o.net.get(id).map_or(0, |e| e.0)))
                .collect()
        };
        for id in QEMU {
            self.console(id, "stats");
        }
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            {
                let o = lock(&self.obs);
                let fresh = QEMU
                    .iter()
                    .all(|id| o.net.get(id).map_or(0, |e| e.0) > before[id]);
                if fresh || Instant::now() > until {
                    return QEMU
                        .iter()
                        .map(|id| {
                            let net = o.net.get(id).map(|e| e.1.clone()).unwrap_or_default();
                            let st = o.stats.get(id).map(|e| e.1.clone()).unwrap_or_default();
                            (*id, (st, net))
                        })
                        .collect();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A QEMU node whose network keys are wrong stops at once with exit code 2 (a clear
/// error, nothing sent): its own `peers=` entry not on `ip=`, and a member without an
/// address.
fn bad_command_line_stops(c: &Cluster) {
    for (what, append) in [
        (
            "own address not on ip=",
            format!("id=3 members=1,2,3,4,5 ip=192.0.2.99/24 peers={}", peers()),
        ),
        (
            "member without an address",
            "id=3 members=1,2,3 ip=192.0.2.13/24 peers=3@192.0.2.13:7003".to_string(),
        ),
    ] {
        let status = c
            .seg
            .lab
            .command(&c.seg.lab.bridge_ns(), "timeout")
            .args(["-s", "KILL", "20", "qemu-system-arm"])
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
            .args(["-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-serial", "stdio", "-nic", "none"])
            .args(["-kernel", "firmware.elf", "-append", &append])
            .current_dir(&c.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run qemu");
        assert_eq!(
            status.code(),
            Some(2),
            "{what}: the firmware must stop with exit code 2"
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The bad-input sender: a packet socket on the bridge (inside the bridge namespace).
/// argv: the bridge, then the QEMU nodes as `MAC,IP,PORT` triples. Frames per QEMU node (paced, so the
/// emulated NIC's FIFO never overflows): 100 short frames (an IPv4/UDP packet cut off
/// after 26 of its 200 bytes; QEMU pads it to 60 bytes), 100 UDP datagrams from an
/// address that is no member's, 100 forged datagrams from member 1's address; to all:
/// 100 frames for an unknown MAC (the bridge floods them), then a broadcast storm of
/// 5,000 ARP-typed frames and 500 broadcast IPv4 frames in bursts of 55 every 10 ms
/// (about 5,000 a second, 15 times the firmware's broadcast limit; sent unpaced, the
/// flood stalls QEMU's device emulation itself, guest clock running, for longer than a
/// lease).
const INJECT: &str = r#"
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
SRC = bytes.fromhex("020000000099")
def mac(m): return bytes.fromhex(m.replace(":", ""))
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return (~t) & 0xffff
def udp(dst_mac, src_ip, dst_ip, sport, dport, payload):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(u), 1, 0, 64, 17, 0,
                    socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return dst_mac + SRC + b"\x08\x00" + h + u
sent = {"short": 0, "not_member": 0, "forged": 0, "wrong_mac": 0, "storm": 0, "bcast_ip": 0}
for node in sys.argv[2:]:
    m, ipaddr, port = node.split(",")
    for i in range(100):
        cut = udp(mac(m), "192.0.2.98", ipaddr, 7098, int(port), bytes(172))[:14 + 26]
        s.send(cut); sent["short"] += 1
        s.send(udp(mac(m), "192.0.2.99", ipaddr, 7099, int(port), b"junk" * 8)); sent["not_member"] += 1
        s.send(udp(mac(m), "192.0.2.1", ipaddr, 7001, int(port), bytes([i]) * (1 + i % 90))); sent["forged"] += 1
        time.sleep(0.002)
for i in range(100):
    s.send(mac("02:00:00:00:99:99") + SRC + b"\x08\x00" + bytes(46)); sent["wrong_mac"] += 1
    time.sleep(0.002)
bcast = b"\xff" * 6
t0 = time.time()
for i in range(5000):
    s.send(bcast + SRC + b"\x08\x06" + bytes([i & 255]) * 46); sent["storm"] += 1
    if i % 10 == 9:
        s.send(bcast + SRC + b"\x08\x00" + bytes(46)); sent["bcast_ip"] += 1
    if i % 50 == 49:
        time.sleep(0.01)
print("sent", " ".join("%s=%d" % kv for kv in sent.items()), "storm_s=%.3f" % (time.time() - t0))
"#;

#[test]
fn mixed_ethernet_cluster_without_gateway() {
    if !prerequisites() {
        return;
    }
    let began = Instant::now();
    let kills: usize = std::env::var("MIXED_ETH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let elf = build_firmware();
    let tenure = build_tenure();
    let dir = std::env::temp_dir().join(format!("tenure-mixed-eth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(&elf, dir.join("firmware.elf")).expect("copy firmware");
    let key: String = (0..32).map(|i| format!("{:02x}", 0xa0 + i)).collect();
    let seg = Segment::create();
    let mut c = Cluster {
        dir,
        tenure,
        key,
        procs: TOKIO
            .iter()
            .chain(&QEMU)
            .map(|&id| Proc {
                id,
                child: None,
                stdin: None,
                since: Instant::now(),
            })
            .collect(),
        obs: Arc::default(),
        seg,
    };
    bad_command_line_stops(&c);
    for id in TOKIO.iter().chain(&QEMU) {
        c.start(*id);
    }
    let setup = began.elapsed();
    let bound = 2 * LEASE + 8 * ROUND + Duration::from_secs(1);
    let first = c
        .wait_agreement(Duration::from_secs(20))
        .expect("no agreed master within 20 s of start");
    eprintln!("mixed_ethernet: first master {first} (setup and builds {setup:?})");

    let mut failovers: Vec<Duration> = Vec::new();
    let mut killed_kinds = [0u32; 2]; // [tokio, qemu]
    for k in 0..kills {
        let mut m = c
            .wait_agreement(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("kill {k}: no agreed master within 10 s"));
        // Alternate the kinds: move the role to a node of the kind whose turn it is first
        // (a QEMU master hands over from its console, a tokio master through its admin
        // port), then kill it.
        let want_qemu = k % 2 == 0;
        if Cluster::is_qemu(m) != want_qemu {
            let to = if want_qemu {
                QEMU[k / 2 % QEMU.len()]
            } else {
                TOKIO[k / 2 % TOKIO.len()]
            };
            c.hand_over(m, to);
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                if c.wait_agreement(Duration::from_millis(200)) == Some(to) {
                    break;
                }
            }
            // The successor may not be the one asked for (another candidate can win
            // the round the hand-over opens): kill whoever is master now.
            m = c
                .wait_agreement(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("kill {k}: no agreed master after a hand-over"));
        }
        let starts = lock(&c.obs).starts.get(&m).copied().unwrap_or(0);
        let at = c.kill(m);
        killed_kinds[usize::from(Cluster::is_qemu(m))] += 1;
        let until = at + bound + Duration::from_secs(2);
        let next = loop {
            if let Some(t) = lock(&c.obs).first_term_after(at, m) {
                break t;
            }
            assert!(
                Instant::now() < until,
                "kill {k} of node {m}: no new master within {:?}",
                bound + Duration::from_secs(2)
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = next.start - at;
        eprintln!(
            "kill {k:2}: node {m} ({}) -> node {} in {} ms",
            if Cluster::is_qemu(m) { "qemu" } else { "tokio" },
            next.node,
            took.as_millis()
        );
        assert!(
            took <= bound,
            "kill {k}: failover took {took:?}, bound {bound:?}"
        );
        failovers.push(took);
        c.start(m);
        assert!(
            c.wait_started(m, starts, Duration::from_secs(15)),
            "node {m} did not restart from its record"
        );
    }
    let agreed = c
        .wait_agreement(Duration::from_secs(10))
        .expect("no agreed master after the kills");

    // Bad input on the wire.
    let before = c.counters();
    let args: Vec<String> = QEMU
        .iter()
        .map(|&id| format!("{},{},{}", mac_of(id), ip_of(id), port_of(id)))
        .collect();
    let inject_at = Instant::now();
    let out = c
        .seg
        .lab
        .command(&c.seg.lab.bridge_ns(), "python3")
        .args(["-c", INJECT, &c.seg.lab.bridge()])
        .args(&args)
        .output()
        .expect("run the packet sender");
    assert!(
        out.status.success(),
        "packet sender failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "mixed_ethernet: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let after = c.counters();
    let kept = c.wait_agreement(Duration::from_secs(5));
    for id in QEMU {
        let delta = |key: &str, which: fn(&(String, String)) -> &String| {
            num(which(&after[&id]), key).saturating_sub(num(which(&before[&id]), key))
        };
        fn net(p: &(String, String)) -> &String {
            &p.1
        }
        fn core(p: &(String, String)) -> &String {
            &p.0
        }
        let (short, wrong, storm, bad_type, not_member) = (
            delta("short", net),
            delta("wrong_mac", net),
            delta("storm", net),
            delta("bad_type", net),
            delta("not_member", net),
        );
        let forged = delta("dropped", core);
        eprintln!(
            "node {id}: short=+{short} wrong_mac=+{wrong} storm=+{storm} bad_type=+{bad_type} \
             not_member=+{not_member} core_dropped=+{forged} (bad_tag=+{} malformed=+{})",
            delta("bad_tag", core),
            delta("malformed", core)
        );
        // Paced frames all arrive on an idle segment; allow a few to be lost.
        assert!(short >= 90, "node {id}: short frames not counted: +{short}");
        assert!(
            wrong >= 90,
            "node {id}: wrong-MAC frames not counted: +{wrong}"
        );
        assert!(
            not_member >= 90,
            "node {id}: non-member datagrams not counted: +{not_member}"
        );
        assert!(
            forged >= 90,
            "node {id}: forged datagrams not dropped by the core: +{forged}"
        );
        // At most 32 broadcasts pass per 100 ms; the storm lasts about 1.1 s.
        assert!(
            storm >= 4000,
            "node {id}: the broadcast storm was not limited: +{storm}"
        );
        assert!(
            bad_type >= 490,
            "node {id}: broadcast IPv4 frames not counted: +{bad_type}"
        );
    }
    if let Some((id, status)) = c.exited() {
        panic!("node {id} exited during the bad input: {status}");
    }
    if kept != Some(agreed) {
        let o = lock(&c.obs);
        let terms: Vec<String> = o
            .terms
            .iter()
            .filter(|t| t.end.is_none_or(|e| e > inject_at))
            .map(|t| {
                format!(
                    "node {} from {:?} to {:?} after the bad input began",
                    t.node,
                    t.start.checked_duration_since(inject_at),
                    t.end.map(|e| e - inject_at)
                )
            })
            .collect();
        panic!(
            "the master (node {agreed}) did not keep its role through the bad input: now \
             {kept:?}; names {:?}; terms {terms:#?}",
            o.names
        );
    }

    let now = Instant::now();
    let o = lock(&c.obs);
    // Restarted from flash / disk: a QEMU node's incarnation rises at every start, and a
    // tokio node starts without a record only the first time.
    for id in QEMU {
        let inc = o.incarnations.get(&id).cloned().unwrap_or_default();
        assert!(
            inc.windows(2).all(|w| w[1] > w[0]),
            "node {id}: incarnations {inc:?} do not rise: a restart lost its record"
        );
    }
    for id in TOKIO {
        let fresh = o.first_boots.get(&id).copied().unwrap_or(0);
        assert_eq!(fresh, 1, "node {id}: started {fresh} times with no record");
    }
    if let Some((d, a, b)) = o.worst_overlap(now) {
        assert!(
            d <= STAMP_TOLERANCE,
            "two masters at once for {d:?}: node {} and node {}",
            a.node,
            b.node
        );
    }
    drop(o);
    for p in c.procs.iter().filter(|p| Cluster::is_qemu(p.id)) {
        let cpu = p.child.as_ref().and_then(|ch| cpu_time(ch.id()));
        if let Some(cpu) = cpu {
            let share = cpu.as_secs_f64() / p.since.elapsed().as_secs_f64().max(1e-3);
            eprintln!(
                "node {}: {:.1} % of a host core since its last start",
                p.id,
                100.0 * share
            );
        }
    }
    failovers.sort();
    eprintln!(
        "mixed_ethernet: kills={} (tokio {}, qemu {}) failover_p50_ms={} failover_p99_ms={} \
         failover_max_ms={} lease_ms={} bound_ms={} total_s={:.0}",
        failovers.len(),
        killed_kinds[0],
        killed_kinds[1],
        percentile(&failovers, 50.0).as_millis(),
        percentile(&failovers, 99.0).as_millis(),
        failovers.last().map_or(0, |d| d.as_millis()),
        LEASE.as_millis(),
        bound.as_millis(),
        began.elapsed().as_secs_f64()
    );
    assert!(
        kills == 0 || (killed_kinds[0] > 0 && killed_kinds[1] > 0),
        "masters of both kinds must be killed: {killed_kinds:?}"
    );
}

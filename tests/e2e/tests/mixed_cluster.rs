//! Checks `docs/algorithm.md` §1 "The promise" and §4 "Restart" across runtimes: the
//! same core electing one master among three QEMU microcontrollers (the firmware of
//! `embedded-example/`) and two tokio nodes.
//!
//! Node 1 is a tokio node and the gateway: it connects to each QEMU node's UART1
//! chardev (a TCP server on 127.0.0.1) and serves each QEMU node's UDP proxy address
//! (`tenure_tokio::gateway`). Node 2 is a plain tokio node that sees the QEMU nodes as
//! ordinary UDP members. Nodes 3, 4, 5 are QEMU processes.
//!
//! The test builds the firmware, starts everything with a cluster key, waits for a
//! master, then kills the master again and again (a QEMU process or a tokio node; at
//! least one of each kind, and the gateway, using a hand-over to steer the role),
//! waits for the new master, restarts the killed node from its record (same flash
//! file, same data directory) and checks:
//!
//! - one master at a time: the terms each node reported never overlap (stamped on the
//!   host's monotonic clock, see [`Terms`]);
//! - every live node names the same master (ids);
//! - each QEMU node's terms carry rising fencing tokens (`token=` of its
//!   `became_master` lines: a later term of the register has a higher token);
//! - each failover took at most two leases plus a few round timeouts (a master killed
//!   while its renewal is in flight leaves a term the others must wait out: the known
//!   two-lease tail).
//!
//! Without `qemu-system-arm` or the `thumbv7em-none-eabihf` target it prints the
//! install commands and passes, unless `CI` is set. `MIXED_KILLS=N` sets the number of
//! kills (default 4: any master, then the other kind, then the
//! gateway, then any). Run it with `--nocapture` to see the timeline.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tenure::NodeId;
use tenure_tokio::{Handle, NodeConfig};

const CLUSTER: u32 = 4242;
const LEASE: Duration = Duration::from_millis(1000);
const ROUND: Duration = Duration::from_millis(150);
const BACKOFF: Duration = Duration::from_millis(300);
/// Tokio node ids (1 is the gateway) and QEMU node ids.
const TOKIO: [u16; 2] = [1, 2];
const QEMU: [u16; 3] = [3, 4, 5];
/// The tokio node that owns the QEMU nodes' links.
const GATEWAY: u16 = 1;
/// Reported terms of different nodes may overlap by this much before it counts as two
/// masters at once: the lateness of a QEMU node's UART line (the host stamps a term's
/// end when the `term_ended` line arrives).
const STAMP_TOLERANCE: Duration = Duration::from_millis(50);

/// The repository root: this crate is `tests/e2e`.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// Whether QEMU and the target are here; prints what to install if not.
fn prerequisites() -> bool {
    let qemu = Command::new("qemu-system-arm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let target = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| {
            let root = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&root)
                .join("lib/rustlib/thumbv7em-none-eabihf")
                .is_dir()
        })
        .unwrap_or(false);
    if qemu && target {
        return true;
    }
    let mut missing = String::new();
    if !qemu {
        missing.push_str("  sudo apt-get install -y qemu-system-arm binutils-arm-none-eabi\n");
    }
    if !target {
        missing.push_str("  rustup target add thumbv7em-none-eabihf\n");
    }
    // Straight to stderr: the test harness would capture `eprintln!` of a passing test.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "mixed_cluster: needs QEMU and the firmware target; install them with:\n{missing}"
    );
    if std::env::var_os("CI").is_some() {
        panic!("CI is set: the mixed cluster test must run, but prerequisites are missing");
    }
    let _ = writeln!(
        err,
        "mixed_cluster: SKIPPED (set CI=1 to make this a failure)"
    );
    false
}

fn build_firmware() -> PathBuf {
    let dir = workspace().join("embedded-example");
    let target_dir = dir.join("target");
    // Run from the firmware's folder: its .cargo/config.toml sets the target.
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .status()
        .expect("run cargo to build the firmware");
    assert!(status.success(), "firmware build failed");
    let elf = target_dir.join("thumbv7em-none-eabihf/release/tenure-embedded-example");
    assert!(elf.is_file(), "no firmware at {}", elf.display());
    elf
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free TCP port")
        .port()
}

/// One mastership interval on the host's clock.
#[derive(Clone, Copy, Debug)]
struct Term {
    node: u16,
    start: Instant,
    end: Option<Instant>,
}

/// Every node's reported terms.
///
/// Tokio nodes: `since` and `end` from the node's view (exact, on the host's clock),
/// the end moved on by each renewal, and cut at the instant the node was killed.
/// QEMU nodes: a term starts when its `became_master` line arrives (a little after the
/// node became master: this only shortens the term) and ends when its `term_ended` line
/// arrives or when the process is killed (renewals are not reported).
#[derive(Default)]
struct Terms {
    terms: Vec<Term>,
}

impl Terms {
    fn open(&mut self, node: u16, start: Instant, end: Option<Instant>) {
        self.terms.push(Term { node, start, end });
    }

    /// Moves the end of `node`'s open (or tokio-reported) term starting at `start`.
    fn set_end(&mut self, node: u16, start: Instant, end: Instant) {
        if let Some(t) = self
            .terms
            .iter_mut()
            .rev()
            .find(|t| t.node == node && t.start == start)
        {
            t.end = Some(end);
        } else {
            self.open(node, start, Some(end));
        }
    }

    /// Ends `node`'s term starting at `start` at `at`, unless it ended before.
    fn cut(&mut self, node: u16, start: Instant, at: Instant) {
        for t in self
            .terms
            .iter_mut()
            .filter(|t| t.node == node && t.start == start)
        {
            t.end = Some(t.end.map_or(at, |e| e.min(at)));
        }
    }

    fn close_open(&mut self, node: u16, at: Instant) {
        for t in self.terms.iter_mut().filter(|t| t.node == node) {
            t.end = Some(t.end.map_or(at, |e| e.min(at)));
        }
    }

    /// The shortest gap from the end of one node's term to the start of another's.
    fn closest_succession(&self, now: Instant) -> Option<(Duration, Term, Term)> {
        let mut best: Option<(Duration, Term, Term)> = None;
        for a in &self.terms {
            for b in self.terms.iter().filter(|b| b.node != a.node) {
                let end = a.end.unwrap_or(now);
                if b.start >= end && best.is_none_or(|(d, _, _)| b.start - end < d) {
                    best = Some((b.start - end, *a, *b));
                }
            }
        }
        best
    }

    /// The largest overlap between terms of different nodes, with the pair.
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

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a QEMU node said, parsed from its `EVENT` lines.
#[derive(Default)]
struct QemuView {
    master: Option<u16>,
    masters_won: u32,
    incarnation: Option<u64>,
    /// The fencing token of each term this node began, in order, kept across
    /// restarts (`None`: a `became_master` line without `token=`).
    tokens: Vec<Option<u64>>,
}

struct QemuNode {
    id: u16,
    port: u16,
    flash: PathBuf,
    child: Option<Child>,
    started: Instant,
    /// Whether it was started before (later starts come back from the flash file).
    launched: bool,
    view: Shared<QemuView>,
}

/// CPU time used so far by process `pid` (user + system), from `/proc`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// Kills every QEMU child and stops every tokio node when dropped (also on a failed
/// assertion).
struct Cluster {
    dir: PathBuf,
    elf: PathBuf,
    key: String,
    qemu: Vec<QemuNode>,
    tokio: Vec<(u16, NodeConfig, Option<Handle>)>,
    terms: Shared<Terms>,
    rt: tokio::runtime::Runtime,
    t0: Instant,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for q in &mut self.qemu {
            if let Some(mut c) = q.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for (_, _, h) in &mut self.tokio {
            if let Some(h) = h.take() {
                self.rt.block_on(h.abort());
            }
        }
        if std::env::var_os("MIXED_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {}", self.dir.display());
        }
    }
}

impl Cluster {
    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.t0).as_secs_f64()
    }

    fn start_qemu(&mut self, i: usize) {
        let members = (1..=5).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let q = &mut self.qemu[i];
        // `first_boot` on the first start only: a restart must find its record.
        let first = !std::mem::replace(&mut q.launched, true);
        let append = format!(
            "id={} members={members} cluster={CLUSTER} key={} lease_ms={} round_ms={} backoff_ms={} flash={}{}",
            q.id,
            self.key,
            LEASE.as_millis(),
            ROUND.as_millis(),
            BACKOFF.as_millis(),
            q.flash.file_name().and_then(|f| f.to_str()).unwrap_or_default(),
            if first { " first_boot" } else { "" }
        );
        let mut child = Command::new("qemu-system-arm")
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
            .args(["-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=link,host=127.0.0.1,port={},server=on,wait=off,nodelay=on",
                q.port
            ))
            .args(["-serial", "stdio", "-serial", "chardev:link", "-kernel"])
            // Relative: QEMU hands "<kernel> <append>" to the firmware's 256-byte buffer.
            .arg(self.elf.file_name().expect("file"))
            .arg("-append")
            .arg(append)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start qemu-system-arm");
        let stdout = child.stdout.take().expect("piped stdout");
        let (id, view, terms, t0) = (q.id, Arc::clone(&q.view), Arc::clone(&self.terms), self.t0);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))
            .ok();
        std::thread::spawn(move || qemu_reader(id, stdout, view, terms, log, t0));
        let mut view = lock(&q.view);
        *view = QemuView {
            tokens: std::mem::take(&mut view.tokens),
            ..QemuView::default()
        };
        drop(view);
        q.child = Some(child);
        q.started = Instant::now();
    }

    fn kill_qemu(&mut self, i: usize) -> Instant {
        let q = &mut self.qemu[i];
        let mut c = q.child.take().expect("running");
        let _ = c.kill();
        let at = Instant::now();
        let _ = c.wait();
        lock(&self.terms).close_open(q.id, at);
        let mut view = lock(&q.view);
        *view = QemuView {
            tokens: std::mem::take(&mut view.tokens),
            ..QemuView::default()
        };
        drop(view);
        at
    }

    fn start_tokio(&mut self, i: usize) {
        let config = self.tokio[i].1.clone();
        let id = self.tokio[i].0;
        let deadline = Instant::now() + Duration::from_secs(10);
        let handle = loop {
            // The previous incarnation's sockets close as its tasks wind down.
            match self.rt.block_on(tenure_tokio::start(config.clone())) {
                Ok(h) => break h,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("node {id}: start: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("node {id} cannot start: {e}"),
            }
        };
        let mut watch = handle.watch();
        let clock = handle.clock();
        let terms = Arc::clone(&self.terms);
        self.rt.spawn(async move {
            let mut open: Option<Instant> = None;
            loop {
                let view = *watch.borrow_and_update();
                let at = clock.deadline(view.taken_at).into_std();
                let term = view.term.filter(|_| view.running);
                let start = term.map(|t| clock.deadline(t.since).into_std());
                // A term that is no longer in the view ended when the view changed
                // (release, hand-over, superseded), if not before.
                if let Some(prev) = open.filter(|p| Some(*p) != start) {
                    lock(&terms).cut(id, prev, at);
                }
                if let (Some(t), Some(start)) = (term, start) {
                    lock(&terms).set_end(id, start, clock.deadline(t.end).into_std());
                }
                open = start;
                if watch.changed().await.is_err() {
                    return;
                }
            }
        });
        self.tokio[i].2 = Some(handle);
    }

    fn kill_tokio(&mut self, i: usize) -> Instant {
        let h = self.tokio[i].2.take().expect("running");
        let at = Instant::now();
        self.rt.block_on(h.abort());
        lock(&self.terms).close_open(self.tokio[i].0, at);
        at
    }

    /// Every live node's master, by node.
    fn views(&self) -> Vec<(u16, Option<u16>)> {
        let mut v = Vec::new();
        for (id, _, h) in &self.tokio {
            if let Some(h) = h {
                v.push((*id, h.master().map(|m| m.node.0)));
            }
        }
        for q in &self.qemu {
            if q.child.is_some() {
                v.push((q.id, lock(&q.view).master));
            }
        }
        v
    }

    fn alive(&self, id: u16) -> bool {
        self.tokio.iter().any(|(i, _, h)| *i == id && h.is_some())
            || self.qemu.iter().any(|q| q.id == id && q.child.is_some())
    }

    /// The master every live node names, once they agree (and it is alive).
    fn agreed_master(&self) -> Option<u16> {
        let views = self.views();
        let first = views.first()?.1?;
        (self.alive(first) && views.iter().all(|(_, m)| *m == Some(first))).then_some(first)
    }

    /// Waits until all live nodes name one live master.
    fn wait_agreement(&self, timeout: Duration, what: &str) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.agreed_master() {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no agreement on a master within {timeout:?}: {:?}",
                self.views()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first term of a node other than `old` that started after `after`.
    fn new_term_after(&self, old: Option<u16>, after: Instant) -> Option<Term> {
        lock(&self.terms)
            .terms
            .iter()
            .filter(|t| Some(t.node) != old && t.start > after)
            .min_by_key(|t| t.start)
            .copied()
    }

    fn steer_to(&mut self, master: u16, to: u16) {
        eprintln!(
            "[{:7.3}] hand over: {master} -> {to}",
            self.secs(Instant::now())
        );
        if let Some((_, _, Some(h))) = self.tokio.iter().find(|(i, _, _)| *i == master) {
            let h = h.clone();
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(3), h.hand_over(NodeId(to))).await
            });
        } else if let Some(q) = self.qemu.iter_mut().find(|q| q.id == master) {
            if let Some(stdin) = q.child.as_mut().and_then(|c| c.stdin.as_mut()) {
                let _ = writeln!(stdin, "handover {to}");
                let _ = stdin.flush();
            }
        }
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn qemu_reader(
    id: u16,
    stdout: std::process::ChildStdout,
    view: Shared<QemuView>,
    terms: Shared<Terms>,
    mut log: Option<std::fs::File>,
    t0: Instant,
) {
    let mut started: Option<Instant> = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let at = Instant::now();
        let line = line.trim_end_matches('\r');
        if let Some(f) = log.as_mut() {
            let _ = writeln!(f, "[{:9.3}] {line}", (at - t0).as_secs_f64());
        }
        let Some(event) = line.strip_prefix("EVENT ") else {
            continue;
        };
        let name = event.split_whitespace().next().unwrap_or("");
        let node = field(event, "node").and_then(|n| n.parse::<u16>().ok());
        let mut v = lock(&view);
        match name {
            "start" => v.incarnation = field(event, "incarnation").and_then(|n| n.parse().ok()),
            "became_master" => {
                v.master = Some(id);
                v.masters_won += 1;
                let token = field(event, "token").and_then(|t| t.parse().ok());
                v.tokens.push(token);
                started = Some(at);
                lock(&terms).open(id, at, None);
            }
            "term_ended" => {
                if v.master == Some(id) {
                    v.master = None;
                }
                if let Some(s) = started.take() {
                    lock(&terms).set_end(id, s, at);
                }
            }
            "master" => v.master = node,
            "master_lost" if v.master == node => v.master = None,
            _ => {}
        }
    }
}

#[test]
fn mixed_cluster_elects_one_master_and_fails_over() {
    if !prerequisites() {
        return;
    }
    let elf = build_firmware();
    let kills: usize = std::env::var("MIXED_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(4);
    let dir = std::env::temp_dir().join(format!(
        "tenure-mixed-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = tenure_tokio::config::key_hex(&tenure_tokio::config::random_key());

    // Addresses: UDP for every member (the QEMU nodes' are the gateway's proxy
    // sockets), TCP chardev ports for the QEMU nodes.
    let udp: HashMap<u16, u16> = (1..=5).map(|i| (i, free_udp_port())).collect();
    let chardev: HashMap<u16, u16> = QEMU.iter().map(|&i| (i, free_tcp_port())).collect();
    let config = |id: u16| {
        let mut text = format!(
            "cluster_id = {CLUSTER}\nnode_id = {id}\ndata_dir = \"data-{id}\"\n\
             lease = \"{}ms\"\nround_timeout = \"{}ms\"\nmax_backoff = \"{}ms\"\nkey = \"{key}\"\n",
            LEASE.as_millis(),
            ROUND.as_millis(),
            BACKOFF.as_millis()
        );
        for m in 1..=5u16 {
            text.push_str(&format!(
                "\n[[members]]\nid = {m}\naddr = \"127.0.0.1:{}\"\n",
                udp[&m]
            ));
            if id == 1 && QEMU.contains(&m) {
                text.push_str(&format!("serial = \"127.0.0.1:{}\"\n", chardev[&m]));
            }
        }
        NodeConfig::from_toml(&text, &dir)
            .expect("valid config")
            .with_first_boot(true)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // A short kernel path (in the working directory) keeps the command line short.
    let fw = dir.join("fw.elf");
    std::fs::copy(&elf, &fw).expect("copy the firmware");
    let mut c = Cluster {
        elf: fw,
        key: key.clone(),
        qemu: QEMU
            .iter()
            .map(|&id| QemuNode {
                id,
                port: chardev[&id],
                flash: dir.join(format!("node-{id}.flash")),
                child: None,
                started: Instant::now(),
                launched: false,
                view: Arc::default(),
            })
            .collect(),
        tokio: TOKIO.iter().map(|&id| (id, config(id), None)).collect(),
        terms: Arc::default(),
        rt,
        t0: Instant::now(),
        dir,
    };

    eprintln!("mixed cluster in {}: tokio nodes {TOKIO:?} (1 = gateway), QEMU nodes {QEMU:?}, lease {LEASE:?}, rounds {ROUND:?}", c.dir.display());
    for i in 0..QEMU.len() {
        c.start_qemu(i);
    }
    for i in 0..TOKIO.len() {
        c.start_tokio(i);
    }
    let first = c.wait_agreement(Duration::from_secs(60), "start-up");
    eprintln!(
        "[{:7.3}] every node names master {first}",
        c.secs(Instant::now())
    );

    let bound = 2 * LEASE + 8 * ROUND + Duration::from_secs(1);
    let mut failovers = Vec::new();
    let mut killed_kinds = (false, false); // (tokio, qemu)
    for k in 0..kills {
        let mut master = c.wait_agreement(Duration::from_secs(30), "before a kill");
        // Make sure both kinds of master get killed, and the gateway once.
        let is_qemu = |m: u16| QEMU.contains(&m);
        let want: Option<fn(u16) -> bool> = match k {
            1 if !killed_kinds.1 => Some(|m| QEMU.contains(&m)),
            1 if !killed_kinds.0 => Some(|m| !QEMU.contains(&m)),
            2 => Some(|m| m == GATEWAY),
            // A restarted gateway often wins again: kill the others too.
            _ if k > 0 => Some(|m| m != GATEWAY),
            _ => None,
        };
        if let Some(want) = want.filter(|w| !w(master)) {
            let to = match k {
                2 => GATEWAY,
                _ if is_qemu(master) => 2,
                _ if k % 2 == 1 => QEMU[k % 3],
                _ => 2,
            };
            c.steer_to(master, to);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if c.agreed_master().is_some_and(want) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            master = c.wait_agreement(Duration::from_secs(30), "after a hand-over");
        }
        // Let a renewal or two pass.
        std::thread::sleep(Duration::from_millis(700));
        let killed_at = if let Some(i) = QEMU.iter().position(|&q| q == master) {
            killed_kinds.1 = true;
            c.kill_qemu(i)
        } else {
            let i = TOKIO.iter().position(|&t| t == master).expect("a member");
            killed_kinds.0 = true;
            c.kill_tokio(i)
        };
        eprintln!(
            "[{:7.3}] killed master {master} ({})",
            c.secs(killed_at),
            if is_qemu(master) { "QEMU" } else { "tokio" }
        );
        let gateway = master == GATEWAY;
        if gateway {
            // The gateway carries every QEMU node's link: without it node 2 is alone
            // and 3, 4, 5 are cut off from everyone, so no majority can talk and
            // nothing can be elected until it is back. Restart it at once.
            std::thread::sleep(Duration::from_millis(500));
            c.start_tokio(0);
            eprintln!(
                "[{:7.3}] gateway restarted from its data directory (no majority could talk without it)",
                c.secs(Instant::now())
            );
        }
        let deadline = killed_at + Duration::from_secs(20);
        let next = loop {
            if let Some(t) = c.new_term_after(if gateway { None } else { Some(master) }, killed_at)
            {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "no new master within 20 s of killing {master}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let failover = next.start - killed_at;
        eprintln!(
            "[{:7.3}] new master {} ({}) after {:.0} ms",
            c.secs(next.start),
            next.node,
            if is_qemu(next.node) { "QEMU" } else { "tokio" },
            failover.as_secs_f64() * 1000.0
        );
        failovers.push((master, next.node, failover, gateway));
        let agreed = c.wait_agreement(Duration::from_secs(20), "after the failover");
        eprintln!(
            "[{:7.3}] every live node names master {agreed}",
            c.secs(Instant::now())
        );

        // Restart the killed node from its record.
        std::thread::sleep(Duration::from_millis(500));
        if let Some(i) = QEMU.iter().position(|&q| q == master) {
            c.start_qemu(i);
        } else if !gateway {
            c.start_tokio(TOKIO.iter().position(|&t| t == master).expect("a member"));
        }
        let agreed = c.wait_agreement(Duration::from_secs(30), "after the restart");
        if let Some(q) = c.qemu.iter().find(|q| q.id == master) {
            let inc = lock(&q.view).incarnation;
            eprintln!("  node {master} restarted from its flash file (incarnation {inc:?})");
            assert!(
                inc.is_some_and(|i| i > 1),
                "a restarted QEMU node keeps its record"
            );
        }
        eprintln!(
            "[{:7.3}] node {master} restarted; every node names master {agreed}",
            c.secs(Instant::now())
        );
    }

    for q in &c.qemu {
        let Some(child) = &q.child else { continue };
        let wall = q.started.elapsed();
        // A node just restarted shows mostly its boot.
        if wall < Duration::from_secs(3) {
            continue;
        }
        if let Some(cpu) = cpu_time(child.id()) {
            eprintln!(
                "host CPU of QEMU node {}: {:.1} % of a core over {:.1} s (a live cluster)",
                q.id,
                100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
                wall.as_secs_f64()
            );
        }
    }

    // Safety over the whole run.
    let now = Instant::now();
    let terms = lock(&c.terms);
    eprintln!("terms (s since start):");
    for t in &terms.terms {
        eprintln!(
            "  node {}: {:8.3} .. {}",
            t.node,
            c.secs(t.start),
            t.end
                .map_or("(open)".into(), |e| format!("{:8.3}", c.secs(e)))
        );
    }
    if let Some((gap, a, b)) = terms.closest_succession(now) {
        eprintln!(
            "closest succession: node {} took over {:.0} ms after node {}'s term ended",
            b.node,
            gap.as_secs_f64() * 1000.0,
            a.node
        );
    }
    if let Some((d, a, b)) = terms.worst_overlap(now) {
        eprintln!(
            "largest overlap of reported terms: {d:?} (nodes {} and {})",
            a.node, b.node
        );
        assert!(
            d <= STAMP_TOLERANCE,
            "two masters at once: node {} {:?} and node {} {:?} overlap by {d:?}",
            a.node,
            (c.secs(a.start), a.end.map(|e| c.secs(e))),
            b.node,
            (c.secs(b.start), b.end.map(|e| c.secs(e))),
        );
    }
    drop(terms);
    eprintln!("failovers (killed -> new, time from kill to the new master's term):");
    for (old, new, d, gateway) in &failovers {
        let note = if *gateway {
            " (the gateway: restarted after 0.5 s, no majority until then)"
        } else {
            ""
        };
        eprintln!("  {old} -> {new}: {:.0} ms{note}", d.as_secs_f64() * 1000.0);
    }
    for (old, new, d, gateway) in &failovers {
        // Killing the gateway: restarted after 0.5 s; its links reconnect at once.
        let bound = if *gateway {
            bound + Duration::from_millis(1500)
        } else {
            bound
        };
        assert!(
            *d <= bound,
            "failover {old} -> {new} took {d:?}, more than {bound:?} (two leases + rounds)"
        );
    }
    assert!(killed_kinds.1 || kills < 2, "a QEMU master was killed");
    for q in &c.qemu {
        let v = lock(&q.view);
        eprintln!("node {} fencing tokens of its terms: {:?}", q.id, v.tokens);
        assert!(
            v.tokens.iter().all(Option::is_some),
            "node {}: a became_master line without token=: {:?}",
            q.id,
            v.tokens
        );
        assert!(
            v.tokens.windows(2).all(|w| w[0] < w[1]),
            "node {}: fencing tokens do not rise: {:?}",
            q.id,
            v.tokens
        );
    }
}

//! Checks `docs/algorithm.md` §3 "Release and hand-over" end to end, through the admin
//! port of real `tenure node` processes and the `tenure` commands that use it (`status`,
//! `release`, `hand-over`), and the admin port itself:
//!
//! - `POST /release` moves the role to another node (the releasing node stays away for a
//!   lease), `POST /hand-over?to=ID` gives it to that node; refusals (not master, not a
//!   candidate) exit non-zero with the reason;
//! - with an admin token file, a `POST` without the token, or with a wrong one, is refused
//!   with 401; without a token file, a `POST` is refused with 401 on a non-loopback
//!   address (192.0.2.1, inside a network namespace of `tenure_e2e::netns`) and open on
//!   loopback;
//! - `GET /healthz` says whether the node runs and has a quorum in view (503 once the
//!   others are gone, or the node's task is);
//! - garbage, oversized heads, slow and idle clients, too many connections get 4xx/503 or
//!   are closed, each counted once by reason in `/metrics`, while the port keeps serving;
//! - a taken admin port stops the node before it joins: it stores nothing and sends no
//!   datagram (and the same command with a free port does both, so the check can fail).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tenure_e2e::{liveness_bound, one_at_a_time, TempDir, LEASE};
use tenure_tokio::admin::{Status, HEAD_TIMEOUT, MAX_CONNECTIONS};
use tenure_tokio::Health;

/// Every wait of these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(30);
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The repository root: this crate is `tests/e2e`.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// The `tenure` binary, built (once per test binary) by the same cargo and profile as
/// this test, so it is never a stale one.
fn tenure() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // This test runs as <target>/<profile>/deps/admin-<hash>.
        let exe = std::env::current_exe().expect("test executable");
        let profile = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile directory")
            .to_path_buf();
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .current_dir(workspace())
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

/// `--first-boot`, if this `tenure node` has it (a data directory without a record then
/// needs it; with a record it changes nothing), else nothing.
fn first_boot() -> &'static [&'static str] {
    static FLAG: OnceLock<bool> = OnceLock::new();
    let has = *FLAG.get_or_init(|| {
        let help = Command::new(tenure())
            .args(["node", "--help"])
            .output()
            .expect("tenure node --help");
        String::from_utf8_lossy(&help.stdout).contains("--first-boot")
    });
    if has {
        &["--first-boot"]
    } else {
        &[]
    }
}

/// `count` consecutive free loopback UDP ports (held while checked, then released).
fn free_udp_range(count: u16) -> u16 {
    for _ in 0..100 {
        let first = UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        if base > u16::MAX - count {
            continue;
        }
        let rest: Vec<_> = (1..count)
            .map_while(|i| UdpSocket::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if rest.len() + 1 == usize::from(count) {
            return base;
        }
    }
    panic!("no {count} consecutive free UDP ports");
}

fn free_tcp_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("free TCP port")
        .port()
}

/// Writes `node<i>.toml` for nodes 1..=n of one cluster on UDP ports `base..`, with
/// `lease`; returns the files.
fn write_configs(dir: &Path, n: u16, base: u16, ip: &str) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut members = String::new();
    for i in 1..=n {
        members.push_str(&format!(
            "\n[[members]]\nid = {i}\naddr = \"{ip}:{}\"\nrole = \"candidate\"\n",
            base + i - 1
        ));
    }
    (1..=n)
        .map(|i| {
            let path = dir.join(format!("node{i}.toml"));
            let text = format!(
                "cluster_id = 77\nnode_id = {i}\nlisten = \"{ip}:{}\"\ndata_dir = \"data-{i}\"\n\
                 lease = \"{}ms\"\ninsecure = true\n{members}",
                base + i - 1,
                LEASE.as_millis()
            );
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

/// A `tenure node` process, killed (and reaped) on drop, also when the test fails.
struct Node {
    child: Child,
    admin: SocketAddr,
    log: PathBuf,
}

impl Node {
    /// `prefix` runs it inside something (`ip netns exec NS`), or nothing.
    fn start(prefix: &[&str], config: &Path, admin: SocketAddr, token: Option<&Path>) -> Node {
        let log = config.with_extension("log");
        let mut command = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(tenure());
                c
            }
            None => Command::new(tenure()),
        };
        command
            .arg("node")
            .arg("--config")
            .arg(config)
            .arg("--admin")
            .arg(admin.to_string())
            .args(first_boot())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(token) = token {
            command.arg("--admin-token-file").arg(token);
        }
        Node {
            child: command.spawn().expect("start tenure node"),
            admin,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw exchange: writes `request`, reads until the server closes (or 10 s pass).
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: tenure\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn status(addr: SocketAddr) -> Option<Status> {
    let (code, body) = get(addr, "/status")?;
    assert_eq!(code, 200, "{body}");
    Some(serde_json::from_str(&body).expect("a /status document"))
}

/// The sample of `tenure_admin_bad_requests_total{reason}` in `/metrics`.
fn bad_requests(addr: SocketAddr, reason: &str) -> u64 {
    let (_, text) = get(addr, "/metrics").expect("/metrics");
    let prefix = format!("tenure_admin_bad_requests_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .parse()
        .unwrap()
}

/// Waits until exactly one node claims the role; returns its index.
fn wait_master(nodes: &[&Node], not: Option<usize>) -> usize {
    let end = Instant::now() + liveness_bound(LEASE) + Duration::from_secs(5);
    while Instant::now() < end {
        let claims: Vec<usize> = (0..nodes.len())
            .filter(|i| status(nodes[*i].admin).is_some_and(|s| s.is_master))
            .collect();
        if let [m] = claims[..] {
            if Some(m) != not {
                return m;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs: Vec<String> = nodes.iter().map(|n| n.log()).collect();
    panic!("no (new) master: {logs:#?}");
}

/// Waits until the admin port answers /status.
fn wait_up(node: &Node) {
    let end = Instant::now() + BOUND;
    while Instant::now() < end {
        if TcpStream::connect(node.admin).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("admin port {} never answered: {}", node.admin, node.log());
}

/// Runs the `tenure` command (after `prefix`) with `args`.
fn cli(prefix: &[&str], args: &[&str]) -> Output {
    let mut command = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(tenure());
            c
        }
        None => Command::new(tenure()),
    };
    command.args(args);
    if ["status", "release", "hand-over"].contains(&args[0]) {
        command.args(["--timeout", "20s"]);
    }
    command.stdin(Stdio::null()).output().expect("run tenure")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn release_and_hand_over_move_the_role_and_need_the_token() {
    let _one = one_at_a_time();
    let dir = TempDir::new("admin-commands");
    let base = free_udp_range(3);
    let configs = write_configs(&dir.0, 3, base, "127.0.0.1");
    let token = dir.0.join("admin.token");
    // `tenure admin-token` writes a fresh token, readable by its owner only, and never
    // overwrites a file.
    let out = cli(&[], &["admin-token", "--out", token.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let secret = std::fs::read_to_string(&token).unwrap();
    let secret = secret.trim_end();
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let again = cli(&[], &["admin-token", "--out", token.to_str().unwrap()]);
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&token).unwrap().trim_end(), secret);
    let nodes: Vec<Node> = configs
        .iter()
        .map(|c| {
            let admin = SocketAddr::from(([127, 0, 0, 1], free_tcp_port("127.0.0.1")));
            Node::start(&[], c, admin, Some(&token))
        })
        .collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    nodes.iter().for_each(wait_up);
    let first = wait_master(&refs, None);
    let addr = |i: usize| nodes[i].admin.to_string();
    let token_arg = token.to_str().unwrap();

    // Health: every node runs and sees the quorum.
    let end = Instant::now() + BOUND;
    for n in &nodes {
        loop {
            let (code, body) = get(n.admin, "/healthz").unwrap();
            let health: Health = serde_json::from_str(&body).unwrap();
            if code == 200 {
                assert!(health.healthy && health.quorum_in_view, "{body}");
                assert_eq!((health.voters, health.quorum), (3, 2), "{body}");
                assert!(health.voters_heard >= 2, "{body}");
                break;
            }
            assert!(Instant::now() < end, "never healthy: {body}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // `tenure status`, readable and raw.
    let out = cli(&[], &["status", "--admin", &addr(first)]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(&format!("node {}: master (fencing token ", first + 1)),
        "{stdout}"
    );
    assert!(stdout.contains("health: healthy"), "{stdout}");
    let out = cli(&[], &["status", "--admin", &addr(first), "--json"]);
    let raw_status: Status = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(raw_status.node, first as u16 + 1);

    // No token, a wrong token: 401, and the role stays.
    let out = cli(&[], &["release", "--admin", &addr(first)]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("needs the admin token"), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    // The right length, one character off.
    let mut off = secret[..63].to_string();
    off.push(if secret.ends_with('0') { '1' } else { '0' });
    let wrong = raw(
        nodes[first].admin,
        format!("POST /release HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {off}\r\n\r\n")
            .as_bytes(),
    );
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    assert!(wrong.contains("wrong admin token"), "{wrong}");
    assert!(status(nodes[first].admin).unwrap().is_master);
    assert_eq!(bad_requests(nodes[first].admin, "unauthorized"), 2);

    // Release with the token: the role moves to another node.
    let old_token = status(nodes[first].admin).unwrap().token.unwrap();
    let out = cli(
        &[],
        &[
            "release",
            "--admin",
            &addr(first),
            "--admin-token-file",
            token_arg,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("node {} released the role", first + 1)),
        "{stdout}"
    );
    assert!(!status(nodes[first].admin).unwrap().is_master);
    let second = wait_master(&refs, Some(first));
    assert!(status(nodes[second].admin).unwrap().token.unwrap() > old_token);

    // Refusals: not master; a successor that is no member.
    let other = ((first + 1) % 3 + 1).to_string();
    let out = cli(
        &[],
        &[
            "hand-over",
            "--to",
            &other,
            "--admin",
            &addr(first),
            "--admin-token-file",
            token_arg,
        ],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("is not master"), "{stderr}");
    assert!(stderr.contains("HTTP 409"), "{stderr}");
    let out = cli(
        &[],
        &[
            "hand-over",
            "--to",
            "9",
            "--admin",
            &addr(second),
            "--admin-token-file",
            token_arg,
        ],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("node 9 is not another candidate"),
        "{stderr}"
    );
    assert!(status(nodes[second].admin).unwrap().is_master);

    // Hand-over with the token: the named node takes the role.
    let target = (0..3).find(|i| *i != second).unwrap();
    let out = cli(
        &[],
        &[
            "hand-over",
            "--to",
            &(target + 1).to_string(),
            "--admin",
            &addr(second),
            "--admin-token-file",
            token_arg,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("handed the role over to node {}", target + 1)),
        "{stdout}"
    );
    assert_eq!(wait_master(&refs, Some(second)), target);
    assert_eq!(bad_requests(nodes[first].admin, "refused"), 1);
    assert_eq!(bad_requests(nodes[second].admin, "refused"), 1);

    // The two others stop: the last one loses its quorum, and /healthz says so.
    let mut nodes = nodes;
    let last = nodes.remove(target);
    drop(nodes);
    let end = Instant::now() + BOUND;
    loop {
        let (code, body) = get(last.admin, "/healthz").unwrap();
        let health: Health = serde_json::from_str(&body).unwrap();
        if code == 503 {
            assert!(!health.healthy && !health.quorum_in_view, "{body}");
            assert!(health.running && health.voters_heard < 2, "{body}");
            break;
        }
        assert!(Instant::now() < end, "still healthy alone: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, metrics) = get(last.admin, "/metrics").unwrap();
    assert!(metrics.contains("\ntenure_healthy 0\n"), "{metrics}");
}

#[test]
fn bad_requests_are_answered_4xx_or_closed_and_counted() {
    let _one = one_at_a_time();
    let dir = TempDir::new("admin-bad");
    let configs = write_configs(&dir.0, 1, free_udp_range(1), "127.0.0.1");
    let admin = SocketAddr::from(([127, 0, 0, 1], free_tcp_port("127.0.0.1")));
    let node = Node::start(&[], &configs[0], admin, None);
    wait_up(&node);
    wait_master(&[&node], None);

    // Garbage, HTTP/2, oversized heads, a half request: 400, closed, 431, closed.
    let garbage = raw(admin, b"\x00\x01\x02garbage\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let h2 = raw(admin, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(!h2.contains("200 OK"), "{h2}");
    let big = format!(
        "GET /status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = raw(admin, big.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = raw(
        admin,
        format!("GET /status HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    {
        let mut s = TcpStream::connect(admin).unwrap();
        s.write_all(b"GET /status HTTP/1.1\r\nHo").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    }

    // Wrong paths, methods and queries; a POST from a web page.
    let cases: [(&[u8], &str); 6] = [
        (b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"),
        (b"GET /release HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405"),
        (b"POST /status HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405"),
        (
            b"POST /hand-over?to=x HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 400",
        ),
        (
            b"POST /release?now=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 400",
        ),
        (
            b"POST /release HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n\r\n",
            "HTTP/1.1 403",
        ),
    ];
    for (request, expected) in cases {
        let answer = raw(admin, request);
        assert!(answer.starts_with(expected), "{expected}: {answer}");
        assert!(answer.contains("{\"error\":"), "{answer}");
    }
    assert!(status(admin).unwrap().is_master, "no command went through");

    // Slow clients: one sends its head a byte at a time, one sends nothing. The port
    // serves others meanwhile, and closes both once the head timeout passes, unanswered.
    let slow_started = Instant::now();
    let trickle = std::thread::spawn(move || {
        let mut s = TcpStream::connect(admin).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let head = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: 0123456789012345678901234567890123456789\r\n\r\n";
        let mut answer = Vec::new();
        for byte in head {
            if s.write_all(&[*byte]).is_err() {
                break;
            }
            match s.read(&mut [0u8; 256]) {
                Ok(0) => break, // closed
                Ok(n) => answer.push(n),
                Err(_) => {} // nothing yet
            }
            if slow_started.elapsed() > BOUND {
                break;
            }
        }
        answer.is_empty()
    });
    let mut silent = TcpStream::connect(admin).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(status(admin).is_some(), "a slow client held the port");

    // Too many connections: the slots fill up, one more is answered 503 and closed.
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS - 2)
        .map(|_| TcpStream::connect(admin).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let busy = raw(admin, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        busy.is_empty()
            || (busy.starts_with("HTTP/1.1 503")
                && busy.ends_with("{\"error\":\"too many admin connections\"}")),
        "{busy}"
    );
    silent
        .set_read_timeout(Some(HEAD_TIMEOUT + Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        silent.read(&mut buf).unwrap_or(0),
        0,
        "an idle client got an answer"
    );
    assert!(trickle.join().unwrap(), "the slow client got an answer");
    for mut s in idle {
        s.set_read_timeout(Some(HEAD_TIMEOUT + Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            s.read(&mut buf).unwrap_or(0),
            0,
            "an idle client got an answer"
        );
    }
    // Every slot is free again once the head timeout passed.
    let end = Instant::now() + BOUND;
    while !matches!(get(admin, "/status"), Some((200, _)))
        || bad_requests(admin, "slow") < MAX_CONNECTIONS as u64
    {
        assert!(
            Instant::now() < end,
            "the port did not recover: {}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A poll that found every slot still taken was turned away as busy too.
    assert!(bad_requests(admin, "busy") >= 1);

    let expected = [
        ("malformed", 2),
        ("head_too_large", 2),
        ("incomplete", 1),
        ("not_found", 1),
        ("method_not_allowed", 2),
        ("bad_query", 2),
        ("browser", 1),
        ("slow", MAX_CONNECTIONS as u64),
        ("unauthorized", 0),
        ("refused", 0),
    ];
    for (reason, count) in expected {
        assert_eq!(bad_requests(admin, reason), count, "{reason}");
    }
}

#[test]
fn a_taken_admin_port_stops_the_node_before_it_joins() {
    let _one = one_at_a_time();
    let dir = TempDir::new("admin-taken");
    let base = free_udp_range(2);
    let configs = write_configs(&dir.0, 2, base, "127.0.0.1");
    // Node 2 is this test: it only listens.
    let peer = UdpSocket::bind(("127.0.0.1", base + 1)).unwrap();
    peer.set_nonblocking(true).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap();
    let data = dir.0.join("data-1");

    let mut node = Node::start(&[], &configs[0], admin, None);
    let end = Instant::now() + BOUND;
    let code = loop {
        if let Some(code) = node.child.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < end,
            "the node kept running: {}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = node.log();
    assert!(!code.success(), "{log}");
    assert!(
        log.contains(&format!("cannot serve admin on {admin}")),
        "{log}"
    );
    assert!(log.contains("the node did not start"), "{log}");
    assert!(
        !data.join("record").exists(),
        "the node stored a record: {log}"
    );
    let mut buf = [0u8; 2048];
    assert!(
        peer.recv_from(&mut buf).is_err(),
        "the node sent a datagram: {log}"
    );

    // The same command with a free admin port joins: it stores a record and campaigns.
    drop(taken);
    let node = Node::start(&[], &configs[0], admin, None);
    peer.set_nonblocking(false).unwrap();
    peer.set_read_timeout(Some(BOUND)).unwrap();
    let (_, from) = peer
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no datagram ({e}): {}", node.log()));
    assert_eq!(from.port(), base);
    assert!(data.join("record").exists(), "{}", node.log());
}

#[test]
fn a_non_loopback_admin_address_needs_a_token_file_for_post() {
    let _one = one_at_a_time();
    if !tenure_e2e::netns::skip_or_fail("a_non_loopback_admin_address_needs_a_token_file_for_post")
    {
        return;
    }
    // One namespace; its address 192.0.2.1 is on a veth, not a loopback address.
    let lab = tenure_e2e::netns::Lab::new(1);
    let ns = lab.node_ns(1);
    let exec = ["ip", "netns", "exec", ns.as_str()];
    let dir = TempDir::new("admin-netns");
    // Inside the namespace every port is free.
    let configs = write_configs(&dir.0, 1, 7001, "127.0.0.1");
    let admin = SocketAddr::from((lab.addr(1), 8001));
    let token = dir.0.join("admin.token");
    std::fs::write(&token, TOKEN).unwrap();
    let at = admin.to_string();

    // No token file: GET served, POST refused with 401 and the reason.
    {
        let node = Node::start(&exec, &configs[0], admin, None);
        let end = Instant::now() + liveness_bound(LEASE) + Duration::from_secs(5);
        loop {
            let out = cli(&exec, &["status", "--admin", &at]);
            if out.status.success() && text(&out).0.contains(": master (") {
                break;
            }
            assert!(Instant::now() < end, "no master: {}", node.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = cli(&exec, &["release", "--admin", &at]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success());
        assert!(stderr.contains("not a loopback address"), "{stderr}");
        assert!(stderr.contains("--admin-token-file"), "{stderr}");
        assert!(stderr.contains("HTTP 401"), "{stderr}");
        let out = cli(&exec, &["status", "--admin", &at]);
        assert!(
            text(&out).0.contains(": master ("),
            "the release went through"
        );
    }

    // With a token file: refused without the token, carried out with it.
    let node = Node::start(&exec, &configs[0], admin, Some(&token));
    let end = Instant::now() + liveness_bound(LEASE) + Duration::from_secs(5);
    loop {
        let out = cli(&exec, &["status", "--admin", &at]);
        if out.status.success() && text(&out).0.contains(": master (") {
            break;
        }
        assert!(Instant::now() < end, "no master: {}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cli(&exec, &["release", "--admin", &at]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("needs the admin token"), "{stderr}");
    let out = cli(
        &exec,
        &[
            "release",
            "--admin",
            &at,
            "--admin-token-file",
            token.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("node 1 released the role"), "{stdout}");
}

#[test]
fn healthz_of_an_embedded_node_says_when_its_task_is_gone() {
    let _one = one_at_a_time();
    let dir = TempDir::new("admin-embedded");
    let config = tenure_e2e::configs(&dir, &tenure_e2e::candidates(1), LEASE).remove(0);
    tenure_e2e::runtime().block_on(async {
        let admin = tenure_tokio::admin::Admin::bind("127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let addr = admin.local_addr();
        let h = tenure_e2e::start(&config);
        admin.serve(h.clone());
        tenure_e2e::wait_master(&[&h], liveness_bound(LEASE)).await;
        let healthz = move || tokio::task::spawn_blocking(move || get(addr, "/healthz").unwrap());
        let (code, body) = healthz().await.unwrap();
        assert_eq!(code, 200, "{body}");
        let health: Health = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (health.voters_heard, health.voters, health.quorum),
            (1, 1, 1)
        );
        assert_eq!(health.master, Some(1));
        h.abort().await;
        let (code, body) = healthz().await.unwrap();
        assert_eq!(code, 503, "{body}");
        let health: Health = serde_json::from_str(&body).unwrap();
        assert!(!health.running && !health.healthy, "{body}");
    });
}

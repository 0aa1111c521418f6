//! `tenure init-config` writes configuration files the node loads as they are: on
//! consecutive loopback ports, or on the addresses given (`--addresses`, one per node in
//! id order), with one shared key; wrong input gets a clear error and writes nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tenure_tokio::NodeConfig;

/// A directory of this test process, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tenure-init-config-{name}-{}-{}",
            std::process::id(),
            tenure_tokio::clock::host_monotonic_ns()
        ));
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn init_config(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenure"))
        .arg("init-config")
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("run the tenure binary")
}

fn load(out: &Path, id: u16) -> NodeConfig {
    NodeConfig::load(&out.join(format!("node{id}.toml"))).expect("the written file loads")
}

#[test]
fn addresses_become_the_members_and_each_node_listens_on_its_own() {
    let dir = Dir::new("addresses");
    let addrs = ["192.0.2.1:7100", "192.0.2.2:7100", "192.0.2.3:7200"];
    let joined = addrs.join(",");
    let out = init_config(&dir.0, &["--addresses", &joined, "--lease", "300ms"]);
    assert!(out.status.success(), "{out:?}");
    let expected: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
    let configs: Vec<NodeConfig> = (1..=3).map(|id| load(&dir.0, id)).collect();
    for (i, c) in configs.iter().enumerate() {
        assert_eq!(c.core.node_id, tenure::NodeId(i as u16 + 1));
        assert_eq!(c.listen, expected[i]);
        let members = c.peers.entries().to_vec();
        let want: Vec<(tenure::NodeId, SocketAddr)> = (1..=3)
            .map(tenure::NodeId)
            .zip(expected.iter().copied())
            .collect();
        assert_eq!(members, want);
        assert_eq!(c.core.lease, tenure::Duration::from_millis(300));
        assert_eq!(c.core.cluster_id, configs[0].core.cluster_id);
    }
    assert!(!dir.0.join("node4.toml").exists());
    // One key for all (the files differ only in node id and listen address).
    let key = |id: u16| {
        let text = std::fs::read_to_string(dir.0.join(format!("node{id}.toml"))).unwrap();
        text.lines()
            .find(|l| l.starts_with("key"))
            .unwrap()
            .to_string()
    };
    assert_eq!(key(1), key(2));
    assert_eq!(key(1), key(3));

    // --nodes agreeing with the list is accepted.
    let again = init_config(&dir.0, &["--addresses", &joined, "--nodes", "3", "--force"]);
    assert!(again.status.success(), "{again:?}");
}

#[test]
fn base_port_still_gives_consecutive_loopback_ports() {
    let dir = Dir::new("base-port");
    let out = init_config(&dir.0, &["--nodes", "2", "--base-port", "7300"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(load(&dir.0, 1).listen, "127.0.0.1:7300".parse().unwrap());
    assert_eq!(load(&dir.0, 2).listen, "127.0.0.1:7301".parse().unwrap());
    assert!(!dir.0.join("node3.toml").exists());
}

#[test]
fn wrong_addresses_get_a_clear_error_and_no_file() {
    let dir = Dir::new("wrong");
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--addresses",
                "192.0.2.1:7000,192.0.2.2:7000",
                "--nodes",
                "3",
            ],
            "--nodes 3 but --addresses gives 2",
        ),
        (
            &["--addresses", "192.0.2.1:7000,192.0.2.300:7000"],
            "192.0.2.300:7000",
        ),
        (&["--addresses", "192.0.2.1"], "192.0.2.1"),
        (
            &["--addresses", "192.0.2.1:7000,192.0.2.1:7000"],
            "nodes 1 and 2 both at 192.0.2.1:7000",
        ),
        (&["--addresses", "0.0.0.0:7000"], "unspecified"),
        (
            &["--addresses", "192.0.2.1:7000", "--base-port", "7000"],
            "cannot be used with",
        ),
    ];
    for (args, message) in cases {
        let out = init_config(&dir.0, args);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!dir.0.join("node1.toml").exists(), "{args:?} wrote a file");
    }
}

/// One `GET /status` on `addr`: the body.
fn status(addr: SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// A number field of a flat JSON object (`None` when absent or null).
fn number(body: &str, name: &str) -> Option<u64> {
    body.split(&format!("\"{name}\":"))
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_node_logs_its_term_span_before_claiming_it_and_status_reports_it() {
    let dir = Dir::new("term-log");
    let port = |proto_tcp: bool| {
        let a = if proto_tcp {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
        } else {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
        };
        a.unwrap()
    };
    let (udp, admin) = (port(false), port(true));
    let out = init_config(
        &dir.0,
        &["--addresses", &udp.to_string(), "--lease", "400ms"],
    );
    assert!(out.status.success(), "{out:?}");
    let log_path = dir.0.join("node1.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["node", "--admin", &admin.to_string(), "--config"])
        .arg(dir.0.join("node1.toml"))
        .env(
            "RUST_LOG",
            format!("warn,{}=debug", tenure_tokio::driver::TERM_LOG),
        )
        .stderr(log)
        .spawn()
        .unwrap();
    // Master for a while (several renewals), seen on /status.
    let mut seen: Vec<(u64, u64, u64)> = Vec::new(); // (boottime, begin, end)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline && seen.len() < 50 {
        if let Some(body) = status(admin) {
            if let (Some(now), Some(b), Some(e)) = (
                number(&body, "boottime_ns"),
                number(&body, "term_begin_ns"),
                number(&body, "term_end_ns"),
            ) {
                assert!(b <= now && now < e, "{body}");
                seen.push((now, b, e));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.len() >= 50,
        "master on /status only {} times",
        seen.len()
    );
    let begin = seen[0].1;
    assert!(seen.iter().all(|s| s.1 == begin), "one term: {seen:?}");
    let last_end = seen.iter().map(|s| s.2).max().unwrap();
    assert!(last_end > seen[0].2, "renewals extend the term end");

    // The log: the same term's begin, and extensions at least as far as /status saw.
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tenure::term"))
        .collect();
    let field = |line: &str, name: &str| -> Option<u64> {
        line.split(&format!(" {name}="))
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let begins: Vec<&&str> = lines.iter().filter(|l| l.contains("term begins")).collect();
    assert_eq!(begins.len(), 1, "{text}");
    assert_eq!(field(begins[0], "begin_ns"), Some(begin), "{text}");
    let logged_end = lines
        .iter()
        .filter_map(|l| field(l, "end_ns"))
        .max()
        .unwrap();
    assert!(logged_end >= last_end, "{logged_end} < {last_end}: {text}");
    assert!(lines.iter().any(|l| l.contains("term extended")), "{text}");
}

//! The `tenure` binary as an operator runs it: `init-config` writes a cluster on a host
//! name (`--host localhost`), its key file (mode 0600) and first-boot markers; real
//! `tenure node` processes look the names up and elect one master; a node whose record
//! is gone (data directory deleted, configuration copied to a new folder) refuses to
//! start until told it is a first start (`--first-boot`); a key file others can read is
//! warned about.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "tenure-process-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Running `tenure node` processes, killed (by their own handles) on drop.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tenure() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tenure"));
    c.env("RUST_LOG", "info");
    c
}

/// `n` consecutive free UDP ports on 127.0.0.1 (and the TCP ports 1000 above, for the
/// admin servers), tried at random bases.
fn free_ports(n: u16) -> u16 {
    let mut seed = u64::from(std::process::id())
        ^ u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        );
    for _ in 0..200 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let base = 20_000 + (seed >> 33) as u16 % 30_000;
        let free = (0..n).all(|i| {
            UdpSocket::bind(("127.0.0.1", base + i)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", base + i + 1000)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run tenure");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out
}

fn start_node(config: &Path, admin: u16, extra: &[&str]) -> Child {
    tenure()
        .args(["node", "--config"])
        .arg(config)
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tenure node")
}

/// A node's `/status` (the whole answer), if it answers.
fn status_of(admin: u16) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], admin));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The `master` of a node's `/status`, if it answers and names one.
fn master_of(admin: u16) -> Option<u16> {
    let text = status_of(admin)?;
    let rest = text.split("\"master\":").nth(1)?.trim_start();
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Waits until every admin port names the same master; returns it.
fn wait_agreed_master(admins: &[u16], timeout: Duration) -> u16 {
    let end = Instant::now() + timeout;
    loop {
        let seen: Vec<Option<u16>> = admins.iter().map(|a| master_of(*a)).collect();
        if let Some(Some(m)) = seen.first() {
            if seen.iter().all(|s| *s == Some(*m)) {
                return *m;
            }
        }
        assert!(
            Instant::now() < end,
            "no agreed master within {timeout:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `tenure node` expecting it to stop by itself within 20 s; its output.
fn run_to_exit(config: &Path, extra: &[&str]) -> Output {
    let mut child = tenure()
        .args(["node", "--config"])
        .arg(config)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tenure node");
    let end = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!("tenure node did not stop: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn stderr_of(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_cluster_on_host_names_from_init_config() {
    let dir = TempDir::new("names");
    let out = dir.0.join("cluster");
    let base = free_ports(3);
    run(tenure()
        .args([
            "init-config",
            "--nodes",
            "3",
            "--host",
            "localhost",
            "--lease",
            "500ms",
        ])
        .args(["--base-port", &base.to_string(), "--out"])
        .arg(&out));
    // The key sits in a file only its owner can read; the nodes' files name it.
    let key = out.join("cluster.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let text = std::fs::read_to_string(out.join("node1.toml")).unwrap();
    assert!(text.contains("key_file = \"cluster.key\""), "{text}");
    assert!(!text.contains("\nkey = "), "{text}");
    assert!(
        text.contains(&format!("addr = \"localhost:{base}\"")),
        "{text}"
    );
    for i in 1..=3 {
        assert!(out.join(format!("data-{i}/first-boot")).is_file());
    }

    let admins: Vec<u16> = (0..3).map(|i| base + 1000 + i).collect();
    let mut nodes = Nodes(
        (1..=3)
            .map(|i| start_node(&out.join(format!("node{i}.toml")), admins[i - 1], &[]))
            .collect(),
    );
    let master = wait_agreed_master(&admins, Duration::from_secs(20));
    assert!((1..=3).contains(&master), "{master}");
    // Every node names the master as init-config named it.
    for admin in &admins {
        let status = status_of(*admin).unwrap_or_default();
        assert!(
            status.contains(&format!("\"master_name\":\"node{master}\"")),
            "{status}"
        );
    }
    // The first records are durable: the markers are consumed.
    for i in 1..=3 {
        let data = out.join(format!("data-{i}"));
        assert!(data.join("record").is_file(), "{}", data.display());
        assert!(!data.join("first-boot").exists(), "{}", data.display());
    }
    let logs: Vec<String> = nodes.0.drain(..).map(stderr_of).collect();
    for log in &logs {
        assert!(log.contains("first boot"), "{log}");
        assert!(!log.contains("cannot resolve"), "{log}");
    }
}

#[test]
fn a_node_without_its_record_refuses_to_start() {
    let dir = TempDir::new("refuse");
    let out = dir.0.join("cluster");
    let base = free_ports(1);
    run(tenure()
        .args(["init-config", "--nodes", "1", "--lease", "300ms"])
        .args(["--base-port", &base.to_string(), "--out"])
        .arg(&out));
    let config = out.join("node1.toml");
    let data = out.join("data-1");

    // First start (the marker): it elects itself and stores its record.
    let node = Nodes(vec![start_node(&config, base + 1000, &[])]);
    wait_agreed_master(&[base + 1000], Duration::from_secs(20));
    drop(node);
    assert!(data.join("record").is_file());
    assert!(!data.join("first-boot").exists());

    // The record is lost (the data directory deleted): refused, naming the absolute
    // directory and the way out, and leaving no directory behind.
    std::fs::remove_dir_all(&data).unwrap();
    let refused = run_to_exit(&config, &[]);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "no record in the data directory {}",
            data.display()
        )),
        "{text}"
    );
    assert!(text.contains("--first-boot"), "{text}");
    assert!(!data.exists(), "a refused start created {}", data.display());

    // The configuration copied to a new folder (with its key file): refused too.
    let copy = dir.0.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(&config, copy.join("node1.toml")).unwrap();
    std::fs::copy(out.join("cluster.key"), copy.join("cluster.key")).unwrap();
    let refused = run_to_exit(&copy.join("node1.toml"), &[]);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{text}");
    assert!(
        text.contains(&copy.join("data-1").display().to_string()),
        "{text}"
    );

    // Told it is a first start: it starts (and warns that others can read the key,
    // whose copy has mode 0644 here).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            copy.join("cluster.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let node = start_node(&copy.join("node1.toml"), base + 1000, &["--first-boot"]);
    let mut node = Nodes(vec![node]);
    wait_agreed_master(&[base + 1000], Duration::from_secs(20));
    let log = stderr_of(node.0.remove(0));
    assert!(log.contains("first boot"), "{log}");
    assert!(log.contains("mode 0644"), "{log}");
    assert!(log.contains("chmod 600"), "{log}");
    assert!(copy.join("data-1/record").is_file());

    // The flag left in place: it changes nothing (the record is restored), and says so.
    let node = start_node(&copy.join("node1.toml"), base + 1000, &["--first-boot"]);
    let mut node = Nodes(vec![node]);
    wait_agreed_master(&[base + 1000], Duration::from_secs(20));
    let log = stderr_of(node.0.remove(0));
    assert!(log.contains("--first-boot changes nothing"), "{log}");
}

#[test]
fn a_bad_configuration_names_its_field_and_line() {
    let dir = TempDir::new("bad-config");
    let out = dir.0.join("cluster");
    let base = free_ports(1);
    run(tenure()
        .args([
            "init-config",
            "--nodes",
            "1",
            "--base-port",
            &base.to_string(),
            "--out",
        ])
        .arg(&out));
    let config = out.join("node1.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = 1 + text.lines().position(|l| l.starts_with("lease")).unwrap();
    std::fs::write(&config, text.replacen("lease =", "leese =", 1)).unwrap();
    let refused = run_to_exit(&config, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{}:{line}: `leese`: unknown field",
            config.display()
        )),
        "{err}"
    );
    // A key file that is missing.
    std::fs::write(&config, &text).unwrap();
    std::fs::remove_file(out.join("cluster.key")).unwrap();
    let refused = run_to_exit(&config, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("`key_file`: cannot read the key file"),
        "{err}"
    );
}

#[test]
fn addresses_may_be_host_names() {
    let dir = TempDir::new("addresses");
    let out = dir.0.join("cluster");
    run(tenure()
        .args([
            "init-config",
            "--addresses",
            "localhost:7100,127.0.0.1:7101,db-3.internal:7102",
        ])
        .arg("--out")
        .arg(&out));
    let text = std::fs::read_to_string(out.join("node3.toml")).unwrap();
    for addr in ["localhost:7100", "127.0.0.1:7101", "db-3.internal:7102"] {
        assert!(text.contains(&format!("addr = \"{addr}\"")), "{text}");
    }
    for (list, says) in [
        (
            "localhost:7100,localhost:7100",
            "nodes 1 and 2 both at localhost:7100",
        ),
        ("localhost", "localhost"),
        ("db_1:7000", "db_1:7000"),
    ] {
        let refused = tenure()
            .args(["init-config", "--force", "--addresses", list, "--out"])
            .arg(dir.0.join("other"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{list}: {err}");
        assert!(err.contains(says), "{list}: {err}");
    }
}

//! The `tenure node` logs: `--log-format json` writes one JSON object per line with the
//! fields at the top level, `me` (this node) and `master` are numbers, values are shown
//! with `Display` (no `Some(..)`, no `Expired`), the start-up summary names the resolved
//! data directory, the members, the lease and the renewal mode, and a node that sees no
//! master for 5 s warns.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("tenure-logs-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `tenure node`, killed on drop; its stderr lines arrive on `lines`.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Node {
    fn start(config: &Path, args: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
            .arg("node")
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the tenure binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Node { child, lines }
    }

    /// Every line until one contains `needle` (included), within `timeout`.
    fn until(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no log line with {needle:?} within {timeout:?}: {seen:#?}");
    }

    /// Ctrl-C, then the remaining lines (bounded).
    fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.try_iter().collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a cluster's files with `tenure init-config` on ports that were free a moment ago.
fn init_config(dir: &TempDir, nodes: u16) -> PathBuf {
    let base = (0..50)
        .find_map(|_| {
            let first = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
            let port = first.local_addr().ok()?.port();
            let rest: Option<Vec<_>> = (1..nodes)
                .map(|i| std::net::UdpSocket::bind(("127.0.0.1", port.checked_add(i)?)).ok())
                .collect();
            rest.map(|_| port)
        })
        .expect("free ports");
    let out = dir.0.join("cluster");
    let status = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["init-config", "--nodes", &nodes.to_string(), "--base-port"])
        .arg(base.to_string())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    out
}

fn json(line: &str) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert!(value.is_object(), "{line}");
    for key in ["timestamp", "level", "target", "message"] {
        assert!(value.get(key).is_some(), "no `{key}` in {line}");
    }
    value
}

fn find<'a>(lines: &'a [serde_json::Value], message: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))
}

#[test]
fn json_logs_key_every_line_by_node_and_summarise_the_start() {
    let dir = TempDir::new("json");
    let cluster = init_config(&dir, 1);
    let config = cluster.join("node1.toml");
    let node = Node::start(&config, &["--log-format", "json"]);
    let mut lines = node.until("became master", Duration::from_secs(15));
    lines.extend(node.stop());
    let lines: Vec<serde_json::Value> = lines.iter().map(|l| json(l)).collect();
    let started = find(&lines, "node started");
    assert_eq!(started["me"], 1, "{started}");
    let data_dir = started["data_dir"].as_str().unwrap();
    assert!(Path::new(data_dir).is_absolute(), "{started}");
    assert!(data_dir.ends_with("data-1"), "{started}");
    assert!(
        started["members"]
            .as_str()
            .unwrap()
            .starts_with("1=127.0.0.1:"),
        "{started}"
    );
    assert_eq!(started["lease"], "1s");
    assert_eq!(started["renewal"], "lease");
    let became = find(&lines, "became master");
    assert_eq!((&became["me"], &became["master"]), (&1.into(), &1.into()));
    assert!(became["token"].is_u64(), "{became}");
    let ended = find(&lines, "no longer master");
    assert_eq!(ended["reason"], "released", "{ended}");
    for line in &lines {
        if line["target"].as_str().unwrap().starts_with("tenure") {
            assert_eq!(line["me"], 1, "a line without me=: {line}");
        }
    }

    // Text, restarted from the record: Display values, never Debug.
    let node = Node::start(&config, &[]);
    let mut text = node.until("became master", Duration::from_secs(15));
    text.extend(node.stop());
    let all = text.join("\n");
    assert!(all.contains("restoring from the stored record"), "{all}");
    for leak in ["Some(", "None", "Expired", "Released", "NodeId("] {
        assert!(
            !all.contains(leak),
            "Debug formatting {leak:?} in the logs:\n{all}"
        );
    }
    assert!(all.contains(" me=1 "), "{all}");
}

#[test]
fn a_node_that_sees_no_master_warns_and_names_whom_it_heard() {
    let dir = TempDir::new("alone");
    let cluster = init_config(&dir, 3);
    // Node 1 of 3, alone: no majority, no master.
    let node = Node::start(&cluster.join("node1.toml"), &["--log-format", "json"]);
    let lines = node.until("no master", Duration::from_secs(20));
    let warning = json(lines.last().unwrap());
    drop(node.stop());
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert_eq!(warning["me"], 1, "{warning}");
    assert_eq!(warning["voters"], 3, "{warning}");
    assert_eq!(warning["heard"], "none", "{warning}");
    assert!(warning["for_s"].as_u64().unwrap() >= 5, "{warning}");
}

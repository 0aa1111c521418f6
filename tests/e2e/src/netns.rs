//! Real networks for end-to-end tests: Linux network namespaces joined by a bridge, with
//! nftables rules for loss and cuts.
//!
//! A [`Lab`] of `n` nodes is `n + 1` namespaces: one per node, holding one end of a veth
//! pair with address `192.0.2.<i>/24` (a documentation range, only ever inside these
//! namespaces), and one holding the bridge that joins the other ends. The bridge has a
//! namespace of its own: in the root namespace the host's firewall would see (and may
//! drop) the bridged traffic. Every name includes the test's process id, so parallel runs
//! never collide, and dropping the [`Lab`] (also while a panic unwinds) deletes every
//! namespace, which deletes the veths, the bridge and any tap in it.
//!
//! Faults are nftables rules on each node namespace's `input` hook, for packets that
//! arrive on the node's veth only (loopback, where a test may serve an admin port, is
//! never touched): random loss (`numgen random mod 100 < P drop`), and drops by source
//! address, which make one-way cuts, two-way cuts, isolation, a deaf node and splits.
//! [`Lab::set_faults`] replaces the whole rule set of every node atomically per node;
//! [`Lab::clear_faults`] removes every rule.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables): see [`unavailable`] and
//! [`skip_or_fail`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Why namespace tests cannot run here (`None` when they can): not root, or `ip` or
/// `nft` missing.
pub fn unavailable() -> Option<String> {
    let mut missing = Vec::new();
    if !rustix::process::geteuid().is_root() {
        missing.push("root (network namespaces and nftables need it)".to_string());
    }
    for (tool, package, arg) in [("ip", "iproute2", "-V"), ("nft", "nftables", "-v")] {
        let found = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("`{tool}` (apt-get install {package})"));
        }
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Returns true when namespace tests can run. Otherwise prints why test `name` is
/// skipped and returns false, or panics when the `CI` environment variable is set (in CI
/// the test must run).
pub fn skip_or_fail(name: &str) -> bool {
    let Some(reason) = unavailable() else {
        return true;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{name}: CI is set, so this test must run, but it needs {reason}"
    );
    // Straight to stderr: the harness would capture the output of a passing test.
    let _ = writeln!(
        std::io::stderr().lock(),
        "{name}: SKIPPED: needs {reason} (set CI=1 to make this a failure)"
    );
    false
}

/// Runs `program args` and returns its stdout, or a message with its stderr.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("{program} {args:?}: stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program} {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}: {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            stdin.map_or(String::new(), |s| format!("\ninput:\n{s}"))
        ))
    }
}

/// `ip args`, panicking with its message on failure (set-up and tear-down steps).
fn ip(args: &[&str]) {
    if let Err(e) = run("ip", args, None) {
        panic!("{e}");
    }
}

/// A set of faults for a [`Lab`]: random loss on every node's input, and links cut in
/// one direction. Nodes are numbered from 1, as the [`Lab`]'s addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Percent of the packets arriving at any node dropped at random (0 to 100).
    pub loss_percent: u8,
    /// `(from, to)`: node `to` drops everything from node `from`.
    pub cut: BTreeSet<(usize, usize)>,
    /// Nodes that drop everything arriving on their veth (they still send).
    pub deaf: BTreeSet<usize>,
}

impl Faults {
    /// No fault: every rule removed.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Random loss of `percent` % at every node's input, nothing else.
    pub fn loss(percent: u8) -> Self {
        Faults {
            loss_percent: percent.min(100),
            ..Faults::default()
        }
    }

    /// Also cuts the direction `from` → `to`.
    pub fn cut_one_way(mut self, from: usize, to: usize) -> Self {
        self.cut.insert((from, to));
        self
    }

    /// Also cuts both directions between `a` and `b`.
    pub fn cut_both_ways(self, a: usize, b: usize) -> Self {
        self.cut_one_way(a, b).cut_one_way(b, a)
    }

    /// Also cuts `node` from every other node of `1..=nodes`, both ways.
    pub fn isolate(self, node: usize, nodes: usize) -> Self {
        (1..=nodes)
            .filter(|&other| other != node)
            .fold(self, |f, other| f.cut_both_ways(node, other))
    }

    /// Also makes `node` deaf: it drops all it receives on its veth, and still sends.
    pub fn deaf(mut self, node: usize) -> Self {
        self.deaf.insert(node);
        self
    }

    /// Also splits the nodes into `side` and the rest of `1..=nodes`: no traffic
    /// crosses, either way.
    pub fn split(self, side: &[usize], nodes: usize) -> Self {
        let mut f = self;
        for &a in side {
            for b in (1..=nodes).filter(|b| !side.contains(b)) {
                f = f.cut_both_ways(a, b);
            }
        }
        f
    }
}

/// `n` nodes in network namespaces joined by a bridge (see the [module docs](self)).
/// Dropping it deletes everything it created; stop the processes you started in it
/// first (declare their guards after the lab, so they drop before it).
#[derive(Debug)]
pub struct Lab {
    pid: u32,
    nodes: usize,
    /// Namespaces created so far (deleted on drop), the bridge's first.
    created: Vec<String>,
}

impl Lab {
    /// Creates `nodes` (1 to 200) node namespaces and the bridge. Panics with the failing
    /// command's message (after deleting what it created) when a step fails.
    pub fn new(nodes: usize) -> Lab {
        assert!((1..=200).contains(&nodes), "1 to 200 nodes, not {nodes}");
        let mut lab = Lab {
            pid: std::process::id(),
            nodes,
            created: Vec::new(),
        };
        let bridge_ns = lab.bridge_ns();
        ip(&["netns", "add", &bridge_ns]);
        lab.created.push(bridge_ns.clone());
        let bridge = lab.bridge();
        ip(&["-n", &bridge_ns, "link", "set", "lo", "up"]);
        ip(&["-n", &bridge_ns, "link", "add", &bridge, "type", "bridge"]);
        ip(&["-n", &bridge_ns, "link", "set", &bridge, "up"]);
        for i in 1..=nodes {
            let ns = lab.node_ns(i);
            ip(&["netns", "add", &ns]);
            lab.created.push(ns.clone());
            let (outer, inner) = (lab.bridge_port(i), lab.node_if(i));
            ip(&[
                "-n", &bridge_ns, "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                "netns", &ns,
            ]);
            lab.attach_to_bridge(&outer);
            let addr = format!("{}/24", lab.addr(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner]);
            ip(&["-n", &ns, "link", "set", &inner, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        lab.clear_faults();
        lab
    }

    /// The number of node namespaces.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The namespace of node `i` (1-based).
    pub fn node_ns(&self, i: usize) -> String {
        format!("tn{}n{i}", self.pid)
    }

    /// The namespace holding the bridge (run QEMU or a poller here to reach every node).
    pub fn bridge_ns(&self) -> String {
        format!("tn{}br", self.pid)
    }

    /// The bridge's interface name, inside [`Lab::bridge_ns`].
    pub fn bridge(&self) -> String {
        format!("br{}", self.pid)
    }

    /// Node `i`'s veth inside its namespace (the interface the fault rules match).
    pub fn node_if(&self, i: usize) -> String {
        format!("e{}n{i}", self.pid)
    }

    /// The bridge's end of node `i`'s veth, inside [`Lab::bridge_ns`].
    fn bridge_port(&self, i: usize) -> String {
        format!("v{}n{i}", self.pid)
    }

    /// Node `i`'s address, `192.0.2.<i>`.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, u8::try_from(i).unwrap_or(255))
    }

    /// The nftables table of this lab (one in each node namespace).
    fn table(&self) -> String {
        format!("tenure{}", self.pid)
    }

    /// Adds interface `ifname` (it must already be in [`Lab::bridge_ns`]) to the
    /// bridge, and sets it up.
    pub fn attach_to_bridge(&self, ifname: &str) {
        let bridge_ns = self.bridge_ns();
        let bridge = self.bridge();
        ip(&["-n", &bridge_ns, "link", "set", ifname, "master", &bridge]);
        ip(&["-n", &bridge_ns, "link", "set", ifname, "up"]);
    }

    /// Creates tap device `tap<pid>n<index>` in [`Lab::bridge_ns`] on the bridge (for a
    /// QEMU guest started there with `-nic tap,ifname=...,script=no,downscript=no`) and
    /// returns its name. Guests take addresses of `192.0.2.0/24` above the nodes'. Deleted
    /// with the lab.
    pub fn add_tap(&self, index: usize) -> String {
        let name = format!("tap{}n{index}", self.pid);
        ip(&[
            "-n",
            &self.bridge_ns(),
            "tuntap",
            "add",
            "dev",
            &name,
            "mode",
            "tap",
        ]);
        self.attach_to_bridge(&name);
        name
    }

    /// `program` to run inside namespace `ns` (`ip netns exec ns program`; `ip` execs
    /// it, so the child's process id is the program's).
    pub fn command(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Moves the calling thread into namespace `ns` (its sockets then live there; other
    /// threads are not affected). Meant for a thread of its own.
    pub fn enter(&self, ns: &str) -> std::io::Result<()> {
        let file = std::fs::File::open(format!("/run/netns/{ns}"))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(std::io::Error::from)
    }

    /// The nftables script that makes node `i`'s rules those of `faults`.
    fn rules(&self, i: usize, faults: &Faults) -> String {
        let (table, dev) = (self.table(), self.node_if(i));
        let mut s = format!(
            "table inet {table} {{\n  chain input {{ type filter hook input priority 0; policy accept; }}\n}}\n\
             flush chain inet {table} input\n"
        );
        if faults.deaf.contains(&i) {
            let _ = writeln!(s, "add rule inet {table} input iifname \"{dev}\" drop");
        }
        for &(from, _) in faults.cut.iter().filter(|(_, to)| *to == i) {
            let _ = writeln!(
                s,
                "add rule inet {table} input iifname \"{dev}\" ip saddr {} drop",
                self.addr(from)
            );
        }
        if faults.loss_percent > 0 {
            let _ = writeln!(
                s,
                "add rule inet {table} input iifname \"{dev}\" numgen random mod 100 < {} drop",
                faults.loss_percent.min(100)
            );
        }
        s
    }

    /// Makes the rules of every node those of `faults` (each node's set replaced in one
    /// nftables transaction; node 1 first). Panics with nft's message on failure.
    pub fn set_faults(&self, faults: &Faults) {
        for i in 1..=self.nodes {
            let script = self.rules(i, faults);
            if let Err(e) = run(
                "ip",
                &["netns", "exec", &self.node_ns(i), "nft", "-f", "-"],
                Some(&script),
            ) {
                panic!("{e}");
            }
        }
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.set_faults(&Faults::none());
    }

    /// The rules node `i` has now, as `nft list table` prints them (for diagnostics).
    pub fn list_rules(&self, i: usize) -> String {
        let table = self.table();
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.node_ns(i),
                "nft",
                "list",
                "table",
                "inet",
                &table,
            ],
            None,
        )
        .unwrap_or_else(|e| e)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Node namespaces first (their veth ends go with them), the bridge's last.
        for ns in self.created.iter().rev() {
            if let Err(e) = run("ip", &["netns", "del", ns], None) {
                let _ = writeln!(std::io::stderr().lock(), "netns tear-down: {e}");
            }
        }
    }
}

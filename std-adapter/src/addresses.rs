//! The address book file: the UDP address of every member this node knows beyond its
//! configuration file, kept in its data directory (`DIR/addresses`).
//!
//! The core's member list has ids, roles and priorities, never addresses: addresses are
//! the adapter's business. A member added while the cluster runs (`tenure members add
//! ID ADDR`, [`crate::Handle::add_member`]) is in no configuration file of the nodes
//! that were running before, so each node keeps the addresses it learns here:
//!
//! - the master is given the new member's address by the command, and stores it before
//!   it proposes the change;
//! - every other node learns it from the first datagram of that member which is sealed
//!   with the cluster key, comes from an address that is no member's, and names (in its
//!   authenticated header) a member of the node's current list that the node has *no*
//!   address for. A known address is never replaced this way, so a datagram replayed
//!   from another address cannot take a member's place; a member that moved is removed
//!   and added again. (Someone who replays a new member's sealed datagram from another
//!   address before the member's own first one arrives makes this node send to that
//!   address: the member is unreachable from this node until it is removed and added
//!   again, a denial of service only, as every frame is still checked against the key.)
//!   Each address learned is logged and counted
//!   (`tenure_addresses_learned_total`). A cluster without a key learns nothing this way
//!   (anyone could claim a member's id): its nodes need the member in their
//!   configuration file.
//!
//! Nodes also **announce** themselves, because in the default renewal mode a follower
//! sends only to the master: every node of a cluster with a key sends a *hello* (a
//! small datagram sealed with the cluster key: magic, cluster id, its node id, a nonce,
//! a tag; [`hello`]) to every member it has an address for, at start, after every change
//! of its member list, and every [`HELLO_EVERY`]. A hello means nothing to the protocol
//! (it never reaches the core); a node learns the address of a member of its list it
//! has no address for from it, under the same rules as above.
//!
//! On start the file's entries are added to the configuration's, for the members the
//! configuration does not give (the configuration wins where both give one; the
//! difference is logged). Only members of the current list are written.
//!
//! The file is text: a first line `tenure-addresses 1` (the format version), then one
//! `ID ADDRESS` per line. It is replaced like the record: written to `addresses.tmp`,
//! `fsync`ed, renamed, and the directory `fsync`ed. A file that cannot be read, or that
//! is not in this format, stops the node with an error naming the file and the line: it
//! is never silently dropped.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tenure::NodeId;

/// The file's name inside the data directory.
pub const ADDRESSES_FILE: &str = "addresses";

/// The first line of the file: its format and version.
pub const ADDRESSES_HEADER: &str = "tenure-addresses 1";

/// The file could not be read, or is not an address book.
#[derive(Debug)]
pub struct AddressesError {
    /// The file.
    pub path: PathBuf,
    /// The line (from 1), when the content is at fault.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for AddressesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "the address book {} is unusable (line {line}: {}). Refusing to start: \
                 it holds the addresses of members added while the cluster ran. Fix the \
                 line (format: `{ADDRESSES_HEADER}`, then `ID IP:PORT` per line), or \
                 delete the file and list every member in the configuration file",
                self.path.display(),
                self.message
            ),
            None => write!(
                f,
                "cannot read the address book {}: {}",
                self.path.display(),
                self.message
            ),
        }
    }
}

impl std::error::Error for AddressesError {}

/// The entries of the address book in data directory `dir` (none if it has no file).
pub fn load(dir: &Path) -> Result<Vec<(NodeId, SocketAddr)>, AddressesError> {
    let path = dir.join(ADDRESSES_FILE);
    let text = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(AddressesError {
                path,
                line: None,
                message: e.to_string(),
            })
        }
    };
    let bad = |line: usize, message: String| AddressesError {
        path: path.clone(),
        line: Some(line),
        message,
    };
    let text = String::from_utf8(text).map_err(|_| bad(1, "not UTF-8 text".into()))?;
    parse(&text).map_err(|(line, message)| bad(line, message))
}

/// Parses the file's text; an error is `(line, what)`.
pub fn parse(text: &str) -> Result<Vec<(NodeId, SocketAddr)>, (usize, String)> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, first)) if first.trim_end() == ADDRESSES_HEADER => {}
        Some((_, first)) if first.starts_with("tenure-addresses ") => {
            return Err((
                1,
                format!(
                    "format `{first}` is not `{ADDRESSES_HEADER}` (written by another version)"
                ),
            ))
        }
        _ => return Err((1, format!("the first line is not `{ADDRESSES_HEADER}`"))),
    }
    let mut entries: Vec<(NodeId, SocketAddr)> = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(addr), None) = (words.next(), words.next(), words.next()) else {
            return Err((n, format!("`{line}` is not `ID IP:PORT`")));
        };
        let id = id
            .parse::<u16>()
            .ok()
            .filter(|id| *id > 0)
            .map(NodeId)
            .ok_or_else(|| (n, format!("`{id}` is not a node id (1 to 65535)")))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| (n, format!("`{addr}` is not an IP:PORT address")))?;
        if entries.iter().any(|(m, _)| *m == id) {
            return Err((n, format!("node {id} is listed twice")));
        }
        if let Some((m, _)) = entries.iter().find(|(_, a)| *a == addr) {
            return Err((n, format!("nodes {m} and {id} are both at {addr}")));
        }
        entries.push((id, addr));
    }
    Ok(entries)
}

/// The file's text for `entries`.
pub fn render(entries: &[(NodeId, SocketAddr)]) -> String {
    let mut text = format!("{ADDRESSES_HEADER}\n");
    for (id, addr) in entries {
        text.push_str(&format!("{id} {addr}\n"));
    }
    text
}

/// Replaces the address book of data directory `dir` with `entries`, atomically and
/// durably (write, `fsync`, rename, `fsync` of the directory).
pub fn store(dir: &Path, entries: &[(NodeId, SocketAddr)]) -> io::Result<()> {
    let path = dir.join(ADDRESSES_FILE);
    let temp = dir.join(format!("{ADDRESSES_FILE}.tmp"));
    let mut file = File::create(&temp)?;
    file.write_all(render(entries).as_bytes())?;
    file.sync_data()?;
    drop(file);
    fs::rename(&temp, &path)?;
    File::open(dir)?.sync_all()
}

/// How often a node announces itself to the other members (see the module docs).
pub const HELLO_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The first bytes of a hello.
const HELLO_MAGIC: &[u8; 8] = b"TNRHELO1";
/// Magic, cluster id, node id, nonce.
const HELLO_BODY: usize = 8 + 4 + 2 + 8;
/// The length of a hello.
pub const HELLO_LEN: usize = HELLO_BODY + tenure::auth::TAG_LEN;

/// The hello of node `me` of cluster `cluster`, sealed with the current key of `auth`
/// (`None` without a key: a cluster without one does not announce).
pub fn hello(auth: &tenure::Auth, cluster: u32, me: NodeId, nonce: u64) -> Option<[u8; HELLO_LEN]> {
    let tenure::Auth::Keys { current, .. } = auth else {
        return None;
    };
    let mut out = [0u8; HELLO_LEN];
    out[..8].copy_from_slice(HELLO_MAGIC);
    out[8..12].copy_from_slice(&cluster.to_le_bytes());
    out[12..14].copy_from_slice(&me.0.to_le_bytes());
    out[14..22].copy_from_slice(&nonce.to_le_bytes());
    let tag = tenure::TagKey::new(current).tag(&out[..HELLO_BODY]);
    out[HELLO_BODY..].copy_from_slice(&tag);
    Some(out)
}

/// Whether `bytes` looks like a hello (its magic and length): it is then never given to
/// the core, valid or not.
pub fn is_hello(bytes: &[u8]) -> bool {
    bytes.len() == HELLO_LEN && bytes.starts_with(HELLO_MAGIC)
}

/// The node a hello of cluster `cluster` comes from, if its tag verifies with a key of
/// `auth` (compared in constant time).
pub fn open_hello(bytes: &[u8], auth: &tenure::Auth, cluster: u32) -> Option<NodeId> {
    if !is_hello(bytes) {
        return None;
    }
    let tenure::Auth::Keys { current, previous } = auth else {
        return None;
    };
    let (body, tag) = bytes.split_at(HELLO_BODY);
    let verifies = |key: &tenure::Key| {
        let expected = tenure::TagKey::new(key).tag(body);
        let diff = expected.iter().zip(tag).fold(0u8, |d, (a, b)| d | (a ^ b));
        std::hint::black_box(diff) == 0
    };
    let ok = verifies(current) | previous.as_ref().is_some_and(verifies);
    let from = u16::from_le_bytes([body[12], body[13]]);
    let of_cluster = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) == cluster;
    (ok && of_cluster && from != 0).then_some(NodeId(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_opens_only_with_the_key_and_the_cluster() {
        let auth = tenure::Auth::key([7; 32]);
        let h = hello(&auth, 77, NodeId(4), 12345).unwrap();
        assert!(is_hello(&h));
        assert_eq!(open_hello(&h, &auth, 77), Some(NodeId(4)));
        assert_eq!(open_hello(&h, &auth, 78), None, "another cluster");
        assert_eq!(
            open_hello(&h, &tenure::Auth::key([8; 32]), 77),
            None,
            "another key"
        );
        let rotated = tenure::Auth::Keys {
            current: tenure::Key([8; 32]),
            previous: Some(tenure::Key([7; 32])),
        };
        assert_eq!(
            open_hello(&h, &rotated, 77),
            Some(NodeId(4)),
            "the previous key"
        );
        for i in 0..HELLO_LEN {
            let mut bad = h;
            bad[i] ^= 1;
            assert_ne!(
                open_hello(&bad, &auth, 77),
                Some(NodeId(4)),
                "byte {i} flipped"
            );
        }
        assert_eq!(open_hello(&h[..HELLO_LEN - 1], &auth, 77), None);
        assert!(hello(&tenure::Auth::Insecure, 77, NodeId(4), 1).is_none());
        assert_eq!(open_hello(&h, &tenure::Auth::Insecure, 77), None);
    }

    #[test]
    fn the_file_round_trips_and_bad_lines_are_named() {
        let a: SocketAddr = "127.0.0.1:7004".parse().unwrap();
        let b: SocketAddr = "[::1]:7005".parse().unwrap();
        let entries = vec![(NodeId(4), a), (NodeId(5), b)];
        assert_eq!(parse(&render(&entries)), Ok(entries));
        assert_eq!(parse(&format!("{ADDRESSES_HEADER}\n")), Ok(Vec::new()));
        for (text, line, what) in [
            ("", 1, "first line"),
            ("4 127.0.0.1:7004\n", 1, "first line"),
            ("tenure-addresses 2\n", 1, "another version"),
            ("tenure-addresses 1\n4\n", 2, "is not `ID IP:PORT`"),
            ("tenure-addresses 1\n0 127.0.0.1:1\n", 2, "not a node id"),
            ("tenure-addresses 1\n4 localhost:1\n", 2, "not an IP:PORT"),
            (
                "tenure-addresses 1\n4 127.0.0.1:1\n\n4 127.0.0.1:2\n",
                4,
                "twice",
            ),
            (
                "tenure-addresses 1\n4 127.0.0.1:1\n5 127.0.0.1:1\n",
                3,
                "both at",
            ),
            (
                "tenure-addresses 1\n4 127.0.0.1:1 x\n",
                2,
                "is not `ID IP:PORT`",
            ),
        ] {
            let (l, message) = parse(text).expect_err(text);
            assert_eq!(l, line, "{text:?}: {message}");
            assert!(message.contains(what), "{text:?}: {message}");
        }
    }

    #[test]
    fn store_replaces_and_a_damaged_file_stops_the_load() {
        let dir = std::env::temp_dir().join(format!(
            "tenure-addresses-{}-{}",
            std::process::id(),
            crate::clock::host_monotonic_ns()
        ));
        fs::create_dir_all(&dir).unwrap();
        assert!(load(&dir).unwrap().is_empty(), "no file: no entries");
        let entries = vec![(NodeId(4), "127.0.0.1:7004".parse().unwrap())];
        store(&dir, &entries).unwrap();
        assert_eq!(load(&dir).unwrap(), entries);
        assert!(!dir.join("addresses.tmp").exists());
        fs::write(dir.join(ADDRESSES_FILE), b"tenure-addresses 1\n4 garbage\n").unwrap();
        let err = load(&dir).expect_err("damaged");
        assert_eq!(err.line, Some(2));
        assert!(err.to_string().contains("Refusing to start"), "{err}");
        fs::write(dir.join(ADDRESSES_FILE), [0xff, 0xfe]).unwrap();
        assert!(load(&dir).is_err(), "not text");
        fs::remove_dir_all(&dir).unwrap();
    }
}

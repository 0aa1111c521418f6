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
//!   and added again. Each address learned is logged and counted
//!   (`tenure_addresses_learned_total`). A cluster without a key learns nothing this way
//!   (anyone could claim a member's id): its nodes need the member in their
//!   configuration file.
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

#[cfg(test)]
mod tests {
    use super::*;

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

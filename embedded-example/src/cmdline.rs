//! The node's start-up settings, parsed from the command line QEMU passes
//! (`-append "id=3 members=1,2,3"`), which reads back as
//! `<kernel path> id=3 members=1,2,3`.
//!
//! Keys: `id=N` (required), `members=A,B,C` (required, must contain `id`, at
//! most [`MAX_MEMBERS`]; ids 1..=65534, 65535 addresses every node on the
//! link), `cluster=N` (optional cluster id, default 1), `key=HEX` (optional
//! 32-byte cluster key as 64 hex digits; without it frames are not
//! authenticated), `lease_ms=N`, `round_ms=N`, `backoff_ms=N` (optional
//! overrides of the core's lease, round timeout and largest retry backoff;
//! a slow or loaded link needs longer rounds and backoffs), `flash=PATH`
//! (optional host file for the emulated flash, default
//! `tenure-node-<id>.flash` in QEMU's working directory).
//! Unknown keys are rejected so a typo does not go unnoticed.

use heapless::{String, Vec};

/// Cluster size the firmware is built for.
pub const MAX_MEMBERS: usize = 5;
/// Longest flash file path accepted.
pub const MAX_PATH: usize = 96;

/// What the command line says.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    /// This node's id.
    pub id: u16,
    /// The cluster id (the same on every node).
    pub cluster: u32,
    /// All members of the cluster, this node included, in the order given.
    pub members: Vec<u16, MAX_MEMBERS>,
    /// Overrides of the core's timing defaults, in milliseconds.
    pub timing: Timing,
    /// The pre-shared cluster key that authenticates frames, if given.
    pub key: Option<[u8; 32]>,
    /// Host path of the flash file, NUL-terminated for semihosting.
    pub flash_path: String<MAX_PATH>,
}

/// Timing overrides from the command line; `None` keeps the core default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// `lease_ms=`: how long others believe in a master.
    pub lease_ms: Option<u32>,
    /// `round_ms=`: how long a Paxos phase waits for a majority.
    pub round_ms: Option<u32>,
    /// `backoff_ms=`: the largest random pause before a retry.
    pub backoff_ms: Option<u32>,
}

/// Why the command line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CmdlineError {
    /// No `id=`.
    MissingId,
    /// No `members=`.
    MissingMembers,
    /// A number did not parse or is out of range.
    BadNumber,
    /// More than [`MAX_MEMBERS`] members, or a member listed twice.
    BadMembers,
    /// `id` is not among `members`.
    IdNotMember,
    /// `key=` is not 64 hex digits.
    BadKey,
    /// The flash path is too long.
    PathTooLong,
    /// A `key=value` pair with an unknown key, or a word without `=`.
    UnknownKey,
}

impl core::fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self {
            Self::MissingId => "missing id=N",
            Self::MissingMembers => "missing members=A,B,C",
            Self::BadNumber => "a number is malformed or out of range",
            Self::BadMembers => "too many or duplicate members",
            Self::IdNotMember => "id is not in members",
            Self::BadKey => "key must be 64 hex digits",
            Self::PathTooLong => "flash path too long",
            Self::UnknownKey => "unknown key (expected id=, members=, cluster=, key=, lease_ms=, round_ms=, backoff_ms=, flash=)",
        };
        f.write_str(what)
    }
}

/// The link address that means "every node".
pub const BROADCAST: u16 = u16::MAX;

fn node_id(s: &str) -> Result<u16, CmdlineError> {
    match s.parse() {
        Ok(id) if id != 0 && id != BROADCAST => Ok(id),
        _ => Err(CmdlineError::BadNumber),
    }
}

fn millis(s: &str) -> Result<u32, CmdlineError> {
    s.parse().map_err(|_| CmdlineError::BadNumber)
}

fn parse_key(hex: &str) -> Result<[u8; 32], CmdlineError> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return Err(CmdlineError::BadKey);
    }
    let digit = |c: u8| (c as char).to_digit(16).ok_or(CmdlineError::BadKey);
    let mut key = [0u8; 32];
    for (k, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
        *k = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(key)
}

/// Parses `<kernel path> key=value ...`. The first word is skipped only if it
/// has no `=`, so a bare `id=1 members=1` parses too.
pub fn parse(line: &str) -> Result<Settings, CmdlineError> {
    let mut words = line.split_ascii_whitespace().peekable();
    if words.peek().is_some_and(|w| !w.contains('=')) {
        words.next();
    }
    let mut id = None;
    let mut cluster = 1;
    let mut key = None;
    let mut timing = Timing::default();
    let mut members: Option<Vec<u16, MAX_MEMBERS>> = None;
    let mut flash: Option<&str> = None;
    for word in words {
        let (name, value) = word.split_once('=').ok_or(CmdlineError::UnknownKey)?;
        match name {
            "id" => id = Some(node_id(value)?),
            "cluster" => cluster = value.parse().map_err(|_| CmdlineError::BadNumber)?,
            "members" => {
                let mut list = Vec::new();
                for m in value.split(',').filter(|m| !m.is_empty()) {
                    let m = node_id(m)?;
                    if list.contains(&m) {
                        return Err(CmdlineError::BadMembers);
                    }
                    list.push(m).map_err(|_| CmdlineError::BadMembers)?;
                }
                members = Some(list);
            }
            "flash" => flash = Some(value),
            "key" => key = Some(parse_key(value)?),
            "lease_ms" => timing.lease_ms = Some(millis(value)?),
            "round_ms" => timing.round_ms = Some(millis(value)?),
            "backoff_ms" => timing.backoff_ms = Some(millis(value)?),
            _ => return Err(CmdlineError::UnknownKey),
        }
    }
    let id = id.ok_or(CmdlineError::MissingId)?;
    let members = members.ok_or(CmdlineError::MissingMembers)?;
    if !members.contains(&id) {
        return Err(CmdlineError::IdNotMember);
    }
    let mut flash_path = String::new();
    let written = match flash {
        Some(path) => flash_path.push_str(path).is_ok(),
        None => core::fmt::write(&mut flash_path, format_args!("tenure-node-{id}.flash")).is_ok(),
    };
    if !written || flash_path.push('\0').is_err() {
        return Err(CmdlineError::PathTooLong);
    }
    Ok(Settings {
        id,
        cluster,
        members,
        timing,
        key,
        flash_path,
    })
}

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
//! a slow or loaded link needs longer rounds and backoffs), `renewal=lease`
//! (the default: protocol 2's lease rounds, nothing written per renewal) or
//! `renewal=logged` (the seed's way, a `BeMaster` chosen and stored per
//! renewal; every member must use the same), `flash=PATH`
//! (optional host file for the emulated flash, default
//! `tenure-node-<id>.flash` in QEMU's working directory), `first_boot` (a
//! word without a value: this is the node's very first start, so an erased
//! flash may start it with nothing; without it a node whose flash holds no
//! record halts, since starting from nothing could forget its promises; a
//! stored record is always used, `first_boot` or not), `rejoin` (a word
//! without a value: the flash of a node that was a member was wiped or
//! replaced, so it rejoins as a new incarnation that votes only once the
//! recovery rule allows it; ignored, like `first_boot`, when a record is
//! stored).
//! With the `eth` feature also `ip=A.B.C.D/PREFIX` (required: this node's
//! static IPv4 address) and `peers=ID@A.B.C.D:PORT,...` (required: every
//! member's UDP address, this node's included, as in the `[[members]]` of a
//! `tenure node` configuration); see [`crate::net`].
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
    /// How the master renews its term (`renewal=`).
    pub renewal: tenure::Renewal,
    /// Host path of the flash file, NUL-terminated for semihosting.
    pub flash_path: String<MAX_PATH>,
    /// `first_boot`: an erased flash may start the node with nothing.
    pub first_boot: bool,
    /// `rejoin`: an erased flash starts the node as a rejoining member.
    pub rejoin: bool,
    /// The Ethernet link's addresses (`ip=`, `peers=`).
    #[cfg(feature = "eth")]
    pub net: crate::net::NetSettings,
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
    /// `renewal=` is neither `lease` nor `logged`.
    BadRenewal,
    /// A `key=value` pair with an unknown key, or a word without `=`.
    UnknownKey,
    /// Both `first_boot` and `rejoin`: a node is either new or was a member.
    FirstBootAndRejoin,
    /// `ip=` or a `peers=` entry does not parse, or this node's entry is
    /// not on `ip=`.
    #[cfg(feature = "eth")]
    BadAddress,
    /// No `ip=`, or a member without a `peers=` address (or an address for
    /// a non-member).
    #[cfg(feature = "eth")]
    MissingAddress,
}

#[cfg(not(feature = "defmt"))]
impl CmdlineError {
    /// What is wrong, in words.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingId => "missing id=N",
            Self::MissingMembers => "missing members=A,B,C",
            Self::BadNumber => "bad number",
            Self::BadMembers => "too many or duplicate members",
            Self::IdNotMember => "id is not in members",
            Self::BadKey => "key must be 64 hex digits",
            Self::PathTooLong => "flash path too long",
            Self::BadRenewal => "renewal must be lease or logged",
            Self::UnknownKey => "unknown key or a word without =",
            Self::FirstBootAndRejoin => "first_boot and rejoin exclude each other",
            #[cfg(feature = "eth")]
            Self::BadAddress => "bad ip=A.B.C.D/N or peers=ID@A.B.C.D:PORT,...",
            #[cfg(feature = "eth")]
            Self::MissingAddress => "ip= and a peers= address for every member needed",
        }
    }
}

#[cfg(not(feature = "defmt"))]
impl crate::fmt::Show for CmdlineError {
    fn show(&self) {
        crate::fmt::put(self.as_str().as_bytes());
    }
}

/// `n` in decimal, written into the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            return &buf[at..];
        }
    }
}

/// The link address that means "every node".
pub const BROADCAST: u16 = u16::MAX;

/// `s` as a decimal `u32`: digits only, at least one, no overflow. One
/// parser for every number (instead of `str::parse` per integer type) keeps
/// the image small.
pub fn number(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u32, |n, b| {
        let digit = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// `bytes` as text if they are all ASCII (what the command line and the
/// console accept), without the general UTF-8 validator.
pub fn ascii(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { core::str::from_utf8_unchecked(bytes) })
    } else {
        None
    }
}

fn node_id(s: &str) -> Result<u16, CmdlineError> {
    match number(s).map(u16::try_from) {
        Some(Ok(id)) if id != 0 && id != BROADCAST => Ok(id),
        _ => Err(CmdlineError::BadNumber),
    }
}

fn millis(s: &str) -> Result<u32, CmdlineError> {
    number(s).ok_or(CmdlineError::BadNumber)
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

/// Splits `s` at the first `sep`: the parts before and after it. (A byte
/// search: `str::split_once` with a `char` links a generic string searcher.)
fn cut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == sep)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// The word that allows a first boot on an erased flash.
const FIRST_BOOT: &str = "first_boot";
/// The word that makes a node with an erased flash rejoin.
const REJOIN: &str = "rejoin";

/// Parses `<kernel path> key=value ... [first_boot|rejoin]`. The first word
/// is skipped only if it has no `=` and is neither word, so a bare
/// `id=1 members=1` parses too.
pub fn parse(line: &str) -> Result<Settings, CmdlineError> {
    let mut words = line.split_ascii_whitespace().peekable();
    if words
        .peek()
        .is_some_and(|w| cut(w, b'=').is_none() && *w != FIRST_BOOT && *w != REJOIN)
    {
        words.next();
    }
    let mut first_boot = false;
    let mut rejoin = false;
    let mut id = None;
    let mut cluster = 1;
    let mut key = None;
    let mut renewal = tenure::Renewal::Lease;
    let mut timing = Timing::default();
    let mut members: Option<Vec<u16, MAX_MEMBERS>> = None;
    let mut flash: Option<&str> = None;
    #[cfg(feature = "eth")]
    let mut net = crate::net::NetSettings::default();
    for word in words {
        if word == FIRST_BOOT {
            first_boot = true;
            continue;
        }
        if word == REJOIN {
            rejoin = true;
            continue;
        }
        let (name, value) = cut(word, b'=').ok_or(CmdlineError::UnknownKey)?;
        match name {
            "id" => id = Some(node_id(value)?),
            "cluster" => cluster = number(value).ok_or(CmdlineError::BadNumber)?,
            "members" => {
                let mut list = Vec::new();
                let mut rest = value;
                while !rest.is_empty() {
                    let (m, after) = cut(rest, b',').unwrap_or((rest, ""));
                    rest = after;
                    if m.is_empty() {
                        continue;
                    }
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
            "renewal" => {
                renewal = match value {
                    "lease" => tenure::Renewal::Lease,
                    "logged" => tenure::Renewal::Logged,
                    _ => return Err(CmdlineError::BadRenewal),
                }
            }
            #[cfg(feature = "eth")]
            _ if net.parse_key(name, value).transpose()?.is_some() => {}
            _ => return Err(CmdlineError::UnknownKey),
        }
    }
    let id = id.ok_or(CmdlineError::MissingId)?;
    let members = members.ok_or(CmdlineError::MissingMembers)?;
    if !members.contains(&id) {
        return Err(CmdlineError::IdNotMember);
    }
    #[cfg(feature = "eth")]
    net.check(id, &members)?;
    let mut flash_path = String::new();
    let written = match flash {
        Some(path) => flash_path.push_str(path).is_ok(),
        None => {
            let mut digits = [0; 20];
            let digits = decimal(u64::from(id), &mut digits);
            flash_path.push_str("tenure-node-").is_ok()
                && digits
                    .iter()
                    .all(|&d| flash_path.push(char::from(d)).is_ok())
                && flash_path.push_str(".flash").is_ok()
        }
    };
    if first_boot && rejoin {
        return Err(CmdlineError::FirstBootAndRejoin);
    }
    if !written || flash_path.push('\0').is_err() {
        return Err(CmdlineError::PathTooLong);
    }
    Ok(Settings {
        id,
        cluster,
        members,
        timing,
        key,
        renewal,
        flash_path,
        first_boot,
        rejoin,
        #[cfg(feature = "eth")]
        net,
    })
}

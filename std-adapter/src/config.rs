//! A node's configuration file (TOML).
//!
//! ```toml
//! cluster_id = 42            # same on every node; other clusters' traffic is dropped
//! node_id = 1                # this node, one of the members
//! listen = "127.0.0.1:7001"  # optional: defaults to this node's member address
//! data_dir = "data-1"        # relative paths are relative to this file; created if missing
//! lease = "1s"               # how long the others believe in a master
//! renewal = "lease"          # lease (default) | logged: the same on every node
//! # renew_every = "166ms"    # lease mode: a renewal round this often (default lease/6)
//! # try_window = "333ms"     # lease mode: rounds tried this long after the last
//! #                          #   completed one (default lease/3)
//! drift = 0.01               # bound on clock-rate error between nodes (1 %)
//! key_file = "cluster.key"   # pre-shared cluster key (64 hex digits) in a file of mode
//! #                          #   0600; every frame carries a SipHash tag
//! # key = "<64 hex digits>"  # or the key inline (then keep this file private)
//! # previous_key_file = "old.key" # while rotating: still accepted, never sent with
//! #                          #   (or `previous_key` inline)
//! # insecure = true          # instead of a key: no authentication (closed test networks)
//! # optional tuning: guard, round_timeout, max_backoff, priority_step, handover_grace
//!
//! [[members]]                # the same list on every node
//! id = 1
//! addr = "127.0.0.1:7001"    # IP:port or host:port: where it listens; its datagrams
//! #                          #   must come from there. A host name is looked up at start,
//! #                          #   again when sends fail, and every 30 s.
//! role = "candidate"         # candidate (default) | voter | learner
//! priority = 0               # optional, 0..=255: higher campaigns first
//! name = "db-1"              # optional: what logs, /status and metrics call it
//! advertise = "10.0.0.1:5432" # optional: where the service on it is reached (what a
//! #                          #   follower forwards requests to)
//!
//! [[members]]                # a microcontroller behind a serial link (see `serial`)
//! id = 7
//! addr = "127.0.0.1:7007"    # its UDP proxy address, bound by the gateway
//! serial = "127.0.0.1:7207"  # gateway only: the link's stream (QEMU UART chardev)
//! ```
//!
//! Only the gateway's file names `serial`; the other nodes list the same member with
//! just its `addr`, which the gateway serves (see [`crate::gateway`]).
//!
//! Every bad value gives a [`ConfigFileError`] naming its field and line; unknown fields
//! are refused.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use tenure::{ConfigError, Member, NodeId, Role};
use toml::Spanned;

use crate::clock::{parse_duration, to_core};
use crate::driver::{CoreConfig, MAX_NODES};
use crate::gateway::SerialMember;
use crate::transport::AddressBook;

/// Everything one node needs: the core's configuration plus addresses and storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The core's configuration (cluster, node, members, lease, timings). Its `seed` is
    /// replaced by a fresh random one at every start.
    pub core: CoreConfig,
    /// The UDP address to bind. When this node's own member address is a host name and
    /// the file sets no `listen`, it is the name's address, looked up at start.
    pub listen: SocketAddr,
    /// Every member's address, this node's included (members given by host name carry
    /// the name, looked up at start).
    pub peers: AddressBook,
    /// The directory holding the record (created if missing).
    pub data_dir: PathBuf,
    /// Members this node reaches over a COBS-framed stream and relays for the others
    /// (this node is their gateway); empty for most nodes.
    pub serial: Vec<SerialMember>,
    /// The members' names and advertised addresses (only members that have one).
    pub identities: Vec<Identity>,
    /// Whether a data directory without a record may start this node afresh. `false`
    /// (the default) refuses: a node that ran before and lost its record would forget
    /// its promises. Set it for a node's very first start only (`tenure node
    /// --first-boot`); the marker file [`crate::store::FIRST_BOOT_FILE`] in the data
    /// directory, which `tenure init-config` writes, does the same once.
    pub first_boot: bool,
    /// How the node starts without a record: a first member ([`StartAs::FirstBoot`](crate::StartAs::FirstBoot),
    /// with `first_boot` or the marker), a new member joining a running cluster
    /// ([`StartAs::Join`](crate::StartAs::Join), `tenure node --join`), or a member whose record was lost
    /// ([`StartAs::Rejoin`](crate::StartAs::Rejoin), `tenure node --rejoin`). `Join` and `Rejoin` need no
    /// `first_boot`.
    pub start_as: crate::driver::StartAs,
    /// Problems that do not stop the node (a key file others can read, ...): the node
    /// logs them at start.
    pub warnings: Vec<String>,
    /// The file gave no `listen` and this node's own address is a host name: bind what
    /// the name resolves to.
    pub(crate) listen_from_host: bool,
}

/// What a member is called and where its service is reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The member.
    pub id: NodeId,
    /// Its name, for people: logs, `/status`, metrics labels.
    pub name: Option<String>,
    /// The address of the service it runs (what a follower forwards requests to while
    /// this member is master). Free text, for example `10.0.0.1:5432` or a URL.
    pub advertise: Option<String>,
}

/// A bad configuration value, with the field it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFileError {
    /// The file, if the configuration came from one.
    pub file: Option<PathBuf>,
    /// The line (from 1) of the value, when known.
    pub line: Option<usize>,
    /// The field, for example `lease` or `members[2].addr`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigFileError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigFileError {
            file: None,
            line: None,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, located at byte `span` of `text`.
    fn at(mut self, text: &str, span: &Range<usize>) -> Self {
        self.line = Some(line_of(text, span.start));
        self
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigFileError {}

/// The line (from 1) of byte `pos` of `text`.
fn line_of(text: &str, pos: usize) -> usize {
    1 + text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// The field at byte `pos` of `text`: the key of its line, inside its table
/// (`members[2].` for the third `[[members]]`); `None` if the line holds no key.
fn field_at(text: &str, pos: usize) -> (String, Option<String>) {
    let mut prefix = String::new();
    let mut members = 0usize;
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let key = if trimmed.starts_with('#') {
            None
        } else if let Some(name) = trimmed.strip_prefix("[[") {
            let name = name.split("]]").next().unwrap_or("").trim();
            prefix = if name == "members" {
                members += 1;
                format!("members[{}].", members - 1)
            } else {
                format!("{name}.")
            };
            None
        } else if let Some(name) = trimmed.strip_prefix('[') {
            prefix = format!("{}.", name.split(']').next().unwrap_or("").trim());
            None
        } else {
            trimmed
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_string())
        };
        if pos < offset + line.len() {
            return (prefix, key);
        }
        offset += line.len();
    }
    (prefix, None)
}

/// The field and message of a TOML or value error at `span`.
fn from_toml_error(text: &str, e: &toml::de::Error) -> ConfigFileError {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return ConfigFileError::new("(syntax)", message);
    };
    let (prefix, key) = field_at(text, span.start);
    // serde names the key of unknown and missing fields: "unknown field `x`, ...".
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split('`').next());
    let field = match (named, key) {
        (Some(name), _) => {
            // A missing field's span is its table: its header names no key.
            format!("{prefix}{name}")
        }
        (None, Some(key)) => format!("{prefix}{key}"),
        (None, None) if prefix.is_empty() => "(syntax)".to_string(),
        (None, None) => prefix.trim_end_matches('.').to_string(),
    };
    ConfigFileError::new(field, message).at(text, &span)
}

/// A duration written as text: `"300ms"`, `"1s"`.
#[derive(Clone, Copy, Debug)]
struct DurationText(tenure::Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"300ms\" or \"1s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                parse_duration(v)
                    .map(|d| DurationText(to_core(d)))
                    .map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// One of a few words.
fn word<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    pick: fn(&str) -> Option<T>,
    refuse: fn(&str) -> String,
) -> Result<T, D::Error> {
    struct V<T> {
        expecting: &'static str,
        pick: fn(&str) -> Option<T>,
        refuse: fn(&str) -> String,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.pick)(v).ok_or_else(|| E::custom((self.refuse)(v)))
        }
    }
    d.deserialize_str(V {
        expecting,
        pick,
        refuse,
    })
}

#[derive(Clone, Copy, Debug)]
struct RoleText(Role);

impl<'de> Deserialize<'de> for RoleText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        word(
            d,
            "a string, candidate, voter or learner",
            |v| match v {
                "candidate" => Some(RoleText(Role::Candidate)),
                "voter" => Some(RoleText(Role::Voter)),
                "learner" => Some(RoleText(Role::Learner)),
                _ => None,
            },
            |v| format!("`{v}` is not candidate, voter or learner"),
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct RenewalText(tenure::Renewal);

impl<'de> Deserialize<'de> for RenewalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        word(
            d,
            "a string, lease or logged",
            |v| match v {
                "lease" => Some(RenewalText(tenure::Renewal::Lease)),
                "logged" => Some(RenewalText(tenure::Renewal::Logged)),
                _ => None,
            },
            |v| {
                format!(
                    "`{v}` is not lease or logged (every node of a cluster must use the same mode)"
                )
            },
        )
    }
}

/// A cluster key written inline: 64 hexadecimal digits.
#[derive(Clone, Copy, Debug)]
struct KeyText([u8; tenure::auth::KEY_LEN]);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string of 64 hexadecimal digits")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                parse_key(v).map(KeyText).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// The clocks' rate error bound, a number in 0..=0.1.
#[derive(Clone, Copy, Debug)]
struct Drift(f64);

impl<'de> Deserialize<'de> for Drift {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Drift;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number such as 0.01")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Drift, E> {
                if (0.0..=0.1).contains(&v) {
                    Ok(Drift(v))
                } else {
                    Err(E::custom(format!(
                        "{v} is outside 0..=0.1 (0 to 10 % clock-rate error)"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Drift, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

/// An IP:port address.
#[derive(Clone, Copy, Debug)]
struct IpText(SocketAddr);

impl<'de> Deserialize<'de> for IpText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IpText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP:port address such as \"127.0.0.1:7001\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IpText, E> {
                v.parse().map(IpText).map_err(|_| {
                    E::custom(format!(
                        "`{v}` is not an IP:port address (for example \"127.0.0.1:7001\")"
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A member's address as written: IP:port, or host:port looked up at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberAddr {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name and port, `host:port`, looked up by the running node.
    Host {
        /// The whole `host:port` text.
        text: String,
        /// The port.
        port: u16,
    },
}

impl MemberAddr {
    /// Parses `IP:port` or `host:port` (a DNS name of letters, digits, `-` and `.`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(ip) = text.parse::<SocketAddr>() {
            return Ok(MemberAddr::Ip(ip));
        }
        let bad = || {
            format!(
                "`{text}` is neither IP:port nor host:port (for example \"127.0.0.1:7001\" or \
                 \"db-1.example:7001\")"
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(bad());
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            // Digits and dots only: a mistyped IPv4 address, not a name.
            return Err(bad());
        }
        Ok(MemberAddr::Host {
            text: text.to_string(),
            port,
        })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            MemberAddr::Ip(a) => a.port(),
            MemberAddr::Host { port, .. } => *port,
        }
    }
}

impl<'de> Deserialize<'de> for MemberAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MemberAddr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP:port or host:port address such as \"127.0.0.1:7001\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MemberAddr, E> {
                MemberAddr::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A short text for people: a name or an advertised address.
#[derive(Clone, Debug)]
struct Label(String);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Label;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Label, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("must not be empty"));
                }
                if v.len() > MAX_LABEL {
                    return Err(E::custom(format!("{} bytes, at most {MAX_LABEL}", v.len())));
                }
                if v.chars().any(char::is_control) {
                    return Err(E::custom("must not hold control characters"));
                }
                Ok(Label(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The longest `name` or `advertise`, in bytes.
pub const MAX_LABEL: usize = 255;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cluster_id: u32,
    node_id: Spanned<u16>,
    listen: Option<Spanned<IpText>>,
    data_dir: Spanned<String>,
    lease: Option<Spanned<DurationText>>,
    drift: Option<Drift>,
    guard: Option<Spanned<DurationText>>,
    round_timeout: Option<Spanned<DurationText>>,
    max_backoff: Option<Spanned<DurationText>>,
    priority_step: Option<Spanned<DurationText>>,
    handover_grace: Option<Spanned<DurationText>>,
    renewal: Option<RenewalText>,
    renew_every: Option<Spanned<DurationText>>,
    try_window: Option<Spanned<DurationText>>,
    key: Option<Spanned<KeyText>>,
    key_file: Option<Spanned<String>>,
    previous_key: Option<Spanned<KeyText>>,
    previous_key_file: Option<Spanned<String>>,
    insecure: Option<Spanned<bool>>,
    members: Spanned<Vec<RawMember>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: Spanned<u16>,
    addr: Spanned<MemberAddr>,
    role: Option<RoleText>,
    priority: Option<u8>,
    serial: Option<Spanned<IpText>>,
    name: Option<Label>,
    advertise: Option<Label>,
}

/// Parses a cluster key written as 64 hexadecimal digits.
pub fn parse_key(text: &str) -> Result<[u8; tenure::auth::KEY_LEN], String> {
    let text = text.trim();
    if text.len() != 2 * tenure::auth::KEY_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected {} hexadecimal digits (a {}-byte key), found {} characters",
            2 * tenure::auth::KEY_LEN,
            tenure::auth::KEY_LEN,
            text.len()
        ));
    }
    let mut key = [0u8; tenure::auth::KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    Ok(key)
}

/// A fresh random cluster key (from the operating system's random source).
pub fn random_key() -> [u8; tenure::auth::KEY_LEN] {
    use std::io::Read;
    let mut key = [0u8; tenure::auth::KEY_LEN];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
    if from_os.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for chunk in key.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(crate::clock::host_monotonic_ns());
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    key
}

/// A key as 64 hexadecimal digits, for configuration files.
pub fn key_hex(key: &[u8; tenure::auth::KEY_LEN]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a key file: 64 hexadecimal digits (surrounding white space allowed). Says in
/// `warnings` when others than its owner may read it.
fn read_key_file(
    field: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<tenure::Key, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigFileError::new(
            field,
            format!("cannot read the key file {}: {e}", path.display()),
        )
    })?;
    let key = parse_key(&text).map_err(|m| {
        ConfigFileError::new(
            field,
            format!("the key file {} holds no key: {m}", path.display()),
        )
    })?;
    if let Some(warning) = loose_permissions(path, "key file") {
        warnings.push(warning);
    }
    Ok(tenure::Key(key))
}

/// A warning if the group or others may read (or write) `path`.
fn loose_permissions(path: &Path, what: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the {what} {} has mode {mode:04o}: other users may read the cluster key. \
                 Run `chmod 600 {}`",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, what);
        None
    }
}

/// The line of top-level key `field` in `text`, if it is set there.
fn line_of_key(text: &str, field: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(field)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

impl NodeConfig {
    /// A configuration built in code: `members` pairs each member with its address; the
    /// node listens on its own member address. Timings are the core's defaults; change
    /// them in [`NodeConfig::core`]. A missing record is refused at start unless
    /// [`NodeConfig::first_boot`] is set.
    pub fn new(
        cluster_id: u32,
        node_id: NodeId,
        members: &[(Member, SocketAddr)],
        data_dir: impl Into<PathBuf>,
    ) -> Result<Self, ConfigFileError> {
        let list: Vec<Member> = members.iter().map(|(m, _)| *m).collect();
        let core = CoreConfig::new(cluster_id, node_id, &list)
            .map_err(|e| ConfigFileError::new(core_field(&e), e.to_string()))?;
        let listen = members
            .iter()
            .find(|(m, _)| m.id == node_id)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                ConfigFileError::new("node_id", format!("{node_id} is not one of the members"))
            })?;
        let config = NodeConfig {
            core,
            listen,
            peers: AddressBook::new(members.iter().map(|(m, a)| (m.id, *a))),
            data_dir: data_dir.into(),
            serial: Vec::new(),
            identities: Vec::new(),
            first_boot: false,
            warnings: Vec::new(),
            listen_from_host: false,
            start_as: crate::driver::StartAs::FirstBoot,
        };
        config.validate()?;
        Ok(config)
    }

    /// The same configuration, allowed (`true`) or not to start afresh when its data
    /// directory holds no record: see [`NodeConfig::first_boot`].
    #[must_use]
    pub fn with_first_boot(mut self, first_boot: bool) -> Self {
        self.first_boot = first_boot;
        self
    }

    /// The same configuration, starting as `start_as` when there is no record (see
    /// [`NodeConfig::start_as`]).
    #[must_use]
    pub fn with_start_as(mut self, start_as: crate::driver::StartAs) -> Self {
        self.start_as = start_as;
        self
    }

    /// Member `id`'s name and advertised address, if it has either.
    pub fn identity(&self, id: NodeId) -> Option<&Identity> {
        self.identities.iter().find(|i| i.id == id)
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let with_file = |mut e: ConfigFileError| {
            e.file = Some(path.to_path_buf());
            e
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| with_file(ConfigFileError::new("(file)", e.to_string())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::from_toml(&text, base).map_err(with_file)?;
        let inline_key = ["key", "previous_key"]
            .iter()
            .any(|k| line_of_key(&text, k).is_some());
        if inline_key {
            if let Some(warning) = loose_permissions(path, "configuration file (with `key`)") {
                config.warnings.push(format!(
                    "{warning}, or move the key to a `key_file` of mode 0600"
                ));
            }
        }
        Ok(config)
    }

    /// Parses and checks a configuration; a relative `data_dir` or `key_file` is taken
    /// relative to `base_dir`. Host names are not looked up here: the running node
    /// looks them up.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, ConfigFileError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| from_toml_error(text, &e))?;
        let at = |field: &str, message: String, span: &Range<usize>| {
            ConfigFileError::new(field, message).at(text, span)
        };
        let node_id = NodeId(*raw.node_id.get_ref());
        if raw.data_dir.get_ref().trim().is_empty() {
            return Err(at(
                "data_dir",
                "must not be empty".into(),
                &raw.data_dir.span(),
            ));
        }
        let data_dir = base_dir.join(raw.data_dir.get_ref());

        let members = raw.members.get_ref();
        if members.is_empty() {
            return Err(at("members", "no members".into(), &raw.members.span()));
        }
        if members.len() > MAX_NODES {
            return Err(at(
                "members",
                format!("{} members, at most {MAX_NODES}", members.len()),
                &raw.members.span(),
            ));
        }
        let mut list: Vec<(Member, MemberAddr)> = Vec::new();
        let mut serial: Vec<SerialMember> = Vec::new();
        let mut identities: Vec<Identity> = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let field = |name: &str| format!("members[{i}].{name}");
            let id = *m.id.get_ref();
            let addr = m.addr.get_ref().clone();
            let unusable = match &addr {
                MemberAddr::Ip(a) => a.ip().is_unspecified() || a.port() == 0,
                MemberAddr::Host { port, .. } => *port == 0,
            };
            if unusable {
                return Err(at(
                    &field("addr"),
                    "cannot be sent to: give the member's real address and port".into(),
                    &m.addr.span(),
                ));
            }
            if let Some(j) = list.iter().position(|(x, _)| x.id.0 == id) {
                return Err(at(
                    &field("id"),
                    format!("{id} is also the id of members[{j}]"),
                    &m.id.span(),
                ));
            }
            if let Some(j) = list.iter().position(|(_, a)| *a == addr) {
                return Err(at(
                    &field("addr"),
                    format!("this is also the address of members[{j}]"),
                    &m.addr.span(),
                ));
            }
            if let Some(stream) = &m.serial {
                if NodeId(id) == node_id {
                    return Err(at(
                        &field("serial"),
                        "this node itself cannot be behind a serial link".into(),
                        &stream.span(),
                    ));
                }
                serial.push(SerialMember {
                    id: NodeId(id),
                    stream: stream.get_ref().0,
                });
            }
            if m.name.is_some() || m.advertise.is_some() {
                identities.push(Identity {
                    id: NodeId(id),
                    name: m.name.as_ref().map(|l| l.0.clone()),
                    advertise: m.advertise.as_ref().map(|l| l.0.clone()),
                });
            }
            let member = Member {
                id: NodeId(id),
                role: m.role.map_or(Role::Candidate, |r| r.0),
                priority: m.priority.unwrap_or(0),
            };
            list.push((member, addr));
        }
        let Some((_, own)) = list.iter().find(|(m, _)| m.id == node_id) else {
            return Err(at(
                "node_id",
                format!("{node_id} is not one of the members"),
                &raw.node_id.span(),
            ));
        };
        let members: Vec<Member> = list.iter().map(|(m, _)| *m).collect();
        let core = CoreConfig::new(raw.cluster_id, node_id, &members).map_err(|e| {
            let field = core_field(&e);
            let mut err = ConfigFileError::new(field, e.to_string());
            err.line = line_of_key(text, field);
            err
        })?;
        let mut peers = AddressBook::default();
        for (m, addr) in &list {
            match addr {
                MemberAddr::Ip(a) => peers.set_address(m.id, *a),
                MemberAddr::Host { text, .. } => peers.set_host(m.id, text.clone()),
            }
        }
        let (listen, listen_from_host) = match (&raw.listen, own) {
            (Some(listen), _) => (listen.get_ref().0, false),
            (None, MemberAddr::Ip(a)) => (*a, false),
            (None, MemberAddr::Host { port, .. }) => {
                (SocketAddr::from(([0, 0, 0, 0], *port)), true)
            }
        };
        let mut config = NodeConfig {
            core,
            listen,
            peers,
            data_dir,
            serial,
            identities,
            first_boot: false,
            warnings: Vec::new(),
            listen_from_host,
            start_as: crate::driver::StartAs::FirstBoot,
        };

        let core = &mut config.core;
        for (value, slot) in [
            (&raw.lease, &mut core.lease),
            (&raw.guard, &mut core.guard),
            (&raw.round_timeout, &mut core.round_timeout),
            (&raw.max_backoff, &mut core.max_backoff),
            (&raw.priority_step, &mut core.priority_step),
            (&raw.handover_grace, &mut core.handover_grace),
        ] {
            if let Some(v) = value {
                *slot = v.get_ref().0;
            }
        }
        if let Some(r) = raw.renewal {
            core.renewal = r.0;
        }
        core.renew_every = raw.renew_every.as_ref().map(|v| v.get_ref().0);
        core.try_window = raw.try_window.as_ref().map(|v| v.get_ref().0);
        if core.renewal == tenure::Renewal::Logged {
            for (field, set) in [
                ("renew_every", &raw.renew_every),
                ("try_window", &raw.try_window),
            ] {
                if let Some(v) = set {
                    return Err(at(
                        field,
                        "only used with `renewal = \"lease\"`: remove it, or set the mode".into(),
                        &v.span(),
                    ));
                }
            }
        }
        if let Some(d) = raw.drift {
            core.drift_ppm = (d.0 * 1e6).round() as u32;
        }

        let mut warnings = Vec::new();
        let mut key = |field: &str,
                       inline: &Option<Spanned<KeyText>>,
                       file: &Option<Spanned<String>>|
         -> Result<Option<tenure::Key>, ConfigFileError> {
            match (inline, file) {
                (Some(_), Some(f)) => Err(at(
                    &format!("{field}_file"),
                    format!("give `{field}` or `{field}_file`, not both"),
                    &f.span(),
                )),
                (Some(k), None) => Ok(Some(tenure::Key(k.get_ref().0))),
                (None, Some(f)) => {
                    if f.get_ref().trim().is_empty() {
                        return Err(at(
                            &format!("{field}_file"),
                            "must not be empty".into(),
                            &f.span(),
                        ));
                    }
                    read_key_file(
                        &format!("{field}_file"),
                        &base_dir.join(f.get_ref()),
                        &mut warnings,
                    )
                    .map(Some)
                    .map_err(|e| e.at(text, &f.span()))
                }
                (None, None) => Ok(None),
            }
        };
        let current = key("key", &raw.key, &raw.key_file)?;
        let previous = key("previous_key", &raw.previous_key, &raw.previous_key_file)?;
        config.warnings = warnings;
        let insecure = raw.insecure.as_ref().map(|v| (*v.get_ref(), v.span()));
        config.core.auth = match (current, previous, insecure) {
            (Some(current), previous, None | Some((false, _))) => {
                tenure::Auth::Keys { current, previous }
            }
            (None, None, Some((true, _))) => tenure::Auth::Insecure,
            (Some(_), _, Some((true, span))) => {
                return Err(at(
                    "insecure",
                    "`insecure = true` contradicts the key: remove one of them".into(),
                    &span,
                ))
            }
            (None, Some(_), _) => {
                let mut err = ConfigFileError::new(
                    "key",
                    "missing: a previous key is only accepted next to a current `key` or \
                     `key_file`",
                );
                err.line = line_of_key(text, "previous_key")
                    .or_else(|| line_of_key(text, "previous_key_file"));
                return Err(err);
            }
            (None, None, _) => {
                return Err(ConfigFileError::new(
                    "key",
                    "missing: set `key_file` to a file of 64 hex digits shared by every node \
                     (`tenure init-config` writes one), or `key`, or `insecure = true` to run \
                     without authentication on a closed network",
                ))
            }
        };
        config.validate().map_err(|mut e| {
            if e.line.is_none() {
                e.line = line_of_key(text, &e.field);
            }
            e
        })?;
        Ok(config)
    }

    /// Checks the whole configuration, naming the field of the first problem.
    pub fn validate(&self) -> Result<(), ConfigFileError> {
        self.core
            .validate()
            .map_err(|e| ConfigFileError::new(core_field(&e), e.to_string()))?;
        for m in &self.core.members {
            if self.peers.address_of(m.id).is_none() && self.peers.host_of(m.id).is_none() {
                return Err(ConfigFileError::new(
                    "members",
                    format!("member {} has no address", m.id),
                ));
            }
        }
        let me = self.core.node_id;
        let (own_ip, own_port) = match (self.peers.address_of(me), self.peers.host_of(me)) {
            (Some(a), _) => (Some(a.ip()), a.port()),
            (None, Some(host)) => (
                None,
                MemberAddr::parse(host)
                    .map_err(|m| ConfigFileError::new("node_id", m))?
                    .port(),
            ),
            (None, None) => return Err(ConfigFileError::new("node_id", "not one of the members")),
        };
        let ip_ok =
            self.listen.ip().is_unspecified() || own_ip.is_none_or(|ip| ip == self.listen.ip());
        if self.listen.port() != own_port || !ip_ok {
            let own = self
                .peers
                .host_of(me)
                .map(str::to_string)
                .or_else(|| self.peers.address_of(me).map(|a| a.to_string()))
                .unwrap_or_default();
            return Err(ConfigFileError::new(
                "listen",
                format!(
                    "{} does not match this node's member address {own}: the others recognise \
                     its datagrams by that address",
                    self.listen
                ),
            ));
        }
        Ok(())
    }

    /// Looks up the host names of this node's members (its own first: it must resolve)
    /// and records their addresses; sets [`NodeConfig::listen`] to the own name's address
    /// when the file gave no `listen`. A peer whose name does not resolve yet is left
    /// without an address (the running node keeps trying). Returns a warning per peer
    /// that did not resolve.
    pub async fn resolve(&mut self) -> Result<Vec<String>, crate::driver::StartupError> {
        let me = self.core.node_id;
        let mut hosts: Vec<(NodeId, String)> = self.peers.hosts().to_vec();
        hosts.sort_by_key(|(id, _)| *id != me);
        let mut warnings = Vec::new();
        for (id, host) in hosts {
            match crate::transport::resolve(&host).await {
                Ok(addr) => {
                    if id == me && self.listen_from_host {
                        self.listen = addr;
                    }
                    self.peers.set_address(id, addr);
                }
                Err(source) if id == me => {
                    return Err(crate::driver::StartupError::Resolve { host, source })
                }
                Err(e) => warnings.push(format!(
                    "member {id}: cannot resolve `{host}` yet ({e}): trying again while running"
                )),
            }
        }
        let resolved: Vec<(NodeId, SocketAddr)> = self.peers.entries().to_vec();
        for (i, (id, addr)) in resolved.iter().enumerate() {
            if let Some((other, _)) = resolved[..i].iter().find(|(_, a)| a == addr) {
                warnings.push(format!(
                    "members {other} and {id} resolve to the same address {addr}"
                ));
            }
        }
        Ok(warnings)
    }
}

/// The file field a core configuration error is about.
fn core_field(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::SelfNotMember(_) => "node_id",
        ConfigError::ZeroLease | ConfigError::LeaseTooShort { .. } => "lease",
        ConfigError::ZeroRoundTimeout => "round_timeout",
        ConfigError::RenewEvery { .. } => "renew_every",
        ConfigError::TryWindow { .. } => "try_window",
        ConfigError::DriftOutOfRange(_) => "drift",
        _ => "members",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
cluster_id = 42
node_id = 2
data_dir = "data-2"
lease = "500ms"
drift = 0.02
key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

[[members]]
id = 1
addr = "127.0.0.1:7001"

[[members]]
id = 2
addr = "127.0.0.1:7002"
priority = 3

[[members]]
id = 3
addr = "127.0.0.1:7003"
role = "voter"
"#;

    fn parse(text: &str) -> Result<NodeConfig, ConfigFileError> {
        NodeConfig::from_toml(text, Path::new("/etc/tenure"))
    }

    fn field_of(text: &str) -> String {
        parse(text).expect_err("should be refused").field
    }

    #[test]
    fn serial_members_belong_to_the_gateway() {
        let gateway = GOOD.replace(
            "addr = \"127.0.0.1:7003\"\n",
            "addr = \"127.0.0.1:7003\"\nserial = \"127.0.0.1:7203\"\n",
        );
        let c = parse(&gateway).expect("a gateway's file");
        assert_eq!(
            c.serial,
            vec![SerialMember {
                id: NodeId(3),
                stream: "127.0.0.1:7203".parse().unwrap()
            }]
        );
        assert!(parse(GOOD).expect("plain").serial.is_empty());
        let own = GOOD.replace(
            "addr = \"127.0.0.1:7002\"\n",
            "addr = \"127.0.0.1:7002\"\nserial = \"127.0.0.1:7202\"\n",
        );
        assert_eq!(field_of(&own), "members[1].serial");
        let bad = gateway.replace("127.0.0.1:7203", "uart0");
        assert_eq!(field_of(&bad), "members[2].serial");
    }

    #[test]
    fn a_good_file_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.core.cluster_id, 42);
        assert_eq!(c.core.node_id, NodeId(2));
        assert_eq!(c.core.lease, tenure::Duration::from_millis(500));
        assert_eq!(c.core.drift_ppm, 20_000);
        assert_eq!(c.listen, "127.0.0.1:7002".parse().unwrap());
        assert_eq!(c.data_dir, Path::new("/etc/tenure/data-2"));
        assert_eq!(c.core.members[1].priority, 3);
        assert_eq!(c.core.members[2].role, Role::Voter);
        assert_eq!(
            c.core.auth,
            tenure::Auth::key(core::array::from_fn(|i| i as u8))
        );
        assert_eq!(
            c.peers.member_at("127.0.0.1:7003".parse().unwrap()),
            Some(NodeId(3))
        );
    }

    #[test]
    fn every_bad_value_names_its_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("cluster_id = 42", "cluster_id = -1", "cluster_id"),
            ("cluster_id = 42", "cluster_id = \"x\"", "cluster_id"),
            ("cluster_id = 42\n", "", "cluster_id"),
            ("node_id = 2", "node_id = 70000", "node_id"),
            ("node_id = 2", "node_id = 9", "node_id"),
            ("data_dir = \"data-2\"", "data_dir = \"\"", "data_dir"),
            ("data_dir = \"data-2\"", "data_dir = 5", "data_dir"),
            ("lease = \"500ms\"", "lease = \"500\"", "lease"),
            ("lease = \"500ms\"", "lease = 500", "lease"),
            ("lease = \"500ms\"", "lease = \"0s\"", "lease"),
            ("lease = \"500ms\"", "lease = \"100ms\"", "lease"),
            ("drift = 0.02", "drift = 0.5", "drift"),
            ("drift = 0.02", "drift = -0.01", "drift"),
            ("drift = 0.02", "drift = \"1%\"", "drift"),
            ("lease = \"500ms\"", "leese = \"1s\"", "leese"),
            (
                "lease = \"500ms\"",
                "lease = \"1s\"\nround_timeout = \"0ms\"",
                "round_timeout",
            ),
            (
                "lease = \"500ms\"",
                "lease = \"1s\"\nlisten = \"127.0.0.1:9\"",
                "listen",
            ),
            (
                "lease = \"500ms\"",
                "lease = \"1s\"\nlisten = \"nowhere\"",
                "listen",
            ),
            (
                "addr = \"127.0.0.1:7001\"",
                "addr = \"localhost\"",
                "members[0].addr",
            ),
            (
                "addr = \"127.0.0.1:7001\"",
                "addr = \"0.0.0.0:7001\"",
                "members[0].addr",
            ),
            (
                "addr = \"127.0.0.1:7001\"",
                "addr = \"127.0.0.1:7002\"",
                "members[1].addr",
            ),
            ("id = 1", "id = 3", "members[2].id"),
            ("id = 1", "idd = 1", "members[0].idd"),
            ("role = \"voter\"", "role = \"boss\"", "members[2].role"),
            ("priority = 3", "priority = 300", "members[1].priority"),
            ("key = \"0001", "kee = \"0001", "kee"),
            ("key = \"000102", "key = \"0x0102", "key"),
            ("1e1f\"", "1e\"", "key"),
            ("drift = 0.02", "drift = 0.02\ninsecure = true", "insecure"),
            ("drift = 0.02", "drift = 0.02\ninsecure = 1", "insecure"),
            (
                "drift = 0.02",
                "drift = 0.02\nprevious_key = \"zz\"",
                "previous_key",
            ),
        ];
        for (from, to, field) in cases {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let err = parse(&text).expect_err(&text);
            assert_eq!(&err.field, field, "{text}\n=> {err}");
            assert!(err.to_string().contains(field), "{err}");
        }
        assert_eq!(
            field_of("cluster_id = 1\nnode_id = 1\ndata_dir = \"d\"\n"),
            "members"
        );
        assert_eq!(
            field_of("cluster_id = 1\nnode_id = 1\ndata_dir = \"d\"\nmembers = 3\n"),
            "members"
        );
        assert_eq!(field_of("this is not toml"), "(syntax)");
        let all_voters = GOOD
            .replace("priority = 3", "role = \"voter\"")
            .replace("id = 1\naddr", "id = 1\nrole = \"learner\"\naddr");
        assert_eq!(field_of(&all_voters), "members");
        // No key: refused unless running without authentication is asked for explicitly.
        let key_line = GOOD.lines().find(|l| l.starts_with("key =")).unwrap();
        let no_key = GOOD.replace(key_line, "");
        assert_eq!(field_of(&no_key), "key");
        let insecure = GOOD.replace(key_line, "insecure = true");
        assert_eq!(parse(&insecure).unwrap().core.auth, tenure::Auth::Insecure);
    }

    #[test]
    fn renewal_mode_and_its_timings() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.core.renewal, tenure::Renewal::Lease, "the default");
        assert_eq!((c.core.renew_every, c.core.try_window), (None, None));
        let with = |extra: &str| GOOD.replace("drift = 0.02", &format!("drift = 0.02\n{extra}"));
        let c = parse(&with("renewal = \"logged\"")).unwrap();
        assert_eq!(c.core.renewal, tenure::Renewal::Logged);
        let c = parse(&with(
            "renewal = \"lease\"\nrenew_every = \"50ms\"\ntry_window = \"120ms\"",
        ))
        .unwrap();
        assert_eq!(c.core.renewal, tenure::Renewal::Lease);
        assert_eq!(c.core.renew_every, Some(tenure::Duration::from_millis(50)));
        assert_eq!(c.core.try_window, Some(tenure::Duration::from_millis(120)));
        for (extra, field, says) in [
            ("renewal = \"paxos\"", "renewal", "not lease or logged"),
            ("renewal = 1", "renewal", "expected a string"),
            ("renew_every = \"50\"", "renew_every", "no unit"),
            ("renew_every = 50", "renew_every", "duration string"),
            ("renew_every = \"0ms\"", "renew_every", "above zero"),
            (
                "renew_every = \"200ms\"\ntry_window = \"100ms\"",
                "renew_every",
                "at most try_window",
            ),
            ("try_window = \"490ms\"", "try_window", ""),
            ("try_window = \"soon\"", "try_window", ""),
            (
                "renewal = \"logged\"\ntry_window = \"100ms\"",
                "try_window",
                "only used with",
            ),
            (
                "renewal = \"logged\"\nrenew_every = \"100ms\"",
                "renew_every",
                "only used with",
            ),
        ] {
            let err = parse(&with(extra)).expect_err(extra);
            assert_eq!(err.field, field, "{extra} => {err}");
            assert!(err.message.contains(says), "{extra} => {err}");
        }
    }

    #[test]
    fn errors_name_the_field_and_its_line() {
        // Line numbers count from the first line of the text (GOOD starts with "\n").
        let line =
            |text: &str, needle: &str| 1 + text.lines().position(|l| l.contains(needle)).unwrap();
        for (from, to, field, needle) in [
            ("lease = \"500ms\"", "leese = \"1s\"", "leese", "leese"),
            ("id = 1", "idd = 1", "members[0].idd", "idd"),
            (
                "priority = 3",
                "priority = 3\ncolour = \"red\"",
                "members[1].colour",
                "colour",
            ),
            (
                "role = \"voter\"",
                "role = \"boss\"",
                "members[2].role",
                "boss",
            ),
            (
                "id = 1",
                "id = 3",
                "members[2].id",
                "id = 3\naddr = \"127.0.0.1:7003\"",
            ),
            (
                "lease = \"500ms\"",
                "lease = \"5 minutes\"",
                "lease",
                "5 minutes",
            ),
            ("drift = 0.02", "drift = 0.5", "drift", "drift"),
        ] {
            let text = GOOD.replacen(from, to, 1);
            let err = parse(&text).expect_err(&text);
            assert_eq!(err.field, field, "{err}");
            let first = needle.lines().next().unwrap();
            // The duplicate id is reported at the third member's id.
            let expected = if field == "members[2].id" {
                1 + text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| *l == "id = 3")
                    .last()
                    .unwrap()
                    .0
            } else {
                line(&text, first)
            };
            assert_eq!(err.line, Some(expected), "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("line {expected}: `{field}`")),
                "{err}"
            );
        }
        // A missing member field: named in its member.
        let text = GOOD.replacen("addr = \"127.0.0.1:7002\"\n", "", 1);
        assert_eq!(field_of(&text), "members[1].addr");
        // With a file, the line follows the file name.
        let dir = temp_dir("line");
        let path = dir.join("node.toml");
        std::fs::write(&path, GOOD.replacen("lease =", "leese =", 1)).unwrap();
        let err = NodeConfig::load(&path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}:5: `leese`", path.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tenure-config-{name}-{}-{}",
            std::process::id(),
            crate::clock::host_monotonic_ns()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn key_files_are_read_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("key-file");
        let key_line = GOOD.lines().find(|l| l.starts_with("key =")).unwrap();
        let with_file = GOOD.replace(key_line, "key_file = \"cluster.key\"");
        let key_path = dir.join("cluster.key");
        let parse_here = |text: &str| NodeConfig::from_toml(text, &dir);

        // Missing file: named, with the absolute path.
        let err = parse_here(&with_file).unwrap_err();
        assert_eq!(err.field, "key_file");
        assert!(
            err.message.contains(&key_path.display().to_string()),
            "{err}"
        );
        assert!(err.line.is_some(), "{err}");

        // A good key, mode 0600: no warning.
        std::fs::write(&key_path, format!("{}\n", key_hex(&[7; 32]))).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = parse_here(&with_file).unwrap();
        assert_eq!(c.core.auth, tenure::Auth::key([7; 32]));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        // Readable by others: works, with a warning that names the file and the fix.
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = parse_here(&with_file).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("0644"), "{:?}", c.warnings);
        assert!(c.warnings[0].contains("chmod 600"), "{:?}", c.warnings);

        // Not a key.
        std::fs::write(&key_path, "secret\n").unwrap();
        let err = parse_here(&with_file).unwrap_err();
        assert_eq!(err.field, "key_file");
        assert!(err.message.contains("holds no key"), "{err}");

        // Both inline and file: refused; a previous key file works beside a current one.
        std::fs::write(&key_path, key_hex(&[7; 32])).unwrap();
        let both = GOOD.replace(key_line, &format!("{key_line}\nkey_file = \"cluster.key\""));
        assert_eq!(parse_here(&both).unwrap_err().field, "key_file");
        let rotating = GOOD.replace(
            key_line,
            &format!("{key_line}\nprevious_key_file = \"cluster.key\""),
        );
        let c = parse_here(&rotating).unwrap();
        assert!(
            matches!(c.core.auth, tenure::Auth::Keys { previous: Some(k), .. } if k == tenure::Key([7; 32]))
        );

        // An inline key in a file others can read: a warning too.
        let path = dir.join("node.toml");
        std::fs::write(&path, GOOD).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = NodeConfig::load(&path).unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("key_file")),
            "{:?}",
            c.warnings
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(NodeConfig::load(&path).unwrap().warnings.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_advertised_addresses_and_host_names() {
        let text = GOOD
            .replace(
                "addr = \"127.0.0.1:7001\"",
                "addr = \"localhost:7001\"\nname = \"db-1\"\nadvertise = \"http://db-1.example:8080\"",
            )
            .replace("addr = \"127.0.0.1:7003\"", "addr = \"node-3.invalid:7003\"");
        let c = parse(&text).unwrap();
        assert_eq!(
            c.identity(NodeId(1)),
            Some(&Identity {
                id: NodeId(1),
                name: Some("db-1".into()),
                advertise: Some("http://db-1.example:8080".into()),
            })
        );
        assert_eq!(c.identity(NodeId(2)), None);
        assert_eq!(c.peers.host_of(NodeId(1)), Some("localhost:7001"));
        assert_eq!(
            c.peers.address_of(NodeId(1)),
            None,
            "looked up by the running node"
        );
        assert_eq!(c.peers.host_of(NodeId(3)), Some("node-3.invalid:7003"));
        assert_eq!(
            c.peers.address_of(NodeId(2)),
            Some("127.0.0.1:7002".parse().unwrap())
        );

        // This node's own name: bound where it resolves.
        let own = text.replace("node_id = 2", "node_id = 1");
        let mut c = parse(&own).unwrap();
        assert_eq!(c.listen, "0.0.0.0:7001".parse().unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let warnings = rt.block_on(c.resolve()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(
            c.peers.address_of(NodeId(1)),
            Some("127.0.0.1:7001".parse().unwrap())
        );
        // .invalid never resolves (RFC 6761): a warning, not an error.
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("node-3.invalid"), "{warnings:?}");
        // An own name that does not resolve stops the start.
        let mut lost = parse(&text.replace("node_id = 2", "node_id = 3")).unwrap();
        let err = rt.block_on(lost.resolve()).unwrap_err();
        assert!(err.to_string().contains("node-3.invalid:7003"), "{err}");

        for (to, field) in [
            ("addr = \"localhost\"", "members[0].addr"),
            ("addr = \"local_host:7001\"", "members[0].addr"),
            ("addr = \"-x:7001\"", "members[0].addr"),
            ("addr = \"127.0.0.300:7001\"", "members[0].addr"),
            ("addr = \"localhost:0\"", "members[0].addr"),
            ("addr = \"localhost:70000\"", "members[0].addr"),
            ("addr = \"127.0.0.1:7001\"\nname = \"\"", "members[0].name"),
            (
                "addr = \"127.0.0.1:7001\"\nname = \"a\\nb\"",
                "members[0].name",
            ),
            (
                "addr = \"127.0.0.1:7001\"\nadvertise = 8080",
                "members[0].advertise",
            ),
        ] {
            let text = GOOD.replacen("addr = \"127.0.0.1:7001\"", to, 1);
            assert_eq!(field_of(&text), field, "{to}");
        }
        let long = format!(
            "addr = \"127.0.0.1:7001\"\nname = \"{}\"",
            "x".repeat(MAX_LABEL + 1)
        );
        assert_eq!(
            field_of(&GOOD.replacen("addr = \"127.0.0.1:7001\"", &long, 1)),
            "members[0].name"
        );
        // The same name twice is one address.
        let twice = GOOD
            .replace("addr = \"127.0.0.1:7001\"", "addr = \"localhost:7001\"")
            .replace("addr = \"127.0.0.1:7003\"", "addr = \"localhost:7001\"");
        assert_eq!(field_of(&twice), "members[2].addr");
    }
}

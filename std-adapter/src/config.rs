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
//! key = "<64 hex digits>"    # pre-shared cluster key: every frame carries a BLAKE2s tag
//! # previous_key = "<64 hex>"  # while rotating: still accepted, never sent with
//! # insecure = true          # instead of `key`: no authentication (closed test networks)
//! # optional tuning: guard, round_timeout, max_backoff, priority_step, handover_grace
//!
//! [[members]]                # the same list on every node
//! id = 1
//! addr = "127.0.0.1:7001"    # where it listens; its datagrams must come from here
//! role = "candidate"         # candidate (default) | voter | learner
//! priority = 0               # optional, 0..=255: higher campaigns first
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
//! Every bad value gives a [`ConfigFileError`] naming its field.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tenure::{ConfigError, Member, NodeId, Role};

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
    /// The UDP address to bind.
    pub listen: SocketAddr,
    /// Every member's address, this node's included.
    pub peers: AddressBook,
    /// The directory holding the record (created if missing).
    pub data_dir: PathBuf,
    /// Members this node reaches over a COBS-framed stream and relays for the others
    /// (this node is their gateway); empty for most nodes.
    pub serial: Vec<SerialMember>,
}

/// A bad configuration value, with the field it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFileError {
    /// The file, if the configuration came from one.
    pub file: Option<PathBuf>,
    /// The field, for example `lease` or `members[2].addr`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigFileError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigFileError {
            file: None,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigFileError {}

type Value = Option<toml::Value>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cluster_id: Value,
    node_id: Value,
    listen: Value,
    data_dir: Value,
    lease: Value,
    drift: Value,
    guard: Value,
    round_timeout: Value,
    max_backoff: Value,
    priority_step: Value,
    handover_grace: Value,
    renewal: Value,
    renew_every: Value,
    try_window: Value,
    key: Value,
    previous_key: Value,
    insecure: Value,
    members: Value,
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

/// A value as the user wrote it, for error messages.
fn found(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

fn required<'a>(field: &str, v: &'a Value) -> Result<&'a toml::Value, ConfigFileError> {
    v.as_ref()
        .ok_or_else(|| ConfigFileError::new(field, "missing (required)"))
}

fn integer(field: &str, v: &toml::Value, max: u64) -> Result<u64, ConfigFileError> {
    let i = v.as_integer().ok_or_else(|| {
        ConfigFileError::new(field, format!("expected an integer, found {}", found(v)))
    })?;
    u64::try_from(i)
        .ok()
        .filter(|i| *i <= max)
        .ok_or_else(|| ConfigFileError::new(field, format!("{i} is outside 0..={max}")))
}

fn string<'a>(field: &str, v: &'a toml::Value) -> Result<&'a str, ConfigFileError> {
    v.as_str().ok_or_else(|| {
        ConfigFileError::new(field, format!("expected a string, found {}", found(v)))
    })
}

fn address(field: &str, v: &toml::Value) -> Result<SocketAddr, ConfigFileError> {
    let text = string(field, v)?;
    text.parse().map_err(|_| {
        ConfigFileError::new(
            field,
            format!("`{text}` is not an IP:port address (for example \"127.0.0.1:7001\")"),
        )
    })
}

fn duration(
    field: &str,
    v: &Value,
    default: tenure::Duration,
) -> Result<tenure::Duration, ConfigFileError> {
    match v {
        None => Ok(default),
        Some(v) => {
            let text = string(field, v).map_err(|_| {
                ConfigFileError::new(
                    field,
                    format!(
                        "expected a duration string such as \"300ms\" or \"1s\", found {}",
                        found(v)
                    ),
                )
            })?;
            parse_duration(text)
                .map(to_core)
                .map_err(|m| ConfigFileError::new(field, m))
        }
    }
}

impl NodeConfig {
    /// A configuration built in code: `members` pairs each member with its address; the
    /// node listens on its own member address. Timings are the core's defaults; change
    /// them in [`NodeConfig::core`].
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
        };
        config.validate()?;
        Ok(config)
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
        Self::from_toml(&text, base).map_err(with_file)
    }

    /// Parses and checks a configuration; a relative `data_dir` is taken relative to
    /// `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, ConfigFileError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            // serde names unknown keys in its message: "unknown field `x`, expected ..."
            let field = message
                .split('`')
                .nth(1)
                .filter(|_| message.starts_with("unknown field"))
                .unwrap_or("(syntax)")
                .to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].lines().count().max(1);
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            ConfigFileError::new(field, format!("{message}{at}"))
        })?;

        let cluster_id = integer(
            "cluster_id",
            required("cluster_id", &raw.cluster_id)?,
            u64::from(u32::MAX),
        )?;
        let node_id = integer(
            "node_id",
            required("node_id", &raw.node_id)?,
            u64::from(u16::MAX),
        )?;
        let node_id = NodeId(u16::try_from(node_id).unwrap_or(u16::MAX));
        let data_dir = string("data_dir", required("data_dir", &raw.data_dir)?)?;
        if data_dir.trim().is_empty() {
            return Err(ConfigFileError::new("data_dir", "must not be empty"));
        }
        let data_dir = base_dir.join(data_dir);

        let members = match required("members", &raw.members)? {
            toml::Value::Array(items) => items,
            other => {
                return Err(ConfigFileError::new(
                    "members",
                    format!(
                        "expected an array of tables ([[members]]), found {}",
                        found(other)
                    ),
                ))
            }
        };
        if members.is_empty() {
            return Err(ConfigFileError::new("members", "no members"));
        }
        if members.len() > MAX_NODES {
            return Err(ConfigFileError::new(
                "members",
                format!("{} members, at most {MAX_NODES}", members.len()),
            ));
        }
        let mut list: Vec<(Member, SocketAddr)> = Vec::new();
        let mut serial: Vec<SerialMember> = Vec::new();
        for (i, item) in members.iter().enumerate() {
            let at = |name: &str| format!("members[{i}].{name}");
            let table = item
                .as_table()
                .ok_or_else(|| ConfigFileError::new(format!("members[{i}]"), "expected a table"))?;
            if let Some(key) = table
                .keys()
                .find(|k| !["id", "addr", "role", "priority", "serial"].contains(&k.as_str()))
            {
                return Err(ConfigFileError::new(
                    at(key),
                    "unknown field (expected id, addr, role, priority, serial)",
                ));
            }
            let id = integer(
                &at("id"),
                table
                    .get("id")
                    .ok_or_else(|| ConfigFileError::new(at("id"), "missing (required)"))?,
                u64::from(u16::MAX),
            )?;
            let id = u16::try_from(id).unwrap_or(u16::MAX);
            let addr = address(
                &at("addr"),
                table
                    .get("addr")
                    .ok_or_else(|| ConfigFileError::new(at("addr"), "missing (required)"))?,
            )?;
            if addr.ip().is_unspecified() || addr.port() == 0 {
                return Err(ConfigFileError::new(
                    at("addr"),
                    format!("{addr} cannot be sent to: give the member's real IP and port"),
                ));
            }
            let role = match table.get("role") {
                None => Role::Candidate,
                Some(v) => match string(&at("role"), v)? {
                    "candidate" => Role::Candidate,
                    "voter" => Role::Voter,
                    "learner" => Role::Learner,
                    other => {
                        return Err(ConfigFileError::new(
                            at("role"),
                            format!("`{other}` is not candidate, voter or learner"),
                        ))
                    }
                },
            };
            let priority = match table.get("priority") {
                None => 0,
                Some(v) => integer(&at("priority"), v, 255)?,
            };
            if let Some(j) = list.iter().position(|(m, _)| m.id.0 == id) {
                return Err(ConfigFileError::new(
                    at("id"),
                    format!("{id} is also the id of members[{j}]"),
                ));
            }
            if let Some(j) = list.iter().position(|(_, a)| *a == addr) {
                return Err(ConfigFileError::new(
                    at("addr"),
                    format!("{addr} is also the address of members[{j}]"),
                ));
            }
            let member = Member {
                id: NodeId(id),
                role,
                priority: u8::try_from(priority).unwrap_or(u8::MAX),
            };
            if let Some(v) = table.get("serial") {
                if NodeId(id) == node_id {
                    return Err(ConfigFileError::new(
                        at("serial"),
                        "this node itself cannot be behind a serial link",
                    ));
                }
                serial.push(SerialMember {
                    id: NodeId(id),
                    stream: address(&at("serial"), v)?,
                });
            }
            list.push((member, addr));
        }
        let own = list
            .iter()
            .find(|(m, _)| m.id == node_id)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                ConfigFileError::new("node_id", format!("{node_id} is not one of the members"))
            })?;

        let mut config = NodeConfig::new(cluster_id as u32, node_id, &list, data_dir)?;
        config.serial = serial;
        config.listen = match &raw.listen {
            None => own,
            Some(v) => address("listen", v)?,
        };
        let core = &mut config.core;
        core.lease = duration("lease", &raw.lease, core.lease)?;
        core.guard = duration("guard", &raw.guard, core.guard)?;
        core.round_timeout = duration("round_timeout", &raw.round_timeout, core.round_timeout)?;
        core.max_backoff = duration("max_backoff", &raw.max_backoff, core.max_backoff)?;
        core.priority_step = duration("priority_step", &raw.priority_step, core.priority_step)?;
        core.handover_grace = duration("handover_grace", &raw.handover_grace, core.handover_grace)?;
        if let Some(v) = &raw.renewal {
            core.renewal = match string("renewal", v)? {
                "lease" => tenure::Renewal::Lease,
                "logged" => tenure::Renewal::Logged,
                other => {
                    return Err(ConfigFileError::new(
                        "renewal",
                        format!(
                            "`{other}` is not lease or logged (every node of a cluster must \
                             use the same mode)"
                        ),
                    ))
                }
            };
        }
        let optional = |field: &str, v: &Value| -> Result<_, ConfigFileError> {
            match v {
                None => Ok(None),
                Some(_) => duration(field, v, tenure::Duration::ZERO).map(Some),
            }
        };
        core.renew_every = optional("renew_every", &raw.renew_every)?;
        core.try_window = optional("try_window", &raw.try_window)?;
        if core.renewal == tenure::Renewal::Logged {
            for (field, set) in [
                ("renew_every", core.renew_every.is_some()),
                ("try_window", core.try_window.is_some()),
            ] {
                if set {
                    return Err(ConfigFileError::new(
                        field,
                        "only used with `renewal = \"lease\"`: remove it, or set the mode",
                    ));
                }
            }
        }
        if let Some(v) = &raw.drift {
            let drift = v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .ok_or_else(|| {
                    ConfigFileError::new(
                        "drift",
                        format!("expected a number such as 0.01, found {}", found(v)),
                    )
                })?;
            if !(0.0..=0.1).contains(&drift) {
                return Err(ConfigFileError::new(
                    "drift",
                    format!("{drift} is outside 0..=0.1 (0 to 10 % clock-rate error)"),
                ));
            }
            core.drift_ppm = (drift * 1e6).round() as u32;
        }
        let insecure = match &raw.insecure {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| {
                ConfigFileError::new(
                    "insecure",
                    format!("expected true or false, found {}", found(v)),
                )
            })?,
        };
        let key = |field: &str, v: &Value| -> Result<Option<tenure::Key>, ConfigFileError> {
            match v {
                None => Ok(None),
                Some(v) => parse_key(string(field, v)?)
                    .map(|k| Some(tenure::Key(k)))
                    .map_err(|m| ConfigFileError::new(field, m)),
            }
        };
        let current = key("key", &raw.key)?;
        let previous = key("previous_key", &raw.previous_key)?;
        core.auth = match (current, previous, insecure) {
            (Some(current), previous, false) => tenure::Auth::Keys { current, previous },
            (None, None, true) => tenure::Auth::Insecure,
            (Some(_), _, true) => {
                return Err(ConfigFileError::new(
                    "insecure",
                    "`insecure = true` contradicts `key`: remove one of them",
                ))
            }
            (None, Some(_), _) => {
                return Err(ConfigFileError::new(
                    "key",
                    "missing: `previous_key` is only accepted next to a current `key`",
                ))
            }
            (None, None, false) => {
                return Err(ConfigFileError::new(
                    "key",
                    "missing: set `key` to 64 hex digits shared by every node (`tenure \
                     init-config` writes one), or `insecure = true` to run without \
                     authentication on a closed network",
                ))
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the whole configuration, naming the field of the first problem.
    pub fn validate(&self) -> Result<(), ConfigFileError> {
        self.core
            .validate()
            .map_err(|e| ConfigFileError::new(core_field(&e), e.to_string()))?;
        for m in &self.core.members {
            if self.peers.address_of(m.id).is_none() {
                return Err(ConfigFileError::new(
                    "members",
                    format!("member {} has no address", m.id),
                ));
            }
        }
        let own = self
            .peers
            .address_of(self.core.node_id)
            .ok_or_else(|| ConfigFileError::new("node_id", "not one of the members"))?;
        if self.listen.port() != own.port()
            || !(self.listen.ip().is_unspecified() || self.listen.ip() == own.ip())
        {
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
}

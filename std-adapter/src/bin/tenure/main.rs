//! The `tenure` command: run one node, run a local demo cluster, write configs, or talk
//! to a node's admin port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tenure_tokio::clock::{format_duration, parse_duration};
use tenure_tokio::NodeConfig;

mod admin_cli;
mod demo;

/// What `tenure --version` and `tenure version` print: the version, and whether the core
/// in this binary has the test-only fault hooks (it never should: only the simulator's
/// `tenure-fault` build has them).
const VERSION: &str = if tenure::FAULT_HOOKS {
    concat!(env!("CARGO_PKG_VERSION"), "\nfault hooks: present")
} else {
    concat!(env!("CARGO_PKG_VERSION"), "\nfault hooks: none")
};

/// Master election with Multi-Paxos and leases.
///
/// Logs go to stderr. RUST_LOG sets what is logged, as tracing's EnvFilter reads it
/// (default `info` for `node`, `warn` for `demo`): for example RUST_LOG=debug, or
/// RUST_LOG=tenure_tokio=debug,tenure_tokio::driver=trace.
#[derive(Parser, Debug)]
#[command(name = "tenure", version = VERSION, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("`{other}` is not text or json")),
    }
}

/// `tenure members ...`.
#[derive(Subcommand, Debug)]
enum MembersAction {
    /// The members in force at the node: id, role, priority, address and last contact.
    List {
        #[command(flatten)]
        target: admin_cli::Target,
        /// Print /members as it came (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Add member ID at UDP address ADDR (ask the master's admin port). Then start the new
    /// node with a configuration listing every member and `tenure node --join`.
    Add {
        /// The new member's id.
        #[arg(value_parser = clap::value_parser!(u16).range(1..))]
        id: u16,
        /// Its UDP address, IP:PORT.
        addr: String,
        /// Its role: candidate, voter or learner.
        #[arg(long, default_value = "candidate", value_parser = ["candidate", "voter", "learner"])]
        role: String,
        #[command(flatten)]
        target: admin_cli::Target,
    },
    /// Remove member ID (ask the master's admin port); then stop its process. Removing the
    /// master itself ends its term at once and the others elect another.
    Remove {
        /// The member's id.
        #[arg(value_parser = clap::value_parser!(u16).range(1..))]
        id: u16,
        #[command(flatten)]
        target: admin_cli::Target,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node from its configuration file (Ctrl-C releases the role and stops).
    Node {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Serve the admin port on this address: GET /status, /metrics, /healthz,
        /// /members; POST /release, /hand-over?to=ID, /members?id=ID&addr=IP:PORT; DELETE
        /// /members/ID. It is bound before the node starts.
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// A file holding the admin token every POST must then carry (`Authorization:
        /// Bearer <token>`). Without it, POST is open on a loopback admin address and
        /// refused on any other.
        #[arg(long, requires = "admin")]
        admin_token_file: Option<PathBuf>,
        /// This is the node's very first start: a data directory without a record starts
        /// it afresh. Without it (and without the `first-boot` marker file that
        /// `init-config` writes) a missing record stops the node, because a node that ran
        /// before would forget its promises. Do not leave it in a service definition.
        #[arg(long)]
        first_boot: bool,
        /// This node is a new member joining a running cluster: its configuration lists
        /// every member, itself included, and the master adds it (`tenure members add ID
        /// ADDR`). Without a record it starts standing by (votes for no one, does not
        /// campaign) until it has caught up with the change that added it; with a record
        /// (a later start) it restores as usual. Only for an id that never ran before: a
        /// member that lost its record starts with --rejoin.
        #[arg(long, conflicts_with_all = ["first_boot", "rejoin"])]
        join: bool,
        /// This node's record was lost (its data directory was deleted or replaced):
        /// start it anyway, as a non-voter that votes again only once the recovery rule
        /// allows. Refused when the data directory holds a record.
        #[arg(long, conflicts_with = "first_boot")]
        rejoin: bool,
        /// Log format on stderr: text, or json (one object per line, fields at the top
        /// level: timestamp, level, target, message, me, master, token, ...).
        #[arg(long, default_value = "text", value_parser = parse_log_format)]
        log_format: LogFormat,
    },
    /// List or change the cluster's members, through a node's admin port (a change goes
    /// to the master's). One member at a time; never edit member lists by hand on a
    /// running cluster.
    #[command(args_conflicts_with_subcommands = true)]
    Members {
        #[command(subcommand)]
        action: Option<MembersAction>,
        /// The node's admin address (for the list, without a subcommand).
        #[arg(long)]
        admin: Option<String>,
        /// A file holding the node's admin token.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        /// Print /members as it came (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Show a running node's view and health, from its admin port.
    Status {
        #[command(flatten)]
        target: admin_cli::Target,
        /// Print /status as it came (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Make a running node give up the role (it must be master), through its admin port.
    Release {
        #[command(flatten)]
        target: admin_cli::Target,
    },
    /// Make a running master hand the role over to another candidate, through its admin
    /// port.
    HandOver {
        #[command(flatten)]
        target: admin_cli::Target,
        /// The successor's node id.
        #[arg(long)]
        to: u16,
    },
    /// Write a fresh random admin token into a new file (readable by its owner only).
    AdminToken {
        /// The file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a local cluster on loopback UDP, kill its master again and again, and measure
    /// the failovers.
    Demo {
        /// Nodes in the cluster (at least 3, so a majority survives a kill).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(3..=32))]
        nodes: u16,
        /// The lease (for example 1s, 300ms).
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        lease: Duration,
        /// How long to run.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        duration: Duration,
        /// Kill the master this often.
        #[arg(long, default_value = "6s", value_parser = parse_duration)]
        kill_every: Duration,
        /// Keep the temporary data directories.
        #[arg(long)]
        keep: bool,
        /// The renewal mode: lease (renewals write nothing) or logged (each renewal is a
        /// chosen, persisted op), to compare them.
        #[arg(long, default_value = "lease", value_parser = parse_renewal)]
        renewal: tenure::Renewal,
        /// Log format on stderr: text, or json (one object per line, fields at the top
        /// level: timestamp, level, target, message, me, master, token, ...).
        #[arg(long, default_value = "text", value_parser = parse_log_format)]
        log_format: LogFormat,
    },
    /// Write ready configuration files for a local cluster.
    InitConfig {
        /// Nodes in the cluster (default 3, or as many as --addresses).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32))]
        nodes: Option<u16>,
        /// UDP port of node 1; node i listens on base-port + i - 1 (on --host).
        #[arg(long, default_value_t = 7000, conflicts_with = "addresses")]
        base_port: u16,
        /// The host every node runs on: an IP address, or a host name that the nodes look
        /// up at start (and again when sends fail).
        #[arg(long, default_value = "127.0.0.1", conflicts_with = "addresses")]
        host: String,
        /// The nodes' UDP addresses instead, one per node in id order, comma separated:
        /// ip:port or host:port (for example 192.0.2.1:7000,192.0.2.2:7000,192.0.2.3:7000
        /// or db-1.internal:7000,db-2.internal:7000,db-3.internal:7000).
        #[arg(long, value_delimiter = ',', num_args = 1.., value_parser = parse_member_addr)]
        addresses: Vec<String>,
        /// Directory to write node1.toml, node2.toml, ..., the key file `cluster.key`
        /// (mode 0600) and the data directories with their `first-boot` markers into
        /// (created if missing). Keep it out of version control (it holds the key).
        #[arg(long)]
        out: PathBuf,
        /// The cluster id.
        #[arg(long, default_value_t = 1)]
        cluster_id: u32,
        /// The lease.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        lease: Duration,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Print the version, and whether the core has test-only fault hooks (as --version).
    Version,
}

fn parse_member_addr(text: &str) -> Result<String, String> {
    tenure_tokio::config::MemberAddr::parse(text).map(|_| text.to_string())
}

fn parse_renewal(text: &str) -> Result<tenure::Renewal, String> {
    match text {
        "lease" => Ok(tenure::Renewal::Lease),
        "logged" => Ok(tenure::Renewal::Logged),
        other => Err(format!("`{other}` is not lease or logged")),
    }
}

fn init_logs(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node {
            config,
            admin,
            admin_token_file,
            first_boot,
            join,
            rejoin,
            log_format,
        } => {
            init_logs("info", log_format);
            let start_as = if join {
                tenure_tokio::StartAs::Join
            } else if rejoin {
                tenure_tokio::StartAs::Rejoin
            } else {
                tenure_tokio::StartAs::FirstBoot
            };
            run_node(
                &config,
                admin,
                admin_token_file.as_deref(),
                first_boot,
                start_as,
            )
        }
        Command::Members {
            action,
            admin,
            admin_token_file,
            json,
        } => match action {
            Some(MembersAction::List { target, json }) => admin_cli::members_list(&target, json),
            Some(MembersAction::Add {
                id,
                addr,
                role,
                target,
            }) => admin_cli::members_add(&target, id, &addr, &role),
            Some(MembersAction::Remove { id, target }) => admin_cli::members_remove(&target, id),
            None => match admin {
                Some(admin) => admin_cli::members_list(
                    &admin_cli::Target::new(admin, admin_token_file, Duration::from_secs(30)),
                    json,
                ),
                None => Err(
                    "tenure members needs --admin ADDR (or: tenure members list|add|remove \
                     ..., see tenure members --help)"
                        .to_string(),
                ),
            },
        },
        Command::Status { target, json } => admin_cli::status(&target, json),
        Command::Release { target } => admin_cli::give_up(&target, None),
        Command::HandOver { target, to } => admin_cli::give_up(&target, Some(to)),
        Command::AdminToken { out } => write_admin_token(&out),
        Command::Demo {
            nodes,
            lease,
            duration,
            kill_every,
            keep,
            renewal,
            log_format,
        } => {
            init_logs("warn", log_format);
            let options = demo::Options {
                nodes,
                lease,
                duration,
                kill_every,
                keep,
                renewal,
            };
            runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(demo::run(options)))
        }
        Command::InitConfig {
            nodes,
            base_port,
            host,
            addresses,
            out,
            cluster_id,
            lease,
            force,
        } => member_addresses(nodes, base_port, &host, addresses)
            .map(|addrs| Layout {
                addrs,
                cluster_id,
                lease,
            })
            .and_then(|layout| write_cluster(&layout, &out, force)),
        Command::Version => {
            println!("tenure {VERSION}");
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_node(
    path: &Path,
    admin: Option<SocketAddr>,
    token_file: Option<&Path>,
    first_boot: bool,
    start_as: tenure_tokio::StartAs,
) -> Result<ExitCode, String> {
    let config = NodeConfig::load(path)
        .map_err(|e| e.to_string())?
        .with_first_boot(first_boot)
        .with_start_as(start_as);
    let has_record = config
        .data_dir
        .join(tenure_tokio::store::RECORD_FILE)
        .exists();
    match start_as {
        tenure_tokio::StartAs::Join if has_record => tracing::warn!(
            data_dir = %config.data_dir.display(),
            "--join changes nothing: the data directory holds a record, and the node \
             restores from it. Drop the flag from later starts"
        ),
        tenure_tokio::StartAs::Join => tracing::info!(
            data_dir = %config.data_dir.display(),
            "--join: this node joins a running cluster; the master must add it \
             (tenure members add)"
        ),
        _ => {}
    }
    if first_boot {
        if config
            .data_dir
            .join(tenure_tokio::store::RECORD_FILE)
            .exists()
        {
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                "--first-boot changes nothing: the data directory holds a record, and the \
                 node restores from it. Drop the flag from later starts"
            );
        } else {
            tracing::info!(
                data_dir = %config.data_dir.display(),
                "--first-boot: without a record, this node starts afresh"
            );
        }
    }
    let token = token_file
        .map(tenure_tokio::admin::AdminToken::from_file)
        .transpose()?;
    let rt = runtime().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        // The admin port first: a taken port stops start-up before the node joins.
        let admin = match admin {
            Some(addr) => Some(
                tenure_tokio::admin::Admin::bind(addr, token)
                    .await
                    .map_err(|e| {
                        format!("cannot serve admin on {addr}: {e}; the node did not start")
                    })?,
            ),
            None => None,
        };
        let handle = tenure_tokio::start(config)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(admin) = admin {
            tracing::info!(
                me = handle.id().0,
                bound = %admin.local_addr(),
                post = %admin.post_policy(),
                "admin: GET /status, /metrics, /healthz, /members; POST /release, \
                 /hand-over?to=ID, /members?id=ID&addr=IP:PORT; DELETE /members/ID"
            );
            admin.serve(handle.clone());
        }
        tokio::select! {
            ended = handle.join() => {
                return ended.map(|()| ExitCode::SUCCESS).map_err(|e| e.to_string());
            }
            () = stop_signal() => {}
        }
        tracing::info!(me = handle.id().0, "stopping: releasing the role if held");
        handle
            .shutdown()
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| e.to_string())
    })
}

/// `tenure admin-token`: a new file, created readable by its owner only, never
/// overwritten.
fn write_admin_token(out: &Path) -> Result<ExitCode, String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let token = tenure_tokio::admin::AdminToken::random();
    writeln!(file, "{}", token.expose())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!(
        "wrote {}: pass it to `tenure node --admin-token-file` and to the admin commands",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// What `init-config` writes: one member per address (`ip:port` or `host:port`, in id
/// order).
struct Layout {
    addrs: Vec<String>,
    cluster_id: u32,
    lease: Duration,
}

/// The key file's name in the output directory.
const KEY_FILE: &str = "cluster.key";

/// The members' addresses, in id order: `addresses` when given (exactly `nodes` of
/// them if that is given too, no address twice), else `nodes` (default 3) consecutive
/// ports of `host` from `base_port`.
fn member_addresses(
    nodes: Option<u16>,
    base_port: u16,
    host: &str,
    addresses: Vec<String>,
) -> Result<Vec<String>, String> {
    use tenure_tokio::config::MemberAddr;
    let addresses = if addresses.is_empty() {
        let nodes = nodes.unwrap_or(3);
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => host.to_string(),
        };
        (0..nodes)
            .map(|i| {
                base_port
                    .checked_add(i)
                    .map(|port| format!("{host}:{port}"))
                    .ok_or_else(|| {
                        format!("--base-port {base_port} + {nodes} nodes passes port 65535")
                    })
            })
            .collect::<Result<Vec<String>, String>>()?
    } else {
        if let Some(n) = nodes {
            if usize::from(n) != addresses.len() {
                return Err(format!(
                    "--nodes {n} but --addresses gives {} (one address per node, in id order)",
                    addresses.len()
                ));
            }
        }
        addresses
    };
    if addresses.len() > 32 {
        return Err(format!(
            "--addresses gives {} nodes; at most 32",
            addresses.len()
        ));
    }
    let parsed = addresses
        .iter()
        .map(|a| MemberAddr::parse(a).map_err(|e| format!("--host/--addresses: {e}")))
        .collect::<Result<Vec<MemberAddr>, String>>()?;
    for (i, a) in parsed.iter().enumerate() {
        let text = &addresses[i];
        if a.port() == 0 {
            return Err(format!("--addresses: node {} at {text} has port 0", i + 1));
        }
        if matches!(a, MemberAddr::Ip(ip) if ip.ip().is_unspecified()) {
            return Err(format!(
                "--addresses: node {} at {text}: the other nodes cannot send to an unspecified address",
                i + 1
            ));
        }
        if let Some(j) = parsed[..i].iter().position(|b| b == a) {
            return Err(format!(
                "--addresses: nodes {} and {} both at {text}",
                j + 1,
                i + 1
            ));
        }
    }
    Ok(addresses)
}

/// A suggested admin address for a node listening on `port`: loopback, port + 1000.
fn admin_hint(port: u16) -> String {
    match u16::try_from(u32::from(port) + 1000) {
        Ok(port) => format!("127.0.0.1:{port}"),
        Err(_) => "127.0.0.1:9000".to_string(),
    }
}

impl Layout {
    fn port(&self, id: u16) -> u16 {
        tenure_tokio::config::MemberAddr::parse(&self.addrs[usize::from(id) - 1])
            .map_or(0, |a| a.port())
    }

    /// The text of node `id`'s configuration file.
    fn config_text(&self, id: u16) -> String {
        let admin = admin_hint(self.port(id));
        let mut text = format!(
            "# Tenure node {id} of {nodes} (written by `tenure init-config`).\n\
             # Run: tenure node --config node{id}.toml --admin {admin}\n\
             cluster_id = {cluster_id}\n\
             node_id = {id}\n\
             data_dir = \"data-{id}\"    # relative to this file; created if missing\n\
             lease = \"{lease}\"\n\
             renewal = \"lease\"       # lease | logged: the same on every node\n\
             drift = 0.01           # clocks' rate error bound: 1 %\n\
             key_file = \"{KEY_FILE}\"  # the same on every node; mode 0600, keep it secret\n",
            nodes = self.addrs.len(),
            cluster_id = self.cluster_id,
            lease = format_duration(self.lease),
        );
        for (i, addr) in (1..).zip(&self.addrs) {
            text.push_str(&format!(
                "\n[[members]]\nid = {i}\naddr = \"{addr}\"\nrole = \"candidate\"\nname = \"node{i}\"\n\
                 # advertise = \"...\"      # where this member's service is reached\n"
            ));
        }
        text
    }
}

/// Creates `path` with mode 0600 (never readable by others, not even for a moment) and
/// writes `text` into it.
fn write_private(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An older file kept its mode when overwritten (--force).
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn write_cluster(layout: &Layout, out: &Path, force: bool) -> Result<ExitCode, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut texts = Vec::new();
    for id in (1..).take(layout.addrs.len()) {
        let path = out.join(format!("node{id}.toml"));
        if path.exists() && !force {
            return Err(format!(
                "{} exists (use --force to overwrite)",
                path.display()
            ));
        }
        texts.push((id, path, layout.config_text(id)));
    }
    let key_path = out.join(KEY_FILE);
    if key_path.exists() && !force {
        return Err(format!(
            "{} exists (use --force to overwrite)",
            key_path.display()
        ));
    }
    // One fresh cluster key shared by every node's file.
    let key = tenure_tokio::config::key_hex(&tenure_tokio::config::random_key());
    write_private(&key_path, &format!("{key}\n"), force)
        .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
    println!("wrote {} (mode 0600)", key_path.display());
    for (id, path, text) in texts {
        // Check what we write with the same parser the node uses.
        NodeConfig::from_toml(&text, out).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        // The node's first start: its data directory says so once.
        let data = out.join(format!("data-{id}"));
        if data.join(tenure_tokio::store::RECORD_FILE).exists() {
            println!(
                "wrote {} ({} holds a record: it restores from it)",
                path.display(),
                data.display()
            );
            continue;
        }
        std::fs::create_dir_all(&data)
            .and_then(|()| {
                std::fs::write(
                    data.join(tenure_tokio::store::FIRST_BOOT_FILE),
                    "This data directory may start its Tenure node afresh, once: the node \
                     removes this file when its first record is durable.\n",
                )
            })
            .map_err(|e| {
                format!(
                    "cannot write the first-boot marker in {}: {e}",
                    data.display()
                )
            })?;
        println!("wrote {} and {}/", path.display(), data.display());
    }
    println!(
        "start each node in its own terminal, for example:\n  tenure node --config {} --admin {}",
        out.join("node1.toml").display(),
        admin_hint(layout.port(1))
    );
    Ok(ExitCode::SUCCESS)
}

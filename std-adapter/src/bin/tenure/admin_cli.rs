//! `tenure status`, `tenure release`, `tenure hand-over`, `tenure members`: clients of a
//! node's admin port (see `tenure_tokio::admin`), over HTTP/1.1 with hyper.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tenure_tokio::admin::{AdminToken, CommandDone, ErrorBody, MembersDoc, MembersDone, Status};
use tenure_tokio::clock::parse_duration;
use tenure_tokio::Health;

/// The largest answer read.
const MAX_ANSWER: usize = 1 << 20;

/// Where a node's admin port is, and how to talk to it.
#[derive(Args, Debug)]
pub struct Target {
    /// The node's admin address (as given to `tenure node --admin`), for example
    /// 127.0.0.1:8001 or localhost:8001.
    #[arg(long)]
    admin: String,
    /// A file holding the node's admin token (needed for release and hand-over when the
    /// node was started with --admin-token-file).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Give up after this long (a release waits until the cluster chose it, one lease at
    /// most).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
}

/// One answer: its status and body.
struct Answer {
    code: StatusCode,
    body: Bytes,
}

impl Answer {
    /// The error the admin port gave, in words (its JSON `error`, or the raw body).
    fn error(&self) -> String {
        serde_json::from_slice::<ErrorBody>(&self.body).map_or_else(
            |_| String::from_utf8_lossy(&self.body).trim().to_string(),
            |e| e.error,
        )
    }
}

impl Target {
    /// A target from its parts (for `tenure members` without a subcommand).
    pub fn new(admin: String, admin_token_file: Option<PathBuf>, timeout: Duration) -> Self {
        Target {
            admin,
            admin_token_file,
            timeout,
        }
    }

    fn token(&self) -> Result<Option<AdminToken>, String> {
        self.admin_token_file
            .as_deref()
            .map(AdminToken::from_file)
            .transpose()
    }

    /// Sends one request, bounded by `--timeout`.
    fn request(&self, method: Method, path: &str) -> Result<Answer, String> {
        let token = self.token()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let exchange = self.exchange(method, path, token);
        rt.block_on(async {
            tokio::time::timeout(self.timeout, exchange)
                .await
                .map_err(|_| {
                    format!(
                        "no answer from the admin port {} within {:?}",
                        self.admin, self.timeout
                    )
                })?
        })
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        token: Option<AdminToken>,
    ) -> Result<Answer, String> {
        let unreachable =
            |e: &dyn std::fmt::Display| format!("cannot reach the admin port {}: {e}", self.admin);
        let stream = tokio::net::TcpStream::connect(self.admin.as_str())
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        let connection = tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.admin.as_str());
        if let Some(token) = &token {
            request = request.header(header::AUTHORIZATION, token.bearer());
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("bad request for {}: {e}", self.admin))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(&e))?;
        let code = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("bad answer from the admin port {}: {e}", self.admin))?
            .to_bytes();
        connection.abort();
        Ok(Answer { code, body })
    }
}

/// `tenure status`: the node's view and health, in words (or the raw `/status`).
pub fn status(target: &Target, json: bool) -> Result<ExitCode, String> {
    let answer = target.request(Method::GET, "/status")?;
    if answer.code != StatusCode::OK {
        return Err(format!(
            "{}: {} (HTTP {})",
            target.admin,
            answer.error(),
            answer.code.as_u16()
        ));
    }
    if json {
        print!("{}", String::from_utf8_lossy(&answer.body));
        return Ok(ExitCode::SUCCESS);
    }
    let status: Status = serde_json::from_slice(&answer.body).map_err(|e| {
        format!(
            "{}: /status is not what this tenure reads: {e}",
            target.admin
        )
    })?;
    let health = target.request(Method::GET, "/healthz")?;
    let health: Option<Health> = serde_json::from_slice(&health.body).ok();
    print!("{}", describe(&status, health.as_ref()));
    Ok(ExitCode::SUCCESS)
}

/// The readable summary `tenure status` prints.
fn describe(s: &Status, health: Option<&Health>) -> String {
    let token = |t: Option<u64>| t.map_or_else(|| "none".to_string(), |t| t.to_string());
    let role = if s.is_master {
        let left = s
            .term_end_ns
            .zip(s.boottime_ns)
            .map_or_else(String::new, |(end, now)| {
                format!(
                    ", term ends in {} ms unless renewed",
                    end.saturating_sub(now) / 1_000_000
                )
            });
        format!("master (fencing token {}{left})", token(s.token))
    } else {
        "not master".to_string()
    };
    let mut members = format!(
        "{} (last change: {})",
        s.members,
        s.members_version
            .map_or_else(|| "none".to_string(), |v| format!("version {v}"))
    );
    if s.members_differ {
        members
            .push_str("; the configuration file's list differs: the node follows the register's");
    }
    if s.rejoining {
        members.push_str("; REJOINING after a lost record: votes for no one yet");
    } else if s.standby {
        members.push_str("; STANDING BY: votes for no one yet");
    }
    let master = match s.master {
        Some(m) => {
            let name = s
                .master_name
                .as_ref()
                .map_or_else(String::new, |n| format!(" \"{n}\""));
            let at = s
                .master_advertise
                .as_ref()
                .map_or_else(String::new, |a| format!(" at {a}"));
            format!("node {m}{name}{at} (fencing token {})", token(s.token))
        }
        None => "none".to_string(),
    };
    let health = match health {
        None => "unknown (no /healthz answer)".to_string(),
        Some(h) => format!(
            "{} ({} of {} voters heard within a lease, a majority is {}; {})",
            if h.healthy { "healthy" } else { "UNHEALTHY" },
            h.voters_heard,
            h.voters,
            h.quorum,
            if h.quorum_in_view {
                "quorum in view"
            } else {
                "no quorum in view"
            }
        ),
    };
    format!(
        "node {node}: {role}, {running}\n\
         master in its view: {master}\n\
         register version: {version}\n\
         members: {members}\n\
         renewal: {renewal}, lease {lease} ms\n\
         health: {health}\n",
        node = s.node,
        running = if s.running { "running" } else { "stopped" },
        version = token(s.version),
        renewal = s.renewal,
        lease = s.lease_ms,
    )
}

/// The error of a refused admin request, with a hint for a missing token.
fn refused(target: &Target, answer: &Answer) -> String {
    let hint = if answer.code == StatusCode::UNAUTHORIZED && target.admin_token_file.is_none() {
        " (give the node's token with --admin-token-file)"
    } else {
        ""
    };
    format!(
        "{}: {}{hint} (HTTP {})",
        target.admin,
        answer.error(),
        answer.code.as_u16()
    )
}

/// `tenure members [list]`: the list in force at the node, with each member's role,
/// address and last contact.
pub fn members_list(target: &Target, json: bool) -> Result<ExitCode, String> {
    let answer = target.request(Method::GET, "/members")?;
    if answer.code != StatusCode::OK {
        return Err(refused(target, &answer));
    }
    if json {
        print!("{}", String::from_utf8_lossy(&answer.body));
        return Ok(ExitCode::SUCCESS);
    }
    let doc: MembersDoc = serde_json::from_slice(&answer.body).map_err(|e| {
        format!(
            "{}: /members is not what this tenure reads: {e}",
            target.admin
        )
    })?;
    print!("{}", describe_members(&doc));
    Ok(ExitCode::SUCCESS)
}

/// The table `tenure members` prints.
fn describe_members(doc: &MembersDoc) -> String {
    let mut out = format!(
        "members in force at node {} (last change: {}; master in its view: {})\n",
        doc.node,
        doc.version
            .map_or_else(|| "none".to_string(), |v| format!("version {v}")),
        doc.master
            .map_or_else(|| "none".to_string(), |m| format!("node {m}")),
    );
    if doc.configured_differs {
        out.push_str(
            "note: its configuration file lists other members; it follows the register's list\n",
        );
    }
    if doc.rejoining {
        out.push_str("note: it is REJOINING after a lost record and votes for no one yet\n");
    } else if doc.standby {
        out.push_str("note: it is STANDING BY and votes for no one yet\n");
    }
    out.push_str(&format!(
        "{:>5}  {:<9}  {:<8}  {:<24}  {}\n",
        "ID", "ROLE", "PRIORITY", "ADDRESS", "LAST CONTACT"
    ));
    for m in &doc.members {
        let contact = if m.this_node {
            "(this node)".to_string()
        } else {
            m.last_contact_ms
                .map_or_else(|| "never".to_string(), |ms| format!("{ms} ms ago"))
        };
        out.push_str(&format!(
            "{:>5}  {:<9}  {:<8}  {:<24}  {contact}\n",
            m.id,
            m.role,
            m.priority,
            m.addr.as_deref().unwrap_or("unknown"),
        ));
    }
    out
}

/// `tenure members add ID ADDR [--role ROLE]`.
pub fn members_add(target: &Target, id: u16, addr: &str, role: &str) -> Result<ExitCode, String> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IP:PORT address (for example 127.0.0.1:7003)"))?;
    let text = addr.to_string();
    let mut escaped = String::new();
    for c in text.chars() {
        match c {
            '[' => escaped.push_str("%5B"),
            ']' => escaped.push_str("%5D"),
            '%' => escaped.push_str("%25"),
            c => escaped.push(c),
        }
    }
    let path = format!("/members?id={id}&addr={escaped}&role={role}");
    members_change(target, Method::POST, &path)
}

/// `tenure members remove ID`.
pub fn members_remove(target: &Target, id: u16) -> Result<ExitCode, String> {
    members_change(target, Method::DELETE, &format!("/members/{id}"))
}

fn members_change(target: &Target, method: Method, path: &str) -> Result<ExitCode, String> {
    let answer = target.request(method, path)?;
    if answer.code != StatusCode::OK {
        return Err(refused(target, &answer));
    }
    let done: MembersDone = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("{}: unexpected answer: {e}", target.admin))?;
    println!(
        "{} (membership version {}, {} member{})",
        done.message,
        done.version
            .map_or_else(|| "none".to_string(), |v| v.to_string()),
        done.members,
        if done.members == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `tenure release` (`to: None`) and `tenure hand-over --to ID`.
pub fn give_up(target: &Target, to: Option<u16>) -> Result<ExitCode, String> {
    let path = match to {
        None => "/release".to_string(),
        Some(to) => format!("/hand-over?to={to}"),
    };
    let answer = target.request(Method::POST, &path)?;
    if answer.code != StatusCode::OK {
        return Err(refused(target, &answer));
    }
    let done: CommandDone = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("{}: unexpected answer: {e}", target.admin))?;
    match done.token {
        Some(t) => println!("{} (its term had fencing token {t})", done.message),
        None => println!("{}", done.message),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_role_master_and_health() {
        let status = Status {
            node: 2,
            is_master: false,
            master: Some(1),
            token: Some(7),
            version: Some(7),
            renewal: "lease".into(),
            lease_ms: 1000,
            monotonic_ns: 5,
            boottime_ns: Some(7),
            term_begin_ns: None,
            term_end_ns: None,
            running: true,
            name: None,
            advertise: None,
            master_name: None,
            master_advertise: None,
            members_version: None,
            members: 3,
            members_differ: false,
            standby: false,
            rejoining: false,
        };
        let health = Health {
            healthy: true,
            running: true,
            quorum_in_view: true,
            master: Some(1),
            voters_heard: 2,
            voters: 3,
            quorum: 2,
        };
        let text = describe(&status, Some(&health));
        assert!(text.starts_with("node 2: not master, running\n"), "{text}");
        assert!(
            text.contains("master in its view: node 1 (fencing token 7)"),
            "{text}"
        );
        assert!(
            text.contains("health: healthy (2 of 3 voters heard"),
            "{text}"
        );
        let master = Status {
            node: 1,
            is_master: true,
            boottime_ns: Some(1_000_000_000),
            term_begin_ns: Some(900_000_000),
            term_end_ns: Some(1_812_000_000),
            ..status
        };
        let text = describe(&master, None);
        assert!(
            text.starts_with(
                "node 1: master (fencing token 7, term ends in 812 ms unless renewed), running\n"
            ),
            "{text}"
        );
        assert!(text.contains("health: unknown"), "{text}");
        assert!(text.contains("members: 3 (last change: none)\n"), "{text}");
        let rejoining = Status {
            members_version: Some(9),
            members: 4,
            members_differ: true,
            standby: true,
            rejoining: true,
            ..master.clone()
        };
        let text = describe(&rejoining, None);
        assert!(
            text.contains(
                "members: 4 (last change: version 9); the configuration file's list differs"
            ),
            "{text}"
        );
        assert!(text.contains("REJOINING"), "{text}");
        let named = Status {
            master_name: Some("db-1".into()),
            master_advertise: Some("10.0.0.1:5432".into()),
            ..master.clone()
        };
        let text = describe(&named, None);
        assert!(
            text.contains("master in its view: node 1 \"db-1\" at 10.0.0.1:5432 (fencing token 7)"),
            "{text}"
        );
    }

    #[test]
    fn the_members_table_names_roles_addresses_and_contact() {
        let doc = MembersDoc {
            node: 1,
            master: Some(1),
            version: Some(12),
            configured_differs: true,
            standby: false,
            rejoining: false,
            members: vec![
                tenure_tokio::admin::MemberDoc {
                    id: 1,
                    role: "candidate".into(),
                    priority: 0,
                    addr: Some("127.0.0.1:7000".into()),
                    last_contact_ms: None,
                    this_node: true,
                },
                tenure_tokio::admin::MemberDoc {
                    id: 4,
                    role: "learner".into(),
                    priority: 0,
                    addr: None,
                    last_contact_ms: Some(42),
                    this_node: false,
                },
            ],
        };
        let text = describe_members(&doc);
        assert!(
            text.contains("last change: version 12; master in its view: node 1"),
            "{text}"
        );
        assert!(text.contains("it follows the register's list"), "{text}");
        assert!(text.contains("(this node)"), "{text}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with('4'))
            .unwrap();
        assert!(
            row.contains("learner") && row.contains("unknown") && row.contains("42 ms ago"),
            "{row}"
        );
    }
}

//! The admin port: `GET /status` (JSON), `GET /metrics` (Prometheus text),
//! `GET /healthz` (JSON; 200 or 503), `GET /members` (JSON), and the commands
//! `POST /release`, `POST /hand-over?to=ID`, `POST /members?id=ID&addr=IP:PORT[&role=R]`
//! (add a member) and `DELETE /members/ID` (remove one).
//!
//! Served with hyper's HTTP/1.1 server, one request per connection; every JSON body is
//! built with `serde_json`. Untrusted input is bounded: a request head must arrive
//! within [`HEAD_TIMEOUT`] and fit in [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers,
//! a whole exchange within [`EXCHANGE_TIMEOUT`] (plus one lease for a command), and at
//! most [`MAX_CONNECTIONS`] connections are served at once (more are answered 503 and
//! closed). Every request or connection turned away is counted once, by reason
//! ([`AdminReject`]), in `tenure_admin_bad_requests_total`.
//!
//! # Who may `POST` (and `DELETE`)
//!
//! The same rules hold for `DELETE /members/ID` as for every `POST`.
//!
//! - With an admin token ([`AdminToken`], from a file: `tenure node --admin-token-file`),
//!   every `POST` must carry `Authorization: Bearer <token>`, whatever the address.
//! - Without one, `POST` is open only when the admin address is a loopback address
//!   (127.0.0.0/8 or ::1): then only processes of this host can reach it. On any other
//!   address (0.0.0.0 included) every `POST` is refused with 401 and the `GET`s are
//!   served as usual.
//! - A `POST` that carries an `Origin` header comes from a web page in a browser and is
//!   refused (403), so a page cannot drive a node through a loopback admin port.
//!
//! Every `GET` is open to whoever reaches the port: bind it to a loopback or management
//! address.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tenure::{CommandError, MembersError, NodeId, Role};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::clock::{host_monotonic_ns, Clock};
use crate::metrics::{AdminCounters, AdminReject};
use crate::node::{role_label, Handle, HandleError, MembersFailure, MEMBERS_WAIT_LEASES};

/// The most connections served at once; one more is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// The largest request head read (request line and headers), in bytes: a larger one is
/// answered 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have: more are answered 431.
pub const MAX_HEADERS: usize = 32;
/// How long a client may take to send its request head; then the connection is closed.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole exchange may take (a command waits up to one lease more); then the
/// connection is closed.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest admin token accepted.
pub const MIN_TOKEN_LEN: usize = 16;
/// The longest admin token accepted.
pub const MAX_TOKEN_LEN: usize = 1024;

/// The `/status` document: the node's view at one instant of the host's monotonic
/// clock.
///
/// `token` is the fencing token of the master's term (`null` without a live master),
/// the number [`Handle::run_while_master`] hands its work and `/metrics` shows as
/// `tenure_token`; `version` is the register's version (instance of the last effective
/// op; every renewal moves it in logged mode, so it is no fencing token); `renewal` is
/// the renewal mode; `monotonic_ns` is the host's monotonic clock when the view was
/// read ([`host_monotonic_ns`]), so that views of several nodes can be compared.
///
/// `term_begin_ns` and `term_end_ns` are this node's current term on the host's
/// `CLOCK_BOOTTIME` (the clock leases are measured on, the same for every process and
/// network namespace of the host), `null` unless this node is master: the instant it
/// learned it was master, and the term's end, which moves on with every renewal.
/// `boottime_ns` dates the view on that clock, `monotonic_ns` on `CLOCK_MONOTONIC`.
///
/// `name`/`advertise` are this node's from the configuration, `master_name` and
/// `master_advertise` the master's: who the master is and where its service is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub node: u16,
    /// Whether this node is master now.
    pub is_master: bool,
    /// The master in this node's view.
    pub master: Option<u16>,
    /// The fencing token of that master's term.
    pub token: Option<u64>,
    /// The register's version.
    pub version: Option<u64>,
    /// The renewal mode: `lease` or `logged`.
    pub renewal: String,
    /// The configured lease, in milliseconds.
    pub lease_ms: u64,
    /// The host's monotonic clock when the view was read, in nanoseconds.
    pub monotonic_ns: u64,
    /// The host's `CLOCK_BOOTTIME` when the view was read, in nanoseconds.
    pub boottime_ns: Option<u64>,
    /// The beginning of this node's current term on `CLOCK_BOOTTIME` (`null` unless
    /// master).
    pub term_begin_ns: Option<u64>,
    /// The end of this node's current term on `CLOCK_BOOTTIME` (`null` unless master).
    pub term_end_ns: Option<u64>,
    /// False once the node stopped.
    pub running: bool,
    /// This node's `name` in the configuration (`null` if it has none).
    #[serde(default)]
    pub name: Option<String>,
    /// This node's `advertise` address in the configuration.
    #[serde(default)]
    pub advertise: Option<String>,
    /// The `name` of the master in this node's view (`null` without a master, or if it
    /// has none).
    #[serde(default)]
    pub master_name: Option<String>,
    /// The `advertise` address of the master in this node's view: where its service is
    /// reached (what a follower forwards requests to).
    #[serde(default)]
    pub master_advertise: Option<String>,
    /// The instance of the register's last membership change (`null`: the first list is
    /// in force).
    #[serde(default)]
    pub members_version: Option<u64>,
    /// The number of members in the list in force.
    #[serde(default)]
    pub members: usize,
    /// Whether the list in force differs from this node's configuration file (the node
    /// follows the register's; see `GET /members`).
    #[serde(default)]
    pub members_differ: bool,
    /// Whether this node stands by: it votes for no one and does not campaign (joining,
    /// rejoining, or unable to follow the register's list).
    #[serde(default)]
    pub standby: bool,
    /// Whether this node was started to rejoin after a lost record and still stands by.
    #[serde(default)]
    pub rejoining: bool,
}

impl Status {
    /// The status of `handle`'s node now.
    pub fn of(handle: &Handle) -> Self {
        // Read the view and both clocks together, so `monotonic_ns` dates the view.
        let view = handle.view();
        let clock = handle.clock();
        let now = clock.now();
        let monotonic_ns = host_monotonic_ns();
        let master = view.master_at(now);
        let term = view.term.filter(|_| view.is_master_at(now));
        let own = handle.identity(handle.id());
        let of_master = master.and_then(|m| handle.identity(m.node));
        let members = handle.members();
        Status {
            node: handle.id().0,
            is_master: view.is_master_at(now),
            master: master.map(|m| m.node.0),
            token: master.map(|m| m.token),
            version: view.version,
            renewal: handle.renewal().to_string(),
            lease_ms: u64::try_from(handle.lease().as_millis()).unwrap_or(u64::MAX),
            monotonic_ns,
            boottime_ns: clock.boottime_ns(now),
            term_begin_ns: term.and_then(|t| clock.boottime_ns(t.since)),
            term_end_ns: term.and_then(|t| clock.boottime_ns(t.end)),
            running: view.running,
            name: own.and_then(|i| i.name.clone()),
            advertise: own.and_then(|i| i.advertise.clone()),
            master_name: of_master.and_then(|i| i.name.clone()),
            master_advertise: of_master.and_then(|i| i.advertise.clone()),
            members_version: members.version,
            members: members.members.len(),
            members_differ: members.configured_differs,
            standby: members.standby,
            rejoining: members.rejoining,
        }
    }
}

/// One member in the `GET /members` document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDoc {
    /// The member's id.
    pub id: u16,
    /// `candidate`, `voter` or `learner`.
    pub role: String,
    /// Its campaign priority.
    pub priority: u8,
    /// Its UDP address in this node's address book (`null`: not known yet).
    pub addr: Option<String>,
    /// Milliseconds since this node last heard from it (`null`: not since it started;
    /// always `null` for this node itself).
    pub last_contact_ms: Option<u64>,
    /// Whether it is the node answering.
    pub this_node: bool,
}

/// The `GET /members` document: the list in force at this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersDoc {
    /// The node answering.
    pub node: u16,
    /// The master in its view.
    pub master: Option<u16>,
    /// The instance of the register's last membership change (`null`: none yet).
    pub version: Option<u64>,
    /// Whether the list differs from the node's configuration file.
    pub configured_differs: bool,
    /// Whether the node stands by (votes for no one).
    pub standby: bool,
    /// Whether it was started to rejoin after a lost record and still stands by.
    pub rejoining: bool,
    /// The members, in list order.
    pub members: Vec<MemberDoc>,
}

impl MembersDoc {
    /// The document of `handle`'s node now.
    pub fn of(handle: &Handle) -> Self {
        let m = handle.members();
        MembersDoc {
            node: handle.id().0,
            master: handle.master().map(|m| m.node.0),
            version: m.version,
            configured_differs: m.configured_differs,
            standby: m.standby,
            rejoining: m.rejoining,
            members: m
                .members
                .iter()
                .map(|i| MemberDoc {
                    id: i.id.0,
                    role: role_label(i.role).to_string(),
                    priority: i.priority,
                    addr: i.addr.map(|a| a.to_string()),
                    last_contact_ms: i
                        .last_contact
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    this_node: i.this_node,
                })
                .collect(),
        }
    }
}

/// What `POST /members` and `DELETE /members/ID` answer once the change is applied at
/// the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersDone {
    /// The node that made the change (the master).
    pub node: u16,
    /// `add` or `remove`.
    pub command: String,
    /// The member added or removed.
    pub member: u16,
    /// The register's membership version after the change.
    pub version: Option<u64>,
    /// Members in the new list.
    pub members: usize,
    /// What happened, in words.
    pub message: String,
}

/// The `/status` document of `handle`'s node now, as JSON text (see [`Status`]).
pub fn status_json(handle: &Handle) -> String {
    to_json(&Status::of(handle))
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Plain structs of numbers, strings and options: serialising them cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

/// What `POST /release` and `POST /hand-over` answer when the node carried the command
/// out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandDone {
    /// The node that gave up the role.
    pub node: u16,
    /// `release` or `hand-over`.
    pub command: String,
    /// The successor named, for a hand-over.
    pub successor: Option<u16>,
    /// The fencing token of the term given up.
    pub token: Option<u64>,
    /// What happened, in words.
    pub message: String,
}

/// The body of every refusal (4xx, 5xx) the admin port answers itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, in words.
    pub error: String,
}

/// The secret a `POST` must carry as `Authorization: Bearer <token>`. It is visible
/// ASCII, [`MIN_TOKEN_LEN`] to [`MAX_TOKEN_LEN`] bytes; its file may end with a newline.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// The token in `text` (surrounding whitespace removed), or why it cannot be one.
    pub fn new(text: &str) -> Result<Self, String> {
        let token = text.trim();
        if token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
            return Err(format!(
                "an admin token has {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters, not {}",
                token.len()
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "an admin token is visible ASCII only (no spaces or control characters)".into(),
            );
        }
        Ok(AdminToken(token.to_string()))
    }

    /// Reads the token from `path` (the whole file; a trailing newline is fine). The
    /// error names the file. A file that others than its owner may read is logged as a
    /// warning.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the admin token file {}: {e}", path.display()))?;
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = format_args!("{:o}", mode & 0o777),
                    "the admin token file is readable by others than its owner (chmod 600 it)"
                );
            }
        }
        AdminToken::new(&text).map_err(|e| format!("admin token file {}: {e}", path.display()))
    }

    /// A fresh random token (hex), for a new token file.
    pub fn random() -> Self {
        AdminToken(crate::config::key_hex(&crate::config::random_key()))
    }

    /// The token's text: what the file holds.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value of the `Authorization` header that carries it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `presented` is this token, in time that depends on this token's length
    /// only.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = u8::from(presented.len() != expected.len());
        for (i, e) in expected.iter().enumerate() {
            diff |= e ^ presented.get(i).copied().unwrap_or(!e);
        }
        std::hint::black_box(diff) == 0
    }
}

/// Who may `POST` on one admin port (see the [module docs](self)).
#[derive(Clone, Debug)]
enum PostPolicy {
    Token(AdminToken),
    Loopback,
    Closed,
}

/// An admin port bound, not serving yet: bind it before the node starts (so a taken
/// port stops start-up before the node joins), then [`serve`](Admin::serve) the node.
#[derive(Debug)]
pub struct Admin {
    listener: TcpListener,
    local: SocketAddr,
    policy: PostPolicy,
    counters: Arc<AdminCounters>,
}

/// What a connection needs.
struct Context {
    handle: Handle,
    policy: PostPolicy,
    local: SocketAddr,
    counters: Arc<AdminCounters>,
}

impl Admin {
    /// Binds `addr`. With `token`, every `POST` must carry it; without, `POST` is open
    /// on a loopback address and refused on any other.
    pub async fn bind(addr: SocketAddr, token: Option<AdminToken>) -> std::io::Result<Admin> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let policy = match token {
            Some(token) => PostPolicy::Token(token),
            None if local.ip().to_canonical().is_loopback() => PostPolicy::Loopback,
            None => PostPolicy::Closed,
        };
        Ok(Admin {
            listener,
            local,
            policy,
            counters: Arc::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Who may `POST`, in words (for the start-up log).
    pub fn post_policy(&self) -> &'static str {
        match self.policy {
            PostPolicy::Token(_) => "POST needs the admin token",
            PostPolicy::Loopback => "POST open to this host (loopback address, no token file)",
            PostPolicy::Closed => {
                "POST refused: the address is not loopback and there is no admin token file"
            }
        }
    }

    /// The port's counters (also rendered in its `/metrics`).
    pub fn counters(&self) -> Arc<AdminCounters> {
        Arc::clone(&self.counters)
    }

    /// Serves `handle`'s node on a task of the current runtime, until it is aborted.
    pub fn serve(self, handle: Handle) -> JoinHandle<()> {
        tokio::spawn(self.run(handle))
    }

    /// Serves `handle`'s node (never returns).
    pub async fn run(self, handle: Handle) {
        let context = Arc::new(Context {
            handle,
            policy: self.policy,
            local: self.local,
            counters: self.counters,
        });
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(me = context.handle.id().0, error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                context.counters.reject(AdminReject::Busy);
                tracing::debug!(me = context.handle.id().0, %peer, "admin: every connection slot taken; closed");
                // A fixed answer, written only if the socket takes it at once.
                let _ = stream.try_write(BUSY);
                continue;
            };
            let context = Arc::clone(&context);
            tokio::spawn(async move {
                let _permit = permit;
                connection(stream, peer, context).await;
            });
        }
    }
}

/// The answer to a connection over [`MAX_CONNECTIONS`].
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 38\r\nconnection: close\r\n\r\n{\"error\":\"too many admin connections\"}";

/// Binds `addr` without a token and serves `handle` on it (see [`Admin`]); returns the
/// bound address.
pub async fn bind(addr: SocketAddr, handle: Handle) -> std::io::Result<SocketAddr> {
    let admin = Admin::bind(addr, None).await?;
    let local = admin.local_addr();
    admin.serve(handle);
    Ok(local)
}

async fn connection(stream: TcpStream, peer: SocketAddr, context: Arc<Context>) {
    // A membership command waits up to MEMBERS_WAIT_LEASES leases.
    let exchange = EXCHANGE_TIMEOUT + context.handle.lease() * (MEMBERS_WAIT_LEASES + 1);
    let counters = Arc::clone(&context.counters);
    let me = context.handle.id().0;
    let service = hyper::service::service_fn(move |request| {
        let context = Arc::clone(&context);
        async move { Ok::<_, Infallible>(route(request, &context).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(false)
        .max_header_size(MAX_HEAD)
        .max_buf_size(2 * MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .serve_connection(TokioIo::new(stream), service);
    let reason = match tokio::time::timeout(exchange, served).await {
        Ok(Ok(())) => return,
        Err(_) => AdminReject::Slow,
        Ok(Err(e)) if e.is_timeout() => AdminReject::Slow,
        Ok(Err(e)) if e.is_parse_too_large() => AdminReject::HeadTooLarge,
        Ok(Err(e)) if e.is_parse() => AdminReject::Malformed,
        Ok(Err(e)) => {
            tracing::debug!(me, %peer, error = %e, "admin connection failed");
            AdminReject::Incomplete
        }
    };
    counters.reject(reason);
    tracing::debug!(me, %peer, reason = %reason.label(), "admin request turned away (counted)");
}

type Answer = Response<Full<Bytes>>;

fn answer(code: StatusCode, content_type: &'static str, body: String) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json<T: Serialize>(code: StatusCode, value: &T) -> Answer {
    answer(code, "application/json", to_json(value) + "\n")
}

/// A refusal, counted under `reason` when it is the client's fault.
fn refuse(
    context: &Context,
    code: StatusCode,
    reason: Option<AdminReject>,
    message: String,
) -> Answer {
    if let Some(reason) = reason {
        context.counters.reject(reason);
    }
    json(code, &ErrorBody { error: message })
}

async fn route(request: Request<Incoming>, context: &Context) -> Answer {
    context.counters.request();
    let handle = &context.handle;
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let wrong_method = |allow: &'static str| {
        let mut a = refuse(
            context,
            StatusCode::METHOD_NOT_ALLOWED,
            Some(AdminReject::MethodNotAllowed),
            format!("{path} takes {allow} only"),
        );
        a.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        a
    };
    match path.as_str() {
        "/status" | "/metrics" | "/healthz" if method != Method::GET => wrong_method("GET"),
        "/members" if method == Method::GET => {
            if request.uri().query().is_some_and(|q| !q.is_empty()) {
                return refuse(
                    context,
                    StatusCode::BAD_REQUEST,
                    Some(AdminReject::BadQuery),
                    "GET /members takes no query".into(),
                );
            }
            json(StatusCode::OK, &MembersDoc::of(handle))
        }
        "/members" if method == Method::POST => add_member(&request, context).await,
        "/members" => wrong_method("GET, POST"),
        p if p.starts_with("/members/") && method == Method::DELETE => {
            remove_member(&request, &p["/members/".len()..], context).await
        }
        p if p.starts_with("/members/") => wrong_method("DELETE"),
        "/status" => json(StatusCode::OK, &Status::of(handle)),
        "/metrics" => {
            let mut text = handle.metrics();
            context.counters.render(&handle.health(), &mut text);
            answer(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        "/healthz" => {
            let health = handle.health();
            let code = if health.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(code, &health)
        }
        "/release" | "/hand-over" if method != Method::POST => wrong_method("POST"),
        "/release" | "/hand-over" => command(&request, &path, context).await,
        _ => refuse(
            context,
            StatusCode::NOT_FOUND,
            Some(AdminReject::NotFound),
            format!(
                "no {path} here: GET /status, /metrics, /healthz, /members; POST /release, \
                 /hand-over?to=ID, /members?id=ID&addr=IP:PORT[&role=ROLE]; DELETE /members/ID"
            ),
        ),
    }
}

/// Checks who sent a `POST`; `Some` is the answer refusing it.
fn refusal(request: &Request<Incoming>, context: &Context) -> Option<Answer> {
    if request.headers().contains_key(header::ORIGIN) {
        return Some(refuse(
            context,
            StatusCode::FORBIDDEN,
            Some(AdminReject::Browser),
            "a POST from a web page (it has an Origin header) is refused".into(),
        ));
    }
    let unauthorized = |message: String| {
        let mut a = refuse(
            context,
            StatusCode::UNAUTHORIZED,
            Some(AdminReject::Unauthorized),
            message,
        );
        a.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tenure admin\""),
        );
        a
    };
    match &context.policy {
        PostPolicy::Loopback => None,
        PostPolicy::Closed => Some(unauthorized(format!(
            "POST is refused on this admin address ({}): it is not a loopback address and \
             the node was started without --admin-token-file",
            context.local
        ))),
        PostPolicy::Token(token) => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes)
                .and_then(|v| {
                    let (scheme, rest) = v.split_at_checked(7)?;
                    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
                });
            match presented {
                None => Some(unauthorized(
                    "this POST needs the admin token: send `Authorization: Bearer <token>` \
                     (the tenure command: --admin-token-file PATH)"
                        .into(),
                )),
                Some(p) if token.matches(p) => None,
                Some(_) => Some(unauthorized("wrong admin token".into())),
            }
        }
    }
}

/// The successor of `POST /hand-over`: the query must be exactly `to=ID`.
fn successor(query: Option<&str>) -> Result<NodeId, String> {
    let query = query.unwrap_or("");
    let value = query
        .strip_prefix("to=")
        .ok_or_else(|| format!("hand-over needs ?to=ID (got `{query}`)"))?;
    value
        .parse::<u16>()
        .ok()
        .filter(|id| *id > 0)
        .map(NodeId)
        .ok_or_else(|| format!("`{value}` is not a node id (1 to 65535)"))
}

async fn command(request: &Request<Incoming>, path: &str, context: &Context) -> Answer {
    if let Some(refusal) = refusal(request, context) {
        return refusal;
    }
    let handle = &context.handle;
    let query = request.uri().query();
    let to = if path == "/hand-over" {
        match successor(query) {
            Ok(to) => Some(to),
            Err(message) => {
                return refuse(
                    context,
                    StatusCode::BAD_REQUEST,
                    Some(AdminReject::BadQuery),
                    message,
                )
            }
        }
    } else {
        if query.is_some_and(|q| !q.is_empty()) {
            return refuse(
                context,
                StatusCode::BAD_REQUEST,
                Some(AdminReject::BadQuery),
                "release takes no query".into(),
            );
        }
        None
    };
    let me = handle.id();
    let token = handle.master().filter(|m| m.node == me).map(|m| m.token);
    let result = match to {
        None => handle.release().await,
        Some(to) => handle.hand_over(to).await,
    };
    match result {
        Ok(()) => {
            context.counters.command();
            let message = match to {
                None => format!("node {me} released the role"),
                Some(to) => format!("node {me} handed the role over to node {to}"),
            };
            tracing::info!(
                me = me.0,
                successor = %to.map_or_else(|| "none".to_string(), |n| n.to_string()),
                "admin: {message}"
            );
            json(
                StatusCode::OK,
                &CommandDone {
                    node: me.0,
                    command: path.trim_start_matches('/').to_string(),
                    successor: to.map(|n| n.0),
                    token,
                    message,
                },
            )
        }
        Err(HandleError::Refused(CommandError::NotMaster)) => {
            let master = handle.master().map_or_else(
                || "no master is in its view".to_string(),
                |m| format!("the master in its view is node {}", m.node),
            );
            refuse(
                context,
                StatusCode::CONFLICT,
                Some(AdminReject::Refused),
                format!("node {me} is not master ({master})"),
            )
        }
        Err(HandleError::Refused(e @ CommandError::InvalidSuccessor(_))) => refuse(
            context,
            StatusCode::BAD_REQUEST,
            Some(AdminReject::Refused),
            format!("node {me} refused: {e}"),
        ),
        Err(HandleError::Refused(CommandError::Backlog)) => refuse(
            context,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!("node {me} is busy; try again"),
        ),
        Err(HandleError::Refused(e)) => refuse(
            context,
            StatusCode::CONFLICT,
            Some(AdminReject::Refused),
            format!("node {me} refused: {e}"),
        ),
        Err(HandleError::Stopped) => refuse(
            context,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!("node {me} is not running"),
        ),
    }
}

/// What `POST /members` asks: `id=ID&addr=IP:PORT[&role=candidate|voter|learner]`,
/// each once, nothing else.
fn add_query(query: Option<&str>) -> Result<(NodeId, SocketAddr, Role), String> {
    let query = query.unwrap_or("");
    let (mut id, mut addr, mut role) = (None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        let value = percent_decoded(value)?;
        let twice = || format!("`{key}` is given twice");
        match key {
            "id" if id.is_none() => id = Some(node_id(&value)?),
            "addr" if addr.is_none() => {
                let a: SocketAddr = value
                    .parse()
                    .map_err(|_| format!("`{value}` is not an IP:PORT address"))?;
                if a.port() == 0 || a.ip().is_unspecified() {
                    return Err(format!("{a}: the other nodes cannot send to it"));
                }
                addr = Some(a);
            }
            "role" if role.is_none() => {
                role = Some(match value.as_str() {
                    "candidate" => Role::Candidate,
                    "voter" => Role::Voter,
                    "learner" => Role::Learner,
                    other => return Err(format!("`{other}` is not candidate, voter or learner")),
                })
            }
            "id" | "addr" | "role" => return Err(twice()),
            other => return Err(format!("unknown parameter `{other}` (id, addr, role)")),
        }
    }
    match (id, addr) {
        (Some(id), Some(addr)) => Ok((id, addr, role.unwrap_or(Role::Candidate))),
        _ => Err("adding a member needs ?id=ID&addr=IP:PORT (and optionally &role=ROLE)".into()),
    }
}

fn node_id(text: &str) -> Result<NodeId, String> {
    text.parse::<u16>()
        .ok()
        .filter(|id| *id > 0)
        .map(NodeId)
        .ok_or_else(|| format!("`{text}` is not a node id (1 to 65535)"))
}

/// `%XX` escapes decoded (an IPv6 address may come as `%5B::1%5D:7000`).
fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in `{text}`"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}` is not UTF-8"))
}

async fn add_member(request: &Request<Incoming>, context: &Context) -> Answer {
    if let Some(refusal) = refusal(request, context) {
        return refusal;
    }
    let (id, addr, role) = match add_query(request.uri().query()) {
        Ok(q) => q,
        Err(message) => {
            return refuse(
                context,
                StatusCode::BAD_REQUEST,
                Some(AdminReject::BadQuery),
                message,
            )
        }
    };
    let result = context.handle.add_member(id, addr, role).await;
    members_answer(context, "add", id, result, Some(addr))
}

async fn remove_member(request: &Request<Incoming>, id: &str, context: &Context) -> Answer {
    if let Some(refusal) = refusal(request, context) {
        return refusal;
    }
    let id = match (node_id(id), request.uri().query()) {
        (Ok(id), None) => id,
        (Ok(_), Some(_)) => {
            return refuse(
                context,
                StatusCode::BAD_REQUEST,
                Some(AdminReject::BadQuery),
                "DELETE /members/ID takes no query".into(),
            )
        }
        (Err(message), _) => {
            return refuse(
                context,
                StatusCode::BAD_REQUEST,
                Some(AdminReject::BadQuery),
                message,
            )
        }
    };
    let result = context.handle.remove_member(id).await;
    members_answer(context, "remove", id, result, None)
}

fn members_answer(
    context: &Context,
    command: &str,
    id: NodeId,
    result: Result<(), MembersFailure>,
    addr: Option<SocketAddr>,
) -> Answer {
    let handle = &context.handle;
    let me = handle.id();
    let conflict = |message: String| {
        refuse(
            context,
            StatusCode::CONFLICT,
            Some(AdminReject::Refused),
            message,
        )
    };
    match result {
        Ok(()) => {
            context.counters.command();
            let members = handle.members();
            let message = match addr {
                Some(addr) => format!(
                    "node {me} added node {id} at {addr}; start it with `tenure node --join` \
                     and a configuration listing every member"
                ),
                None => format!("node {me} removed node {id}; stop its process"),
            };
            tracing::info!(me = me.0, member = id.0, "admin: {message}");
            json(
                StatusCode::OK,
                &MembersDone {
                    node: me.0,
                    command: command.to_string(),
                    member: id.0,
                    version: members.version,
                    members: members.members.len(),
                    message,
                },
            )
        }
        Err(MembersFailure::Refused(MembersError::NotMaster)) => {
            let master = match handle.master_info() {
                None => "no master is in its view".to_string(),
                Some(m) => {
                    let at = m.addr.map_or_else(String::new, |a| format!(" (UDP {a})"));
                    let name = m.name.map_or_else(String::new, |n| format!(" \"{n}\""));
                    format!(
                        "the master in its view is node {}{name}{at}: ask its admin port",
                        m.node
                    )
                }
            };
            conflict(format!("node {me} is not master ({master})"))
        }
        Err(MembersFailure::Refused(MembersError::Backlog)) => refuse(
            context,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!("node {me} is busy; try again"),
        ),
        Err(MembersFailure::Refused(e @ MembersError::UnknownMember(_))) => refuse(
            context,
            StatusCode::NOT_FOUND,
            Some(AdminReject::Refused),
            format!("node {me} refused: {e}"),
        ),
        Err(MembersFailure::Refused(e)) => conflict(format!("node {me} refused: {e}")),
        Err(e @ MembersFailure::DuplicateAddress { .. }) => conflict(format!("node {me} {e}")),
        Err(e @ MembersFailure::NotChosen) => refuse(
            context,
            StatusCode::GATEWAY_TIMEOUT,
            None,
            format!("node {me}: {e}"),
        ),
        Err(e @ MembersFailure::AddressBook(_)) => refuse(
            context,
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("node {me}: {e}"),
        ),
        Err(MembersFailure::Stopped) => refuse(
            context,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!("node {me} is not running"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_takes_an_id_an_address_and_maybe_a_role() {
        let a: SocketAddr = "127.0.0.1:7004".parse().unwrap();
        assert_eq!(
            add_query(Some("id=4&addr=127.0.0.1:7004")),
            Ok((NodeId(4), a, Role::Candidate))
        );
        assert_eq!(
            add_query(Some("addr=127.0.0.1:7004&role=learner&id=4")),
            Ok((NodeId(4), a, Role::Learner))
        );
        assert_eq!(
            add_query(Some("id=4&addr=%5B::1%5D:7004")),
            Ok((NodeId(4), "[::1]:7004".parse().unwrap(), Role::Candidate))
        );
        for bad in [
            None,
            Some(""),
            Some("id=4"),
            Some("addr=127.0.0.1:7004"),
            Some("id=0&addr=127.0.0.1:7004"),
            Some("id=4&addr=127.0.0.1"),
            Some("id=4&addr=127.0.0.1:0"),
            Some("id=4&addr=0.0.0.0:7004"),
            Some("id=4&addr=127.0.0.1:7004&role=boss"),
            Some("id=4&id=5&addr=127.0.0.1:7004"),
            Some("id=4&addr=127.0.0.1:7004&x=1"),
            Some("id=4&addr=127.0.0.1:7004&role"),
            Some("id=4&addr=%zz"),
        ] {
            assert!(add_query(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_checked_and_compared_whole() {
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new("sixteen chars ok").is_err(), "a space");
        assert!(AdminToken::new(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        let t = AdminToken::new("  0123456789abcdef\n").unwrap();
        assert_eq!(t.expose(), "0123456789abcdef");
        assert!(t.matches(b"0123456789abcdef"));
        for wrong in [
            &b"0123456789abcdeF"[..],
            b"0123456789abcde",
            b"0123456789abcdef0",
            b"",
        ] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
        assert!(!format!("{t:?}").contains("0123"));
        assert_eq!(AdminToken::random().expose().len(), 64);
    }

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        let body: ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(body.error, "too many admin connections");
    }

    #[test]
    fn hand_over_takes_exactly_one_node_id() {
        assert_eq!(successor(Some("to=3")), Ok(NodeId(3)));
        for bad in [
            None,
            Some(""),
            Some("to="),
            Some("to=0"),
            Some("to=x"),
            Some("to=3&x=1"),
            Some("from=3"),
            Some("to=70000"),
        ] {
            assert!(successor(bad).is_err(), "{bad:?}");
        }
    }
}

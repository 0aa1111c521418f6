//! A tiny HTTP/1.1 responder for `/status` (JSON) and `/metrics` (Prometheus text).
//!
//! Hand-rolled on tokio to keep dependencies small: it reads one request head, answers,
//! and closes the connection. Meant for a loopback or management address only.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::clock::{host_monotonic_ns, Clock};
use crate::node::Handle;

/// The most concurrent connections served; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request and read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The `/status` document: the node's view at one instant of the host's monotonic clock.
///
/// `token` is the fencing token of the master's term (`null` without a live master), the
/// number [`Handle::run_while_master`] hands its work and `/metrics` shows as
/// `tenure_token`; `version` is the register's version (instance of the last effective
/// op; every renewal moves it in logged mode, so it is no fencing token); `renewal` is
/// the renewal mode.
///
/// `term_begin_ns` and `term_end_ns` are this node's current term on the host's
/// `CLOCK_BOOTTIME` (the clock leases are measured on, the same for every process and
/// network namespace of the host), `null` unless this node is master: the instant it
/// learned it was master, and the term's end, which moves on with every renewal.
/// `boottime_ns` dates the view on that clock, `monotonic_ns` on `CLOCK_MONOTONIC`.
pub fn status_json(handle: &Handle) -> String {
    // Read the view and both clocks together, so `monotonic_ns` dates the view.
    let view = handle.view();
    let clock = handle.clock();
    let now = clock.now();
    let monotonic_ns = host_monotonic_ns();
    let master = view.master_at(now);
    let term = view.term.filter(|_| view.is_master_at(now));
    let mut out = String::with_capacity(280);
    let null = || "null".to_string();
    let ns = |at: Option<tenure::Instant>| {
        at.and_then(|t| clock.boottime_ns(t))
            .map_or_else(null, |v| v.to_string())
    };
    let _ = write!(
        out,
        "{{\"node\":{},\"is_master\":{},\"master\":{},\"token\":{},\"version\":{},\"renewal\":\"{}\",\"lease_ms\":{},\"monotonic_ns\":{},\"boottime_ns\":{},\"term_begin_ns\":{},\"term_end_ns\":{},\"running\":{}}}",
        handle.id(),
        view.is_master_at(now),
        master.map_or_else(null, |m| m.node.to_string()),
        master.map_or_else(null, |m| m.token.to_string()),
        view.version.map_or_else(null, |v| v.to_string()),
        handle.renewal(),
        handle.lease().as_millis(),
        monotonic_ns,
        ns(Some(now)),
        ns(term.map(|t| t.since)),
        ns(term.map(|t| t.end)),
        view.running,
    );
    out
}

/// Serves `/status` and `/metrics` for `handle` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, handle: Handle) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if tokio::time::timeout(IO_TIMEOUT, answer(stream, &handle))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "admin client too slow; closed");
            }
        });
    }
}

/// Binds `addr` and serves on it (see [`serve`]); returns the bound address.
pub async fn bind(addr: SocketAddr, handle: Handle) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(listener, handle));
    Ok(local)
}

async fn answer(mut stream: TcpStream, handle: &Handle) {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > MAX_HEAD {
            let _ = respond(&mut stream, 431, "text/plain", "request head too large\n").await;
            return;
        }
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let _ = match (method, path) {
        ("GET", "/status") => {
            let body = status_json(handle) + "\n";
            respond(&mut stream, 200, "application/json", &body).await
        }
        ("GET", "/metrics") => {
            let body = handle.metrics();
            respond(&mut stream, 200, "text/plain; version=0.0.4", &body).await
        }
        ("GET", _) => respond(&mut stream, 404, "text/plain", "try /status or /metrics\n").await,
        _ => respond(&mut stream, 405, "text/plain", "only GET\n").await,
    };
}

async fn respond(
    stream: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

//! Counters shared between a node's driver and its handles, rendered in the Prometheus
//! text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tenure::{DropReason, NodeId, Stats};

use crate::transport::SendError;

/// Upper bounds (seconds) of the persist-latency histogram buckets.
const PERSIST_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];

/// The drop reason of the one datagram the adapter drops itself, before the core sees
/// it: from an address that is no member's. Every other reason is the core's
/// ([`DropReason`], counted in [`tenure::Drops`]).
pub const UNKNOWN_SOURCE: &str = "unknown_source";

/// A snapshot of every counter of one node (since it was started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// The core's counters (messages in/out, drops by reason, elections, ...). Every
    /// frame the core saw and dropped is counted there, under exactly one reason.
    pub core: Stats,
    /// Datagrams from addresses that are no member's (dropped unread, never shown to
    /// the core).
    pub unknown_source: u64,
    /// Datagrams received (before any check).
    pub datagrams_in: u64,
    /// Datagrams handed to the transport successfully.
    pub datagrams_out: u64,
    /// Failed sends, indexed like [`SendError::ALL`].
    pub send_failures: [u64; 6],
    /// Receive errors of the socket.
    pub recv_errors: u64,
    /// Member addresses learned from authenticated datagrams (see
    /// [`crate::addresses`]).
    pub addresses_learned: u64,
    /// Changes of the master in this node's view.
    pub master_changes: u64,
    /// Renewals that moved the end of this node's own term later, seen by the driver
    /// (in either [`tenure::Renewal`] mode; in lease mode it follows
    /// [`tenure::Stats::renewals_completed`]).
    pub term_extensions: u64,
    /// Records made durable (written and synced: what
    /// [`records written per renewal`](Counters::records_per_renewal) counts).
    pub persists: u64,
    /// Time spent making them durable, in microseconds.
    pub persist_micros: u64,
}

impl Counters {
    /// Records written per renewal completed, over this node's life: `persists /
    /// renewals_completed` (`None` before the first completed renewal). Meaningful for
    /// a master that held the role throughout; the demo computes it over stable periods
    /// of the whole cluster.
    pub fn records_per_renewal(&self) -> Option<f64> {
        (self.core.renewals_completed > 0)
            .then(|| self.persists as f64 / self.core.renewals_completed as f64)
    }

    /// Failed sends for one reason.
    pub fn send_failures(&self, reason: SendError) -> u64 {
        self.send_failures[reason.index()]
    }

    /// Every datagram dropped, by the adapter or the core.
    pub fn dropped_total(&self) -> u64 {
        self.core.dropped.total() + self.unknown_source
    }

    /// Drops by reason, each counted once: the adapter's [`UNKNOWN_SOURCE`] first, then
    /// every [`DropReason`] of the core, in [`DropReason::ALL`] order.
    pub fn drops(&self) -> [(&'static str, u64); 1 + DropReason::ALL.len()] {
        let mut out = [(UNKNOWN_SOURCE, self.unknown_source); 1 + DropReason::ALL.len()];
        for (slot, reason) in out[1..].iter_mut().zip(DropReason::ALL) {
            *slot = (reason.label(), u64::from(self.core.dropped.get(reason)));
        }
        out
    }
}

/// The live counters of one node.
#[derive(Debug, Default)]
pub struct Metrics {
    core: Mutex<Stats>,
    unknown_source: AtomicU64,
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    send_failures: [AtomicU64; 6],
    recv_errors: AtomicU64,
    addresses_learned: AtomicU64,
    master_changes: AtomicU64,
    term_extensions: AtomicU64,
    persist: Mutex<Histogram>,
    /// When each member was last heard from, by id (members come and go with membership
    /// changes): the node's clock in microseconds. At most [`tenure::MAX_MEMBERS`] plus
    /// a few removed ones are kept (the oldest is forgotten first).
    heard: Mutex<Vec<(NodeId, u64)>>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; PERSIST_BUCKETS.len()],
    count: u64,
    sum: f64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn set_core(&self, stats: &Stats) {
        *self.core.lock().unwrap_or_else(|e| e.into_inner()) = *stats;
    }
    pub(crate) fn unknown_source(&self) {
        bump(&self.unknown_source);
    }
    pub(crate) fn datagram_in(&self) {
        bump(&self.datagrams_in);
    }
    pub(crate) fn sent(&self, result: Result<(), SendError>) {
        match result {
            Ok(()) => bump(&self.datagrams_out),
            Err(e) => bump(&self.send_failures[e.index()]),
        }
    }
    /// Counts a socket receive error (for bindings that read sockets themselves).
    pub fn recv_error(&self) {
        bump(&self.recv_errors);
    }
    /// Counts a member address learned from an authenticated datagram.
    pub fn address_learned(&self) {
        bump(&self.addresses_learned);
    }
    pub(crate) fn master_changed(&self) {
        bump(&self.master_changes);
    }
    pub(crate) fn term_extended(&self) {
        bump(&self.term_extensions);
    }
    pub(crate) fn persisted(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let mut h = self.persist.lock().unwrap_or_else(|e| e.into_inner());
        for (i, bound) in PERSIST_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Notes that member `id` was heard from at `at` (a frame of it the core took, or
    /// dropped only as late or repeated).
    pub(crate) fn heard(&self, id: NodeId, at: tenure::Instant) {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        let at = at.as_micros();
        match heard.iter_mut().find(|(n, _)| *n == id) {
            Some(entry) => entry.1 = entry.1.max(at),
            None => {
                if heard.len() >= tenure::MAX_MEMBERS + 8 {
                    // Forget the member heard from longest ago (most likely removed).
                    if let Some(oldest) = (0..heard.len()).min_by_key(|i| heard[*i].1) {
                        heard.swap_remove(oldest);
                    }
                }
                heard.push((id, at));
            }
        }
    }

    /// When member `id` was last heard from, on the node's clock (`None`: never, since
    /// this node started).
    pub fn last_heard(&self, id: NodeId) -> Option<tenure::Instant> {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, at)| tenure::Instant::from_micros(*at))
    }

    /// A snapshot of every counter.
    pub fn counters(&self) -> Counters {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (persists, persist_seconds) = {
            let h = self.persist.lock().unwrap_or_else(|e| e.into_inner());
            (h.count, h.sum)
        };
        Counters {
            core: *self.core.lock().unwrap_or_else(|e| e.into_inner()),
            unknown_source: load(&self.unknown_source),
            datagrams_in: load(&self.datagrams_in),
            datagrams_out: load(&self.datagrams_out),
            send_failures: self.send_failures.each_ref().map(load),
            recv_errors: load(&self.recv_errors),
            addresses_learned: load(&self.addresses_learned),
            master_changes: load(&self.master_changes),
            term_extensions: load(&self.term_extensions),
            persists,
            persist_micros: (persist_seconds * 1e6) as u64,
        }
    }

    /// The Prometheus text exposition of every counter, with the gauges given by the
    /// caller (they depend on the current instant).
    pub fn render(&self, gauges: &Gauges) -> String {
        let c = self.counters();
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP tenure_{name} {help}");
            let _ = writeln!(out, "# TYPE tenure_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "tenure_{name}{labels} {value}");
            }
        };
        let one = |v: u64| vec![("", v.to_string())];
        metric(
            "is_master",
            "gauge",
            "1 while this node is master.",
            &one(u64::from(gauges.is_master)),
        );
        metric(
            "master_node",
            "gauge",
            "The master in this node's view (-1: none).",
            &[("", gauges.master.map_or(-1, i64::from).to_string())],
        );
        let signed = |v: Option<u64>| {
            v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
                .to_string()
        };
        metric(
            "token",
            "gauge",
            "The fencing token of the master's term in this node's view (-1: no master). \
             Fixed for a term; the same number as /status `token` and run_while_master's.",
            &[("", signed(gauges.token))],
        );
        metric(
            "version",
            "gauge",
            "The register's version: instance of the last effective op (-1: none). Not a \
             fencing token: in logged mode every renewal moves it.",
            &[("", signed(gauges.version))],
        );
        metric(
            "master_changes_total",
            "counter",
            "Changes of the master in this node's view.",
            &one(c.master_changes),
        );
        metric(
            "elections_started_total",
            "counter",
            "Campaigns this node started.",
            &one(u64::from(c.core.elections_started)),
        );
        metric(
            "elections_won_total",
            "counter",
            "Times this node became master.",
            &one(u64::from(c.core.elections_won)),
        );
        metric(
            "renewals_total",
            "counter",
            "Renewals this node began (lease mode: Renew rounds; logged mode: BeMaster \
             renewals proposed).",
            &one(u64::from(c.core.renewals)),
        );
        metric(
            "renewals_completed_total",
            "counter",
            "Lease-mode renewal rounds a majority answered.",
            &one(u64::from(c.core.renewals_completed)),
        );
        metric(
            "renewals_failed_total",
            "counter",
            "Lease-mode renewal rounds that timed out without a majority.",
            &one(u64::from(c.core.renewals_failed)),
        );
        metric(
            "term_extensions_total",
            "counter",
            "Renewals that moved the end of this node's own term later (either mode).",
            &one(c.term_extensions),
        );
        metric(
            "renews_answered_total",
            "counter",
            "Renew messages this node answered as a voter.",
            &one(u64::from(c.core.renews_answered)),
        );
        metric(
            "renews_refused_total",
            "counter",
            "Renew messages this node refused.",
            &one(u64::from(c.core.renews_refused)),
        );
        metric(
            "guard_refusals_total",
            "counter",
            "Prepare and Accept refused because a guard named another node.",
            &one(u64::from(c.core.guard_refusals)),
        );
        metric(
            "silent_refusals_total",
            "counter",
            "Votes refused during the silence after a restart.",
            &one(u64::from(c.core.silent_refusals)),
        );
        metric(
            "persists_total",
            "counter",
            "Records written (made durable). Per renewal: persists_total / \
             renewals_completed_total (0 in lease mode while the master is stable).",
            &one(c.persists),
        );
        metric(
            "clock_regressions_total",
            "counter",
            "Clock readings earlier than the previous one (each ends this node's own term).",
            &one(u64::from(c.core.clock_regressions)),
        );
        metric(
            "releases_total",
            "counter",
            "Releases and hand-overs this node proposed.",
            &one(u64::from(c.core.releases)),
        );
        metric(
            "round_timeouts_total",
            "counter",
            "Paxos phases that timed out.",
            &one(u64::from(c.core.round_timeouts)),
        );
        metric(
            "messages_in_total",
            "counter",
            "Packets decoded and handed to the core.",
            &one(u64::from(c.core.messages_in)),
        );
        metric(
            "messages_out_total",
            "counter",
            "Messages the core sent (a send to all counts once).",
            &one(u64::from(c.core.messages_out)),
        );
        metric(
            "datagrams_in_total",
            "counter",
            "Datagrams received, before any check.",
            &one(c.datagrams_in),
        );
        metric(
            "datagrams_out_total",
            "counter",
            "Datagrams sent successfully.",
            &one(c.datagrams_out),
        );
        let dropped = c.drops();
        let labels: Vec<String> = dropped
            .iter()
            .map(|(r, _)| format!("{{reason=\"{r}\"}}"))
            .collect();
        let samples: Vec<(&str, String)> = labels
            .iter()
            .zip(dropped.iter())
            .map(|(l, (_, v))| (l.as_str(), v.to_string()))
            .collect();
        metric(
            "messages_dropped_total",
            "counter",
            "Datagrams or messages dropped, by reason.",
            &samples,
        );
        let labels: Vec<String> = SendError::ALL
            .iter()
            .map(|e| format!("{{reason=\"{}\"}}", e.label()))
            .collect();
        let samples: Vec<(&str, String)> = labels
            .iter()
            .zip(SendError::ALL)
            .map(|(l, e)| (l.as_str(), c.send_failures(e).to_string()))
            .collect();
        metric(
            "send_failures_total",
            "counter",
            "Sends that failed, by reason (never fatal).",
            &samples,
        );
        metric(
            "recv_errors_total",
            "counter",
            "Socket receive errors.",
            &one(c.recv_errors),
        );
        metric(
            "addresses_learned_total",
            "counter",
            "Member addresses learned from datagrams sealed with the cluster key (members \
             added while this node ran, that it had no address for).",
            &one(c.addresses_learned),
        );
        let h = self.persist.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP tenure_persist_seconds Time to make a record durable (write, fsync, rename, fsync dir)."
        );
        let _ = writeln!(out, "# TYPE tenure_persist_seconds histogram");
        for (bound, count) in PERSIST_BUCKETS.iter().zip(h.buckets) {
            let _ = writeln!(
                out,
                "tenure_persist_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "tenure_persist_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "tenure_persist_seconds_sum {}", h.sum);
        let _ = writeln!(out, "tenure_persist_seconds_count {}", h.count);
        out
    }
}

/// Values that depend on the instant they are taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Whether this node is master now.
    pub is_master: bool,
    /// The master in this node's view now.
    pub master: Option<u16>,
    /// The fencing token of that master's term.
    pub token: Option<u64>,
    /// The register's version ([`tenure::Node::version`]).
    pub version: Option<u64>,
}

/// Whether a node is running and has a quorum in view: what `GET /healthz` answers
/// ([`crate::Handle::health`]).
///
/// A quorum is in view when this node sees a live master (whose lease a majority
/// granted or renewed, and which it heard from within the lease), or when it heard from
/// a majority of the voters, itself included if it votes, within one lease. A
/// follower hears mostly from the master, so the first half is what a healthy follower
/// usually shows; the second is what a cluster without a master can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// `running` and `quorum_in_view`: the answer of `/healthz` (200 if true, else 503).
    pub healthy: bool,
    /// The node's task runs (false once it stopped, failed or crashed).
    pub running: bool,
    /// A live master is in view, or a majority of the voters was heard from within a
    /// lease.
    pub quorum_in_view: bool,
    /// The live master in this node's view.
    pub master: Option<u16>,
    /// Voters heard from within one lease, this node included if it votes.
    pub voters_heard: usize,
    /// Voters in the configuration.
    pub voters: usize,
    /// Votes that make a majority.
    pub quorum: usize,
}

/// Why the admin port turned a request or a connection away: each is counted once in
/// `tenure_admin_bad_requests_total{reason}`. Every 4xx answer has one; so has every
/// connection closed without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdminReject {
    /// Not HTTP/1.x, or a malformed request line or header (400, sent by the HTTP stack).
    Malformed,
    /// A request head over the size or header-count limit (431).
    HeadTooLarge,
    /// The head did not arrive within the read timeout, or the exchange took too long
    /// (closed without an answer).
    Slow,
    /// The client closed the connection in the middle of its request.
    Incomplete,
    /// Every connection slot was taken (503, closed).
    Busy,
    /// No such path (404).
    NotFound,
    /// A method the path does not take (405).
    MethodNotAllowed,
    /// A bad query string (400).
    BadQuery,
    /// A `POST` without the admin token, with a wrong one, or one the node refuses
    /// without a token file (401).
    Unauthorized,
    /// A `POST` from a web page (it carries an `Origin` header): refused so a page in a
    /// browser on this host cannot drive the node (403).
    Browser,
    /// A command the node refused: not master, not a valid successor (409 or 400).
    Refused,
}

impl AdminReject {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [AdminReject; 11] = [
        AdminReject::Malformed,
        AdminReject::HeadTooLarge,
        AdminReject::Slow,
        AdminReject::Incomplete,
        AdminReject::Busy,
        AdminReject::NotFound,
        AdminReject::MethodNotAllowed,
        AdminReject::BadQuery,
        AdminReject::Unauthorized,
        AdminReject::Browser,
        AdminReject::Refused,
    ];

    /// The `reason` label.
    pub const fn label(self) -> &'static str {
        match self {
            AdminReject::Malformed => "malformed",
            AdminReject::HeadTooLarge => "head_too_large",
            AdminReject::Slow => "slow",
            AdminReject::Incomplete => "incomplete",
            AdminReject::Busy => "busy",
            AdminReject::NotFound => "not_found",
            AdminReject::MethodNotAllowed => "method_not_allowed",
            AdminReject::BadQuery => "bad_query",
            AdminReject::Unauthorized => "unauthorized",
            AdminReject::Browser => "browser",
            AdminReject::Refused => "refused",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The admin port's own counters (shared by its connections).
#[derive(Debug, Default)]
pub struct AdminCounters {
    requests: AtomicU64,
    commands: AtomicU64,
    rejected: [AtomicU64; AdminReject::ALL.len()],
}

impl AdminCounters {
    /// Counts a request that reached a handler (whatever its answer).
    pub fn request(&self) {
        bump(&self.requests);
    }
    /// Counts a command (`POST`) the node carried out.
    pub fn command(&self) {
        bump(&self.commands);
    }
    /// Counts a request or connection turned away.
    pub fn reject(&self, reason: AdminReject) {
        bump(&self.rejected[reason.index()]);
    }
    /// Requests that reached a handler.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Commands carried out.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }
    /// Requests or connections turned away for `reason`.
    pub fn rejected(&self, reason: AdminReject) -> u64 {
        self.rejected[reason.index()].load(Ordering::Relaxed)
    }

    /// Appends the admin port's families and the health gauges to a `/metrics` text.
    pub fn render(&self, health: &Health, out: &mut String) {
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP tenure_{name} {help}");
            let _ = writeln!(out, "# TYPE tenure_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "tenure_{name}{labels} {value}");
            }
        };
        let one = |v: u64| [(String::new(), v)];
        family(
            "healthy",
            "gauge",
            "1 while the node runs and has a quorum in view (what /healthz answers).",
            &one(u64::from(health.healthy)),
        );
        family(
            "voters_heard",
            "gauge",
            "Voters heard from within one lease, this node included if it votes.",
            &one(health.voters_heard as u64),
        );
        family(
            "admin_requests_total",
            "counter",
            "Admin requests that reached a handler.",
            &one(self.requests()),
        );
        family(
            "admin_commands_total",
            "counter",
            "Admin commands (POST /release, POST /hand-over) the node carried out.",
            &one(self.commands()),
        );
        let samples: Vec<(String, u64)> = AdminReject::ALL
            .iter()
            .map(|r| (format!("{{reason=\"{}\"}}", r.label()), self.rejected(*r)))
            .collect();
        family(
            "admin_bad_requests_total",
            "counter",
            "Admin requests or connections turned away (every 4xx, and every connection \
             closed without an answer), by reason.",
            &samples,
        );
    }
}

/// A member as the info metrics label it: id, and `name` and `advertise` from the
/// configuration (empty when not set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoLabels<'a> {
    /// The member's id.
    pub node: u16,
    /// Its name.
    pub name: Option<&'a str>,
    /// Its advertised address.
    pub advertise: Option<&'a str>,
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
pub fn label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `tenure_node_info` (this node) and `tenure_master_info` (the master in its view, no
/// sample without one), each a gauge of 1 whose labels carry `node`, `name` and
/// `advertise`: who the master is and where its service is reached.
pub fn render_info(me: &InfoLabels<'_>, master: Option<&InfoLabels<'_>>) -> String {
    let labels = |i: &InfoLabels<'_>| {
        format!(
            "{{node=\"{}\",name=\"{}\",advertise=\"{}\"}}",
            i.node,
            label_value(i.name.unwrap_or("")),
            label_value(i.advertise.unwrap_or(""))
        )
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP tenure_node_info This node, with its configured name and advertised address."
    );
    let _ = writeln!(out, "# TYPE tenure_node_info gauge");
    let _ = writeln!(out, "tenure_node_info{} 1", labels(me));
    let _ = writeln!(
        out,
        "# HELP tenure_master_info The master in this node's view, with its configured name \
         and advertised address (no sample without a master)."
    );
    let _ = writeln!(out, "# TYPE tenure_master_info gauge");
    if let Some(m) = master {
        let _ = writeln!(out, "tenure_master_info{} 1", labels(m));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let m = Metrics::default();
        m.unknown_source();
        m.sent(Err(SendError::PermissionDenied));
        m.persisted(Duration::from_micros(700));
        m.term_extended();
        m.set_core(&Stats {
            renewals_completed: 4,
            ..Stats::default()
        });
        let text = m.render(&Gauges {
            is_master: true,
            master: Some(2),
            token: Some(7),
            version: Some(9),
        });
        for line in [
            "tenure_is_master 1",
            "tenure_master_node 2",
            "tenure_token 7",
            "tenure_version 9",
            "tenure_renewals_completed_total 4",
            "tenure_term_extensions_total 1",
            "tenure_persists_total 1",
            "tenure_messages_dropped_total{reason=\"unknown_source\"} 1",
            "tenure_send_failures_total{reason=\"permission_denied\"} 1",
            "tenure_persist_seconds_bucket{le=\"0.0005\"} 0",
            "tenure_persist_seconds_bucket{le=\"0.001\"} 1",
            "tenure_persist_seconds_count 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        let c = m.counters();
        assert_eq!(c.records_per_renewal(), Some(0.25));
        assert_eq!(c.dropped_total(), 1);
        assert_eq!(c.send_failures(SendError::PermissionDenied), 1);
    }

    #[test]
    fn last_contact_is_kept_per_member_and_only_moves_on() {
        let m = Metrics::default();
        let (one, two) = (NodeId(1), NodeId(2));
        assert_eq!(m.last_heard(two), None);
        m.heard(two, tenure::Instant::from_micros(0));
        assert_eq!(m.last_heard(two), Some(tenure::Instant::from_micros(0)));
        m.heard(two, tenure::Instant::from_micros(900));
        m.heard(two, tenure::Instant::from_micros(500));
        assert_eq!(m.last_heard(two), Some(tenure::Instant::from_micros(900)));
        assert_eq!(m.last_heard(one), None);
        // Bounded: many ids (members added and removed) forget the oldest.
        for i in 0..100u16 {
            m.heard(
                NodeId(1000 + i),
                tenure::Instant::from_micros(1000 + u64::from(i)),
            );
        }
        assert_eq!(
            m.last_heard(NodeId(1099)),
            Some(tenure::Instant::from_micros(1099))
        );
        assert_eq!(m.last_heard(two), None, "the oldest is forgotten first");
    }

    #[test]
    fn admin_counters_render_every_reason_once() {
        let c = AdminCounters::default();
        c.request();
        c.command();
        c.reject(AdminReject::Slow);
        c.reject(AdminReject::Slow);
        c.reject(AdminReject::Refused);
        let health = Health {
            healthy: false,
            running: true,
            quorum_in_view: false,
            master: None,
            voters_heard: 1,
            voters: 3,
            quorum: 2,
        };
        let mut text = String::new();
        c.render(&health, &mut text);
        for line in [
            "tenure_healthy 0",
            "tenure_voters_heard 1",
            "tenure_admin_requests_total 1",
            "tenure_admin_commands_total 1",
            "tenure_admin_bad_requests_total{reason=\"slow\"} 2",
            "tenure_admin_bad_requests_total{reason=\"refused\"} 1",
            "tenure_admin_bad_requests_total{reason=\"busy\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        let reasons = text
            .lines()
            .filter(|l| l.starts_with("tenure_admin_bad_requests_total{"))
            .count();
        assert_eq!(reasons, AdminReject::ALL.len());
        for (i, r) in AdminReject::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
    }

    #[test]
    fn every_drop_reason_is_rendered_once_with_its_own_count() {
        let m = Metrics::default();
        m.unknown_source();
        let mut stats = Stats::default();
        // A different count per reason, so a reason rendered from another's counter shows.
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            for _ in 0..i + 2 {
                stats.dropped.add(reason);
            }
        }
        m.set_core(&stats);
        let text = m.render(&Gauges::default());
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tenure_messages_dropped_total{"))
            .collect();
        assert_eq!(lines.len(), 1 + DropReason::ALL.len(), "{lines:?}");
        assert!(lines.contains(&"tenure_messages_dropped_total{reason=\"unknown_source\"} 1"));
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            let line = format!(
                "tenure_messages_dropped_total{{reason=\"{}\"}} {}",
                reason.label(),
                i + 2
            );
            assert_eq!(
                lines.iter().filter(|l| **l == line).count(),
                1,
                "{line} in {lines:?}"
            );
        }
        let sum: u64 = m.counters().drops().iter().map(|(_, n)| n).sum();
        assert_eq!(sum, m.counters().dropped_total());
    }

    #[test]
    fn info_metrics_label_the_node_and_the_master() {
        let me = InfoLabels {
            node: 1,
            name: Some("db \"one\"\\x"),
            advertise: None,
        };
        let master = InfoLabels {
            node: 2,
            name: Some("db-2"),
            advertise: Some("10.0.0.2:5432"),
        };
        let text = render_info(&me, Some(&master));
        assert!(
            text.contains(
                "tenure_node_info{node=\"1\",name=\"db \\\"one\\\"\\\\x\",advertise=\"\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tenure_master_info{node=\"2\",name=\"db-2\",advertise=\"10.0.0.2:5432\"} 1\n"
            ),
            "{text}"
        );
        let none = render_info(&me, None);
        assert!(none.contains("# TYPE tenure_master_info gauge"), "{none}");
        assert!(!none.contains("tenure_master_info{"), "{none}");
        assert_eq!(label_value("a\nb"), "a\\nb");
    }
}

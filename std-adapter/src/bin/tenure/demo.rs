//! `tenure demo`: a local cluster of real nodes on loopback UDP whose master is killed
//! again and again; measures failovers and checks that no two nodes ever claim the role
//! at the same instant.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tenure::{Member, NodeId};
use tenure_tokio::{Handle, NodeConfig};
use tokio::time::{Instant, MissedTickBehavior};

/// What to run.
pub struct Options {
    pub nodes: u16,
    pub lease: Duration,
    pub duration: Duration,
    pub kill_every: Duration,
    pub keep: bool,
    pub renewal: tenure::Renewal,
}

/// Columns of the final timeline.
const COLUMNS: u32 = 60;
/// Overlap warnings printed at most.
const MAX_OVERLAP_REPORTS: u32 = 5;

/// One member: its configuration, its running incarnation, and a killed incarnation
/// kept while its term may still run (it still "claims" the role until then).
struct Slot {
    id: NodeId,
    config: NodeConfig,
    live: Option<Handle>,
    zombie: Option<Handle>,
    last_term: Option<tenure::Instant>,
    row: Vec<u8>,
    /// When the running incarnation started.
    started: Instant,
    /// Its counters at the previous sample (the meter of writes per renewal).
    seen: Option<tenure_tokio::Counters>,
}

/// What the cluster did while one master was stable: every node's records written and
/// datagrams sent, and the master's completed renewals.
#[derive(Default)]
struct Stable {
    persists: u64,
    datagrams: u64,
    renewals: u64,
    time: Duration,
}

impl Stable {
    fn per_renewal(&self, n: u64) -> String {
        if self.renewals == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", n as f64 / self.renewals as f64)
        }
    }
}

/// Counters summed over every incarnation of every node.
#[derive(Default)]
struct Totals {
    round_timeouts: u64,
    campaigns: u64,
    persists: u64,
    persist_micros: u64,
}

impl Totals {
    fn add(&mut self, c: &tenure_tokio::Counters) {
        self.round_timeouts += u64::from(c.core.round_timeouts);
        self.campaigns += u64::from(c.core.elections_started);
        self.persists += c.persists;
        self.persist_micros += c.persist_micros;
    }

    fn persist_mean_ms(&self) -> f64 {
        self.persist_micros as f64 / 1000.0 / self.persists.max(1) as f64
    }
}

struct PendingFailover {
    killed: NodeId,
    at: Instant,
    /// The killed master's last version as it knew it.
    version: u64,
    /// Whether a renewal it had in flight was seen chosen after the kill.
    renewed_after_death: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Clock0(Instant);

impl Clock0 {
    fn stamp(&self, t: Instant) -> String {
        format!(
            "[{:>7.3}s]",
            t.saturating_duration_since(self.0).as_secs_f64()
        )
    }
}

fn bind_loopback() -> Result<std::net::UdpSocket, String> {
    std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1: {e}"))
}

fn start_node(config: &NodeConfig) -> Result<Handle, String> {
    let socket = std::net::UdpSocket::bind(config.listen)
        .and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        })
        .map_err(|e| format!("cannot bind {}: {e}", config.listen))?;
    tenure_tokio::start_on(config.clone(), socket).map_err(|e| e.to_string())
}

pub async fn run(o: Options) -> Result<ExitCode, String> {
    let lease_ms = o.lease.as_millis();
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "tenure-demo-{}-{}",
        std::process::id(),
        tenure_tokio::clock::host_monotonic_ns()
    ));
    // Reserve one loopback port per node.
    let sockets = (0..o.nodes)
        .map(|_| bind_loopback())
        .collect::<Result<Vec<_>, _>>()?;
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    drop(sockets);
    let members: Vec<(Member, SocketAddr)> = (1..=o.nodes)
        .zip(&addrs)
        .map(|(id, a)| (Member::candidate(id), *a))
        .collect();
    let cluster_id = (tenure_tokio::clock::host_monotonic_ns() as u32) | 1;
    // Authenticated like a real deployment: one fresh cluster key for every node.
    let key = tenure_tokio::config::random_key();
    let mut slots = Vec::new();
    for (member, _) in &members {
        let mut config = NodeConfig::new(
            cluster_id,
            member.id,
            &members,
            dir.join(format!("node-{}", member.id)),
        )
        .map_err(|e| e.to_string())?;
        config.core.lease = tenure_tokio::clock::to_core(o.lease);
        config.core.auth = tenure::Auth::key(key);
        config.core.renewal = o.renewal;
        // Fresh temporary directories: every node's first start.
        config.first_boot = true;
        config.validate().map_err(|e| format!("--lease: {e}"))?;
        slots.push(Slot {
            id: member.id,
            config,
            live: None,
            zombie: None,
            last_term: None,
            row: vec![b' '; COLUMNS as usize],
            started: Instant::now(),
            seen: None,
        });
    }

    println!(
        "tenure demo: {} nodes on loopback UDP, lease {} ms, renewal {}, running {:.0} s, killing the master every {:.1} s",
        o.nodes,
        lease_ms,
        o.renewal,
        o.duration.as_secs_f64(),
        o.kill_every.as_secs_f64()
    );
    println!("data directories under {}", dir.display());
    let start = Instant::now();
    let clock0 = Clock0(start);
    for slot in &mut slots {
        slot.live = Some(start_node(&slot.config)?);
        slot.started = Instant::now();
    }
    println!(
        "{} started nodes 1..={} on 127.0.0.1 ports {}",
        clock0.stamp(Instant::now()),
        o.nodes,
        addrs
            .iter()
            .map(|a| a.port().to_string())
            .collect::<Vec<_>>()
            .join(",")
    );

    let end = start + o.duration;
    let column = (o.duration / COLUMNS).max(Duration::from_millis(1));
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut next_kill = start + o.kill_every;
    // A release halfway between kills, every cycle: the role should move at once.
    let mut release_at = Some(start + o.kill_every / 2).filter(|t| *t < end);
    let mut releasing: Option<(NodeId, Instant)> = None;
    let mut releases: Vec<f64> = Vec::new();
    let mut pending: Option<PendingFailover> = None;
    let mut next_status = start + Duration::from_secs(5);
    let mut failovers: Vec<f64> = Vec::new();
    let mut failed_failovers = 0u32;
    let (mut kills, mut restarts, mut elections) = (0u32, 0u32, 0u32);
    let (mut samples, mut overlaps) = (0u64, 0u64);
    let mut current: Option<(NodeId, u64)> = None;
    let mut totals = Totals::default();
    let mut restart_failures = 0u32;
    // Writes and messages per renewal, measured while one master is stable: it has held
    // the role for a lease, no kill or release is under way, and every node is up and
    // has been for two leases (a restarted node catches up, and writes, once).
    let mut stable = Stable::default();
    let mut stable_before = false;
    let mut term_seen_at: Option<Instant> = None;
    let mut last_tick = start;

    loop {
        tick.tick().await;
        let t = Instant::now();
        if t >= end {
            break;
        }
        // 1. Sample every node's claim at one instant of the shared monotonic clock.
        samples += 1;
        let col =
            ((t - start).as_micros() / column.as_micros()).min(u128::from(COLUMNS - 1)) as usize;
        let mut claimants: Vec<NodeId> = Vec::new();
        for slot in &mut slots {
            let live = slot.live.as_ref().is_some_and(|h| h.is_master_at(t));
            let zombie = slot.zombie.as_ref().is_some_and(|h| h.is_master_at(t));
            if live || zombie {
                claimants.push(slot.id);
            }
            // The row shows the running incarnation; a killed one's claim still counts
            // above, until its term ends.
            let cell = if live {
                b'M'
            } else if slot.live.is_none() {
                b'x'
            } else {
                b'.'
            };
            let rank = |c: u8| match c {
                b'K' => 4,
                b'M' => 3,
                b'x' => 2,
                b'.' => 1,
                _ => 0,
            };
            if rank(cell) > rank(slot.row[col]) {
                slot.row[col] = cell;
            }
        }
        if claimants.len() > 1 {
            overlaps += 1;
            if overlaps <= u64::from(MAX_OVERLAP_REPORTS) {
                println!(
                    "{} OVERLAP: nodes {:?} claim the role at the same instant",
                    clock0.stamp(t),
                    claimants
                );
            }
        }
        // 1b. The meter of writes and messages per renewal.
        let master_slot = match claimants[..] {
            [m] => slots
                .iter()
                .position(|s| s.id == m && s.live.as_ref().is_some_and(|h| h.is_master_at(t))),
            _ => None,
        };
        let is_stable = master_slot.is_some()
            && pending.is_none()
            && releasing.is_none()
            && term_seen_at.is_some_and(|at| t - at >= o.lease)
            && slots
                .iter()
                .all(|s| s.live.is_some() && t - s.started >= 2 * o.lease);
        for (k, slot) in slots.iter_mut().enumerate() {
            let Some(h) = slot.live.as_ref() else {
                slot.seen = None;
                continue;
            };
            let c = h.counters();
            if let Some(prev) = slot.seen.filter(|_| is_stable && stable_before) {
                stable.persists += c.persists - prev.persists;
                stable.datagrams += c.datagrams_out - prev.datagrams_out;
                if Some(k) == master_slot {
                    stable.renewals += match o.renewal {
                        tenure::Renewal::Lease => {
                            u64::from(c.core.renewals_completed - prev.core.renewals_completed)
                        }
                        tenure::Renewal::Logged => c.term_extensions - prev.term_extensions,
                    };
                }
            }
            slot.seen = Some(c);
        }
        if is_stable && stable_before {
            stable.time += t - last_tick;
        }
        last_tick = t;
        stable_before = is_stable;
        // 2. New terms, and what they complete (a failover, a release).
        for slot in &mut slots {
            let Some(h) = slot.live.as_ref() else {
                continue;
            };
            let view = h.view();
            let Some(term) = view.term else { continue };
            if slot.last_term == Some(term.since) || !h.is_master_at(t) {
                continue;
            }
            slot.last_term = Some(term.since);
            elections += 1;
            term_seen_at = Some(t);
            current = Some((slot.id, term.token));
            let mut note = String::new();
            if let Some(p) = pending.as_ref().filter(|p| p.killed != slot.id) {
                let took = ms(t - p.at);
                failovers.push(took);
                note = format!(
                    "  <- failover {:.0} ms after the kill ({:.2} x lease)",
                    took,
                    took / lease_ms as f64
                );
                pending = None;
            }
            if let Some((from, at)) = releasing.filter(|(from, _)| *from != slot.id) {
                let took = ms(t - at);
                releases.push(took);
                note = format!("  <- {took:.0} ms after node {from} released it");
                releasing = None;
            }
            println!(
                "{} node {} is master (fencing token {}){note}",
                clock0.stamp(t),
                slot.id,
                term.token
            );
        }
        // 3. Restart a killed node from its record once a new master is in place and its
        //    own term is surely over.
        for slot in &mut slots {
            let Some(zombie) = slot.zombie.as_ref() else {
                continue;
            };
            let waited_out = pending.as_ref().is_none_or(|p| p.killed != slot.id);
            if waited_out && !zombie.is_master_at(t) {
                match start_node(&slot.config) {
                    Ok(h) => {
                        restarts += 1;
                        slot.zombie = None;
                        slot.last_term = None;
                        slot.live = Some(h);
                        slot.started = Instant::now();
                        slot.seen = None;
                        println!(
                            "{} node {} restarted from its record on disk",
                            clock0.stamp(t),
                            slot.id
                        );
                    }
                    Err(e) => {
                        restart_failures += 1;
                        if restart_failures <= 3 {
                            println!("{} node {} restart failed: {e}", clock0.stamp(t), slot.id);
                        }
                    }
                }
            }
        }
        if let Some(p) = pending.as_mut().filter(|p| !p.renewed_after_death) {
            // A renewal the master had sent just before it died can still be chosen
            // (Paxos must finish a value a voter accepted): the others then count a
            // full lease from that moment, and this failover takes up to two leases.
            let renewed = slots.iter().filter_map(|s| s.live.as_ref()).any(|h| {
                let v = h.view();
                v.master == Some(p.killed) && v.version.is_some_and(|v| v > p.version)
            });
            if renewed {
                p.renewed_after_death = true;
                println!(
                    "{} (node {}'s last renewal, in flight at the kill, was chosen after it: the others wait one more lease)",
                    clock0.stamp(t),
                    p.killed
                );
            }
        }
        if let Some(p) = &pending {
            if t - p.at > o.lease * 10 {
                println!(
                    "{} no new master {} ms after the kill of node {}",
                    clock0.stamp(t),
                    ms(t - p.at),
                    p.killed
                );
                failed_failovers += 1;
                pending = None;
            }
        }
        if let Some((from, at)) = releasing {
            if t - at > o.lease * 10 {
                println!(
                    "{} no new master {} ms after node {from} released the role",
                    clock0.stamp(t),
                    ms(t - at)
                );
                failed_failovers += 1;
                releasing = None;
            }
        }
        let live_master = slots
            .iter()
            .find(|s| s.live.as_ref().is_some_and(|h| h.is_master_at(t)));
        // 4. A release (once per kill cycle): the role should move at once, without
        //    waiting for a lease.
        if release_at.is_some_and(|at| t >= at) && pending.is_none() {
            if let Some(slot) = live_master {
                if let Some(h) = slot.live.clone() {
                    println!("{} node {} releases the role", clock0.stamp(t), slot.id);
                    releasing = Some((slot.id, t));
                    release_at = None;
                    tokio::spawn(async move { h.release().await });
                }
            }
        }
        // 5. Kill the master abruptly: its task is aborted, nothing is released.
        let live_master = slots
            .iter()
            .position(|s| s.live.as_ref().is_some_and(|h| h.is_master_at(t)));
        if t >= next_kill && pending.is_none() && releasing.is_none() {
            if let Some(i) = live_master {
                let slot = &mut slots[i];
                if let Some(h) = slot.live.take() {
                    h.abort().await;
                    totals.add(&h.counters());
                    slot.row[col] = b'K';
                    kills += 1;
                    let token = h.view().term.map(|term| term.token).unwrap_or(0);
                    let version = h.view().version.unwrap_or(0);
                    println!(
                        "{} KILL node {} (master, fencing token {token}): task aborted, no release",
                        clock0.stamp(t),
                        slot.id
                    );
                    slot.zombie = Some(h);
                    pending = Some(PendingFailover {
                        killed: slot.id,
                        at: t,
                        version,
                        renewed_after_death: false,
                    });
                    next_kill += o.kill_every;
                    release_at = Some(next_kill - o.kill_every / 2).filter(|t| *t < end);
                }
            }
        }
        if t >= next_status {
            next_status += Duration::from_secs(5);
            let master = current
                .filter(|(id, _)| claimants.contains(id))
                .map_or("none".to_string(), |(id, v)| {
                    format!("node {id} (token {v})")
                });
            println!(
                "{} .. master {master}; terms {elections}, kills {kills}, overlaps {overlaps} in {samples} samples",
                clock0.stamp(t)
            );
        }
    }

    // Stop: release politely, then clean up.
    for slot in &mut slots {
        if let Some(h) = slot.live.take() {
            let _ = h.shutdown().await;
            totals.add(&h.counters());
        }
        if let Some(h) = slot.zombie.take() {
            h.abort().await;
        }
    }
    if o.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!();
    println!(
        "timeline (one column = {} ms; M master, . follower, K killed, x down)",
        column.as_millis()
    );
    let label = format!("{:.0}s", o.duration.as_secs_f64());
    println!(
        "        0s{}{label}",
        " ".repeat((COLUMNS as usize + 1).saturating_sub(label.len()))
    );
    for slot in &slots {
        println!(
            "node {:>2} |{}|",
            slot.id,
            String::from_utf8_lossy(&slot.row)
        );
    }

    let mut sorted = failovers.clone();
    sorted.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or(0.0),
    );
    let lease = lease_ms as f64;
    let mut sorted_releases = releases.clone();
    sorted_releases.sort_by(f64::total_cmp);
    let release_row = |p: Option<f64>| match p {
        Some(m) if !releases.is_empty() => format!("{m:.0} ms ({} releases)", releases.len()),
        _ => "-".to_string(),
    };
    let rows = [
        ("terms begun (elections won)", elections.to_string()),
        ("kills (abort, no release)", kills.to_string()),
        ("restarts from disk", restarts.to_string()),
        (
            "release -> next master p50",
            release_row(Some(percentile(&sorted_releases, 0.50))),
        ),
        (
            "release -> next master max",
            release_row(sorted_releases.last().copied()),
        ),
        (
            "failover p50",
            format!("{p50:.0} ms ({:.2} x lease)", p50 / lease),
        ),
        (
            "failover p99",
            format!("{p99:.0} ms ({:.2} x lease)", p99 / lease),
        ),
        (
            "failover max",
            format!("{max:.0} ms ({:.2} x lease)", max / lease),
        ),
        (
            "Paxos round timeouts",
            format!(
                "{} in {} campaigns",
                totals.round_timeouts, totals.campaigns
            ),
        ),
        (
            "persist (fsync x2), mean",
            format!(
                "{:.1} ms over {} records",
                totals.persist_mean_ms(),
                totals.persists
            ),
        ),
        (
            "records written per renewal",
            format!(
                "{} ({} / {} renewals)",
                stable.per_renewal(stable.persists),
                stable.persists,
                stable.renewals
            ),
        ),
        (
            "messages per renewal",
            format!(
                "{} ({} datagrams)",
                stable.per_renewal(stable.datagrams),
                stable.datagrams
            ),
        ),
        (
            "two masters at once",
            format!("{overlaps} of {samples} samples"),
        ),
    ];
    println!();
    let line = format!("+{}+{}+", "-".repeat(30), "-".repeat(32));
    println!("{line}");
    for (k, v) in rows {
        println!("| {k:<28} | {v:<30} |");
    }
    println!("{line}");
    println!(
        "(per renewal: over {:.1} s with one stable master, renewal mode {}; records are \
         those of every node, renewals the master's completed ones)",
        stable.time.as_secs_f64(),
        o.renewal
    );
    println!(
        "kills={kills} failover_p50_ms={p50:.0} failover_p99_ms={p99:.0} lease_ms={lease_ms} overlaps={overlaps}"
    );
    // A kill whose failover was still pending when time ran out is not a failure.
    let healthy = overlaps == 0 && failed_failovers == 0;
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

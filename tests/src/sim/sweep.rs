//! Many seeds: run them (on several threads), and summarise what they found.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration as WallDuration, Instant as WallInstant};

use tenure::Renewal;

use super::checker::{Violation, ViolationKind};
use super::options::{Probe, SimOptions};
use super::world::{run_seed, RunReport};

/// How far a sweep has got.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Seeds finished.
    pub done: u64,
    /// Seeds in the sweep.
    pub total: u64,
    /// Seeds with a violation so far.
    pub failing: u64,
    /// Wall time since the sweep began.
    pub elapsed: WallDuration,
}

/// The figures of the seeds run in one renewal mode.
#[derive(Clone, Debug, Default)]
pub struct ModeFigures {
    /// Seeds run in this mode.
    pub seeds: u64,
    /// Failover times of the probe (faults stopped), µs.
    pub failovers: Vec<u64>,
    /// Frames sent in the steady windows.
    pub steady_datagrams: u64,
    /// Renewals completed in the steady windows.
    pub steady_renewals: u64,
    /// Records persisted (all nodes) in the steady windows.
    pub steady_writes: u64,
}

impl ModeFigures {
    /// Frames sent per completed renewal in the steady windows.
    pub fn messages_per_renewal(&self) -> f64 {
        self.steady_datagrams as f64 / (self.steady_renewals.max(1)) as f64
    }

    /// Records persisted per completed renewal in the steady windows.
    pub fn writes_per_renewal(&self) -> f64 {
        self.steady_writes as f64 / (self.steady_renewals.max(1)) as f64
    }
}

fn mode_index(r: Renewal) -> usize {
    match r {
        Renewal::Lease => 0,
        Renewal::Logged => 1,
    }
}

/// What a sweep found.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Violations found, all seeds together.
    pub violations: u64,
    /// Failing seeds with their violations, in seed order (the first 100).
    pub failing: Vec<(u64, Vec<Violation>)>,
    /// Seeds with at least one violation.
    pub failing_seeds: u64,
    /// Violations by kind.
    pub by_kind: BTreeMap<ViolationKind, u64>,
    /// The first seed (in the order added) that found each kind, with that violation.
    pub first_by_kind: BTreeMap<ViolationKind, (u64, Violation)>,
    /// Seeds run twice to compare trace hashes.
    pub determinism_checked: u64,
    /// Node-microseconds simulated.
    pub node_micros: u128,
    /// Events processed.
    pub events: u64,
    /// Times a node became master.
    pub elections: u64,
    /// Releases and hand-overs a master accepted.
    pub releases: u64,
    /// Records wiped (nodes rejoined), and rejoined nodes that voted again.
    pub rejoins: (u64, u64),
    /// Crashes (all causes).
    pub crashes: u64,
    /// Crashes between two outputs of one input.
    pub mid_drain_crashes: u64,
    /// Crashes right after a send.
    pub after_send_crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Pauses.
    pub pauses: u64,
    /// Instances decided.
    pub instances: u64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Failover times with faults stopped (master crash to the next `is_master`), µs.
    pub failovers: Vec<u64>,
    /// Failover times of master crashes during the faulty phase, µs.
    pub chaos_failovers: Vec<u64>,
    /// Faults stopping to the first master, µs.
    pub calm_to_master: Vec<u64>,
    /// Datagrams in the steady windows.
    pub steady_datagrams: u64,
    /// Renewals in the steady windows.
    pub steady_renewals: u64,
    /// The lease, µs.
    pub lease: u64,
    /// Per renewal mode ([`Renewal::Lease`] first, then [`Renewal::Logged`]).
    pub modes: [ModeFigures; 2],
    /// What the probe did to the steady master.
    pub probe: Probe,
    /// `lease + try_window + round_timeout`, µs (R11's bound for a deaf master).
    pub deaf_bound: u64,
    /// Real time spent in lossy stretches, µs.
    pub lossy_micros: u64,
    /// Role losses of the master in lossy stretches.
    pub lossy_losses: u64,
    /// Wall time the sweep took.
    pub wall: WallDuration,
}

impl Summary {
    /// Adds one seed's report.
    pub fn add(&mut self, r: &RunReport) {
        let s = &r.stats;
        self.seeds += 1;
        self.violations += r.violations.len() as u64;
        for v in &r.violations {
            *self.by_kind.entry(v.kind).or_insert(0) += 1;
            self.first_by_kind
                .entry(v.kind)
                .or_insert_with(|| (r.seed, v.clone()));
        }
        if !r.violations.is_empty() {
            self.failing_seeds += 1;
            if self.failing.len() < 100 {
                self.failing.push((r.seed, r.violations.clone()));
            }
        }
        self.node_micros += u128::from(s.simulated) * s.nodes as u128;
        self.events += s.events;
        self.elections += s.elections;
        self.releases += s.releases;
        self.rejoins.0 += s.rejoins;
        self.rejoins.1 += s.rejoins_done;
        self.crashes += s.crashes;
        self.mid_drain_crashes += s.mid_drain_crashes;
        self.after_send_crashes += s.after_send_crashes;
        self.partitions += s.partitions;
        self.pauses += s.pauses;
        self.instances += s.instances;
        self.datagrams += s.datagrams;
        self.failovers.extend(s.failover);
        self.chaos_failovers.extend(&s.chaos_failovers);
        self.calm_to_master.extend(s.calm_to_master);
        self.steady_datagrams += s.steady_datagrams;
        self.steady_renewals += s.steady_renewals;
        self.lease = s.lease;
        let m = &mut self.modes[mode_index(s.renewal)];
        m.seeds += 1;
        m.failovers.extend(s.failover);
        m.steady_datagrams += s.steady_datagrams;
        m.steady_renewals += s.steady_renewals;
        m.steady_writes += s.steady_writes;
        self.probe = s.probe;
        self.deaf_bound = s.deaf_bound;
        self.lossy_micros += s.lossy_micros;
        self.lossy_losses += s.lossy_losses;
    }

    /// The mode the headline figures are of: [`Renewal::Lease`] if any seed ran it.
    pub fn headline_mode(&self) -> Renewal {
        if self.modes[0].seeds > 0 || self.modes[1].seeds == 0 {
            Renewal::Lease
        } else {
            Renewal::Logged
        }
    }

    /// The figures of one mode.
    pub fn mode(&self, r: Renewal) -> &ModeFigures {
        &self.modes[mode_index(r)]
    }

    /// The figures of [`headline_mode`](Self::headline_mode).
    pub fn headline(&self) -> &ModeFigures {
        self.mode(self.headline_mode())
    }

    /// Master role losses per hour of simulated lossy stretch.
    pub fn lossy_losses_per_hour(&self) -> f64 {
        self.lossy_losses as f64 / (self.lossy_micros.max(1) as f64 / 3.6e9)
    }

    /// Simulated node-hours.
    pub fn node_hours(&self) -> f64 {
        self.node_micros as f64 / 3.6e9
    }

    /// Seeds per wall-clock second.
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Frames per completed renewal with faults stopped, in the headline mode
    /// (`2 (N - 1)` in lease mode: Renew and Renewed per peer; `3 (N - 1)` in logged
    /// mode: Accept, Accepted and Commit).
    pub fn messages_per_renewal(&self) -> f64 {
        self.headline().messages_per_renewal()
    }

    /// Records persisted per completed renewal with faults stopped, in the headline
    /// mode (0 in lease mode).
    pub fn writes_per_renewal(&self) -> f64 {
        self.headline().writes_per_renewal()
    }

    /// The `p`-th percentile (0..=100) of `v` in leases, 0 when empty.
    pub fn percentile_over_lease(&self, v: &[u64], p: u64) -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let mut sorted = v.to_vec();
        sorted.sort_unstable();
        let rank = ((p as usize * sorted.len()).div_ceil(100)).clamp(1, sorted.len());
        sorted[rank - 1] as f64 / self.lease.max(1) as f64
    }

    /// The failover p99 as a multiple of the lease, in the headline mode.
    pub fn failover_p99_over_lease(&self) -> f64 {
        self.percentile_over_lease(&self.headline().failovers, 99)
    }

    /// The longest failover as a multiple of the lease, in the headline mode.
    pub fn failover_max_over_lease(&self) -> f64 {
        self.percentile_over_lease(&self.headline().failovers, 100)
    }

    /// The summary table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let pct = |v: &[u64]| {
            format!(
                "p50 {:.3}  p99 {:.3}  max {:.3}  (n={})",
                self.percentile_over_lease(v, 50),
                self.percentile_over_lease(v, 99),
                self.percentile_over_lease(v, 100),
                v.len()
            )
        };
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<34} {v}");
        };
        row("seeds", self.seeds.to_string());
        row(
            "seeds per second",
            format!(
                "{:.1} (wall {:.1}s)",
                self.seeds_per_second(),
                self.wall.as_secs_f64()
            ),
        );
        row("simulated node-hours", format!("{:.2}", self.node_hours()));
        row("events", self.events.to_string());
        row("elections (BecameMaster)", self.elections.to_string());
        row("releases and hand-overs", self.releases.to_string());
        row(
            "records wiped, rejoined / voting again",
            format!("{} / {}", self.rejoins.0, self.rejoins.1),
        );
        row(
            "crashes",
            format!(
                "{} ({} between outputs, {} right after a send)",
                self.crashes, self.mid_drain_crashes, self.after_send_crashes
            ),
        );
        row(
            "partitions / pauses",
            format!("{} / {}", self.partitions, self.pauses),
        );
        row("instances decided", self.instances.to_string());
        let probe = match self.probe {
            Probe::Crash => "crash",
            Probe::Deaf => "deaf",
        };
        row(
            &format!("failover / lease ({probe} probe)"),
            pct(&self.failovers),
        );
        for r in [Renewal::Lease, Renewal::Logged] {
            let m = self.mode(r);
            if m.seeds == 0 {
                continue;
            }
            row(
                &format!("  {r} mode ({} seeds)", m.seeds),
                pct(&m.failovers),
            );
        }
        if self.probe == Probe::Deaf {
            row(
                "  lease + try_window + round_timeout",
                format!(
                    "{:.3} leases",
                    self.deaf_bound as f64 / self.lease.max(1) as f64
                ),
            );
        }
        row(
            "failover / lease (under faults)",
            pct(&self.chaos_failovers),
        );
        row("faults stop -> master / lease", pct(&self.calm_to_master));
        for r in [Renewal::Lease, Renewal::Logged] {
            let m = self.mode(r);
            if m.seeds == 0 {
                continue;
            }
            row(
                &format!("{r}: messages / writes per renewal"),
                format!(
                    "{:.2} / {:.2} ({} frames, {} records, {} renewals; faults stopped)",
                    m.messages_per_renewal(),
                    m.writes_per_renewal(),
                    m.steady_datagrams,
                    m.steady_writes,
                    m.steady_renewals
                ),
            );
        }
        if self.lossy_micros > 0 {
            row(
                "lossy stretch: master role losses",
                format!(
                    "{} in {:.2} h simulated = {:.3} per hour",
                    self.lossy_losses,
                    self.lossy_micros as f64 / 3.6e9,
                    self.lossy_losses_per_hour()
                ),
            );
        }
        row(
            "determinism (seeds run twice)",
            self.determinism_checked.to_string(),
        );
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect();
        row(
            "violations",
            format!(
                "{} (in {} seeds){}{}",
                self.violations,
                self.failing_seeds,
                if kinds.is_empty() { "" } else { ": " },
                kinds.join(", ")
            ),
        );
        t
    }

    /// The last line of the binary's output; its figures are those of
    /// [`headline_mode`](Self::headline_mode).
    pub fn last_line(&self) -> String {
        format!(
            "seeds={} violations={} failover_p99_over_lease={:.3} \
             failover_max_over_lease={:.3} writes_per_renewal={:.2} messages_per_renewal={:.2}",
            self.seeds,
            self.violations,
            self.failover_p99_over_lease(),
            self.failover_max_over_lease(),
            self.writes_per_renewal(),
            self.messages_per_renewal()
        )
    }
}

/// Runs `seed` (twice when `twice`, comparing trace hashes).
fn run_checked(opts: &SimOptions, seed: u64, twice: bool) -> RunReport {
    let mut report = run_seed(opts, seed, false);
    if twice {
        let again = run_seed(opts, seed, false);
        if again.trace_hash != report.trace_hash || again.violations != report.violations {
            report.violations.push(Violation {
                kind: ViolationKind::Nondeterminism,
                at: 0,
                detail: format!(
                    "trace hash {:#x}, then {:#x} on the second run",
                    report.trace_hash, again.trace_hash
                ),
            });
        }
    }
    report
}

/// Runs seeds `start..start + count` on `jobs` threads; every `determinism_every`-th seed
/// (0: none) runs twice. `progress` is called about twice a second and at the end.
pub fn sweep(
    opts: &SimOptions,
    start: u64,
    count: u64,
    jobs: usize,
    determinism_every: u64,
    mut progress: impl FnMut(&Progress),
) -> Summary {
    let began = WallInstant::now();
    let next = AtomicU64::new(0);
    let mut reports: Vec<Option<(RunReport, bool)>> = (0..count).map(|_| None).collect();
    let mut failing = 0;
    let mut done = 0;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(u64, RunReport, bool)>();
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    break;
                }
                let seed = start + k;
                let twice = determinism_every > 0 && seed.is_multiple_of(determinism_every);
                let report = run_checked(opts, seed, twice);
                if tx.send((k, report, twice)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut last = WallInstant::now();
        while done < count {
            match rx.recv_timeout(WallDuration::from_millis(500)) {
                Ok((k, report, twice)) => {
                    done += 1;
                    if !report.violations.is_empty() {
                        failing += 1;
                    }
                    reports[k as usize] = Some((report, twice));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if last.elapsed() >= WallDuration::from_millis(500) {
                last = WallInstant::now();
                progress(&Progress {
                    done,
                    total: count,
                    failing,
                    elapsed: began.elapsed(),
                });
            }
        }
    });
    let mut summary = Summary::default();
    for (report, twice) in reports.into_iter().flatten() {
        summary.add(&report);
        summary.determinism_checked += u64::from(twice);
    }
    summary.wall = began.elapsed();
    progress(&Progress {
        done,
        total: count,
        failing,
        elapsed: summary.wall,
    });
    summary
}

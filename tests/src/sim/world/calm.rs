//! The calm phase: faults stop, a majority is connected; a master must appear and stay,
//! and after the master is crashed another must take over within a bound.

use tenure::{Duration, Member, Renewal, Role};

use super::{Ev, Phase, Probe, World};

impl World {
    /// The longest a healthy majority may go without a master after faults stop: views
    /// of the old master (and leases counted afresh by restarted nodes) run out within a
    /// lease on the slowest clock, a released master keeps quiet for a lease, then
    /// campaigns start within the priority and hand-over waits and a jitter, and
    /// dueling proposers settle within a few round timeouts.
    pub(super) fn liveness_bound(&self) -> u64 {
        3 * self.lease + self.election_slack()
    }

    /// The longest a failover may take: the old master's views run out within a lease
    /// (on the slowest clock), then an election as above.
    pub(super) fn failover_bound(&self) -> u64 {
        2 * self.lease + self.election_slack()
    }

    /// From when a master must stay master: one lease after the faults stopped. A term
    /// lasts at most `master_lease` (< `lease`) from the begin of its op, so any master
    /// by then holds a term proposed with the faults stopped. (A term begun under faults,
    /// after long retries, can be nearly over when it is won, and its first renewal can
    /// be delayed by timeouts the failures stretched: that lapse is not judged.) In lease
    /// mode, nodes restarted when the faults stopped keep silent for one lease on their
    /// own clocks (R6, `docs/algorithm.md` §8.5): a master can lose its term inside that
    /// silence without any fault, so stability is judged one more lease later.
    pub(super) fn calm_settled(&self) -> u64 {
        let silence = match self.slots[0].config.renewal {
            tenure::Renewal::Lease => self.lease + self.lease / 20,
            tenure::Renewal::Logged => 0,
        };
        self.settle_from + self.lease + silence
    }

    /// R11's bound on replacing a deaf master: `lease + try_window + round_timeout`.
    pub(super) fn deaf_bound(&self) -> u64 {
        let c = &self.slots[0].config;
        self.lease + c.try_window().as_micros() + c.round_timeout.as_micros()
    }

    pub(super) fn election_slack(&self) -> u64 {
        let c = &self.slots[0].config;
        let ranks = self.n() as u64;
        c.priority_step.as_micros() * ranks
            + c.handover_grace.as_micros()
            + 10 * (c.round_timeout.as_micros() + c.max_backoff.as_micros())
    }

    pub(super) fn calm_start(&mut self) {
        self.phase = Phase::Calm;
        self.chaos_failover = None;
        self.params.loss_ppm = 0;
        self.params.dup_ppm = 0;
        self.params.tail_ppm = 0;
        self.params.late_ppm = 0;
        self.params.garbage_ppm = 0;
        self.heal();
        self.note(|| "CALM: faults stop; heal, resume, restart".to_string());
        for i in 0..self.n() {
            if self.slots[i].paused {
                self.resume(i);
            }
        }
        // Leave some crashed nodes down, as long as a majority of voters survives the
        // master crash to come, with a candidate among them.
        let down: Vec<usize> = (0..self.n())
            .filter(|&i| self.slots[i].node.is_none() && self.slots[i].starts > 0)
            .collect();
        let mut keep_down = 0u32;
        let quorum = self.slots[0].config.quorum();
        for &i in &down {
            if self.rng.chance(1, 2) {
                let trial = keep_down | 1 << i;
                if self.survives_a_crash(trial, quorum) {
                    keep_down = trial;
                }
            }
        }
        for i in down {
            if keep_down & (1 << i) == 0 {
                self.start(i);
            } else {
                let id = self.slots[i].id;
                self.note(|| format!("n{id} stays down"));
                // Invalidate any pending restart.
                self.slots[i].incarnation += 1;
            }
        }
        let bound = self.liveness_bound();
        self.liveness_due = self.now + bound;
        self.schedule(self.now + bound, Ev::LivenessDeadline);
    }

    /// The start of the steady window: what the counters read.
    pub(super) fn steady_mark(&mut self) {
        let Phase::Steady { master } = self.phase else {
            return;
        };
        let completed = self.slots[master]
            .node
            .as_ref()
            .map_or(0, |n| n.stats().renewals_completed);
        self.steady_mark = Some(super::SteadyMark {
            datagrams: self.stats.datagrams,
            writes: self.records_written,
            completed: u64::from(completed),
            applied: 0,
        });
    }

    /// The lossy stretch begins, with `master` steady: loss on every link, no other
    /// fault.
    pub(super) fn lossy_start(&mut self, master: usize) {
        self.phase = Phase::Lossy;
        self.lossy_master = Some(master);
        self.params.loss_ppm = self.opts.lossy_pct * 10_000;
        let (len, pct) = (self.opts.lossy, self.opts.lossy_pct);
        self.note(|| format!("LOSSY: {pct} % loss on every link for {len}"));
        self.schedule(self.now + len.as_micros(), Ev::LossyEnd);
    }

    /// In the lossy stretch, after every event: the watched master lost its role?
    pub(super) fn lossy_watch(&mut self, masters: u32) {
        match self.lossy_master {
            Some(m) if masters & (1 << m) == 0 => {
                self.stats.lossy_losses += 1;
                self.lossy_master = None;
                self.note(|| format!("lossy: n{} lost its role", m + 1));
            }
            None if masters.count_ones() == 1 => {
                self.lossy_master = Some(masters.trailing_zeros() as usize);
            }
            _ => {}
        }
    }

    /// The lossy stretch ends: the calm phase starts over (a master must appear, stay,
    /// and then fail over).
    pub(super) fn lossy_end(&mut self) {
        if self.phase != Phase::Lossy {
            return;
        }
        self.stats.lossy_micros += self.opts.lossy.as_micros();
        self.lossy_done = true;
        self.params.loss_ppm = 0;
        self.phase = Phase::Calm;
        self.settle_from = self.now;
        self.note(|| "LOSSY ends: loss stops".to_string());
        let bound = self.liveness_bound();
        self.liveness_due = self.now + bound;
        self.schedule(self.now + bound, Ev::LivenessDeadline);
    }

    /// The member list in force: the one of the live member furthest ahead, as slot
    /// indices with their roles.
    pub(super) fn current_members(&self) -> Vec<(usize, Member)> {
        let best = self
            .slots
            .iter()
            .filter_map(|s| s.node.as_ref())
            .filter(|n| !n.is_standby() && n.members().iter().any(|m| m.id == n.id()))
            .max_by_key(|n| n.instance());
        let list: Vec<Member> = match best {
            Some(n) => n.members().to_vec(),
            None => self.slots[0].config.members.to_vec(),
        };
        list.into_iter()
            .filter_map(|m| Some((self.slots.iter().position(|s| s.id == m.id)?, m)))
            .collect()
    }

    /// The nodes rejoining (or wiped and about to), as a mask.
    pub(super) fn rejoining(&self) -> u32 {
        (0..self.n())
            .filter(|&i| {
                let s = &self.slots[i];
                s.wiped || s.node.as_ref().is_some_and(|n| n.is_rejoining())
            })
            .fold(0, |acc, i| acc | 1 << i)
    }

    /// With `down` crashed, and any one more candidate crashed too, a majority of
    /// voters (of the list in force) and another candidate remain.
    pub(super) fn survives_a_crash(&self, down: u32, _quorum: usize) -> bool {
        let members = self.current_members();
        // A rejoining node votes for no one yet: it counts as down.
        let down = down | self.rejoining();
        let quorum = members.iter().filter(|m| m.1.role.votes()).count() / 2 + 1;
        let up = |gone: u32, pred: &dyn Fn(&Member) -> bool| {
            members
                .iter()
                .filter(|(i, m)| gone & (1 << i) == 0 && pred(m))
                .count()
        };
        let candidate = |m: &Member| m.role == Role::Candidate;
        let voter = |m: &Member| m.role.votes();
        up(down, &candidate) >= 1
            && members
                .iter()
                .filter(|(c, m)| down & (1 << c) == 0 && m.role == Role::Candidate)
                .all(|(c, _)| {
                    let gone = down | 1 << c;
                    up(gone, &voter) >= quorum && up(gone, &candidate) >= 1
                })
    }

    /// Whether liveness can be expected: in the calm phase a round trip (at most twice
    /// the base delay plus jitter, each at most `max_delay`) fits in a round timeout.
    /// Otherwise every phase times out before its replies arrive, and liveness and
    /// stability are not judged (safety still is).
    pub(super) fn timing_holds(&self) -> bool {
        4 * self.opts.max_delay.as_micros() < self.slots[0].config.round_timeout.as_micros()
    }

    pub(super) fn probe_crash(&mut self) {
        let Phase::Steady { master } = self.phase else {
            return;
        };
        if let Some(mark) = self.steady_mark.take() {
            self.stats.steady_datagrams = self.stats.datagrams - mark.datagrams;
            self.stats.steady_writes = self.records_written - mark.writes;
            self.stats.steady_renewals = match self.renewal {
                Renewal::Lease => self.slots[master]
                    .node
                    .as_ref()
                    .map_or(0, |n| u64::from(n.stats().renewals_completed))
                    .saturating_sub(mark.completed),
                Renewal::Logged => mark.applied,
            };
        }
        let down = (0..self.n())
            .filter(|&i| self.slots[i].node.is_none())
            .fold(0u32, |acc, i| acc | 1 << i);
        if !self.survives_a_crash(down, self.slots[0].config.quorum()) {
            // Too few nodes to lose the master and keep a majority: no failover probe.
            self.phase = Phase::After;
            self.schedule(self.now + self.lease, Ev::End);
            return;
        }
        match self.opts.probe {
            Probe::Crash => self.crash(master, "failover probe", None),
            Probe::Deaf => {
                // The master still sends, and hears nothing.
                let n = self.n();
                self.cut.iter_mut().for_each(|c| *c = false);
                for j in (0..n).filter(|&j| j != master) {
                    self.cut[j * n + master] = true;
                }
                self.partition_generation += 1;
                let id = self.slots[master].id;
                let bound = self.deaf_bound();
                self.note(|| {
                    format!(
                        "PROBE n{id} goes deaf (sends, hears nothing); lease + try_window + \
                         round_timeout = {}",
                        Duration::from_micros(bound)
                    )
                });
            }
        }
        self.phase = Phase::Failover {
            old: master,
            since: self.now,
        };
        let bound = self.failover_bound();
        self.schedule(self.now + bound, Ev::FailoverDeadline);
    }
}

//! The fault schedule of the faulty phase: crashes, partitions and heals, pauses, loss
//! changes, and the commands a user would give (release, hand-over, campaign).

use tenure::fault::Fault;
use tenure::{Duration, Member, NodeId};

use super::show::fmt_set;
use super::{Ev, Input, Phase, World};

impl World {
    pub(super) fn downtime(&mut self) -> u64 {
        self.rng.range(1_000, 2 * self.lease)
    }

    pub(super) fn pick_up(&mut self) -> Option<usize> {
        let up: Vec<usize> = (0..self.n())
            .filter(|&i| self.slots[i].node.is_some())
            .collect();
        (!up.is_empty()).then(|| up[self.rng.index(up.len())])
    }

    /// The current master, or (half the time, or if none) a random live node.
    pub(super) fn pick_master_or_any(&mut self) -> Option<usize> {
        let masters = self.masters();
        if masters != 0 && self.rng.chance(3, 4) {
            return Some(masters.trailing_zeros() as usize);
        }
        self.pick_up()
    }

    pub(super) fn chaos(&mut self) {
        if self.phase != Phase::Chaos || self.now >= self.chaos_end {
            return;
        }
        // A node loses its record (the master too, at times) and rejoins; one at a
        // time (a majority that lost its records cannot recover). Drawn from a stream
        // of its own, on top of the event below.
        if self.rejoins_on && self.rrng.chance(1, 10) && self.rejoining() == 0 {
            let up: Vec<usize> = (0..self.n())
                .filter(|&i| self.slots[i].node.is_some())
                .collect();
            if !up.is_empty() {
                let i = up[self.rrng.index(up.len())];
                let down = self.rrng.range(1_000, 2 * self.lease);
                self.wipe(i, down);
            }
        }
        let o = &self.opts;
        let mut kinds: Vec<(u32, u8)> = vec![(8, 0)];
        if o.crashes {
            kinds.push((20, 1));
            kinds.push((10, 8));
        }
        if o.partitions {
            kinds.push((20, 2));
            kinds.push((8, 3));
        }
        if o.pauses {
            kinds.push((10, 4));
        }
        if o.commands {
            kinds.push((12, 5));
            kinds.push((12, 6));
            kinds.push((5, 7));
        }
        if self.members_on {
            // The planted faults of §9.3's rules act only around a change: more of them.
            let often = matches!(
                o.fault,
                Some(
                    Fault::KeepPreparedAcrossChange
                        | Fault::KeepRoundsAcrossChange
                        | Fault::ChangeWithoutRenewal
                )
            );
            kinds.push((if often { 48 } else { 12 }, 9));
        }

        let total: u32 = kinds.iter().map(|k| k.0).sum();
        let mut pick = self.rng.below(u64::from(total)) as u32;
        let mut kind = 0;
        for (w, k) in kinds {
            if pick < w {
                kind = k;
                break;
            }
            pick -= w;
        }
        match kind {
            0 => {
                self.params.loss_ppm =
                    self.rng.range(0, u64::from(self.params.max_loss_ppm)) as u32;
                let loss = self.params.loss_ppm;
                if self.params.max_loss_ppm > 0 {
                    self.note(|| format!("network: loss now {loss} ppm"));
                }
            }
            1 => {
                if let Some(i) = self.pick_master_or_any() {
                    let down = self.downtime();
                    self.crash(i, "fault schedule", Some(down));
                }
            }
            2 => self.partition(),
            3 => self.heal(),
            4 => {
                if let Some(i) = self.pick_master_or_any() {
                    if !self.slots[i].paused {
                        let len = self.rng.range(self.lease / 20, 2 * self.lease);
                        let s = &mut self.slots[i];
                        s.paused = true;
                        s.pause_generation += 1;
                        let generation = s.pause_generation;
                        let id = s.id;
                        self.stats.pauses += 1;
                        self.note(|| format!("n{id} PAUSED for {}", Duration::from_micros(len)));
                        self.schedule(
                            self.now + len,
                            Ev::PauseEnd {
                                node: i,
                                generation,
                            },
                        );
                    }
                }
            }
            8 => {
                // A quick restart of a follower while a master holds its term: what the
                // restart silence (R6) is for.
                let masters = self.masters();
                let followers: Vec<usize> = (0..self.n())
                    .filter(|&i| self.slots[i].node.is_some() && masters & (1 << i) == 0)
                    .collect();
                if !followers.is_empty() {
                    let i = followers[self.rng.index(followers.len())];
                    let down = self.rng.range(1_000, self.lease / 10);
                    self.crash(i, "quick restart", Some(down));
                }
            }
            5 => self.command(Input::Release),
            9 => self.change_members(),
            6 => {
                let to = NodeId(self.rng.range(1, self.n() as u64) as u16);
                self.command(Input::HandOver(to));
            }
            _ => {
                if let Some(i) = self.pick_up() {
                    if !self.slots[i].paused {
                        let _ = self.input(i, Input::Campaign);
                    }
                }
            }
        }
        let gap = self
            .rng
            .range(self.params.mean_gap / 4, 2 * self.params.mean_gap);
        self.schedule(self.now + gap, Ev::Chaos);
    }

    /// A membership change by the master: add a spare while the list has its first
    /// length, else remove a member (the master itself one time in four). With the
    /// planted fault `TwoMemberStep`, a spare is added and a member removed in one step.
    /// Planted fault `ChangeWithoutRenewal`: after a change, the master tries the next
    /// one a few times within the following round trips.
    fn eager_change(&mut self) {
        if self.opts.fault != Some(Fault::ChangeWithoutRenewal) {
            return;
        }
        for ms in [2, 10, 30, 100, 300] {
            let at = self.now + ms * 1_000;
            self.schedule(at, Ev::ChangeMembers);
        }
    }

    pub(super) fn change_members(&mut self) {
        let masters = self.masters();
        if masters.count_ones() != 1 {
            return;
        }
        let i = masters.trailing_zeros() as usize;
        let Some(node) = self.slots[i].node.as_ref() else {
            return;
        };
        if self.slots[i].paused {
            return;
        }
        let list: Vec<Member> = node.members().to_vec();
        let me = self.slots[i].id;
        let others: Vec<NodeId> = list.iter().map(|m| m.id).filter(|&x| x != me).collect();
        if list.len() <= self.base_n {
            let Some(k) = (0..self.n()).find(|&k| self.slots[k].spare && self.slots[k].starts == 0)
            else {
                return;
            };
            let new = Member::candidate(self.slots[k].id.0);
            let mut joined = list.clone();
            let input = if self.opts.fault == Some(Fault::TwoMemberStep) && !others.is_empty() {
                let out = others[self.mrng.index(others.len())];
                joined.retain(|m| m.id != out);
                Input::SwapMember(out, new)
            } else {
                Input::AddMember(new)
            };
            joined.push(new);
            if self.input(i, input).is_ok() {
                self.stats.member_changes += 1;
                self.eager_change();
                let config = &mut self.slots[k].config;
                config.members.clear();
                for m in joined {
                    let _ = config.members.push(m);
                }
                self.start(k);
            }
        } else {
            let target = if self.mrng.chance(1, 4) || others.is_empty() {
                me
            } else {
                others[self.mrng.index(others.len())]
            };
            if self.input(i, Input::RemoveMember(target)).is_ok() {
                self.stats.member_changes += 1;
                self.eager_change();
                if target == me {
                    self.slots[i].belief_until = None;
                }
            }
        }
    }

    pub(super) fn command(&mut self, cmd: Input<'static>) {
        let Some(i) = self.pick_master_or_any() else {
            return;
        };
        if self.slots[i].paused {
            return;
        }
        if self.input(i, cmd).is_ok() {
            self.stats.releases += 1;
            // Even the faulty driver knows it gave the role up.
            self.slots[i].belief_until = None;
        }
    }

    pub(super) fn partition(&mut self) {
        let n = self.n();
        if n < 2 {
            return;
        }
        self.cut.iter_mut().for_each(|c| *c = false);
        self.partition_generation += 1;
        self.stats.partitions += 1;
        let masters = self.masters();
        // Isolating the master is the interesting case: bias towards it.
        let focus = if masters != 0 && self.rng.chance(1, 2) {
            masters.trailing_zeros() as usize
        } else {
            self.rng.index(n)
        };
        let kind = self.rng.below(4);
        let desc;
        match kind {
            0 => {
                // Symmetric: two sides, the focus on the smaller-or-equal one.
                let mut side = 1u32 << focus;
                for j in 0..n {
                    if j != focus && self.rng.chance(1, 3) {
                        side |= 1 << j;
                    }
                }
                if side.count_ones() as usize == n {
                    side = 1 << focus;
                }
                for a in 0..n {
                    for b in 0..n {
                        if (side >> a) & 1 != (side >> b) & 1 {
                            self.cut[a * n + b] = true;
                        }
                    }
                }
                desc = format!("symmetric: {} | rest", fmt_set(side));
            }
            1 => {
                // Asymmetric: one direction only, between the focus and some others.
                let deaf = self.rng.chance(1, 2);
                let mut others = 0u32;
                for j in (0..n).filter(|&j| j != focus) {
                    if self.rng.chance(2, 3) {
                        others |= 1 << j;
                        if deaf {
                            self.cut[j * n + focus] = true;
                        } else {
                            self.cut[focus * n + j] = true;
                        }
                    }
                }
                desc = if deaf {
                    format!(
                        "asymmetric: n{} does not hear {}",
                        focus + 1,
                        fmt_set(others)
                    )
                } else {
                    format!("asymmetric: {} do not hear n{}", fmt_set(others), focus + 1)
                };
            }
            2 => {
                // Partial: the focus reaches only some of the others.
                let mut reach = 0u32;
                for j in (0..n).filter(|&j| j != focus) {
                    if self.rng.chance(1, 2) {
                        reach |= 1 << j;
                    } else {
                        self.cut[focus * n + j] = true;
                        self.cut[j * n + focus] = true;
                    }
                }
                desc = format!("partial: n{} reaches only {}", focus + 1, fmt_set(reach));
            }
            _ => {
                for a in 0..n {
                    for b in 0..n {
                        if a != b && self.rng.chance(1, 3) {
                            self.cut[a * n + b] = true;
                        }
                    }
                }
                desc = "random directed links cut".to_string();
            }
        }
        self.note(|| format!("PARTITION {desc}"));
        let heal = self.now + self.rng.range(self.lease / 4, 3 * self.lease);
        let generation = self.partition_generation;
        self.schedule(heal, Ev::Heal { generation });
    }

    pub(super) fn heal(&mut self) {
        if self.cut.iter().any(|&c| c) {
            self.cut.iter_mut().for_each(|c| *c = false);
            self.note(|| "HEAL all links".to_string());
        }
        self.partition_generation += 1;
    }
}

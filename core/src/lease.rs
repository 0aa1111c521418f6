//! Protocol 2's lease layer ([`Renewal::Lease`](crate::Renewal::Lease)): volatile state,
//! never persisted. See `docs/algorithm.md` §8.
//!
//! - [`Guards`], on every voter: the masters it promised to guard, each until its own
//!   expiry on this node's clock (R4: a set, one guard per holder), the per-ballot seq
//!   high-water mark of the `Renew`s it answered (R12), and the restart silence (R6).
//! - [`Renewer`], on the master: its renewal rounds (R3, R11). A round is one seq and one
//!   begin instant; only echoed answers count; the term ends at the largest
//!   `begin + master_lease` over the rounds a majority answered.

use heapless::Vec;

use crate::ballot::{Ballot, Votes};
use crate::config::NodeId;
use crate::time::{Duration, Instant};

/// Guards kept at most. A voter guards at most one live master at a time in a correct
/// cluster; the room is for stale entries and replays. When full of live guards of
/// other nodes, a new guard is refused (and so is the `Renew` that asked for it): safe.
pub(crate) const MAX_GUARDS: usize = 4;

/// A voter's promises not to help anyone but a guarded master; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Guards {
    set: Vec<(NodeId, Instant), MAX_GUARDS>,
    /// The highest `(ballot, term, seq)` of a `Renew` answered (a master's seq restarts
    /// with each new term, which may run under the same ballot).
    high_water: Option<(Ballot, u64, u32)>,
    /// Every vote is refused before this instant (R6).
    pub(crate) silent_until: Instant,
    /// Planted fault: one slot, overwritten by the latest holder.
    #[cfg(tenure_fault_injection)]
    pub(crate) single_slot: bool,
}

impl Guards {
    fn live(&self, now: Instant) -> impl Iterator<Item = &(NodeId, Instant)> {
        self.set.iter().filter(move |(_, until)| now < *until)
    }

    /// Whether every live guard names `holder` (true with no live guard).
    pub(crate) fn allows(&self, now: Instant, holder: NodeId) -> bool {
        self.live(now).all(|(n, _)| *n == holder)
    }

    /// Whether the restart silence is on at `now`.
    pub(crate) fn is_silent(&self, now: Instant) -> bool {
        now < self.silent_until
    }

    /// Whether a `Renew` with `(ballot, term, seq)` is new: above the high-water mark.
    pub(crate) fn is_fresh(&self, ballot: Ballot, term: u64, seq: u32) -> bool {
        self.high_water.is_none_or(|hw| (ballot, term, seq) > hw)
    }

    /// Guards `holder` until `until` and raises the high-water mark. Returns false (and
    /// changes nothing) when there is no room without dropping a live guard.
    pub(crate) fn add(
        &mut self,
        now: Instant,
        holder: NodeId,
        until: Instant,
        (ballot, term, seq): (Ballot, u64, u32),
    ) -> bool {
        #[cfg(tenure_fault_injection)]
        if self.single_slot {
            self.set.clear();
        }
        self.set.retain(|(_, t)| now < *t);
        match self.set.iter_mut().find(|(n, _)| *n == holder) {
            Some(entry) => entry.1 = entry.1.max(until),
            None => {
                if self.set.push((holder, until)).is_err() {
                    return false;
                }
            }
        }
        self.high_water = Some((ballot, term, seq));
        true
    }

    /// Drops the guards of `holder` (its term is over: R9).
    pub(crate) fn drop_holder(&mut self, holder: NodeId) {
        self.set.retain(|(n, _)| *n != holder);
    }

    /// A restore: nothing volatile survives; silence for `lease` from `now`.
    pub(crate) fn restarted(&mut self, now: Instant, lease: Duration) {
        self.set.clear();
        self.high_water = None;
        self.silent_until = now + lease;
    }
}

/// Renewal rounds open at once, at most. A round stays open for [`ROUND_LIFE`] round
/// timeouts, and a retry begins every round timeout, so on a network slower than the
/// round timeout a late answer still completes its own round.
pub(crate) const MAX_OPEN_ROUNDS: usize = 4;

/// How many round timeouts a round stays open.
const ROUND_LIFE: u64 = 4;

/// One renewal round in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Round {
    pub(crate) seq: u32,
    /// Taken before the round's first send.
    pub(crate) begin: Instant,
    pub(crate) votes: Votes,
}

/// The master's renewals of one term.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Renewer {
    /// The instance of the term op: the fencing token.
    pub(crate) term: u64,
    /// The prepared ballot the rounds run under (`None`: waiting for one, no rounds).
    pub(crate) ballot: Option<Ballot>,
    next_seq: u32,
    /// The rounds in flight, oldest first. Each answer counts only for the round whose
    /// seq it echoes (R3).
    open: Vec<Round, MAX_OPEN_ROUNDS>,
    /// Begin of the last round a majority answered (or the last moment a majority
    /// promised this node a ballot).
    last_completed: Instant,
    /// When the next round begins (a sixth of a lease after the last completed one, or
    /// one round timeout after the newest open one).
    next_at: Instant,
    /// Begin of the latest round (voters may guard this node until about a lease after
    /// it arrived).
    pub(crate) last_begin: Option<Instant>,
    /// Planted fault: a retry reuses the seq and the answers of the failed attempt.
    #[cfg(tenure_fault_injection)]
    pub(crate) reuse_seq: bool,
    /// No more rounds (the register moved past the term); the term runs out.
    pub(crate) stopped: bool,
    /// The voters (by member index) that answered the latest completed round (`last_seq`),
    /// late answers included: the members this master hears, a hint for
    /// [`Node::release`](crate::Node::release).
    pub(crate) last_voters: Votes,
    last_seq: u32,
}

/// What the master must do for its renewals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenewStep {
    /// Nothing now.
    Wait,
    /// Begin a round: vote ourselves, send `Renew { ballot, term, seq }` to all.
    Begin { seq: u32 },
    /// A majority answered the round that began at `begin`: the term runs to at least
    /// `begin + master_lease`.
    Completed { begin: Instant },
}

impl Renewer {
    /// A term whose op began at `begin`: rounds begin once a ballot is set
    /// ([`rebase`](Self::rebase)), the first at once (R5: the guards appear within one
    /// round trip).
    pub(crate) fn new(term: u64, ballot: Option<Ballot>, begin: Instant, now: Instant) -> Self {
        Renewer {
            term,
            ballot,
            next_seq: 0,
            open: Vec::new(),
            last_completed: begin,
            next_at: now,
            last_begin: None,
            #[cfg(tenure_fault_injection)]
            reuse_seq: false,
            stopped: false,
            last_voters: Votes::default(),
            last_seq: 0,
        }
    }

    /// Goes on under a newly prepared `ballot` (`None`: none usable, no rounds until
    /// one is). The open rounds (under the old one) are dropped. A ballot a majority just
    /// promised at `now` is also a sign this node hears a majority: the try window counts
    /// from then (a deaf node cannot complete a Prepare, so R11's bound still holds).
    pub(crate) fn rebase(&mut self, ballot: Option<Ballot>, now: Instant) {
        if ballot.is_some() && self.ballot.is_none() {
            self.last_completed = self.last_completed.max(now);
            self.next_at = self.next_at.max(now);
        }
        self.ballot = ballot;
        self.open.clear();
    }

    /// Drops the open rounds (a Reject with a higher ballot ended them).
    pub(crate) fn drop_rounds(&mut self) {
        // (The voters heard stay a good hint for a release: their positions have not
        // moved. A membership change forgets them.)
        self.open.clear();
    }

    fn life(round_timeout: Duration) -> Duration {
        round_timeout.saturating_mul(ROUND_LIFE)
    }

    /// When [`poll`](Self::poll) next has something to do, or `None`.
    pub(crate) fn wake_at(
        &self,
        now: Instant,
        round_timeout: Duration,
        try_window: Duration,
    ) -> Option<Instant> {
        if self.stopped || self.ballot.is_none() {
            return None;
        }
        // No round begins after the try window (R11).
        let last = self.last_completed + try_window;
        let next = (self.next_at <= last && now <= last).then_some(self.next_at);
        let expiry = self
            .open
            .first()
            .map(|r| r.begin + Self::life(round_timeout));
        match (next, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Called on every input: closes the rounds whose life is over (returns how many),
    /// and begins the next round when due and still inside the try window (R11).
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        round_timeout: Duration,
        try_window: Duration,
    ) -> (u32, RenewStep) {
        if self.stopped || self.ballot.is_none() {
            self.open.clear();
            return (0, RenewStep::Wait);
        }
        let life = Self::life(round_timeout);
        let before = self.open.len();
        self.open.retain(|r| now < r.begin + life);
        let failed = (before - self.open.len()) as u32;
        if now < self.next_at || now > self.last_completed + try_window {
            return (failed, RenewStep::Wait);
        }
        #[cfg(tenure_fault_injection)]
        if self.reuse_seq {
            if let Some(r) = self.open.last_mut() {
                // Planted fault: the retry keeps the seq and the votes already counted,
                // with the later begin.
                r.begin = now;
                self.last_begin = Some(now);
                self.next_at = now + round_timeout;
                return (failed, RenewStep::Begin { seq: r.seq });
            }
        }
        if self.open.is_full() {
            // The oldest gives way (seqs grow, so it has the lowest).
            let oldest = self.open.iter().map(|r| r.seq).min().unwrap_or(0);
            self.open.retain(|r| r.seq != oldest);
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        let seq = self.next_seq;
        self.last_begin = Some(now);
        let _ = self.open.push(Round {
            seq,
            begin: now,
            votes: Votes::default(),
        });
        // Retry after one round timeout unless this round completes first.
        self.next_at = now + round_timeout;
        (failed, RenewStep::Begin { seq })
    }

    /// An answer from voter `from` (ourselves included) to `(ballot, term, seq)`.
    pub(crate) fn on_renewed(
        &mut self,
        from: usize,
        ballot: Ballot,
        term: u64,
        seq: u32,
        quorum: usize,
        renew_every: Duration,
    ) -> RenewStep {
        if self.stopped || (Some(ballot), term) != (self.ballot, self.term) {
            return RenewStep::Wait;
        }
        let Some(round) = self.open.iter_mut().find(|r| r.seq == seq) else {
            if seq == self.last_seq && seq != 0 {
                self.last_voters.insert(from); // a late answer to the completed round
            }
            return RenewStep::Wait;
        };
        round.votes.insert(from);
        if round.votes.count() < quorum {
            return RenewStep::Wait;
        }
        let begin = round.begin;
        if seq > self.last_seq {
            self.last_voters = round.votes;
            self.last_seq = seq;
        }
        // This round and every older one are done (older ones could only give an
        // earlier begin); newer ones stay open and may complete later with a later one.
        self.open.retain(|r| r.seq > seq);
        if begin > self.last_completed {
            self.last_completed = begin;
            self.next_at = begin + renew_every;
        }
        RenewStep::Completed { begin }
    }
}

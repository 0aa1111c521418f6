//! Planted faults, one per rule they break, for the simulator and the model checker to
//! show they catch each one. The switches exist only in the test-only `tenure-fault`
//! build of this source (`--cfg tenure_fault_injection`); in the `tenure` crate every
//! check of a fault is the constant `false`.

/// A planted fault.
#[cfg_attr(not(tenure_fault_injection), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fault {
    /// The state machine applies `BeMaster` ops whatever their version (the seed's
    /// version check, `docs/algorithm.md` §3).
    IgnoreVersionCheck,
    /// A restored node votes at once (no restart silence, R6).
    NoRestartSilence,
    /// One guard slot, overwritten by the latest holder (R4).
    SingleGuardSlot,
    /// A retried renewal round reuses its seq and counts answers to the earlier attempt
    /// for the retry's later begin (R3).
    ReuseSeq,
    /// A carried value's age is overstated twice (R8).
    DoubleAge,
    /// A membership change of two members in one step is applied (§9: only single
    /// steps keep every old majority meeting every new one).
    TwoMemberStep,
    /// A rejoining node votes at once, before the rejoin rule allows it (§10).
    RejoinVotesAtOnce,
    /// A rejoining node keeps no silence after its start (§10: it lost its guards).
    RejoinForgetsSilence,
    /// A rejoining node ignores the promises the majority reported (§10: its proposer
    /// may reuse a ballot of its old incarnation).
    RejoinOldBallot,
    /// A rejoining node votes one instance early, from `M + 2` (§10).
    RejoinOneInstance,
    /// Applying a membership change keeps the proposer's prepared ballot (§9.3: it is
    /// dropped, so the next proposal or renewal prepares again under the new list).
    KeepPreparedAcrossChange,
    /// Applying a membership change keeps the open renewal rounds, whose answers were
    /// counted by the old list's positions (§9.3: they are dropped).
    KeepRoundsAcrossChange,
    /// The master may propose the next membership change as soon as the last one is
    /// applied (§9.3: not before its term is backed by the list in force).
    ChangeWithoutRenewal,
    /// The proposer's own promise is written only with its next record, after its
    /// Accept has left (§2, "Persist before reply").
    OwnPromiseLate,
    /// The proposer's own acceptance is written only with its next record, after its
    /// Accept has left (§2, "Persist before reply").
    OwnAcceptanceLate,
}

#[cfg(tenure_fault_injection)]
impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 15] = [
        Fault::IgnoreVersionCheck,
        Fault::NoRestartSilence,
        Fault::SingleGuardSlot,
        Fault::ReuseSeq,
        Fault::DoubleAge,
        Fault::TwoMemberStep,
        Fault::RejoinVotesAtOnce,
        Fault::RejoinForgetsSilence,
        Fault::RejoinOldBallot,
        Fault::RejoinOneInstance,
        Fault::KeepPreparedAcrossChange,
        Fault::KeepRoundsAcrossChange,
        Fault::ChangeWithoutRenewal,
        Fault::OwnPromiseLate,
        Fault::OwnAcceptanceLate,
    ];

    /// A short kebab-case name.
    pub const fn label(self) -> &'static str {
        match self {
            Fault::IgnoreVersionCheck => "ignore-version-check",
            Fault::NoRestartSilence => "no-restart-silence",
            Fault::SingleGuardSlot => "single-guard-slot",
            Fault::ReuseSeq => "reuse-seq",
            Fault::DoubleAge => "double-age",
            Fault::TwoMemberStep => "two-member-step",
            Fault::RejoinVotesAtOnce => "rejoin-votes-at-once",
            Fault::RejoinForgetsSilence => "rejoin-forgets-silence",
            Fault::RejoinOldBallot => "rejoin-old-ballot",
            Fault::RejoinOneInstance => "rejoin-one-instance",
            Fault::KeepPreparedAcrossChange => "keep-prepared-across-change",
            Fault::KeepRoundsAcrossChange => "keep-rounds-across-change",
            Fault::ChangeWithoutRenewal => "change-without-renewal",
            Fault::OwnPromiseLate => "own-promise-late",
            Fault::OwnAcceptanceLate => "own-acceptance-late",
        }
    }

    fn bit(self) -> u16 {
        match self {
            Fault::IgnoreVersionCheck => 1,
            Fault::NoRestartSilence => 2,
            Fault::SingleGuardSlot => 4,
            Fault::ReuseSeq => 8,
            Fault::DoubleAge => 16,
            Fault::TwoMemberStep => 32,
            Fault::RejoinVotesAtOnce => 64,
            Fault::RejoinForgetsSilence => 128,
            Fault::RejoinOldBallot => 256,
            Fault::RejoinOneInstance => 512,
            Fault::KeepPreparedAcrossChange => 1024,
            Fault::KeepRoundsAcrossChange => 2048,
            Fault::ChangeWithoutRenewal => 4096,
            Fault::OwnPromiseLate => 8192,
            Fault::OwnAcceptanceLate => 16384,
        }
    }
}

/// The faults switched on in one node.
#[cfg(tenure_fault_injection)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Faults(u16);

#[cfg(tenure_fault_injection)]
impl Faults {
    pub(crate) fn on(self, f: Fault) -> bool {
        self.0 & f.bit() != 0
    }
    pub(crate) fn set(&mut self, f: Fault, on: bool) {
        if on {
            self.0 |= f.bit();
        } else {
            self.0 &= !f.bit();
        }
    }
}

//! Bounded exhaustive model checking of the unmodified core (issue 8), sized for the debug
//! profile of `cargo test --workspace`. Larger bounds: the `tenure-check` binary.

use tenure_tests::check::actor::{self, ActorOptions};
use tenure_tests::check::lease::{self, LeaseModel, LeaseOptions, Rate};
use tenure_tests::check::{Commands, Fault, Limits, Report, Timing};

fn limits(depth: usize) -> Limits {
    Limits {
        depth,
        ..Limits::default()
    }
}

fn until(depth: usize, property: &'static str) -> Limits {
    Limits {
        depth,
        stop_on: Some(property),
        ..Limits::default()
    }
}

/// Prints the report (visible with `--nocapture` or on failure) and returns it.
fn shown(report: Report) -> Report {
    println!("{}", report.summary());
    for d in &report.discoveries {
        let kind = if d.violation {
            "COUNTEREXAMPLE to"
        } else {
            "example of"
        };
        println!(
            "{kind} \"{}\" ({} steps):\n{}",
            d.property, d.steps, d.trace
        );
    }
    report
}

fn assert_clean(report: &Report) {
    assert!(report.exhaustive, "{}", report.summary());
    let violations: Vec<_> = report.violations().map(|d| d.property).collect();
    assert!(violations.is_empty(), "violations: {violations:?}");
}

#[test]
fn actor_model_has_no_violation_within_five_steps() {
    // Lossy, duplicating, unordered network; one crash at a time; from the fresh cluster
    // and from the cluster right after its first election.
    let report = shown(actor::check(ActorOptions::default(), &limits(5)));
    assert_clean(&report);
    assert_eq!(report.depth, 5);
    assert!(report.example(actor::MASTER_CHOSEN));
    assert!(report.states > 1_000, "{}", report.summary());
}

#[test]
fn actor_model_shows_a_release_and_a_completed_hand_over() {
    let options = ActorOptions {
        commands: Commands::HandOver,
        lossy: false,
        duplicating: false,
        crashes: 0,
        from_fresh: false,
        ..ActorOptions::default()
    };
    let report = shown(actor::check(options, &until(8, actor::HANDOVER_DONE)));
    assert!(
        report.example(actor::RELEASE_CHOSEN),
        "{}",
        report.summary()
    );
    assert!(report.example(actor::HANDOVER_DONE), "{}", report.summary());
    assert_eq!(report.violations().count(), 0);
}

#[test]
fn a_driver_that_drops_persist_is_caught() {
    let options = ActorOptions {
        fault: Fault::DropPersist,
        from_elected: false,
        ..ActorOptions::default()
    };
    let report = shown(actor::check(options, &until(7, actor::PROMISES_KEPT)));
    // A promise leaves before it is on disk, at once, and a value is announced that no
    // majority holds ...
    assert!(report.violated(actor::PROMISES_DURABLE));
    assert!(report.violated(actor::COMMITS_DURABLE));
    // ... and after a crash the node comes back with an older promise and breaks it
    // (7 steps: a Prepare shows no promise, so the first promise shown is a voter's).
    assert!(report.violated(actor::PROMISES_KEPT));
    let broken = report
        .violations()
        .find(|d| d.property == actor::PROMISES_KEPT)
        .unwrap();
    assert!(broken.trace.contains("CRASHES"), "{}", broken.trace);
    assert!(broken.trace.contains("restarts from its saved record"));
}

/// §2, "Persist before reply": a proposer's Prepare leaves before its own promise is
/// written, and its own acceptance is written before its Accept leaves. A proposer whose
/// own acceptance is written only after its Accept left is refused by the executor; one
/// whose own promise is written only with its acceptance shows that promise before it is
/// saved (in a Reject to a rival's Prepare). The same cluster without the fault is clean
/// to the same depth.
#[test]
fn a_proposer_that_writes_its_own_vote_late_is_caught() {
    for fault in [Fault::OwnPromiseLate, Fault::OwnAcceptanceLate] {
        let options = ActorOptions {
            fault,
            from_elected: false,
            ..ActorOptions::default()
        };
        let report = shown(actor::check(options, &until(6, actor::PROMISES_DURABLE)));
        assert!(
            report.violated(actor::PROMISES_DURABLE),
            "{fault:?} not caught: {}",
            report.summary()
        );
    }
    let control = ActorOptions {
        fault: Fault::None,
        from_elected: false,
        ..ActorOptions::default()
    };
    assert_clean(&shown(actor::check(control, &limits(6))));
}

#[test]
fn the_version_check_never_fires_so_ignoring_it_changes_nothing() {
    // The planted fault makes the last node apply stale `BeMaster` ops. In this core an op
    // is only proposed in the instance whose state it was built from (a proposer that
    // learns the instance drops its op), so a chosen op always carries the current
    // version and the check never rejects anything: with the fault the reachable state
    // graph is exactly the same, and no property can be violated. The check is defence in
    // depth here; see the report of issue 8.
    let base = ActorOptions {
        from_elected: false,
        ..ActorOptions::default()
    };
    let faulty = ActorOptions {
        fault: Fault::IgnoreVersionCheck,
        ..base
    };
    let clean = shown(actor::check(base, &limits(5)));
    let report = shown(actor::check(faulty, &limits(5)));
    assert_clean(&report);
    assert_eq!(report.states, clean.states);
    assert_eq!(report.generated, clean.generated);
}

#[test]
fn actor_model_in_logged_mode_has_no_violation_within_four_steps() {
    // Protocol 1's renewals (a BeMaster chosen per renewal) through the same model.
    let options = ActorOptions {
        timing: Timing {
            renewal: tenure::Renewal::Logged,
            ..Timing::default()
        },
        ..ActorOptions::default()
    };
    let report = shown(actor::check(options, &limits(4)));
    assert_clean(&report);
    assert!(report.states > 1_000, "{}", report.summary());
}

#[test]
fn lease_model_has_one_master_at_most_within_six_steps() {
    // Protocol 2 (renewal rounds), every property: one master, one op per instance,
    // growing fencing tokens.
    let report = shown(lease::check(LeaseOptions::default(), &limits(6)));
    assert_clean(&report);
    assert!(report.example(lease::MASTER_ELECTED));
}

#[test]
fn lease_model_with_a_crash_and_duplicates_is_clean_after_an_election() {
    // A crashed node comes back from its record (restart silence, nothing volatile);
    // messages may be delivered twice, in any order.
    let options = LeaseOptions {
        crashes: 1,
        duplicating: true,
        from_fresh: false,
        ..LeaseOptions::default()
    };
    let report = shown(lease::check(options, &limits(6)));
    assert_clean(&report);
    assert!(report.states > 1_000, "{}", report.summary());
}

fn logged() -> LeaseOptions {
    LeaseOptions {
        timing: Timing {
            renewal: tenure::Renewal::Logged,
            ..LeaseOptions::default().timing
        },
        ..LeaseOptions::default()
    }
}

#[test]
fn lease_model_in_logged_mode_has_one_master_and_one_op_per_instance() {
    let report = shown(lease::check(logged(), &limits(6)));
    assert!(report.exhaustive, "{}", report.summary());
    assert!(!report.violated(lease::ONE_MASTER));
    assert!(!report.violated(lease::ONE_OP_PER_INSTANCE));
    assert!(report.example(lease::MASTER_ELECTED));
}

#[test]
fn lease_model_in_logged_mode_keeps_tokens_to_one_period() {
    // The master's term runs out while no input reaches it, and its renewal is chosen
    // late: the core (since 53a5be7) reports the lapsed term ended, so the renewed term is
    // a new period with a new token. Before that fix this found "tokens grow" broken in 6
    // steps from the election.
    let report = shown(lease::check(logged(), &limits(6)));
    assert_clean(&report);
}

/// Runs planted fault `fault`'s scenario (see [`lease::scenario`]) until "one master" has
/// a counterexample, and the same start without the fault to `control_depth` steps, which
/// must be clean. Returns the counterexample's length.
fn planted(fault: Fault, control_depth: usize) -> usize {
    let sc = lease::scenario(fault).expect("a scenario");
    let report = shown(lease::check(
        sc.options.clone(),
        &until(sc.depth, lease::ONE_MASTER),
    ));
    assert!(report.violated(lease::ONE_MASTER), "{}", report.summary());
    let found = report
        .violations()
        .find(|d| d.property == lease::ONE_MASTER)
        .unwrap();
    assert!(found.trace.contains("VIOLATED"), "{}", found.trace);
    let control = LeaseOptions {
        fault: Fault::None,
        ..sc.options
    };
    let clean = shown(lease::check(control, &limits(control_depth)));
    assert_clean(&clean);
    found.steps
}

#[test]
fn a_restored_node_that_votes_at_once_is_caught() {
    // n1 forgets it guards n2 and lets n3 win while n2's renewed term runs (R6).
    let steps = planted(Fault::NoRestartSilence, 10);
    assert!(steps <= 9, "{steps}");
}

#[test]
fn a_retry_that_reuses_its_seq_is_caught() {
    // A late answer to the first attempt counts for the retry's later begin (R3): n2's
    // term outlives n1's guard, and n3 is elected with n1 while n2 still holds it.
    let steps = planted(Fault::ReuseSeq, 12);
    assert!(steps <= 10, "{steps}");
}

#[test]
fn an_age_overstated_twice_is_caught() {
    // n1 carries n2's op forward with twice its age: views of n2 end at once, n1 is
    // elected, and n2 learns its own term (counted from its own begin) afterwards (R8).
    let steps = planted(Fault::DoubleAge, 4);
    assert!(steps <= 8, "{steps}");
}

#[test]
fn a_single_guard_slot_changes_nothing_in_this_core() {
    // R4's planted fault: one guard slot, overwritten by the latest holder. A voter only
    // guards the holder of the last op it applied (R2), and drops the guards of a holder
    // once an effective op replaces it (R9), so at most one holder is ever guarded and
    // one slot holds the same: with the fault, the search reaches exactly as many states
    // from the scenarios where guards decide (a crash that forgets them, a late answer).
    for scenario in [Fault::NoRestartSilence, Fault::ReuseSeq] {
        let sc = lease::scenario(scenario).unwrap();
        let clean = LeaseOptions {
            fault: Fault::None,
            crashes: 1,
            ..sc.options
        };
        let faulty = LeaseOptions {
            fault: Fault::SingleGuardSlot,
            ..clean.clone()
        };
        let a = shown(lease::check(clean, &limits(8)));
        let b = shown(lease::check(faulty, &limits(8)));
        assert_clean(&a);
        assert_clean(&b);
        assert_eq!((a.states, a.generated), (b.states, b.generated));
    }
}

#[test]
fn lease_model_catches_an_understated_drift_bound() {
    // Nodes told "no drift, no guard" while their clocks drift by 10 %: with a slow master
    // and fast followers, a follower's view ends before the master's term does.
    let options = LeaseOptions {
        fault: Fault::UnderstatedDrift,
        from_fresh: false,
        ..LeaseOptions::default()
    };
    // Only the rate assignment with a slow master and fast followers, to keep the search
    // small in debug builds.
    let model = LeaseModel::new(options.clone(), 0);
    let rates = {
        use stateright::Model;
        model
            .init_states()
            .into_iter()
            .find_map(|s| {
                let masters = model.masters(&s);
                let rates: Vec<Rate> = s.slots.iter().map(|slot| slot.rate).collect();
                let wanted = (0..rates.len()).all(|i| {
                    rates[i]
                        == if masters == [i] {
                            Rate::Slow
                        } else {
                            Rate::Fast
                        }
                });
                (masters.len() == 1 && wanted).then_some(rates)
            })
            .expect("some rate assignment elects a slow master")
    };
    let options = LeaseOptions {
        only_rates: Some(rates),
        ..options
    };
    let report = shown(lease::check(options, &until(9, lease::ONE_MASTER)));
    assert!(report.violated(lease::ONE_MASTER), "{}", report.summary());
}

#[test]
fn a_two_member_change_in_one_step_is_caught() {
    // n2, guarded by n3, swaps n3 for the joining n4 in one step: n1, which missed n2's
    // renewals, is elected with n4 alone while n2's term runs (§9). The control adds n4
    // (one step): n3 stays a member and refuses n1.
    let steps = planted(Fault::TwoMemberStep, 10);
    assert!(steps <= 6, "{steps}");
}

#[test]
fn lease_model_adds_a_member_to_three_with_a_crash() {
    let report = shown(lease::check(
        LeaseOptions {
            membership: lease::Membership::Add,
            crashes: 1,
            from_fresh: false,
            ..LeaseOptions::default()
        },
        &limits(6),
    ));
    assert_clean(&report);
    assert!(report
        .discoveries
        .iter()
        .any(|d| d.property == lease::MEMBERS_CHANGE && !d.violation));
}

#[test]
fn lease_model_removes_a_member_from_four_with_a_crash() {
    let report = shown(lease::check(
        LeaseOptions {
            nodes: 4,
            membership: lease::Membership::Remove,
            crashes: 1,
            from_fresh: false,
            ..LeaseOptions::default()
        },
        &limits(5),
    ));
    assert_clean(&report);
    assert!(report
        .discoveries
        .iter()
        .any(|d| d.property == lease::MEMBERS_CHANGE && !d.violation));
}

#[test]
fn a_rejoined_node_that_votes_at_once_is_caught() {
    // n1 loses its record while it guards n2, and rejoins; with the rule and the silence
    // planted away it lets n3 win while n2's renewed term runs (§10). The control rejoins
    // n1 correctly: it stands by and votes for no one.
    let steps = planted(Fault::RejoinVotesAtOnce, 10);
    assert!(steps <= 6, "{steps}");
}

#[test]
fn lease_model_rejoins_a_node_with_a_crash() {
    // Any one node crashes, and may lose its record and rejoin, from the elected cluster.
    let report = shown(lease::check(
        LeaseOptions {
            crashes: 1,
            rejoin: true,
            from_fresh: false,
            ..LeaseOptions::default()
        },
        &limits(6),
    ));
    assert_clean(&report);
}

//! Bounded exhaustive model checking of the unmodified core (issue 8), sized for the debug
//! profile of `cargo test --workspace`. Larger bounds: the `tenure-check` binary.

use tenure_tests::check::actor::{self, ActorOptions};
use tenure_tests::check::lease::{self, LeaseModel, LeaseOptions, Rate};
use tenure_tests::check::{Commands, Fault, Limits, Report};

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
    let report = shown(actor::check(options, &until(5, actor::PROMISES_KEPT)));
    // A promise leaves before it is on disk, at once ...
    assert!(report.violated(actor::PROMISES_DURABLE));
    // ... and after a crash the node comes back with an older promise and breaks it.
    assert!(report.violated(actor::PROMISES_KEPT));
    let broken = report
        .violations()
        .find(|d| d.property == actor::PROMISES_KEPT)
        .unwrap();
    assert!(broken.trace.contains("CRASHES"), "{}", broken.trace);
    assert!(broken.trace.contains("restarts from its saved record"));
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
fn lease_model_has_one_master_at_most_within_six_steps() {
    let report = shown(lease::check(LeaseOptions::default(), &limits(6)));
    assert_clean(&report);
    assert!(report.example(lease::MASTER_ELECTED));
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

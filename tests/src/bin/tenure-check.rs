//! `tenure-check`: bounded exhaustive model checking of the Tenure core with stateright.
//!
//! ```text
//! cargo run --release -p tenure-tests --bin tenure-check -- --nodes 3 --depth 8
//! ```
//!
//! Runs the actor model (Paxos, state machine, durable promises) and then the lease model
//! (at most one master at any real instant), each breadth-first to `--depth` steps, prints
//! what each explored and every counterexample as a readable trace, and ends with exactly
//! one line `states=<S> depth=<D> violations=<V>` (totals over the models run; `D` is the
//! deepest level reached). Exit status: 0 without violations, 1 with, 2 on bad arguments.

use std::process::ExitCode;
use std::time::Duration;

use tenure_tests::check::{actor, lease, Commands, Fault, Limits, Report};

const USAGE: &str = "\
usage: tenure-check [options]
  --nodes N            cluster size, 1..=5 (default 3)
  --depth D            steps from the initial states (default 8)
  --model M            actor | lease | both (default both)
  --lease-depth D      depth for the lease model (default: --depth)
  --crashes K          nodes down at once (default: a minority, (N-1)/2, actor model;
                       0 for the lease model unless given)
  --reliable           actor model: the network never loses messages (loss is the same as
                       a message never delivered, so this only removes states)
  --commands C         off | release | hand-over | both: commands a master may get
                       (once per node incarnation; default off)
  --start S            fresh | elected | both: start from the fresh cluster, from the
                       cluster right after its first election, or both (default both)
  --fault F            none | drop-persist | ignore-version-check | understated-drift |
                       no-restart-silence | single-guard-slot | reuse-seq | double-age |
                       two-member-step (with --members add) | rejoin-votes-at-once |
                       rejoin-forgets-silence (with --rejoin) | own-promise-late |
                       own-acceptance-late
  --rejoin             lease model: a crashed node may lose its record once and rejoin
  --members M          lease model: off | add | remove: the master may add a joining node
                       (one slot more than --nodes) or remove any member, once (default off)
  --renewal R          lease | logged: the nodes' renewal mode (default lease, protocol 2)
  --scenario F         lease model: the tailored start of planted fault F's test (its
                       prelude, rates and settings; implies --model lease and --fault F
                       unless --fault is given, so --fault none runs the control)
  --show-prelude       lease model: print each start's prelude (every step it takes, every
                       message it loses) before the search
  --tick-ms T          lease model: real time may also move by T ms
  --duplicating        lease model: messages may be delivered more than once
  --no-duplicates      actor model: each message is delivered at most once
  --threads T          checker threads (default 1)
  --timeout S          give up each model after S seconds (the report says so)
  --max-states N       give up each model after generating about N states (default
                       4000000, roughly 6 GB for the actor model; 0: no cap)
  --first              stop each model at its first violation
  --until NAME         stop each model once property NAME has a discovery
  --quiet              do not print the traces of examples";

struct Args {
    nodes: usize,
    depth: usize,
    lease_depth: Option<usize>,
    model: String,
    crashes: Option<usize>,
    reliable: bool,
    commands: Commands,
    start: (bool, bool),
    fault: Option<Fault>,
    renewal: tenure::Renewal,
    scenario: Option<Fault>,
    tick_ms: Option<u64>,
    show_prelude: bool,
    duplicating: bool,
    no_duplicates: bool,
    threads: usize,
    timeout: Option<u64>,
    max_states: usize,
    first: bool,
    until: Option<&'static str>,
    quiet: bool,
    members: lease::Membership,
    rejoin: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        nodes: 3,
        depth: 8,
        lease_depth: None,
        model: "both".into(),
        crashes: None,
        reliable: false,
        commands: Commands::Off,
        start: (true, true),
        fault: None,
        renewal: tenure::Renewal::Lease,
        scenario: None,
        tick_ms: None,
        show_prelude: false,
        duplicating: false,
        no_duplicates: false,
        threads: 1,
        timeout: None,
        max_states: 4_000_000,
        first: false,
        until: None,
        quiet: false,
        members: lease::Membership::Off,
        rejoin: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--nodes" => a.nodes = num(value()?)? as usize,
            "--depth" => a.depth = num(value()?)? as usize,
            "--lease-depth" => a.lease_depth = Some(num(value()?)? as usize),
            "--model" => a.model = value()?,
            "--crashes" => a.crashes = Some(num(value()?)? as usize),
            "--reliable" => a.reliable = true,
            "--commands" => a.commands = value()?.parse()?,
            "--start" => {
                a.start = match value()?.as_str() {
                    "fresh" => (true, false),
                    "elected" => (false, true),
                    "both" => (true, true),
                    other => return Err(format!("unknown start {other:?}")),
                }
            }
            "--fault" => a.fault = Some(value()?.parse()?),
            "--renewal" => {
                a.renewal = match value()?.as_str() {
                    "lease" => tenure::Renewal::Lease,
                    "logged" => tenure::Renewal::Logged,
                    other => return Err(format!("unknown renewal {other:?} (lease, logged)")),
                }
            }
            "--scenario" => {
                let f: Fault = value()?.parse()?;
                if lease::scenario(f).is_none() {
                    return Err(format!("no scenario for fault {f}"));
                }
                a.scenario = Some(f);
                a.model = "lease".into();
            }
            "--show-prelude" => a.show_prelude = true,
            "--tick-ms" => a.tick_ms = Some(num(value()?)?),
            "--duplicating" => a.duplicating = true,
            "--no-duplicates" => a.no_duplicates = true,
            "--threads" => a.threads = num(value()?)? as usize,
            "--timeout" => a.timeout = Some(num(value()?)?),
            "--max-states" => a.max_states = num(value()?)? as usize,
            "--first" => a.first = true,
            "--until" => {
                let name = value()?;
                a.until = Some(property(&name).ok_or_else(|| {
                    format!(
                        "unknown property {name:?}; one of: {}",
                        PROPERTIES.join(", ")
                    )
                })?);
            }
            "--quiet" => a.quiet = true,
            "--rejoin" => a.rejoin = true,
            "--members" => {
                a.members = match value()?.as_str() {
                    "off" => lease::Membership::Off,
                    "add" => lease::Membership::Add,
                    "remove" => lease::Membership::Remove,
                    other => return Err(format!("unknown --members {other:?} (off, add, remove)")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if !(1..=tenure_tests::check::CAP).contains(&a.nodes) {
        return Err(format!("--nodes must be 1..={}", tenure_tests::check::CAP));
    }
    if !matches!(a.model.as_str(), "actor" | "lease" | "both") {
        return Err(format!("unknown model {}", a.model));
    }
    Ok(a)
}

const PROPERTIES: [&str; 15] = [
    actor::AGREEMENT,
    actor::SAME_STATE,
    actor::ONE_OP_PER_VERSION,
    actor::PROMISES_KEPT,
    actor::PROMISES_DURABLE,
    actor::VERSION_GROWS,
    actor::MASTER_CHOSEN,
    actor::RELEASE_CHOSEN,
    actor::HANDOVER_DONE,
    lease::ONE_MASTER,
    lease::ONE_OP_PER_INSTANCE,
    lease::TOKENS_GROW,
    lease::MASTER_ELECTED,
    lease::MASTER_CHANGES,
    lease::MEMBERS_CHANGE,
];

fn property(name: &str) -> Option<&'static str> {
    PROPERTIES.iter().copied().find(|p| *p == name)
}

fn print(report: &Report, quiet: bool) {
    println!("{}", report.summary());
    for d in &report.discoveries {
        if d.violation {
            println!(
                "\nCOUNTEREXAMPLE to \"{}\" ({} steps):\n{}",
                d.property, d.steps, d.trace
            );
        } else if quiet {
            println!("example of \"{}\" found ({} steps)", d.property, d.steps);
        } else {
            println!(
                "\nexample of \"{}\" ({} steps):\n{}",
                d.property, d.steps, d.trace
            );
        }
    }
    for name in &report.missing_examples {
        println!("no example of \"{name}\" within the bound");
    }
    println!();
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tenure-check: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let limits = |depth| Limits {
        depth,
        threads: args.threads,
        timeout: args.timeout.map(Duration::from_secs),
        stop_at_first_violation: args.first,
        stop_on: args.until,
        max_states: (args.max_states > 0).then_some(args.max_states),
    };
    let mut reports = Vec::new();
    let timing = |base: tenure_tests::check::Timing| tenure_tests::check::Timing {
        renewal: args.renewal,
        ..base
    };
    if args.model != "lease" {
        let defaults = actor::ActorOptions::default();
        let options = actor::ActorOptions {
            nodes: args.nodes,
            crashes: args.crashes.unwrap_or((args.nodes - 1) / 2),
            lossy: !args.reliable,
            duplicating: !args.no_duplicates,
            commands: args.commands,
            from_fresh: args.start.0,
            from_elected: args.start.1,
            fault: args.fault.unwrap_or_default(),
            timing: timing(defaults.timing),
        };
        println!("actor model: {} depth<={}", options.describe(), args.depth);
        let report = actor::check(options, &limits(args.depth));
        print(&report, args.quiet);
        reports.push(report);
    }
    if args.model != "actor" {
        let (options, depth) = match args.scenario.and_then(lease::scenario) {
            Some(sc) => {
                let fault = args.fault.unwrap_or(sc.options.fault);
                let options = lease::LeaseOptions {
                    fault,
                    ..sc.options
                };
                (options, args.lease_depth.unwrap_or(sc.depth))
            }
            None => {
                let defaults = lease::LeaseOptions::default();
                let options = lease::LeaseOptions {
                    nodes: args.nodes,
                    crashes: args.crashes.unwrap_or(0),
                    duplicating: args.duplicating,
                    commands: args.commands,
                    tick: args.tick_ms.map(tenure::Duration::from_millis),
                    from_fresh: args.start.0,
                    from_elected: args.start.1,
                    fault: args.fault.unwrap_or_default(),
                    timing: timing(defaults.timing),
                    membership: args.members,
                    rejoin: args.rejoin,
                    ..defaults
                };
                (options, args.lease_depth.unwrap_or(args.depth))
            }
        };
        println!("lease model: {} depth<={}", options.describe(), depth);
        if args.show_prelude {
            let model = lease::LeaseModel::new(options.clone(), depth);
            for (k, trace) in model.prelude_traces().iter().enumerate() {
                println!("prelude of start {}:\n{trace}", k + 1);
            }
        }
        let report = lease::check(options, &limits(depth));
        print(&report, args.quiet);
        reports.push(report);
    }
    let states: usize = reports.iter().map(|r| r.states).sum();
    let depth = reports.iter().map(|r| r.depth).max().unwrap_or(0);
    let violations: usize = reports.iter().map(|r| r.violations().count()).sum();
    let elapsed: Duration = reports.iter().map(|r| r.elapsed).sum();
    println!("total time {elapsed:.1?}");
    println!("states={states} depth={depth} violations={violations}");
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

//! `tenure-sim`: sweeps seeded simulated worlds through a Tenure cluster, or replays
//! one seed with a readable trace. See `tenure-sim --help`.

use std::io::Write as _;
use std::process::ExitCode;

use tenure_tests::sim::{run_seed, sweep, Cli, Summary};

fn main() -> ExitCode {
    let cli = match Cli::parse(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let summary = match cli.replay {
        Some(seed) => replay(&cli, seed),
        None => run_sweep(&cli),
    };
    say(&summary.last_line());
    if summary.violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints a line; a closed stdout (`| head`) ends the program quietly.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").is_err() {
        std::process::exit(141);
    }
}

fn replay(cli: &Cli, seed: u64) -> Summary {
    let began = std::time::Instant::now();
    let report = run_seed(&cli.opts, seed, true);
    let wall = began.elapsed();
    for line in report.trace.iter().flatten() {
        say(line);
    }
    let again = run_seed(&cli.opts, seed, false);
    say("");
    say(&format!(
        "trace hash {:#018x}; second run {:#018x} ({})",
        report.trace_hash,
        again.trace_hash,
        if again.trace_hash == report.trace_hash {
            "deterministic"
        } else {
            "NOT DETERMINISTIC"
        }
    ));
    let mut summary = Summary::default();
    summary.add(&report);
    summary.wall = wall;
    if again.trace_hash != report.trace_hash {
        summary.violations += 1;
    }
    say(&summary.table());
    for v in &report.violations {
        say(&format!("VIOLATION seed {seed}: {v}"));
    }
    summary
}

fn run_sweep(cli: &Cli) -> Summary {
    let opts = &cli.opts;
    say(&format!(
        "tenure-sim: seeds {}..{} on {} threads | {}",
        cli.start,
        cli.start + cli.seeds,
        cli.jobs,
        opts.to_args().join(" ")
    ));
    let quiet = cli.quiet;
    let summary = sweep(
        opts,
        cli.start,
        cli.seeds,
        cli.jobs,
        cli.determinism_every,
        |p| {
            if quiet {
                return;
            }
            let rate = p.done as f64 / p.elapsed.as_secs_f64().max(1e-9);
            let eta = (p.total - p.done) as f64 / rate.max(1e-9);
            eprint!(
                "\r  {:>8}/{} seeds  {:>8.1} seeds/s  failing {}  eta {:>5.0}s ",
                p.done, p.total, rate, p.failing, eta
            );
            let _ = std::io::stderr().flush();
        },
    );
    if !quiet {
        eprintln!();
    }
    say(&summary.table());
    for (seed, violations) in summary.failing.iter().take(20) {
        say(&format!("FAILED seed {seed}: {}", violations[0]));
        if violations.len() > 1 {
            say(&format!(
                "  (+{} more violations in this seed)",
                violations.len() - 1
            ));
        }
        say(&format!("  replay: {}", opts.replay_command(*seed)));
    }
    if summary.failing_seeds > 20 {
        say(&format!(
            "  ... {} failing seeds in all",
            summary.failing_seeds
        ));
    }
    if summary.by_kind.len() > 1 || summary.failing_seeds > 20 {
        say("first seed of each kind:");
        for (kind, (seed, v)) in &summary.first_by_kind {
            say(&format!("  {kind:?}: seed {seed}: {v}"));
            say(&format!("    replay: {}", opts.replay_command(*seed)));
        }
    }
    summary
}

//! What a run looks like: the options a seed is run with, and the command line that
//! reproduces them.

use core::fmt;
use tenure::fault::Fault;
use tenure::{Duration, Renewal};

/// A fault planted in the driver or the environment (never in the core), to prove the
/// checker notices it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Plant {
    /// A correct driver.
    #[default]
    None,
    /// The driver executes every `Send` of an input before that input's `Persist`, and
    /// often crashes right after a send, so the persist is lost.
    SendBeforePersist,
    /// A crashed node comes back with `Node::first_boot` instead of its record.
    RestartWithoutRecord,
    /// The driver treats a node as master from the moment its proposal succeeds (its
    /// `BecameMaster` event, then every renewal it learns) for a full `lease` on its own
    /// clock, instead of asking `master()`.
    LeaseFromSuccess,
}

impl Plant {
    /// Every plant, for usage texts.
    pub const ALL: [Plant; 4] = [
        Plant::None,
        Plant::SendBeforePersist,
        Plant::RestartWithoutRecord,
        Plant::LeaseFromSuccess,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Plant::None => "none",
            Plant::SendBeforePersist => "send-before-persist",
            Plant::RestartWithoutRecord => "restart-without-record",
            Plant::LeaseFromSuccess => "lease-from-success",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Plant> {
        Plant::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Plant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the calm phase does to the steady master to measure a failover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Probe {
    /// Crash it: failover from the crash to the next master.
    #[default]
    Crash,
    /// Make it deaf (it still sends, hears nothing): from the cut to the others' next
    /// master (R11's `lease + try_window + round_timeout`).
    Deaf,
}

impl Probe {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Crash => "crash",
            Probe::Deaf => "deaf",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Probe> {
        [Probe::Crash, Probe::Deaf]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// Parses a planted core fault by its label (`Fault::label`).
pub fn parse_fault(s: &str) -> Option<Fault> {
    Fault::ALL.into_iter().find(|f| f.label() == s)
}

/// Everything that shapes a run besides its seed. The seed draws the rest: link delays,
/// loss rate, clock offsets and rates, roles, the schedule of faults and commands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimOptions {
    /// Cluster size (1..=[`MAX_NODES`](super::MAX_NODES)).
    pub nodes: usize,
    /// `Config::lease`.
    pub lease: Duration,
    /// `Config::drift_ppm`: the bound the nodes are configured with.
    pub drift_ppm: u32,
    /// The largest rate error a clock is actually given, against real time, in ppm
    /// (`None`: the configured bound). Above `drift_ppm` only for self-tests.
    pub clock_error_ppm: Option<u32>,
    /// `Config::round_timeout`.
    pub round_timeout: Duration,
    /// Length of the faulty phase. Then faults stop, a majority is connected, and
    /// liveness and failover are measured.
    pub duration: Duration,
    /// Highest message loss rate a run draws, percent.
    pub loss_pct: u32,
    /// Highest duplication rate a run draws, percent.
    pub dup_pct: u32,
    /// Highest one-way base delay of a link.
    pub max_delay: Duration,
    /// Symmetric, asymmetric and partial partitions (and their heal).
    pub partitions: bool,
    /// Pauses: a node stops processing for a while.
    pub pauses: bool,
    /// Crashes (at any point, including between outputs) and restarts.
    pub crashes: bool,
    /// Releases, hand-overs and campaign commands.
    pub commands: bool,
    /// Membership changes (one member added or removed through the register), in half
    /// the runs, drawn by the seed.
    pub members: bool,
    /// A node loses its record and rejoins (`Node::rejoin`), in half the runs, drawn by
    /// the seed.
    pub rejoins: bool,
    /// Percentage of runs that crash nodes right after sends (the persist-before-send
    /// check).
    pub crash_after_send_pct: u32,
    /// Vary roles (a voter or learner among five or more) and priorities by seed.
    pub roles: bool,
    /// A fault planted in the driver or the environment.
    pub plant: Plant,
    /// Check at every send that the disk already holds what the message promises.
    pub durability_check: bool,
    /// The renewal mode of every node; `None`: drawn per seed ([`Renewal::Logged`] on
    /// one seed in [`LOGGED_ONE_IN`], [`Renewal::Lease`] on the others).
    pub renewal: Option<Renewal>,
    /// A fault planted in the core of every node (`Node::inject_fault`; for
    /// [`Fault::NoRestartSilence`], right after each `Node::restore`).
    pub fault: Option<Fault>,
    /// What the calm phase does to the steady master.
    pub probe: Probe,
    /// A stretch of this length (zero: none) in the calm phase, once a master is
    /// steady, with [`SimOptions::lossy_pct`] loss on every link and no other fault:
    /// how often a healthy master loses its role is counted (not a violation).
    pub lossy: Duration,
    /// The loss rate of the lossy stretch, percent.
    pub lossy_pct: u32,
}

/// With the renewal mode drawn per seed, one seed in this many runs [`Renewal::Logged`].
pub const LOGGED_ONE_IN: u64 = 4;

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 5,
            lease: Duration::from_secs(1),
            drift_ppm: 10_000,
            clock_error_ppm: None,
            round_timeout: Duration::from_millis(50),
            duration: Duration::from_secs(20),
            loss_pct: 5,
            dup_pct: 2,
            max_delay: Duration::from_millis(5),
            partitions: true,
            pauses: true,
            crashes: true,
            commands: true,
            members: true,
            rejoins: true,
            crash_after_send_pct: 25,
            roles: true,
            plant: Plant::None,
            durability_check: true,
            renewal: None,
            fault: None,
            probe: Probe::Crash,
            lossy: Duration::ZERO,
            lossy_pct: 20,
        }
    }
}

impl SimOptions {
    /// The rate error clocks are drawn within.
    pub fn clock_error(&self) -> u32 {
        self.clock_error_ppm.unwrap_or(self.drift_ppm)
    }

    /// Checks the options; returns a message for the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > super::MAX_NODES {
            return Err(format!("--nodes must be 1..={}", super::MAX_NODES));
        }
        if self.clock_error() >= 400_000 {
            return Err("--clock-error must be below 400000 ppm".into());
        }
        if self.loss_pct > 90
            || self.dup_pct > 90
            || self.crash_after_send_pct > 100
            || self.lossy_pct > 90
        {
            return Err("--loss and --dup must be at most 90, --crash-after-send 100".into());
        }
        if self.lease.as_micros() == 0 || self.round_timeout.as_micros() == 0 {
            return Err("--lease and --round-timeout must be positive".into());
        }
        let mut probe = tenure::Config::<{ super::MAX_NODES }>::new(
            1,
            tenure::NodeId(1),
            &[tenure::Member::candidate(1)],
        )
        .map_err(|e| e.to_string())?;
        probe.lease = self.lease;
        probe.drift_ppm = self.drift_ppm;
        probe.round_timeout = self.round_timeout;
        probe.validate().map_err(|e| e.to_string())
    }

    /// The flags that reproduce these options (only those that differ from the default).
    pub fn to_args(&self) -> Vec<String> {
        let d = SimOptions::default();
        let mut a = Vec::new();
        let mut flag = |name: &str, value: String| {
            a.push(format!("--{name}"));
            a.push(value);
        };
        let on = |b: bool| if b { "on" } else { "off" }.to_string();
        flag("nodes", self.nodes.to_string());
        if self.lease != d.lease {
            flag("lease", self.lease.to_string());
        }
        if self.drift_ppm != d.drift_ppm {
            flag("drift", self.drift_ppm.to_string());
        }
        if let Some(e) = self.clock_error_ppm {
            flag("clock-error", e.to_string());
        }
        if self.round_timeout != d.round_timeout {
            flag("round-timeout", self.round_timeout.to_string());
        }
        if self.duration != d.duration {
            flag("duration", self.duration.to_string());
        }
        if self.loss_pct != d.loss_pct {
            flag("loss", self.loss_pct.to_string());
        }
        if self.dup_pct != d.dup_pct {
            flag("dup", self.dup_pct.to_string());
        }
        if self.max_delay != d.max_delay {
            flag("max-delay", self.max_delay.to_string());
        }
        if self.partitions != d.partitions {
            flag("partitions", on(self.partitions));
        }
        if self.pauses != d.pauses {
            flag("pauses", on(self.pauses));
        }
        if self.crashes != d.crashes {
            flag("crashes", on(self.crashes));
        }
        if self.commands != d.commands {
            flag("commands", on(self.commands));
        }
        if self.members != d.members {
            flag("members", on(self.members));
        }
        if self.rejoins != d.rejoins {
            flag("rejoins", on(self.rejoins));
        }
        if self.crash_after_send_pct != d.crash_after_send_pct {
            flag("crash-after-send", self.crash_after_send_pct.to_string());
        }
        if self.roles != d.roles {
            flag("roles", on(self.roles));
        }
        if self.plant != d.plant {
            flag("plant", self.plant.name().to_string());
        }
        if self.durability_check != d.durability_check {
            flag("durability-check", on(self.durability_check));
        }
        if let Some(r) = self.renewal {
            flag("renewal", r.label().to_string());
        }
        if let Some(f) = self.fault {
            flag("fault", f.label().to_string());
        }
        if self.probe != d.probe {
            flag("probe", self.probe.name().to_string());
        }
        if self.lossy != d.lossy {
            flag("lossy", self.lossy.to_string());
        }
        if self.lossy_pct != d.lossy_pct {
            flag("lossy-loss", self.lossy_pct.to_string());
        }
        a
    }

    /// The exact command that replays `seed` with a readable trace.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "cargo run --release -p tenure-tests --bin tenure-sim -- {} --seed {seed}",
            self.to_args().join(" ")
        )
    }

    /// Applies one `--name value` flag.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "nodes" => self.nodes = parse_num(name, value)?,
            "lease" => self.lease = parse_duration(name, value)?,
            "drift" => self.drift_ppm = parse_num(name, value)?,
            "clock-error" => self.clock_error_ppm = Some(parse_num(name, value)?),
            "round-timeout" => self.round_timeout = parse_duration(name, value)?,
            "duration" => self.duration = parse_duration(name, value)?,
            "loss" => self.loss_pct = parse_num(name, value)?,
            "dup" => self.dup_pct = parse_num(name, value)?,
            "max-delay" => self.max_delay = parse_duration(name, value)?,
            "partitions" => self.partitions = parse_on(name, value)?,
            "pauses" => self.pauses = parse_on(name, value)?,
            "crashes" => self.crashes = parse_on(name, value)?,
            "commands" => self.commands = parse_on(name, value)?,
            "members" => self.members = parse_on(name, value)?,
            "rejoins" => self.rejoins = parse_on(name, value)?,
            "crash-after-send" => self.crash_after_send_pct = parse_num(name, value)?,
            "roles" => self.roles = parse_on(name, value)?,
            "plant" => {
                self.plant = Plant::parse(value).ok_or_else(|| {
                    let names: Vec<_> = Plant::ALL.iter().map(|p| p.name()).collect();
                    format!("--plant must be one of {}", names.join(", "))
                })?
            }
            "durability-check" => self.durability_check = parse_on(name, value)?,
            "renewal" => {
                self.renewal = match value {
                    "lease" => Some(Renewal::Lease),
                    "logged" => Some(Renewal::Logged),
                    "mixed" => None,
                    _ => return Err("--renewal must be lease, logged or mixed".into()),
                }
            }
            "fault" => {
                self.fault = match value {
                    "none" => None,
                    _ => Some(parse_fault(value).ok_or_else(|| {
                        let names: Vec<_> = Fault::ALL.iter().map(|f| f.label()).collect();
                        format!("--fault must be none or one of {}", names.join(", "))
                    })?),
                }
            }
            "probe" => {
                self.probe = Probe::parse(value)
                    .ok_or_else(|| "--probe must be crash or deaf".to_string())?
            }
            "lossy" => self.lossy = parse_duration(name, value)?,
            "lossy-loss" => self.lossy_pct = parse_num(name, value)?,
            _ => return Err(format!("unknown option --{name}")),
        }
        Ok(())
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("--{name}: not a number: {value}"))
}

fn parse_on(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("--{name}: expected on or off, got {value}")),
    }
}

/// Parses `250us`, `50ms`, `2s`, or a bare number of milliseconds.
pub fn parse_duration(name: &str, value: &str) -> Result<Duration, String> {
    let (digits, scale) = if let Some(v) = value.strip_suffix("us") {
        (v, 1)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1_000)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1_000_000)
    } else {
        (value, 1_000)
    };
    let n: u64 = parse_num(name, digits)?;
    n.checked_mul(scale)
        .map(Duration::from_micros)
        .ok_or_else(|| format!("--{name}: too large: {value}"))
}

/// The `tenure-sim` command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cli {
    /// The run options.
    pub opts: SimOptions,
    /// How many seeds to sweep.
    pub seeds: u64,
    /// The first seed of the sweep.
    pub start: u64,
    /// Replay this one seed with a trace instead of sweeping.
    pub replay: Option<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Run every k-th seed twice and compare trace hashes (0: never).
    pub determinism_every: u64,
    /// No progress line.
    pub quiet: bool,
}

impl Default for Cli {
    fn default() -> Self {
        Cli {
            opts: SimOptions::default(),
            seeds: 1_000,
            start: 0,
            replay: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            determinism_every: 100,
            quiet: false,
        }
    }
}

/// The usage text of `tenure-sim`.
pub const USAGE: &str = "\
tenure-sim: deterministic simulation of a Tenure cluster under faults

USAGE: tenure-sim [--seeds N] [--start S] [--jobs J] [OPTIONS]   sweep seeds S..S+N
       tenure-sim --seed S [OPTIONS]                            replay one seed, with a trace

OPTIONS (defaults in brackets; durations take us, ms or s, bare numbers are ms):
  --nodes N             cluster size, 1..=7 [5]
  --lease D             lease [1s]
  --drift PPM           configured clock drift bound (Config::drift_ppm) [10000]
  --clock-error PPM     actual clock rate error drawn per node [= --drift]; above the
                        bound only to show the checker catches it
  --round-timeout D     Paxos round timeout [50ms]
  --duration D          faulty phase, before liveness and failover are measured [20s]
  --loss PCT            highest loss rate a run draws [5]
  --dup PCT             highest duplication rate a run draws [2]
  --max-delay D         highest base one-way delay of a link [5ms]
  --partitions on|off   symmetric, asymmetric and partial partitions [on]
  --pauses on|off       process pauses [on]
  --crashes on|off      crashes and restarts [on]
  --commands on|off     releases, hand-overs, campaigns [on]
  --members on|off      membership changes in half the runs [on]
  --rejoins on|off      a node's record wiped and the node rejoined, in half the runs [on]
  --crash-after-send P  percent of runs that crash nodes right after sends [25]
  --roles on|off        vary roles and priorities by seed [on]
  --plant KIND          plant a driver fault: none, send-before-persist,
                        restart-without-record, lease-from-success [none]
  --durability-check on|off  check the disk at every send [on]
  --renewal MODE        lease, logged, or mixed: drawn per seed (logged on one seed
                        in 4) [mixed]
  --fault LABEL         plant a core fault in every node: none, or one of
                        ignore-version-check, no-restart-silence,
                        single-guard-slot, reuse-seq, double-age,
                        two-member-step, rejoin-votes-at-once,
                        rejoin-forgets-silence, rejoin-old-ballot,
                        rejoin-one-instance, keep-prepared-across-change,
                        keep-rounds-across-change, change-without-renewal,
                        own-promise-late, own-acceptance-late [none]
  --probe KIND          what the calm phase does to the steady master: crash it, or
                        make it deaf (it sends, hears nothing) [crash]
  --lossy D             a stretch of D in the calm phase with --lossy-loss on every
                        link and no other fault; role losses are counted [0: none]
  --lossy-loss PCT      loss of the lossy stretch [20]
  --determinism-every K run every K-th seed twice, compare trace hashes (0: off) [100]
  --jobs J              worker threads [all cores]
  --quiet               no progress line
";

impl Cli {
    /// Parses the arguments after the program name.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, String> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg}"));
            };
            match name {
                "help" => return Err(USAGE.to_string()),
                "quiet" => {
                    cli.quiet = true;
                    continue;
                }
                _ => {}
            }
            let value = args
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            match name {
                "seeds" => cli.seeds = parse_num(name, &value)?,
                "start" => cli.start = parse_num(name, &value)?,
                "seed" => cli.replay = Some(parse_num(name, &value)?),
                "jobs" => cli.jobs = parse_num::<usize>(name, &value)?.max(1),
                "determinism-every" => cli.determinism_every = parse_num(name, &value)?,
                _ => cli.opts.set(name, &value)?,
            }
        }
        cli.opts.validate()?;
        Ok(cli)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_command_round_trips() {
        let mut o = SimOptions {
            nodes: 3,
            loss_pct: 20,
            plant: Plant::LeaseFromSuccess,
            clock_error_ppm: Some(50_000),
            duration: Duration::from_millis(7_500),
            pauses: false,
            renewal: Some(Renewal::Logged),
            fault: Some(Fault::ReuseSeq),
            probe: Probe::Deaf,
            lossy: Duration::from_secs(30),
            ..SimOptions::default()
        };
        o.lease = Duration::from_millis(800);
        let cmd = o.replay_command(42);
        let args: Vec<String> = cmd
            .split_whitespace()
            .skip_while(|a| *a != "--")
            .skip(1)
            .map(String::from)
            .collect();
        let cli = Cli::parse(args).unwrap();
        assert_eq!(cli.opts, o);
        assert_eq!(cli.replay, Some(42));
        assert_eq!(parse_duration("x", "250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("x", "3"), Ok(Duration::from_millis(3)));
        assert!(Cli::parse(["--nodes".to_string(), "9".to_string()]).is_err());
    }
}
